"""The library's run API: train, save, load (this release's folders and release 0.1.0's), predict."""

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import DATA
from safetensors.torch import load_file

import spikeloc
from spikeloc.errors import SpikelocError
from spikeloc.runs.files import history_csv, read_history


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cfg = spikeloc.load_config("tiny", models=2, hidden_bias=True, learn_tau=True, readout="count", seed=1,
                               membrane_baseline=True)
    run = spikeloc.train(cfg, progress=False)
    out = spikeloc.save(run, tmp_path_factory.mktemp("runs") / "api")
    return run, out


def test_results_read_as_attributes(trained):
    run, _ = trained
    test = run.metrics.test
    assert test.accuracy.values == tuple(r.accuracy for r in run.results["spiking"]["test"])
    assert len(test.accuracy.values) == 2 and test.accuracy.min <= test.accuracy.mean <= test.accuracy.max
    assert run.metrics.ideal_observer.test.accuracy.mean > run.metrics.chance
    assert run.metrics.kinds["membrane"].train.mae_deg.mean > 0


def test_loaded_weights_are_the_trained_ones(trained):
    run, out = trained
    loaded = spikeloc.load_run(out)
    for kind in ("spiking", "membrane"):
        trained_state, loaded_state = run.models[kind].state_dict(), loaded.models[kind].state_dict()
        assert trained_state.keys() == loaded_state.keys()
        assert all(torch.equal(trained_state[k], loaded_state[k]) for k in trained_state), kind
    assert loaded.config == run.config and loaded.metrics == run.metrics and loaded.history == run.history


def test_history_csv_round_trips(trained):
    run, out = trained
    assert read_history(history_csv(run.history).decode()) == run.history
    assert read_history((out / "history.csv").read_text()) == run.history
    assert ([e.epoch for e in run.history["spiking"]] == [1, 2]
            and len(run.history["spiking"][0].loss_per_model) == 2)


def test_predictions_of_a_loaded_run_are_the_trained_ones(trained):
    run, out = trained
    stim = run.config.stimulus
    spikes = (np.random.default_rng(3).random((6, stim.steps, stim.inputs)) < 0.3).astype(np.uint8)
    loaded = spikeloc.load_run(out)
    for k in (0, 1):
        np.testing.assert_array_equal(loaded.predict_proba(spikes, model=k),
                                      run.predict_proba(spikes, model=k))
    for bad in (2, 0.5, True, -1):
        with pytest.raises(SpikelocError, match=r"does not exist: this run has 2 \(0..1\)"):
            run.predict(spikes, model=bad)
    with pytest.raises(SpikelocError,
                       match="unknown model kind 'membrane-only'; this run has: spiking, membrane"):
        run.predict(spikes, kind="membrane-only")
    with pytest.raises(SpikelocError, match=r"spikes must be an array \(n, 100, 32\) of 0s and 1s, n >= 1; "
                                            r"got shape \(6, 100, 31\)"):
        run.predict(spikes[:, :, 1:])
    for bad, needle in [(spikes * 0.5, "got a value 0.5"), (spikes.astype(np.int64) - 1, "got a value -1"),
                        (np.full_like(spikes, np.nan, dtype=float), "got a value nan"),
                        (spikes[:0], "n >= 1; got shape (0, 100, 32)"),
                        ([["a"]], "spikes must be an array"), ("spikes", "spikes must be an array")]:
        with pytest.raises(SpikelocError) as e:
            run.predict_proba(bad)
        assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert run.predict(spikes.astype(bool)).shape == (6,)  # bool, uint8, float: any 0/1 array


def test_a_release_0_1_0_run_folder_still_loads(tmp_path):
    """Written by spikeloc 0.1.0 (`beta` and `semantics` in its config, the bias as (K, 1, 1, H)); its
    predictions recorded then are reproduced."""
    folder = shutil.copytree(DATA / "run-0.1.0", tmp_path / "old")
    assert "semantics = " in (folder / "config.toml").read_text()
    run = spikeloc.load_run(folder)
    assert run.config.model.update_rule == "standard" and run.models["spiking"].b1.shape == (2, 8)
    expected = json.loads((folder / "expected.json").read_text())
    stim = run.config.stimulus
    x = (np.random.default_rng(7).random((16, stim.steps, stim.inputs)) < 0.25).astype(np.uint8)
    for kind, key in (("spiking", "spiking_proba"), ("membrane", "membrane_proba")):
        for k in (0, 1):
            np.testing.assert_allclose(run.predict_proba(x, k, kind), expected[key][k], atol=2e-6)
    assert run.metrics.test.accuracy.values == tuple(
        json.loads((folder / "metrics.json").read_text())["models"]["spiking"]["test"]["accuracy"]["values"])
    assert [e.epoch for e in run.history["membrane"]] == [1, 2]


