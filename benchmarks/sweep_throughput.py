"""Tutorial-sized models trained per minute through ``spikeloc sweep run``, end to end, beside
``spikeloc train --models K``: every case a whole command (imports, workers, data, training, evaluation,
the ideal observer from an empty cache, run folders, sweep.html), run one after the other, median of
``--repeats``. The seeds-only cases compute the ideal observer for every model's own test set; the last
case sweeps 4 points, whose runs of one seed share a test set and so the observer's result.

    .venv/bin/python benchmarks/sweep_throughput.py                   # 16 models per case
    .venv/bin/python benchmarks/sweep_throughput.py --models 32 --repeats 3

The model is the ``tutorial`` preset's network (200 fibres, 30 hidden LIF units, 100 steps, 10 epochs of
64 batches of 64) without its membrane-only baseline, which is a second model per run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = ["--preset", "tutorial", "--set", "train.membrane_baseline=false"]


def cases(models: int) -> dict[str, list[str]]:
    sweep = ["sweep", "run", *BASE, "--seeds", str(models), "-q"]
    return {
        f"train --models {models} (2 threads)": ["train", *BASE, "--models", str(models), "--threads", "2",
                                                 "-q", "--no-analysis"],
        f"sweep, 2 jobs x 1 thread ({models // 2} seeds per stack)": [*sweep, "--jobs", "2", "--threads",
                                                                     "1"],
        f"sweep, 1 job x 2 threads ({models} seeds per stack)": [*sweep, "--jobs", "1", "--threads", "2"],
        # a sweep proper: 4 time constants x models/4 seeds; the ideal observer of a seed's test set is
        # computed once and then read from the cache
        f"sweep, 2 jobs x 1 thread, 4 points x {models // 4} seeds": [
            "sweep", "run", *BASE, "--grid", "model.tau_hidden_ms=2,5,10,20", "--seeds", str(models // 4),
            "-q", "--jobs", "2", "--threads", "1"],
    }


def timed(args: list[str], scratch: Path) -> float:
    out = scratch / "out"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, SPIKELOC_CACHE_DIR=tempfile.mkdtemp(dir=scratch))  # an empty cache each time
    env.pop("OMP_NUM_THREADS", None)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "spikeloc", *args, "--out", str(out)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        print(f"{args.models} tutorial-sized models per case, median of {args.repeats}, "
              f"{os.cpu_count()} CPUs")
        for name, command in cases(args.models).items():
            seconds = statistics.median(timed(command, scratch) for _ in range(args.repeats))
            print(f"{name:48s} {seconds:7.1f} s  {60 * args.models / seconds:6.1f} models/min", flush=True)


if __name__ == "__main__":
    main()
