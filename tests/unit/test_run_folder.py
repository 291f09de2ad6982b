"""What a folder is (new, foreign, running, complete, failed), its lock, its checkpoint and its files."""

import os
import stat

import pytest
import torch
from conftest import DATA

from spikeloc.config import load_config
from spikeloc.errors import SpikelocError
from spikeloc.runs import files
from spikeloc.runs.checkpoint import Checkpoint, Checkpoints, from_bytes, to_bytes
from spikeloc.runs.folder import RunFolder, read_status
from spikeloc.runs.lock import FolderLock
from spikeloc.training.loop import Epoch, FitState


def test_what_a_folder_is(tmp_path):
    assert read_status(tmp_path / "absent") == {"state": "new"}
    assert read_status(tmp_path) == {"state": "new"}  # empty
    (tmp_path / "metrics.json").write_text("{}")  # the user's own file
    assert read_status(tmp_path) == {"state": "foreign"}
    (tmp_path / "config.toml").write_text("")  # 0.1.0, killed before its weights were saved
    assert read_status(tmp_path) == {"state": "running"}
    (tmp_path / "weights.safetensors").write_text("")  # 0.1.0, complete
    assert read_status(tmp_path) == {"state": "complete"}
    # this release: the status says
    (tmp_path / "status.json").write_text('{"state": "failed", "reason": "why"}')
    assert read_status(tmp_path)["reason"] == "why"
    running = '{"state": "running", "progress": '
    for damaged in ('{"state": ', "{}", "[]", "null", '{"state": "bogus"}', running + "5}",
                    running + '{"kind": "x"}}'):
        (tmp_path / "status.json").write_text(damaged)
        with pytest.raises(SpikelocError, match=r"status.json is damaged"):
            read_status(tmp_path)
    (tmp_path / "afile").write_text("")
    with pytest.raises(SpikelocError, match="exists and is not a folder"):
        read_status(tmp_path / "afile")


def test_a_folder_of_other_files_is_never_written(tmp_path):
    (tmp_path / "report.html").write_text("the user's report")
    with pytest.raises(SpikelocError, match="holds files but no spikeloc run"):
        RunFolder.create(tmp_path, load_config("tiny"))
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_one_lock_per_folder(tmp_path):
    first = FolderLock(tmp_path).acquire()
    assert FolderLock.holder(tmp_path) == str(os.getpid())
    with pytest.raises(SpikelocError, match=rf"is being written by process {os.getpid()}; wait for it"):
        # another open file description: flock refuses it, even in this process
        FolderLock(tmp_path).acquire()
    first.release()
    assert FolderLock.holder(tmp_path) is None
    FolderLock(tmp_path).acquire().release()  # free again


def test_create_writes_status_and_config_with_mode_0644(tmp_path):
    cfg = load_config("tiny")
    with RunFolder.create(tmp_path / "run", cfg) as folder:
        assert read_status(folder.path)["state"] == "running"
        assert FolderLock.holder(folder.path) == str(os.getpid())
    for name in ("status.json", "config.toml"):
        assert stat.S_IMODE((folder.path / name).stat().st_mode) == 0o644
    assert FolderLock.holder(folder.path) is None  # released on leaving the block
    with pytest.raises(SpikelocError,
                       match="holds an interrupted run; continue it with: spikeloc train --resume"):
        RunFolder.create(tmp_path / "run", cfg)
    again = RunFolder.create(tmp_path / "run", cfg, unique=True)  # a default name: the next free one
    again.lock.release()
    assert again.path.name == "run-2"


def test_checkpoint_round_trip_and_damage(tmp_path):
    state = FitState(3, {"W": torch.arange(4.0)}, {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]},
                     None, (torch.Generator().get_state(),), [Epoch(1, 0.5, (0.4, 0.6), 0.1, 1.0)])
    ckpt = Checkpoint({"membrane": ({"W": torch.ones(2)}, [Epoch(1, 1.0, (1.0,), 0.1, 2.0)])}, "spiking",
                      state)
    back = from_bytes(to_bytes(ckpt))
    assert back.kind == "spiking" and back.fit.epoch == 3 and back.fit.history == state.history
    assert (torch.equal(back.fit.model["W"], state.model["W"])
            and torch.equal(back.fit.generators[0], state.generators[0]))
    assert back.finished["membrane"][1] == ckpt.finished["membrane"][1]
    store = Checkpoints(tmp_path / "checkpoint.pt")
    assert store.load() is None
    store.save(ckpt)
    blob = store.path.read_bytes()
    for damaged in (blob[: len(blob) // 2], b"garbage", blob[:10] + bytes(100) + blob[110:]):
        store.path.write_bytes(damaged)
        with pytest.raises(SpikelocError, match=r"checkpoint.pt is damaged .*; start a new run"):
            store.load()


def test_atomic_write_leaves_the_old_file_when_it_fails(tmp_path, monkeypatch):
    path = files.write_atomic(tmp_path / "a.json", b"old")

    def fail(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        files.write_atomic(path, b"new")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]
    with pytest.raises(ValueError):
        files.write_json(tmp_path / "b.json", {"x": float("nan")})  # strict JSON: no NaN in a file


def test_a_failed_create_leaves_a_new_folder(tmp_path, monkeypatch, full_disk):
    full_disk("config.toml")
    with pytest.raises(SpikelocError, match=r"cannot write to --out .*: No space left on device"):
        RunFolder.create(tmp_path / "run", load_config("tiny"))
    monkeypatch.undo()
    assert read_status(tmp_path / "run") == {"state": "new"}  # no status without a config: it starts again
    RunFolder.create(tmp_path / "run", load_config("tiny")).lock.release()


def test_a_failed_library_save_saves_nothing_and_can_be_retried(tmp_path, monkeypatch, full_disk):
    import spikeloc

    run = spikeloc.train(load_config("tiny", ideal_observer=False, membrane_baseline=False), progress=False)
    full_disk("weights")
    with pytest.raises(SpikelocError, match=r"weights.safetensors: No space left on device; nothing was "
                                            r"saved"):
        spikeloc.save(run, tmp_path / "run")
    assert read_status(tmp_path / "run") == {"state": "new"}
    monkeypatch.undo()
    spikeloc.save(run, tmp_path / "run")
    assert torch.equal(spikeloc.load_run(tmp_path / "run").models["spiking"].W1, run.models["spiking"].W1)
    with pytest.raises(SpikelocError, match="already holds a complete run"):
        spikeloc.save(run, tmp_path / "run")


def test_a_checkpoint_of_an_earlier_release_matches_its_config():
    """A checkpoint's config written before the thread count existed (and with old names) is the config of
    its folder, whatever count this machine resolves now; an edited config is not."""
    from spikeloc.config.loading import config_from_toml_text
    from spikeloc.runs.pipeline import _same_config

    old_text = (DATA / "run-0.1.0" / "config.toml").read_text()  # membrane_only, no threads
    assert "threads" not in old_text and "membrane_only" in old_text
    cfg = config_from_toml_text(old_text, "config.toml").model_copy(update={"threads": 2})
    assert _same_config(old_text, cfg)
    assert not _same_config(old_text, cfg.model_copy(update={"seed": cfg.seed + 1}))
    assert not _same_config(cfg.model_copy(update={"threads": 1}).to_toml(), cfg)  # a recorded count counts
