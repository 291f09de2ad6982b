"""The ideal observer's evidence from one time step: the training target of ``train.target = "observer"``.

With the tone phase ``theta`` unknown and uniform in every step, the log-likelihood of one step's
spikes ``x`` for an IPD ``delta`` is

    g(x; delta) = log mean_theta exp( x_left @ a(theta + d) + x_right @ a(theta + delta + d) + silence )

(``a`` the fibres' log-odds, ``d`` their phase delays; :mod:`spikeloc.task.likelihood`). Summed over
steps, ``g`` is the "local" observer of ``experiments/local_observer.py``, which decides almost as the
ideal observer does (docs/results.md). A network whose readout adds one score vector per step can
represent it, and matching ``softmax(g)`` step by step gives it T targets per sample instead of one
label.

The mean over ``theta`` is a circular cross-correlation of the two ears' likelihoods on a grid of
``grid`` phases, computed with the FFT; IPDs between grid points are interpolated linearly (with the
default 60 bins over 180 deg and 240 grid points every bin centre is a grid point).
"""

from __future__ import annotations

import math

import torch

from ..config.schema import StimulusConfig
from ..task.bins import bin_centres
from ..task.likelihood import log_likelihood_tables

GRID = 240  # phases per cycle: 1.5 deg, so the default 60 bin centres (3 deg apart) lie on the grid


class StepObserver:
    """``StepObserver(stim, bins)(x)``: per-step log-likelihood ``(..., bins)`` of spikes ``x``
    ``(..., inputs)``.

    Bin ``b`` is scored at its centre, ``bins`` equal bins spanning the IPD range; values are
    float32, up to a constant per step.
    """

    def __init__(self, stim: StimulusConfig, bins: int, grid: int = GRID):
        log_odds, silence = log_likelihood_tables(stim, torch.zeros(1, dtype=torch.float64), grid)
        # float32 products of 0/1 spikes are exact to ~1e-5; the exponentials below need float64
        self.log_odds, self.silence = log_odds.float(), silence[0]  # (fibres, grid), (grid,)
        self.fibres, self.grid = stim.anf_per_ear, grid
        # in grid steps; the right ear leads by delta
        position = bin_centres(stim, bins) * grid / (2 * math.pi)
        self.below = position.floor().long()
        self.frac = position - self.below

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        log_odds, silence, x = self.log_odds.to(x.device), self.silence.to(x.device), x.float()
        left = (x[..., :self.fibres] @ log_odds).double() + silence
        right = (x[..., self.fibres:] @ log_odds).double() + silence
        left_max, right_max = left.amax(-1, keepdim=True), right.amax(-1, keepdim=True)
        spectrum = torch.fft.rfft((left - left_max).exp()).conj() * torch.fft.rfft((right - right_max).exp())
        # c[s] = sum_j exp(left[j]) exp(right[j + s]): the likelihood at an IPD of s grid steps
        c = torch.fft.irfft(spectrum, n=self.grid)
        below = c[..., self.below % self.grid].clamp(min=1e-300).log()
        above = c[..., (self.below + 1) % self.grid].clamp(min=1e-300).log()
        return (below + self.frac * (above - below) + left_max + right_max).float()

