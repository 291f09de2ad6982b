"""IPD bins: from an IPD to its class and back, and from a posterior over bins to an estimate.

The IPD range ``[lo, hi]`` (``StimulusConfig.ipd_range``, rad) is cut into ``bins`` equal bins:
``num_classes`` classes, or ``num_classes * bins_per_class`` fine bins for a finer posterior.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config.schema import StimulusConfig


def discretise(ipd: torch.Tensor, cfg: StimulusConfig, bins: int | None = None) -> torch.Tensor:
    """IPD (rad) -> bin index in ``[0, bins)`` (default ``num_classes``): the notebook's floor, clamped."""
    bins = bins or cfg.num_classes
    lo, hi = cfg.ipd_range
    idx = ((ipd - lo) * bins / (hi - lo)).long()
    return idx.clamp(0, bins - 1)


def continuise(index: torch.Tensor, cfg: StimulusConfig, bins: int | None = None) -> torch.Tensor:
    """Bin index -> IPD at the bin's midpoint (rad, float64)."""
    bins = bins or cfg.num_classes
    lo, hi = cfg.ipd_range
    return lo + (index.double() + 0.5) / bins * (hi - lo)


def bin_centres(cfg: StimulusConfig, bins: int) -> torch.Tensor:
    """Midpoints (rad, float64) of ``bins`` equal bins spanning the IPD range, ``(bins,)``: where the observer
    templates and the per-step observer score an IPD bin.

    The same values as :func:`continuise` up to the last bit (the product and the division come in
    the other order); each keeps the order the models and metrics of earlier releases were made with,
    so their numbers reproduce exactly.
    """
    lo, hi = cfg.ipd_range
    return lo + (torch.arange(bins, dtype=torch.float64) + 0.5) * (hi - lo) / bins


def log_probs(scores: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over the output bins (last axis) of class scores, e.g. ``(K, B, C)``."""
    return F.log_softmax(scores, dim=-1)


def class_probabilities(bin_probs: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Sum the fine output bins of each class: ``(..., bins)`` -> ``(..., num_classes)``."""
    return bin_probs.unflatten(-1, (num_classes, -1)).sum(-1)  # (..., classes, bins per class) summed


def most_probable_class(scores: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The class ``(...)`` whose fine bins hold the most posterior probability, for scores ``(..., bins)``."""
    return class_probabilities(log_probs(scores).exp(), num_classes).argmax(-1)


def posterior_median(bin_probs: torch.Tensor, cfg: StimulusConfig) -> torch.Tensor:
    """Median IPD (rad) of a posterior that is uniform within each of its equal bins, ``(...)`` for
    ``(..., bins)``.

    It minimises the expected absolute error under that posterior: the continuous estimate behind
    the continuous MAE. Probabilities need not be normalised.
    """
    lo, hi = cfg.ipd_range
    bins = bin_probs.shape[-1]
    p = bin_probs.double() / bin_probs.double().sum(-1, keepdim=True)
    cdf = p.cumsum(-1)
    k = torch.searchsorted(cdf, torch.full_like(cdf[..., :1], 0.5)).clamp(max=bins - 1)
    before = torch.where(k > 0, cdf.gather(-1, (k - 1).clamp(min=0)), torch.zeros_like(k, dtype=cdf.dtype))
    frac = ((0.5 - before) / p.gather(-1, k).clamp(min=1e-300)).clamp(0, 1)
    return (lo + (k + frac) * (hi - lo) / bins).squeeze(-1)


@dataclass(frozen=True)
class Outcome:
    """Per-sample outcome of posteriors over bins against the true IPDs, ``(..., n)`` each."""

    estimate: torch.Tensor  # the most probable class (fine bins summed per class)
    correct: torch.Tensor  # 1.0 where it is the true IPD's class, float64
    midpoint_error: torch.Tensor  # |estimated class midpoint - true IPD| (rad, float64)
    median_error: torch.Tensor  # |posterior median - true IPD| (rad, float64): the continuous error


def outcome(bin_probs: torch.Tensor, ipd: torch.Tensor, cfg: StimulusConfig) -> Outcome:
    """The :class:`Outcome` of posteriors ``(..., n, bins)`` for true IPDs ``(n,)`` (rad), on the CPU.

    The true class is taken at the precision ``ipd`` comes in, the errors in float64.
    """
    bin_probs, true_class, ipd64 = bin_probs.cpu(), discretise(ipd.cpu(), cfg), ipd.double().cpu()
    estimate = class_probabilities(bin_probs, cfg.num_classes).argmax(-1)
    return Outcome(estimate, (estimate == true_class).double(), (continuise(estimate, cfg) - ipd64).abs(),
                   (posterior_median(bin_probs, cfg) - ipd64).abs())
