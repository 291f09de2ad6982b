"""Adaptive LIF (ALIF) neurons in plain PyTorch: a LIF neuron whose threshold rises with its own spikes.

The community's ``Dynamic_threshold`` notebook (it cites arXiv 2103.12593; the adaptive threshold of Bellec et
al. 2018's LSNN, arXiv 1803.09574). Each neuron
carries an adaptation ``a`` (0 before step 0) next to the LIF state of :mod:`.lif`. Its threshold in a
step is

    theta[t] = theta + beta a[t-1]

and the step is the LIF step of the update rule with ``theta[t]`` in place of ``theta``: to spike, and
for ``reset = "subtract"`` as the amount subtracted (``R(v, s) = v - theta[t] s``; the notebook's
``s * (vt + 1)``). Then the adaptation follows the step's spike,

    a[t] = rho a[t-1] + (1 - rho) s[t],     rho = exp(-dt / tau_adapt),

so each spike raises the threshold by ``beta (1 - rho)``, and that decays with ``tau_adapt``. The
surrogate gradient flows through ``a`` too, as in the notebook. With ``beta = 0`` this is the LIF.

Shapes as :mod:`.lif`: currents and spikes ``(K, B, T, N)``, the state ``(K, B, N)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from .lif import RECORDING_LAG, RESETS, RULES, LIFParams, LIFState, run_steps


@dataclass(frozen=True)
class ALIFParams(LIFParams):
    """Parameters of a layer of ALIF neurons: those of the LIF and the adaptation's."""

    adapt_decay: float = 0.951229424500714  # rho = exp(-dt / tau_adapt), per step (here dt / tau = 1 / 20)
    adapt_strength: float = 1.0  # beta: threshold added per unit of adaptation, in threshold units


class ALIFState(NamedTuple):
    """The state between steps: membrane ``v``, last spike ``s`` and adaptation ``a``, each ``(K, B, N)``."""

    v: torch.Tensor
    s: torch.Tensor
    a: torch.Tensor


def alif_step(p: ALIFParams, state: ALIFState, h: torch.Tensor) -> ALIFState:
    """One step: the state after input current ``h`` ``(K, B, N)``; its ``s`` is the step's spike."""
    theta = p.threshold + p.adapt_strength * state.a  # (K, B, N)
    lif = RULES[p.update_rule](p, RESETS[p.reset], LIFState(state.v, state.s), h, theta)
    return ALIFState(lif.v, lif.s, p.adapt_decay * state.a + (1 - p.adapt_decay) * lif.s)


def alif_sequence(h: torch.Tensor, p: ALIFParams, record_membrane: bool = False):
    """Spikes ``(K, B, T, N)`` for input currents ``h`` ``(K, B, T, N)``, one Python step at a time (with
    ``record_membrane`` also the membrane, as :func:`spikeloc.neurons.lif.lif_sequence`)."""
    zeros = torch.zeros_like(h[:, :, 0])
    return run_steps(lambda state, h_t: alif_step(p, state, h_t), ALIFState(zeros, zeros, zeros), h,
                     RECORDING_LAG[p.update_rule], record_membrane)
