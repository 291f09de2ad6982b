"""A run from a config: data, both models trained, evaluated, and the ideal observer beside them.

Randomness: every stage draws from its own generator, seeded from ``(seed, stage name)``, so the
test set of a run can be drawn again exactly (``spikeloc report``) whatever was trained before, and
adding a stage never changes another stage's numbers. Model k of a stack is initialised from
``seed + k``; the K models share the data stream.
"""

from __future__ import annotations

import time
import zlib

import numpy as np
import torch

from ..config.schema import RunConfig
from ..evaluation.metrics import KindMetrics, ModelResult, RunMetrics, SplitMetrics, evaluate
from ..models.registry import MODEL_KINDS, build_models
from ..observer.ideal import IdealObserver
from ..task.stimulus import Dataset, random_ipd_input_signal
from ..training.loop import fit
from .run import Run, resolve_device


def stage_generator(seed: int, stage: str, device: torch.device) -> torch.Generator:
    """An independent generator per stage ('train', 'test', 'fit-spiking', ...) of a run with this seed."""
    mixed = int(np.random.SeedSequence([seed, zlib.crc32(stage.encode())]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(mixed)


def datasets(cfg: RunConfig, device: torch.device) -> dict[str, Dataset]:
    """The run's training set (epoch 1's, with ``fresh_data``) and test set, drawn again identically on
    demand."""
    tc = cfg.train
    return {split: random_ipd_input_signal(tc.batch_size * batches, cfg.stimulus,
                                           stage_generator(cfg.seed, split, device))
            for split, batches in (("train", tc.train_batches), ("test", tc.test_batches))}


def init_seeds(cfg: RunConfig) -> list[int]:
    """Model k of a stack is initialised from seed + k."""
    return [cfg.seed + k for k in range(cfg.train.models)]


def evaluate_splits(run: Run, data: dict[str, Dataset]) -> dict[str, dict[str, list[ModelResult]]]:
    """Per-model results (with confusion matrices and estimates) of every model kind on every set."""
    return {kind: {split: evaluate(m, d, run.config.stimulus) for split, d in data.items()}
            for kind, m in run.models.items()}


def _kind_metrics(results: dict[str, list[ModelResult]]) -> KindMetrics:
    return KindMetrics(**{split: SplitMetrics.of(r) for split, r in results.items()})


def train(cfg: RunConfig, progress: bool = True) -> Run:
    """Train the spiking model (and the membrane-only baseline), evaluate them and the ideal observer.

    The returned run holds the models, metrics, history and per-sample results; nothing is written.
    """
    device = resolve_device(cfg.device)
    cfg = cfg.model_copy(update={"device": device.type})
    t0 = time.perf_counter()
    data = datasets(cfg, device)
    seconds = {"data": time.perf_counter() - t0}
    run = Run(config=cfg, models={})
    for kind in MODEL_KINDS if cfg.train.membrane_only else ["spiking"]:
        t0 = time.perf_counter()
        model = build_models(cfg.stimulus, cfg.model, init_seeds(cfg), device, kind)
        run.history[kind] = fit(model, cfg, data["train"], stage_generator(cfg.seed, f"fit-{kind}", device),
                                progress=progress, label=kind)
        run.models[kind] = model.eval()
        seconds[f"train_{kind}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    run.results = evaluate_splits(run, data)
    seconds["evaluate"] = time.perf_counter() - t0
    ideal = None
    if cfg.eval.ideal_observer:
        t0 = time.perf_counter()
        observer = IdealObserver(cfg.stimulus).to(device)
        ideal = KindMetrics(test=SplitMetrics.of(evaluate(observer, data["test"], cfg.stimulus)))
        seconds["ideal_observer"] = time.perf_counter() - t0
    run.metrics = RunMetrics(kinds={kind: _kind_metrics(r) for kind, r in run.results.items()},
                             chance=1 / cfg.stimulus.num_classes, test_samples=len(data["test"]),
                             models_trained=cfg.train.models, seeds=tuple(init_seeds(cfg)),
                             ideal_observer=ideal, seconds=seconds)
    return run


def evaluate_fresh(run: Run, samples: int, seed: int) -> RunMetrics:
    """Metrics of every model kind of ``run`` on ``samples`` fresh test samples drawn with ``seed``."""
    cfg = run.config
    test = random_ipd_input_signal(samples, cfg.stimulus, stage_generator(seed, "test", run.device))
    kinds = {kind: KindMetrics(test=SplitMetrics.of(evaluate(m, test, cfg.stimulus)))
             for kind, m in run.models.items()}
    return RunMetrics(kinds=kinds, chance=1 / cfg.stimulus.num_classes, test_samples=samples, test_seed=seed)
