"""The command line end to end on the seconds-long `tiny` preset, and every bad input it must refuse."""

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from cli_runner import run_cli

import spikeloc
from spikeloc.cli import main
from spikeloc.evaluation import evaluate
from spikeloc.runs.pipeline import datasets

FIGURES = {"stimulus_examples", "training_loss", "weights", "hidden_unit_weights",
           "spiking_model_train_set", "spiking_model_test_set", "membrane_model_train_set",
           "membrane_model_test_set"}
COMMANDS = ["train", "evaluate", "report", "config", "presets", "bound"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run, trained once for the module, and what the CLI printed (capsys is per test)."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(["train", "--preset", "tiny", "--out", str(out), "--quiet", "--seed", "3",
              "--set", "train.membrane_baseline=true"])  # both model kinds
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def run_dir(trained):
    return trained[0]


def test_train_writes_every_file(run_dir):
    for name in ("config.toml", "metrics.json", "history.csv", "weights.safetensors", "report.html"):
        path = run_dir / name
        assert path.stat().st_size > 0 and path.stat().st_mode & 0o777 == 0o644, name
    assert {p.stem for p in (run_dir / "figures").glob("*.png")} == FIGURES
    assert "seed = 3" in (run_dir / "config.toml").read_text()
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 2 * 2  # header + 2 epochs x 2 models
    assert not list(run_dir.glob(".*"))  # no temporary file left behind


