"""Poisson spike trains of auditory-nerve fibres (ANFs) in two ears.

Fibre ``i`` of an ear sees the phase

    theta_i(t) = 2*pi*(f*t + offset) + delay_i  (+ ipd in the right ear)

with ``delay_i = linspace(0, max_phase_delay, anf_per_ear)``, and spikes in step ``t``
with probability

    p = rate_max * dt * (0.5 * (1 + sin(theta)))**envelope_power.

Spikes are returned as ``uint8`` of shape ``(n, T, I)``, ``I = 2*anf_per_ear``: left ear first.
Everything is drawn with an explicit ``torch.Generator`` on its device, in float32,
in chunks of samples so no large float intermediate is ever held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config.schema import StimulusConfig

CHUNK = 64  # samples per generation chunk: the float32 scratch stays in cache


@dataclass(frozen=True)
class Dataset:
    """A set of stimuli: true IPDs (rad, float32, ``(n,)``) and spikes (uint8, ``(n, T, I)``)."""

    ipd: torch.Tensor
    spikes: torch.Tensor
    offset: torch.Tensor  # phase offset of each sample, in cycles, ``(n,)``

    def __len__(self) -> int:
        return len(self.ipd)


def phase_delays(cfg: StimulusConfig, device=None) -> torch.Tensor:
    """Phase delay of each fibre of one ear (rad), ``(anf_per_ear,)``: 0 for all with ``phase_delays =
    false``."""
    largest = math.radians(cfg.max_phase_delay_deg) if cfg.phase_delays else 0.0
    return torch.linspace(0, largest, cfg.anf_per_ear, device=device)


def spike_probability(ipd: torch.Tensor, offset: torch.Tensor, cfg: StimulusConfig,
                      out: torch.Tensor | None = None) -> torch.Tensor:
    """Spike probability per step, ``(n, T, I)`` float32, for IPDs (rad) and offsets (cycles).

    ``sin(phi_t + d_i) = sin(phi_t) cos(d_i) + cos(phi_t) sin(d_i)`` (``d_i`` the fibre's phase) turns the
    (n, T, I) array of sines into one batched matrix product of small factors.
    """
    device, n = ipd.device, len(ipd)
    t = torch.arange(cfg.steps, device=device, dtype=torch.float64) * cfg.dt
    phi = 2 * math.pi * (cfg.f * t[None, :] + offset.double()[:, None])  # (n, T)
    delay = phase_delays(cfg, device).double()
    fibre_phase = torch.cat([delay.expand(n, -1), delay[None, :] + ipd.double()[:, None]], dim=1)  # (n, I)
    time_factor = torch.stack([phi.sin(), phi.cos()], dim=2).float()  # (n, T, 2)
    fibre_factor = torch.stack([fibre_phase.cos(), fibre_phase.sin()], dim=1).float()  # (n, 2, I)
    p = torch.bmm(time_factor, fibre_factor, out=out)
    return p.mul_(0.5).add_(0.5).pow_(cfg.envelope_power).mul_(cfg.rate_max * cfg.dt)


def input_signal(ipd: torch.Tensor, cfg: StimulusConfig, generator: torch.Generator,
                 offset: torch.Tensor | None = None) -> Dataset:
    """Spikes for given IPDs (rad). Offsets follow ``cfg.offset`` unless given (cycles, ``(n,)``)."""
    n, device = len(ipd), ipd.device
    if offset is None:
        draws = 1 if cfg.offset == "per_dataset" else n
        offset = torch.rand(draws, generator=generator, device=device).expand(n).contiguous()
    spikes = torch.empty((n, cfg.steps, cfg.inputs), dtype=torch.bool, device=device)
    # scratch reused across chunks: small enough to stay in cache, no allocation per chunk
    p = torch.empty((min(n, CHUNK), cfg.steps, cfg.inputs), device=device)
    draw = torch.empty_like(p)
    for start in range(0, n, CHUNK):
        sl = slice(start, start + CHUNK)
        m = len(ipd[sl])
        spike_probability(ipd[sl], offset[sl], cfg, out=p[:m])
        torch.lt(draw[:m].uniform_(generator=generator), p[:m], out=spikes[sl])
    return Dataset(ipd=ipd.float(), spikes=spikes.view(torch.uint8), offset=offset)  # bool -> uint8, no copy


def random_ipd_input_signal(n: int, cfg: StimulusConfig, generator: torch.Generator) -> Dataset:
    """``n`` stimuli with IPDs uniform in the configured range."""
    lo, hi = cfg.ipd_range
    ipd = lo + (hi - lo) * torch.rand(n, generator=generator, device=generator.device)
    return input_signal(ipd, cfg, generator)
