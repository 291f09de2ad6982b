"""Training: Adam on the model's own loss, in stages, with a per-epoch history.

Read top to bottom: batches of a :class:`~spikeloc.task.stimulus.Dataset` in random order, the
stages (with ``train.readout_only_epochs`` a first stage trains the readout alone), each stage's
Adam and learning-rate schedule, and the loop. Which layers a stage trains is decided by the
parameter groups it hands its optimizer and by the ``train_hidden`` argument of the model's loss,
never by switching ``requires_grad``: an interrupted fit leaves the model as trainable as before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..config.schema import RunConfig, TrainConfig
from ..models.protocol import Model
from ..task.stimulus import Dataset, random_ipd_input_signal


@dataclass(frozen=True)
class Epoch:
    """One row of the training history."""

    epoch: int  # from 1
    loss: float  # mean over the models of the stack
    loss_per_model: tuple[float, ...]  # (K,)
    lr: float  # at the end of the epoch
    seconds: float


@dataclass(frozen=True)
class Stage:
    """Consecutive epochs with one optimizer and schedule."""

    first_epoch: int
    epochs: int
    trains_hidden: bool


def stages(train: TrainConfig, has_hidden: bool) -> list[Stage]:
    """All epochs in one stage, or ``readout_only_epochs`` of the readout alone, then the rest of
    everything."""
    if train.readout_only_epochs and has_hidden:
        first, rest = train.readout_only_epochs, train.epochs - train.readout_only_epochs
        return [Stage(1, first, False)] + ([Stage(first + 1, rest, True)] if rest else [])
    return [Stage(1, train.epochs, True)]


def batches(data: Dataset, batch_size: int, generator: torch.Generator | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(spikes as float32 ``(B, T, I)``, IPD ``(B,)``) batches; shuffled when a generator is given; a short
    last batch is dropped."""
    n = len(data)
    order = torch.randperm(n, generator=generator, device=generator.device) if generator is not None else None
    for start in range(0, n - batch_size + 1, batch_size):
        idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
        yield data.spikes[idx].float(), data.ipd[idx]


def optimizer(params: list[torch.nn.Parameter], train: TrainConfig, steps: int):
    """Adam and, for the cosine schedule, a decay to 0 over ``steps`` optimizer steps (else None)."""
    adam = torch.optim.Adam(params, lr=train.lr)
    if train.lr_schedule != "cosine":
        return adam, None
    return adam, torch.optim.lr_scheduler.LambdaLR(
        adam, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))


def fit(model: Model, cfg: RunConfig, train_data: Dataset, generator: torch.Generator,
        progress: bool = True, label: str = "train") -> list[Epoch]:
    """Train ``model`` in place on ``train_data``, reshuffled each epoch; returns one :class:`Epoch`
    per epoch.

    With ``cfg.train.fresh_data`` every epoch after the first draws a new training set of the same
    size from ``generator``.
    """
    tc = cfg.train
    groups = model.parameter_groups()
    steps_per_epoch = len(train_data) // tc.batch_size  # fresh data keeps the size
    history = []
    bar = tqdm(total=tc.epochs * steps_per_epoch, desc=label, disable=not progress, leave=False, unit="batch")
    for stage in stages(tc, bool(groups["hidden"])):
        trained = list(model.parameters()) if stage.trains_hidden else groups["readout"]
        adam, schedule = optimizer(trained, tc, stage.epochs * steps_per_epoch)
        for epoch in range(stage.first_epoch, stage.first_epoch + stage.epochs):
            start = time.perf_counter()
            if tc.fresh_data and epoch > 1:
                train_data = random_ipd_input_signal(len(train_data), cfg.stimulus, generator)
            losses = []
            for x, ipd in batches(train_data, tc.batch_size, generator):
                per_model = model.loss(x, ipd, tc, train_hidden=stage.trains_hidden)  # (K,)
                adam.zero_grad(set_to_none=True)
                per_model.sum().backward()  # the models are independent: the sum's gradient is each one's own
                adam.step()
                if schedule is not None:
                    schedule.step()
                losses.append(per_model.detach())
                bar.update()
                bar.set_postfix(loss=f"{per_model.mean().item():.3f}", epoch=epoch)
            per_epoch = tuple(torch.stack(losses).mean(0).tolist())
            history.append(Epoch(epoch, sum(per_epoch) / len(per_epoch), per_epoch,
                                 adam.param_groups[0]["lr"], time.perf_counter() - start))
    bar.close()
    return history
