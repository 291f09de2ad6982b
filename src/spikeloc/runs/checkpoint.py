"""A run's checkpoint: where training stands, written at the end of every epoch.

It holds the models already trained (weights and history), and for the one in training its
:class:`~spikeloc.training.loop.FitState`: weights, optimizer and schedule state, each model's
generator state, the epoch and the history. ``spikeloc train --resume`` starts from it and ends with the same
weights and metrics as a run that was never interrupted. The file is a ``torch.save`` of tensors,
numbers and lists only, read back with ``weights_only=True`` (no code is executed on load).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import SpikelocError
from ..training.loop import Epoch, FitState
from .files import write_atomic

FORMAT = 1  # of the file; a checkpoint of another format is refused


@dataclass
class Checkpoint:
    """Models done (kind -> weights and history) and, for the kind in training, its fit state."""

    finished: dict[str, tuple[dict[str, torch.Tensor], list[Epoch]]] = field(default_factory=dict)
    kind: str | None = None
    fit: FitState | None = None
    config: str = ""  # the resolved config (TOML) it was trained with: a resume must have the same


def _history(rows: list[Epoch]) -> list[list]:
    return [[e.epoch, e.loss, list(e.loss_per_model), e.lr, e.seconds,
             None if e.validation_accuracy is None else list(e.validation_accuracy)] for e in rows]


def _epochs(rows: list[list]) -> list[Epoch]:
    def epoch(e, loss, per, lr, s, validation=None):  # checkpoints of 0.3.0 have no validation
        return Epoch(int(e), float(loss), tuple(per), float(lr), float(s),
                     None if validation is None else tuple(float(v) for v in validation))
    return [epoch(*row) for row in rows]


def to_bytes(ckpt: Checkpoint) -> bytes:
    data = {"format": FORMAT, "config": ckpt.config,
            "finished": {kind: {"model": state, "history": _history(rows)}
                         for kind, (state, rows) in ckpt.finished.items()}}
    if ckpt.fit is not None:
        f = ckpt.fit
        data["current"] = {"kind": ckpt.kind, "epoch": f.epoch, "model": f.model, "optimizer": f.optimizer,
                           "schedule": f.schedule, "generators": list(f.generators),
                           "history": _history(f.history)}
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


def from_bytes(blob: bytes) -> Checkpoint:
    """The inverse of :func:`to_bytes`; ValueError if the bytes are not one (truncated, garbled, another
    format)."""
    try:
        data = torch.load(io.BytesIO(blob), weights_only=True)
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        finished = {kind: (d["model"], _epochs(d["history"])) for kind, d in data["finished"].items()}
        current = data.get("current")
        config = str(data.get("config", ""))
        if current is None:
            return Checkpoint(finished, config=config)
        fit = FitState(current["epoch"], current["model"], current["optimizer"], current["schedule"],
                       tuple(current.get("generators") or [current["generator"]]),  # 0.4.0: one
                       _epochs(current["history"]))
        return Checkpoint(finished, current["kind"], fit, config)
    except ValueError:
        raise
    except Exception as e:  # torch.load raises many kinds on damaged bytes; all mean "not a checkpoint"
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        raise ValueError(f"{type(e).__name__}: {first}") from None


class Checkpoints:
    """The checkpoint file of a run folder: ``load()`` the last one (None before the first epoch), ``save()``
    a new one atomically; ``on_save`` hears of each (the folder records the progress in its status)."""

    def __init__(self, path: Path, on_save: Callable[[Checkpoint], None] | None = None):
        self.path, self.on_save = path, on_save

    def load(self) -> Checkpoint | None:
        try:
            return from_bytes(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise SpikelocError(f"{self.path} is damaged ({e}); start a new run") from None

    def save(self, ckpt: Checkpoint) -> None:
        write_atomic(self.path, to_bytes(ckpt))
        if self.on_save is not None:
            self.on_save(ckpt)
