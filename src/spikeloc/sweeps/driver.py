"""The sweep's driver: plan the runs, record them, hand jobs to an executor, record each outcome.

Read top to bottom: lock ``DIR`` (one driver per sweep), plan every (point, seed) and register them in the
store (a different sweep in the same folder is refused), group the runs still to do into jobs (the
consecutive seeds of a point, stacked), keep the executor's slots full, and record each run as its job
returns (``spikeloc sweep run`` then draws ``sweep.html``). Killed at any moment, nothing finished is lost:
a finished run's row was committed after its folder was complete, and the next ``sweep run`` takes up the
rest.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import SpikelocError
from ..runs.lock import FolderLock
from ..runs.resources import usable_cpus
from .executors import LocalExecutor, RayExecutor
from .jobs import run_job
from .spec import PlannedRun, SweepSpec, plan
from .store import DATABASE, Store

MAX_STACK = 16  # seeds of a point trained at once, at most, by default


@dataclass(frozen=True)
class Resources:
    """How the sweep runs: ``executor`` (local or ray), ``jobs`` in flight, ``threads`` per job, ``gpus`` per
    job (Ray), ``address`` of a Ray cluster, ``stack``: at most this many seeds of a point per job (None:
    enough jobs to keep every slot busy, at most ``MAX_STACK`` seeds each)."""

    executor: str = "local"
    jobs: int | None = None
    threads: int | None = None
    gpus: float = 0.0
    address: str | None = None
    stack: int | None = None

    def resolved(self) -> Resources:
        """Jobs and threads filled in: by default one job per usable CPU, one thread each (on 2 cores, 2
        jobs of 1 thread: docs/sweeps.md has the measurement); threads = CPUs // jobs."""
        cpus = usable_cpus()
        if self.executor == "ray" and self.address is not None and self.jobs is None:
            # a cluster: as many jobs as its CPUs hold (the executor reads them); 1 thread each by default
            return Resources(self.executor, None, self.threads or 1, self.gpus, self.address, self.stack)
        jobs = self.jobs or max(1, cpus // (self.threads or 1))
        return Resources(self.executor, jobs, self.threads or max(1, cpus // jobs), self.gpus, self.address,
                         self.stack)


def make_jobs(runs: list[PlannedRun], stack: int, out: Path) -> list[dict]:
    """The runs to do as jobs: consecutive seeds of one point together, at most ``stack`` per job (one per job
    where early stopping decides on a stack's mean)."""
    jobs, current = [], []

    def close() -> None:
        if current:
            runs_ = [{"name": r.name, "config": r.config.to_toml()} for r in current]
            jobs.append({"dir": str(out), "runs": runs_})
            current.clear()
    for r in runs:
        joins = (current and current[-1].point == r.point and current[-1].seed + 1 == r.seed
                 and len(current) < stack and not r.config.train.early_stopping_patience)
        if not joins:
            close()
        current.append(r)
    close()
    return jobs


def run_sweep(spec: SweepSpec, out: Path, resources: Resources = Resources(), retry_failed: bool = False,
              log: Callable[[str], None] | None = None, progress: bool = True,
              job_function=run_job) -> dict[str, int]:
    """Run every (point, seed) of ``spec`` not finished yet into ``out`` and return the store's counts.
    ``retry_failed``: run the failed runs again. ``log`` gets one line per finished run."""
    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not (out / DATABASE).exists():
        raise SpikelocError(f"--out {out} holds files but no sweep; choose a new or empty folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(out).acquire()
    except OSError as e:
        raise SpikelocError(f"cannot write to --out {out}: {e.strerror}") from None
    store = None
    try:
        res = resources.resolved()
        planned = plan(spec, threads=res.threads)
        store = Store(out, create=True)
        store.register(spec, planned)
        rows = {row.name: row for row in store.rows()}
        wanted = ("pending", "failed") if retry_failed else ("pending",)
        todo = [r for r in planned if rows[r.name].status in wanted]
        for r in todo:
            if r.config is None:
                store.failed(r.name, r.refused)
        runnable = [r for r in todo if r.config is not None]
        # by default as many seeds per job as keep every slot busy (a stack of 16 on one of two CPUs
        # leaves the other idle)
        stack = res.stack or min(MAX_STACK, max(1, math.ceil(len(runnable) / (res.jobs or 1))))
        jobs = make_jobs(runnable, stack, out)
        _execute(jobs, res, store, job_function, log, progress)
        return store.counts()
    finally:
        if store is not None:
            store.close()
        lock.release()


def _execute(jobs: list[dict], res: Resources, store: Store, job_function, log, progress: bool) -> None:
    if not jobs:
        return
    counts = store.counts()
    bar = tqdm(total=counts["total"], initial=counts["finished"] + counts["failed"], unit="run", desc="sweep",
               disable=not (progress and sys.stderr.isatty()), smoothing=0)
    say = (lambda line: (log if bar.disable else bar.write)(line)) if log is not None else (lambda line: None)
    executor = (LocalExecutor(res.jobs, job_function) if res.executor == "local"
                else RayExecutor(res.jobs, res.threads, res.gpus, res.address, job_function))
    started, queue = time.perf_counter(), list(jobs)
    try:
        while queue or executor.running:
            while queue and len(executor.running) < executor.slots:
                job = queue.pop(0)
                store.started([r["name"] for r in job["runs"]])
                executor.submit(job)
            for job, outcomes in executor.wait():
                for r in job["runs"]:
                    name = r["name"]
                    outcome = outcomes.get(name) if isinstance(outcomes, dict) else None
                    if outcome is None:
                        reason = outcomes if isinstance(outcomes, str) else "the job returned no outcome"
                        outcome = {"status": "failed", "reason": reason}
                    if outcome["status"] == "finished":
                        store.finished(name, outcome["metrics"])
                        m = outcome["metrics"]
                        line = f"{100 * m['accuracy']:.1f} %, MAE {m['mae_deg']:.2f} deg"
                    else:
                        store.failed(name, outcome["reason"])
                        line = f"failed: {outcome['reason']}"
                    bar.update()
                    c = store.counts()
                    say(f"[{c['finished'] + c['failed']}/{c['total']}] {name}: {line} "
                        f"({time.perf_counter() - started:.0f} s)")
    finally:
        executor.close()
        bar.close()


def sweep_status(out: Path) -> dict[str, int]:
    """``{"total", "finished", "running", "failed", "pending"}`` of the sweep in ``out``; runs a killed
    driver left ``running`` count as pending (no driver holds the folder)."""
    store = Store(Path(out))
    try:
        counts = store.counts()
    finally:
        store.close()
    if FolderLock.holder(Path(out)) is None:
        counts["pending"] += counts["running"]
        counts["running"] = 0
    return counts
