"""A run in memory: its config, trained models, metrics and history, and predictions for new stimuli."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config.schema import RunConfig
from ..errors import SpikelocError
from ..evaluation.metrics import ModelResult, RunMetrics, bin_probabilities
from ..models.protocol import Model
from ..task.bins import class_probabilities
from ..training.loop import Epoch


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is a one-line error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SpikelocError("device: 'cuda' requested but no CUDA GPU is available; allowed here: auto, cpu")
    return torch.device(device)


@dataclass
class Run:
    """A trained run, from :func:`spikeloc.runs.pipeline.train` or loaded with
    :func:`spikeloc.runs.folder.load_run`.

    ``models`` maps a kind (``spiking``, and ``membrane`` unless ``train.membrane_only = false``) to its
    stack of ``train.models`` models. ``results`` (in memory only) holds the per-sample evaluation
    behind the figures, by kind and set.
    """

    config: RunConfig
    models: dict[str, Model]
    metrics: RunMetrics | None = None
    history: dict[str, list[Epoch]] = field(default_factory=dict)
    path: Path | None = None
    results: dict[str, dict[str, list[ModelResult]]] | None = None

    @property
    def device(self) -> torch.device:
        return self.models["spiking"].device

    def stack(self, kind: str = "spiking") -> Model:
        """The stack of models of ``kind``."""
        if kind not in self.models:
            raise SpikelocError(f"unknown model kind {kind!r}; this run has: {', '.join(self.models)}")
        return self.models[kind]

    def predict_proba(self, spikes, model: int = 0, kind: str = "spiking") -> np.ndarray:
        """Class probabilities ``(n, num_classes)`` for 0/1 spikes ``(n, T, I)``, as a numpy array or a
        tensor."""
        stim = self.config.stimulus
        x = torch.as_tensor(spikes if torch.is_tensor(spikes) else np.asarray(spikes)).to(self.device)
        if x.ndim != 3 or x.shape[1:] != (stim.steps, stim.inputs):
            raise SpikelocError(f"spikes must have shape (n, {stim.steps}, {stim.inputs}); "
                                f"got {tuple(x.shape)}")
        stack = self.stack(kind)
        if not 0 <= model < stack.models:
            raise SpikelocError(f"model {model} does not exist: this run has {stack.models} "
                                f"(0..{stack.models - 1})")
        # the whole stack, as its metrics were computed, then model k
        probs = class_probabilities(bin_probabilities(stack, x), stim.num_classes)  # (K, n, classes)
        return probs[model].cpu().numpy()

    def predict(self, spikes, model: int = 0, kind: str = "spiking") -> np.ndarray:
        """Class index ``(n,)`` (int) of each stimulus; ``spikes`` as in :meth:`predict_proba`."""
        return self.predict_proba(spikes, model, kind).argmax(-1).astype(np.int64)
