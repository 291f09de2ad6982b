"""The files of a run folder, their names and formats, and the one way they are written.

Every file is written whole or not at all: to a temporary file beside it (``.NAME.*.tmp``), flushed
to disk, then renamed over it, with mode 0644. A process killed mid-write leaves at most a temporary
file, which the next writer of the folder removes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

from ..training.loop import Epoch

STATUS = "status.json"  # written first (running) and last (complete or failed)
CONFIG = "config.toml"
CHECKPOINT = "checkpoint.pt"  # while running
WEIGHTS = "weights.safetensors"
HISTORY = "history.csv"
METRICS = "metrics.json"
REPORT = "report.html"
FIGURES = "figures"
ANALYSIS = "analysis"  # the hidden-unit analysis: data and figures (spikeloc.analysis)
LOCK = "run.lock"
TEMPORARY = ".*.tmp"
FILE_MODE = 0o644  # readable by others, as files made by open() are; mkstemp would give 0600


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk and rename it: never a
    half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _sync_folder(path.parent)  # the rename itself survives a crash of the machine
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.filename is None:  # write and fsync errors name no file: say which one it was
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: dict) -> Path:
    """JSON as strict parsers read it: a NaN or infinity is an error here, not a ``NaN`` in the file."""
    return write_atomic(path, json.dumps(data, indent=2, allow_nan=False).encode())


def remove_temporaries(folder: Path) -> None:
    """Temporary files left by a writer that was killed mid-write (call only while holding the folder)."""
    for path in [*folder.glob(TEMPORARY), *(folder / FIGURES).glob(TEMPORARY),
                 *(folder / ANALYSIS).glob(TEMPORARY)]:
        path.unlink(missing_ok=True)


def history_csv(history: dict[str, list[Epoch]]) -> bytes:
    """One row per (model kind, epoch): loss, learning rate, seconds and each model's loss; with a
    validation set also the validation accuracy (mean and each model's)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    k = max(len(rows[0].loss_per_model) for rows in history.values())
    validated = any(r.validation_accuracy is not None for rows in history.values() for r in rows)
    w.writerow(["model", "epoch", "loss", "lr", "seconds", *[f"loss_model_{i}" for i in range(k)],
                *(["validation_accuracy", *[f"validation_accuracy_model_{i}" for i in range(k)]]
                  if validated else [])])
    for kind, rows in history.items():
        for r in rows:
            losses = [*r.loss_per_model, *[""] * (k - len(r.loss_per_model))]
            accuracy = [r.validation_mean, *r.validation_accuracy] if r.validation_accuracy else []
            w.writerow([kind, r.epoch, r.loss, r.lr, r.seconds, *losses, *accuracy])
    return buf.getvalue().encode()


def read_history(text: str) -> dict[str, list[Epoch]]:
    """The inverse of :func:`history_csv`; KeyError or ValueError if ``text`` is not one."""
    history: dict[str, list[Epoch]] = {}
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ValueError("no rows")
    for row in rows:
        losses = tuple(float(v) for k, v in row.items() if k.startswith("loss_model_") and v)
        accuracy = tuple(float(v) for k, v in row.items() if k.startswith("validation_accuracy_model_") and v)
        history.setdefault(row["model"], []).append(
            Epoch(int(row["epoch"]), float(row["loss"]), losses, float(row["lr"]), float(row["seconds"]),
                  accuracy or None))
    return history
