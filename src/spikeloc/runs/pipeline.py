"""A run from a config: data, both models trained (from a checkpoint, if there is one), evaluated, and
the ideal observer beside them.

Randomness: every stage draws from its own generator, seeded from ``(seed, stage name)``, so the
test set of a run can be drawn again exactly (``spikeloc report``) whatever was trained before, and
adding a stage never changes another stage's numbers. Model k of a stack (``train.models = K``) is the run
of seed ``seed + k``: its own initialisation, training and test sets, shuffles and validation set, so it
trains as ``spikeloc train --seed seed+k`` would (bit for bit at the same thread count; the ideal
observer is scored on model 0's test set).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..config.loading import config_from_toml_text, with_overrides
from ..config.schema import EVALUABLE_EVAL, EVALUABLE_STIMULUS, ModelConfig, RunConfig, StimulusConfig
from ..errors import SpikelocError
from ..evaluation.metrics import KindMetrics, ModelResult, RunMetrics, SplitMetrics, evaluate
from ..kernels.dispatch import warm_up
from ..models.network import MembraneNoise, SpikingNetwork
from ..models.registry import MODEL_KINDS, build_models, construct
from ..models.stack import StackedModel
from ..observer.ideal import IdealObserver
from ..task.perturb import Perturbation, perturb
from ..task.stimulus import Dataset, random_ipd_input_signal
from ..training.loop import Epoch, FitState, fit
from .cache import cached_json, data_hash, source_hash
from .checkpoint import Checkpoint, Checkpoints
from .resources import check_memory, resolve_threads, using_threads
from .run import Run, resolve_device


def stage_generator(seed: int, stage: str, device: torch.device) -> torch.Generator:
    """An independent generator per stage ('train', 'test', 'fit-spiking', ...) of a run with this seed."""
    mixed = int(np.random.SeedSequence([seed, zlib.crc32(stage.encode())]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(mixed)


def member_seeds(cfg: RunConfig) -> list[int]:
    """Model k of a stack is the run of seed + k."""
    return [cfg.seed + k for k in range(cfg.train.models)]


def datasets(cfg: RunConfig, device: torch.device, seed: int | None = None) -> dict[str, Dataset]:
    """The training set (epoch 1's, with ``fresh_data``) and test set (with ``cfg.eval``'s perturbations,
    if any) of the run with ``seed`` (default: ``cfg.seed``), drawn again identically on demand."""
    tc, seed = cfg.train, cfg.seed if seed is None else seed
    train_set = random_ipd_input_signal(tc.batch_size * tc.train_batches, cfg.stimulus,
                                        stage_generator(seed, "train", device), tc.phase_delay_noise_deg)
    return {"train": train_set, "test": test_set(cfg, tc.batch_size * tc.test_batches, seed, device)}


def member_datasets(cfg: RunConfig, device: torch.device) -> dict[str, list[Dataset]]:
    """Each model's own sets of :func:`datasets`: ``{"train": [K sets], "test": [K sets]}``."""
    sets = [datasets(cfg, device, seed) for seed in member_seeds(cfg)]
    return {split: [s[split] for s in sets] for split in ("train", "test")}


def validation_sets(cfg: RunConfig, device: torch.device) -> list[Dataset] | None:
    """Each model's held-out stimuli of ``train.validation_batches`` (stage ``validation``), None without."""
    tc = cfg.train
    if not tc.validation_batches:
        return None
    return [random_ipd_input_signal(tc.batch_size * tc.validation_batches, cfg.stimulus,
                                    stage_generator(seed, "validation", device), tc.phase_delay_noise_deg)
            for seed in member_seeds(cfg)]


def with_membrane_noise(model: StackedModel, sigma: float, seeds: Sequence[int],
                        stage: str = "test membrane noise"):
    """A spiking network heard through ``eval.test_membrane_noise``, model k's drawn from stage ``stage`` of
    its seed ``seeds[k]``; any other model, or ``sigma = 0``, as it is."""
    if sigma == 0 or not isinstance(model, SpikingNetwork):
        return model
    if len(seeds) != model.models:
        raise ValueError(f"membrane noise needs a seed per model: {model.models} models, {len(seeds)} seeds")
    generators = [stage_generator(s, stage, model.device) for s in seeds]
    return MembraneNoise(model, sigma, generators)


