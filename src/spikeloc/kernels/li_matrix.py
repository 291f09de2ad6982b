"""Fast path of the leaky integrator (:mod:`spikeloc.neurons.li`): the time loop as one matrix product.

A leaky integrator is a linear filter, ``y[t] = sum_u alpha**(t - lag - u) h[u]`` over ``u <= t - lag``
(``lag`` 1 for the notebook rule, else 0), so the whole trace is one batched product with a
``(T, T)`` lower-triangular matrix per neuron instead of ``T`` Python steps, and its time mean is
one weighted sum over time, with weights from a cumulative sum.
"""

from __future__ import annotations

import torch

from ..neurons.li import LIParams
from ..neurons.lif import RECORDING_LAG


def leaky_kernel(p: LIParams, steps: int) -> torch.Tensor:
    """``kern[k, n, t, u] = alpha[k, n]**(t - lag - u)`` for ``u <= t - lag``, else 0: ``(K, N, T, T)``.

    Differentiable in alpha (built as ``exp(k log alpha)``; alpha is floored at 1e-30, so a time
    constant far below ``dt``, where alpha underflows to 0, gives ``0**0 = 1`` rather than NaN).
    """
    lag = RECORDING_LAG[p.update_rule]
    t = torch.arange(steps, device=p.alpha.device)
    k = t[:, None] - lag - t[None, :]
    log_alpha = torch.log(p.alpha.clamp(min=1e-30))[:, :, None, None]  # (K, N, 1, 1)
    return torch.where(k >= 0, torch.exp(k.clamp(min=0) * log_alpha), 0.0)


def li_trace(h: torch.Tensor, p: LIParams) -> torch.Tensor:
    """Same as :func:`spikeloc.neurons.li.li_sequence`: the trace ``(K, B, T, N)`` for ``h``
    ``(K, B, T, N)``."""
    kern = leaky_kernel(p, h.shape[2])
    return torch.matmul(kern, h.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)  # via (K, N, T, B)


def time_mean_weights(p: LIParams, steps: int) -> torch.Tensor:
    """``w[k, n, u]``, the weight of input step ``u`` in the trace's time mean, ``(K, N, T)``: the mean over
    ``t`` of :func:`leaky_kernel`, ``sum_{j <= T-1-lag-u} alpha**j / T``, from one cumulative sum of
    powers of alpha (``O(T)`` per neuron instead of the ``T x T`` kernel)."""
    lag = RECORDING_LAG[p.update_rule]
    j = torch.arange(steps, device=p.alpha.device)
    log_alpha = torch.log(p.alpha.clamp(min=1e-30))[:, :, None]  # (K, N, 1), floored as in leaky_kernel
    partial = torch.exp(j * log_alpha).cumsum(-1)  # (K, N, T): sum_{i <= j} alpha**i
    last = steps - 1 - lag - j  # the last power that input step u = j reaches
    return torch.where(last >= 0, partial[..., last.clamp(min=0)], 0.0) / steps


def li_time_mean(h: torch.Tensor, p: LIParams) -> torch.Tensor:
    """Time mean of :func:`li_trace`, ``(K, B, N)``: ``sum_u w[n, u] h[u, n]`` with the weights of
    :func:`time_mean_weights`."""
    weights = time_mean_weights(p, h.shape[2]).transpose(1, 2)[:, None]  # (K, 1, T, N)
    return (h * weights).sum(2)  # a product and a sum: h is small (N outputs), the batched matmul copies it
