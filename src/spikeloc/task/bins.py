"""IPD bins: from an IPD to its class and back, and from a posterior over bins to an estimate.

The IPD range ``[lo, hi]`` (``StimulusConfig.ipd_range``, rad) is cut into ``bins`` equal bins:
``num_classes`` classes, or ``num_classes * bins_per_class`` fine bins for a finer posterior.
"""

from __future__ import annotations

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
    return lo + (index.double() + 0.5) * (hi - lo) / bins


def bin_centres(cfg: StimulusConfig, bins: int) -> torch.Tensor:
    """Midpoints (rad, float64) of ``bins`` equal bins spanning the IPD range, ``(bins,)``."""
    return continuise(torch.arange(bins), cfg, bins)


def log_probs(scores: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over the output bins (last axis) of class scores, e.g. ``(K, B, C)``."""
    return F.log_softmax(scores, dim=-1)


def class_probabilities(bin_probs: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Sum the fine output bins of each class: ``(..., bins)`` -> ``(..., num_classes)``."""
    return bin_probs.unflatten(-1, (num_classes, -1)).sum(-1)  # (..., classes, bins per class) summed


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
