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

from ..config.schema import RunConfig, StimulusConfig, TrainConfig
from ..errors import TrainingDiverged
from ..models.protocol import Model
from ..task.bins import discretise, most_probable_class
from ..task.stimulus import Dataset, random_ipd_input_signal, with_new_offset


@dataclass(frozen=True)
class Epoch:
    """One row of the training history."""

    epoch: int  # from 1
    loss: float  # mean over the models of the stack
    loss_per_model: tuple[float, ...]  # (K,)
    lr: float  # at the end of the epoch
    seconds: float
    validation_accuracy: tuple[float, ...] | None = None  # (K,) with train.validation_batches

    @property
    def validation_mean(self) -> float | None:
        v = self.validation_accuracy
        return sum(v) / len(v) if v else None

    def member(self, k: int) -> Epoch:
        """Model ``k``'s row alone (the epoch's time is the stack's)."""
        v = self.validation_accuracy
        return Epoch(self.epoch, self.loss_per_model[k], (self.loss_per_model[k],), self.lr, self.seconds,
                     None if v is None else (v[k],))


@dataclass(frozen=True)
class FitState:
    """A fit at the end of an epoch: everything it needs to continue exactly."""

    epoch: int  # epochs done
    model: dict[str, torch.Tensor]  # the model's state_dict
    optimizer: dict  # the current stage's Adam state_dict
    schedule: dict | None  # its learning-rate schedule's state_dict
    generators: tuple[torch.Tensor, ...]  # each model's shuffle (and fresh-data) generator state
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


def _orders(sets: list[Dataset], generators: list[torch.Generator | None]) -> list[torch.Tensor]:
    """Each set's sample order for one epoch: a permutation from its generator, else in order."""
    return [torch.randperm(len(d), generator=g, device=g.device) if g is not None
            else torch.arange(len(d), device=d.spikes.device) for d, g in zip(sets, generators, strict=True)]


