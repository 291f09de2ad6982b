"""How many CPU threads a run takes, and how they are set and restored."""

import numba
import pytest
import torch

from spikeloc.config import load_config
from spikeloc.errors import SpikelocError
from spikeloc.runs import resources


def test_auto_takes_omp_num_threads_when_set(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert resources.auto_threads() == 3 and resources.resolve_threads("auto") == 3
    assert resources.resolve_threads(5) == 5  # a count is kept


@pytest.mark.parametrize("cpus, busy, expected", [(2, 0, 2), (2, 1, 1), (2, 2, 1), (2, 5, 1), (8, 3, 5)])
def test_auto_leaves_the_cpus_that_other_work_holds(monkeypatch, cpus, busy, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(resources, "usable_cpus", lambda: cpus)
    monkeypatch.setattr(resources, "busy_cpus", lambda: busy)
    assert resources.auto_threads() == expected


def test_machine_readings_are_sane():
    assert 1 <= resources.usable_cpus() <= (torch.get_num_threads() + 64)
    assert 0 <= resources.busy_cpus(interval_s=0.01) <= resources.usable_cpus()


def test_using_threads_sets_both_pools_and_restores_them():
    before = torch.get_num_threads(), numba.get_num_threads()
    with resources.using_threads(1):
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    assert (torch.get_num_threads(), numba.get_num_threads()) == before


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "two"])
def test_a_bad_thread_count_is_one_line(value):
    with pytest.raises(SpikelocError, match="threads: must be 'auto' or a whole number, at least 1"):
        load_config("tiny", threads=value)


def test_the_membrane_baseline_is_trained_only_in_the_tutorial_presets():
    assert load_config("tutorial").train.membrane_baseline
    assert load_config("tutorial-full").train.membrane_baseline
    assert not any(load_config(p).train.membrane_baseline for p in ("default", "tiny", "best", "best-30"))
    assert load_config("tiny", overrides=["train.membrane_only=true"]).train.membrane_baseline  # old name
