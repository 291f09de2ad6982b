"""CUDA backend of :mod:`.fused`: its recurrence and backward as triton kernels.

One lane per (model, batch, neuron) walks time, keeping the state in registers.
Fused multiply-add is switched off (``enable_fp_fusion=False``) because the reference rounds
``alpha * w`` before adding ``h``; with it on, spikes near threshold could differ.
With ``TRITON_INTERPRET=1`` set before this module is imported the same kernels run on CPU tensors
(slowly), which is how the tests check them without a GPU.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

from ..neurons.surrogate import CUTOFF as _CUTOFF
from .fused import Recurrence

CUTOFF = tl.constexpr(_CUTOFF)  # a jitted function reads only constexpr globals

BLOCK = 32  # lanes per program, one warp: many small programs spread the sequential loop over SMs


@triton.jit
def _surrogate_sigmoid(kx):
    """sig(k x), 0 below the surrogate's cut-off (spikeloc.neurons.surrogate.CUTOFF)."""
    return tl.where(kx < CUTOFF, 0.0, 1.0 / (1.0 + tl.exp(-tl.maximum(kx, CUTOFF))))  # exp never overflows


@triton.jit
def _reset(u, q, theta, v_reset, SUBTRACT: tl.constexpr):
    """R(u, q) and r = dR/du (see :mod:`.fused`)."""
    if SUBTRACT:
        return u - theta * q, tl.full(u.shape, 1.0, tl.float32)
    r = 1.0 - q
    return u * r + v_reset * q, r


@triton.jit
def _reset_slope(u, theta, v_reset, SUBTRACT: tl.constexpr):
    """c = dR/dq at pre-reset membrane u."""
    if SUBTRACT:
        return tl.full(u.shape, 0.0, tl.float32) - theta
    return v_reset - u


