"""The hidden-unit analysis: its measures on hand-built responses, exact ablation, members of a stack, the
command and the report section; and Dale's law, whose runs it summarises by sign."""

import json
import re

import numpy as np
import pytest
import torch
from cli_runner import run_cli
from safetensors.torch import load_file

import spikeloc
from spikeloc import analysis
from spikeloc.analysis.units import (
    accuracy_without,
    accuracy_without_by_masks,
    binned_mean,
    rates_hz,
    tuning_summary,
)
from spikeloc.config import load_config
from spikeloc.errors import SpikelocError
from spikeloc.task.stimulus import random_ipd_input_signal

ANALYSIS_FIGURES = {"hidden_unit_rates", "hidden_unit_tuning_curves", "preferred_IPDs", "output_class_tuning",
                    "ablation", "hidden_layer_rasters", "error_by_IPD"}


def tiny(*overrides):
    return spikeloc.runs.train(load_config("tiny", None, list(overrides)), progress=False)


def test_a_unit_tuned_to_one_band_peaks_there():
    """Unit 0 fires only for IPDs in [30, 45) deg, unit 1 everywhere but there, unit 2 never."""
    g = torch.Generator().manual_seed(0)
    ipd_deg = np.linspace(-90, 90, 2000, endpoint=False)
    in_band = torch.as_tensor((ipd_deg >= 30) & (ipd_deg < 45))
    p = torch.stack([in_band * 0.3, (~in_band) * 0.3, torch.zeros(len(ipd_deg))], -1)  # (n, 3)
    hidden = (torch.rand(len(ipd_deg), 100, 3, generator=g) < p[:, None, :].double()).to(torch.uint8)
    edges = np.linspace(-90, 90, 25)
    curves = binned_mean(rates_hz(hidden, 0.001), ipd_deg, edges)  # (24, 3)
    preferred, least, width = tuning_summary(curves, (edges[:-1] + edges[1:]) / 2)
    assert 30 <= preferred[0] < 45 and width[0] == pytest.approx(15)  # two bins of 7.5 deg
    assert 30 <= least[1] < 45
    assert np.isnan(preferred[2]) and np.isnan(width[2])  # a flat curve has no preference
    assert curves[:, 0].max() == pytest.approx(300, rel=0.05)  # 0.3 spikes per 1 ms step


@pytest.mark.parametrize("readout", ["mean", "rate", "max"])
def test_ablating_units_that_never_spike_changes_no_prediction(readout):
    run = tiny(f"model.readout={readout}")
    network = run.models["spiking"]
    with torch.no_grad():
        network.W1[0, :, :3] = -10.0  # units 0-2 can never reach threshold
    stim = run.config.stimulus
    data = random_ipd_input_signal(300, stim, torch.Generator().manual_seed(5))
    out = network(data.spikes)
    hidden = out.spikes[0]
    assert hidden[..., :3].sum() == 0 and hidden[..., 3:].sum() > 0
    W2 = network.weights()[1]
    without = W2.clone()
    without[0, :3] = 0
    s = hidden.float()[None]
    assert torch.equal(network.readout(s, without), network.readout(s, W2))  # every score, bit for bit
    silent, none = np.arange(3), np.array([], dtype=int)
    fast = accuracy_without(network, hidden, data.ipd, stim, [none, silent, np.array([3, 4])])
    assert fast[0] == fast[1]
    reference = accuracy_without_by_masks(network, hidden, data.ipd, stim, [none, silent, np.array([3, 4])])
    np.testing.assert_allclose(fast, reference, atol=1 / 300 + 1e-12)  # at most one near-tie flips


def test_fast_ablation_equals_the_ablated_networks():
    run = tiny("model.readout=mean", "train.epochs=3")
    network, stim = run.models["spiking"], run.config.stimulus
    data = random_ipd_input_signal(500, stim, torch.Generator().manual_seed(6))
    hidden = network(data.spikes).spikes[0]
    sets = [np.array([h]) for h in range(network.cfg.hidden)] + [np.arange(4), np.array([1, 5, 7])]
    fast = accuracy_without(network, hidden, data.ipd, stim, sets)
    reference = accuracy_without_by_masks(network, hidden, data.ipd, stim, sets)
    assert np.abs(fast - reference).max() <= 1 / 500 + 1e-12


def test_a_k_model_run_analyses_the_requested_member():
    run = tiny("train.models=2")
    second = analysis.analyse(run, samples=256, model=1)
    alone = analysis.analyse(run.member(1), samples=256, model=0)
    np.testing.assert_array_equal(second.rate_hz, alone.rate_hz)
    np.testing.assert_array_equal(second.ablation["random"], alone.ablation["random"])
    first = analysis.analyse(run, samples=256, model=0)
    assert not np.array_equal(first.rate_hz, second.rate_hz)
    with pytest.raises(SpikelocError, match=r"model 2 does not exist: this run has 2 \(0..1\)"):
        analysis.analyse(run, samples=16, model=2)


def test_hidden_spikes_are_checked_like_predict():
    run = tiny()
    stim = run.config.stimulus
    data = random_ipd_input_signal(4, stim, torch.Generator().manual_seed(1))
    spikes = run.hidden_spikes(data.spikes.numpy())
    assert spikes.shape == (4, stim.steps, run.config.model.hidden) and spikes.dtype == np.uint8
    assert set(np.unique(spikes)) <= {0, 1}
    with pytest.raises(SpikelocError, match="spikes must be an array"):
        run.hidden_spikes(np.zeros((4, 3, 2)))
    with pytest.raises(SpikelocError, match="got a value 2"):
        run.hidden_spikes(data.spikes * 2)


