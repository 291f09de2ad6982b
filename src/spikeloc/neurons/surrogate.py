"""The spike non-linearity and its surrogate gradient.

Forward, the Heaviside step ``H(x) = 1 if x > 0 else 0``; backward, the derivative of a sigmoid of
slope ``k``, ``k sig(k x) (1 - sig(k x))``, as in the source notebook (``k = 5``). ``x`` is the
membrane minus the threshold, so ``k`` is per unit of membrane potential.

The surrogate is exactly 0 where ``k x < -40`` (:data:`CUTOFF`), where its value is below 2e-17 of
its peak. Far below threshold the sigmoid would otherwise reach float32's subnormal range (below
1.2e-38 from ``k x < -87``), and every product with a subnormal is slow on a CPU: they made a
training step several times slower (docs/performance.md). The cut-off is part of the definition:
the reference and every fused kernel apply it alike.
"""

from __future__ import annotations

import torch

CUTOFF = -40.0  # k x below this: the surrogate is 0


def surrogate_sigmoid(kx: torch.Tensor) -> torch.Tensor:
    """``sig(k x)`` for ``kx = k x``, 0 where ``kx < CUTOFF``: the surrogate is ``k s (1 - s)`` of it."""
    return torch.sigmoid(kx).masked_fill_(kx < CUTOFF, 0.0)


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
        sig = surrogate_sigmoid(ctx.slope * x)
        return grad_output * ctx.slope * sig * (1 - sig), None


def spike_fn(x: torch.Tensor, slope: float = 5.0) -> torch.Tensor:
    """``H(x)`` with the surrogate gradient of slope ``slope``."""
    return SurrogateSpike.apply(x, slope)
