"""Speed of one training step (forward + backward + Adam) of the sound-localisation SNN, side by side.

Cases: the bare matrix products of the step (the floor), the source notebook's loop
(``notebook_literal.snn``) eager and under ``torch.compile``, snnTorch, Norse eager and compiled,
and spikeloc with its reference and fused engines (also K vectorised models). Every case runs
in its own spawned process, so its peak memory is its own. Whole ``tutorial`` runs (the
notebook's script and ``spikeloc train --preset tutorial``) are timed end to end.

    .venv-bench/bin/python benchmarks/bench.py            # full run, writes docs/performance.md
    .venv-bench/bin/python benchmarks/bench.py --quick    # smoke run, prints only

Network for every case: 200 inputs, T = 100 steps of 1 ms, ``hidden`` LIF neurons (tau 20 ms,
threshold 1, reset to 0, sigmoid-shaped surrogate of slope 5), 12 leaky-integrator outputs,
loss NLL of log-softmax of the time-mean output, Adam lr 0.01. Inputs: one fixed batch of
stimuli from ``spikeloc.task.stimulus`` (mean spike probability 0.225 per step and fibre).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import math
import multiprocessing
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "oracles"))
import notebook_literal  # the notebook's loop, the oracle of the tests

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

INPUTS, CLASSES = 200, 12
TAU, DT, SLOPE, LR = 20e-3, 1e-3, 5.0, 0.01  # SLOPE: of the surrogate gradient
TUTORIAL_STEPS = 10 * 64  # the tutorial preset: 10 epochs of 64 batches
NOTEBOOK = "notebook loop"
FLOOR = "matmul floor"
FAST = "spikeloc fast"


class Unavailable(Exception):
    """The case cannot run here (library missing, kernel not built): reported, not an error."""


@dataclass(frozen=True)
class Problem:
    batch: int
    hidden: int
    models: int = 1

    @property
    def label(self) -> str:
        return f"{self.batch}x{self.hidden}"


# ---------------------------------------------------------------- shared pieces of every case

def inputs(problem: Problem, device: torch.device):
    """One fixed batch: spikes (batch, steps, inputs) float32, true IPDs (rad), class indices."""
    from spikeloc.config import StimulusConfig
    from spikeloc.task.bins import discretise
    from spikeloc.task.stimulus import random_ipd_input_signal

    stim = StimulusConfig()
    data = random_ipd_input_signal(problem.batch, stim, torch.Generator(device=device).manual_seed(0))
    return data.spikes.float(), data.ipd, discretise(data.ipd, stim)


def notebook_weights(problem: Problem, device: torch.device):
    torch.manual_seed(0)
    return notebook_literal.init_weight_matrices(INPUTS, problem.hidden, CLASSES, device=device)


def nll_of_mean(trace: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The notebook's loss: NLL of log-softmax of the output membrane averaged over time."""
    return F.nll_loss(F.log_softmax(trace.mean(1), dim=1), target)


def scan(cell, current: torch.Tensor, state) -> torch.Tensor:
    """Run a library's one-step ``cell(input, state) -> (output, state)`` over time (dim 1)."""
    outputs = []
    for t in range(current.shape[1]):
        out, state = cell(current[:, t], state)
        outputs.append(out)
    return torch.stack(outputs, dim=1)


# ---------------------------------------------------------------- one builder per library
# Each returns (loss closure, parameters); `training_step` adds Adam (and torch.compile).

def notebook_loss(problem: Problem, device: torch.device):
    x, _, y = inputs(problem, device)
    W1, W2 = notebook_weights(problem, device)
    return (lambda: nll_of_mean(notebook_literal.snn(x, W1, W2), y)), [W1, W2]


def snntorch_loss(problem: Problem, device: torch.device):
    import snntorch

    from spikeloc.neurons.surrogate import spike_fn

    x, _, y = inputs(problem, device)
    W1, W2 = notebook_weights(problem, device)
    alpha = math.exp(-DT / TAU)
    # snnTorch 1.0.0's surrogate.sigmoid(slope=5) computes exp(-5 v) / (exp(-5 v) + 1)^2, which is
    # inf / inf = nan for membranes below about -17.7, reached here in the first step (snnTorch
    # issue #427). spike_fn is the same function, k sig(k v) (1 - sig(k v)), in the stable form.
    lif = snntorch.Leaky(beta=alpha, threshold=1.0, spike_grad=partial(spike_fn, slope=SLOPE),
                         reset_mechanism="zero").to(device)
    readout = snntorch.Leaky(beta=alpha, reset_mechanism="none").to(device)

    def readout_membrane(current, mem):
        _, mem = readout(current, mem)
        return mem, mem

    def loss():
        zeros = torch.zeros(problem.batch, problem.hidden, device=device)
        spikes = scan(lif, x @ W1, zeros)
        trace = scan(readout_membrane, spikes @ W2, torch.zeros(problem.batch, CLASSES, device=device))
        return nll_of_mean(trace, y)

    return loss, [W1, W2]