def test_training_reproduces_release_0_1_0():
    """`spikeloc train --preset tiny --models 3` of release 0.1.0 (its weights are in tests/data): model 0
    (seed 0) has the same numbers now, up to float32 rounding where this machine's BLAS differs from the one
    that wrote them. Models 1 and 2 shared model 0's data then; since 0.5.0 each draws its own."""
    folder = DATA / "tiny-k3-0.1.0"
    expected = load_file(folder / "weights.safetensors")
    old_config = spikeloc.config.config_from_toml_text((folder / "config.toml").read_text(), "config.toml")
    assert old_config == spikeloc.load_config("tiny", models=3, device="cpu", membrane_baseline=True)
    run = spikeloc.train(old_config.model_copy(update={"eval": old_config.eval.model_copy(
        update={"ideal_observer": False})}), progress=False)
    for kind, model in run.models.items():
        for name, t in model.state_dict().items():
            torch.testing.assert_close(t[0], expected[f"{kind}.{name}"][0], rtol=1e-5, atol=1e-6, msg=name)
            assert not torch.allclose(t[1], expected[f"{kind}.{name}"][1], rtol=1e-3) or "tau" in name


NOISE = {"membrane_noise": 0.3, "dropout": 0.2, "train.background_hz": 30.0, "test_membrane_noise": 0.4}


@pytest.mark.parametrize("noise", [
    {}, NOISE,
    {"neuron": "alif", "update_rule": "notebook", "delays": "learned", "max_delay_ms": 5.0,
     "phase_delay_noise_deg": 10.0},
    {"fresh_data": False, "offset": "per_epoch"},
], ids=["clean", "training and test noise", "alif, learned delays, noisy phase delays", "per-epoch offsets"])
def test_model_k_of_a_stack_is_the_run_of_seed_plus_k(noise):
    """`--models 3 --seed 5`: model k equals `--seed 5+k` bit for bit (one thread: the same sums), in weights,
    history and test metrics, also when every model draws its own training noise, and for the community's
    variants; the metrics list the seeds."""
    from spikeloc.runs.pipeline import member_config, train_members

    cfg = spikeloc.load_config("tiny", models=3, seed=5, threads=1,
                               **{"fresh_data": True, "validation_batches": 2, **noise})
    stack = spikeloc.train(cfg, progress=False)
    assert stack.metrics.seeds == (5, 6, 7)
    members = train_members(cfg)  # as a sweep trains the seeds of a point: each as a run of its own
    for k in (1, 2):
        alone = spikeloc.train(member_config(cfg, k), progress=False)
        member = members[k]
        assert member.config == alone.config and member.metrics.seeds == (5 + k,)
        assert member.metrics.test == alone.metrics.test
        assert member.metrics.ideal_observer == alone.metrics.ideal_observer
        assert [e.loss for e in member.history["spiking"]] == [e.loss for e in alone.history["spiking"]]
        for name, t in alone.models["spiking"].state_dict().items():
            assert torch.equal(stack.models["spiking"].state_dict()[name][k], t[0]), (k, name)
        assert ([e.loss_per_model[k] for e in stack.history["spiking"]]
                == [e.loss for e in alone.history["spiking"]])
        assert ([e.validation_accuracy[k] for e in stack.history["spiking"]]
                == [e.validation_accuracy[0] for e in alone.history["spiking"]])
        assert stack.metrics.test.accuracy.values[k] == alone.metrics.test.accuracy.values[0]
    if noise is NOISE:  # the noise changes what is learned, and the test noise what is measured
        quiet = {"model": cfg.model.model_copy(update={"membrane_noise": 0.0}),
                 "train": cfg.train.model_copy(update={"dropout": 0.0, "background_hz": 0.0})}
        clean = spikeloc.train(cfg.model_copy(update=quiet), progress=False)
        assert not torch.equal(clean.models["spiking"].W1, stack.models["spiking"].W1)
        loud = cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"test_membrane_noise": 2.0})})
        clean_test = spikeloc.runs.evaluate_fresh(stack, 256, 3)
        noisy_test = spikeloc.runs.evaluate_fresh(stack, 256, 3, loud)
        assert noisy_test.test != clean_test.test  # (the tiny preset learns little: other, not lower)
        alone = spikeloc.train(member_config(cfg, 2), progress=False)
        assert (noisy_test.test.accuracy.values[2] ==  # a fresh noisy test: model k still hears its own noise
                spikeloc.runs.evaluate_fresh(alone, 256, 3, member_config(loud, 2)).test.accuracy.values[0])