def evaluate_members(model: StackedModel, sets: list[Dataset], stim: StimulusConfig,
                     membrane_noise: float = 0.0, seeds: Sequence[int] = ()) -> list[ModelResult]:
    """Model k's result on its own set ``sets[k]``; with ``membrane_noise``, spiking networks are heard
    through it, model k's drawn from its seed ``seeds[k]``."""
    if len(sets) == 1:
        return evaluate(with_membrane_noise(model, membrane_noise, seeds), sets[0], stim)
    return [evaluate(with_membrane_noise(model.member(k), membrane_noise, list(seeds[k:k + 1])), d, stim)[0]
            for k, d in enumerate(sets)]


def evaluate_splits(run: Run, data: dict[str, list[Dataset]]) -> dict[str, dict[str, list[ModelResult]]]:
    """Per-model results (with confusion matrices and estimates) of every model kind on every set, each
    model on its own (:func:`member_datasets`); the test sets with ``eval.membrane_noise``."""
    cfg = run.config
    return {kind: {split: evaluate_members(m, sets, cfg.stimulus,
                                           cfg.eval.test_membrane_noise if split == "test" else 0.0,
                                           member_seeds(cfg))
                   for split, sets in data.items()}
            for kind, m in run.models.items()}


def _kind_metrics(results: dict[str, list[ModelResult]]) -> KindMetrics:
    return KindMetrics(**{split: SplitMetrics.of(r) for split, r in results.items()})


def _trained_model(kind: str, cfg: RunConfig, data: dict[str, list[Dataset]],
                   validation: list[Dataset] | None, progress: bool, ckpt: Checkpoint,
                   checkpoints: Checkpoints | None,
                   log: Callable[[str], None] | None) -> tuple[StackedModel, list[Epoch]]:
    """Model ``kind`` trained: taken from the checkpoint when it is done there, else trained (from where the
    checkpoint left it), writing a checkpoint after every epoch."""
    device = torch.device(cfg.device)
    if kind in ckpt.finished:
        state, history = ckpt.finished[kind]
        model = construct(kind, cfg.stimulus, cfg.model, cfg.train.models, device)
        model.load_state_dict(state)  # the config was checked against the checkpoint's
        return model, history
    resume = ckpt.fit if ckpt.kind == kind else None
    if resume is not None:  # its weights come from the checkpoint: no need to draw or calibrate them
        model = construct(kind, cfg.stimulus, cfg.model, cfg.train.models, device)
    else:
        model = build_models(cfg.stimulus, cfg.model, member_seeds(cfg), device, kind)

    def on_epoch(state: FitState) -> None:
        ckpt.kind, ckpt.fit = kind, state
        checkpoints.save(ckpt)

    generators = [stage_generator(seed, f"fit-{kind}", device) for seed in member_seeds(cfg)]
    history = fit(model, cfg, data["train"], generators,
                  progress=progress, label=kind, resume=resume,
                  on_epoch=on_epoch if checkpoints is not None else None, log=log, validation=validation)
    ckpt.finished[kind], ckpt.kind, ckpt.fit = (model.state_dict(), history), None, None
    if checkpoints is not None:
        checkpoints.save(ckpt)
    return model, history


def train(cfg: RunConfig, progress: bool = True, checkpoints: Checkpoints | None = None,
          log: Callable[[str], None] | None = None) -> Run:
    """Train the spiking model (and, with ``train.membrane_baseline``, the membrane-only baseline), evaluate
    them and the ideal observer.

    The returned run holds the models, metrics, history and per-sample results; nothing else is
    written. With ``checkpoints`` (a run folder's), training starts from the last checkpoint there and
    writes one after every epoch; the result is the same as without interruption. The run's config
    records the device and the CPU thread count it used (``threads = "auto"`` resolved). ``progress``: a
    progress bar in a terminal; ``log`` gets a line per epoch and per stage after training.
    """
    run, data, seconds = _trained(cfg, progress, checkpoints, log)
    with using_threads(run.config.threads):
        run.metrics = evaluate_run(run, data, seconds)
    if log is not None:
        done = run.metrics.seconds
        log(f"evaluated on {len(data['test'][0]):,} test samples: {done['evaluate']:.1f} s"
            + (f"; ideal observer: {done['ideal_observer']:.1f} s" if "ideal_observer" in done else ""))
    return run


def member_config(cfg: RunConfig, k: int) -> RunConfig:
    """The config of model ``k`` of ``cfg``'s stack as a run of its own: seed + k, one model."""
    return cfg.model_copy(update={"seed": cfg.seed + k, "train": cfg.train.model_copy(update={"models": 1})})