def batches(sets: list[Dataset], batch_size: int, generators: list[torch.Generator] | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of the K models' own sets, model k's shuffled with ``generators[k]`` when they are given:
    spikes as float32 ``(B, T, I)`` and IPDs ``(B,)`` for one model, ``(K, B, T, I)`` and ``(K, B)`` for K; a
    short last batch is dropped. Each model sees the batches it would see alone."""
    orders = _orders(sets, generators if generators is not None else [None] * len(sets))
    first = sets[0].spikes
    for start in range(0, len(sets[0]) - batch_size + 1, batch_size):
        # index_select, not spikes[idx]: the same rows, four times faster on the CPU; the uint8 rows of every
        # model go into one buffer, converted to float once
        x = torch.empty((len(sets), batch_size, *first.shape[1:]), dtype=first.dtype, device=first.device)
        ipd = torch.empty((len(sets), batch_size), dtype=sets[0].ipd.dtype, device=first.device)
        for k, (d, order) in enumerate(zip(sets, orders, strict=True)):
            idx = order[start:start + batch_size]
            torch.index_select(d.spikes, 0, idx, out=x[k])
            torch.index_select(d.ipd, 0, idx, out=ipd[k])
        yield (x[0].float(), ipd[0]) if len(sets) == 1 else (x.float(), ipd)


def with_background(x: torch.Tensor, p: float, generators: list[torch.Generator]) -> torch.Tensor:
    """Batch ``x`` (``(B, T, I)``, or ``(K, B, T, I)`` for K models) with spontaneous spikes added, each
    (step, fibre) with probability ``p``, model k's drawn from ``generators[k]`` (``train.background_hz``)."""
    if p == 0:
        return x
    shape = x.shape[-3:]
    extra = torch.stack([torch.rand(shape, generator=g, device=g.device) < p for g in generators])
    return torch.maximum(x, extra.view(x.shape).to(x))


def optimizer(params: list[torch.nn.Parameter], train: TrainConfig, steps: int,
              delays: list[torch.nn.Parameter] = ()):
    """Adam (the parameters among ``delays`` at ``train.delay_lr``, the others at ``train.lr``) and, for the
    cosine schedule, a decay to 0 over ``steps`` optimizer steps (else None)."""
    slow = [p for p in params if all(p is not d for d in delays)]
    fast = [p for p in params if any(p is d for d in delays)]
    adam = torch.optim.Adam([{"params": slow}] + ([{"params": fast, "lr": train.delay_lr}] if fast else []),
                            lr=train.lr)
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
    """``spiking epoch 3/10  loss 1.234  lr 0.01  validation 71.2 %  12.3 s``: loss and accuracy are means
    over the models."""
    width = len(str(epochs))
    validation = f"validation {100 * epoch.validation_mean:.1f} %  " if epoch.validation_accuracy else ""
    return (f"{label} epoch {epoch.epoch:{width}d}/{epochs}  loss {epoch.loss:.4f}  lr {epoch.lr:.3g}  "
            f"{validation}{elapsed:.1f} s")


@torch.no_grad()
def validation_accuracy(model: Model, sets: list[Dataset], stim: StimulusConfig, batch_size: int = 256
                        ) -> tuple[float, ...]:
    """Each model's accuracy ``(K,)`` on its own set of ``sets``: the most probable class (fine bins summed)
    is the true IPD's."""
    correct, n = 0, len(sets[0])
    for start in range(0, n, batch_size):
        part = slice(start, start + batch_size)
        x = sets[0].spikes[part] if len(sets) == 1 else torch.stack([d.spikes[part] for d in sets])
        ipd = torch.stack([d.ipd[part] for d in sets])  # (K, b)
        estimate = most_probable_class(model(x).scores, stim.num_classes)  # (K, b)
        correct = correct + (estimate == discretise(ipd, stim).to(estimate.device)).sum(-1).double()
    return tuple((correct / n).tolist())


def stopped_early(history: list[Epoch], patience: int) -> bool:
    """Whether the validation accuracy (mean over the models) has not improved for ``patience`` epochs."""
    if not patience or not history or history[-1].validation_accuracy is None:
        return False
    means = [row.validation_mean for row in history]
    best = means.index(max(means))  # the first epoch that reached the best
    return len(history) - 1 - best >= patience


def fit(model: Model, cfg: RunConfig, train_sets: list[Dataset], generators: list[torch.Generator],
        progress: bool = True, label: str = "train", resume: FitState | None = None,
        on_epoch: Callable[[FitState], None] | None = None,
        log: Callable[[str], None] | None = None, validation: list[Dataset] | None = None) -> list[Epoch]:
    """Train ``model`` in place, model k of the stack on its own ``train_sets[k]`` reshuffled each epoch by
    its own ``generators[k]``, as it would train alone; returns one :class:`Epoch` per epoch.

    With ``cfg.train.fresh_data`` every epoch after the first draws each model a new training set of the
    same size from its generator; with ``stimulus.offset = "per_epoch"`` it hears the same set with a new
    phase offset instead. ``resume`` continues a fit from the end of one of its epochs (the model,
    optimizer, schedule and generator take the saved states); ``on_epoch`` gets the state after each.
    ``progress``: a progress bar on stderr when it is a terminal; ``log`` gets one line per epoch (written
    above the bar, so the lines stay on screen when it ends). With ``validation`` (a set per model) each
    epoch records each model's accuracy on its set, and ``train.early_stopping_patience`` ends the fit once
    their mean stops improving (also when resuming: the decision is taken from the history, so it is the
    same).
    """
    tc = cfg.train
    if not len(train_sets) == len(generators) == model.models:
        raise ValueError(f"fit needs a training set and a generator per model: {model.models} models, "
                         f"{len(train_sets)} sets, {len(generators)} generators")
    groups = model.parameter_groups()
    steps_per_epoch = len(train_sets[0]) // tc.batch_size  # fresh data keeps the size
    done, history = 0, []
    if resume is not None:
        model.load_state_dict(resume.model)
        for g, state in zip(generators, resume.generators, strict=True):
            g.set_state(state)
        done, history = resume.epoch, list(resume.history)
    bar = tqdm(total=tc.epochs * steps_per_epoch, initial=done * steps_per_epoch, desc=label,
               disable=not (progress and sys.stderr.isatty()), leave=False, unit="batch")
    fitted = time.perf_counter()

    def say(line: str) -> None:
        if log is not None:  # above a bar, so the line stays when the bar is gone
            (log if bar.disable else bar.write)(line)
    for stage in stages(tc, bool(groups["hidden"])):
        last = stage.first_epoch + stage.epochs - 1
        if last <= done or stopped_early(history, tc.early_stopping_patience):
            continue
        trained = list(model.parameters()) if stage.trains_hidden else groups["readout"]
        adam, schedule = optimizer(trained, tc, stage.epochs * steps_per_epoch, groups.get("delays", []))
        if done >= stage.first_epoch:  # resuming inside this stage: its optimizer and schedule go on
            adam.load_state_dict(resume.optimizer)
            if schedule is not None:
                schedule.load_state_dict(resume.schedule)
        for epoch in range(max(stage.first_epoch, done + 1), last + 1):
            if stopped_early(history, tc.early_stopping_patience):
                break
            start = time.perf_counter()
            model.start_epoch(epoch, tc.epochs)
            if tc.fresh_data and epoch > 1:
                train_sets = [random_ipd_input_signal(len(d), cfg.stimulus, g, tc.phase_delay_noise_deg)
                              for d, g in zip(train_sets, generators, strict=True)]
            elif cfg.stimulus.offset == "per_epoch" and epoch > 1:
                train_sets = [with_new_offset(d, cfg.stimulus, g)
                              for d, g in zip(train_sets, generators, strict=True)]
            losses = []
            for batch, (x, ipd) in enumerate(batches(train_sets, tc.batch_size, generators), start=1):
                lr = adam.param_groups[0]["lr"]
                x = with_background(x, tc.background_hz * cfg.stimulus.dt, generators)
                per_model = model.loss(x, ipd, tc, train_hidden=stage.trains_hidden, generators=generators)
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
            accuracy = None if validation is None else validation_accuracy(model, validation, cfg.stimulus)
            history.append(Epoch(epoch, sum(per_epoch) / len(per_epoch), per_epoch,
                                 adam.param_groups[0]["lr"], time.perf_counter() - start, accuracy))
            say(epoch_line(label, history[-1], tc.epochs, time.perf_counter() - fitted))
            if on_epoch is not None:
                on_epoch(FitState(epoch, model.state_dict(), adam.state_dict(),
                                  schedule.state_dict() if schedule is not None else None,
                                  tuple(g.get_state() for g in generators), list(history)))
            if stopped_early(history, tc.early_stopping_patience):
                means = [row.validation_mean for row in history]
                say(f"{label}: stopped early after epoch {epoch}: no better validation accuracy for "
                    f"{tc.early_stopping_patience} epochs (best {100 * max(means):.1f} % in epoch "
                    f"{means.index(max(means)) + 1})")
    bar.close()
    return history
