"""The spike non-linearity and its surrogate gradient.

Forward, the Heaviside step ``H(x) = 1 if x > 0 else 0``; backward, the derivative of a sigmoid of
slope ``k``, ``k sig(k x) (1 - sig(k x))``, as in the source notebook (``k = 5``). ``x`` is the
membrane minus the threshold, so ``k`` is per unit of membrane potential.
"""

from __future__ import annotations

import torch


class SurrogateSpike(torch.autograd.Function):
    """Heaviside step forward, sigmoid-derivative surrogate backward (slope ``slope``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        sig = torch.sigmoid(ctx.slope * x)
        return grad_output * ctx.slope * sig * (1 - sig), None


def spike_fn(x: torch.Tensor, slope: float = 5.0) -> torch.Tensor:
    """``H(x)`` with the surrogate gradient of slope ``slope``."""
    return SurrogateSpike.apply(x, slope)