def train_members(cfg: RunConfig, progress: bool = False, log: Callable[[str], None] | None = None
                  ) -> list[Run]:
    """Train ``cfg``'s stack of K models at once and return each as the run of its own seed: K runs of one
    model (:func:`member_config`), each evaluated on its own sets, as ``train(member_config(cfg, k))`` would
    give them (sweeps train the seeds of a point this way). Early stopping decides on the stack's mean, so a
    config with ``train.early_stopping_patience`` is refused here.

    Each run's ``metrics.seconds`` holds its share (1/K) of the stack's data and training time.
    """
    if cfg.train.early_stopping_patience and cfg.train.models > 1:
        raise SpikelocError("train.early_stopping_patience stops a stack on the mean of its models: train "
                            "such configs one model at a time")
    stack, data, seconds = _trained(cfg, progress, None, log)
    K, members = cfg.train.models, []
    with using_threads(stack.config.threads):
        for k in range(K):
            run = stack.member(k)
            run.config, run.path = member_config(stack.config, k), None
            run.history = {kind: [e.member(k) for e in rows] for kind, rows in stack.history.items()}
            own = {split: [sets[k]] for split, sets in data.items()}
            run.metrics = evaluate_run(run, own, {name: s / K for name, s in seconds.items()})
            members.append(run)
    return members


def _trained(cfg: RunConfig, progress: bool, checkpoints: Checkpoints | None,
             log: Callable[[str], None] | None) -> tuple[Run, dict[str, list[Dataset]], dict[str, float]]:
    """The trained run (no metrics yet), each model's sets, and the stages' seconds."""
    check_memory(cfg)
    device = resolve_device(cfg.device)
    cfg = cfg.model_copy(update={"device": device.type, "threads": resolve_threads(cfg.threads)})
    with using_threads(cfg.threads):
        return _train(cfg, device, progress, checkpoints, log)


def _same_config(trained_with: str, cfg: RunConfig) -> bool:
    """Whether a checkpoint's config (TOML text, perhaps of an earlier release: old names, no thread count)
    is ``cfg``; a checkpoint that did not record its thread count matches any."""
    old = config_from_toml_text(trained_with, "the checkpoint's config")
    return (old if old.threads != "auto" else old.model_copy(update={"threads": cfg.threads})) == cfg


def _prepare_training(device: torch.device, model: ModelConfig) -> None:
    """What the first training step would otherwise wait for: torch.optim imports torch._dynamo when the
    first optimizer is made, and the fused kernels load their compiled code (docs/performance.md has the
    times)."""
    with contextlib.suppress(Exception):  # a failure shows again where training really needs it
        importlib.import_module("torch._dynamo")
        if model.engine != "reference":
            warm_up(device, model.update_rule, model.reset, model.neuron)


def _train(cfg: RunConfig, device: torch.device, progress: bool, checkpoints: Checkpoints | None,
           log: Callable[[str], None] | None) -> tuple[Run, dict[str, list[Dataset]], dict[str, float]]:
    t0 = time.perf_counter()
    # a thread prepares training while the data are drawn (torch's kernels run without the GIL)
    preparation = threading.Thread(target=_prepare_training, args=(device, cfg.model), daemon=True)
    preparation.start()
    data = member_datasets(cfg, device)
    preparation.join()  # before training imports anything: no module is imported by two threads at once
    seconds = {"data": time.perf_counter() - t0}
    ckpt = (checkpoints.load() if checkpoints is not None else None) or Checkpoint(config=cfg.to_toml())
    if not _same_config(ckpt.config, cfg):
        raise SpikelocError("config.toml is not the config this run's checkpoint was trained with (it was "
                            "edited?); restore it, or start a new run with the new config")
    run = Run(config=cfg, models={})
    validation = validation_sets(cfg, device)  # the same for every model kind
    for kind in MODEL_KINDS if cfg.train.membrane_baseline else ["spiking"]:
        t0 = time.perf_counter()
        model, run.history[kind] = _trained_model(kind, cfg, data, validation, progress, ckpt, checkpoints,
                                                  log)
        run.models[kind] = model.eval()
        seconds[f"train_{kind}"] = time.perf_counter() - t0
    return run, data, seconds


