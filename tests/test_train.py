import math

import pytest
import torch

from spikeloc.config import load_config
from spikeloc.model import build_models
from spikeloc.stimulus import discretise, random_ipd_input_signal
from spikeloc.train import chance_loss, fit, loss_fn


def small_config(*overrides):
    return load_config("tiny", overrides=["train.epochs=4", "train.train_batches=8", "train.batch_size=32",
                                          "stimulus.anf_per_ear=30", "model.hidden=16", *overrides])


def train_once(cfg, seeds, data_seed=0):
    data = random_ipd_input_signal(cfg.train.batch_size * cfg.train.train_batches, cfg.stimulus,
                                   torch.Generator().manual_seed(data_seed))
    model = build_models(cfg.stimulus, cfg.model, seeds)
    history = fit(model, cfg, data, torch.Generator().manual_seed(data_seed + 1), progress=False)
    return model, history


def test_training_lowers_the_loss():
    cfg = small_config("train.epochs=6", "train.lr=0.02", "stimulus.offset=per_dataset")
    _, history = train_once(cfg, [0])
    assert history[-1]["loss"] < history[0]["loss"] - 0.2
    assert [r["epoch"] for r in history] == list(range(1, 7))


def test_same_seed_same_result():
    cfg = small_config("train.fresh_data=true")
    a, ha = train_once(cfg, [0])
    b, hb = train_once(cfg, [0])
    assert torch.equal(a.W1, b.W1) and ha[-1]["loss"] == hb[-1]["loss"]


def test_vectorised_models_equal_training_each_alone():
    cfg = small_config("train.epochs=2", "train.models=3")
    stack, hs = train_once(cfg, [10, 11, 12])
    for k, seed in enumerate([10, 11, 12]):
        alone, ha = train_once(cfg, [seed])
        torch.testing.assert_close(stack.W1[k], alone.W1[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(stack.W2[k], alone.W2[0], rtol=1e-4, atol=1e-5)
        assert abs(hs[-1]["loss_per_model"][k] - ha[-1]["loss"]) < 1e-4


def test_learned_time_constants_and_rate_penalty_move():
    cfg = small_config("model.learn_tau=true", "train.rate_reg=1.0", "train.epochs=2")
    model, _ = train_once(cfg, [0])
    tau = model.log_tau_hidden.exp() * 1e3
    assert not torch.allclose(tau, torch.full_like(tau, cfg.model.tau_hidden_ms))


def test_cosine_schedule_ends_near_zero():
    cfg = small_config("train.lr_schedule=cosine", "train.epochs=2")
    _, history = train_once(cfg, [0])
    assert history[-1]["lr"] < 1e-3 * cfg.train.lr


def test_class_loss_adds_the_nll_of_the_summed_fine_bins():
    cfg = small_config("model.bins_per_class=4", "train.class_loss_weight=0.5")
    model = build_models(cfg.stimulus, cfg.model, [0])
    data = random_ipd_input_signal(8, cfg.stimulus, torch.Generator().manual_seed(3))
    x, ipd = data.spikes.float(), data.ipd
    loss, _ = loss_fn(model, x, ipd, cfg)
    logp = torch.log_softmax(model(x)[0][0], -1)
    fine = -logp.gather(1, discretise(ipd, cfg.stimulus, 48)[:, None]).mean()
    coarse = -logp.view(8, 12, 4).logsumexp(-1).gather(1, discretise(ipd, cfg.stimulus)[:, None]).mean()
    torch.testing.assert_close(loss, fine + 0.5 * coarse)
    fine_only, _ = loss_fn(model, x, ipd, cfg.model_copy(update={"train": cfg.train.model_copy(
        update={"class_loss_weight": 0.0})}))
    torch.testing.assert_close(fine_only, fine)


def test_readout_only_epochs_keep_the_hidden_layer_then_train_it():
    cfg = small_config("model.hidden_bias=true", "model.learn_tau=true", "train.lr_schedule=cosine",
                       "train.epochs=4", "train.readout_only_epochs=2")
    start = build_models(cfg.stimulus, cfg.model, [0])
    frozen, history = train_once(cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 2})}), [0])
    for name in ("W1", "b1", "log_tau_hidden"):
        assert torch.equal(getattr(frozen, name), getattr(start, name)), name
        assert getattr(frozen, name).requires_grad  # trainable again after fit
    assert not torch.equal(frozen.W2, start.W2)
    assert history[-1]["lr"] < 0.01 * cfg.train.lr  # the readout stage's cosine ends at 0
    trained, history = train_once(cfg, [0])
    assert not torch.equal(trained.W1, start.W1) and not torch.equal(trained.b1, start.b1)
    assert history[1]["lr"] < history[2]["lr"]  # the second stage starts its own schedule


def test_chance_loss_is_the_loss_of_a_uniform_guess(gen):
    cfg = small_config("model.bins_per_class=5", "train.class_loss_weight=0.5")
    data = random_ipd_input_signal(64, cfg.stimulus, gen)

    class Uniform(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(1, len(x), cfg.stimulus.num_classes * 5), None

    loss, _ = loss_fn(Uniform(), data.spikes.float(), data.ipd, cfg)
    assert loss.item() == pytest.approx(chance_loss(cfg, 5))
    assert chance_loss(cfg, 1) == pytest.approx(math.log(cfg.stimulus.num_classes))
