"""The per-user cache: computed once per key, damaged entries computed again, never required."""

import json

import pytest

from spikeloc.runs import cache


@pytest.fixture
def calls():
    return []


def compute(calls, value=1.5):
    def f():
        calls.append(1)
        return {"value": value}
    return f


def test_a_result_is_computed_once_per_key(tmp_path, monkeypatch, calls):
    monkeypatch.setenv(cache.CACHE_DIR_VARIABLE, str(tmp_path))
    assert cache.cached_json("thing", {"a": 1}, compute(calls)) == {"value": 1.5}
    assert cache.cached_json("thing", {"a": 1}, compute(calls)) == {"value": 1.5}
    assert len(calls) == 1
    cache.cached_json("thing", {"a": 2}, compute(calls))  # another key
    assert len(calls) == 2 and len(list(tmp_path.glob("thing-*.json"))) == 2


@pytest.mark.parametrize("damage", ["", "{not json", '{"key": 1}', "[]"])
def test_a_damaged_entry_is_computed_again_and_replaced(tmp_path, monkeypatch, calls, damage):
    monkeypatch.setenv(cache.CACHE_DIR_VARIABLE, str(tmp_path))
    cache.cached_json("thing", {"a": 1}, compute(calls))
    (entry,) = tmp_path.glob("thing-*.json")
    entry.write_text(damage)
    assert cache.cached_json("thing", {"a": 1}, compute(calls, 2.5)) == {"value": 2.5}
    assert len(calls) == 2 and json.loads(entry.read_text())["value"] == {"value": 2.5}


def test_an_unwritable_cache_is_skipped(tmp_path, monkeypatch, calls):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(cache.CACHE_DIR_VARIABLE, str(blocker / "cache"))
    assert cache.cached_json("thing", {"a": 1}, compute(calls)) == {"value": 1.5}
    assert cache.cached_json("thing", {"a": 1}, compute(calls)) == {"value": 1.5}
    assert len(calls) == 2


def test_hashes_follow_the_data_and_the_code(tmp_path, monkeypatch):
    import shutil

    import torch
    a = torch.zeros(3, 4, dtype=torch.uint8)
    b = a.clone()
    b[1, 2] = 1
    assert cache.data_hash(a) == cache.data_hash(a.clone()) != cache.data_hash(b)
    assert cache.data_hash(a) != cache.data_hash(a.float())  # the dtype is part of the data
    copy = tmp_path / "spikeloc"
    shutil.copytree(cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE", copy)
    before = cache.source_hash()
    with (copy / "task" / "stimulus.py").open("a") as f:
        f.write("# an edit\n")
    assert cache.source_hash() != before
