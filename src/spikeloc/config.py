"""Typed, validated configuration: one place for every hyperparameter.

A run is described by a `RunConfig` (stimulus, model, training, plots, seed, device).
The field defaults are the source notebook's values; named presets
(``src/spikeloc/presets/*.toml``) override some of them, a TOML file overrides the
preset, and ``key=value`` pairs override the file. The resolved config is saved with
every run, so any result can be re-run exactly.
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import SpikelocError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class StimulusConfig(_Section):
    """Auditory-nerve-fibre (ANF) Poisson spike trains of a tone heard with two ears."""

    anf_per_ear: int = Field(100, ge=1, description="fibres per ear")
    envelope_power: float = Field(2.0, gt=0, description="sharpens the rate envelope; higher is easier")
    rate_max: float = Field(600.0, gt=0, description="peak firing rate (Hz)")
    f: float = Field(20.0, gt=0, description="tone frequency (Hz)")
    duration: float = Field(0.1, gt=0, description="stimulus duration (s)")
    dt: float = Field(0.001, gt=0, description="time step (s)")
    ipd_min_deg: float = Field(-90.0, ge=-180, le=180, description="smallest interaural phase difference (deg)")
    ipd_max_deg: float = Field(90.0, ge=-180, le=180, description="largest interaural phase difference (deg)")
    max_phase_delay_deg: float = Field(90.0, ge=0, le=360, description="fibre i's delay is linspace(0, this)")
    num_classes: int = Field(12, ge=2, description="IPD bins of equal width")
    offset: Literal["per_dataset", "per_sample"] = Field(
        "per_dataset", description="phase offset: one per generated set (notebook) or one per sample"
    )

    @model_validator(mode="after")
    def _check(self) -> StimulusConfig:
        if self.ipd_max_deg <= self.ipd_min_deg:
            raise ValueError("ipd_max_deg must be greater than ipd_min_deg")
        if self.rate_max * self.dt > 1:
            raise ValueError("rate_max * dt must be at most 1 (one spike per step)")
        if self.steps < 1:
            raise ValueError("duration / dt must be at least 1 step")
        return self

    @property
    def steps(self) -> int:
        """Number of time steps, ``round(duration / dt)``."""
        return int(round(self.duration / self.dt))

    @property
    def inputs(self) -> int:
        """Number of input fibres, both ears."""
        return 2 * self.anf_per_ear

    @property
    def ipd_range(self) -> tuple[float, float]:
        """IPD range in radians."""
        return math.radians(self.ipd_min_deg), math.radians(self.ipd_max_deg)


class ModelConfig(_Section):
    """Spiking network: inputs -> LIF hidden layer -> leaky-integrator readout."""

    hidden: int = Field(30, ge=1, description="hidden LIF neurons")
    hidden_bias: bool = Field(False, description="learn a constant input current per hidden neuron")
    tau_hidden_ms: float = Field(20.0, gt=0, description="hidden membrane time constant (ms)")
    tau_out_ms: float = Field(20.0, gt=0, description="readout membrane time constant (ms)")
    learn_tau: bool = Field(False, description="learn one time constant per neuron")
    beta: float = Field(5.0, gt=0, description="slope of the sigmoid surrogate gradient")
    semantics: Literal["notebook", "standard", "immediate"] = Field(
        "notebook", description="notebook: spike from the membrane before the update; standard: after, and "
        "the reset also drops the next step's input; immediate: spike and reset in the same step, the next "
        "input counts (as Norse)"
    )
    init: Literal["notebook", "fan_in", "observer"] = Field(
        "notebook", description="notebook: U(+-1/sqrt(12)) for both layers; fan_in: U(+-gain/sqrt(fan-in)); "
        "observer: hidden neurons start as the ideal observer's (tone phase, IPD) templates, the readout as fan_in"
    )
    init_gain: float = Field(1.0, gt=0, description="scale of the fan_in initialisation")
    init_phases: int = Field(
        16, ge=1, description="observer init: tone phases per IPD; hidden / init_phases IPDs span the IPD range")
    init_rate: float = Field(
        0.06, gt=0, lt=1, description="observer init: spikes per step of each hidden neuron on random stimuli")
    bins_per_class: int = Field(1, ge=1, description="output units per class; >1 gives a finer posterior")
    readout: Literal["mean", "max", "count", "last", "rate", "sum"] = Field(
        "mean", description="how the output membrane trace becomes class scores; rate: W2-weighted hidden "
        "firing rates (a leak-free integrator read at the end, divided by the steps); sum: the same "
        "without the division, each step's W2-weighted spikes adding up like per-step log-likelihoods"
    )
    engine: Literal["auto", "reference", "fused"] = Field(
        "auto", description="LIF implementation: plain PyTorch reference or fused kernel"
    )

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.init == "observer":
            if self.hidden % self.init_phases:
                raise ValueError(f"init = 'observer' needs hidden ({self.hidden}) to be a multiple of "
                                 f"init_phases ({self.init_phases})")
            if not self.hidden_bias:
                raise ValueError("init = 'observer' needs hidden_bias = true (the templates set each neuron's bias)")
        return self


class TrainConfig(_Section):
    """Adam on the NLL of log-softmax of the readout, or on the per-step KL to the ideal observer."""

    epochs: int = Field(10, ge=1, description="passes over the training set")
    batch_size: int = Field(64, ge=1, description="samples per batch")
    train_batches: int = Field(64, ge=1, description="batches per epoch")
    test_batches: int = Field(32, ge=1, description="batches in the test set")
    lr: float = Field(0.01, gt=0, description="Adam learning rate")
    lr_schedule: Literal["constant", "cosine"] = Field("constant", description="cosine: decays to 0 at the end")
    fresh_data: bool = Field(False, description="draw new training data every epoch")
    readout_only_epochs: int = Field(
        0, ge=0, description="epochs (of `epochs`) that first train only the readout, the hidden layer fixed; "
        "then a new Adam and schedule train everything. Lets a random readout settle before its gradients "
        "reach an observer-initialised hidden layer")
    target: Literal["labels", "observer"] = Field(
        "labels", description="labels: NLL of each sample's IPD bin; observer: each step's readout h_t @ W2 "
        "matches the ideal observer's evidence from that step (KL per step; needs readout = 'sum'). The "
        "membrane baseline always trains on labels")
    class_loss_weight: float = Field(
        0.0, ge=0, description="weight of the class NLL (fine bins summed per class) added to the fine-bin "
        "NLL; only matters when bins_per_class > 1")
    rate_reg: float = Field(0.0, ge=0, description="weight of the hidden firing-rate penalty")
    target_rate_hz: float = Field(10.0, ge=0, description="hidden firing rate the penalty pulls towards (Hz)")
    models: int = Field(1, ge=1, description="independent models trained at once (seeds seed..seed+models-1)")
    membrane_only: bool = Field(True, description="also train the membrane-only baseline")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.readout_only_epochs > self.epochs:
            raise ValueError(f"readout_only_epochs ({self.readout_only_epochs}) must be at most epochs ({self.epochs})")
        return self


class EvalConfig(_Section):
    """What is evaluated besides the trained models."""

    ideal_observer: bool = Field(True, description="evaluate the Bayesian ideal observer on the same test set")


class PlotConfig(_Section):
    """Figures of the report."""

    th_percent: float = Field(25.0, ge=0, le=50, description="W1.W2 threshold: top/bottom percent -> +1/-1")
    examples: int = Field(8, ge=1, le=32, description="example stimuli drawn as rasters")


class RunConfig(_Section):
    """Everything a run needs; saved as ``config.toml`` in the run folder."""

    description: str = Field("", description="free text, shown in the report")
    seed: int = Field(0, ge=0, description="seed of every random draw of the run")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available")
    stimulus: StimulusConfig = StimulusConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    plot: PlotConfig = PlotConfig()

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.train.target == "observer" and self.model.readout != "sum":
            raise ValueError(f"train.target = 'observer' needs model.readout = 'sum' (got {self.model.readout!r}): "
                             "the per-step scores it trains must add up to the class scores")
        return self

    def to_toml(self) -> str:
        return tomli_w.dumps(self.model_dump())


# ---------------------------------------------------------------- presets and loading

def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).joinpath("presets").iterdir()
                  if p.name.endswith(".toml"))


def _preset_dict(name: str) -> dict[str, Any]:
    names = preset_names()
    if name not in names:
        raise SpikelocError(f"unknown preset {name!r}; allowed: {', '.join(names)}")
    text = resources.files(__package__).joinpath("presets", f"{name}.toml").read_text()
    return tomllib.loads(text)


def preset_descriptions() -> dict[str, str]:
    return {name: _preset_dict(name).get("description", "") for name in preset_names()}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SpikelocError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpikelocError(f"cannot read config file {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpikelocError(f"config file {path} is not valid TOML: {e}") from None


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


_SECTIONS = {"stimulus": StimulusConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig,
             "plot": PlotConfig}


def _resolve_key(key: str) -> list[str]:
    """'train.epochs' -> ['train', 'epochs']; a bare field name is looked up in every section."""
    parts = key.split(".")
    if len(parts) == 1:
        if key in RunConfig.model_fields:
            return parts
        owners = [s for s, cls in _SECTIONS.items() if key in cls.model_fields]
        if len(owners) == 1:
            return [owners[0], key]
        if len(owners) > 1:
            raise SpikelocError(f"ambiguous key {key!r}: write one of {', '.join(f'{o}.{key}' for o in owners)}")
    if len(parts) == 2 and parts[0] in _SECTIONS and parts[1] in _SECTIONS[parts[0]].model_fields:
        return parts
    if len(parts) == 1 or parts[0] not in _SECTIONS:
        allowed = ", ".join([*RunConfig.model_fields])
        raise SpikelocError(f"unknown config key {key!r}; allowed sections and keys: {allowed}")
    allowed = ", ".join(_SECTIONS[parts[0]].model_fields)
    raise SpikelocError(f"unknown config key {key!r}; allowed in [{parts[0]}]: {allowed}")


def parse_override(item: str) -> dict[str, Any]:
    """``'model.hidden=128'`` -> ``{'model': {'hidden': 128}}``; values are read as TOML, else as text."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise SpikelocError(f"override {item!r} must look like key=value, e.g. train.epochs=20")
    path = _resolve_key(key.strip())
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    out: dict[str, Any] = {path[-1]: value}
    for p in reversed(path[:-1]):
        out = {p: out}
    return out