def test_metrics_are_those_of_the_saved_models_on_the_runs_test_set(run_dir):
    """metrics.json is what the saved weights score on the test set drawn again from the seed."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["models"]) == {"spiking", "membrane"} and metrics["seeds"] == [3]
    assert metrics["test_samples"] == 16 * 2 and metrics["chance"] == pytest.approx(1 / 12)
    run = spikeloc.load_run(run_dir)
    test = datasets(run.config, run.device)["test"]
    for kind in ("spiking", "membrane"):
        again = evaluate(run.models[kind], test, run.config.stimulus)[0]
        saved = metrics["models"][kind]["test"]
        assert saved["accuracy"]["values"] == [again.accuracy]
        assert saved["mae_deg"]["mean"] == pytest.approx(again.mae_deg)
    assert metrics["ideal_observer"]["test"]["accuracy"]["mean"] > 0.6  # far above chance, even at 16 fibres
    assert set(metrics["seconds"]) == {"data", "train_spiking", "train_membrane", "evaluate",
                                       "ideal_observer"}


def test_train_prints_the_table_and_the_paths(trained):
    run_dir, printed = trained
    metrics = json.loads((run_dir / "metrics.json").read_text())
    accuracy = 100 * metrics["models"]["spiking"]["test"]["accuracy"]["mean"]
    assert re.search(rf"^spiking test\s+{accuracy:.1f} %", printed, re.M)
    assert "ideal observer test" in printed
    assert "epoch" not in printed and "run folder" not in printed  # --quiet: the table only


def test_report_embeds_every_figure(run_dir, capsys):
    html = (run_dir / "report.html").read_text()
    analysed = len(list((run_dir / "analysis").glob("*.png")))  # `train` analysed the run
    assert analysed == 7
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', html)) == len(FIGURES) + analysed
    code, out, _ = run_cli("report", str(run_dir), capsys=capsys)
    assert code == 0 and "report.html" in out
    assert (run_dir / "report.html").read_text().count("<img") == len(FIGURES) + analysed


def test_rerun_from_saved_config_is_exact(run_dir, tmp_path):
    again = tmp_path / "again"
    main(["train", "--config", str(run_dir / "config.toml"), "--preset", "tiny", "--out", str(again),
          "--quiet"])
    a = json.loads((run_dir / "metrics.json").read_text())["models"]
    b = json.loads((again / "metrics.json").read_text())["models"]
    assert a == b
    assert (again / "weights.safetensors").read_bytes() == (run_dir / "weights.safetensors").read_bytes()


def test_evaluate_prints_metrics(run_dir, capsys):
    code, out, _ = run_cli("evaluate", str(run_dir), "--json", "--samples", "64", capsys=capsys)
    metrics = json.loads(out)
    assert code == 0 and metrics["test_samples"] == 64 and metrics["test_seed"] == 4
    assert 0 <= metrics["models"]["spiking"]["test"]["accuracy"]["mean"] <= 1
    code, out, _ = run_cli("evaluate", str(run_dir), "--samples", "64", capsys=capsys)
    assert code == 0 and re.search(r"^spiking test\s+[\d.]+ %", out, re.M)


def test_load_run_predicts_class_indices(run_dir):
    run = spikeloc.load_run(run_dir)
    stim = run.config.stimulus
    spikes = (np.random.default_rng(0).random((5, stim.steps, stim.inputs)) < 0.2).astype(np.uint8)
    pred = run.predict(spikes)
    assert pred.shape == (5,) and pred.dtype == np.int64 and ((0 <= pred) & (pred < stim.num_classes)).all()
    assert np.array_equal(pred, run.predict(torch.from_numpy(spikes)))
    assert np.allclose(run.predict_proba(spikes).sum(1), 1)


def test_existing_run_is_never_overwritten(run_dir, capsys):
    before = (run_dir / "weights.safetensors").read_bytes()
    code, _, err = run_cli("train", "--preset", "tiny", "--out", str(run_dir), "--quiet", capsys=capsys)
    assert code == 2 and "already holds a complete run; choose a new folder or remove it" in err
    assert (run_dir / "weights.safetensors").read_bytes() == before


@pytest.mark.parametrize("args, needle", [
    (["train", "--preset", "nope"], "unknown preset 'nope'; allowed:"),
    (["train", "--set", "model.hiden=3"], "unknown config key 'model.hiden' (did you mean model.hidden"),
    (["train", "--set", "tau=5"], "did you mean model.tau_hidden_ms"),
    (["train", "--set", "stimulus.dt=-0.001"], "stimulus.dt"),
    (["train", "--set", "model.hidden=0"], "model.hidden"),
    (["train", "--set", "plot.th_percent=75"], "plot.th_percent"),
    (["train", "--config", "/no/such/file.toml"], "config file not found: /no/such/file.toml"),
    (["train", "--bogus"], "No such option"),
    (["evaluate", "/no/such/run"], "run folder not found"),
    (["report", "/no/such/run"], "run folder not found"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle, capsys):
    code, _, err = run_cli(*args, capsys=capsys)
    assert code == 2 and needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_run_folder_without_weights(run_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.toml").write_text((run_dir / "config.toml").read_text())  # as 0.1.0 left a killed run
    code, _, err = run_cli("evaluate", str(broken), capsys=capsys)
    assert code == 2 and (f"{broken} is not complete (no epoch done); resume it with: spikeloc train "
                          "--resume") in err
    shutil.copy(run_dir / "metrics.json", broken)
    (broken / "weights.safetensors").write_bytes(b"not a safetensors file")
    code, _, err = run_cli("evaluate", str(broken), capsys=capsys)
    assert code == 2 and "cannot read" in err and len(err.strip().splitlines()) == 1


def test_report_recomputes_lost_metrics(run_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    saved = json.loads((copy / "metrics.json").read_text())
    (copy / "metrics.json").write_text('{"models": ')  # truncated
    code, _, err = run_cli("report", str(copy), capsys=capsys)
    assert code == 0 and "metrics.json recomputed from the weights" in err
    again = json.loads((copy / "metrics.json").read_text())
    assert again["models"] == saved["models"] and again["ideal_observer"] == saved["ideal_observer"]
    assert (copy / "report.html").read_text().count("<img") == len(FIGURES) + 7  # and the analysis


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_every_command_has_help(command):
    res = subprocess.run([sys.executable, "-m", "spikeloc", *command, "--help"], capture_output=True,
                         text=True)
    assert res.returncode == 0 and "Usage:" in res.stdout
    if not command:  # the group's help lists every command
        assert all(re.search(rf"^\s+{c}\s", res.stdout, re.M) for c in COMMANDS)


def test_presets_lists_descriptions(capsys):
    code, out, _ = run_cli("presets", capsys=capsys)
    assert code == 0 and re.search(r"^tutorial\s+The source notebook", out, re.M)
    assert len(out.splitlines()) == len(spikeloc.preset_names())


def test_config_prints_what_train_would_run(capsys):
    code, out, _ = run_cli("config", "--preset", "best", "--set", "hidden=64", "--set", "init_phases=8",
                           capsys=capsys)
    assert code == 0 and spikeloc.config.config_from_toml_text(out, "stdout").model.hidden == 64


def test_a_validation_set_is_logged_saved_and_drawn(tmp_path, capsys):
    out = tmp_path / "run"
    code, printed, _ = run_cli("train", "--preset", "tiny", "--out", str(out), "--no-analysis",
                               "--set", "train.validation_batches=2", "--set", "train.epochs=3",
                               capsys=capsys)
    assert code == 0
    assert re.search(r"^spiking epoch 3/3  loss \S+  lr 0\.01  validation \d+\.\d %", printed, re.M)
    header = (out / "history.csv").read_text().splitlines()[0]
    assert header.endswith("validation_accuracy,validation_accuracy_model_0")
    run = spikeloc.load_run(out)
    assert len(run.history["spiking"]) == 3 and all(e.validation_accuracy for e in run.history["spiking"])


def test_evaluate_with_another_stimulus_prints_it_with_the_observer(run_dir, capsys):
    code, out, err = run_cli("evaluate", str(run_dir), "--set", "stimulus.f=40", "--set", "rate_max=300",
                             "--samples", "64", capsys=capsys)
    assert code == 0, err
    assert out.startswith("64 fresh test samples (seed 4); stimulus.rate_max = 300.0 (trained with 600.0), "
                          "stimulus.f = 40.0 (trained with 20.0)")
    assert "ideal observer test" in out
    code, out, _ = run_cli("evaluate", str(run_dir), "--set", "stimulus.f=40", "--samples", "64", "--json",
                           capsys=capsys)
    metrics = json.loads(out)
    assert metrics["test_samples"] == 64 and metrics["ideal_observer"]["test"]["accuracy"]["mean"] > 0.5
    _, out_same, _ = run_cli("evaluate", str(run_dir), "--samples", "64", "--json", capsys=capsys)
    assert json.loads(out_same)["models"] != metrics["models"]  # another stimulus, other numbers


def test_evaluate_with_perturbed_test_spikes(run_dir, capsys):
    """Half the spikes deleted: the line says so and that the observer assumes clean spikes; other numbers,
    reproducible."""
    args = ("evaluate", str(run_dir), "--samples", "256", "--json")
    _, clean, _ = run_cli(*args, capsys=capsys)
    code, out, err = run_cli("evaluate", str(run_dir), "--samples", "256", "--set", "eval.spike_deletion=0.5",
                             capsys=capsys)
    assert code == 0, err
    assert out.startswith("256 fresh test samples (seed 4); eval.spike_deletion = 0.5 (trained with 0.0); "
                          "the ideal observer assumes clean spikes")
    _, deleted, _ = run_cli(*args, "--set", "eval.spike_deletion=0.5", capsys=capsys)
    _, again, _ = run_cli(*args, "--set", "eval.spike_deletion=0.5", capsys=capsys)
    assert json.loads(deleted) == json.loads(again)
    assert json.loads(deleted)["models"] != json.loads(clean)["models"]
    # noise inside the network: other numbers, reproducible, the observer untouched
    code, out, err = run_cli("evaluate", str(run_dir), "--samples", "256", "--set",
                             "eval.test_membrane_noise=0.5", capsys=capsys)
    assert code == 0 and "eval.test_membrane_noise = 0.5 (trained with 0.0)" in out
    assert "assumes clean spikes" not in out
    _, noisy, _ = run_cli(*args, "--set", "eval.test_membrane_noise=0.5", capsys=capsys)
    _, noisy_again, _ = run_cli(*args, "--set", "eval.test_membrane_noise=0.5", capsys=capsys)
    assert json.loads(noisy) == json.loads(noisy_again)
    assert json.loads(noisy)["models"] != json.loads(clean)["models"]
    assert json.loads(noisy)["ideal_observer"] == json.loads(clean)["ideal_observer"]


@pytest.mark.parametrize("override, needle", [
    ("stimulus.dt=0.0005", "evaluate --set stimulus.dt: a trained network is evaluated with the config"),
    ("model.hidden=4", "evaluate --set model.hidden"),
    ("stimulus.f=-1", "stimulus.f"),
    ("stimulus.nope=1", "unknown config key 'stimulus.nope'"),
])
def test_evaluate_refuses_what_a_trained_network_cannot_take(run_dir, override, needle, capsys):
    code, _, err = run_cli("evaluate", str(run_dir), "--set", override, capsys=capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
