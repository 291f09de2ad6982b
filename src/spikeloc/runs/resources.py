"""The machine's resources: whether a config fits in its memory (checked before anything is allocated),
and how many CPU threads a run takes.

The estimate adds up the largest allocations of a run (bytes): the training and test sets (uint8
spikes), one batch's activations and gradients through the hidden layer, the readout's time
matrix, the per-step observer's scratch and the ideal observer's likelihood tables. It is an
estimate, meant to refuse sizes that cannot run (``hidden = 100000000``), not to budget a run closely.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numba
import torch

from ..config.schema import RunConfig, StimulusConfig
from ..errors import SpikelocError
from ..models.readout import WITH_NEURONS

GIB = 2**30
LOG_TABLE_GRID = 1440  # the ideal observer's phase grid (observer.ideal.IdealObserver's default)


def memory_estimate(cfg: RunConfig) -> dict[str, int]:
    """The largest allocations of a run of ``cfg``, by what they hold (bytes)."""
    s, m, t = cfg.stimulus, cfg.model, cfg.train
    T, inputs, K, B = s.steps, s.inputs, t.models, t.batch_size
    bins = s.num_classes * m.bins_per_class
    # each model of the stack has its own sets; with fresh data the old and the new one are held at once
    train_set = K * t.batch_size * t.train_batches * T * inputs * (2 if t.fresh_data else 1)
    test_set = K * t.batch_size * t.test_batches * T * inputs
    # float32 input batches (one per model); per hidden unit: current, spikes, saved membrane, sigmoid,
    # gradients (x2, safety)
    batch = 4 * B * T * K * (inputs + 12 * m.hidden + 4 * bins)
    out = {"training set": train_set, "test set": test_set, "one batch's activations and gradients": batch}
    if m.readout in WITH_NEURONS:
        out["the readout's time matrix"] = 3 * 4 * K * bins * T * T
    if t.target == "observer":
        out["the per-step observer"] = 8 * 6 * B * T * 240
    if cfg.eval.ideal_observer:
        out["the ideal observer's tables"] = 8 * 3 * T * s.anf_per_ear * LOG_TABLE_GRID
    return out


def available_memory() -> int:
    """Bytes this machine can give a new process: MemAvailable on Linux, else the physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_samples(stim: StimulusConfig, samples: int) -> None:
    """A one-line error when a test set of ``samples`` stimuli (``evaluate``, ``bound``) cannot fit in
    memory."""
    need, have = 3 * samples * stim.steps * stim.inputs, available_memory()  # uint8 spikes, float batches
    if need > have:
        raise SpikelocError(f"{samples} samples need about {_gib(need)}, more than the {_gib(have)} "
                            "available; ask for fewer")


def _gib(n: int) -> str:
    """``n`` bytes in GiB; past float range (a duration of 1e300 s) as a power of ten."""
    return f"{n / GIB:.1f} GiB" if n < 2**100 else f"10^{len(str(n // GIB)) - 1} GiB"


def check_memory(cfg: RunConfig) -> None:
    """A one-line error, naming the largest part, when a run of ``cfg`` cannot fit in memory."""
    parts = memory_estimate(cfg)
    need, have = sum(parts.values()), available_memory()
    if need > have:
        largest = max(parts, key=parts.get)
        raise SpikelocError(f"this config needs about {_gib(need)} ({largest}: {_gib(parts[largest])}), "
                            f"more than the {_gib(have)} available; make it smaller (stimulus steps = "
                            f"{cfg.stimulus.steps:.3g}, inputs = {cfg.stimulus.inputs}, model.hidden = "
                            f"{cfg.model.hidden}, train.batch_size = {cfg.train.batch_size})")


# ---------------------------------------------------------------- threads

def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (containers)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def _cpu_times(cpus: set[int]) -> tuple[int, int] | None:
    """(busy, total) jiffies of ``cpus`` since boot, from /proc/stat's ``cpuN`` lines (None without /proc)."""
    busy = total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                    ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
                    busy, total = busy + sum(ticks) - ticks[3] - ticks[4], total + sum(ticks)
    except (OSError, ValueError):
        return None
    return busy, total


def busy_cpus(interval_s: float = 0.05) -> int:
    """How many of this process's CPUs (its affinity mask) other work keeps busy now: their busy share over
    ``interval_s``, while this process sleeps, rounded; 0 where Linux's /proc is not there. Only the
    CPUs this process may use count, so other jobs on a cluster node or other containers do not."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    before = _cpu_times(cpus)
    time.sleep(interval_s)
    after = _cpu_times(cpus)
    if before is None or after is None or after[1] <= before[1]:
        return 0
    share = (after[0] - before[0]) / (after[1] - before[1])  # 0..1 of the CPUs' time
    return round(share * len(cpus))


def auto_threads() -> int:
    """The thread count of ``threads = "auto"``: ``OMP_NUM_THREADS`` when it is set, else the usable CPUs
    that other work leaves free (at least 1), measured over 50 ms.

    PyTorch's and numba's pools default to one thread per core. Where another job holds a core, each of
    the thousands of small parallel regions of a training step then waits for a thread that is not
    scheduled, which made a small training step many times slower (docs/performance.md).
    """
    given = os.environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    return max(1, usable_cpus() - busy_cpus())


def resolve_threads(threads: str | int) -> int:
    """``"auto"`` -> :func:`auto_threads`; a count is kept."""
    return auto_threads() if threads == "auto" else int(threads)


@contextmanager
def using_threads(threads: int):
    """PyTorch's and numba's CPU pools limited to ``threads`` inside the block, restored after it."""
    before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # numba's pool has a fixed size
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
