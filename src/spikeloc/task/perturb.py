"""Perturbed input spikes: what a trained network meets when the auditory nerve is less reliable than in
training. Applied to a test set (``eval.spike_deletion``, ``eval.spike_jitter_ms``,
``eval.spike_background_hz``) and, level by level, for the robustness curve (``eval.robustness``).

In this order, each with its own draws from the generator:

1. **deletion**: every spike is removed with probability ``deletion``;
2. **jitter**: every remaining spike moves by ``round(N(0, jitter_steps))`` steps, clipped to the stimulus
   (spikes of one fibre that land on the same step merge: a fibre spikes at most once per step);
3. **background**: every (step, fibre) also spikes with probability ``background_p`` (spontaneous
   firing, ``background_hz * dt``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config.schema import EvalConfig, StimulusConfig


@dataclass(frozen=True)
class Perturbation:
    deletion: float = 0.0  # probability that a spike is removed
    jitter_steps: float = 0.0  # standard deviation of a spike's shift, in steps
    background_p: float = 0.0  # probability of a spontaneous spike per step and fibre

    @classmethod
    def of(cls, cfg: EvalConfig, stim: StimulusConfig) -> Perturbation:
        return cls(cfg.spike_deletion, cfg.spike_jitter_ms * 1e-3 / stim.dt,
                   cfg.spike_background_hz * stim.dt)

    @property
    def none(self) -> bool:
        return self.deletion == 0 and self.jitter_steps == 0 and self.background_p == 0


def perturb(spikes: torch.Tensor, p: Perturbation, generator: torch.Generator) -> torch.Tensor:
    """Perturbed copy of 0/1 ``spikes`` ``(n, T, I)`` (uint8 out), drawn from ``generator``."""
    x = spikes.to(torch.uint8).clone()
    if p.deletion > 0:
        keep = torch.rand(x.shape, generator=generator, device=generator.device) >= p.deletion
        x &= keep.to(x.device, torch.uint8)
    if p.jitter_steps > 0:
        n, t, i = x.nonzero(as_tuple=True)  # the spikes, one per (sample, step, fibre)
        shift = torch.randn(len(t), generator=generator, device=generator.device).mul_(p.jitter_steps)
        moved = (t + shift.round().long().to(t.device)).clamp_(0, x.shape[1] - 1)
        x = torch.zeros_like(x)
        x[n, moved, i] = 1
    if p.background_p > 0:
        extra = torch.rand(x.shape, generator=generator, device=generator.device) < p.background_p
        x |= extra.to(x.device, torch.uint8)
    return x
