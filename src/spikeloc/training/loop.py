"""Training: Adam on the model's own loss, in stages, with a per-epoch history.

Read top to bottom: batches of a :class:`~spikeloc.task.stimulus.Dataset` in random order, the
stages (with ``train.readout_only_epochs`` a first stage trains the readout alone), each stage's
Adam and learning-rate schedule, and the loop. Which layers a stage trains is decided by the
parameter groups it hands its optimizer and by the ``train_hidden`` argument of the model's loss,
never by switching ``requires_grad``: an interrupted fit leaves the model as trainable as before.

After every epoch the loop hands a :class:`FitState` to ``on_epoch`` (the run folder writes it as
its checkpoint), and ``fit(..., resume=state)`` continues from one exactly: the same weights,
optimizer moments, schedule and generator state, so the result is bit-identical to a fit that was
never interrupted. A NaN or infinite loss, gradient or weight stops the fit with
:class:`~spikeloc.errors.TrainingDiverged`, naming the epoch and batch.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..config.schema import RunConfig, TrainConfig
from ..errors import TrainingDiverged
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
class FitState:
    """A fit at the end of an epoch: everything it needs to continue exactly."""

    epoch: int  # epochs done
    model: dict[str, torch.Tensor]  # the model's state_dict
    optimizer: dict  # the current stage's Adam state_dict
    schedule: dict | None  # its learning-rate schedule's state_dict
    generator: torch.Tensor  # the shuffle (and fresh-data) generator's state
    history: list[Epoch]


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
    if order is None:
        order = torch.arange(n, device=data.spikes.device)
    for start in range(0, n - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        # index_select, not data.spikes[idx]: the same rows, four times faster on the CPU
        yield torch.index_select(data.spikes, 0, idx).float(), torch.index_select(data.ipd, 0, idx)


def optimizer(params: list[torch.nn.Parameter], train: TrainConfig, steps: int):
    """Adam and, for the cosine schedule, a decay to 0 over ``steps`` optimizer steps (else None)."""
    adam = torch.optim.Adam(params, lr=train.lr)
    if train.lr_schedule != "cosine":
        return adam, None
    return adam, torch.optim.lr_scheduler.LambdaLR(
        adam, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))


def _finite(tensors: list[torch.Tensor]) -> bool:
    return not tensors or bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())  # one sync


def _diverged(epoch: int, batch: int, lr: float, what: str) -> TrainingDiverged:
    return TrainingDiverged(f"training diverged in epoch {epoch}, batch {batch}: {what}; a smaller train.lr "
                            f"(now {lr:g}) or a milder config may help")


def epoch_line(label: str, epoch: Epoch, epochs: int, elapsed: float) -> str:
    """``spiking epoch 3/10  loss 1.234  lr 0.01  12.3 s``: the loss is the mean over the models."""
    width = len(str(epochs))
    return (f"{label} epoch {epoch.epoch:{width}d}/{epochs}  loss {epoch.loss:.4f}  lr {epoch.lr:.3g}  "
            f"{elapsed:.1f} s")


def fit(model: Model, cfg: RunConfig, train_data: Dataset, generator: torch.Generator,
        progress: bool = True, label: str = "train", resume: FitState | None = None,
        on_epoch: Callable[[FitState], None] | None = None,
        log: Callable[[str], None] | None = None) -> list[Epoch]:
    """Train ``model`` in place on ``train_data``, reshuffled each epoch; returns one :class:`Epoch` per
    epoch.

    With ``cfg.train.fresh_data`` every epoch after the first draws a new training set of the same
    size from ``generator``. ``resume`` continues a fit from the end of one of its epochs (the model,
    optimizer, schedule and generator take the saved states); ``on_epoch`` gets the state after each.
    ``progress``: a progress bar on stderr when it is a terminal; ``log`` gets one line per epoch (written
    above the bar, so the lines stay on screen when it ends).
    """
    tc = cfg.train
    groups = model.parameter_groups()
    steps_per_epoch = len(train_data) // tc.batch_size  # fresh data keeps the size
    done, history = 0, []
    if resume is not None:
        model.load_state_dict(resume.model)
        generator.set_state(resume.generator)
        done, history = resume.epoch, list(resume.history)
    bar = tqdm(total=tc.epochs * steps_per_epoch, initial=done * steps_per_epoch, desc=label,
               disable=not (progress and sys.stderr.isatty()), leave=False, unit="batch")
    fitted = time.perf_counter()
    for stage in stages(tc, bool(groups["hidden"])):
        last = stage.first_epoch + stage.epochs - 1
        if last <= done:
            continue
        trained = list(model.parameters()) if stage.trains_hidden else groups["readout"]
        adam, schedule = optimizer(trained, tc, stage.epochs * steps_per_epoch)
        if done >= stage.first_epoch:  # resuming inside this stage: its optimizer and schedule go on
            adam.load_state_dict(resume.optimizer)
            if schedule is not None:
                schedule.load_state_dict(resume.schedule)
        for epoch in range(max(stage.first_epoch, done + 1), last + 1):
            start = time.perf_counter()
            if tc.fresh_data and epoch > 1:
                train_data = random_ipd_input_signal(len(train_data), cfg.stimulus, generator)
            losses = []
            for batch, (x, ipd) in enumerate(batches(train_data, tc.batch_size, generator), start=1):
                lr = adam.param_groups[0]["lr"]
                per_model = model.loss(x, ipd, tc, train_hidden=stage.trains_hidden)  # (K,)
                if not _finite([per_model]):
                    raise _diverged(epoch, batch, lr, f"the loss of the models is {per_model.tolist()}")
                adam.zero_grad(set_to_none=True)
                per_model.sum().backward()  # the models are independent: the sum's gradient is each one's own
                if not _finite([p.grad for p in trained if p.grad is not None]):
                    raise _diverged(epoch, batch, lr, "a gradient is not finite")
                adam.step()
                model.constrain_()
                if not _finite(trained):
                    raise _diverged(epoch, batch, lr, "a weight is not finite")
                if schedule is not None:
                    schedule.step()
                losses.append(per_model.detach())
                bar.update()
                bar.set_postfix(loss=f"{per_model.mean().item():.3f}", epoch=epoch)
            per_epoch = tuple(torch.stack(losses).mean(0).tolist())
            history.append(Epoch(epoch, sum(per_epoch) / len(per_epoch), per_epoch,
                                 adam.param_groups[0]["lr"], time.perf_counter() - start))
            if log is not None:
                line = epoch_line(label, history[-1], tc.epochs, time.perf_counter() - fitted)
                if bar.disable:
                    log(line)
                else:
                    bar.write(line)  # above the bar, and it stays when the bar is gone
            if on_epoch is not None:
                on_epoch(FitState(epoch, model.state_dict(), adam.state_dict(),
                                  schedule.state_dict() if schedule is not None else None,
                                  generator.get_state(), list(history)))
    bar.close()
    return history
