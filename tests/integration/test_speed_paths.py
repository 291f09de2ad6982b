"""What the speed work must not change: the ideal observer's cached row, figures rendered in worker
processes, the thread count recorded for an exact re-run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import spikeloc
from spikeloc.cli import main
from spikeloc.runs import cache, pipeline
from spikeloc.viz.figures import figure_specs, render


def test_the_ideal_observers_row_comes_from_the_cache_the_second_time(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_DIR_VARIABLE, str(tmp_path))
    cfg = spikeloc.load_config("tiny", epochs=1)
    first = spikeloc.train(cfg, progress=False).metrics.ideal_observer
    assert len(list(tmp_path.glob("ideal-observer-*.json"))) == 1

    class NotAgain:
        def __init__(self, *args, **kwargs):
            raise AssertionError("the ideal observer was computed again")

    monkeypatch.setattr(pipeline, "IdealObserver", NotAgain)
    assert spikeloc.train(cfg, progress=False).metrics.ideal_observer == first
    other_seed = cfg.model_copy(update={"seed": 1})  # another test set: not the cached row
    with pytest.raises(AssertionError, match="computed again"):
        spikeloc.train(other_seed, progress=False)


@pytest.fixture(scope="module")
def run():
    return spikeloc.train(spikeloc.load_config("tiny", epochs=1, membrane_baseline=True), progress=False)


def test_figures_rendered_in_workers_are_those_rendered_here(run):
    specs = figure_specs(run)
    assert len(specs) == 8
    assert render(specs, workers=2) == render(specs, workers=1)


def test_the_thread_count_is_recorded_and_a_rerun_is_exact(tmp_path, capsys):
    for out in ("a", "b"):
        args = ["--config", str(tmp_path / "a" / "config.toml")] if out == "b" else ["--preset", "tiny"]
        with pytest.raises(SystemExit) as e:
            main(["train", *args, "--threads", "2", "-q", "--out", str(tmp_path / out)])
            raise SystemExit(0)
        assert e.value.code in (0, None)
    assert "threads = 2" in (tmp_path / "a" / "config.toml").read_text()
    a, b = ((tmp_path / out / "weights.safetensors").read_bytes() for out in ("a", "b"))
    assert a == b
    status = json.loads((tmp_path / "a" / "status.json").read_text())
    assert status["state"] == "complete" and status["seconds"]["total"] > 0


WORKER_PARENT = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from spikeloc.viz.figures import _figure_worker
pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), initializer=_figure_worker,
                           initargs=(os.getpid(),))
print(pool.submit(os.getpid).result(), flush=True)
pool.submit(time.sleep, 60)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_figure_worker_dies_with_its_run():
    """Workers share the run folder's lock: a SIGKILLed run must not leave them holding it."""
    parent = subprocess.Popen([sys.executable, "-c", WORKER_PARENT], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = Path(f"/proc/{worker}/status")
        if not status.exists() or "\nState:\tZ" in status.read_text():
            return
        time.sleep(0.05)
    os.kill(worker, signal.SIGKILL)
    pytest.fail("the figure worker outlived its run")
