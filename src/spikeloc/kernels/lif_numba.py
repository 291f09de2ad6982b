"""CPU backend of :mod:`.fused`: the LIF recurrence and its backward as numba loops.

One thread per (model, batch) row walks time; neurons are the innermost, contiguous loop.
Arithmetic is float32 in the reference's order with no fused multiply-add (``fastmath=False``),
so spikes are bit-identical to :func:`spikeloc.neurons.lif_reference`:

    u[t] = alpha * w[t-1] + h[t];   w[t] = u[t] * (1 - q[t-L]);   q[t] = H(w[t] - 1) -> spikes[t + shift]
    (L = 0: q[t] = H(u[t] - 1), w[t] = u[t] * (1 - q[t]))

The backward takes the surrogate's ``sig(beta (w - 1))`` from torch's vectorised sigmoid: numba
has no vector ``exp`` here (its llvmlite lacks SVML), and a scalar ``expf`` per element took two
thirds of the backward (1.2 ms -> 0.55 ms for 64 x 100 x 30 on one core).

``cache=True`` writes the compiled code next to this file, so only the first process compiles.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

ONE = np.float32(1.0)  # float32 constants keep numba from promoting the arithmetic to float64
ZERO = np.float32(0.0)


@njit(parallel=True, cache=True, fastmath=False)
def _forward(h, alpha, lag, shift, out, u):
    models, batch, T, H = h.shape
    steps = T - shift
    for row in prange(models * batch):
        k, b = row // batch, row % batch
        w = np.zeros(H, np.float32)  # w[t-1]
        for t in range(min(shift, T)):
            out[k, b, t, :] = ZERO
        for t in range(steps):
            for j in range(H):
                ut = alpha[k, j] * w[j] + h[k, b, t, j]
                u[k, b, t, j] = ut
                if lag == 0:
                    q = ONE if ut > ONE else ZERO
                    w[j] = ut * (ONE - q)
                    out[k, b, t + shift, j] = q
                    continue
                # reset factor 1 - q[t-L]; q[t-L] sits at spikes[t-L+shift]
                r = ONE - out[k, b, t - lag + shift, j] if t >= lag else ONE
                w[j] = ut * r
                out[k, b, t + shift, j] = ONE if w[j] > ONE else ZERO


@njit(parallel=True, cache=True, fastmath=False)
def _backward(grad_out, u, out, sig, alpha, beta, lag, shift, grad_h, grad_alpha):
    models, batch, T, H = u.shape
    steps = T - shift
    for row in prange(models * batch):
        k, b = row // batch, row % batch
        for t in range(max(steps, 0), T):  # inputs that never reach a recorded spike
            grad_h[k, b, t, :] = ZERO
        # slot t % L holds G_w[t+L] when step t starts (zero past the end) and G_w[t] when it ends
        gw_ring = np.zeros((max(lag, 1), H), np.float32)
        gu_next = np.zeros(H, np.float32)  # G_u[t+1]
        acc = np.zeros(H, np.float32)  # dL/dalpha for this row
        for t in range(steps - 1, -1, -1):
            if lag == 0:
                for j in range(H):
                    ut = u[k, b, t, j]
                    r = ONE - out[k, b, t + shift, j]
                    gw = alpha[k, j] * gu_next[j]  # G_w[t]: w[t] = u[t] * (1 - q[t]) feeds u[t+1]
                    g = grad_out[k, b, t + shift, j] - gw * ut  # q[t] resets w[t]
                    s = sig[k, b, t, j]
                    acc[j] += gu_next[j] * ut * r
                    gu = g * beta * s * (ONE - s) + gw * r
                    grad_h[k, b, t, j] = gu
                    gu_next[j] = gu
                continue
            slot = t % lag
            for j in range(H):
                r = ONE - out[k, b, t - lag + shift, j] if t >= lag else ONE
                w = u[k, b, t, j] * r
                g = grad_out[k, b, t + shift, j]
                if t + lag < steps:  # q[t] also resets w[t+L] = u[t+L] * (1 - q[t])
                    g -= gw_ring[slot, j] * u[k, b, t + lag, j]
                s = sig[k, b, t, j]
                gw = g * beta * s * (ONE - s) + alpha[k, j] * gu_next[j]
                acc[j] += gu_next[j] * w  # u[t+1] = alpha * w[t] + h[t+1]
                gu = gw * r
                grad_h[k, b, t, j] = gu
                gw_ring[slot, j] = gw
                gu_next[j] = gu
        grad_alpha[k, b, :] = acc


def _sigmoid(u: torch.Tensor, spikes: torch.Tensor, beta: float, lag: int, shift: int) -> torch.Tensor:
    """``sig(beta (w[t] - 1))`` for the recurrence's steps, with ``w[t] = u[t] (1 - q[t-L])`` (``u[t]`` if L = 0)."""
    steps = max(u.shape[-2] - shift, 0)
    if lag == 0:  # the spike is taken before the reset
        return torch.sigmoid(u[..., :steps, :].sub(1).mul_(beta))
    d = lag - shift  # q[t-L] sits at spikes[t - d]
    w = u[..., :steps, :].clone()
    w[..., d:, :] *= 1 - spikes[..., :steps - d, :]
    return torch.sigmoid_(w.sub_(1).mul_(beta))  # as the reference: sigmoid(beta * (v - 1))


def forward(h: torch.Tensor, alpha: torch.Tensor, lag: int, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and pre-reset membrane ``u``, both ``(K, B, T, H)`` float32."""
    out, u = torch.empty_like(h), torch.empty_like(h)
    _forward(h.numpy(), alpha.numpy(), lag, shift, out.numpy(), u.numpy())
    return out, u


def backward(grad: torch.Tensor, u: torch.Tensor, spikes: torch.Tensor, alpha: torch.Tensor, beta: float,
             lag: int, shift: int, need_alpha: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gradients wrt ``h`` ``(K, B, T, H)`` and, if ``need_alpha``, wrt ``alpha`` ``(K, H)``."""
    models, batch, _, hidden = u.shape
    grad_h = torch.empty_like(u)
    grad_alpha = torch.empty((models, batch, hidden), dtype=u.dtype)  # one per row: threads never share
    _backward(grad.numpy(), u.numpy(), spikes.numpy(), _sigmoid(u, spikes, beta, lag, shift).numpy(),
              alpha.numpy(), np.float32(beta), lag, shift, grad_h.numpy(), grad_alpha.numpy())
    return grad_h, (grad_alpha.sum(1) if need_alpha else None)
