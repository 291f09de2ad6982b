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

INTEGERS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


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

    ``models`` maps a kind (``spiking``, and ``membrane`` with ``train.membrane_baseline``) to its
    stack of ``train.models`` models. ``results`` (in memory only) holds the per-sample evaluation
    behind the figures, by kind and set.
    """

    config: RunConfig
    models: dict[str, Model]
    metrics: RunMetrics | None = None
    history: dict[str, list[Epoch]] = field(default_factory=dict)
    path: Path | None = None
    results: dict[str, dict[str, list[ModelResult]]] | None = None
    problems: list[str] = field(default_factory=list)  # what could not be read of a loaded run

    @property
    def device(self) -> torch.device:
        return self.models["spiking"].device

    def stack(self, kind: str = "spiking") -> Model:
        """The stack of models of ``kind``."""
        if kind not in self.models:
            raise SpikelocError(f"unknown model kind {kind!r}; this run has: {', '.join(self.models)}")
        return self.models[kind]

    def spikes(self, spikes) -> torch.Tensor:
        """``spikes`` as a float tensor on the run's device, checked: a numpy array or a tensor ``(n, T, I)``
        of 0s and 1s with the run's stimulus shape, else a one-line error naming the expected shape."""
        stim = self.config.stimulus
        expected = f"(n, {stim.steps}, {stim.inputs}) of 0s and 1s"
        try:
            x = torch.as_tensor(spikes if torch.is_tensor(spikes) else np.asarray(spikes))
        except (TypeError, ValueError, RuntimeError) as e:
            raise SpikelocError(f"spikes must be an array {expected}; got {type(spikes).__name__} "
                                f"({e})") from None
        if x.ndim != 3 or x.shape[1:] != (stim.steps, stim.inputs) or len(x) == 0:
            raise SpikelocError(f"spikes must be an array {expected}, n >= 1; got shape {tuple(x.shape)}")
        if not (x.dtype == torch.bool or x.dtype.is_floating_point or x.dtype in INTEGERS):
            raise SpikelocError(f"spikes must be an array {expected}; got dtype {x.dtype}")
        if not ((x == 0) | (x == 1)).all():
            bad = x[(x != 0) & (x != 1)][0].item()
            raise SpikelocError(f"spikes must be an array {expected}; got a value {bad}")
        return x.to(self.device, torch.float32)

    def _check_model(self, model) -> int:
        models = self.config.train.models
        index_ok = isinstance(model, int | np.integer) and not isinstance(model, bool)
        if not index_ok or not 0 <= model < models:
            raise SpikelocError(f"model {model} does not exist: this run has {models} (0..{models - 1})")
        return int(model)

    def member(self, k: int) -> Run:
        """Model ``k`` of every kind alone, as a run of one model (``train.models = 1``; copies of the
        weights), without the stack's metrics and history."""
        k = self._check_model(k)
        config = self.config.model_copy(update={"train": self.config.train.model_copy(update={"models": 1})})
        return Run(config, {kind: stack.member(k) for kind, stack in self.models.items()}, path=self.path)

    def hidden_spikes(self, spikes, model: int = 0, batch_size: int = 256) -> np.ndarray:
        """Hidden-layer spikes ``(n, T, hidden)`` (uint8, 0 or 1) of model ``model`` for 0/1 input spikes
        ``(n, T, I)``, a numpy array or a tensor (checked as in :meth:`predict_proba`)."""
        x = self.spikes(spikes)
        network = self.stack("spiking").member(self._check_model(model))
        with torch.no_grad():
            parts = [network(x[i:i + batch_size]).spikes[0].to(torch.uint8)
                     for i in range(0, len(x), batch_size)]
        return torch.cat(parts).cpu().numpy()

    def predict_proba(self, spikes, model: int = 0, kind: str = "spiking") -> np.ndarray:
        """Class probabilities ``(n, num_classes)`` for 0/1 spikes ``(n, T, I)``, as a numpy array or a
        tensor."""
        x = self.spikes(spikes)
        stack = self.stack(kind)
        model = self._check_model(model)
        # the whole stack, as its metrics were computed, then model k
        probs = class_probabilities(bin_probabilities(stack, x),
                                    self.config.stimulus.num_classes)  # (K, n, C)
        return probs[model].cpu().numpy()

    def predict(self, spikes, model: int = 0, kind: str = "spiking") -> np.ndarray:
        """Class index ``(n,)`` (int) of each stimulus; ``spikes`` as in :meth:`predict_proba`."""
        return self.predict_proba(spikes, model, kind).argmax(-1).astype(np.int64)
