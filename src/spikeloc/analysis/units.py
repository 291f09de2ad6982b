"""What the hidden units of a trained network do: firing rates, IPD tuning and ablation.

Functions of one network (a stack of one, ``network.member(k)``), its hidden spikes ``(n, T, H)`` and the
true IPDs. Ablating a unit removes its row of ``W2``: the network is feedforward, so that is the same as
silencing the unit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..config.schema import StimulusConfig
from ..models.network import SpikingNetwork
from ..task.bins import discretise, most_probable_class

SILENT_HZ = 1.0  # a unit firing less than this (mean over the stimuli) counts as silent
CHUNK = 256  # samples per pass through the readout


def rates_hz(hidden: torch.Tensor, dt: float) -> np.ndarray:
    """Firing rate of each unit on each stimulus (Hz), ``(n, H)``, for hidden spikes ``(n, T, H)``."""
    steps = hidden.shape[1]
    return hidden.sum(1, dtype=torch.float64).cpu().numpy() / (steps * dt)


def binned_mean(values: np.ndarray, ipd_deg: np.ndarray, edges_deg: np.ndarray) -> np.ndarray:
    """Mean of ``values`` ``(n, ...)`` over the stimuli in each IPD bin, ``(bins, ...)``; NaN for an empty
    bin."""
    index = np.clip(np.searchsorted(edges_deg, ipd_deg, side="right") - 1, 0, len(edges_deg) - 2)
    bins = len(edges_deg) - 1
    sums = np.zeros((bins, *values.shape[1:]))
    np.add.at(sums, index, values)
    counts = np.bincount(index, minlength=bins).reshape(-1, *([1] * (values.ndim - 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def tuning_summary(curves: np.ndarray, centres_deg: np.ndarray) -> tuple[np.ndarray, ...]:
    """Preferred IPD (the curve's maximum), least-preferred IPD (its minimum) and tuning width (deg: the
    bins at or above half-way between minimum and maximum, times the bin width) of each unit's tuning
    curve ``(bins, H)``; NaN for a flat curve."""
    flat = np.nanmax(curves, 0) <= np.nanmin(curves, 0)
    filled = np.where(np.isnan(curves), np.nanmin(curves, 0), curves)
    preferred = centres_deg[filled.argmax(0)]
    least = centres_deg[filled.argmin(0)]
    half = (filled.max(0) + filled.min(0)) / 2
    width = (filled >= half).sum(0) * (centres_deg[1] - centres_deg[0] if len(centres_deg) > 1 else math.nan)
    return tuple(np.where(flat, np.nan, v) for v in (preferred, least, width.astype(float)))


def correct(scores: torch.Tensor, true_class: torch.Tensor, num_classes: int) -> torch.Tensor:
    """1 where the scores ``(..., B, bins)`` pick the true class ``(B,)``, else 0, ``(..., B)``."""
    return (most_probable_class(scores, num_classes) == true_class).double()


def removed_counts(units: int, silent: int, points: int = 33) -> np.ndarray:
    """How many units each point of an ablation curve removes: every count up to 64 units, else
    ``points`` counts from 0 to all and the number of ``silent`` units."""
    if units <= 64:
        return np.arange(units + 1)
    return np.unique(np.append(np.linspace(0, units, points).round().astype(int), silent))


@torch.no_grad()
def accuracy_without(network: SpikingNetwork, hidden: torch.Tensor, ipd: torch.Tensor, stim: StimulusConfig,
                     removed: list[np.ndarray]) -> np.ndarray:
    """Accuracy ``(len(removed),)`` of the network with each set of units ``removed`` (unit indices) taken
    out, on the stimuli of hidden spikes ``(n, T, H)`` and IPDs ``(n,)`` (rad).

    With a readout linear in the spikes the removed units' score shares (``network.unit_scores``) are
    taken off the network's own scores (fast; removing units that never spiked takes off exact zeros and
    changes nothing); otherwise each ablated network is run (:func:`accuracy_without_by_masks`, the
    reference).
    """
    if not network.has_unit_scores:
        return accuracy_without_by_masks(network, hidden, ipd, stim, removed)
    true_class = discretise(ipd, stim).to(hidden.device)
    index = [torch.as_tensor(r, dtype=torch.long, device=hidden.device) for r in removed]
    total = torch.zeros(len(removed), dtype=torch.float64)
    for start in range(0, len(hidden), CHUNK):
        s = hidden[start:start + CHUNK].float()[None]  # (1, B, T, H)
        labels = true_class[start:start + CHUNK]
        scores = network.score_hidden(s)[0]  # (B, C)
        shares = network.unit_scores(s)[0]  # (B, H, C)
        for i, units in enumerate(index):
            total[i] += correct(scores - shares[:, units].sum(1), labels, stim.num_classes).sum().item()
    return (total / len(hidden)).numpy()


@torch.no_grad()
def accuracy_without_by_masks(network: SpikingNetwork, hidden: torch.Tensor, ipd: torch.Tensor,
                              stim: StimulusConfig, removed: list[np.ndarray]) -> np.ndarray:
    """:func:`accuracy_without` by running the readout of each ablated network (rows of ``W2`` set to 0)."""
    W2 = network.weights()[1]
    true_class = discretise(ipd, stim).to(hidden.device)
    out = []
    for units in removed:
        keep = torch.ones(hidden.shape[-1], device=W2.device)
        keep[torch.as_tensor(units, dtype=torch.long)] = 0
        total = 0.0
        for start in range(0, len(hidden), CHUNK):
            scores = network.score_hidden(hidden[start:start + CHUNK].float()[None], W2 * keep[:, None])[0]
            total += correct(scores, true_class[start:start + CHUNK], stim.num_classes).sum().item()
        out.append(total / len(hidden))
    return np.array(out)


def ablation_orders(rate_hz: np.ndarray, single_accuracy: np.ndarray, generator: np.random.Generator
                    ) -> dict[str, np.ndarray]:
    """The four orders in which units are removed: silent units first (then the others at random), at
    random, lowest mean rate first, and largest single-unit accuracy drop first."""
    units = len(rate_hz)
    shuffled = generator.permutation(units)
    silent_first = shuffled[np.argsort(rate_hz[shuffled] >= SILENT_HZ, kind="stable")]
    return {"silent first": silent_first, "random": shuffled,
            "lowest rate first": np.argsort(rate_hz, kind="stable"),
            "largest effect first": np.argsort(single_accuracy, kind="stable")}