@triton.jit
def _forward_kernel(h_ptr, alpha_ptr, out_ptr, u_ptr, theta, v_reset, lanes, batch, T, H, steps,
                    LAG: tl.constexpr, SHIFT: tl.constexpr, SUBTRACT: tl.constexpr, BLOCK: tl.constexpr):
    n = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = n < lanes
    row = n // H  # k * batch + b
    j = n % H
    base = row.to(tl.int64) * T * H + j  # element (k, b, 0, j)
    a = tl.load(alpha_ptr + (row // batch) * H + j, mask=mask, other=0.0)
    zero = tl.full([BLOCK], 0.0, tl.float32)  # not tl.zeros: a @jit helper, compiled if triton came first
    for t in range(T - steps):  # min(SHIFT, T) spikes before the first recorded one
        tl.store(out_ptr + base + t * H, zero, mask=mask)
    w = zero  # w[t-1]
    q1 = zero  # q[t-1]
    q2 = zero  # q[t-2]
    for t in range(steps):
        ut = a * w + tl.load(h_ptr + base + t * H, mask=mask, other=0.0)
        if LAG == 0:
            q = tl.where(ut > theta, 1.0, 0.0)
            w, _ = _reset(ut, q, theta, v_reset, SUBTRACT)
        else:
            if LAG == 1:
                w, _ = _reset(ut, q1, theta, v_reset, SUBTRACT)
            else:
                w, _ = _reset(ut, q2, theta, v_reset, SUBTRACT)
            q = tl.where(w > theta, 1.0, 0.0)
        tl.store(u_ptr + base + t * H, ut, mask=mask)
        tl.store(out_ptr + base + (t + SHIFT) * H, q, mask=mask)
        q2 = q1
        q1 = q


@triton.jit
def _backward_kernel(g_ptr, u_ptr, out_ptr, alpha_ptr, gh_ptr, ga_ptr, slope, theta, v_reset, lanes, batch,
                     T, H, steps, LAG: tl.constexpr, SHIFT: tl.constexpr, SUBTRACT: tl.constexpr,
                     BLOCK: tl.constexpr):
    n = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = n < lanes
    row = n // H
    j = n % H
    base = row.to(tl.int64) * T * H + j
    a = tl.load(alpha_ptr + (row // batch) * H + j, mask=mask, other=0.0)
    zero = tl.full([BLOCK], 0.0, tl.float32)  # not tl.zeros: a @jit helper, compiled if triton came first
    for t in range(steps, T):  # inputs that never reach a recorded spike
        tl.store(gh_ptr + base + t * H, zero, mask=mask)
    gw1 = zero  # G_w[t+1]
    gw2 = zero  # G_w[t+2]
    u1 = zero  # u[t+1]
    u2 = zero  # u[t+2]
    gu1 = zero  # G_u[t+1]
    acc = zero  # dL/dalpha of this lane
    for i in range(steps):
        t = steps - 1 - i
        ut = tl.load(u_ptr + base + t * H, mask=mask, other=0.0)
        if LAG == 0:
            w, r = _reset(ut, tl.load(out_ptr + base + (t + SHIFT) * H, mask=mask, other=0.0), theta, v_reset,
                          SUBTRACT)
            gw = a * gu1  # G_w[t]: w[t] feeds u[t+1]
            g = tl.load(g_ptr + base + (t + SHIFT) * H, mask=mask, other=0.0)
            g = g + gw * _reset_slope(ut, theta, v_reset, SUBTRACT)  # q[t] resets w[t]
            sig = _surrogate_sigmoid(slope * (ut - theta))
            acc += gu1 * w
            gu = g * slope * sig * (1.0 - sig) + gw * r
        else:
            # q[t-L] = 0 before the start; t as a block because the interpreter mishandles
            # block & scalar masks
            has_lag = tl.full([BLOCK], t, tl.int32) >= LAG
            q_lag = tl.load(out_ptr + base + (t - LAG + SHIFT) * H, mask=mask & has_lag, other=0.0)
            w, r = _reset(ut, q_lag, theta, v_reset, SUBTRACT)
            g = tl.load(g_ptr + base + (t + SHIFT) * H, mask=mask, other=0.0)
            if LAG == 1:  # q[t] also resets w[t+L] = R(u[t+L], q[t])
                g = g + gw1 * _reset_slope(u1, theta, v_reset, SUBTRACT)
            else:
                g = g + gw2 * _reset_slope(u2, theta, v_reset, SUBTRACT)
            sig = _surrogate_sigmoid(slope * (w - theta))
            gw = g * slope * sig * (1.0 - sig) + a * gu1
            acc += gu1 * w  # u[t+1] = alpha * w[t] + h[t+1]
            gu = gw * r
        tl.store(gh_ptr + base + t * H, gu, mask=mask)
        gw2 = gw1
        gw1 = gw
        u2 = u1
        u1 = ut
        gu1 = gu
    tl.store(ga_ptr + n, acc, mask=mask)


def on_device(x: torch.Tensor):
    """Launch on the tensor's GPU, not the current one; CPU tensors only occur in interpreter mode."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def forward(h: torch.Tensor, alpha: torch.Tensor, rec: Recurrence) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and pre-reset membrane ``u``, both ``(K, B, T, N)`` float32."""
    models, batch, T, hidden = h.shape
    out, u = torch.empty_like(h), torch.empty_like(h)
    lanes = models * batch * hidden
    with on_device(h):
        _forward_kernel[(triton.cdiv(lanes, BLOCK),)](
            h, alpha, out, u, rec.threshold, rec.v_reset, lanes, batch, T, hidden, max(T - rec.shift, 0),
            LAG=rec.lag, SHIFT=rec.shift, SUBTRACT=rec.subtract, BLOCK=BLOCK, num_warps=1,
            enable_fp_fusion=False)
    return out, u


def backward(grad: torch.Tensor, u: torch.Tensor, spikes: torch.Tensor, alpha: torch.Tensor, rec: Recurrence,
             need_alpha: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gradients wrt ``h`` ``(K, B, T, N)`` and, if ``need_alpha``, wrt ``alpha`` ``(K, N)``."""
    models, batch, T, hidden = u.shape
    grad_h = torch.empty_like(u)
    # one partial sum per lane, reduced over the batch below
    grad_alpha = torch.empty((models, batch, hidden), dtype=u.dtype, device=u.device)
    lanes = models * batch * hidden
    with on_device(u):
        _backward_kernel[(triton.cdiv(lanes, BLOCK),)](
            grad, u, spikes, alpha, grad_h, grad_alpha, rec.slope, rec.threshold, rec.v_reset, lanes, batch,
            T, hidden, max(T - rec.shift, 0), LAG=rec.lag, SHIFT=rec.shift, SUBTRACT=rec.subtract,
            BLOCK=BLOCK, num_warps=1, enable_fp_fusion=False)
    return grad_h, (grad_alpha.sum(1) if need_alpha else None)
