"""Evaluation: accuracy, mean absolute error, continuous error, confusion matrix.

All metrics are per model of a stack (``models`` axis first) and computed on the whole set.
The continuous estimate is the median of the model's posterior over IPD, taken as uniform
within each output bin: it minimises the expected absolute error under that posterior.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .config import StimulusConfig
from .stimulus import Dataset, continuise, discretise
from .train import log_probs


@torch.no_grad()
def bin_probabilities(model, spikes: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Posterior over output bins, ``(models, n, bins)``, for uint8/float spikes ``(n, steps, inputs)``."""
    out = []
    for start in range(0, len(spikes), batch_size):
        scores, _ = model(spikes[start:start + batch_size].float())
        out.append(log_probs(scores).exp())
    return torch.cat(out, dim=1)


def class_probabilities(bin_probs: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Sum the fine output bins of each class: ``(..., bins)`` -> ``(..., num_classes)``."""
    return bin_probs.unflatten(-1, (num_classes, -1)).sum(-1)


def posterior_median(bin_probs: torch.Tensor, cfg: StimulusConfig) -> torch.Tensor:
    """Median IPD (rad) of a piecewise-uniform posterior over equal bins spanning the IPD range."""
    lo, hi = cfg.ipd_range
    bins = bin_probs.shape[-1]
    p = bin_probs.double() / bin_probs.double().sum(-1, keepdim=True)
    cdf = p.cumsum(-1)
    k = torch.searchsorted(cdf, torch.full_like(cdf[..., :1], 0.5)).clamp(max=bins - 1)
    before = torch.where(k > 0, cdf.gather(-1, (k - 1).clamp(min=0)), torch.zeros_like(k, dtype=cdf.dtype))
    frac = ((0.5 - before) / p.gather(-1, k).clamp(min=1e-300)).clamp(0, 1)
    return (lo + (k + frac) * (hi - lo) / bins).squeeze(-1)


def metrics_from_probabilities(bin_probs: torch.Tensor, ipd: torch.Tensor, cfg: StimulusConfig) -> list[dict]:
    """Per-model metrics from posteriors ``(models, n, bins)`` and true IPDs (rad) ``(n,)``."""
    true_class = discretise(ipd, cfg).cpu()
    probs = class_probabilities(bin_probs.cpu(), cfg.num_classes)
    estimate = probs.argmax(-1)
    median = posterior_median(bin_probs.cpu(), cfg)
    deg = 180 / math.pi
    ipd64 = ipd.double().cpu()
    results = []
    for k in range(probs.shape[0]):
        confusion = np.zeros((cfg.num_classes, cfg.num_classes))
        np.add.at(confusion, (estimate[k].numpy(), true_class.numpy()), 1)
        confusion /= np.maximum(confusion.sum(0, keepdims=True), 1)  # normalised per true class
        results.append({
            "accuracy": (estimate[k] == true_class).double().mean().item(),
            "mae_deg": ((continuise(estimate[k], cfg) - ipd64).abs().mean() * deg).item(),
            "mae_continuous_deg": ((median[k] - ipd64).abs().mean() * deg).item(),
            "confusion": confusion.tolist(),
            "ipd_estimate_deg": (continuise(estimate[k], cfg) * deg).numpy(),
            "ipd_true_deg": (ipd64 * deg).numpy(),
        })
    return results


def evaluate(model, data: Dataset, cfg: StimulusConfig) -> list[dict]:
    """Metrics of every model of the stack on ``data``; also the chance level."""
    results = metrics_from_probabilities(bin_probabilities(model, data.spikes), data.ipd, cfg)
    for r in results:
        r["chance"] = 1 / cfg.num_classes
    return results


def summary(results: list[dict], key: str) -> dict:
    """Mean, standard deviation, min and max of one metric across the models of a stack."""
    values = np.array([r[key] for r in results])
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()), "max": float(values.max())}


__all__ = ["bin_probabilities", "class_probabilities", "evaluate", "metrics_from_probabilities",
           "posterior_median", "summary"]
