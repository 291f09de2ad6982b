"""Every figure of a run, written into its folder, and the report that embeds them.

A figure is first a :class:`FigureSpec`: the plotting function of :mod:`.plots` and its NumPy
arguments. Building and rendering the specs takes seconds of matplotlib, and the figures are
independent, so :func:`draw` renders them in worker processes forked from this one, one per CPU thread
the run may use, and writes the PNGs itself (one writer per folder).
Where ``fork`` is not available (macOS, Windows) or one thread is asked for, they are rendered here.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from ..analysis.study import FOLDER as ANALYSIS_FOLDER
from ..analysis.study import Analysis, analysis_stimulus
from ..errors import SpikelocError
from ..models.delays import delays_ms
from ..runs.files import write_atomic
from ..runs.pipeline import evaluate_splits, member_datasets, stage_generator
from ..runs.resources import resolve_threads
from ..runs.robustness import robustness_curves
from ..runs.run import Run
from ..task.stimulus import phase_delays, random_ipd_input_signal
from . import analysis_plots, plots
from .report import write_report


@dataclass(frozen=True)
class FigureSpec:
    """A figure to draw: ``plot(*args)`` returns it; the arguments are NumPy arrays and plain values.
    ``cost``: its rendering time relative to a simple figure (the costliest are started first)."""

    plot: Callable[..., Figure]
    args: tuple
    cost: float = 1.0

    def figure(self) -> Figure:
        return self.plot(*self.args)

    def png(self) -> bytes:
        return plots.png(self.figure())


def analysis_specs(run: Run, analysis: Analysis) -> dict[str, FigureSpec]:
    """The figures of a hidden-unit analysis of ``run`` by name, not yet drawn."""
    cfg, a = run.config, analysis
    examples = random_ipd_input_signal(RASTER_EXAMPLES, analysis_stimulus(cfg),
                                       stage_generator(cfg.seed, "analysis examples", run.device))
    hidden = run.hidden_spikes(examples.spikes, a.model)
    return {
        "hidden unit rates": FigureSpec(analysis_plots.unit_rates, (a,)),
        "hidden unit tuning curves": FigureSpec(analysis_plots.tuning_curves, (a,), cost=4),
        "preferred IPDs": FigureSpec(analysis_plots.preferred_ipds, (a,)),
        "output class tuning": FigureSpec(analysis_plots.output_tuning, (a, cfg.stimulus)),
        "ablation": FigureSpec(analysis_plots.ablation, (a, run.metrics.chance if run.metrics else
                                                         1 / cfg.stimulus.num_classes)),
        "hidden layer rasters": FigureSpec(analysis_plots.hidden_rasters, (
            examples.spikes.cpu().numpy(), hidden, examples.ipd.cpu().numpy(), cfg.stimulus,
            a.sign if a.dale else None), cost=2),
        "error by IPD": FigureSpec(analysis_plots.error_by_ipd, (a,)),
    }


def figure_specs(run: Run) -> dict[str, FigureSpec]:
    """The figures of ``run`` by name, in the report's order, not yet drawn.

    Evaluation figures use ``run.results`` when the run was just trained, else the run's own
    train and test sets, drawn again from its seed.
    """
    cfg = run.config
    results = run.results or evaluate_splits(run, member_datasets(cfg, run.device))
    examples = random_ipd_input_signal(cfg.plot.examples, cfg.stimulus,
                                       stage_generator(cfg.seed, "examples", run.device))
    specs = {"stimulus examples": FigureSpec(plots.stimulus_examples, (
        examples.spikes.cpu().numpy(), examples.ipd.cpu().numpy(), cfg.stimulus, cfg.plot.examples), cost=2)}
    if run.history:
        histories, chance = {}, {}
        for kind in [k for k in run.history if k in run.models]:  # in training order: stable colours
            level = run.models[kind].uniform_guess_loss(cfg.train)
            if level is None:  # a KL per step, not a label NLL: no uniform-guess level
                histories[f"{kind} (KL per step to the observer)"] = run.history[kind]
            else:
                histories[kind], chance[kind] = run.history[kind], level
        specs["training loss"] = FigureSpec(plots.loss_curves,
                                            (histories, chance, cfg.train.readout_only_epochs))
    for kind, splits in results.items():
        for split, per_model in splits.items():
            title = f"{kind} model, {split} set"
            first = per_model[0]  # model 0 of the stack
            specs[title] = FigureSpec(plots.ipd_errors, (first.ipd_true_deg, first.ipd_estimate_deg,
                                                         first.confusion, cfg.stimulus, title))
    network = run.models["spiking"].member(0)
    W1, W2 = (w[0].detach().cpu().numpy() for w in network.weights())  # (I, H), (H, C)
    specs["weights"] = FigureSpec(plots.weights, (W1, W2, cfg.plot.th_percent), cost=2)
    specs["hidden unit weights"] = FigureSpec(plots.hidden_unit_weights,
                                              (W1, phase_delays(cfg.stimulus).numpy()), cost=3)
    if network.taps:
        dt = cfg.stimulus.dt
        specs["learned delays"] = FigureSpec(plots.learned_delays, (
            delays_ms(network.W1_delay[0], dt).cpu().numpy(), W1,
            delays_ms(network.W2_delay[0], dt).cpu().numpy(), W2, cfg.stimulus.anf_per_ear,
            cfg.model.max_delay_ms), cost=2)
    if cfg.eval.robustness:
        chance = 1 / cfg.stimulus.num_classes
        specs["robustness"] = FigureSpec(plots.robustness, (robustness_curves(run), chance))
    return specs


def run_figures(run: Run) -> dict[str, Figure]:
    """The figures of ``run`` by name, as matplotlib figures (drawn here, not yet written)."""
    return {name: spec.figure() for name, spec in figure_specs(run).items()}


def analysis_figures(run: Run, analysis: Analysis) -> dict[str, Figure]:
    """The figures of a hidden-unit ``analysis`` of ``run`` by name, as matplotlib figures."""
    return {name: spec.figure() for name, spec in analysis_specs(run, analysis).items()}


RASTER_EXAMPLES = 4  # stimuli whose hidden-layer spikes the analysis draws
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def _figure_worker(parent: int) -> None:
    """Start of a forked figure worker: it dies with the run that forked it (it shares the run folder's
    lock, which must not outlive the run) and leaves Ctrl-C to the run."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):  # Linux only; elsewhere the pool's own shutdown
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the run died before the line above
        os._exit(1)


