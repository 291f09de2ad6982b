"""Initialisation of the models' weights: random (``model.init = "notebook"``, ``"fan_in"`` or
``"fan_out"``) and, as a separate data-dependent step, the ideal observer's templates (``model.init =
"observer"``).

Observer templates. The ideal observer scores each (tone phase ``theta``, IPD ``delta``) by the
log-likelihood of one step's spikes ``x``:

    ll(x; theta, delta) = x_left @ a(theta + d) + x_right @ a(theta + delta + d) + silence(theta, delta)

with ``a = log(p / (1 - p))`` the log-odds of each fibre's spike probability ``p`` and ``d`` the
fibres' phase delays (:mod:`spikeloc.task.likelihood`). Summed over steps, the best (phase, IPD)
pairs come close to the observer (``experiments/local_observer.py``). Hidden neuron ``(j, m)`` gets
the log-likelihood ratio of the pair (``theta_j``, ``delta_m``), ``init_phases`` phases over the
cycle by ``hidden / init_phases`` IPDs at equal steps across the IPD range, against a null of
constant rate (the cycle's mean ``p``). Its current is standardised to unit spread on random
stimuli, and its bias makes it fire ``init_rate`` spikes per step: a coincidence detector that fires
when both ears agree with its phase and IPD. (Without the null a neuron whose template expects many
spikes fires most in quiet steps, and the neurons at the ends of the IPD range prefer central IPDs.)
Training then tunes these detectors and learns the readout, which starts as in ``fan_in``.
"""

from __future__ import annotations

import math

import torch

from ..config.schema import ModelConfig, StimulusConfig
from ..task.bins import bin_centres
from ..task.likelihood import log_likelihood_tables
from ..task.stimulus import random_ipd_input_signal

NOTEBOOK_FAN_IN = 12  # quirk 2: the notebook takes the fan-in from W (inputs x 12 classes): size(1) = 12
MIN_LOG_ODDS = math.log(1e-4)  # a spike at p ~ 0 is strong evidence, not a -inf veto: currents stay in range
CALIBRATION_SAMPLES = 64  # random stimuli per model that set each neuron's scale and bias
BISECTION_STEPS = 30


def observer_templates(stim: StimulusConfig, phases: int, ipds: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights ``(inputs, phases*ipds)`` and biases ``(phases*ipds,)``, float64: the per-step
    log-likelihood ratio.

    Column ``j * ipds + m`` is tone phase ``2*pi*j/phases`` and IPD ``delta_m``, the centre of the
    ``m``-th of ``ipds`` equal parts of the IPD range: ``x @ W + b`` is ``ll(x; theta_j, delta_m)``
    (log-odds floored at ``MIN_LOG_ODDS``) minus the log-likelihood of ``x`` when every fibre
    spikes with the cycle's mean probability.
    """
    ipd = bin_centres(stim, ipds)
    left_odds, left_silence = log_likelihood_tables(stim, torch.zeros(1, dtype=torch.float64), phases)
    right_odds, right_silence = log_likelihood_tables(stim, ipd / (2 * math.pi), phases)
    right_odds = right_odds.view(ipds, stim.anf_per_ear, phases).permute(1, 2, 0)  # (fibres, phases, ipds)
    weights = torch.cat([left_odds[:, :, None].expand_as(right_odds), right_odds])
    bias = left_silence.T + right_silence.T  # (phases, 1) + (phases, ipds)
    envelope = ((0.5 * (1 + torch.linspace(0, 2 * math.pi, 3601, dtype=torch.float64)[:-1].sin()))
                ** stim.envelope_power)
    p_null = stim.rate_max * stim.dt * envelope.mean()
    null_odds, null_silence = (p_null / (1 - p_null)).log(), stim.inputs * torch.log1p(-p_null)
    # (inputs, phases, ipds) -> (inputs, phases*ipds) and (phases, ipds) -> (phases*ipds,): column j*ipds + m
    return (weights.reshape(stim.inputs, -1).clamp(min=MIN_LOG_ODDS) - null_odds,
            bias.reshape(-1) - null_silence)


def bound(cfg: ModelConfig, shape: torch.Size) -> float:
    """Half-width of the uniform random initialisation of a weight matrix of ``shape`` (inputs, outputs)."""
    fan_in, fan_out = shape
    if cfg.init == "notebook":
        return 1 / math.sqrt(NOTEBOOK_FAN_IN)
    # fan_out: the research notebooks' snn_init, where torch's fan-in of an (in, out) matrix is its out
    return cfg.init_gain / math.sqrt(fan_out if cfg.init == "fan_out" else fan_in)


def uniform(shape: torch.Size, bound: float, generators: list[torch.Generator]) -> torch.Tensor:
    """``(K, *shape)``: one U(-bound, bound) draw per model, model k from ``generators[k]``
    (on its device)."""
    return torch.stack([(torch.rand(shape, generator=g, device=g.device) * 2 - 1) * bound
                        for g in generators])


@torch.no_grad()
def signs(units: int, inhibitory_fraction: float, generators: list[torch.Generator],
          choice: str = "random") -> torch.Tensor:
    """``(K, units)`` of +1 and -1: ``units * inhibitory_fraction`` (rounded down) units of each model are
    inhibitory (-1): drawn from its generator (``choice = "random"``, as ``Dales_law``'s ``get_dales_mask``)
    or the first ones (``"first"``, as ``IE-neuron-distribution``: for the inputs, the left ear's fibres
    first)."""
    inhibitory = math.floor(units * inhibitory_fraction + 1e-9)  # 0.7 * 30 is 21, not 20.999...
    out = torch.ones(len(generators), units)
    for k, g in enumerate(generators):
        chosen = (torch.randperm(units, generator=g, device=g.device).cpu() if choice == "random"
                  else torch.arange(units))
        out[k, chosen[:inhibitory]] = -1
    return out


@torch.no_grad()
def observer_templates_(model, generators: list[torch.Generator]) -> None:
    """Set the hidden layer of a :class:`~spikeloc.models.network.SpikingNetwork` (every model of its stack)
    to the observer's templates: ``W1`` scaled to unit current spread, ``b1`` bisected to ``init_rate``.

    Each model draws its own calibration stimuli (independent offsets) from its generator.
    """
    stim, cfg = model.stim, model.cfg
    weights, bias = observer_templates(stim, cfg.init_phases, cfg.hidden // cfg.init_phases)
    weights, bias = weights.to(model.W1), bias.to(model.W1)
    stim = stim.model_copy(update={"offset": "per_sample"})
    x = torch.stack([random_ipd_input_signal(CALIBRATION_SAMPLES, stim, g).spikes.float()
                     for g in generators])
    ll = x.flatten(1, 2) @ weights + bias  # (K, samples*T, H)
    scale = 1 / ll.std(1).clamp(min=1e-6)  # (K, H)
    model.W1.copy_(weights * scale[:, None, :])
    centred = (bias - ll.mean(1)) * scale  # current = standardised log-likelihood
    # bisect a per-neuron offset so each neuron fires init_rate spikes per step on the calibration set
    lo, hi = torch.full_like(centred, -20.0), torch.full_like(centred, 20.0)
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        model.b1.copy_(centred + mid)
        too_quiet = model(x).spikes.mean((1, 2)) < cfg.init_rate  # (K, H)
        lo, hi = torch.where(too_quiet, mid, lo), torch.where(too_quiet, hi, mid)
    model.b1.copy_(centred + (lo + hi) / 2)
