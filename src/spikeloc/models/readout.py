"""The output layer: from the currents a weight matrix makes of its input spikes to class scores.

``readout`` (``model.readout``) is chosen once, at construction:

| readout | scores | output neurons |
|---|---|---|
| ``mean``, ``max``, ``last`` | time mean, maximum or last value of the membrane trace | leaky integrators |
| ``count`` | spike count | LIF neurons (the hidden layer's update rule and reset) |
| ``spike_rate`` | spikes per step (count / T) | the same LIF neurons |
| ``rate``, ``sum`` | ``W``-weighted input rate (spikes / T) or count | none: linear in the input spikes |

``rate`` is a leak-free integrator read at the end, divided by the steps; ``sum`` drops the division,
so the scores are the sum over steps of each step's ``x[t] @ W`` (what ``train.target = "observer"``
trains step by step).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..config.schema import ModelConfig, StimulusConfig
from ..kernels.dispatch import li, li_mean, lif
from ..neurons.li import LIParams
from ..neurons.lif import LIFParams
from .stack import project, register_time_constant

Project = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (spikes, W) -> currents (K, B, T, C)


def _mean(layer: Readout, x: torch.Tensor, W: torch.Tensor, proj: Project) -> torch.Tensor:
    return li_mean(proj(x, W), layer.li_params(), layer.cfg.engine)


def _max(layer: Readout, x: torch.Tensor, W: torch.Tensor, proj: Project) -> torch.Tensor:
    return li(proj(x, W), layer.li_params(), layer.cfg.engine).amax(-2)


def _last(layer: Readout, x: torch.Tensor, W: torch.Tensor, proj: Project) -> torch.Tensor:
    return li(proj(x, W), layer.li_params(), layer.cfg.engine)[:, :, -1]


def _count(layer: Readout, x: torch.Tensor, W: torch.Tensor, proj: Project) -> torch.Tensor:
    cfg = layer.cfg
    params = LIFParams(layer.alpha(), cfg.update_rule, cfg.reset, surrogate_slope=cfg.surrogate_slope)
    return lif(proj(x, W), params, cfg.engine).sum(-2)


def _spike_rate(layer: Readout, x: torch.Tensor, W: torch.Tensor, proj: Project) -> torch.Tensor:
    return _count(layer, x, W, proj) / x.shape[-2]


def _time_reduced(x: torch.Tensor, W: torch.Tensor, proj: Project, reduce) -> torch.Tensor:
    """``reduce`` over time of the currents: of the spikes first when the currents are their product with
    ``W`` (linear, and T times fewer products), else of the currents (delayed synapses: what arrives within
    the stimulus)."""
    if proj is project:
        return torch.bmm(reduce(x), W)
    return reduce(proj(x, W))


def _rate(layer: Readout, x: torch.Tensor, W: torch.Tensor, proj: Project) -> torch.Tensor:
    return _time_reduced(x, W, proj, lambda t: t.mean(-2))


def _sum(layer: Readout, x: torch.Tensor, W: torch.Tensor, proj: Project) -> torch.Tensor:
    return _time_reduced(x, W, proj, lambda t: t.sum(-2))


READOUTS = {"mean": _mean, "max": _max, "last": _last, "count": _count, "spike_rate": _spike_rate,
            "rate": _rate, "sum": _sum}
# readouts that have output neurons and their time constants
WITH_NEURONS = {"mean", "max", "last", "count", "spike_rate"}
LINEAR_READOUTS = {"mean", "last", "rate", "sum"}  # scores linear in the input spikes


class Readout(nn.Module):
    """``readout(x, W)``: scores ``(K, B, C)`` for spikes ``x`` ``(K, B, T, N)`` and weights ``W``
    ``(K, N, C)``; the readouts with output neurons also take ``(B, T, N)``, shared by the stack. With
    output neurons it holds their time constants, ``log_tau_out`` ``(K, C)`` (s)."""

    def __init__(self, stim: StimulusConfig, cfg: ModelConfig, readout: str, models: int, bins: int,
                 device=None):
        super().__init__()
        self.dt, self.cfg = stim.dt, cfg
        self._scores = READOUTS[readout]
        if readout in WITH_NEURONS:
            register_time_constant(self, "log_tau_out", (models, bins), cfg.tau_out_ms, cfg.learn_tau, device)

    def alpha(self) -> torch.Tensor:
        """Decay per step of the output neurons, ``exp(-dt / tau)``, ``(K, C)``."""
        return torch.exp(-self.dt / self.log_tau_out.exp())

    def li_params(self) -> LIParams:
        return LIParams(self.alpha(), self.cfg.update_rule)

    def forward(self, x: torch.Tensor, W: torch.Tensor, proj: Project = project) -> torch.Tensor:
        """Scores; ``proj`` makes the currents of ``x`` and ``W`` (default: the product; learned delays
        pass :func:`spikeloc.models.delays.delayed_project`)."""
        return self._scores(self, x, W, proj)