def _validate(data: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            section = err["loc"][0] if len(err["loc"]) > 1 else None
            fields = _SECTIONS[section].model_fields if section in _SECTIONS else RunConfig.model_fields
            msg = f"unknown key; allowed: {', '.join(fields)}"
        elif "input" in err and not isinstance(err["input"], dict):
            msg += f" (got {err['input']!r})"
        raise SpikelocError(f"{where}: {msg}") from None


def load_config(preset: str | None = None, file: str | Path | None = None,
                overrides: list[str] | tuple[str, ...] = (), **fields: Any) -> RunConfig:
    """Resolve a config: preset < TOML file < ``key=value`` overrides < fields.

    The preset is ``preset``, else the file's top-level ``preset = "..."``, else ``default``.
    ``fields`` are top-level values such as ``seed=3`` or ``device="cpu"`` (None is ignored).
    """
    file_data = _read_toml(Path(file)) if file is not None else {}
    file_preset = file_data.pop("preset", "default")
    data = _merge(_preset_dict(preset or file_preset), file_data)
    for item in overrides:
        data = _merge(data, parse_override(item))
    data = _merge(data, {k: v for k, v in fields.items() if v is not None})
    return _validate(data)


def config_from_toml_text(text: str, source: str) -> RunConfig:
    """Read a saved ``config.toml`` (as written by a run)."""
    try:
        return _validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as e:
        raise SpikelocError(f"{source} is not valid TOML: {e}") from None
