"""Leaky integrator (LI) neurons, the readout's membrane: the reference dynamics in plain PyTorch.

A leaky integrator is a LIF neuron without spikes. Per step, with input current ``h[t]`` and decay
``alpha = exp(-dt / tau)``:

    standard, immediate:  y[t] = alpha y[t-1] + h[t]
    notebook:             y[t] = alpha y[t-1] + h[t-1],  y[0] = 0   (one step late, as the LIF)

Shapes: currents and traces ``(K, B, T, N)``, the state ``(K, B, N)``, ``alpha`` ``(K, N)``.
The matrix form used by the fast path is :mod:`spikeloc.kernels.li_matrix`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from .lif import RECORDING_LAG, UpdateRule


@dataclass(frozen=True)
class LIParams:
    """Parameters of a layer of leaky integrators, for every model of a stack."""

    alpha: torch.Tensor  # (K, N) decay per step, exp(-dt / tau)
    update_rule: UpdateRule = "standard"


class LIState(NamedTuple):
    """The membrane ``y`` between steps, ``(K, B, N)``."""

    y: torch.Tensor


def li_step(p: LIParams, state: LIState, h: torch.Tensor) -> LIState:
    """One step of input current ``h`` ``(K, B, N)``."""
    return LIState(p.alpha[:, None, :] * state.y + h)  # alpha (K, 1, N): shared by the batch


def li_sequence(h: torch.Tensor, p: LIParams) -> torch.Tensor:
    """The membrane trace ``(K, B, T, N)`` for input currents ``h`` ``(K, B, T, N)``, one step at a time."""
    lag = RECORDING_LAG[p.update_rule]
    state = LIState(torch.zeros_like(h[:, :, 0]))
    trace = [state.y] * lag
    for t in range(h.shape[2] - lag):
        state = li_step(p, state, h[:, :, t])
        trace.append(state.y)
    return torch.stack(trace, dim=2)
