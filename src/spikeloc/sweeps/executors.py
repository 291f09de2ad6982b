"""Where a sweep's jobs run: a local process pool (the default) or Ray tasks on a cluster.

Both run :func:`~spikeloc.sweeps.jobs.run_job` and keep at most ``slots`` jobs in flight, so the store's
``running`` rows are the jobs that run now. ``wait()`` returns finished jobs with their outcomes, or
with the one-line reason the job itself could not run (its worker process died and retrying did not help).

- ``local``: a ``spawn`` process pool of ``slots`` workers (a fresh interpreter each: no forked torch
  threads). A worker that dies breaks the pool; the pool is made again and the jobs it held run again, up to
  ``RETRIES`` times each.
- ``ray``: one Ray task per job asking for ``cpus`` CPUs and ``gpus`` GPUs (a fraction lets several jobs
  share a GPU); Ray retries a task whose worker dies (``max_retries``). Without an address a local Ray is
  started on this machine's CPUs; with one (``auto``, ``HOST:PORT``) the sweep joins that cluster, whose
  nodes must see the sweep's folder (a shared file system) and have spikeloc installed.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from typing import Any

from ..errors import SpikelocError
from .jobs import one_line, run_job

RETRIES = 2


class LocalExecutor:
    def __init__(self, slots: int, job_function=run_job):
        self.slots, self.function = slots, job_function
        self.pool = self._new_pool()
        self.running: dict[cf.Future, tuple[int, dict]] = {}  # future -> (attempt, job)

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(self.slots, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, job: dict[str, Any], attempt: int = 1) -> None:
        self.running[self.pool.submit(self.function, job)] = (attempt, job)

    def wait(self) -> list[tuple[dict, dict | str]]:
        done, _ = cf.wait(list(self.running), return_when=cf.FIRST_COMPLETED)
        out, again = [], []
        for future in done:
            attempt, job = self.running.pop(future)
            try:
                out.append((job, future.result()))
            except cf.process.BrokenProcessPool:
                if attempt <= RETRIES:
                    again.append((job, attempt + 1))
                else:
                    out.append((job, f"its worker process died {attempt} times"))
        if again:  # a broken pool runs nothing more: a new one takes the jobs it held
            held = [(job, attempt + 1) for attempt, job in self.running.values()]
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool, self.running = self._new_pool(), {}
            for job, attempt in again + held:
                self.submit(job, attempt)
        return out

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class RayExecutor:
    def __init__(self, slots: int | None, cpus: int, gpus: float, address: str | None, job_function=run_job):
        try:
            import ray  # the optional extra spikeloc[cluster]
        except ImportError:
            raise SpikelocError("--executor ray needs Ray: pip install 'spikeloc[cluster]'") from None
        self.ray = ray
        try:
            if address is None:
                ray.init(num_cpus=(slots or 1) * cpus, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            else:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise SpikelocError(f"cannot start or join Ray (--address {address or 'none: a local Ray'}): "
                                f"{one_line(e)}") from None
        self.remote = ray.remote(job_function).options(num_cpus=cpus, num_gpus=gpus, max_retries=RETRIES,
                                                        retry_exceptions=False)
        # without --jobs, a cluster runs as many jobs as its CPUs (or GPUs) hold
        total = ray.cluster_resources()
        fits = [total.get("CPU", 1) // cpus] + ([total.get("GPU", 0) // gpus] if gpus else [])
        self.slots, self.running = slots or max(1, int(min(fits))), {}

    def submit(self, job: dict[str, Any]) -> None:
        self.running[self.remote.remote(job)] = job

    def wait(self) -> list[tuple[dict, dict | str]]:
        done, _ = self.ray.wait(list(self.running), num_returns=1)
        out = []
        for ref in done:
            job = self.running.pop(ref)
            try:
                out.append((job, self.ray.get(ref)))
            except self.ray.exceptions.RayError as e:
                out.append((job, f"its Ray task failed after {RETRIES} retries: {one_line(e)}"))
        return out

    def close(self) -> None:
        for ref in self.running:
            self.ray.cancel(ref, force=True)
        self.ray.shutdown()
