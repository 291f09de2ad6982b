"""Fused ALIF layer (:mod:`spikeloc.neurons.alif`) for the ``notebook`` update rule: one autograd node for the
whole time loop, forward and backward by hand.

Step ``t`` (``t = 0 .. T-2``; ``v``, ``s``, ``a`` are 0 before step 0; spikes[0] = 0) with threshold
``th = theta + beta a``:

    s' = H(v - th);   u = alpha v + h[t];   v' = R(u, s; th);   a' = rho a + (1 - rho) s';   spikes[t+1] = s'

``R(u, s; th)`` is ``u (1 - s) + v_reset s`` (zero) or ``u - th s`` (subtract). The backward walks the steps
from the last to the first with the adjoints ``G_v``, ``G_s``, ``G_a`` of the state after the step (all 0
after the last), ``g[t+1]`` the upstream gradient of ``s'`` and ``sg`` the surrogate derivative at ``v - th``:

    S   = G_s + g[t+1] + (1 - rho) G_a                          (s' is output, adapts a', resets v'')
    G_u = G_v (1 - s)  or  G_v;                                 dL/dh[t] = G_u;  dL/dalpha += v G_u
    G_v <- sg S + alpha G_u
    G_a <- rho G_a - beta sg S  (- beta s G_v, subtract)
    G_s <- (v_reset - u) G_v  or  -th G_v

The last input never reaches a spike: ``dL/dh[T-1] = 0``. The forward keeps ``v``, ``u`` and ``a`` of every
step (float32) and the spikes for the backward. A backend is a module with ``forward(h, alpha, rec) ->
(spikes, v, u, a)`` and ``backward(grad, v, u, a, spikes, alpha, rec, need_alpha) -> (grad_h, grad_alpha or
None)``: :mod:`.alif_numba` (CPU) and :mod:`.alif_triton` (CUDA).
"""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

import torch

from ..config.schema import FUSED_ALIF_RULES as FUSED_RULES
from ..neurons.alif import ALIFParams
from ..neurons.surrogate import surrogate_sigmoid
from .fused import kernel_inputs


class ALIFRecurrence(NamedTuple):
    """The constants of the recurrence for one :class:`~spikeloc.neurons.alif.ALIFParams`."""

    subtract: bool  # reset by subtracting the threshold, else to v_reset
    threshold: float
    v_reset: float
    slope: float  # of the surrogate gradient
    decay: float  # rho
    strength: float  # beta

    @classmethod
    def of(cls, p: ALIFParams) -> ALIFRecurrence:
        if p.update_rule not in FUSED_RULES:
            raise ValueError(f"no fused ALIF for update rule {p.update_rule!r}")
        return cls(p.reset == "subtract", p.threshold, p.v_reset, p.surrogate_slope, p.adapt_decay,
                   p.adapt_strength)


def surrogate_of(v: torch.Tensor, a: torch.Tensor, rec: ALIFRecurrence) -> torch.Tensor:
    """``sig(slope (v - th))`` of every step, as the reference computes it (torch's vectorised sigmoid)."""
    theta = a.mul(rec.strength).add_(rec.threshold)
    return surrogate_sigmoid((v - theta).mul_(rec.slope))


class FusedALIF(torch.autograd.Function):
    """Spikes ``(K, B, T, N)`` from currents ``h`` ``(K, B, T, N)`` and ``alpha`` ``(K, N)``, float32."""

    @staticmethod
    def forward(ctx, h, alpha, rec: ALIFRecurrence, backend: ModuleType):
        h, alpha = kernel_inputs(h, alpha, "ALIF")
        spikes, v, u, a = backend.forward(h, alpha, rec)
        ctx.save_for_backward(v, u, a, spikes, alpha)
        ctx.rec, ctx.backend = rec, backend
        return spikes

    @staticmethod
    def backward(ctx, grad):
        v, u, a, spikes, alpha = ctx.saved_tensors
        grad_h, grad_alpha = ctx.backend.backward(grad.contiguous(), v, u, a, spikes, alpha, ctx.rec,
                                                  ctx.needs_input_grad[1])
        return (grad_h if ctx.needs_input_grad[0] else None), grad_alpha, None, None


def fused_alif(h: torch.Tensor, p: ALIFParams, backend: ModuleType) -> torch.Tensor:
    """Same spikes and surrogate gradients as ``alif_sequence(h, p)``, from one backend's kernels."""
    return FusedALIF.apply(h, p.alpha, ALIFRecurrence.of(p), backend)
