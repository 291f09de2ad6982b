"""Reference neuron dynamics in plain PyTorch: the definition every fast path is tested against.

Hidden layer, leaky integrate-and-fire (LIF) with reset by multiplication, threshold 1:

    standard:  v[t] = (alpha * v[t-1] + h[t]) * (1 - s[t-1]);   s[t] = H(v[t] - 1)
    immediate: v[t] = alpha * v[t-1] * (1 - s[t-1]) + h[t];     s[t] = H(v[t] - 1)
    notebook:  v[t+1] = (alpha * v[t] + h[t]) * (1 - s[t]);     s[t+1] = H(v[t] - 1),  s[0] = 0

``alpha = exp(-dt / tau)``. In ``notebook`` semantics (the source notebook's loop) the spike
is taken from the membrane *before* the update, so spikes lag one step, the reset lags two,
and the last two input steps never reach a recorded spike. In ``standard`` semantics the reset
also drops the input of the step after a spike, so a neuron is silent for that step; ``immediate``
resets only the membrane (as Norse's LIF), so a neuron driven hard enough can spike every step. ``H`` is the Heaviside step in the
forward pass; its gradient is replaced by the sigmoid surrogate ``beta * sig(beta x) * (1 - sig(beta x))``.

Readout, leaky integrator without spikes:

    standard, immediate:  y[t] = alpha * y[t-1] + h[t]
    notebook:  y[0] = 0;  y[t+1] = alpha * y[t] + h[t]   (for t < steps - 1)

Shapes: inputs ``h`` are ``(..., steps, neurons)``; ``alpha`` broadcasts against ``(..., neurons)``.
"""

from __future__ import annotations

import torch


class SurrogateSpike(torch.autograd.Function):
    """Heaviside step forward, sigmoid-derivative surrogate backward (slope ``beta``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, beta: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.beta = beta
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        sig = torch.sigmoid(ctx.beta * x)
        return grad_output * ctx.beta * sig * (1 - sig), None


def spike_fn(x: torch.Tensor, beta: float = 5.0) -> torch.Tensor:
    return SurrogateSpike.apply(x, beta)


def lif_reference(h: torch.Tensor, alpha: torch.Tensor, beta: float, semantics: str) -> torch.Tensor:
    """Hidden LIF spikes ``(..., steps, neurons)`` for input currents ``h`` of the same shape."""
    steps = h.shape[-2]
    v = torch.zeros_like(h[..., 0, :])
    s = torch.zeros_like(v)
    out = []
    if semantics == "standard":
        for t in range(steps):
            v = (alpha * v + h[..., t, :]) * (1 - s)
            s = spike_fn(v - 1, beta)
            out.append(s)
    elif semantics == "immediate":
        for t in range(steps):
            v = alpha * v * (1 - s) + h[..., t, :]
            s = spike_fn(v - 1, beta)
            out.append(s)
    else:  # notebook
        out.append(s)
        for t in range(steps - 1):
            new_v = (alpha * v + h[..., t, :]) * (1 - s)
            s = spike_fn(v - 1, beta)
            v = new_v
            out.append(s)
    return torch.stack(out, dim=-2)


def leaky_integrator_reference(h: torch.Tensor, alpha: torch.Tensor, semantics: str) -> torch.Tensor:
    """Readout membrane trace ``(..., steps, neurons)``, one Python step at a time."""
    steps = h.shape[-2]
    y = torch.zeros_like(h[..., 0, :])
    out = []
    if semantics != "notebook":
        for t in range(steps):
            y = alpha * y + h[..., t, :]
            out.append(y)
    else:
        out.append(y)
        for t in range(steps - 1):
            y = alpha * y + h[..., t, :]
            out.append(y)
    return torch.stack(out, dim=-2)


def leaky_kernel(alpha: torch.Tensor, steps: int, semantics: str) -> torch.Tensor:
    """The leaky integrator as a matrix over time: ``y[..., t, n] = sum_u kern[n, t, u] h[..., u, n]``.

    ``kern[n, t, u] = alpha[n]**(t - lag - u)`` for ``u <= t - lag`` (``lag`` 0 standard, 1 notebook), else 0.
    ``alpha`` is ``(models, neurons)``; the result ``(models, neurons, steps, steps)`` stays differentiable
    in alpha (it is built as ``exp(k log alpha)``; alpha is floored at 1e-30, so a time constant far
    below ``dt``, where alpha underflows to 0, gives ``0**0 = 1`` rather than NaN).
    """
    lag = 1 if semantics == "notebook" else 0
    t = torch.arange(steps, device=alpha.device)
    k = t[:, None] - lag - t[None, :]
    return torch.where(k >= 0, torch.exp(k.clamp(min=0) * torch.log(alpha.clamp(min=1e-30))[:, :, None, None]), 0.0)


def leaky_integrator(h: torch.Tensor, alpha: torch.Tensor, semantics: str) -> torch.Tensor:
    """Same as :func:`leaky_integrator_reference` for ``h`` ``(models, batch, steps, neurons)`` and
    ``alpha`` ``(models, neurons)``, as one batched matrix product over time instead of a Python loop."""
    kern = leaky_kernel(alpha, h.shape[-2], semantics)
    return torch.matmul(kern, h.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)  # via (models, neurons, steps, batch)


def leaky_integrator_mean(h: torch.Tensor, alpha: torch.Tensor, semantics: str) -> torch.Tensor:
    """Time mean of :func:`leaky_integrator`, ``(models, batch, neurons)``: a linear filter's mean is one
    weighted sum over time, ``sum_u w[n, u] h[u, n]`` with ``w = kern.mean(over t)``."""
    weights = leaky_kernel(alpha, h.shape[-2], semantics).mean(-2)  # (models, neurons, steps)
    return torch.einsum("knu,kbun->kbn", weights, h)