def evaluate_run(run: Run, data: dict[str, list[Dataset]],
                 seconds: dict[str, float] | None = None) -> RunMetrics:
    """The metrics of a run on its own sets ``data`` (:func:`member_datasets`), the ideal observer's on model
    0's test set beside them; fills ``run.results``.
    ``seconds`` (the stages' times so far) gains the evaluation's."""
    cfg, seconds = run.config, seconds if seconds is not None else {}
    t0 = time.perf_counter()
    run.results = evaluate_splits(run, data)
    seconds["evaluate"] = time.perf_counter() - t0
    ideal = None
    if cfg.eval.ideal_observer:
        t0 = time.perf_counter()
        ideal = _ideal_observer(run, data["test"][0], cfg.stimulus)
        seconds["ideal_observer"] = time.perf_counter() - t0
    return RunMetrics(kinds={kind: _kind_metrics(r) for kind, r in run.results.items()},
                      chance=1 / cfg.stimulus.num_classes, test_samples=len(data["test"][0]),
                      models_trained=cfg.train.models, seeds=tuple(member_seeds(cfg)), ideal_observer=ideal,
                      seconds=seconds)


def _ideal_observer(run: Run, test: Dataset, stim: StimulusConfig) -> KindMetrics:
    """The ideal observer's metrics on ``test`` (stimuli of ``stim``), from the cache when it has them."""
    key = {"stimulus": stim.model_dump(), "test_set": data_hash(test.spikes, test.ipd),
           "device": run.device.type, "threads": run.config.threads, "code": source_hash()}

    def compute() -> dict:
        observer = IdealObserver(stim).to(run.device)
        return KindMetrics(test=SplitMetrics.of(evaluate(observer, test, stim))).to_json()
    return KindMetrics.from_json(cached_json("ideal-observer", key, compute))


def evaluation_config(run: Run, overrides: list[str] | tuple[str, ...]) -> RunConfig:
    """The run's config with ``KEY=VALUE`` overrides (``spikeloc evaluate --set``), validated; a key that a
    trained network cannot be evaluated under is a one-line error naming the allowed ones: the stimulus
    fields of ``EVALUABLE_STIMULUS`` and the test-spike perturbations of ``EVALUABLE_EVAL``."""
    new = with_overrides(run.config, overrides)
    allowed = {"stimulus": EVALUABLE_STIMULUS, "eval": EVALUABLE_EVAL}
    before, after = run.config.model_dump(), new.model_dump()
    for section, fields in after.items():
        for name, value in fields.items() if isinstance(fields, dict) else [(None, fields)]:
            old = before[section][name] if name is not None else before[section]
            key = f"{section}.{name}" if name is not None else section
            if value != old and name not in allowed.get(section, ()):
                names = [f"{s}.{k}" for s, keys in allowed.items() for k in keys]
                raise SpikelocError(f"evaluate --set {key}: a trained network is evaluated with the config "
                                    f"it was trained with, except {', '.join(names)}")
    return new


def test_set(cfg: RunConfig, samples: int, seed: int, device: torch.device) -> Dataset:
    """``samples`` fresh stimuli of ``cfg.stimulus`` (stage ``test`` of ``seed``), with the perturbations
    of ``cfg.eval`` applied (stage ``test perturbation``)."""
    data = random_ipd_input_signal(samples, cfg.stimulus, stage_generator(seed, "test", device))
    p = Perturbation.of(cfg.eval, cfg.stimulus)
    if p.none:
        return data
    spikes = perturb(data.spikes, p, stage_generator(seed, "test perturbation", device))
    return Dataset(ipd=data.ipd, spikes=spikes, offset=data.offset)


def evaluate_fresh(run: Run, samples: int, seed: int, config: RunConfig | None = None,
                   ideal_observer: bool = False) -> RunMetrics:
    """Metrics of every model kind of ``run`` on ``samples`` fresh test samples drawn with ``seed``, from
    ``config``'s stimulus and with its test-spike perturbations (default: the run's config; see
    :func:`evaluation_config`), and of the ideal observer on the same samples if asked (it assumes clean
    spikes: under a perturbation it is no longer the bound)."""
    cfg = config or run.config
    test = test_set(cfg, samples, seed, run.device)
    stim = cfg.stimulus
    # each model's noise from its own seed and this test set's: model k of a stack hears what the run of
    # its seed would
    noise, seeds = cfg.eval.test_membrane_noise, member_seeds(run.config)
    tested = {kind: with_membrane_noise(m, noise, seeds, f"test membrane noise {seed}")
              for kind, m in run.models.items()}
    kinds = {kind: KindMetrics(test=SplitMetrics.of(evaluate(m, test, stim))) for kind, m in tested.items()}
    return RunMetrics(kinds=kinds, chance=1 / stim.num_classes, test_samples=samples, test_seed=seed,
                      ideal_observer=_ideal_observer(run, test, stim) if ideal_observer else None)
