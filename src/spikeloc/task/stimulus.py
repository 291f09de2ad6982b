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
    # with offset = "per_epoch": the generator's state before the uniform draws that became the spikes, so
    # that the same draws give the spikes of a new offset (:func:`with_new_offset`)
    draw_state: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.ipd)


def phase_delays(cfg: StimulusConfig, device=None) -> torch.Tensor:
    """Phase delay of each fibre of one ear (rad), ``(anf_per_ear,)``: 0 for all with ``phase_delays =
    false``."""
    largest = math.radians(cfg.max_phase_delay_deg) if cfg.phase_delays else 0.0
    return torch.linspace(0, largest, cfg.anf_per_ear, device=device)


def spike_probability(ipd: torch.Tensor, offset: torch.Tensor, cfg: StimulusConfig,
                      out: torch.Tensor | None = None, delay_noise: torch.Tensor | None = None
                      ) -> torch.Tensor:
    """Spike probability per step, ``(n, T, I)`` float32, for IPDs (rad) and offsets (cycles);
    ``delay_noise`` (rad, ``(I,)``) is added to the fibres' phase delays.

    ``sin(phi_t + d_i) = sin(phi_t) cos(d_i) + cos(phi_t) sin(d_i)`` (``d_i`` the fibre's phase) turns the
    (n, T, I) array of sines into one batched matrix product of small factors.
    """
    device, n = ipd.device, len(ipd)
    t = torch.arange(cfg.steps, device=device, dtype=torch.float64) * cfg.dt
    phi = 2 * math.pi * (cfg.f * t[None, :] + offset.double()[:, None])  # (n, T)
    delay = phase_delays(cfg, device).double()
    fibre_phase = torch.cat([delay.expand(n, -1), delay[None, :] + ipd.double()[:, None]], dim=1)  # (n, I)
    if delay_noise is not None:
        fibre_phase = fibre_phase + delay_noise.double()[None, :]
    time_factor = torch.stack([phi.sin(), phi.cos()], dim=2).float()  # (n, T, 2)
    fibre_factor = torch.stack([fibre_phase.cos(), fibre_phase.sin()], dim=1).float()  # (n, 2, I)
    p = torch.bmm(time_factor, fibre_factor, out=out)
    return p.mul_(0.5).add_(0.5).pow_(cfg.envelope_power).mul_(cfg.rate_max * cfg.dt)


def input_signal(ipd: torch.Tensor, cfg: StimulusConfig, generator: torch.Generator,
                 offset: torch.Tensor | None = None, delay_noise_deg: float = 0.0) -> Dataset:
    """Spikes for given IPDs (rad). Offsets follow ``cfg.offset`` unless given (cycles, ``(n,)``).

    ``delay_noise_deg``: each fibre's phase delay gets Gaussian noise of this standard deviation (deg), one
    draw per fibre for the whole set (as the community's ``Noise_robustness`` notebook).
    """
    n, device = len(ipd), ipd.device
    if offset is None:
        draws = n if cfg.offset == "per_sample" else 1  # per_dataset, per_epoch: one for the set
        offset = torch.rand(draws, generator=generator, device=device).expand(n).contiguous()
    delay_noise = None
    if delay_noise_deg > 0:
        delay_noise = (torch.randn(cfg.inputs, generator=generator, device=device)
                       * math.radians(delay_noise_deg))  # (I,)
    draw_state = generator.get_state() if cfg.offset == "per_epoch" else None
    spikes = torch.empty((n, cfg.steps, cfg.inputs), dtype=torch.bool, device=device)
    # scratch reused across chunks: small enough to stay in cache, no allocation per chunk
    p = torch.empty((min(n, CHUNK), cfg.steps, cfg.inputs), device=device)
    draw = torch.empty_like(p)
    for start in range(0, n, CHUNK):
        sl = slice(start, start + CHUNK)
        m = len(ipd[sl])
        spike_probability(ipd[sl], offset[sl], cfg, out=p[:m], delay_noise=delay_noise)
        torch.lt(draw[:m].uniform_(generator=generator), p[:m], out=spikes[sl])
    # bool -> uint8, no copy
    return Dataset(ipd=ipd.float(), spikes=spikes.view(torch.uint8), offset=offset, draw_state=draw_state)


def random_ipd_input_signal(n: int, cfg: StimulusConfig, generator: torch.Generator,
                            delay_noise_deg: float = 0.0) -> Dataset:
    """``n`` stimuli with IPDs uniform in the configured range (``delay_noise_deg``: :func:`input_signal`)."""
    lo, hi = cfg.ipd_range
    ipd = lo + (hi - lo) * torch.rand(n, generator=generator, device=generator.device)
    return input_signal(ipd, cfg, generator, delay_noise_deg=delay_noise_deg)


def with_offset(data: Dataset, cfg: StimulusConfig, offset: torch.Tensor) -> Dataset:
    """The set ``data`` (drawn with ``offset = "per_epoch"``) heard with phase offsets ``offset`` (cycles,
    ``(n,)``): the same IPDs and the same uniform draws, so only the offset changes."""
    if data.draw_state is None:
        raise ValueError("with_offset needs a set drawn with offset = 'per_epoch'")
    replay = torch.Generator(device=data.ipd.device)
    replay.set_state(data.draw_state)
    return input_signal(data.ipd, cfg, replay, offset=offset)


def with_new_offset(data: Dataset, cfg: StimulusConfig, generator: torch.Generator) -> Dataset:
    """:func:`with_offset` with one new offset for the whole set, drawn from ``generator`` (the community's
    ``Quick_Start_random``: "the Poisson spikes are only generated once")."""
    offset = torch.rand(1, generator=generator, device=data.ipd.device).expand(len(data)).contiguous()
    return with_offset(data, cfg, offset)
