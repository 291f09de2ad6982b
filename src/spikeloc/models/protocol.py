"""What the rest of spikeloc may assume of a model: the :class:`Model` protocol and its :class:`Output`.

A model is a stack of ``K`` independent networks of the same shape (``K = 1`` is the ordinary case):
every parameter and buffer has a leading ``K`` axis, so model ``k`` is the slice ``[k]`` of each
(:meth:`Model.member`). Training (:func:`spikeloc.training.loop`) needs ``loss`` and
``parameter_groups``; evaluation needs only the call, which any object returning ``(scores, ...)``
provides (the ideal observer does).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, Self

import torch

from ..config.schema import TrainConfig


class Output(NamedTuple):
    """What a model's forward returns."""

    scores: torch.Tensor  # (K, B, C) class scores over the C output bins; softmax gives the posterior
    spikes: torch.Tensor | None  # (K, B, T, H) hidden spikes, None for a model without a hidden layer


class Model(Protocol):
    models: int  # K
    bins: int  # C = num_classes * bins_per_class

    def __call__(self, x: torch.Tensor, train_hidden: bool = True) -> Output:
        """Scores for input spikes ``x``, ``(B, T, I)`` shared by the stack or ``(K, B, T, I)``, any dtype."""

    def loss(self, x: torch.Tensor, ipd: torch.Tensor, train: TrainConfig, train_hidden: bool = True,
             generators: list[torch.Generator] | None = None) -> torch.Tensor:
        """Per-model training loss ``(K,)`` on spikes ``x`` with true IPDs ``ipd`` ``(B,)`` (rad); the models
        are independent, so their sum is minimised. ``train_hidden=False`` lets no gradient reach the
        hidden layer (the readout-only stage). ``generators`` (one per model): where the training noise of
        a model with some (membrane noise, dropout) is drawn from."""

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """The trained parameters by layer, ``{"hidden": [...], "readout": [...]}``, and optionally under
        ``"delays"`` those of them that train at ``train.delay_lr``."""

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called before each training epoch (1-based) of ``epochs``: what depends on it (the kernel width of
        learned delays)."""

    def uniform_guess_loss(self, train: TrainConfig) -> float | None:
        """The loss of a uniform posterior (the chance level of the loss curve); None if it has none."""

    def constrain_(self) -> None:
        """Restore the parameters' constraints (Dale's law signs) after an optimiser step."""

    def member(self, k: int) -> Self:
        """Model ``k`` of the stack alone, as a stack of one (a copy)."""

    def reset_parameters(self, generators: list[torch.Generator]) -> None:
        """Draw the random weights, model k from ``generators[k]`` (``build_models`` calls it)."""

    def calibrate(self, generators: list[torch.Generator]) -> None:
        """The data-dependent initialisation, after ``reset_parameters`` (a no-op for most models)."""
