"""Typed, validated configuration: one place for every hyperparameter.

A run is described by a :class:`RunConfig` with five sections (stimulus, model, train, eval,
plot), a seed and a device. Field defaults are the source notebook's values; named presets
(``presets/*.toml``) override some of them (:mod:`.loading`). Every number carries its unit in
the field's metadata (``unit``; shown in ``docs/config.md``), and fields added from now on carry
it in the name too (``tau_hidden_ms``, ``target_rate_hz``). Old field names stay readable as
aliases (``beta`` for ``surrogate_slope``, ``semantics`` for ``update_rule``), so configs saved
by earlier releases still load.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def field(default: Any, description: str, unit: str | None = None, old_name: str | None = None,
          **constraints):
    """A config field: its default, what it means, its unit (numbers) and an older name it is still
    read by."""
    extra = {key: value for key, value in (("unit", unit), ("old_name", old_name)) if value}
    return Field(default, description=description, json_schema_extra=extra or None, **constraints)


MAX_SEED = 2**63 - 1  # what every generator takes (torch's manual_seed, numpy's SeedSequence, int64 readers)


class Section(BaseModel):
    # every number finite: inf and nan are refused with the field's name, never met as an overflow later
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _old_names_and_no_bools(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = cls.current_names(data)
        numbers = {name for name, f in cls.model_fields.items() if f.annotation in (int, float)}
        for name, value in data.items():  # pydantic would read true as 1: a typo, not a number
            if isinstance(value, bool) and name in numbers:
                raise ValueError(f"{name} must be a number, not {str(value).lower()}")
        return data

    @classmethod
    def current_names(cls, values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        """``values`` with each field's old name (``beta``) replaced by its name; both at once is a
        ValueError (its message puts ``prefix``, e.g. ``"model."``, before each name)."""
        out = dict(values)
        for name, old in cls.old_names().items():
            if old in out:
                if name in out:
                    raise ValueError(f"{prefix}{old} is the old name of {prefix}{name}: give one of them")
                out[name] = out.pop(old)
        return out

    @classmethod
    def old_names(cls) -> dict[str, str]:
        """Field name -> the old name it is still read by."""
        return {name: f.json_schema_extra["old_name"] for name, f in cls.model_fields.items()
                if isinstance(f.json_schema_extra, dict) and "old_name" in f.json_schema_extra}

    @classmethod
    def unit(cls, name: str) -> str | None:
        extra = cls.model_fields[name].json_schema_extra
        return extra.get("unit") if isinstance(extra, dict) else None


class StimulusConfig(Section):
    """Auditory-nerve-fibre (ANF) Poisson spike trains of a tone heard with two ears."""

    anf_per_ear: int = field(100, "fibres per ear", "fibres", ge=1)
    envelope_power: float = field(2.0, "sharpens the rate envelope; higher is easier", "1", gt=0)
    rate_max: float = field(600.0, "peak firing rate of a fibre", "Hz", gt=0)
    f: float = field(20.0, "tone frequency", "Hz", gt=0)
    duration: float = field(0.1, "stimulus duration", "s", gt=0)
    dt: float = field(0.001, "time step", "s", gt=0)
    ipd_min_deg: float = field(-90.0, "smallest interaural phase difference", "deg", ge=-180, le=180)
    ipd_max_deg: float = field(90.0, "largest interaural phase difference", "deg", ge=-180, le=180)
    max_phase_delay_deg: float = field(
        90.0, "fibre i's phase delay is linspace(0, this)", "deg", ge=0, le=360)
    phase_delays: bool = field(
        True, "false: every fibre of an ear has phase delay 0, whatever max_phase_delay_deg says (the inputs "
        "of the community's learnable-delay notebook, where the network must find the delays itself)")
    num_classes: int = field(12, "IPD classes (bins of equal width)", "classes", ge=2)
    offset: Literal["per_dataset", "per_epoch", "per_sample"] = field(
        "per_dataset", "phase offset: one per generated set (notebook); per_epoch: the training set gets a "
        "new one every epoch, its IPDs and Poisson draws kept (Quick_Start_random; validation and test sets: "
        "one each); or one per sample")

    @model_validator(mode="after")
    def _check(self) -> StimulusConfig:
        if self.ipd_max_deg <= self.ipd_min_deg:
            raise ValueError("ipd_max_deg must be greater than ipd_min_deg")
        if self.rate_max * self.dt > 1:
            raise ValueError("rate_max * dt must be at most 1 (one spike per step)")
        if self.f * self.dt > 0.5:
            raise ValueError(f"f must be at most 1 / (2 dt) = {0.5 / self.dt:g} Hz: a faster tone aliases at "
                             "this time step")
        if not math.isfinite(self.duration / self.dt):
            raise ValueError(f"duration / dt must be a number of steps (got {self.duration:g} / {self.dt:g})")
        if self.steps < 1:
            raise ValueError("duration / dt must be at least 1 step")
        return self

    @property
    def steps(self) -> int:
        """Number of time steps T, ``round(duration / dt)``."""
        return round(self.duration / self.dt)

    @property
    def inputs(self) -> int:
        """Number of input fibres I, both ears."""
        return 2 * self.anf_per_ear

    @property
    def ipd_range(self) -> tuple[float, float]:
        """IPD range in radians."""
        return math.radians(self.ipd_min_deg), math.radians(self.ipd_max_deg)


# what a trained network can be evaluated under (`spikeloc evaluate --set`): not its input size
# (anf_per_ear), time step (the neurons' decay per step), duration, classes or IPD range (its readout)
EVALUABLE_STIMULUS = ("f", "rate_max", "envelope_power", "offset", "max_phase_delay_deg")
# ... and the perturbations of the test spikes it can be evaluated under
EVALUABLE_EVAL = ("spike_deletion", "spike_jitter_ms", "spike_background_hz", "test_membrane_noise")


FUSED_ALIF_RULES = ("notebook",)  # the update rules with a fused ALIF kernel (spikeloc.kernels.fused_alif)


class ModelConfig(Section):
    """Spiking network: inputs -> LIF hidden layer -> readout (and the membrane-only baseline)."""

    hidden: int = field(30, "hidden LIF neurons", "neurons", ge=1)
    hidden_bias: bool = field(False, "learn a constant input current per hidden neuron")
    tau_hidden_ms: float = field(20.0, "hidden membrane time constant", "ms", gt=0)
    tau_out_ms: float = field(20.0, "readout membrane time constant", "ms", gt=0)
    learn_tau: bool = field(False, "learn one time constant per neuron")
    surrogate_slope: float = field(
        5.0, "slope of the sigmoid surrogate gradient, per unit of membrane potential (threshold = 1); "
        "snnTorch's `beta` is the membrane decay instead", "1", old_name="beta", gt=0)
    update_rule: Literal["notebook", "standard", "immediate"] = field(
        "notebook", "order of integration, spike and reset in a step (equations: spikeloc.neurons.lif). "
        "notebook: the spike is taken from the membrane before the update; standard: after it, and the reset "
        "also drops the next step's input; immediate: spike and reset in the same step, the next input "
        "counts (as Norse)", old_name="semantics")
    neuron: Literal["lif", "alif"] = field(
        "lif", "hidden neuron: lif, or alif, whose threshold 1 + adapt_strength a rises with its own spikes "
        "(a[t] = rho a[t-1] + (1 - rho) s[t], rho = exp(-dt / adapt_tau_ms); the community's "
        "Dynamic_threshold notebook; equations: spikeloc.neurons.alif). Fused kernels: every lif; alif with "
        "update_rule = 'notebook'")
    adapt_tau_ms: float = field(20.0, "alif: time constant of the threshold adaptation", "ms", gt=0)
    adapt_strength: float = field(
        1.0, "alif: threshold added per unit of adaptation (a spike adds adapt_strength (1 - rho))",
        "threshold", ge=0)
    reset: Literal["zero", "subtract"] = field(
        "zero", "what a spike does to the membrane: zero sets it to 0 (the notebook's multiplication by "
        "1 - s); subtract takes the threshold off it (for alif the threshold of that step)")
    init: Literal["notebook", "fan_in", "fan_out", "observer"] = field(
        "notebook", "notebook: U(+-1/sqrt(12)) for both layers; fan_in: U(+-gain/sqrt(fan-in)); fan_out: "
        "U(+-gain/sqrt(fan-out)), the research notebooks' snn_init (1/sqrt(hidden) for W1, 1/sqrt(output "
        "bins) for W2); observer: hidden neurons start as the ideal observer's (tone phase, IPD) templates, "
        "the readout as fan_in")
    init_gain: float = field(1.0, "scale of the fan_in and fan_out initialisations", "1", gt=0)
    init_phases: int = field(
        16, "observer init: tone phases per IPD; hidden / init_phases IPDs span the IPD range", "phases",
        ge=1)
    init_rate: float = field(
        0.06, "observer init: firing of each hidden neuron on random stimuli", "spikes per step", gt=0, lt=1)
    bins_per_class: int = field(1, "output units per class; >1 gives a finer posterior", "bins", ge=1)
    readout: Literal["mean", "max", "count", "spike_rate", "last", "rate", "sum"] = field(
        "mean", "how the output becomes class scores. mean, max, last: of the leaky-integrator membrane "
        "trace; count: spikes of output LIF neurons; spike_rate: their spikes per step (the count / steps, "
        "Altering_output_neurons' spiking readout; spiking is read as spike_rate); rate: W2-weighted hidden "
        "firing rates (a leak-free integrator read at the end, divided by the steps); sum: the same without "
        "the division, each step's W2-weighted spikes adding up like per-step log-likelihoods")
    dale: bool = field(
        False, "Dale's law: each presynaptic unit (input fibre for W1, hidden neuron for W2) is excitatory "
        "or inhibitory at random, and its outgoing weights are |w| times that fixed sign (saved with the "
        "run)")
    inhibitory_fraction: float = field(
        0.5, "with dale: the share of each layer's presynaptic units that are inhibitory (the notebooks' "
        "IE ratio), rounded down", "1", ge=0, le=1)
    inhibitory_units: Literal["random", "first"] = field(
        "random", "with dale: which units are inhibitory: drawn at random (Dales_law), or the first of each "
        "layer (IE-neuron-distribution: for W1 the left ear's fibres first, so at 0.5 one whole ear is "
        "inhibitory and the other excitatory)")
    excitatory_only: bool = field(False, "every weight of W1 and W2 is |w| >= 0: no inhibition anywhere")
    delays: Literal["none", "learned"] = field(
        "none", "learned: every synapse of W1 and W2 has its own delay, learned with the weights (DCLS, as "
        "the community's Quick_Start_Delay_DCLS: a Gaussian kernel over the delays in training, narrowing "
        "over the first quarter of the epochs, the rounded delay at evaluation; spikeloc.models.delays). "
        "With stimulus.phase_delays = true the fibres keep their phase delays and the network learns delays "
        "on top of them")
    max_delay_ms: float = field(
        30.0, "learned delays: the longest delay a synapse can have, rounded up to an even number of steps "
        "(an odd count of taps, as the notebook: 30 ms at dt 1 ms is 31 taps, 0-30 ms)", "ms", gt=0)
    membrane_noise: float = field(
        0.0, "standard deviation of Gaussian noise added to every hidden unit's input current at every step "
        "in training, in units of the threshold; evaluation is noise-free", "threshold", ge=0)
    engine: Literal["auto", "reference", "fused"] = field(
        "auto", "neuron implementation: plain PyTorch reference or fused kernel; auto: fused where the "
        "tensors' device has one")

    @field_validator("readout", mode="before")
    @classmethod
    def _notebook_readout_name(cls, value: Any) -> Any:
        # Altering_output_neurons' "spiking" output neurons, scored by their mean spikes per step
        return "spike_rate" if value == "spiking" else value

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.engine == "fused" and self.neuron == "alif" and self.update_rule not in FUSED_ALIF_RULES:
            raise ValueError(f"engine = 'fused' has no ALIF kernel for update_rule {self.update_rule!r} (it "
                             f"has one for {', '.join(FUSED_ALIF_RULES)}); allowed: engine auto or reference")
        if self.dale and self.excitatory_only:
            raise ValueError("dale and excitatory_only exclude each other: give one of them "
                             "(excitatory_only is dale with no inhibitory unit)")
        if self.delays == "learned" and self.init == "observer":
            raise ValueError("init = 'observer' cannot be combined with delays = 'learned' "
                             "(the templates assume undelayed synapses)")
        if self.init == "observer" and (self.dale or self.excitatory_only):
            raise ValueError("init = 'observer' cannot be combined with dale or excitatory_only "
                             "(the templates' weights have both signs)")
        if self.init == "observer":
            if self.hidden % self.init_phases:
                raise ValueError(f"init = 'observer' needs hidden ({self.hidden}) to be a multiple of "
                                 f"init_phases ({self.init_phases})")
            if not self.hidden_bias:
                raise ValueError("init = 'observer' needs hidden_bias = true "
                                 "(the templates set each neuron's bias)")
        return self


class TrainConfig(Section):
    """Adam on the NLL of log-softmax of the readout, or on the per-step KL to the ideal observer."""

    epochs: int = field(10, "passes over the training set", "epochs", ge=1)
    batch_size: int = field(64, "samples per batch", "samples", ge=1)
    train_batches: int = field(64, "batches per epoch", "batches", ge=1)
    test_batches: int = field(32, "batches in the test set", "batches", ge=1)
    lr: float = field(0.01, "Adam learning rate", "1", gt=0)
    lr_schedule: Literal["constant", "cosine"] = field(
        "constant", "cosine: decays to 0 at the end of each stage")
    fresh_data: bool = field(False, "draw new training data every epoch")
    readout_only_epochs: int = field(
        0, "epochs (of `epochs`) that first train only the readout, the hidden layer fixed; then a new Adam "
        "and schedule train everything. Lets a random readout settle before its gradients reach an "
        "observer-initialised hidden layer", "epochs", ge=0)
    target: Literal["labels", "step_labels", "observer"] = field(
        "labels", "labels: NLL of each sample's IPD bin; step_labels: the same NLL for each step's readout "
        "h_t @ W2 alone, averaged over steps (its minimum is each step's posterior); observer: each step's "
        "readout matches the ideal observer's evidence from that step (KL per step). step_labels and "
        "observer need readout = 'sum'. The membrane baseline always trains on labels")
    label_window_steps: int = field(
        1, "with target = 'step_labels': consecutive steps whose summed readout is scored together against "
        "the label (1: each step alone; the steps after the last whole window are not scored)", "steps",
        ge=1)
    label_sigma_deg: float = field(
        0.0, "soft labels: the fine-bin NLL becomes the cross-entropy against a Gaussian of this width "
        "around the true IPD over the bins' centres (0: the true bin alone); the class NLL stays hard", "deg",
        ge=0)
    class_loss_weight: float = field(
        0.0, "weight of the class NLL (fine bins summed per class) added to the fine-bin NLL; only matters "
        "when bins_per_class > 1", "1", ge=0)
    validation_batches: int = field(
        0, "batches of stimuli held out (drawn once, never trained on) whose accuracy is measured after "
        "every epoch: in history.csv, the epoch lines and the loss figure. 0: none", "batches", ge=0)
    early_stopping_patience: int = field(
        0, "stop training once the validation accuracy (mean over the models) has not improved for this "
        "many epochs; the weights are those of the last epoch. 0: never. Needs validation_batches", "epochs",
        ge=0)
    delay_lr: float = field(
        0.1, "Adam learning rate of the learned delays (model.delays = 'learned'; in steps, as DCLS's "
        "positions)", "steps", gt=0)
    rate_reg: float = field(0.0, "weight of the hidden firing-rate penalty", "1", ge=0)
    dropout: float = field(
        0.0, "hidden spikes dropped in training, each with this probability (the rest scaled by 1 / (1 - p), "
        "as torch.nn.Dropout); evaluation sees every spike", "1", ge=0, lt=1)
    background_hz: float = field(
        0.0, "spontaneous spikes added to every training fibre (the test set is clean unless "
        "eval.spike_background_hz)", "Hz", ge=0)
    phase_delay_noise_deg: float = field(
        0.0, "Gaussian noise on each fibre's phase delay in the training and validation sets, one draw per "
        "fibre for each set drawn (Noise_robustness); the test set is clean", "deg", ge=0)
    target_rate_hz: float = field(10.0, "hidden firing rate the penalty pulls towards", "Hz", gt=0)
    models: int = field(1, "independent models trained at once (seeds seed..seed+models-1)", "models", ge=1)
    membrane_baseline: bool = field(
        False, "also train the membrane-only baseline (a linear readout of the input spikes, no hidden "
        "layer). It learns only where the phase offset is shared by a data set (the tutorial presets); with "
        "per-sample offsets it stays at chance by construction", old_name="membrane_only")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.early_stopping_patience and not self.validation_batches:
            raise ValueError("early_stopping_patience needs a validation set: set validation_batches >= 1")
        if self.label_window_steps > 1 and self.target != "step_labels":
            raise ValueError(f"label_window_steps ({self.label_window_steps}) only matters with target = "
                             f"'step_labels' (got {self.target!r}): leave it at 1 or set the target")
        if self.readout_only_epochs > self.epochs:
            raise ValueError(f"readout_only_epochs ({self.readout_only_epochs}) must be at most "
                             f"epochs ({self.epochs})")
        return self


class EvalConfig(Section):
    """What is evaluated besides the trained models."""

    ideal_observer: bool = field(True, "evaluate the Bayesian ideal observer on the same test set")
    spike_deletion: float = field(
        0.0, "test spikes removed at random (each with this probability; the training set is clean)", "1",
        ge=0, lt=1)
    spike_jitter_ms: float = field(
        0.0, "standard deviation of a random shift of every test spike (the training set is clean)", "ms",
        ge=0)
    spike_background_hz: float = field(
        0.0, "spontaneous spikes added to every test fibre (the training set is clean)", "Hz", ge=0)
    test_membrane_noise: float = field(
        0.0, "standard deviation of Gaussian noise added to every hidden unit's input current at every "
        "step when the test set is scored, in units of the threshold (training: model.membrane_noise)",
        "threshold", ge=0)
    robustness: bool = field(
        False, "the report gets a robustness curve: test accuracy against spike deletion and against "
        "jitter, each level on the same test set")


class PlotConfig(Section):
    """Figures of the report."""

    th_percent: float = field(25.0, "W1.W2 threshold: top/bottom percent -> +1/-1", "%", ge=0, le=50)
    examples: int = field(8, "example stimuli drawn as rasters", "stimuli", ge=1, le=32)


class RunConfig(Section):
    """Everything a run needs; saved as ``config.toml`` in the run folder."""

    description: str = field("", "free text, shown in the report")
    seed: int = field(0, "seed of every random draw of the run (an integer label, no unit)", ge=0,
                      le=MAX_SEED)
    device: Literal["auto", "cpu", "cuda"] = field("auto", "auto: cuda when available")
    threads: Literal["auto"] | int = field(
        "auto", "CPU threads of PyTorch and numba. auto: OMP_NUM_THREADS if set, else the CPUs not busy "
        "with other work when the run starts. A run records the count it used: on the CPU the matrix "
        "products' rounding depends on it", "threads")
    stimulus: StimulusConfig = StimulusConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    plot: PlotConfig = PlotConfig()

    @field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> Any:
        if value != "auto" and (type(value) is not int or value < 1):
            raise ValueError("must be 'auto' or a whole number, at least 1")
        return value

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.seed + self.train.models - 1 > MAX_SEED:
            raise ValueError(f"seed + train.models - 1 must be at most {MAX_SEED} "
                             "(model k is seeded with seed + k)")
        if self.train.background_hz * self.stimulus.dt > 1:
            raise ValueError(f"train.background_hz * stimulus.dt must be at most 1 (one spike per step); got "
                             f"{self.train.background_hz:g} Hz at dt {self.stimulus.dt:g} s")
        if self.eval.spike_background_hz * self.stimulus.dt > 1:
            raise ValueError("eval.spike_background_hz * stimulus.dt must be at most 1 (one spike per step); "
                             f"got {self.eval.spike_background_hz:g} Hz at dt {self.stimulus.dt:g} s")
        if self.stimulus.offset == "per_epoch" and self.train.fresh_data:
            raise ValueError("stimulus.offset = 'per_epoch' hears one training set with a new offset each "
                             "epoch; train.fresh_data draws a new set each epoch: give one of them")
        if self.stimulus.offset == "per_epoch" and self.train.phase_delay_noise_deg > 0:
            raise ValueError("train.phase_delay_noise_deg needs stimulus.offset 'per_dataset' or "
                             "'per_sample': with 'per_epoch' a set is heard again from the same draws, "
                             "without its noise")
        if self.model.delays == "learned" and self.model.max_delay_ms * 1e-3 < self.stimulus.dt:
            raise ValueError(f"model.max_delay_ms ({self.model.max_delay_ms:g}) must be at least one time "
                             f"step ({1e3 * self.stimulus.dt:g} ms)")
        if self.train.label_window_steps > self.stimulus.steps:
            raise ValueError(f"train.label_window_steps ({self.train.label_window_steps}) must be at most "
                             f"the stimulus's {self.stimulus.steps} steps")
        per_step = self.train.target in ("step_labels", "observer")
        if self.model.delays == "learned" and per_step:
            raise ValueError(f"train.target = {self.train.target!r} cannot be combined with model.delays = "
                             "'learned' (its per-step scores assume undelayed synapses)")
        if per_step and self.model.readout != "sum":
            raise ValueError(f"train.target = {self.train.target!r} needs model.readout = 'sum' "
                             f"(got {self.model.readout!r}): "
                             "the per-step scores it trains must add up to the class scores")
        return self

    def to_toml(self) -> str:
        return tomli_w.dumps(self.model_dump())


SECTIONS: dict[str, type[Section]] = {"stimulus": StimulusConfig, "model": ModelConfig, "train": TrainConfig,
                                      "eval": EvalConfig, "plot": PlotConfig}