def norse_loss(problem: Problem, device: torch.device):
    import norse.torch as norse

    x, _, y = inputs(problem, device)
    W1, W2 = notebook_weights(problem, device)

    def tensor(value):
        return torch.tensor(value, device=device)

    # Norse's Euler step adds dt/tau * input: scale the currents by tau/dt to give the same drive.
    # Its "tanh" surrogate, 1 - tanh(k x)^2 with k = beta/2, has the notebook's sigmoid-derivative shape.
    gain = TAU / DT
    lif = norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=tensor(1 / TAU), v_leak=tensor(0.0),
                                                  v_th=tensor(1.0), v_reset=tensor(0.0),
                                                  method="tanh", alpha=SLOPE / 2), dt=DT)
    readout = norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=tensor(1 / TAU), v_leak=tensor(0.0)), dt=DT)

    def loss():
        # explicit zero states: Norse's default initial state sets requires_grad (a torch.compile graph break)
        v_hidden = norse.LIFBoxFeedForwardState(v=torch.zeros(problem.batch, problem.hidden, device=device))
        spikes = scan(lif, (x @ W1) * gain, v_hidden)
        v_out = norse.LIBoxState(v=torch.zeros(problem.batch, CLASSES, device=device))
        return nll_of_mean(scan(readout, (spikes @ W2) * gain, v_out), y)

    return loss, [W1, W2]


def spikeloc_loss(problem: Problem, device: torch.device, engine: str):
    from spikeloc.config import ModelConfig, RunConfig, TrainConfig
    from spikeloc.models import build_models

    x, ipd, _ = inputs(problem, device)
    cfg = RunConfig(model=ModelConfig(hidden=problem.hidden, update_rule="standard", engine=engine),
                    train=TrainConfig(batch_size=problem.batch, models=problem.models))
    model = build_models(cfg.stimulus, cfg.model, seeds=list(range(problem.models)), device=device)
    return (lambda: model.loss(x, ipd, cfg.train).sum()), list(model.parameters())


def training_step(make_loss, problem: Problem, device: torch.device,
                  compile: bool = False) -> Callable[[], None]:
    loss, params = make_loss(problem, device)
    if compile:
        loss = torch.compile(loss)
    optimizer = torch.optim.Adam(params, lr=LR)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss().backward()
        optimizer.step()

    return step


def floor_step(problem: Problem, device: torch.device) -> Callable[[], None]:
    """The step's matrix products only, K models at once: x@W1 and dW1; s@W2, dW2 and d(spikes)."""
    x = inputs(problem, device)[0].reshape(-1, INPUTS)  # (batch*steps, inputs)
    k, n, h = problem.models, x.shape[0], problem.hidden
    W1, W2 = torch.randn(k, INPUTS, h, device=device), torch.randn(k, h, CLASSES, device=device)
    spikes = (torch.rand(k, n, h, device=device) < 0.05).float()
    grad_hidden, grad_out = torch.randn(k, n, h, device=device), torch.randn(k, n, CLASSES, device=device)

    def step():
        x @ W1  # input currents
        x.T @ grad_hidden  # dW1
        spikes @ W2  # readout currents
        spikes.mT @ grad_out  # dW2
        grad_out @ W2.mT  # gradient into the hidden spikes

    return step


def importer(module: str) -> Callable[[torch.device], None]:
    return lambda device: importlib.import_module(module)


import_torch = importer("torch")


def fused_backend(device: torch.device) -> None:
    """Import the fused kernel's backend for ``device`` (numba, triton), or say why there is none."""
    from spikeloc.kernels import dispatch

    backend, why = dispatch.fused_backend(device)
    if backend is None:
        raise Unavailable(f"no fused kernel on {device.type} ({why})")


@dataclass(frozen=True)
class Case:
    build: Callable[[Problem, torch.device], Callable[[], None]]
    prepare: Callable[[torch.device], None] = import_torch  # imports, before the memory baseline
    compiled: bool = False
    vectorised: bool = False  # also run with K models


