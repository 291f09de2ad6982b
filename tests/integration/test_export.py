"""NIR export: the round trip, a consumer's forward Euler, a real consumer (Norse) and what NIR cannot say."""

import nir
import numpy as np
import pytest
import torch
from cli_runner import run_cli

import spikeloc
from spikeloc.config import load_config
from spikeloc.errors import SpikelocError
from spikeloc.export import from_nir, to_nir, write
from spikeloc.export.nir import simulate_lif
from spikeloc.task.stimulus import random_ipd_input_signal

IMMEDIATE = ["model.update_rule=immediate"]


def tiny(*overrides):
    return spikeloc.runs.train(load_config("tiny", None, [*IMMEDIATE, *overrides]), progress=False)


def stimuli(run, n=256, seed=3):
    return random_ipd_input_signal(n, run.config.stimulus, torch.Generator().manual_seed(seed)).spikes


@pytest.mark.parametrize("overrides", [
    [],
    ["model.readout=count", "model.learn_tau=true", "model.hidden_bias=true"],
    ["model.readout=rate", "model.dale=true"],
    ["model.readout=max", "model.tau_hidden_ms=5"],
])
def test_round_trip_gives_identical_predictions(tmp_path, overrides):
    run = tiny(*overrides)
    path = write(to_nir(run), tmp_path / "model.nir")
    back = from_nir(path)
    x = stimuli(run)
    np.testing.assert_array_equal(back.predict_proba(x), run.predict_proba(x))  # bit for bit
    np.testing.assert_array_equal(back.hidden_spikes(x), run.hidden_spikes(x))


def test_forward_euler_of_the_nir_equations_reproduces_the_hidden_spikes(tmp_path):
    run = tiny("model.hidden_bias=true", "model.learn_tau=true")
    graph = nir.read(str(write(to_nir(run), tmp_path / "m.nir")))
    assert [type(graph.nodes[n]).__name__ for n in ("fc1", "lif1", "fc2", "out")] == ["Affine", "LIF",
                                                                                      "Linear", "LI"]
    assert graph.metadata["dt"] == run.config.stimulus.dt and graph.metadata["readout_reduction"] == "mean"
    x = stimuli(run)
    theirs = simulate_lif(graph.nodes["fc1"], graph.nodes["lif1"], x, run.config.stimulus.dt)
    ours = torch.as_tensor(run.hidden_spikes(x)).float()
    assert ours.sum() > 0 and torch.equal(theirs, ours)


def test_norse_reads_the_file_and_spikes_as_spikeloc(tmp_path):
    norse = pytest.importorskip("norse.torch")
    cfg = load_config("default", None, [*IMMEDIATE, "train.epochs=1", "train.train_batches=8",
                                        "model.hidden_bias=true", "model.learn_tau=true"])
    run = spikeloc.runs.train(cfg, progress=False)
    path = write(to_nir(run), tmp_path / "m.nir")
    module = norse.from_nir(nir.read(str(path)), dt=run.config.stimulus.dt)
    x = stimuli(run, 128).float()
    state, spikes = None, []
    for t in range(x.shape[1]):  # Norse's cells take one step at a time
        z, state = module.lif1(module.fc1(x[:, t]), state)
        spikes.append(z)
    theirs = torch.stack(spikes, 1)
    ours = torch.as_tensor(run.hidden_spikes(x)).float()
    assert ours.sum() > 1000 and torch.equal(theirs, ours)


def test_a_stack_exports_the_requested_member(tmp_path):
    run = tiny("train.models=2")
    back = from_nir(write(to_nir(run, model=1), tmp_path / "m.nir"))
    x = stimuli(run)
    np.testing.assert_array_equal(back.predict_proba(x), run.predict_proba(x, model=1))


@pytest.mark.parametrize("overrides, needle", [
    (["model.update_rule=standard"], "NIR cannot express update_rule = 'standard'"),
    (["model.update_rule=notebook"], "NIR cannot express update_rule = 'notebook'"),
    (["model.reset=subtract"], "NIR cannot express model.reset = 'subtract'"),
    (["model.neuron=alif"], "NIR cannot express model.neuron = 'alif'"),
    (["model.delays=learned", "model.max_delay_ms=4"], "NIR cannot express model.delays = 'learned'"),
])
def test_what_nir_cannot_express_is_refused(overrides, needle):
    run = spikeloc.runs.train(load_config("tiny", None, [*IMMEDIATE, *overrides]), progress=False)
    with pytest.raises(SpikelocError, match=needle):
        to_nir(run)


def test_an_approximation_records_its_measured_agreement(tmp_path):
    run = spikeloc.runs.train(load_config("tiny", None, ["model.update_rule=standard", "train.epochs=3"]),
                              progress=False)
    graph = to_nir(run, approximate=True)
    assert 0 < graph.metadata["hidden_spike_agreement"] < 1
    assert graph.metadata["approximation"] == "the immediate update rule's mapping"


def test_export_command(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli("train", "--preset", "tiny", "--out", str(out), "--quiet", "--no-analysis", "--set",
                   IMMEDIATE[0], capsys=capsys)[0] == 0
    code, printed, _ = run_cli("export", str(out), "--out", str(tmp_path / "m.nir"), capsys=capsys)
    assert code == 0 and "nir: " in printed
    assert from_nir(tmp_path / "m.nir").config == spikeloc.runs.load_run(out).config
    for args, needle in ([["export", str(out), "--out", str(tmp_path / "no" / "m.nir")], "is not a folder"],
                         [["export", str(out), "--out", str(tmp_path / "m.nir"), "--model", "4"],
                          "model 4 does not exist"]):
        code, _, err = run_cli(*args, capsys=capsys)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_a_graph_spikeloc_did_not_write_is_refused(tmp_path):
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                "output": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("input", "output")])
    nir.write(str(tmp_path / "other.nir"), graph)
    with pytest.raises(SpikelocError, match="was not written by spikeloc"):
        from_nir(tmp_path / "other.nir")
    (tmp_path / "broken.nir").write_bytes(b"not hdf5")
    with pytest.raises(SpikelocError, match="cannot read NIR file"):
        from_nir(tmp_path / "broken.nir")
