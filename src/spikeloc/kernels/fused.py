"""Fused LIF layer: one autograd node for the whole time loop, forward and backward by hand.

Both semantics of :func:`spikeloc.neurons.lif_reference` are one recurrence with a reset lag ``L``
(membrane in threshold units, ``alpha = exp(-dt / tau)`` per neuron, ``H`` the Heaviside step):

    u[t] = alpha * w[t-1] + h[t]        pre-reset membrane, w[-1] = 0
    w[t] = u[t] * (1 - q[t-L])          post-reset membrane, q[<0] = 0
    q[t] = H(w[t] - 1)                  (L = 0: q[t] = H(u[t] - 1), so the spike comes before the reset)

    immediate: L = 0, spikes[t] = q[t]
    standard:  L = 1, spikes[t] = q[t]
    notebook:  L = 2, spikes[t] = q[t-2]   (zeros in front; the last two h never reach a spike)

so the recurrence runs for ``steps = T - shift`` steps and writes ``q[t]`` to ``spikes[t + shift]``.

Backward, with ``g[t]`` the upstream gradient of ``q[t]`` and ``sg(x) = beta sig(beta x)(1 - sig(beta x))``
the surrogate derivative, going from the last step to the first:

    L >= 1:  G_w[t] = (g[t] - G_w[t+L] u[t+L]) sg(w[t] - 1) + alpha G_u[t+1]     (reset, spike, leak)
             G_u[t] = G_w[t] (1 - q[t-L]) = dL/dh[t]
    L = 0:   G_u[t] = (g[t] - alpha G_u[t+1] u[t]) sg(u[t] - 1) + alpha G_u[t+1] (1 - q[t])
    dL/dalpha = sum over batch and t of G_u[t+1] w[t]

The forward keeps only ``u`` (float32) and the spikes (its own output) for the backward.
A backend is a module with ``forward(h, alpha, lag, shift) -> (spikes, u)`` and
``backward(grad, u, spikes, alpha, beta, lag, shift, need_alpha) -> (grad_h, grad_alpha or None)``
working on contiguous float32 tensors; :mod:`.lif_numba` (CPU) and :mod:`.lif_triton` (CUDA).
"""

from __future__ import annotations

from types import ModuleType

import torch

SEMANTICS = {"immediate": (0, 0), "standard": (1, 0), "notebook": (2, 2)}  # semantics -> (reset lag L, output shift)


class FusedLIF(torch.autograd.Function):
    """Spikes ``(K, B, T, H)`` from currents ``h`` ``(K, B, T, H)`` and ``alpha`` ``(K, H)``, float32."""

    @staticmethod
    def forward(ctx, h, alpha, beta: float, semantics: str, backend: ModuleType):
        if h.dtype != torch.float32 or alpha.dtype != torch.float32:
            raise TypeError(f"fused LIF needs float32 h and alpha, got {h.dtype} and {alpha.dtype}")
        lag, shift = SEMANTICS[semantics]
        alpha = alpha.detach().contiguous()
        spikes, u = backend.forward(h.detach().contiguous(), alpha, lag, shift)
        ctx.save_for_backward(u, spikes, alpha)
        ctx.beta, ctx.lag, ctx.shift, ctx.backend = beta, lag, shift, backend
        return spikes

    @staticmethod
    def backward(ctx, grad):
        u, spikes, alpha = ctx.saved_tensors
        # a .sum() downstream hands in a stride-0 gradient; the kernels index it as dense
        grad_h, grad_alpha = ctx.backend.backward(grad.contiguous(), u, spikes, alpha, ctx.beta,
                                                  ctx.lag, ctx.shift, ctx.needs_input_grad[1])
        return (grad_h if ctx.needs_input_grad[0] else None), grad_alpha, None, None, None


def fused_lif(h: torch.Tensor, alpha: torch.Tensor, beta: float, semantics: str,
              backend: ModuleType) -> torch.Tensor:
    """Same spikes and surrogate gradients as ``lif_reference(h, alpha[:, None, :], beta, semantics)``."""
    return FusedLIF.apply(h, alpha, beta, semantics, backend)
