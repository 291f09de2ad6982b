"""Leaky integrate-and-fire (LIF) neurons in plain PyTorch: the definition every fast path is tested against.

The equations, written here once. Per step ``t`` a neuron has an input current ``h[t]``, a membrane
``v[t]`` and a spike ``s[t]`` (0 or 1); ``alpha = exp(-dt / tau)`` is its decay per step, ``theta``
its threshold (1: currents are in threshold units) and ``H`` the Heaviside step, whose gradient is
replaced by the surrogate of :mod:`.surrogate`. A spike resets the membrane by ``R(v, s)``:

    zero:      R(v, s) = v (1 - s) + v_reset s      (the notebook: v_reset = 0, "multiply by 1 - s")
    subtract:  R(v, s) = v - theta s

and the update rule orders integration, spike and reset (``v`` and ``s`` are 0 before step 0):

    standard:   v[t] = R(alpha v[t-1] + h[t], s[t-1]);     s[t] = H(v[t] - theta)
    immediate:  v[t] = alpha R(v[t-1], s[t-1]) + h[t];     s[t] = H(v[t] - theta)
    notebook:   v[t] = R(alpha v[t-1] + h[t-1], s[t-1]);   s[t] = H(v[t-1] - theta)

``notebook`` is the source notebook's loop: the spike is taken from the membrane *before* the
update, so a spike comes one step after its membrane crossed the threshold, the reset a step
later still, and the last two input steps never reach a recorded spike. In ``standard`` the reset
also drops the input of the step after a spike, so a neuron is silent for that step;
``immediate`` (Norse's LIF) resets only the membrane, so a neuron driven hard enough spikes every step.

Shapes: currents and spikes ``(K, B, T, N)``, the state ``(K, B, N)``, ``alpha`` ``(K, N)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

from .surrogate import spike_fn

UpdateRule = Literal["notebook", "standard", "immediate"]
Reset = Literal["zero", "subtract"]
Threshold = float | torch.Tensor


@dataclass(frozen=True)
class LIFParams:
    """Parameters of a layer of LIF neurons, for every model of a stack."""

    alpha: torch.Tensor  # (K, N) decay per step, exp(-dt / tau)
    update_rule: UpdateRule = "standard"
    reset: Reset = "zero"
    threshold: float = 1.0  # theta, in units of the input current
    v_reset: float = 0.0  # the membrane after a spike, for reset = "zero"
    surrogate_slope: float = 5.0  # of the sigmoid surrogate gradient, per unit of membrane


class LIFState(NamedTuple):
    """The state between steps: membrane ``v`` and last spike ``s``, both ``(K, B, N)``."""

    v: torch.Tensor
    s: torch.Tensor


def _reset_to_value(p: LIFParams, v: torch.Tensor, s: torch.Tensor, theta) -> torch.Tensor:
    return v * (1 - s) if p.v_reset == 0 else v * (1 - s) + p.v_reset * s


def _reset_by_subtraction(p: LIFParams, v: torch.Tensor, s: torch.Tensor, theta) -> torch.Tensor:
    return v - theta * s


RESETS: dict[str, Callable[[LIFParams, torch.Tensor, torch.Tensor, Threshold], torch.Tensor]] = {
    "zero": _reset_to_value, "subtract": _reset_by_subtraction}


# each rule takes the step's threshold ``theta`` (a float, or a tensor ``(K, B, N)`` for the adaptive
# threshold of :mod:`.alif`), used both to spike and to reset by subtraction
def _standard(p: LIFParams, reset, state: LIFState, h: torch.Tensor, theta: Threshold) -> LIFState:
    v = reset(p, p.alpha[:, None, :] * state.v + h, state.s, theta)  # alpha (K, 1, N): shared by the batch
    return LIFState(v, spike_fn(v - theta, p.surrogate_slope))


def _immediate(p: LIFParams, reset, state: LIFState, h: torch.Tensor, theta: Threshold) -> LIFState:
    v = p.alpha[:, None, :] * reset(p, state.v, state.s, theta) + h
    return LIFState(v, spike_fn(v - theta, p.surrogate_slope))


def _notebook(p: LIFParams, reset, state: LIFState, h: torch.Tensor, theta: Threshold) -> LIFState:
    v = reset(p, p.alpha[:, None, :] * state.v + h, state.s, theta)
    # from the membrane before the update
    return LIFState(v, spike_fn(state.v - theta, p.surrogate_slope))


RULES = {"standard": _standard, "immediate": _immediate, "notebook": _notebook}
RECORDING_LAG = {"standard": 0, "immediate": 0, "notebook": 1}  # steps a rule's spike is recorded late


def lif_step(p: LIFParams, state: LIFState, h: torch.Tensor) -> LIFState:
    """One step: the state after input current ``h`` ``(K, B, N)``; its ``s`` is the step's spike."""
    return RULES[p.update_rule](p, RESETS[p.reset], state, h, p.threshold)


def initial_state(h: torch.Tensor) -> LIFState:
    """Membrane and spike 0, ``(K, B, N)``, for currents ``h`` ``(K, B, T, N)``."""
    zeros = torch.zeros_like(h[:, :, 0])
    return LIFState(zeros, zeros)


def run_steps(step: Callable, state, h: torch.Tensor, lag: int, record_membrane: bool = False):
    """Spikes ``(K, B, T, N)`` (and with ``record_membrane`` the membrane ``v``) of ``state = step(state,
    h[:, :, t])`` over the steps of currents ``h`` ``(K, B, T, N)``; ``lag`` spikes of 0 come first."""
    spikes, membrane = [state.s] * lag, [state.v] * lag  # notebook: s[0] = 0 is recorded before any step
    for t in range(h.shape[2] - lag):
        state = step(state, h[:, :, t])
        spikes.append(state.s)
        membrane.append(state.v)
    if record_membrane:
        return torch.stack(spikes, dim=2), torch.stack(membrane, dim=2)
    return torch.stack(spikes, dim=2)


def lif_sequence(h: torch.Tensor, p: LIFParams, record_membrane: bool = False):
    """Spikes ``(K, B, T, N)`` for input currents ``h`` ``(K, B, T, N)``, one Python step at a time.

    With ``record_membrane`` also the membrane ``v[t]`` of the equations, ``(K, B, T, N)``: the value
    a spike is thresholded from (``notebook``: ``s[t]`` from ``v[t-1]``) before the reset is applied.
    """
    return run_steps(lambda state, h_t: lif_step(p, state, h_t), initial_state(h), h,
                     RECORDING_LAG[p.update_rule], record_membrane)
