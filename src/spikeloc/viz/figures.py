"""Every figure of a run, written into its folder, and the report that embeds them."""

from __future__ import annotations

from pathlib import Path

from ..errors import SpikelocError
from ..runs.pipeline import datasets, evaluate_splits, stage_generator
from ..runs.run import Run
from ..task.stimulus import random_ipd_input_signal
from . import plots
from .report import write_report


def run_figures(run: Run) -> dict:
    """The figures of ``run`` by name (matplotlib figures, not yet written).

    Evaluation figures use ``run.results`` when the run was just trained, else the run's own
    train and test sets, drawn again from its seed.
    """
    cfg = run.config
    results = run.results or evaluate_splits(run, datasets(cfg, run.device))
    examples = random_ipd_input_signal(cfg.plot.examples, cfg.stimulus,
                                       stage_generator(cfg.seed, "examples", run.device))
    figures = {"stimulus examples": plots.stimulus_examples(examples, cfg.stimulus, cfg.plot.examples)}
    if run.history:
        histories, chance = {}, {}
        for kind in run.history.keys() & run.models.keys():
            level = run.models[kind].uniform_guess_loss(cfg.train)
            if level is None:  # a KL per step, not a label NLL: no uniform-guess level
                histories[f"{kind} (KL per step to the observer)"] = run.history[kind]
            else:
                histories[kind], chance[kind] = run.history[kind], level
        figures["training loss"] = plots.loss_curves(histories, chance, cfg.train.readout_only_epochs)
    for kind, splits in results.items():
        for split, per_model in splits.items():
            title = f"{kind} model, {split} set"
            first = per_model[0]  # model 0 of the stack
            figures[title] = plots.ipd_errors(first.ipd_true_deg, first.ipd_estimate_deg, first.confusion,
                                              cfg.stimulus, title)
    network = run.models["spiking"].member(0)
    W1, W2 = network.W1[0].detach().cpu().numpy(), network.W2[0].detach().cpu().numpy()  # (I, H), (H, C)
    figures["weights"] = plots.weights(W1, W2, cfg.plot.th_percent)
    figures["hidden unit weights"] = plots.hidden_unit_weights(W1, cfg.stimulus)
    return figures


def draw(run: Run, out: str | Path) -> Path:
    """Every figure of the run into ``out/figures`` and the HTML report ``out/report.html``; returns
    its path."""
    out = Path(out)
    if run.metrics is None:  # a folder whose metrics.json is gone: refuse rather than write an empty report
        raise SpikelocError(f"cannot write the report of {run.path or out}: it has no metrics.json")
    paths = {name: plots.save(fig, out / "figures" / (name.replace(",", "").replace(" ", "_") + ".png"))
             for name, fig in run_figures(run).items()}
    return write_report(out / "report.html", run.config, run.metrics, paths)
