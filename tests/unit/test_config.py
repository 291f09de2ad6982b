import typing
from pathlib import Path

import pytest

from spikeloc.config import RunConfig, load_config, parse_override, preset_descriptions, preset_names
from spikeloc.config.loading import config_from_toml_text
from spikeloc.config.markdown import reference
from spikeloc.config.schema import SECTIONS, ModelConfig
from spikeloc.errors import SpikelocError


def test_presets_resolve_and_describe():
    names = preset_names()
    assert {"tutorial", "tutorial-full", "default", "tiny", "best"} <= set(names)
    for name, text in preset_descriptions().items():
        assert text, name
        assert isinstance(load_config(name), RunConfig)


def test_tutorial_is_the_notebook():
    cfg = load_config("tutorial")
    assert (cfg.train.batch_size, cfg.train.train_batches, cfg.train.test_batches) == (64, 64, 32)
    assert cfg.stimulus.offset == "per_dataset" and cfg.model.update_rule == "notebook"
    assert (cfg.model.surrogate_slope, cfg.model.reset) == (5.0, "zero")
    assert load_config("tutorial-full").train.train_batches == 128


def test_precedence_preset_file_override_field(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('preset = "tutorial"\n[train]\nepochs = 3\nlr = 0.5\n')
    cfg = load_config(None, f, ["train.lr=0.1", "hidden=7"], seed=9)
    assert cfg.stimulus.offset == "per_dataset"  # from the file's preset
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.hidden, cfg.seed) == (3, 0.1, 7, 9)
    assert load_config("default", f).stimulus.offset == "per_sample"  # --preset wins over the file's


def test_fields_as_keywords_work_as_overrides():
    by_keyword = load_config("default", tau_hidden_ms=5, epochs=3, seed=2, device=None)
    by_override = load_config("default", overrides=["tau_hidden_ms=5", "train.epochs=3", "seed=2"])
    assert by_keyword == by_override and by_keyword.model.tau_hidden_ms == 5
    with pytest.raises(SpikelocError, match="unknown config key 'tau'"):
        load_config("default", tau=5)


def test_saved_config_round_trips():
    cfg = load_config("tutorial", overrides=["model.hidden=12", "model.reset=subtract"])
    assert config_from_toml_text(cfg.to_toml(), "x") == cfg


def test_old_names_still_read():
    """Configs of release 0.1.0 say `beta` and `semantics`: they load, in files, overrides and saved
    configs."""
    old = load_config("default", overrides=["model.beta=2", "semantics=immediate"])
    assert (old.model.surrogate_slope, old.model.update_rule) == (2.0, "immediate")
    assert "beta" not in old.to_toml() and "surrogate_slope = 2.0" in old.to_toml()
    saved = old.to_toml().replace("surrogate_slope", "beta").replace("update_rule", "semantics")
    assert config_from_toml_text(saved, "old config.toml") == old
    assert ModelConfig(beta=3.0).surrogate_slope == 3.0
    with pytest.raises(ValueError, match="beta is the old name of surrogate_slope: give one of them"):
        ModelConfig(beta=3.0, surrogate_slope=2.0)
    with pytest.raises(SpikelocError, match=r"model.beta is the old name of model.surrogate_slope: give one"):
        config_from_toml_text(saved.replace("beta = 2.0", "beta = 2.0\nsurrogate_slope = 2.0"), "x")


def test_override_values_are_typed():
    assert parse_override("train.fresh_data=true") == {"train": {"fresh_data": True}}
    assert parse_override("stimulus.offset=per_sample") == {"stimulus": {"offset": "per_sample"}}
    assert parse_override("lr=1e-3") == {"train": {"lr": 0.001}}


