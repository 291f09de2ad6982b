"""Property-based tests (hypothesis): whatever the input, a config or one clear line, never a traceback.

- any ``key=value`` override, on the command line or in Python;
- any TOML document as a config file;
- every config accepted among small random ones builds its models and trains a step.
"""

import contextlib
import io
import math
import string

import pytest
import tomli_w
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikeloc.cli import main
from spikeloc.config import load_config
from spikeloc.config.schema import SECTIONS, RunConfig
from spikeloc.errors import SpikelocError, TrainingDiverged
from spikeloc.models import build_models
from spikeloc.task.stimulus import random_ipd_input_signal
from spikeloc.training import fit

FIELDS = [f"{s}.{name}" for s, cls in SECTIONS.items() for name in cls.model_fields]
BARE = ([name for cls in SECTIONS.values() for name in cls.model_fields]
        + ["seed", "device", "beta", "semantics"])
KEYS = st.one_of(st.sampled_from(FIELDS + BARE),
                 st.text(string.ascii_letters + "._", min_size=1, max_size=20))
NUMBERS = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans())
VALUES = st.one_of(NUMBERS, st.text(max_size=20), st.lists(NUMBERS, max_size=3))
LITERALS = st.one_of(st.integers().map(str), st.floats().map(repr),
                     st.sampled_from(["inf", "-inf", "nan", "true", "false", "1e308", "1e-320", "[1, 2]",
                                      '"x"', "{a = 1}", ""]), st.text(max_size=20))
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one_line(e: Exception) -> bool:
    return "\n" not in str(e) and str(e) != ""


@FAST
@given(key=KEYS, value=LITERALS)
def test_any_override_is_a_config_or_one_line_error(key, value):
    try:
        assert isinstance(load_config("tiny", overrides=[f"{key}={value}"]), RunConfig)
    except SpikelocError as e:
        assert one_line(e), str(e)


@FAST
@given(key=KEYS, value=LITERALS)
def test_the_command_line_never_prints_a_traceback(key, value):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as e:
        main(["config", "--preset", "tiny", "--set", f"{key}={value}"])
        raise SystemExit(0)
    assert e.value.code in (0, None, 2), err.getvalue()
    if e.value.code == 2:
        assert err.getvalue().startswith("error: ") and len(err.getvalue().strip().splitlines()) == 1


def _documents():
    """TOML documents of known and unknown sections, keys and values."""
    section = st.dictionaries(KEYS, VALUES, max_size=4)
    top = st.dictionaries(st.one_of(st.sampled_from([*SECTIONS, "preset", "seed", "device"]), KEYS),
                          st.one_of(VALUES, section), max_size=5)
    return top.map(lambda d: tomli_w.dumps(d, multiline_strings=False))


@FAST
@given(text=st.one_of(_documents(), st.text(max_size=60)))
def test_any_toml_document_is_a_config_or_one_line_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("toml") / "config.toml"
    path.write_text(text)
    try:
        assert isinstance(load_config(None, path), RunConfig)
    except SpikelocError as e:
        assert one_line(e), str(e)


SMALL = st.fixed_dictionaries({}, optional={
    "stimulus.anf_per_ear": st.integers(1, 8), "stimulus.duration": st.floats(0.004, 0.03),
    "stimulus.dt": st.sampled_from([0.0005, 0.001, 0.002]), "stimulus.f": st.floats(1, 240),
    "stimulus.num_classes": st.integers(2, 6),
    "stimulus.offset": st.sampled_from(["per_dataset", "per_sample"]),
    "stimulus.envelope_power": st.floats(0.1, 4), "stimulus.ipd_min_deg": st.floats(-180, 0),
    "model.hidden": st.integers(1, 8), "model.hidden_bias": st.booleans(), "model.learn_tau": st.booleans(),
    "model.tau_hidden_ms": st.floats(0.01, 50), "model.tau_out_ms": st.floats(0.01, 50),
    "model.update_rule": st.sampled_from(["notebook", "standard", "immediate"]),
    "model.reset": st.sampled_from(["zero", "subtract"]), "model.init": st.sampled_from(["notebook", "fan_in",
                                                                                         "observer"]),
    "model.init_phases": st.integers(1, 4), "model.bins_per_class": st.integers(1, 3),
    "model.readout": st.sampled_from(["mean", "max", "count", "last", "rate", "sum"]),
    "model.engine": st.sampled_from(["auto", "reference"]), "model.surrogate_slope": st.floats(0.1, 20),
    "train.batch_size": st.integers(1, 4), "train.lr": st.floats(1e-5, 1.0),
    "train.lr_schedule": st.sampled_from(["constant", "cosine"]), "train.fresh_data": st.booleans(),
    "train.target": st.sampled_from(["labels", "step_labels", "observer"]),
    "train.class_loss_weight": st.floats(0, 2), "train.label_sigma_deg": st.floats(0, 10),
    "train.label_window_steps": st.integers(1, 3),
    "train.rate_reg": st.floats(0, 2), "train.models": st.integers(1, 2),
    "train.readout_only_epochs": st.integers(0, 1),
})


def _with_observer(fields: dict) -> dict:
    """The combinations the config only accepts together: observer target and summed readout, observer
    templates with a bias and whole groups of phases."""
    phases = fields.get("model.init_phases", 2)
    return {**fields, "train.target": "observer", "model.readout": "sum", "model.init": "observer",
            "model.hidden_bias": True, "model.init_phases": phases, "model.hidden": phases * 2}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=st.one_of(SMALL, SMALL.map(_with_observer)))
def test_every_accepted_small_config_builds_and_trains_a_step(fields):
    overrides = [f"{k}={v!r}" if isinstance(v, str) else f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                 for k, v in fields.items()]
    try:
        cfg = load_config("tiny", overrides=[*overrides, "train.epochs=1", "train.train_batches=1"])
    except SpikelocError as e:
        assert one_line(e), str(e)
        return
    model = build_models(cfg.stimulus, cfg.model, list(range(cfg.train.models)))
    generators = [torch.Generator().manual_seed(k) for k in range(cfg.train.models)]
    sets = [random_ipd_input_signal(cfg.train.batch_size, cfg.stimulus, g) for g in generators]
    try:
        history = fit(model, cfg, sets, generators, progress=False)
    except TrainingDiverged as e:  # a config may be too wild to train: it says so, it does not go on
        assert one_line(e)
        return
    assert len(history) == 1 and all(math.isfinite(loss) for loss in history[0].loss_per_model)
    assert all(torch.isfinite(p).all() for p in model.parameters())
