"""Learned synaptic delays: every synapse of a layer carries its own delay, learned with the weights.

As Dilated Convolution with Learnable Spacings (DCLS, Khalfaoui-Hassani et al., the community's
``Quick_Start_Delay_DCLS`` notebook uses its ``Dcls1d``): synapse ``(i, o)`` with weight ``W[i, o]`` and delay
``d[i, o]`` (steps, in ``[0, taps - 1]``) adds

    current_o[t] = sum_i sum_j x_i[t - j] W[i, o] k_io[j],     j = 0 .. taps - 1

with, in training, a Gaussian kernel over the taps (its gradient moves the delay)

    k_io[j] = g_io[j] / (sum_j g_io[j] + 1e-7),   g_io[j] = exp(-(j - d[i, o])^2 / (2 sigma^2))

(``g`` is 0 below ``e^-40``, where DCLS has tiny and subnormal floats), whose width ``sigma`` shrinks
over the first quarter of the epochs from ``taps // 2 + 0.27`` to ``0.5`` steps (the notebook's
schedule: :func:`sigma_at`), and at evaluation the hard delay, ``k_io[j] = 1`` at
``j = round(d[i, o])``. It is ``Dcls1d(version="gauss")`` on inputs padded with ``taps - 1`` zeros in
front, with ``d = taps // 2 - P`` and ``sigma = |SIG| + 0.27`` (the tests hold it equal to the ``dcls``
package on the same weights); written here in plain PyTorch so spikeloc does not depend on that
GPL-licensed package.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SIGMA_FLOOR = 0.27  # DCLS adds it to |SIG|: the narrowest kernel
KERNEL_CUTOFF = -40.0  # a kernel weight below e^-40 is 0 (no subnormal floats in the far taps)
SIGMA_END = 0.23  # |SIG| at the end of the notebook's schedule: sigma = 0.5 steps


def taps_for(max_delay_ms: float, dt: float) -> int:
    """Taps of a delay kernel: delays 0 .. max_delay in steps of dt, an odd count as the notebook's."""
    taps = round(max_delay_ms * 1e-3 / dt) + 1
    return taps if taps % 2 else taps + 1


def sigma_at(epoch: int, epochs: int, taps: int) -> float:
    """Kernel width (steps) in epoch ``epoch`` (1-based) of ``epochs``: ``|SIG|`` goes from ``taps // 2``
    to 0.23 geometrically over the first ``epochs // 4`` epochs, then stays (``Quick_Start_Delay_DCLS``)."""
    start, span = taps // 2, max(epochs // 4, 1)
    return start * (SIGMA_END / start) ** (min(epoch - 1, span) / span) + SIGMA_FLOOR


def initial_delays(shape: tuple[int, ...], taps: int, generators: list[torch.Generator]) -> torch.Tensor:
    """Delays ``(K, *shape)`` (steps) around the middle of the kernel: ``taps // 2 + N(0, 0.5)`` (DCLS's
    ``P ~ N(0, 0.5)``), within ``[0, taps - 1]``; model k's from ``generators[k]``."""
    draws = [taps // 2 + 0.5 * torch.randn(shape, generator=g, device=g.device) for g in generators]
    return torch.stack(draws).clamp_(0, taps - 1)


def kernel(delay: torch.Tensor, taps: int, sigma: float | None) -> torch.Tensor:
    """Each synapse's weights over the taps, ``(*delay.shape, taps)``: the normalised Gaussian of width
    ``sigma`` (steps) at its delay, or with ``sigma=None`` 1 at its rounded delay."""
    if sigma is None:
        return F.one_hot(delay.detach().round().long().clamp(0, taps - 1), taps).to(delay.dtype)
    j = torch.arange(taps, device=delay.device, dtype=delay.dtype)
    exponent = -0.5 * ((j - delay[..., None]) / sigma) ** 2
    g = torch.exp(exponent).masked_fill(exponent < KERNEL_CUTOFF, 0.0)
    return g / (g.sum(-1, keepdim=True) + 1e-7)


def delayed_project(x: torch.Tensor, W: torch.Tensor, delay: torch.Tensor, taps: int,
                    sigma: float | None) -> torch.Tensor:
    """Currents ``(K, B, T, out)`` for spikes ``x`` (``(B, T, in)`` shared by the stack, or
    ``(K, B, T, in)``), weights ``W`` and delays ``delay`` (steps), both ``(K, in, out)``: one grouped
    convolution over time per model."""
    K, n_in, n_out = W.shape
    weight = W[..., None] * kernel(delay, taps, sigma)  # (K, in, out, taps)
    # conv1d correlates: tap j of the flipped kernel meets x[t - (taps - 1) + j], i.e. delay taps - 1 - j
    weight = weight.permute(0, 2, 1, 3).flip(-1).reshape(K * n_out, n_in, taps)  # (K*out, in, taps)
    xs = x.expand(K, *x.shape) if x.ndim == 3 else x  # (K, B, T, in)
    # one convolution per model, not one grouped over the stack: that rounds differently from a model
    # alone's, and model k of a stack must equal the run of its seed
    out = [F.conv1d(F.pad(xs[k].transpose(1, 2), (taps - 1, 0)), weight[k * n_out:(k + 1) * n_out])
           for k in range(K)]  # each (B, out, T)
    return torch.stack(out).transpose(2, 3)  # (K, B, T, out)


def delays_ms(delay: torch.Tensor, dt: float) -> torch.Tensor:
    """The hard delays in ms, as evaluation uses them."""
    return delay.detach().round() * dt * 1e3


