"""The exact likelihood of the spikes, tabulated on a grid of phases.

Fibre ``i`` (phase delay ``d_i``) spikes in a step independently with probability
``p(theta) = rate_max*dt * (0.5*(1 + sin theta))**envelope_power`` at its phase ``theta``
(:mod:`.stimulus`), so the log-likelihood of 0/1 spikes ``x`` is

    sum_i x_i log p + (1 - x_i) log(1 - p) = sum_i x_i a(theta_i) + sum_i b(theta_i),
    a = log(p / (1 - p))  (log-odds),   b = log(1 - p)  (silence).

The ideal observer (:mod:`spikeloc.observer.ideal`), its evidence from one step
(:mod:`spikeloc.observer.step`) and the observer-template initialisation (:mod:`spikeloc.models.init`)
all read these tables.
"""

from __future__ import annotations

import math

import torch

from ..config.schema import StimulusConfig
from .stimulus import phase_delays

FLOOR = 1e-300  # stands for probability 0: a spike where p = 0 (sin theta = -1) or silence where p = 1
LOG_FLOOR = math.log(FLOOR)  # finite, so a grid point of zero likelihood gets weight ~0 and no inf - inf


def log_likelihood_tables(cfg: StimulusConfig, phase: torch.Tensor,
                          grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-odds table ``A`` ``(rows*fibres, grid)`` and silence table ``B`` ``(rows, grid)``, float64.

    ``phase`` ``(rows,)`` (cycles) is each row's phase; ``A[(r,i), j] = a(2*pi*(phase_r + j/grid) + d_i)``,
    ``B[r, j] = sum_i b(...)``: one ear's log-likelihood of the spikes ``x`` of row ``r`` at phase
    ``j/grid`` is ``x @ A[r] + B[r, j]``.
    """
    delays = phase_delays(cfg).double()
    psi = torch.arange(grid, dtype=torch.float64) / grid
    log_odds, silence = [], []
    for start in range(0, len(phase), 16):  # chunks of rows bound the (rows, fibres, grid) scratch
        rows = slice(start, start + 16)
        theta = 2 * math.pi * (phase[rows, None, None] + psi) + delays[:, None]
        p = cfg.rate_max * cfg.dt * (0.5 * (1 + theta.sin())) ** cfg.envelope_power
        log_q = torch.log1p(-p).clamp(min=LOG_FLOOR)
        log_odds.append((p.log().clamp(min=LOG_FLOOR) - log_q).flatten(0, 1))  # (rows*fibres, grid)
        silence.append(log_q.sum(1))
    return torch.cat(log_odds), torch.cat(silence)