@pytest.mark.parametrize("overrides, needle", [
    (["stimulus.dt=-0.001"], "stimulus.dt"),
    (["model.hidden=0"], "model.hidden"),
    (["plot.th_percent=51"], "plot.th_percent"),
    (["plot.th_percent=-1"], "plot.th_percent"),
    (["train.nope=1"], "unknown config key 'train.nope'"),
    (["nope=1"], "unknown config key 'nope'; `spikeloc config` prints every key"),
    (["model.update_rule=weird"], "'notebook', 'standard' or 'immediate'"),
    (["model.reset=halfway"], "'zero' or 'subtract'"),
    (["stimulus.ipd_max_deg=-90"], "ipd_max_deg must be greater"),
    (["noequals"], "key=value"),
    (["train.target_rate_hz=0"], "train.target_rate_hz: Input should be greater than 0"),
    (["model.hidden.x=3"], "a key is a field name or section.field"),
    (["train.lr=inf"], "train.lr: Input should be a finite number"),
    (["stimulus.duration=inf"], "stimulus.duration: Input should be a finite number"),
    (["stimulus.f=nan"], "stimulus.f: Input should be a finite number"),
    (["hidden=true"], "model: hidden must be a number, not true"),
    (["train.lr=false"], "train: lr must be a number, not false"),
    (["seed=9223372036854775808"], "seed: Input should be less than or equal to 9223372036854775807"),
    (["seed=9223372036854775807", "train.models=2"], "seed + train.models - 1 must be at most"),
    (["stimulus.f=600"], "f must be at most 1 / (2 dt) = 500 Hz"),
])
def test_bad_values_name_the_field(overrides, needle):
    with pytest.raises(SpikelocError) as e:
        load_config("tutorial", overrides=overrides)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("key, suggestions", [
    ("tau", ["model.tau_hidden_ms", "model.tau_out_ms"]),
    ("model.hiden", ["model.hidden"]),
    ("lr_sched", ["train.lr_schedule"]),
    ("epoch", ["train.epochs"]),
])
def test_unknown_keys_suggest_the_closest(key, suggestions):
    with pytest.raises(SpikelocError) as e:
        load_config("default", overrides=[f"{key}=1"])
    message = str(e.value)
    assert message.startswith(f"unknown config key {key!r} (did you mean ")
    assert all(s in message for s in suggestions), message


def test_a_bare_key_of_two_sections_names_both(monkeypatch):
    # no shipped bare key is ambiguous today; make one (a `hidden` field in [train] too) and ask for it
    fields = {**SECTIONS["train"].model_fields, "hidden": SECTIONS["model"].model_fields["hidden"]}
    monkeypatch.setattr(SECTIONS["train"], "model_fields", fields)
    with pytest.raises(SpikelocError,
                       match=r"ambiguous key 'hidden': it names model.hidden and train.hidden"):
        parse_override("hidden=3")


def test_every_bare_field_name_is_unique_today():
    names = [name for cls in SECTIONS.values() for name in cls.model_fields]
    assert len(names) == len(set(names))


def test_every_number_has_a_unit():
    for section, cls in {"": RunConfig, **SECTIONS}.items():
        for name, f in cls.model_fields.items():
            if name in SECTIONS:
                continue
            if f.annotation in (int, float) and name != "seed":  # a seed is a label, not a quantity
                assert cls.unit(name), f"{section}.{name} documents no unit"
            assert f.description, f"{section}.{name} has no description"
            if typing.get_origin(f.annotation) is typing.Literal or f.annotation in (bool, str):
                assert cls.unit(name) is None


def test_bad_files(tmp_path):
    with pytest.raises(SpikelocError, match="not found"):
        load_config(None, tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs=")
    with pytest.raises(SpikelocError, match="not valid TOML"):
        load_config(None, bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[model]\nhiden = 3\n")
    with pytest.raises(SpikelocError,
                       match=r"model.hiden: unknown key \(did you mean model.hidden.*\); allowed: hidden"):
        load_config(None, unknown)
    with pytest.raises(SpikelocError, match="unknown preset 'nope'; allowed: "):
        load_config("nope")


def test_the_config_reference_in_docs_is_current():
    committed = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert committed.read_text() == reference(), "run: python -m spikeloc.config.markdown > docs/config.md"


def test_a_preset_may_name_a_base_preset():
    default, base = load_config("default"), load_config("best-30-labels")
    assert default.model_copy(update={"description": base.description}) == base
    assert default.description != base.description


def test_presets_naming_each_other_in_a_circle_are_an_error(tmp_path, monkeypatch):
    from spikeloc.config import loading

    for name, other in (("a", "b"), ("b", "a")):
        (tmp_path / f"{name}.toml").write_text(f'preset = "{other}"\n')
    monkeypatch.setattr(loading, "PRESETS", tmp_path)
    with pytest.raises(SpikelocError, match="presets a -> b -> a name each other in a circle"):
        load_config("a")


def test_the_notebooks_readout_name_spiking_is_read_as_spike_rate():
    assert load_config("tutorial", readout="spiking").model.readout == "spike_rate"
    by_name = load_config("tutorial", overrides=["model.readout=spiking"])
    assert by_name == load_config("tutorial", readout="spike_rate")


@pytest.mark.parametrize("preset", ["best-labels", "best-30-labels", "best-labels-templates"])
def test_the_labels_presets_train_on_labels_alone(preset):
    cfg = load_config(preset)
    assert cfg.train.target in ("labels", "step_labels")
    assert (cfg.model.init == "observer") == (preset == "best-labels-templates")  # the others: random weights