def test_analyse_command_writes_data_figures_and_the_report_section(tmp_path, capsys):
    out = tmp_path / "run"
    code, printed, _ = run_cli("train", "--preset", "tiny", "--out", str(out), "--quiet", "--no-analysis",
                               capsys=capsys)
    assert code == 0 and not (out / "analysis").exists()
    assert "<h2>Analysis</h2>" not in (out / "report.html").read_text()
    code, printed, err = run_cli("analyse", str(out), "--samples", "512", capsys=capsys)
    assert code == 0, err
    assert "hidden units silent (< 1 Hz)" in printed and "report:" in printed
    folder = out / "analysis"
    assert {p.stem for p in folder.glob("*.png")} == ANALYSIS_FIGURES
    units = (folder / "units.csv").read_text().splitlines()
    assert units[0].startswith("unit,rate_hz,silent") and len(units) == 1 + 8
    saved = json.loads((folder / "analysis.json").read_text())
    assert saved["samples"] == 512
    assert set(saved["ablation"]) == {"silent first", "random", "lowest rate first", "largest effect first"}
    html = (out / "report.html").read_text()
    assert "<h2>Analysis</h2>" in html
    for name in ANALYSIS_FIGURES:
        assert f'id="{name.replace("_", " ")}"' in html
    # `report` re-draws the section from the saved analysis
    (out / "report.html").unlink()
    assert run_cli("report", str(out), capsys=capsys)[0] == 0
    assert "<h2>Analysis</h2>" in (out / "report.html").read_text()
    code, _, err = run_cli("analyse", str(out), "--model", "3", capsys=capsys)
    assert code == 2 and "model 3 does not exist" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("analyse", str(tmp_path / "nothing"), capsys=capsys)
    assert code == 2 and "run folder not found" in err


def test_train_analyses_by_default_and_logs_a_line_per_epoch_and_stage(tmp_path, capsys):
    out = tmp_path / "run"
    code, printed, err = run_cli("train", "--preset", "tiny", "--out", str(out), "--set", "model.dale=true",
                                 capsys=capsys)
    assert code == 0 and "without the inhibitory weights" in printed
    # not a terminal: no bar, one line per epoch, one per stage, and the paths
    epochs = re.findall(r"^spiking epoch (\d)/2  loss \d+\.\d{4}  lr 0\.01  \d+\.\d s$", printed, re.M)
    assert epochs == ["1", "2"]
    for stage in ("evaluated on 32 test samples", "hidden-unit analysis:", "figures and report:",
                  f"run folder: {out}"):
        assert stage in printed
    assert "\r" not in printed + err and "batch/s" not in err
    found = analysis.read(out)
    assert found.dale and found.accuracy_without_inhibition is not None
    assert set(np.unique(found.sign)) == {-1.0, 1.0}
    assert "inhibitory units" in (out / "report.html").read_text()


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.5, 1.0])
def test_dale_weights_obey_their_saved_signs(tmp_path, fraction):
    cfg = load_config("tiny", None, ["model.dale=true", f"model.inhibitory_fraction={fraction}"])
    run = spikeloc.runs.train(cfg, progress=False)
    spikeloc.runs.save(run, tmp_path / "run")
    weights = load_file(tmp_path / "run" / "weights.safetensors")
    sign_in, sign_hidden = weights["spiking.sign_in"], weights["spiking.sign_hidden"]
    assert (sign_in == -1).sum() == int(cfg.stimulus.inputs * fraction + 1e-9)
    assert (sign_hidden == -1).sum() == int(cfg.model.hidden * fraction + 1e-9)
    assert (weights["spiking.W1"] * sign_in[:, :, None] >= 0).all()
    assert (weights["spiking.W2"] * sign_hidden[:, :, None] >= 0).all()
    loaded = spikeloc.runs.load_run(tmp_path / "run")
    data = random_ipd_input_signal(32, cfg.stimulus, torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(loaded.predict_proba(data.spikes), run.predict_proba(data.spikes))


def test_the_first_units_may_be_the_inhibitory_ones():
    """IE-neuron-distribution's masks: at 0.5 the left ear's fibres and the first half of the hidden units."""
    net = tiny("model.dale=true", "model.inhibitory_units=first").models["spiking"]
    half = net.stim.anf_per_ear
    assert (net.sign_in[0, :half] == -1).all() and (net.sign_in[0, half:] == 1).all()
    assert (net.sign_hidden[0] == torch.tensor([-1.0] * 4 + [1.0] * 4)).all()


def test_excitatory_only_has_no_negative_weight():
    net = tiny("model.excitatory_only=true").models["spiking"]
    assert (net.W1 >= 0).all() and (net.W2 >= 0).all()


@pytest.mark.parametrize("overrides, needle", [
    (["model.inhibitory_fraction=1.5"], "model.inhibitory_fraction"),
    (["model.dale=true", "model.excitatory_only=true"], "dale and excitatory_only exclude each other"),
    (["model.dale=true", "model.init=observer", "model.hidden=32", "model.hidden_bias=true"],
     "init = 'observer' cannot be combined with dale"),
])
def test_bad_sign_settings_are_one_line_errors(overrides, needle):
    with pytest.raises(SpikelocError, match=needle):
        load_config("tiny", None, overrides)


def test_history_is_written_after_every_epoch(tmp_path):
    cfg = load_config("tiny", None, ["train.epochs=3"])
    folder = spikeloc.runs.RunFolder.create(tmp_path / "run", cfg)
    saved, rows = folder.checkpoints.on_save, []

    def spy(ckpt):
        saved(ckpt)
        rows.append(len((tmp_path / "run" / "history.csv").read_text().splitlines()) - 1)

    folder.checkpoints.on_save = spy
    with folder:
        spikeloc.runs.train(folder.config, progress=False, checkpoints=folder.checkpoints)
    assert rows[:3] == [1, 2, 3]  # then once more when the model is finished
