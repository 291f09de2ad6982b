"""The command line end to end on the seconds-long `tiny` preset, and every bad input it must refuse."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import spikeloc
from spikeloc.cli import main

FIGURES = {"stimulus_examples", "training_loss", "weights", "hidden_unit_weights",
           "spiking_model_train_set", "spiking_model_test_set", "membrane_model_train_set", "membrane_model_test_set"}


def run_cli(*args, capsys):
    with pytest.raises(SystemExit) as e:
        main(list(args))
        raise SystemExit(0)
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    main(["train", "--preset", "tiny", "--out", str(out), "--quiet", "--seed", "3"])
    return out


def test_train_writes_every_file(run_dir):
    for name in ("config.toml", "metrics.json", "history.csv", "weights.safetensors", "report.html"):
        assert (run_dir / name).stat().st_size > 0, name
    assert {p.stem for p in (run_dir / "figures").glob("*.png")} == FIGURES
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["models"]) == {"spiking", "membrane"}
    assert 0 <= metrics["models"]["spiking"]["test"]["accuracy"]["mean"] <= 1
    assert "ideal_observer" in metrics
    assert "seed = 3" in (run_dir / "config.toml").read_text()
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 2 * 2  # header + 2 epochs x 2 models


def test_report_embeds_every_figure(run_dir, capsys):
    html = (run_dir / "report.html").read_text()
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', html)) == len(FIGURES)
    code, out, _ = run_cli("report", str(run_dir), capsys=capsys)
    assert code == 0 and "report.html" in out


def test_load_run_predicts_class_indices(run_dir):
    run = spikeloc.load_run(run_dir)
    stim = run.config.stimulus
    spikes = (np.random.default_rng(0).random((5, stim.steps, stim.inputs)) < 0.2).astype(np.uint8)
    pred = run.predict(spikes)
    assert pred.shape == (5,) and pred.dtype == np.int64 and ((0 <= pred) & (pred < stim.num_classes)).all()
    assert np.array_equal(pred, run.predict(torch.from_numpy(spikes)))


def test_rerun_from_saved_config_is_exact(run_dir, tmp_path):
    again = tmp_path / "again"
    main(["train", "--config", str(run_dir / "config.toml"), "--preset", "tiny", "--out", str(again), "--quiet"])
    a = json.loads((run_dir / "metrics.json").read_text())["models"]
    b = json.loads((again / "metrics.json").read_text())["models"]
    assert a == b


def test_evaluate_prints_metrics(run_dir, capsys):
    code, out, _ = run_cli("evaluate", str(run_dir), "--json", capsys=capsys)
    assert code == 0 and "accuracy" in json.loads(out)["models"]["spiking"]["test"]


def test_existing_run_is_never_overwritten(run_dir, capsys):
    before = (run_dir / "weights.safetensors").read_bytes()
    code, _, err = run_cli("train", "--preset", "tiny", "--out", str(run_dir), "--quiet", capsys=capsys)
    assert code == 2 and "already holds a run" in err
    assert (run_dir / "weights.safetensors").read_bytes() == before


@pytest.mark.parametrize("args, needle", [
    (["train", "--preset", "nope"], "unknown preset 'nope'; allowed:"),
    (["train", "--set", "model.hiden=3"], "unknown config key 'model.hiden'"),
    (["train", "--set", "stimulus.dt=-0.001"], "stimulus.dt"),
    (["train", "--set", "model.hidden=0"], "model.hidden"),
    (["train", "--set", "plot.th_percent=75"], "plot.th_percent"),
    (["train", "--config", "/no/such/file.toml"], "config file not found: /no/such/file.toml"),
    (["train", "--bogus"], "No such option"),
    (["evaluate", "/no/such/run"], "run folder not found"),
    (["report", "/no/such/run"], "run folder not found"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle, capsys):
    code, out, err = run_cli(*args, capsys=capsys)
    assert code == 2 and needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_run_folder_without_weights(run_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.toml").write_text((run_dir / "config.toml").read_text())
    code, _, err = run_cli("evaluate", str(broken), capsys=capsys)
    assert code == 2 and "weights.safetensors is missing" in err
    (broken / "weights.safetensors").write_bytes(b"not a safetensors file")
    code, _, err = run_cli("evaluate", str(broken), capsys=capsys)
    assert code == 2 and "cannot read" in err and len(err.strip().splitlines()) == 1


def test_every_command_has_help():
    for cmd in ([], ["train"], ["evaluate"], ["report"], ["presets"], ["bound"]):
        res = subprocess.run([sys.executable, "-m", "spikeloc", *cmd, "--help"], capture_output=True, text=True)
        assert res.returncode == 0 and "Usage:" in res.stdout


def test_presets_lists_descriptions(capsys):
    code, out, _ = run_cli("presets", capsys=capsys)
    assert code == 0 and re.search(r"^tutorial\s+The source notebook", out, re.M)
