"""A trained run's robustness curves: test accuracy as its input spikes are deleted, and as they are
jittered, level by level (``eval.robustness``; the perturbations are :mod:`spikeloc.task.perturb`'s).

Every level perturbs the same clean test set (each model of a stack its own, as in its metrics), with
draws of its own (stage ``robustness deletion 0.2`` and so on), so a curve is reproducible and its levels
differ only by the perturbation.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.schema import RunConfig
from ..task.perturb import Perturbation, perturb
from ..task.stimulus import Dataset
from .pipeline import evaluate_members, member_datasets, stage_generator
from .run import Run

DELETION = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # fraction of the spikes removed
JITTER_MS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0)  # standard deviation of a spike's shift


@dataclass(frozen=True)
class Curve:
    """Accuracy of every model of each kind at each level: ``accuracy[kind][level index][model]``."""

    name: str  # what varies, with its unit: "spike deletion" or "spike jitter (ms)"
    levels: tuple[float, ...]
    accuracy: dict[str, list[list[float]]]


def _clean(cfg: RunConfig) -> RunConfig:
    """``cfg`` without test-spike perturbations: the curves start from the clean test set."""
    return cfg.model_copy(update={"eval": cfg.eval.model_copy(update={
        "spike_deletion": 0.0, "spike_jitter_ms": 0.0, "spike_background_hz": 0.0})})


def robustness_curves(run: Run) -> list[Curve]:
    """Test accuracy of every model kind of ``run`` against spike deletion and against spike jitter."""
    cfg = _clean(run.config)
    tests = member_datasets(cfg, run.device)["test"]
    seeds = [cfg.seed + k for k in range(len(tests))]
    stim = cfg.stimulus

    def accuracy(name: str, level: float, p: Perturbation) -> dict[str, list[float]]:
        sets = tests if p.none else [
            Dataset(d.ipd, perturb(d.spikes, p, stage_generator(seed, f"robustness {name} {level:g}",
                                                                run.device)), d.offset)
            for d, seed in zip(tests, seeds, strict=True)]
        return {kind: [r.accuracy for r in evaluate_members(m, sets, stim)] for kind, m in run.models.items()}

    curves = []
    for name, levels, make in (
            ("spike deletion", DELETION, lambda v: Perturbation(deletion=v)),
            ("spike jitter (ms)", JITTER_MS, lambda v: Perturbation(jitter_steps=v * 1e-3 / stim.dt))):
        per_level = [accuracy(name, v, make(v)) for v in levels]
        curves.append(Curve(name, levels, {kind: [lv[kind] for lv in per_level] for kind in run.models}))
    return curves
