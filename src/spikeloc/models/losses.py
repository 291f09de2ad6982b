"""The terms the models' losses are made of, each per model of a stack: ``(K,)``.

A model composes them in its ``loss`` method (it owns its loss, as in nanoGPT); training only sums
the per-model values and steps.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from ..config.schema import StimulusConfig
from ..observer.step import StepObserver
from ..task.bins import bin_centres, discretise, log_probs


def bin_nll(logp: torch.Tensor, ipd: torch.Tensor, stim: StimulusConfig) -> torch.Tensor:
    """Mean NLL per model ``(K,)`` of the true IPD's bin under log-probabilities ``(K, B, bins)`` over
    equal bins."""
    target = discretise(ipd, stim, logp.shape[-1]).expand(logp.shape[0], -1)  # (K, B)
    nll = F.nll_loss(logp.flatten(0, 1), target.flatten(), reduction="none")  # (K*B,)
    return nll.view(logp.shape[:2]).mean(1)  # (K, B) -> (K,)


def soft_bin_nll(logp: torch.Tensor, ipd: torch.Tensor, stim: StimulusConfig, sigma: float) -> torch.Tensor:
    """Mean cross-entropy per model ``(K,)`` of log-probabilities ``(K, B, bins)`` against a soft label: a
    Gaussian of ``sigma`` (rad) around the true IPD, over the bins' centres, normalised within the range."""
    centres = bin_centres(stim, logp.shape[-1]).to(logp)  # (bins,)
    label = (-0.5 * ((centres - ipd[..., None].to(logp)) / sigma) ** 2).softmax(-1)  # (K or 1, B, bins)
    return -(label * logp).sum(-1).mean(-1)


def label_nll(scores: torch.Tensor, ipd: torch.Tensor, stim: StimulusConfig,
              class_weight: float, sigma: float = 0.0) -> torch.Tensor:
    """NLL of the true bin for scores ``(K, B, C)`` (with ``sigma > 0`` (rad), the cross-entropy against a
    Gaussian label around the true IPD: :func:`soft_bin_nll`); with fine bins (``C > num_classes``) and
    ``class_weight > 0``, plus that weight times the NLL of the true class (its fine bins summed)."""
    logp = log_probs(scores)
    per_model = soft_bin_nll(logp, ipd, stim, sigma) if sigma > 0 else bin_nll(logp, ipd, stim)
    classes = stim.num_classes
    if class_weight > 0 and logp.shape[-1] > classes:
        class_logp = logp.unflatten(-1, (classes, -1)).logsumexp(-1)  # (K, B, classes): fine bins summed
        per_model = per_model + class_weight * bin_nll(class_logp, ipd, stim)
    return per_model


def step_label_nll(step_scores: torch.Tensor, ipd: torch.Tensor, stim: StimulusConfig,
                   class_weight: float, window: int = 1, sigma: float = 0.0) -> torch.Tensor:
    """:func:`label_nll` of every window of ``window`` steps alone (its steps' scores ``(K, B, T, C)``
    summed), against its sample's IPD, averaged over the windows: ``(K,)``. Steps after the last whole
    window are left out.

    With windows of one step its minimum is each step's own posterior over the bins, the target
    ``train.target = "observer"`` gives (the NLL is a proper scoring rule): the same per-step readout,
    from labels alone.
    """
    windows = step_scores.shape[-2] // window
    summed = step_scores[:, :, :windows * window].unflatten(2, (windows, window)).sum(3)  # (K, B, T/w, C)
    # (K, B, T/w, C) -> (K, B*T/w, C), sample-major; the IPDs (B,) or (K, B) repeated to match
    return label_nll(summed.flatten(1, 2), ipd.repeat_interleave(windows, -1), stim, class_weight, sigma)


def uniform_guess(classes: int, bins_per_class: int, class_weight: float) -> float:
    """:func:`label_nll` of a uniform posterior: ln(bins), plus the weighted class term where there are
    fine bins."""
    return (math.log(classes * bins_per_class)
            + (class_weight * math.log(classes) if bins_per_class > 1 else 0.0))


@functools.cache
def _step_observer(stim: StimulusConfig, bins: int) -> StepObserver:
    return StepObserver(stim, bins)  # its tables depend only on the stimulus: built once per process


def observer_evidence(stim: StimulusConfig, x: torch.Tensor, bins: int) -> torch.Tensor:
    """The ideal observer's log-posterior over ``bins`` from each step alone, ``(B, T, bins)``, for
    spikes ``x``."""
    return F.log_softmax(_step_observer(stim, bins)(x), -1)


def step_kl(step_scores: torch.Tensor, target_logp: torch.Tensor) -> torch.Tensor:
    """Mean KL per step ``(K,)`` from the target log-posterior ``(B, T, bins)`` to the softmax of each step's
    scores ``(K, B, T, bins)``."""
    kl = F.kl_div(F.log_softmax(step_scores, -1), target_logp.expand_as(step_scores), log_target=True,
                  reduction="none")
    return kl.sum(-1).mean((1, 2))


def rate_penalty(spikes: torch.Tensor, dt: float, target_rate_hz: float) -> torch.Tensor:
    """Mean over hidden neurons of ``(rate / target - 1)**2`` ``(K,)``, each neuron's rate (Hz) from
    ``(K, B, T, H)``."""
    rate = spikes.mean(dim=(1, 2)) / dt  # (K, H)
    return ((rate / target_rate_hz - 1) ** 2).mean(-1)
