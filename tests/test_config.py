import pytest

from spikeloc.config import RunConfig, load_config, parse_override, preset_descriptions, preset_names
from spikeloc.errors import SpikelocError


def test_presets_resolve_and_describe():
    names = preset_names()
    assert {"tutorial", "tutorial-full", "default"} <= set(names)
    for name, text in preset_descriptions().items():
        assert text, name
        assert isinstance(load_config(name), RunConfig)


def test_tutorial_is_the_notebook():
    cfg = load_config("tutorial")
    assert (cfg.train.batch_size, cfg.train.train_batches, cfg.train.test_batches) == (64, 64, 32)
    assert cfg.stimulus.offset == "per_dataset" and cfg.model.semantics == "notebook"
    assert load_config("tutorial-full").train.train_batches == 128


def test_precedence_preset_file_override_field(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('preset = "tutorial"\n[train]\nepochs = 3\nlr = 0.5\n')
    cfg = load_config(None, f, ["train.lr=0.1", "hidden=7"], seed=9)
    assert cfg.stimulus.offset == "per_dataset"  # from the file's preset
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.hidden, cfg.seed) == (3, 0.1, 7, 9)
    assert load_config("default", f).stimulus.offset == "per_sample"  # --preset wins over the file's


def test_saved_config_round_trips(tmp_path):
    from spikeloc.config import config_from_toml_text

    cfg = load_config("tutorial", overrides=["model.hidden=12"])
    assert config_from_toml_text(cfg.to_toml(), "x") == cfg


def test_override_values_are_typed():
    assert parse_override("train.fresh_data=true") == {"train": {"fresh_data": True}}
    assert parse_override("stimulus.offset=per_sample") == {"stimulus": {"offset": "per_sample"}}
    assert parse_override("lr=1e-3") == {"train": {"lr": 0.001}}


@pytest.mark.parametrize("overrides, needle", [
    (["stimulus.dt=-0.001"], "stimulus.dt"),
    (["model.hidden=0"], "model.hidden"),
    (["plot.th_percent=51"], "plot.th_percent"),
    (["plot.th_percent=-1"], "plot.th_percent"),
    (["train.nope=1"], "allowed in [train]"),
    (["nope=1"], "unknown config key 'nope'"),
    (["model.semantics=weird"], "'notebook', 'standard' or 'immediate'"),
    (["stimulus.ipd_max_deg=-90"], "ipd_max_deg must be greater"),
    (["noequals"], "key=value"),
])
def test_bad_values_name_the_field(overrides, needle):
    with pytest.raises(SpikelocError) as e:
        load_config("tutorial", overrides=overrides)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_bad_files(tmp_path):
    with pytest.raises(SpikelocError, match="not found"):
        load_config(None, tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs=")
    with pytest.raises(SpikelocError, match="not valid TOML"):
        load_config(None, bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[model]\nhiden = 3\n")
    with pytest.raises(SpikelocError, match="model.hiden: unknown key; allowed: hidden"):
        load_config(None, unknown)
    with pytest.raises(SpikelocError, match="unknown preset 'nope'; allowed: "):
        load_config("nope")
