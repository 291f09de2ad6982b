"""A run: train both models from a config, evaluate, save the run folder, draw figures and the report.

Run folder layout::

    config.toml          the exact resolved config (seed and device included)
    metrics.json         train/test metrics of every model, the ideal observer, timings
    history.csv          loss per epoch and model
    weights.safetensors  trained parameters (loads without executing code)
    figures/*.png        every figure of the report
    report.html          one self-contained page

Randomness: every stage draws from its own generator, seeded from ``(seed, stage)``, so the
test set of a run can be drawn again exactly (``spikeloc report``) whatever was trained before.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import plots
from .config import RunConfig, config_from_toml_text
from .errors import SpikelocError
from .evaluate import bin_probabilities, class_probabilities, evaluate, summary
from .model import build_models
from .report import write_report
from .stimulus import Dataset, random_ipd_input_signal
from .train import chance_loss, fit, uses_observer_target

KINDS = ("spiking", "membrane")
METRICS = ("accuracy", "mae_deg", "mae_continuous_deg")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SpikelocError("device: 'cuda' requested but no CUDA GPU is available; allowed here: auto, cpu")
    return torch.device(device)


def stage_generator(seed: int, stage: str, device: torch.device) -> torch.Generator:
    """An independent generator per stage ('train', 'test', 'init', ...) of a run with this seed."""
    mixed = int(np.random.SeedSequence([seed, zlib.crc32(stage.encode())]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(mixed)


def datasets(cfg: RunConfig, device: torch.device) -> dict[str, Dataset]:
    """The run's training set (epoch 1's, with ``fresh_data``) and test set, drawn again identically on demand."""
    tc = cfg.train
    return {split: random_ipd_input_signal(tc.batch_size * batches, cfg.stimulus,
                                           stage_generator(cfg.seed, split, device))
            for split, batches in (("train", tc.train_batches), ("test", tc.test_batches))}


def init_seeds(cfg: RunConfig) -> list[int]:
    """Model k of a stack is initialised from seed + k: ``--models K`` equals K runs of one model."""
    return [cfg.seed + k for k in range(cfg.train.models)]


@dataclass
class Run:
    """A trained run, in memory or loaded from its folder with :func:`load_run`."""

    config: RunConfig
    models: dict[str, torch.nn.Module]
    metrics: dict = field(default_factory=dict)
    history: dict[str, list[dict]] = field(default_factory=dict)
    path: Path | None = None

    @property
    def device(self) -> torch.device:
        return next(self.models["spiking"].parameters()).device

    def predict_proba(self, spikes, model: int = 0, kind: str = "spiking") -> np.ndarray:
        """Class probabilities ``(n, num_classes)`` for 0/1 spikes ``(n, steps, 2*anf_per_ear)``."""
        stim = self.config.stimulus
        x = torch.as_tensor(np.asarray(spikes) if not torch.is_tensor(spikes) else spikes).to(self.device)
        if x.ndim != 3 or x.shape[1:] != (stim.steps, stim.inputs):
            raise SpikelocError(f"spikes must have shape (n, {stim.steps}, {stim.inputs}); got {tuple(x.shape)}")
        probs = class_probabilities(bin_probabilities(self.models[kind], x), stim.num_classes)
        return probs[model].cpu().numpy()

    def predict(self, spikes, model: int = 0, kind: str = "spiking") -> np.ndarray:
        """Class index ``(n,)`` (int) of each stimulus; ``spikes`` as in :meth:`predict_proba`."""
        return self.predict_proba(spikes, model, kind).argmax(-1).astype(np.int64)


# ---------------------------------------------------------------- training and evaluation

def metric_summary(results: list[dict]) -> dict:
    """Per-model results -> for each metric: mean, sd, min, max and the per-model values."""
    return {key: {**summary(results, key), "values": [r[key] for r in results]} for key in METRICS}


def evaluate_fresh(run: Run, samples: int, seed: int) -> dict:
    """Metrics of every model kind of ``run`` on ``samples`` fresh test samples drawn with ``seed``."""
    cfg = run.config
    test = random_ipd_input_signal(samples, cfg.stimulus, stage_generator(seed, "test", run.device))
    return {"models": {kind: {"test": metric_summary(evaluate(m, test, cfg.stimulus))} for kind, m in run.models.items()},
            "chance": 1 / cfg.stimulus.num_classes, "test_samples": samples, "test_seed": seed}


def evaluate_splits(run: Run, data: dict[str, Dataset]) -> dict[str, dict[str, list[dict]]]:
    """Raw per-model results (with confusion matrices and estimates) of every model kind on every split."""
    return {kind: {split: evaluate(m, d, run.config.stimulus) for split, d in data.items()}
            for kind, m in run.models.items()}


def train(cfg: RunConfig, progress: bool = True) -> tuple[Run, dict, dict[str, Dataset]]:
    """Train the spiking model (and the membrane-only baseline), evaluate them and the ideal observer.

    Returns the run, the raw evaluation results (for the figures) and the data sets.
    """
    device = resolve_device(cfg.device)
    cfg = cfg.model_copy(update={"device": device.type})
    t0 = time.perf_counter()
    data = datasets(cfg, device)
    seconds = {"data": time.perf_counter() - t0}
    run = Run(config=cfg, models={})
    for kind in KINDS if cfg.train.membrane_only else KINDS[:1]:
        t0 = time.perf_counter()
        model = build_models(cfg.stimulus, cfg.model, init_seeds(cfg), device, kind)
        run.history[kind] = fit(model, cfg, data["train"], stage_generator(cfg.seed, f"fit-{kind}", device),
                                progress=progress, label=kind)
        run.models[kind] = model.eval()
        seconds[f"train_{kind}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    raw = evaluate_splits(run, data)
    seconds["evaluate"] = time.perf_counter() - t0
    run.metrics = {"models": {k: {split: metric_summary(r) for split, r in v.items()} for k, v in raw.items()},
                   "chance": 1 / cfg.stimulus.num_classes, "models_trained": cfg.train.models,
                   "seeds": init_seeds(cfg), "test_samples": len(data["test"])}
    if cfg.eval.ideal_observer:
        from .observer import IdealObserver

        t0 = time.perf_counter()
        observer = IdealObserver(cfg.stimulus).to(device)
        run.metrics["ideal_observer"] = {"test": metric_summary(evaluate(observer, data["test"], cfg.stimulus))}
        seconds["ideal_observer"] = time.perf_counter() - t0
    run.metrics["seconds"] = seconds
    return run, raw, data


# ---------------------------------------------------------------- the run folder

def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_out_dir(out: Path) -> None:
    """Refuse a folder that already holds a run, so a finished result is never overwritten."""
    if (out / "config.toml").exists() or (out / "weights.safetensors").exists():
        raise SpikelocError(f"--out {out} already holds a run; choose a new folder or remove it")
    if out.exists() and not out.is_dir():
        raise SpikelocError(f"--out {out} exists and is not a folder")


def _history_csv(history: dict[str, list[dict]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    k = max(len(rows[0]["loss_per_model"]) for rows in history.values())
    w.writerow(["model", "epoch", "loss", "lr", "seconds", *[f"loss_model_{i}" for i in range(k)]])
    for kind, rows in history.items():
        for r in rows:
            w.writerow([kind, r["epoch"], r["loss"], r["lr"], r["seconds"], *r["loss_per_model"]])
    return buf.getvalue().encode()


def _read_history(path: Path) -> dict[str, list[dict]]:
    history: dict[str, list[dict]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            losses = [float(v) for k, v in row.items() if k.startswith("loss_model_") and v != ""]
            history.setdefault(row["model"], []).append(
                {"epoch": int(row["epoch"]), "loss": float(row["loss"]), "lr": float(row["lr"]),
                 "seconds": float(row["seconds"]), "loss_per_model": losses})
    return history


def save(run: Run, out: str | Path) -> None:
    """Write config, metrics, history and weights of ``run`` into ``out`` (figures come after)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "config.toml", run.config.to_toml().encode())
    tensors = {f"{kind}.{name}": p.detach().cpu().contiguous() for kind, m in run.models.items()
               for name, p in m.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".weights.")
    os.close(fd)
    save_file(tensors, tmp)
    os.replace(tmp, out / "weights.safetensors")
    _atomic_write(out / "history.csv", _history_csv(run.history))
    _atomic_write(out / "metrics.json", json.dumps(run.metrics, indent=2).encode())
    run.path = out


