import math

import pytest
import torch

from spikeloc.config import load_config
from spikeloc.models import build_models
from spikeloc.models.losses import uniform_guess
from spikeloc.task.bins import discretise
from spikeloc.task.stimulus import random_ipd_input_signal
from spikeloc.training.loop import Stage, fit, stages


def small_config(*overrides):
    return load_config("tiny", overrides=["train.epochs=4", "train.train_batches=8", "train.batch_size=32",
                                          "stimulus.anf_per_ear=30", "model.hidden=16", *overrides])


def member_data(cfg, seeds, data_seed=0):
    """Each model's own training set and shuffle generator, from its seed (as the pipeline's)."""
    sets = [random_ipd_input_signal(cfg.train.batch_size * cfg.train.train_batches, cfg.stimulus,
                                    torch.Generator().manual_seed(data_seed + 100 * s)) for s in seeds]
    return sets, [torch.Generator().manual_seed(data_seed + 100 * s + 1) for s in seeds]


def train_once(cfg, seeds, data_seed=0, model=None):
    model = model or build_models(cfg.stimulus, cfg.model, seeds)
    history = fit(model, cfg, *member_data(cfg, seeds, data_seed), progress=False)
    return model, history


def test_training_lowers_the_loss():
    cfg = small_config("train.epochs=6", "train.lr=0.02", "stimulus.offset=per_dataset")
    _, history = train_once(cfg, [0])
    assert history[-1].loss < history[0].loss - 0.2
    assert [r.epoch for r in history] == list(range(1, 7))


def test_same_seed_same_result():
    cfg = small_config("train.fresh_data=true")
    a, ha = train_once(cfg, [0])
    b, hb = train_once(cfg, [0])
    assert torch.equal(a.W1, b.W1) and ha[-1].loss == hb[-1].loss


def test_vectorised_models_equal_training_each_alone():
    cfg = small_config("train.epochs=2", "train.models=3")
    stack, hs = train_once(cfg, [10, 11, 12])
    for k, seed in enumerate([10, 11, 12]):
        alone, ha = train_once(cfg, [seed])
        torch.testing.assert_close(stack.W1[k], alone.W1[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(stack.W2[k], alone.W2[0], rtol=1e-4, atol=1e-5)
        assert abs(hs[-1].loss_per_model[k] - ha[-1].loss) < 1e-4


def test_learned_time_constants_move():
    cfg = small_config("model.learn_tau=true", "train.epochs=2")
    model, _ = train_once(cfg, [0])
    tau = model.log_tau_hidden.exp() * 1e3
    assert not torch.allclose(tau, torch.full_like(tau, cfg.model.tau_hidden_ms))


def hidden_rate_hz(model, cfg):
    data = random_ipd_input_signal(256, cfg.stimulus, torch.Generator().manual_seed(9))
    with torch.no_grad():
        return (model(data.spikes).spikes.mean() / cfg.stimulus.dt).item()


def test_rate_penalty_pulls_the_firing_rate_to_its_target():
    """Trained from the same start on the same data, the plain network fires at about 6 Hz, the penalised one
    near its target of 150 Hz."""
    cfg = small_config("train.epochs=3", "train.lr=0.02", "model.init=fan_in", "model.init_gain=2")
    penalised = cfg.model_copy(
        update={"train": cfg.train.model_copy(update={"rate_reg": 5.0, "target_rate_hz": 150})})
    plain_rate = hidden_rate_hz(train_once(cfg, [0])[0], cfg)
    penalised_rate = hidden_rate_hz(train_once(penalised, [0])[0], cfg)
    assert plain_rate < 15 and abs(penalised_rate - 150) < 20, (plain_rate, penalised_rate)


def test_cosine_schedule_ends_near_zero():
    cfg = small_config("train.lr_schedule=cosine", "train.epochs=2")
    _, history = train_once(cfg, [0])
    assert history[-1].lr < 1e-3 * cfg.train.lr


def test_class_loss_adds_the_nll_of_the_summed_fine_bins():
    cfg = small_config("model.bins_per_class=4", "train.class_loss_weight=0.5")
    model = build_models(cfg.stimulus, cfg.model, [0])
    data = random_ipd_input_signal(8, cfg.stimulus, torch.Generator().manual_seed(3))
    loss = model.loss(data.spikes, data.ipd, cfg.train)[0]
    logp = torch.log_softmax(model(data.spikes).scores[0], -1)
    fine = -logp.gather(1, discretise(data.ipd, cfg.stimulus, 48)[:, None]).mean()
    coarse = -logp.view(8, 12, 4).logsumexp(-1).gather(1, discretise(data.ipd, cfg.stimulus)[:, None]).mean()
    torch.testing.assert_close(loss, fine + 0.5 * coarse)
    fine_only = model.loss(data.spikes, data.ipd, cfg.train.model_copy(update={"class_loss_weight": 0.0}))[0]
    torch.testing.assert_close(fine_only, fine)


def test_stages():
    assert stages(small_config().train, has_hidden=True) == [Stage(1, 4, True)]
    two = small_config("train.readout_only_epochs=1").train
    assert stages(two, has_hidden=True) == [Stage(1, 1, False), Stage(2, 3, True)]
    assert stages(two, has_hidden=False) == [Stage(1, 4, True)]  # the membrane model has no hidden layer


def test_readout_only_epochs_keep_the_hidden_layer_then_train_it():
    cfg = small_config("model.hidden_bias=true", "model.learn_tau=true", "train.lr_schedule=cosine",
                       "train.epochs=4", "train.readout_only_epochs=2")
    start = build_models(cfg.stimulus, cfg.model, [0])
    frozen, history = train_once(
        cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 2})}), [0])
    for name in ("W1", "b1", "log_tau_hidden"):
        assert torch.equal(getattr(frozen, name), getattr(start, name)), name
        assert getattr(frozen, name).requires_grad  # never switched off
    assert not torch.equal(frozen.W2, start.W2)
    assert history[-1].lr < 0.01 * cfg.train.lr  # the readout stage's cosine ends at 0
    trained, history = train_once(cfg, [0])
    assert not torch.equal(trained.W1, start.W1) and not torch.equal(trained.b1, start.b1)
    assert history[1].lr < history[2].lr  # the second stage starts its own schedule


