"""The run folder: the one place that writes and reads it.

    config.toml          the exact resolved config (seed and device included): re-runs the run exactly
    metrics.json         train/test metrics of every model, the ideal observer, timings (evaluation.metrics)
    history.csv          loss per epoch and model
    weights.safetensors  trained parameters and buffers of every model kind (loads without executing code)
    figures/*.png        every figure of the report (viz)
    report.html          one self-contained page (viz)

Every file is written whole or not at all (a temporary file beside it, flushed, renamed) with mode
0644. Folders written by release 0.1.0 load too: their configs use the old field names, and their
hidden bias is stored as ``(K, 1, 1, H)``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from ..config.loading import config_from_toml_text
from ..errors import SpikelocError
from ..evaluation.metrics import RunMetrics
from ..models.registry import MODEL_KINDS, construct
from ..training.loop import Epoch
from .run import Run, resolve_device

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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_out_dir(out: Path) -> None:
    """Refuse a folder that already holds a run, so a finished result is never overwritten."""
    if (out / "config.toml").exists() or (out / "weights.safetensors").exists():
        raise SpikelocError(f"--out {out} already holds a run; choose a new folder or remove it")
    if out.exists() and not out.is_dir():
        raise SpikelocError(f"--out {out} exists and is not a folder")


# ---------------------------------------------------------------- history.csv

def history_csv(history: dict[str, list[Epoch]]) -> bytes:
    """One row per (model kind, epoch): loss, learning rate, seconds and each model's loss."""
    buf = io.StringIO()
    w = csv.writer(buf)
    k = max(len(rows[0].loss_per_model) for rows in history.values())
    w.writerow(["model", "epoch", "loss", "lr", "seconds", *[f"loss_model_{i}" for i in range(k)]])
    for kind, rows in history.items():
        for r in rows:
            w.writerow([kind, r.epoch, r.loss, r.lr, r.seconds, *r.loss_per_model])
    return buf.getvalue().encode()


def read_history(text: str) -> dict[str, list[Epoch]]:
    """The inverse of :func:`history_csv`."""
    history: dict[str, list[Epoch]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        losses = tuple(float(v) for k, v in row.items() if k.startswith("loss_model_") and v != "")
        history.setdefault(row["model"], []).append(
            Epoch(int(row["epoch"]), float(row["loss"]), losses, float(row["lr"]), float(row["seconds"])))
    return history


# ---------------------------------------------------------------- save and load

def save(run: Run, out: str | Path) -> Path:
    """Write config, weights, history and metrics of ``run`` into ``out`` (the figures come after)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "config.toml", run.config.to_toml().encode())
    tensors = {f"{kind}.{name}": t.detach().cpu().contiguous() for kind, m in run.models.items()
               for name, t in m.state_dict().items()}
    write_atomic(out / "weights.safetensors", safetensors_bytes(tensors))
    write_atomic(out / "history.csv", history_csv(run.history))
    write_atomic(out / "metrics.json", json.dumps(run.metrics.to_json(), indent=2).encode())
    run.path = out
    return out


def _upgrade(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights of release 0.1.0: the spiking bias was ``(K, 1, 1, H)``."""
    return {name: t.flatten(1) if name == "b1" and t.ndim == 4 else t  # (K, 1, 1, H) -> (K, H)
            for name, t in state.items()}


def load_run(run_dir: str | Path, device: str | None = None) -> Run:
    """Load a run folder: its config, trained models, metrics and history (on the CPU unless it ran on cuda
    or ``device`` says otherwise)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SpikelocError(f"run folder not found: {run_dir}")
    cfg_path, weights_path = run_dir / "config.toml", run_dir / "weights.safetensors"
    for p in (cfg_path, weights_path):
        if not p.is_file():
            raise SpikelocError(f"{run_dir} is not a complete run folder: {p.name} is missing")
    try:
        cfg = config_from_toml_text(cfg_path.read_text(), str(cfg_path))
        tensors = load_file(weights_path)
    except (OSError, UnicodeDecodeError, SafetensorError) as e:
        raise SpikelocError(f"cannot read {run_dir}: {e}") from None
    dev = resolve_device(device or "auto") if device or cfg.device == "cuda" else torch.device("cpu")
    cfg = cfg.model_copy(update={"device": dev.type})
    models = {}
    for kind in MODEL_KINDS:
        state = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(kind + ".")}
        if not state:
            continue
        model = construct(kind, cfg.stimulus, cfg.model, cfg.train.models, dev)
        try:
            model.load_state_dict(_upgrade(state))
        except RuntimeError as e:
            first = str(e).strip().splitlines()[-1].strip()
            raise SpikelocError(f"{weights_path} does not match config.toml: {first}") from None
        models[kind] = model.eval()
    if "spiking" not in models:
        raise SpikelocError(f"{weights_path} holds no spiking model weights")
    return Run(config=cfg, models=models, metrics=_read_side_file(run_dir / "metrics.json", _metrics),
               history=_read_side_file(run_dir / "history.csv", read_history) or {}, path=run_dir)


def _metrics(text: str) -> RunMetrics:
    return RunMetrics.from_json(json.loads(text))


def _read_side_file(path: Path, parse):
    """``parse(text)`` of an optional file (None when absent); an unreadable one is a one-line error."""
    if not path.is_file():
        return None
    try:
        return parse(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise SpikelocError(f"cannot read {path}: {type(e).__name__}: {e}") from None
