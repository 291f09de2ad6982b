"""Evaluation: accuracy, mean absolute error, continuous error and confusion matrix, and the metrics of a run.

Per model of a stack and per set, :func:`evaluate` gives a :class:`ModelResult` (with the per-sample
estimates the figures need). Over the models of a stack they become a :class:`SplitMetrics` of
:class:`Summary` values, and a run's are a :class:`RunMetrics`: the one place that knows the
layout of ``metrics.json`` (:meth:`RunMetrics.to_json`, :meth:`RunMetrics.from_json`).

The continuous estimate is the median of the model's posterior over IPD, taken as uniform within
each output bin (:func:`spikeloc.task.bins.posterior_median`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..config.schema import StimulusConfig
from ..task.bins import continuise, discretise, log_probs, outcome
from ..task.stimulus import Dataset

METRICS = ("accuracy", "mae_deg", "mae_continuous_deg")


@dataclass(frozen=True)
class ModelResult:
    """One model's results on one set of ``n`` samples."""

    accuracy: float  # fraction of samples in the right class
    mae_deg: float  # mean |estimated class midpoint - true IPD| (deg)
    mae_continuous_deg: float  # mean |posterior median - true IPD| (deg)
    confusion: np.ndarray  # (classes, classes): [estimated, true], each column (true class) normalised to 1
    ipd_estimate_deg: np.ndarray  # (n,) the estimated class's midpoint
    ipd_true_deg: np.ndarray  # (n,)


@torch.no_grad()
def bin_probabilities(model, spikes: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Posterior over output bins, ``(K, n, bins)``, for spikes ``(n, T, I)`` of any dtype."""
    out = []
    for start in range(0, len(spikes), batch_size):
        scores = model(spikes[start:start + batch_size].float())[0]  # (K, B, bins)
        out.append(log_probs(scores).exp())
    return torch.cat(out, dim=1)


def results_from_probabilities(bin_probs: torch.Tensor, ipd: torch.Tensor,
                               cfg: StimulusConfig) -> list[ModelResult]:
    """Per-model results from posteriors ``(K, n, bins)`` and true IPDs (rad) ``(n,)``."""
    true_class = discretise(ipd, cfg).cpu()
    out = outcome(bin_probs, ipd, cfg)  # (K, n) each
    deg = 180 / math.pi
    results = []
    for k in range(out.estimate.shape[0]):
        confusion = np.zeros((cfg.num_classes, cfg.num_classes))
        np.add.at(confusion, (out.estimate[k].numpy(), true_class.numpy()), 1)
        confusion /= np.maximum(confusion.sum(0, keepdims=True), 1)  # normalised per true class
        results.append(ModelResult(
            accuracy=out.correct[k].mean().item(),
            mae_deg=(out.midpoint_error[k].mean() * deg).item(),
            mae_continuous_deg=(out.median_error[k].mean() * deg).item(),
            confusion=confusion,
            ipd_estimate_deg=(continuise(out.estimate[k], cfg) * deg).numpy(),
            ipd_true_deg=(ipd.double().cpu() * deg).numpy(),
        ))
    return results


def evaluate(model, data: Dataset, cfg: StimulusConfig) -> list[ModelResult]:
    """Results of every model of the stack on ``data`` (any model returning ``(scores, ...)``, the
    observer too)."""
    return results_from_probabilities(bin_probabilities(model, data.spikes), data.ipd, cfg)


# ---------------------------------------------------------------- over a stack, and a run's metrics.json

@dataclass(frozen=True)
class Summary:
    """One metric over the models of a stack: mean, sample standard deviation (0 for one), range, values."""

    mean: float
    sd: float
    min: float
    max: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values) -> Summary:
        v = np.asarray(values, dtype=float)
        return cls(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, float(v.min()),
                   float(v.max()), tuple(float(x) for x in v))

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "sd": self.sd, "min": self.min, "max": self.max,
                "values": list(self.values)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Summary:
        return cls(float(d["mean"]), float(d["sd"]), float(d["min"]), float(d["max"]),
                   tuple(float(x) for x in d.get("values", [d["mean"]])))


@dataclass(frozen=True)
class SplitMetrics:
    """The metrics of a stack on one set (``run.metrics.test.accuracy.mean``)."""

    accuracy: Summary
    mae_deg: Summary
    mae_continuous_deg: Summary

    @classmethod
    def of(cls, results: list[ModelResult]) -> SplitMetrics:
        return cls(*(Summary.of([getattr(r, key) for r in results]) for key in METRICS))

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, key).to_json() for key in METRICS}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SplitMetrics:
        return cls(*(Summary.from_json(d[key]) for key in METRICS))


@dataclass(frozen=True)
class KindMetrics:
    """The metrics of one model kind (or the ideal observer) on the sets it was evaluated on."""

    train: SplitMetrics | None = None
    test: SplitMetrics | None = None

    def splits(self) -> dict[str, SplitMetrics]:
        return {name: s for name, s in (("train", self.train), ("test", self.test)) if s is not None}

    def to_json(self) -> dict[str, Any]:
        return {name: s.to_json() for name, s in self.splits().items()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> KindMetrics:
        return cls(**{name: SplitMetrics.from_json(d[name]) for name in ("train", "test") if name in d})


@dataclass(frozen=True)
class RunMetrics:
    """What ``metrics.json`` holds. ``kinds`` maps a model kind (``spiking``, ``membrane``) to its metrics;
    :attr:`train` and :attr:`test` are the spiking network's."""

    kinds: dict[str, KindMetrics]
    chance: float  # accuracy of a uniform guess, 1 / num_classes
    test_samples: int
    models_trained: int | None = None  # K
    seeds: tuple[int, ...] | None = None  # each model's seed: its data and initialisation
    ideal_observer: KindMetrics | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each stage
    test_seed: int | None = None  # seed of a fresh test set (``spikeloc evaluate``)

    @property
    def train(self) -> SplitMetrics | None:
        return self.kinds["spiking"].train

    @property
    def test(self) -> SplitMetrics | None:
        return self.kinds["spiking"].test

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"models": {kind: m.to_json() for kind, m in self.kinds.items()},
                               "chance": self.chance}
        if self.models_trained is not None:
            out["models_trained"] = self.models_trained
        if self.seeds is not None:
            out["seeds"] = list(self.seeds)
        out["test_samples"] = self.test_samples
        if self.ideal_observer is not None:
            out["ideal_observer"] = self.ideal_observer.to_json()
        if self.seconds:
            out["seconds"] = dict(self.seconds)
        if self.test_seed is not None:
            out["test_seed"] = self.test_seed
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunMetrics:
        """Read what :meth:`to_json` wrote (this release or an earlier one); KeyError or TypeError
        if it is not that."""
        ideal = d.get("ideal_observer")
        return cls(kinds={kind: KindMetrics.from_json(m) for kind, m in d["models"].items()},
                   chance=float(d["chance"]), test_samples=int(d["test_samples"]),
                   models_trained=d.get("models_trained"),
                   seeds=tuple(d["seeds"]) if "seeds" in d else None,
                   ideal_observer=KindMetrics.from_json(ideal) if ideal is not None else None,
                   seconds={k: float(v) for k, v in d.get("seconds", {}).items()},
                   test_seed=d.get("test_seed"))