def test_a_fit_interrupted_in_the_readout_stage_leaves_nothing_frozen():
    """Reproduced before the fix: a KeyboardInterrupt in the readout-only stage left W1 frozen for good."""
    cfg = small_config("model.hidden_bias=true", "train.epochs=2", "train.readout_only_epochs=1")
    model = build_models(cfg.stimulus, cfg.model, [0])
    calls, loss = [0], model.loss

    def interrupted(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return loss(*args, **kwargs)

    model.loss = interrupted
    with pytest.raises(KeyboardInterrupt):
        train_once(cfg, [0], model=model)
    del model.loss
    assert all(p.requires_grad for p in model.parameters())
    W1 = model.W1.detach().clone()
    train_once(cfg.model_copy(update={"train": cfg.train.model_copy(update={"readout_only_epochs": 0})}), [0],
               model=model)
    assert not torch.equal(model.W1, W1)  # the next fit trains the hidden layer


def test_uniform_guess_is_the_loss_of_a_uniform_posterior(gen):
    cfg = small_config("model.bins_per_class=5", "train.class_loss_weight=0.5")
    model = build_models(cfg.stimulus, cfg.model, [0])
    data = random_ipd_input_signal(64, cfg.stimulus, gen)
    with torch.no_grad():
        model.W2.zero_()  # every score 0: a uniform posterior over the fine bins
    assert (model.loss(data.spikes, data.ipd, cfg.train).item()
            == pytest.approx(model.uniform_guess_loss(cfg.train)))
    assert uniform_guess(12, 1, 0.5) == pytest.approx(math.log(12))
    assert model.uniform_guess_loss(cfg.train.model_copy(update={"target": "observer"})) is None


@pytest.mark.parametrize("data", [("train.fresh_data=true",), ("stimulus.offset=per_epoch",)])
def test_a_fit_resumed_from_any_epoch_ends_as_the_uninterrupted_one(data):
    """Two stages, a cosine schedule, fresh data (or a new offset) every epoch, training noise and a stack of
    two: resumed from the state written after each epoch (through the checkpoint's bytes), every fit ends
    bit-identical to the one never stopped."""
    from spikeloc.runs.checkpoint import Checkpoint, from_bytes, to_bytes

    cfg = small_config("train.epochs=4", "train.readout_only_epochs=2", "train.lr_schedule=cosine",
                       *data, "model.learn_tau=true", "model.hidden_bias=true",
                       "model.membrane_noise=0.2", "train.dropout=0.1", "train.background_hz=20")
    states = []
    whole = build_models(cfg.stimulus, cfg.model, [3, 4])
    history = fit(whole, cfg, *member_data(cfg, [3, 4]), progress=False,
                  on_epoch=lambda state: states.append(
                      from_bytes(to_bytes(Checkpoint(kind="spiking", fit=state)))))
    assert [s.fit.epoch for s in states] == [1, 2, 3, 4]
    for saved in states[:-1]:
        resumed = build_models(cfg.stimulus, cfg.model, [0, 0])  # other weights: the checkpoint's must win
        sets, _ = member_data(cfg, [3, 4])  # the generators' states come from the checkpoint
        others = [torch.Generator().manual_seed(99) for _ in range(2)]
        again = fit(resumed, cfg, sets, others, progress=False, resume=saved.fit)
        for name, t in whole.state_dict().items():
            assert torch.equal(resumed.state_dict()[name], t), (saved.fit.epoch, name)
        assert [(e.epoch, e.loss_per_model, e.lr) for e in again] == [(e.epoch, e.loss_per_model, e.lr)
                                                                       for e in history]


def test_a_nan_loss_stops_the_fit_naming_epoch_and_batch():
    from spikeloc.errors import TrainingDiverged

    cfg = small_config("train.lr=1e30")
    with pytest.raises(TrainingDiverged, match=r"^training diverged in epoch 1, batch \d: .*a smaller "
                                               r"train.lr \(now 1e\+30\)"):
        train_once(cfg, [0])


def validation_data(cfg, seed=7, batches=4):
    return random_ipd_input_signal(cfg.train.batch_size * batches, cfg.stimulus,
                                   torch.Generator().manual_seed(seed))


def test_validation_accuracy_is_each_models_accuracy_after_its_epoch():
    from spikeloc.evaluation import evaluate

    cfg = small_config("train.epochs=3", "train.lr=0.02")
    validation = [validation_data(cfg, seed) for seed in (7, 8)]  # each model's own
    model = build_models(cfg.stimulus, cfg.model, [0, 1])
    history = fit(model, cfg, *member_data(cfg, [0, 1]), progress=False, validation=validation)
    assert all(len(e.validation_accuracy) == 2 for e in history)
    expected = tuple(evaluate(model, v, cfg.stimulus)[k].accuracy for k, v in enumerate(validation))
    assert history[-1].validation_accuracy == pytest.approx(expected, abs=1e-12)
    assert history[-1].validation_mean == pytest.approx(sum(expected) / 2)


def test_early_stopping_ends_a_stalled_fit_and_a_resumed_one_alike():
    """With a learning rate too small to change any prediction the validation accuracy never improves:
    the fit stops after 1 + patience epochs, and resuming from its last state trains no further."""
    from spikeloc.runs.checkpoint import Checkpoint, from_bytes, to_bytes

    cfg = small_config("train.epochs=10", "train.lr=1e-12", "train.validation_batches=4",
                       "train.early_stopping_patience=2")
    states, lines = [], []
    model = build_models(cfg.stimulus, cfg.model, [0])
    history = fit(model, cfg, *member_data(cfg, [0]), progress=False, log=lines.append,
                  validation=[validation_data(cfg)], on_epoch=lambda s: states.append(
                      from_bytes(to_bytes(Checkpoint(kind="spiking", fit=s)))))
    assert [e.epoch for e in history] == [1, 2, 3]
    assert "stopped early after epoch 3: no better validation accuracy for 2 epochs" in lines[-1]
    assert "validation " in lines[0]
    resumed = build_models(cfg.stimulus, cfg.model, [0])
    again = fit(resumed, cfg, *member_data(cfg, [0]), progress=False,
                validation=[validation_data(cfg)], resume=states[-1].fit)
    assert again == history  # the decision is read from the history: nothing more is trained


def test_history_with_validation_round_trips_through_csv_and_old_checkpoints_read():
    from spikeloc.runs.checkpoint import _epochs
    from spikeloc.runs.files import history_csv, read_history
    from spikeloc.training.loop import Epoch

    history = {"spiking": [Epoch(1, 2.0, (1.5, 2.5), 0.01, 0.3, (0.25, 0.5)),
                           Epoch(2, 1.0, (0.5, 1.5), 0.01, 0.3, (0.5, 0.75))]}
    assert read_history(history_csv(history).decode()) == history
    plain = {"spiking": [Epoch(1, 2.0, (2.0,), 0.01, 0.3)]}
    assert "validation" not in history_csv(plain).decode()
    assert read_history(history_csv(plain).decode()) == plain
    assert _epochs([[1, 2.0, [2.0], 0.01, 0.3]]) == plain["spiking"]  # a checkpoint of 0.3.0


def test_early_stopping_needs_a_validation_set():
    from spikeloc.errors import SpikelocError

    with pytest.raises(SpikelocError, match="early_stopping_patience needs a validation set"):
        small_config("train.early_stopping_patience=3")


def test_training_noise_is_drawn_in_training_only():
    """Membrane noise and dropout change the loss of a batch, and the same generators draw the same noise;
    the forward pass without generators (evaluation) is noise-free."""
    cfg = small_config("model.membrane_noise=0.5", "train.dropout=0.3")
    model = build_models(cfg.stimulus, cfg.model, [0])
    data = random_ipd_input_signal(16, cfg.stimulus, torch.Generator().manual_seed(3))
    clean = model.loss(data.spikes, data.ipd, cfg.train)
    noisy = model.loss(data.spikes, data.ipd, cfg.train, generators=[torch.Generator().manual_seed(1)])
    again = model.loss(data.spikes, data.ipd, cfg.train, generators=[torch.Generator().manual_seed(1)])
    assert not torch.equal(clean, noisy) and torch.equal(noisy, again)
    noise = model.training_noise(data.spikes, cfg.train, [torch.Generator().manual_seed(1)])
    assert noise.keep.unique().tolist() == pytest.approx([0.0, 1 / 0.7])  # dropped, or kept and scaled
    assert noise.current.std().item() == pytest.approx(0.5, rel=0.1)
    assert torch.equal(model(data.spikes).scores, model(data.spikes).scores)
