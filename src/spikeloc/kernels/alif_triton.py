"""CUDA backend of :mod:`.fused_alif`: its recurrence and backward as triton kernels.

As :mod:`.lif_triton`: one lane per (model, batch, neuron) walks time with the state in registers, fused
multiply-add off, and ``TRITON_INTERPRET=1`` runs the kernels on CPU tensors for the tests.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .fused_alif import ALIFRecurrence, surrogate_of
from .lif_triton import BLOCK, on_device


@triton.jit
def _forward_kernel(h_ptr, alpha_ptr, out_ptr, v_ptr, u_ptr, a_ptr, theta, v_reset, rho, gain, beta, lanes,
                    batch, T, H, SUBTRACT: tl.constexpr, BLOCK: tl.constexpr):
    n = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = n < lanes
    row = n // H  # k * batch + b
    j = n % H
    base = row.to(tl.int64) * T * H + j  # element (k, b, 0, j)
    alpha = tl.load(alpha_ptr + (row // batch) * H + j, mask=mask, other=0.0)
    zero = tl.full([BLOCK], 0.0, tl.float32)
    if T > 0:
        tl.store(out_ptr + base, zero, mask=mask)
    v = zero
    s = zero
    a = zero
    for t in range(T - 1):
        th = theta + beta * a
        s_new = tl.where(v - th > 0.0, 1.0, 0.0)
        u = alpha * v + tl.load(h_ptr + base + t * H, mask=mask, other=0.0)
        tl.store(v_ptr + base + t * H, v, mask=mask)
        tl.store(u_ptr + base + t * H, u, mask=mask)
        tl.store(a_ptr + base + t * H, a, mask=mask)
        if SUBTRACT:
            v = u - th * s
        else:
            v = u * (1.0 - s) + v_reset * s
        s = s_new
        a = rho * a + gain * s_new
        tl.store(out_ptr + base + (t + 1) * H, s_new, mask=mask)


@triton.jit
def _backward_kernel(g_ptr, v_ptr, u_ptr, a_ptr, out_ptr, sig_ptr, alpha_ptr, gh_ptr, ga_ptr, slope, theta,
                     v_reset, rho, gain, beta, lanes, batch, T, H, SUBTRACT: tl.constexpr,
                     BLOCK: tl.constexpr):
    n = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = n < lanes
    row = n // H
    j = n % H
    base = row.to(tl.int64) * T * H + j
    alpha = tl.load(alpha_ptr + (row // batch) * H + j, mask=mask, other=0.0)
    zero = tl.full([BLOCK], 0.0, tl.float32)
    if T > 0:
        tl.store(gh_ptr + base + (T - 1) * H, zero, mask=mask)  # the last input never reaches a spike
    gv = zero  # adjoints of the state after the step
    gs = zero
    ga = zero
    acc = zero
    for i in range(T - 1):
        t = T - 2 - i
        total = gs + tl.load(g_ptr + base + (t + 1) * H, mask=mask, other=0.0) + gain * ga
        sig = tl.load(sig_ptr + base + t * H, mask=mask, other=0.0)
        sg = slope * sig * (1.0 - sig) * total
        s_old = tl.load(out_ptr + base + t * H, mask=mask, other=0.0)
        ga = rho * ga - beta * sg
        if SUBTRACT:
            gu = gv
            ga = ga - beta * s_old * gv
            gs_new = -(theta + beta * tl.load(a_ptr + base + t * H, mask=mask, other=0.0)) * gv
        else:
            gu = gv * (1.0 - s_old)
            gs_new = (v_reset - tl.load(u_ptr + base + t * H, mask=mask, other=0.0)) * gv
        tl.store(gh_ptr + base + t * H, gu, mask=mask)
        acc += tl.load(v_ptr + base + t * H, mask=mask, other=0.0) * gu
        gv = sg + alpha * gu
        gs = gs_new
    tl.store(ga_ptr + n, acc, mask=mask)


def _constants(rec: ALIFRecurrence):
    # (1 - rho) taken in float64 first, as the reference's tensor arithmetic
    return rec.threshold, rec.v_reset, rec.decay, 1 - rec.decay, rec.strength


def forward(h, alpha, rec: ALIFRecurrence):
    """Spikes and the membrane ``v``, pre-reset membrane ``u`` and adaptation ``a`` at the start of every
    step, each ``(K, B, T, N)`` float32."""
    models, batch, T, hidden = h.shape
    out, v, u, a = (torch.zeros_like(h) for _ in range(4))
    lanes = models * batch * hidden
    with on_device(h):
        _forward_kernel[(triton.cdiv(lanes, BLOCK),)](
            h, alpha, out, v, u, a, *_constants(rec), lanes, batch, T, hidden, SUBTRACT=rec.subtract,
            BLOCK=BLOCK, num_warps=1, enable_fp_fusion=False)
    return out, v, u, a


def backward(grad, v, u, a, spikes, alpha, rec: ALIFRecurrence, need_alpha: bool):
    """Gradients wrt ``h`` ``(K, B, T, N)`` and, if ``need_alpha``, wrt ``alpha`` ``(K, N)``."""
    models, batch, T, hidden = v.shape
    grad_h = torch.empty_like(v)
    grad_alpha = torch.empty((models, batch, hidden), dtype=v.dtype, device=v.device)  # one per lane
    lanes = models * batch * hidden
    with on_device(v):
        _backward_kernel[(triton.cdiv(lanes, BLOCK),)](
            grad, v, u, a, spikes, surrogate_of(v, a, rec).contiguous(), alpha, grad_h, grad_alpha, rec.slope,
            *_constants(rec), lanes, batch, T, hidden, SUBTRACT=rec.subtract, BLOCK=BLOCK, num_warps=1,
            enable_fp_fusion=False)
    return grad_h, (grad_alpha.sum(1) if need_alpha else None)
