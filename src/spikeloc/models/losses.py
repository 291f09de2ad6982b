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
from ..task.bins import discretise, log_probs


def bin_nll(logp: torch.Tensor, ipd: torch.Tensor, stim: StimulusConfig) -> torch.Tensor:
    """Mean NLL per model ``(K,)`` of the true IPD's bin under log-probabilities ``(K, B, bins)`` over
    equal bins."""
    target = discretise(ipd, stim, logp.shape[-1]).expand(logp.shape[0], -1)  # (K, B)
    nll = F.nll_loss(logp.flatten(0, 1), target.flatten(), reduction="none")  # (K*B,)
    return nll.view(logp.shape[:2]).mean(1)  # (K, B) -> (K,)


def label_nll(scores: torch.Tensor, ipd: torch.Tensor, stim: StimulusConfig,
              class_weight: float) -> torch.Tensor:
    """NLL of the true bin for scores ``(K, B, C)``; with fine bins (``C > num_classes``) and
    ``class_weight > 0``, plus that weight times the NLL of the true class (its fine bins summed)."""
    logp = log_probs(scores)
    per_model = bin_nll(logp, ipd, stim)
    classes = stim.num_classes
    if class_weight > 0 and logp.shape[-1] > classes:
        class_logp = logp.unflatten(-1, (classes, -1)).logsumexp(-1)  # (K, B, classes): fine bins summed
        per_model = per_model + class_weight * bin_nll(class_logp, ipd, stim)
    return per_model


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