def load_run(run_dir: str | Path, device: str | None = None) -> Run:
    """Load a run folder: its config, trained models, metrics and history."""
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
    for kind in KINDS:
        state = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(kind + ".")}
        if not state:
            continue
        model = build_models(cfg.stimulus, cfg.model, init_seeds(cfg), dev, kind, initialise=False)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[-1].strip()
            raise SpikelocError(f"{weights_path} does not match config.toml: {first}") from None
        models[kind] = model.eval()
    if "spiking" not in models:
        raise SpikelocError(f"{weights_path} holds no spiking model weights")
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    history = _read_history(run_dir / "history.csv") if (run_dir / "history.csv").is_file() else {}
    return Run(config=cfg, models=models, metrics=metrics, history=history, path=run_dir)


def draw(run: Run, raw: dict[str, dict[str, list[dict]]], out: str | Path) -> Path:
    """Every figure of the run into ``out/figures`` and the HTML report; returns the report path."""
    cfg, out = run.config, Path(out)
    examples = random_ipd_input_signal(cfg.plot.examples, cfg.stimulus,
                                       stage_generator(cfg.seed, "examples", run.device))
    figures = {"stimulus examples": plots.stimulus_examples(examples, cfg.stimulus, cfg.plot.examples)}
    if run.history:
        histories, chance = {}, {}
        for kind, history in run.history.items():
            model = run.models.get(kind)
            if uses_observer_target(model, cfg):  # a KL per step, not a label NLL: no uniform-guess level
                histories[f"{kind} (KL per step to the observer)"] = history
            else:
                histories[kind] = history
                if model is not None:
                    chance[kind] = chance_loss(cfg, model.cfg.bins_per_class)
        figures["training loss"] = plots.loss_curves(histories, chance, cfg.train.readout_only_epochs)
    for kind, splits in raw.items():
        for split, results in splits.items():
            title = f"{kind} model, {split} set"
            figures[title] = plots.ipd_errors(results[0]["ipd_true_deg"], results[0]["ipd_estimate_deg"],
                                              np.asarray(results[0]["confusion"]), cfg.stimulus, title)
    W1 = run.models["spiking"].W1[0].detach().cpu().numpy()
    W2 = run.models["spiking"].W2[0].detach().cpu().numpy()
    figures["weights"] = plots.weights(W1, W2, cfg.plot.th_percent)
    figures["hidden unit weights"] = plots.hidden_unit_weights(W1, cfg.stimulus)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, fig in figures.items():
        paths[name] = fig_dir / (name.replace(",", "").replace(" ", "_") + ".png")
        plots.save(fig, paths[name])
    return write_report(out / "report.html", cfg, run.metrics, paths)