def render(specs: dict[str, FigureSpec], workers: int = 1) -> dict[str, bytes]:
    """PNG bytes of every spec, rendered by up to ``workers`` forked processes (here, with 1, or if a
    worker dies)."""
    workers = min(workers, len(specs))
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        # fork: the workers start with matplotlib loaded and draw only NumPy data (never torch)
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_figure_worker, initargs=(os.getpid(),))
        try:
            with pool:
                order = sorted(specs, key=lambda name: -specs[name].cost)  # the costliest first
                futures = {name: pool.submit(specs[name].png) for name in order}
                return {name: futures[name].result() for name in specs}
        except BrokenProcessPool:  # a worker was killed (out of memory?): draw here instead
            pass
    return {name: spec.png() for name, spec in specs.items()}


def figure_file(name: str) -> str:
    return name.replace(",", "").replace(" ", "_") + ".png"


def draw(run: Run, out: str | Path, workers: int | None = None, analysis: Analysis | None = None) -> Path:
    """Every figure of the run into ``out/figures`` (and of its hidden-unit ``analysis``, if given, into
    ``out/analysis``) and the HTML report ``out/report.html``; returns its path. ``workers``: processes
    that render the figures (default: the run's recorded CPU threads)."""
    out = Path(out)
    if run.metrics is None:  # a folder whose metrics.json is gone: refuse rather than write an empty report
        raise SpikelocError(f"cannot write the report of {run.path or out}: it has no metrics.json")
    specs = figure_specs(run)
    extra = analysis_specs(run, analysis) if analysis is not None else {}
    pngs = render(specs | {f"analysis/{name}": spec for name, spec in extra.items()},
                  workers or resolve_threads(run.config.threads))
    (out / "figures").mkdir(parents=True, exist_ok=True)
    paths = {name: write_atomic(out / "figures" / figure_file(name), pngs[name]) for name in specs}
    if extra:
        (out / ANALYSIS_FOLDER).mkdir(exist_ok=True)
    analysis_paths = {name: write_atomic(out / ANALYSIS_FOLDER / figure_file(name), pngs[f"analysis/{name}"])
                      for name in extra}
    return write_report(out / "report.html", run.config, run.metrics, paths, analysis, analysis_paths)