def test_robustness_curves_start_at_the_test_accuracy_and_draw_in_the_report(trained, tmp_path):
    """Level 0 of each curve is the clean test set, so it is the run's test accuracy, model by model; the
    curves are reproducible; with eval.robustness the report draws them."""
    import dataclasses

    from spikeloc.runs.robustness import robustness_curves

    run, _ = trained
    deletion, jitter = robustness_curves(run)
    assert deletion.levels[0] == 0 and jitter.levels[0] == 0
    for kind in ("spiking", "membrane"):
        assert deletion.accuracy[kind][0] == list(run.metrics.kinds[kind].test.accuracy.values)
        assert jitter.accuracy[kind][0] == deletion.accuracy[kind][0]
    assert deletion.accuracy["spiking"][-1] != deletion.accuracy["spiking"][0]  # 80 % deleted: other answers
    assert robustness_curves(run) == [deletion, jitter]
    cfg = run.config.model_copy(update={"eval": run.config.eval.model_copy(update={"robustness": True})})
    report = spikeloc.viz.draw(dataclasses.replace(run, config=cfg), tmp_path, workers=1)
    assert (tmp_path / "figures" / "robustness.png").stat().st_size > 10_000
    assert "as the test spikes are perturbed" in report.read_text()


def test_a_time_step_of_a_tenth_of_a_millisecond_trains_evaluates_and_draws(tmp_path):
    """dt = 0.1 ms: 1,000 steps per stimulus (Quick_Start_250HzClassification). The fused and the reference
    engine train to the same weights, the ideal observer is far above chance, the report draws."""
    cfg = spikeloc.load_config("tiny", dt=0.0001, threads=1)
    assert cfg.stimulus.steps == 1000
    fused = spikeloc.train(cfg, progress=False)
    reference = spikeloc.train(cfg.model_copy(update={"model": cfg.model.model_copy(
        update={"engine": "reference"})}), progress=False)
    torch.testing.assert_close(fused.models["spiking"].W1, reference.models["spiking"].W1, rtol=1e-4,
                               atol=1e-5)
    assert fused.metrics.ideal_observer.test.accuracy.mean > 0.5
    report = spikeloc.viz.draw(fused, tmp_path, workers=1)
    assert (tmp_path / "figures" / "stimulus_examples.png").is_file() and report.is_file()



def test_thirty_six_classes_train_evaluate_and_draw(tmp_path):
    """36 IPD classes of 5 deg (the community's finer task): the readout, confusion matrices, the ideal
    observer and the report follow the class count."""
    cfg = spikeloc.load_config("tiny", num_classes=36, threads=1)
    run = spikeloc.train(cfg, progress=False)
    result = run.results["spiking"]["test"][0]
    assert run.models["spiking"].W2.shape[-1] == 36 and result.confusion.shape == (36, 36)
    assert run.metrics.chance == pytest.approx(1 / 36)
    assert run.metrics.ideal_observer.test.accuracy.mean > 3 / 36
    report = spikeloc.viz.draw(run, tmp_path, workers=1)
    assert report.is_file() and (tmp_path / "figures" / "weights.png").is_file()


COMOB_PRESETS = ["comob", "comob-random-offset", "comob-tau2", "comob-dale", "comob-excitatory-only",
                 "comob-readout-spiking", "comob-alif", "comob-alif-subtract", "comob-noise", "comob-dt0.1",
                 "comob-dcls"]


def test_every_community_preset_is_listed_here():
    assert {n for n in spikeloc.preset_names() if n.startswith("comob")} == set(COMOB_PRESETS)


@pytest.mark.parametrize("preset", COMOB_PRESETS)
def test_every_community_preset_trains_and_reloads(preset, tmp_path):
    """Each comob-* preset, shrunk to two epochs of two small batches: it trains on its own engine (the fused
    kernels where the preset has them), saves, reloads and predicts as trained."""
    small = ["train.epochs=2", "train.train_batches=2", "train.batch_size=16", "train.test_batches=1",
             "train.validation_batches=0", "train.early_stopping_patience=0", "stimulus.anf_per_ear=20"]
    cfg = spikeloc.load_config(preset, overrides=small, threads=1)
    run = spikeloc.train(cfg, progress=False)
    spikeloc.runs.save(run, tmp_path / "run")
    loaded = spikeloc.runs.load_run(tmp_path / "run")
    x = (torch.rand(4, cfg.stimulus.steps, cfg.stimulus.inputs, generator=torch.Generator().manual_seed(0))
         < 0.1).float()
    np.testing.assert_array_equal(loaded.predict_proba(x), run.predict_proba(x))
    found = spikeloc.analysis.analyse(loaded, samples=64)  # the hidden-unit analysis takes every variant
    assert found.ablation and np.isfinite(found.single_unit_accuracy).all()


def test_a_run_stopped_early_keeps_its_history(tmp_path):
    """Early stopping ends the fit before train.epochs: the saved history is whole, and the folder loads and
    redraws without a note (0.5.0 called such a history cut off)."""
    cfg = spikeloc.load_config("tiny", overrides=["train.epochs=30", "train.validation_batches=1",
                                                  "train.early_stopping_patience=1"])
    run = spikeloc.train(cfg, progress=False)
    epochs = len(run.history["spiking"])
    assert epochs < 30
    spikeloc.runs.save(run, tmp_path / "run")
    loaded = spikeloc.runs.load_run(tmp_path / "run")
    assert not loaded.problems and len(loaded.history["spiking"]) == epochs
