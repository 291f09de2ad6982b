"""Fused LIF layer: one autograd node for the whole time loop, forward and backward by hand.

Every update rule of :mod:`spikeloc.neurons.lif` is one recurrence with a reset lag ``L``, written
with the pre-reset membrane ``u`` and the post-reset membrane ``w`` (``q[<0] = 0``, ``w[-1] = 0``):

    u[t] = alpha w[t-1] + h[t]
    L >= 1:  w[t] = R(u[t], q[t-L]);   q[t] = H(w[t] - theta)
    L = 0:   q[t] = H(u[t] - theta);   w[t] = R(u[t], q[t])    (the spike comes before its reset)

    immediate: L = 0, spikes[t] = q[t]
    standard:  L = 1, spikes[t] = q[t]
    notebook:  L = 2, spikes[t] = q[t-2]   (zeros in front; the last two h never reach a spike)

so the recurrence runs for ``steps = T - shift`` steps and writes ``q[t]`` to ``spikes[t + shift]``.
With ``r = dR/du`` (``1 - q`` for the zero reset, 1 for subtraction) and ``c = dR/dq`` (``v_reset - u``,
or ``-theta``), the backward, with ``g[t]`` the upstream gradient of ``q[t]`` and ``sg`` the surrogate
derivative, goes from the last step to the first:

    L >= 1:  G_w[t] = (g[t] + G_w[t+L] c[t+L]) sg(w[t] - theta) + alpha G_u[t+1]     (reset, spike, leak)
             G_u[t] = G_w[t] r[t] = dL/dh[t]
    L = 0:   G_w[t] = alpha G_u[t+1]
             G_u[t] = (g[t] + G_w[t] c[t]) sg(u[t] - theta) + G_w[t] r[t] = dL/dh[t]
    dL/dalpha = sum over batch and t of G_u[t+1] w[t]

The forward keeps only ``u`` (float32) and the spikes (its own output) for the backward.
A backend is a module with ``forward(h, alpha, rec) -> (spikes, u)`` and
``backward(grad, u, spikes, alpha, rec, need_alpha) -> (grad_h, grad_alpha or None)`` on contiguous
float32 tensors, ``rec`` a :class:`Recurrence`; :mod:`.lif_numba` (CPU) and :mod:`.lif_triton` (CUDA).
"""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

import torch

from ..neurons.lif import LIFParams

# update rule -> (L, output shift)
LAG_AND_SHIFT = {"immediate": (0, 0), "standard": (1, 0), "notebook": (2, 2)}


class Recurrence(NamedTuple):
    """The constants of the recurrence for one :class:`~spikeloc.neurons.lif.LIFParams`."""

    lag: int
    shift: int
    subtract: bool  # reset by subtracting the threshold, else to v_reset
    threshold: float
    v_reset: float
    slope: float  # of the surrogate gradient

    @classmethod
    def of(cls, p: LIFParams) -> Recurrence:
        lag, shift = LAG_AND_SHIFT[p.update_rule]
        return cls(lag, shift, p.reset == "subtract", p.threshold, p.v_reset, p.surrogate_slope)


def kernel_inputs(h: torch.Tensor, alpha: torch.Tensor, neuron: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``h`` ``(K, B, T, N)`` and ``alpha`` ``(K, N)`` as a fused kernel of ``neuron`` takes them: detached,
    contiguous float32; TypeError or ValueError for others (the kernels index ``alpha[k, n]`` unchecked)."""
    if h.dtype != torch.float32 or alpha.dtype != torch.float32:
        raise TypeError(f"fused {neuron} needs float32 h and alpha, got {h.dtype} and {alpha.dtype}")
    if h.ndim != 4 or alpha.shape != (h.shape[0], h.shape[3]):
        raise ValueError(f"fused {neuron} needs h (K, B, T, N) and alpha (K, N); got {tuple(h.shape)} and "
                         f"{tuple(alpha.shape)}")
    return h.detach().contiguous(), alpha.detach().contiguous()


class FusedLIF(torch.autograd.Function):
    """Spikes ``(K, B, T, N)`` from currents ``h`` ``(K, B, T, N)`` and ``alpha`` ``(K, N)``, float32."""

    @staticmethod
    def forward(ctx, h, alpha, rec: Recurrence, backend: ModuleType):
        h, alpha = kernel_inputs(h, alpha, "LIF")
        spikes, u = backend.forward(h, alpha, rec)
        ctx.save_for_backward(u, spikes, alpha)
        ctx.rec, ctx.backend = rec, backend
        return spikes

    @staticmethod
    def backward(ctx, grad):
        u, spikes, alpha = ctx.saved_tensors
        # a .sum() downstream hands in a stride-0 gradient; the kernels index it as dense
        grad_h, grad_alpha = ctx.backend.backward(grad.contiguous(), u, spikes, alpha, ctx.rec,
                                                  ctx.needs_input_grad[1])
        return (grad_h if ctx.needs_input_grad[0] else None), grad_alpha, None, None


def fused_lif(h: torch.Tensor, p: LIFParams, backend: ModuleType) -> torch.Tensor:
    """Same spikes and surrogate gradients as ``lif_sequence(h, p)``, from one backend's kernels."""
    return FusedLIF.apply(h, p.alpha, Recurrence.of(p), backend)
