"""CPU backend of :mod:`.fused_alif`: its recurrence and backward as numba loops.

As :mod:`.lif_numba`: one thread per (model, batch) row walks time, neurons innermost; float32 in the
reference's order without fused multiply-add, so spikes are bit-identical to
:func:`spikeloc.neurons.alif.alif_sequence`; the surrogate's sigmoid comes from torch.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

from .fused_alif import ALIFRecurrence, surrogate_of

ONE = np.float32(1.0)
ZERO = np.float32(0.0)


@njit(parallel=True, cache=True, fastmath=False)
def _forward(h, alpha, subtract, theta, v_reset, rho, gain, beta, out, v_rec, u_rec, a_rec):
    models, batch, T, H = h.shape
    for row in prange(models * batch):
        k, b = row // batch, row % batch
        v = np.zeros(H, np.float32)
        s = np.zeros(H, np.float32)
        a = np.zeros(H, np.float32)
        if T > 0:
            out[k, b, 0, :] = ZERO
        for t in range(T - 1):
            for j in range(H):
                th = theta + beta * a[j]
                s_new = ONE if v[j] - th > ZERO else ZERO
                u = alpha[k, j] * v[j] + h[k, b, t, j]
                v_rec[k, b, t, j] = v[j]
                u_rec[k, b, t, j] = u
                a_rec[k, b, t, j] = a[j]
                if subtract:
                    v[j] = u - th * s[j]
                else:
                    v[j] = u * (ONE - s[j])
                    if v_reset != ZERO:
                        v[j] += v_reset * s[j]
                s[j] = s_new
                a[j] = rho * a[j] + gain * s_new
                out[k, b, t + 1, j] = s_new


@njit(parallel=True, cache=True, fastmath=False)
def _backward(grad_out, v_rec, u_rec, a_rec, out, sig, alpha, slope, subtract, theta, v_reset, rho, gain,
              beta, grad_h, grad_alpha):
    models, batch, T, H = v_rec.shape
    for row in prange(models * batch):
        k, b = row // batch, row % batch
        if T > 0:
            grad_h[k, b, T - 1, :] = ZERO  # the last input never reaches a spike
        gv = np.zeros(H, np.float32)  # adjoints of the state after the step
        gs = np.zeros(H, np.float32)
        ga = np.zeros(H, np.float32)
        acc = np.zeros(H, np.float32)
        for t in range(T - 2, -1, -1):
            for j in range(H):
                total = gs[j] + grad_out[k, b, t + 1, j] + gain * ga[j]
                sg = slope * sig[k, b, t, j] * (ONE - sig[k, b, t, j]) * total
                s_old = out[k, b, t, j]
                a_new = rho * ga[j] - beta * sg
                if subtract:
                    gu = gv[j]
                    a_new -= beta * s_old * gv[j]
                    gs[j] = -(theta + beta * a_rec[k, b, t, j]) * gv[j]
                else:
                    gu = gv[j] * (ONE - s_old)
                    gs[j] = (v_reset - u_rec[k, b, t, j]) * gv[j]
                grad_h[k, b, t, j] = gu
                acc[j] += v_rec[k, b, t, j] * gu
                gv[j] = sg + alpha[k, j] * gu
                ga[j] = a_new
        grad_alpha[k, b, :] = acc


def _constants(rec: ALIFRecurrence):
    # float32 as the reference's tensor arithmetic rounds them; (1 - rho) taken in float64 first, as torch
    return (rec.subtract, np.float32(rec.threshold), np.float32(rec.v_reset), np.float32(rec.decay),
            np.float32(1 - rec.decay), np.float32(rec.strength))


def forward(h: torch.Tensor, alpha: torch.Tensor, rec: ALIFRecurrence):
    """Spikes and the membrane ``v``, pre-reset membrane ``u`` and adaptation ``a`` at the start of every
    step, each ``(K, B, T, N)`` float32."""
    out, v, u, a = (torch.zeros_like(h) for _ in range(4))
    _forward(h.numpy(), alpha.numpy(), *_constants(rec), out.numpy(), v.numpy(), u.numpy(), a.numpy())
    return out, v, u, a


def backward(grad: torch.Tensor, v: torch.Tensor, u: torch.Tensor, a: torch.Tensor, spikes: torch.Tensor,
             alpha: torch.Tensor, rec: ALIFRecurrence, need_alpha: bool):
    """Gradients wrt ``h`` ``(K, B, T, N)`` and, if ``need_alpha``, wrt ``alpha`` ``(K, N)``."""
    models, batch, _, hidden = v.shape
    grad_h = torch.empty_like(v)
    grad_alpha = torch.empty((models, batch, hidden), dtype=v.dtype)  # one per row: threads never share
    _backward(grad.numpy(), v.numpy(), u.numpy(), a.numpy(), spikes.numpy(), surrogate_of(v, a, rec).numpy(),
              alpha.numpy(), np.float32(rec.slope), *_constants(rec), grad_h.numpy(), grad_alpha.numpy())
    return grad_h, (grad_alpha.sum(1) if need_alpha else None)
