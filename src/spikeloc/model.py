"""The two networks of the notebook, each as a stack of ``models`` independent copies.

Weights carry a leading ``models`` axis (K): K networks of the same shape train in one
vectorised pass, each exactly as it would alone (Adam is element-wise and the loss is a sum
of per-model losses). K = 1 is the ordinary case.

- :class:`MembraneModel`: inputs -> leaky-integrator readout (no spikes), the notebook's baseline.
- :class:`SpikingModel`: inputs -> LIF hidden layer -> leaky-integrator (or spiking, or linear) readout.

``forward(x)`` takes spikes ``(batch, steps, inputs)`` and returns class scores
``(models, batch, classes)`` plus the hidden spikes (None for the membrane model).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import kernels
from .config import ModelConfig, StimulusConfig
from .templates import init_from_observer

NOTEBOOK_FAN_IN = 12  # quirk 2: the notebook takes fan-in from W (inputs x 12 classes), size(1) = 12


def _uniform(shape, bound: float, generators: list[torch.Generator], device) -> torch.Tensor:
    """One U(-bound, bound) draw per model, each from its own generator."""
    return torch.stack([(torch.rand(shape, generator=g, device=device) * 2 - 1) * bound for g in generators])


def project(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Input currents ``(models, batch, steps, out)`` for spikes ``x`` and stacked weights ``W`` ``(models, in, out)``.

    ``x`` is ``(batch, steps, in)`` (shared by all models) or ``(models, batch, steps, in)``. Shared
    inputs take one matrix product with the models' weights side by side, ``(batch*steps, in) @
    (in, models*out)``, rather than a batched product per sample.
    """
    K, n_in, n_out = W.shape
    if x.ndim == 3:
        out = x.reshape(-1, n_in) @ W.permute(1, 0, 2).reshape(n_in, K * n_out)
        return out.view(*x.shape[:2], K, n_out).permute(2, 0, 1, 3)
    return torch.bmm(x.reshape(K, -1, n_in), W).view(*x.shape[:3], n_out)


def init_bound(cfg: ModelConfig, fan_in: int) -> float:
    if cfg.init == "notebook":
        return 1 / math.sqrt(NOTEBOOK_FAN_IN)
    return cfg.init_gain / math.sqrt(fan_in)


class _Readout(nn.Module):
    """Leaky-integrator output layer and the reduction of its trace to class scores."""

    def __init__(self, stim: StimulusConfig, cfg: ModelConfig, models: int, device):
        super().__init__()
        self.stim, self.cfg = stim, cfg
        tau = torch.full((models, stim.num_classes * cfg.bins_per_class), cfg.tau_out_ms * 1e-3, device=device)
        self.log_tau_out = nn.Parameter(tau.log(), requires_grad=cfg.learn_tau)

    def forward(self, current: torch.Tensor, engine: str) -> torch.Tensor:
        alpha = torch.exp(-self.stim.dt / self.log_tau_out.exp())
        if self.cfg.readout == "count":
            return kernels.lif(current, alpha, self.cfg.beta, self.cfg.semantics, engine).sum(-2)
        if self.cfg.readout == "mean":
            return kernels.integrate_mean(current, alpha, self.cfg.semantics, engine)
        trace = kernels.integrate(current, alpha, self.cfg.semantics, engine)
        if self.cfg.readout == "max":
            return trace.amax(-2)
        return trace[..., -1, :]  # last


class MembraneModel(nn.Module):
    """Membrane-only baseline: ``W`` (models, inputs, classes) into leaky integrators, mean over time.

    (The notebook scales the time *sum* by 0.01, which at 100 steps is the mean.)
    """

    def __init__(self, stim: StimulusConfig, cfg: ModelConfig, generators: list[torch.Generator], device=None):
        super().__init__()
        self.stim, self.cfg = stim, cfg.model_copy(update={"readout": "mean", "bins_per_class": 1})
        bound = init_bound(cfg, stim.inputs)
        self.W = nn.Parameter(_uniform((stim.inputs, stim.num_classes), bound, generators, device))
        self.readout = _Readout(stim, self.cfg, len(generators), device)
        self.engine = kernels.resolve_engine(cfg.engine, self.W.device)

    def hidden_parameters(self) -> list[nn.Parameter]:
        return []  # no hidden layer

    def forward(self, x: torch.Tensor):
        return self.readout(project(x, self.W), self.engine), None


class SpikingModel(nn.Module):
    """Inputs -> ``hidden`` LIF neurons (``W1``) -> leaky-integrator readout (``W2``)."""

    def __init__(self, stim: StimulusConfig, cfg: ModelConfig, generators: list[torch.Generator], device=None):
        super().__init__()
        self.stim, self.cfg = stim, cfg
        self.W1 = nn.Parameter(_uniform((stim.inputs, cfg.hidden), init_bound(cfg, stim.inputs), generators, device))
        self.W2 = nn.Parameter(_uniform((cfg.hidden, stim.num_classes * cfg.bins_per_class), init_bound(cfg, cfg.hidden), generators, device))
        bias = torch.zeros((len(generators), 1, 1, cfg.hidden), device=device)
        if cfg.hidden_bias:
            self.b1 = nn.Parameter(bias)
        else:  # not saved, so checkpoints without a bias (and older ones) load unchanged
            self.register_buffer("b1", bias, persistent=False)
        tau = torch.full((len(generators), cfg.hidden), cfg.tau_hidden_ms * 1e-3, device=device)
        self.log_tau_hidden = nn.Parameter(tau.log(), requires_grad=cfg.learn_tau)
        self.readout = None if cfg.readout in ("rate", "sum") else _Readout(stim, cfg, len(generators), device)
        self.engine = kernels.resolve_engine(cfg.engine, self.W1.device)

    def hidden_parameters(self) -> list[nn.Parameter]:
        """The hidden layer's parameters: weights, bias (if learned) and time constants."""
        return [p for p in (self.W1, self.b1, self.log_tau_hidden) if isinstance(p, nn.Parameter)]

    def forward(self, x: torch.Tensor):
        alpha = torch.exp(-self.stim.dt / self.log_tau_hidden.exp())
        current = project(x, self.W1)
        if self.cfg.hidden_bias:
            current = current + self.b1
        spikes = kernels.lif(current, alpha, self.cfg.beta, self.cfg.semantics, self.engine)
        if self.readout is None:  # rate, sum: linear in the spikes, so reduce over time before the product
            counts = spikes.mean(-2) if self.cfg.readout == "rate" else spikes.sum(-2)
            return torch.bmm(counts, self.W2), spikes
        return self.readout(project(spikes, self.W2), self.engine), spikes

    def step_scores(self, spikes: torch.Tensor) -> torch.Tensor:
        """Each step's scores ``spikes[t] @ W2``, ``(models, batch, steps, bins)``: with ``readout = "sum"``
        the class scores are their sum over steps."""
        return spikes @ self.W2[:, None]


def build_models(stim: StimulusConfig, cfg: ModelConfig, seeds: list[int], device=None,
                 kind: str = "spiking", initialise: bool = True) -> nn.Module:
    """A stack of ``len(seeds)`` models, model k initialised from ``torch.Generator().manual_seed(seeds[k])``.

    ``initialise=False`` skips the observer templates' calibration, for weights about to be loaded.
    """
    generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    if kind != "spiking":
        return MembraneModel(stim, cfg, generators, device)
    model = SpikingModel(stim, cfg, generators, device)
    if initialise and cfg.init == "observer":
        init_from_observer(model, stim, cfg, generators)
    return model