CASES = {
    FLOOR: Case(floor_step, vectorised=True),
    NOTEBOOK: Case(partial(training_step, notebook_loss)),
    "notebook loop + compile": Case(partial(training_step, notebook_loss, compile=True), compiled=True),
    "snnTorch": Case(partial(training_step, snntorch_loss), importer("snntorch")),
    "Norse": Case(partial(training_step, norse_loss), importer("norse.torch")),
    "Norse + compile": Case(partial(training_step, norse_loss, compile=True), importer("norse.torch"),
                            compiled=True),
    "spikeloc reference": Case(partial(training_step, partial(spikeloc_loss, engine="reference")),
                               importer("spikeloc.models.network"), vectorised=True),
    FAST: Case(partial(training_step, partial(spikeloc_loss, engine="fused")), fused_backend,
               vectorised=True),
}


# ---------------------------------------------------------------- timing and memory, in a child process

@dataclass(frozen=True)
class Timing:
    budget_s: float  # keep timing steps for this long ...
    min_steps: int  # ... but at least this many
    max_steps: int
    warmup: int = 2  # untimed steps after the first


def warm_up(step: Callable[[], None], sync: Callable[[], None], timing: Timing) -> float:
    """Seconds of the first call (includes any compilation), then a few untimed steps."""
    start = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - start
    for _ in range(timing.warmup):
        step()
    sync()
    return first


def timed_steps(step: Callable[[], None], sync: Callable[[], None], timing: Timing) -> list[float]:
    """Milliseconds of each step, for ``budget_s`` seconds and at least ``min_steps`` steps."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < timing.max_steps and (len(times) < timing.min_steps
                                            or time.perf_counter() - start < timing.budget_s):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(1e3 * (time.perf_counter() - t0))
    return times


def _proc_status_mb(field: str) -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1]) / 2**10  # kB


def memory_mb(device: torch.device) -> float:
    """Memory in use now: allocated CUDA memory, or the process's resident set."""
    return torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else _proc_status_mb("VmRSS")


def peak_memory_mb(device: torch.device) -> float:
    """Peak since the last `reset_peak_memory` (CUDA allocator peak, or Linux's VmHWM)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _proc_status_mb("VmHWM")


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM back to the current resident set


def measure(name: str, problem: Problem, device_name: str, timing: Timing) -> dict:
    """Run one case in this (fresh) process.

    Returns the median ms/step, the first step's seconds, and two peaks above the memory in use
    after the imports: over the whole case (compilation included) and over the timed steps only.
    """
    case, device = CASES[name], torch.device(device_name)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    try:
        case.prepare(device)
        importlib.import_module("spikeloc.task.stimulus")
        baseline = memory_mb(device)
        reset_peak_memory(device)
        step = case.build(problem, device)
        first = warm_up(step, sync, timing)
        peak_all = peak_memory_mb(device) - baseline
        reset_peak_memory(device)
        times = timed_steps(step, sync, timing)
    except ImportError as e:
        return {"skipped": f"not installed: {e.name}"}
    except Unavailable as e:
        return {"skipped": str(e)}
    return {"ms": statistics.median(times), "min_ms": min(times), "steps": len(times), "first_s": first,
            "peak_mb": peak_all, "steady_mb": peak_memory_mb(device) - baseline}


def run_isolated(name: str, problem: Problem, device: str, timing: Timing) -> dict:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(measure, name, problem, device, timing).result()
        except BrokenProcessPool:
            return {"skipped": "process died (out of memory?)"}
        except Exception as e:  # a failing case is reported in the table, the others still run
            return {"skipped": f"error: {type(e).__name__}: {e}"}


# ---------------------------------------------------------------- whole tutorial runs

# another user's training job: two threads of matrix products, what a shared 2-core machine sees
COMPETITOR = "import torch\ntorch.set_num_threads(2)\na = torch.randn(512, 512)\nwhile True:\n    a @ a\n"
NOTEBOOK_RUN = "notebook script (`benchmarks/notebook_tutorial.py`)"
# stage rows of a spikeloc run: (label, where it is recorded, its key there)
STAGES = [("start: imports, config, folder", "status", "start (imports, config, folder)"),
          ("data", "metrics", "data"),
          ("training, spiking", "metrics", "train_spiking"),
          ("training, membrane baseline", "metrics", "train_membrane"),
          ("evaluation", "metrics", "evaluate"),
          ("ideal observer", "metrics", "ideal_observer"),
          ("save, figures and report", "status", "save, figures and report")]
OUTSIDE = "outside training and evaluation (imports, figures, report: wall - metrics.json's stages)"


def run_command(command: list[str], env: dict | None = None, timeout: float = 900) -> dict:
    """``{"wall": seconds}`` of a finished command, or ``{"failed": why}``."""
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"failed": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"failed": f"exit {done.returncode}: {last}"}
    return {"wall": time.perf_counter() - start}


def tutorial_run(device: str, src: Path | None = None, args=(), env: dict | None = None) -> dict:
    """A whole ``spikeloc train --preset tutorial`` in a fresh process, with its stages' seconds (from the
    run folder); ``src``: another checkout's ``src`` folder, run instead of this one."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**(env or {}), **({"PYTHONPATH": str(src)} if src else {})}
        result = run_command([sys.executable, "-m", "spikeloc", "train", "--preset", "tutorial", "--device",
                              device, "--quiet", "--out", str(Path(tmp) / "run"), *args], env)
        for name, key in (("metrics", "metrics.json"), ("status", "status.json")):
            path = Path(tmp) / "run" / key
            if path.exists():
                result[name] = json.loads(path.read_text()).get("seconds", {})
    return result


