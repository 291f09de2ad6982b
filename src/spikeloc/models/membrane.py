"""The notebook's membrane-only baseline: inputs straight into leaky integrators, no spikes.

    x (B, T, I) spikes  --W-->  leaky integrators (C = num_classes)  --time mean-->  scores (K, B, C)

(The notebook scales the time *sum* by 0.01, which at 100 steps is the mean.) It cannot decode the
IPD when every sample has its own phase offset; it is shown as the baseline it is.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config.schema import ModelConfig, StimulusConfig, TrainConfig
from . import init, losses
from .protocol import Output
from .readout import Readout
from .stack import StackedModel, as_input


class MembraneModel(StackedModel):
    """``W`` ``(K, I, C)`` into leaky integrators with time constants ``readout.log_tau_out`` ``(K, C)``.

    Of ``cfg`` it reads the readout's time constant, ``learn_tau``, the update rule, the
    initialisation and the engine; it always has one output per class and the mean readout.
    """

    def __init__(self, stim: StimulusConfig, cfg: ModelConfig, models: int = 1, device=None):
        super().__init__(stim, cfg, models, device)
        self.bins = stim.num_classes
        self.W = nn.Parameter(torch.zeros(models, stim.inputs, self.bins, device=device))
        self.readout = Readout(stim, cfg, "mean", models, self.bins, device)

    def reset_parameters(self, generators: list[torch.Generator]) -> None:
        with torch.no_grad():
            self.W.copy_(init.uniform(self.W.shape[1:], init.bound(self.cfg, self.W.shape[1:]), generators))

    def calibrate(self, generators: list[torch.Generator]) -> None:
        """Nothing depends on data here."""

    def forward(self, x: torch.Tensor, train_hidden: bool = True) -> Output:
        """Scores ``(K, B, C)`` for input spikes ``x`` ``(B, T, I)`` or ``(K, B, T, I)``; no hidden spikes."""
        return Output(self.readout(as_input(x, self.W), self.W), None)

    def loss(self, x: torch.Tensor, ipd: torch.Tensor, train: TrainConfig, train_hidden: bool = True,
             generators: list[torch.Generator] | None = None) -> torch.Tensor:
        """NLL of the true class ``(K,)``, whatever ``train.target`` says: there are no steps to match (and
        no hidden layer for noise or dropout)."""
        return losses.label_nll(self(x).scores, ipd, self.stim, train.class_loss_weight,
                                math.radians(train.label_sigma_deg))

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"hidden": [], "readout": list(self.parameters())}

    def uniform_guess_loss(self, train: TrainConfig) -> float:
        return losses.uniform_guess(self.stim.num_classes, 1, train.class_loss_weight)
