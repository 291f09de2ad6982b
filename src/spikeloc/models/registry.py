"""Model kinds by name, and :func:`build_models`: construct, draw the weights, then the
data-dependent step."""

from __future__ import annotations

import torch

from ..config.schema import ModelConfig, StimulusConfig
from ..errors import SpikelocError
from .membrane import MembraneModel
from .network import SpikingNetwork
from .stack import StackedModel

MODEL_KINDS: dict[str, type[StackedModel]] = {"spiking": SpikingNetwork, "membrane": MembraneModel}


def model_class(kind: str) -> type[StackedModel]:
    if kind not in MODEL_KINDS:
        raise SpikelocError(f"unknown model kind {kind!r}; allowed: {', '.join(MODEL_KINDS)}")
    return MODEL_KINDS[kind]


def construct(kind: str, stim: StimulusConfig, cfg: ModelConfig, models: int = 1,
              device=None) -> StackedModel:
    """A stack of ``models`` models of ``kind`` with the right shapes and zero weights: ready to load
    saved ones."""
    return model_class(kind)(stim, cfg, models, device)


def build_models(stim: StimulusConfig, cfg: ModelConfig, seeds: list[int], device=None,
                 kind: str = "spiking") -> StackedModel:
    """A stack of ``len(seeds)`` models ready to train, model k drawn from
    ``torch.Generator().manual_seed(seeds[k])``.

    Three steps: :func:`construct` (shapes), ``reset_parameters`` (random weights as ``model.init``
    says) and ``calibrate`` (the data-dependent initialisation of ``model.init = "observer"``, which
    draws its stimuli from the same generators).
    """
    model = construct(kind, stim, cfg, len(seeds), device)
    generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    model.reset_parameters(generators)
    model.calibrate(generators)
    return model