def median_of(results: list[dict]) -> dict:
    """Median wall time and stage times over repeated runs (failures reported as the first failure)."""
    ok = [r for r in results if "wall" in r]
    if not ok:
        return results[0]
    out = {"wall": statistics.median(r["wall"] for r in ok), "runs": len(ok)}
    for _, where, key in STAGES:
        values = [r[where][key] for r in ok if key in r.get(where, {})]
        if values:
            out.setdefault(where, {})[key] = statistics.median(values)
    return out


def whole_runs(device: str, repeats: int, before: Path | None) -> dict[str, dict]:
    """The notebook's script and spikeloc's tutorial run (and ``before``'s), alternated ``repeats`` times on
    a quiet machine, then spikeloc beside a competing 2-thread job."""
    results: dict[str, list[dict]] = {NOTEBOOK_RUN: [], "spikeloc": []}
    if before:
        results["before"] = []
    for _ in range(repeats):
        notebook = [sys.executable, str(ROOT / "benchmarks" / "notebook_tutorial.py")]
        results[NOTEBOOK_RUN].append(run_command(notebook))
        results["spikeloc"].append(tutorial_run(device))
        if before:
            results["before"].append(tutorial_run(device, before))
    runs = {name: median_of(r) for name, r in results.items()}
    competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR])
    try:
        time.sleep(2)
        runs["loaded: spikeloc, threads auto"] = tutorial_run(device)
        spinning = "loaded: spikeloc --threads 2, GNU OpenMP default spin (GOMP_SPINCOUNT=300000, as before)"
        runs[spinning] = tutorial_run(device, args=("--threads", "2"), env={"GOMP_SPINCOUNT": "300000"})
        if before:
            runs["loaded: before"] = tutorial_run(device, before)
    finally:
        competitor.kill()
    return runs


def seconds(result: dict) -> str:
    return fmt(result["wall"]) if "wall" in result else result.get("failed", "n/a")


def whole_run_table(rows: list[Row], runs: dict[str, dict]) -> str:
    quiet = [name for name in runs if not name.startswith("loaded") and name != NOTEBOOK_RUN]
    lines = ["| stage (s) | " + " | ".join(quiet) + " |", "|---" * (len(quiet) + 1) + "|"]
    for label, where, key in STAGES:
        cells = [fmt(runs[n][where][key]) if key in runs[n].get(where, {}) else "n/a" for n in quiet]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    outside = [fmt(runs[n]["wall"] - sum(runs[n].get("metrics", {}).values())) if "wall" in runs[n] else "n/a"
               for n in quiet]
    lines.append(f"| {OUTSIDE} | {' | '.join(outside)} |")
    lines.append(f"| **whole run, wall** | {' | '.join(seconds(runs[n]) for n in quiet)} |")
    notebook = runs[NOTEBOOK_RUN]
    lines += ["", f"The notebook's script, whole run: {seconds(notebook)} s.", "",
              "| run | wall time (s) |", "|---|---|"]
    lines += [f"| {name} | {seconds(r)} |" for name, r in runs.items()]
    small = rows[0].problem if rows else None
    lines += [f"| training only, {row.name}, estimated (first step + {TUTORIAL_STEPS - 1} x median) "
              f"| {fmt(tutorial_seconds(row.result))} |"
              for row in rows if row.problem == small and row.name != FLOOR]
    return "\n".join(lines)


# ---------------------------------------------------------------- report

@dataclass
class Row:
    name: str
    problem: Problem
    result: dict


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def find(rows: list[Row], name: str, problem: Problem) -> dict:
    return next((r.result for r in rows if r.name == name and r.problem == problem), {})


def speedup(rows: list[Row], row: Row) -> float | None:
    """How many times faster than the notebook loop; with K models, than K separate notebook runs."""
    notebook = find(rows, NOTEBOOK, Problem(row.problem.batch, row.problem.hidden))
    if "ms" not in notebook or "ms" not in row.result:
        return None
    return notebook["ms"] * row.problem.models / row.result["ms"]


def tutorial_seconds(result: dict) -> float | None:
    """Training time of the tutorial (640 steps) from the step timings: the first step plus 639 medians."""
    if "ms" not in result:
        return None
    return result["first_s"] + (TUTORIAL_STEPS - 1) * result["ms"] / 1e3


def step_table(rows: list[Row]) -> str:
    lines = ["| case | batch x hidden | K | ms/step (median) | ms/step (min) | steps timed "
             "| speed-up vs notebook loop | first step (s) | peak MB, all | peak MB, timed steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        r, p = row.result, row.problem
        if "ms" not in r:
            lines.append(f"| {row.name} | {p.label} | {p.models} | {r['skipped']} | | | | | | |")
            continue
        cells = [fmt(r["ms"], 2), fmt(r["min_ms"], 2), str(r["steps"]), fmt(speedup(rows, row), 2),
                 fmt(r["first_s"], 2), fmt(r["peak_mb"], 0), fmt(r["steady_mb"], 0)]
        lines.append(f"| {row.name} | {p.label} | {p.models} | {' | '.join(cells)} |")
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("hit" if ok else "miss")


def ratio(a: dict, b: dict) -> float | None:
    return a["ms"] / b["ms"] if "ms" in a and "ms" in b else None


def floor_target(problem: Problem) -> float:
    """How close to the matmul floor the fused step should be: 1.5x for one model up to 256 x 128, else 2x."""
    return 1.5 if problem.models == 1 and problem.batch * problem.hidden <= 256 * 128 else 2.0


def targets(rows: list[Row], runs: dict[str, dict]) -> str:
    """The issue's targets, each with hit / miss / n/a."""
    lines = []
    if runs:
        r = (runs[NOTEBOOK_RUN]["wall"] / runs["spikeloc"]["wall"]
             if "wall" in runs[NOTEBOOK_RUN] and "wall" in runs["spikeloc"] else None)
        lines.append(f"- whole tutorial run >= 10x faster than the notebook's script: {fmt(r, 1, 'x')}: "
                     f"{verdict(None if r is None else r >= 10)}")
    for problem in dict.fromkeys(r.problem for r in rows if r.name == FAST):
        r, target = ratio(find(rows, FAST, problem), find(rows, FLOOR, problem)), floor_target(problem)
        lines.append(f"- within {target:g}x of the matmul floor at {problem.label}, K={problem.models}: "
                     f"{fmt(r, 2, ' x')} the floor: {verdict(None if r is None else r <= target)}")
    if not rows:
        return "\n".join(lines)
    small = rows[0].problem
    fast = find(rows, FAST, small)
    for other in ("snnTorch", "Norse"):
        r = ratio(find(rows, other, small), fast)
        lines.append(f"- >= 10x faster than {other} (eager) at {small.label}: {fmt(r, 1, 'x')}: "
                     f"{verdict(None if r is None else r >= 10)}")
    fast_run = tutorial_seconds(fast)
    for other in ("notebook loop + compile", "Norse + compile"):
        other_run = tutorial_seconds(find(rows, other, small))
        ok = None if fast_run is None or other_run is None else fast_run < other_run
        lines.append(f"- faster than {other} over a tutorial's {TUTORIAL_STEPS} steps, compilation included, "
                     f"at {small.label}: {fmt(fast_run, 1, ' s')} vs {fmt(other_run, 1, ' s')}: "
                     f"{verdict(ok)}")
    return "\n".join(lines)


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine(device: str, threads: int) -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    cpu = names[0] if names else platform.processor() or "unknown"
    lines = [f"- CPU: {cpu}, {os.cpu_count()} logical cores, threads per case {threads or 'default'} "
             f"(torch's default here: {torch.get_num_threads()})",
             f"- load average (1 min) at start: {os.getloadavg()[0]:.2f}",
             f"- Python {platform.python_version()}, {platform.platform()}",
             "- " + ", ".join(f"{p} {version(p)}" for p in ("torch", "numba", "numpy", "snntorch", "norse"))]
    if device == "cuda":
        lines.append(f"- GPU: {torch.cuda.get_device_name()}")
    return "\n".join(lines)


def command() -> str:
    python = Path(sys.executable)
    python = python.relative_to(ROOT) if python.is_relative_to(ROOT) else python
    script = Path(sys.argv[0]).resolve()
    script = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return shlex.join([str(python), str(script), *sys.argv[1:]])


def report(rows: list[Row], runs: dict[str, dict], args, machine_info: str) -> str:
    parts = [f"Generated {time.strftime('%Y-%m-%d %H:%M')} by `{command()}` (run from the repository root)."]
    if args.note:
        parts.append(f"**{args.note}**")
    if rows:
        parts += ["### Per training step", step_table(rows)]
    if runs:
        parts += [f"### Whole `tutorial` run (median of {args.repeats}, alternated; then beside a "
                  "2-thread job)", whole_run_table(rows, runs)]
    load = f"- load average (1 min) at the end: {os.getloadavg()[0]:.2f}"
    parts += ["### Targets", targets(rows, runs), "### Machine", f"{machine_info}\n{load}"]
    return "\n\n".join(parts)


def write_doc(text: str, path: Path) -> None:
    """Replace the generated part of ``path`` (between the bench markers), keeping the prose around it."""
    old = path.read_text() if path.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    head, _, rest = old.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


# ---------------------------------------------------------------- command line

def problems(args) -> list[tuple[str, Problem]]:
    sizes = [Problem(*map(int, s.split("x"))) for s in args.sizes.split(",")]
    selected = [n for n in CASES if not args.cases or any(c in n for c in args.cases.split(","))]
    if args.quick:
        selected = [n for n in selected if not CASES[n].compiled]
    jobs = [(n, p) for p in sizes for n in selected]
    models = [int(k) for k in args.models.split(",") if k]
    return jobs + [(n, Problem(sizes[0].batch, sizes[0].hidden, k))
                   for k in models for n in selected if CASES[n].vectorised]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="64x30,256x128,256x1024", help="batch x hidden, comma separated")
    ap.add_argument("--models", default="16,64", help="K vectorised models, at the first size ('' for none)")
    ap.add_argument("--cases", default="", help="only the cases whose names contain one of these (a,b)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--budget", type=float, default=3.0,
                    help="seconds of timed steps per case (at least 5 steps)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch/OpenMP and numba threads per case (default: theirs, one per core); 1 is "
                         "far steadier on a machine shared with other work")
    ap.add_argument("--no-whole-run", action="store_true", help="skip the end-to-end tutorial runs")
    ap.add_argument("--repeats", type=int, default=3, help="whole runs of each kind, alternated (median)")
    ap.add_argument("--before", type=Path, default=None,
                    help="src folder of another spikeloc checkout; its whole tutorial run is timed beside")
    ap.add_argument("--note", default="", help="a line put at the top of the report")
    ap.add_argument("--out", type=Path, default=DOC, help="Markdown file to update")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: smallest size, no K, no compilation, no whole runs, prints only")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.models, args.budget, args.no_whole_run = args.sizes.split(",")[0], "", 0.0, True
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    # compilation time is part of what is measured: no inductor cache from an earlier run
    os.environ["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"
    if args.threads:  # read by every case's fresh process and by the whole runs
        os.environ.update(OMP_NUM_THREADS=str(args.threads), NUMBA_NUM_THREADS=str(args.threads))
    machine_info = machine(args.device, args.threads)  # load average before the benchmark adds its own
    timing = Timing(args.budget, 2 if args.quick else 5, 200, warmup=1 if args.quick else 2)
    rows = []
    for name, problem in problems(args):
        result = run_isolated(name, problem, args.device, timing)
        rows.append(Row(name, problem, result))
        shown = f"{result['ms']:.2f} ms/step" if "ms" in result else result["skipped"]
        print(f"{name:>24} {problem.label:>9} K={problem.models:<3} {shown}", flush=True)
    runs = {} if args.no_whole_run else whole_runs(args.device, args.repeats, args.before)
    text = report(rows, runs, args, machine_info)
    print("\n" + text)
    if not args.quick:
        write_doc(text, args.out)
        print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
