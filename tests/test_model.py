import math

import pytest
import torch
from notebook_literal import init_weight_matrices, snn

from spikeloc.config import load_config
from spikeloc.model import build_models


def loss_and_grads(scores, target, params):
    loss = torch.nn.functional.nll_loss(torch.log_softmax(scores, -1), target)
    return loss, torch.autograd.grad(loss, params)


@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_notebook_semantics_reproduce_the_notebook(gen, engine):
    cfg = load_config("tutorial", overrides=[f"model.engine={engine}"])
    x = (torch.rand(8, cfg.stimulus.steps, cfg.stimulus.inputs, generator=gen) < 0.25).float()
    target = torch.randint(0, 12, (8,), generator=gen)
    W1, W2 = init_weight_matrices(cfg.stimulus.inputs, cfg.model.hidden, 12)
    W1.data *= 3  # stronger input: many spikes, so the reset and the lag matter
    model = build_models(cfg.stimulus, cfg.model, [0])
    model.W1.data[0] = W1.data
    model.W2.data[0] = W2.data
    expected = snn(x, W1, W2).mean(1)
    scores, spikes = model(x)
    assert spikes.sum() > 50
    torch.testing.assert_close(scores[0], expected, rtol=1e-5, atol=1e-6)
    _, (g1, g2) = loss_and_grads(expected, target, [W1, W2])
    _, (h1, h2) = loss_and_grads(scores[0], target, [model.W1, model.W2])
    torch.testing.assert_close(h1[0], g1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h2[0], g2, rtol=1e-5, atol=1e-6)


def test_standard_semantics_differ_and_use_every_step(gen):
    cfg = load_config("default", overrides=["model.engine=reference"])
    model = build_models(cfg.stimulus, cfg.model, [0])
    x = torch.zeros(1, cfg.stimulus.steps, cfg.stimulus.inputs)
    x[0, -1, :] = 1  # input only in the last step
    scores, _ = model(x)
    assert scores.abs().sum() > 0  # the notebook semantics would never see the last step
    nb = build_models(cfg.stimulus, cfg.model.model_copy(update={"semantics": "notebook"}), [0])
    assert nb(x)[0].abs().sum() == 0


def test_initialisation_bounds():
    stim = load_config("tutorial").stimulus
    nb = build_models(stim, load_config("tutorial").model, [0])
    bound = 1 / math.sqrt(12)  # quirk 2: fan-in of the 200 x 12 membrane matrix
    for W in (nb.W1, nb.W2):
        assert W.abs().max() <= bound and W.abs().max() > 0.9 * bound
    fan = build_models(stim, load_config("tutorial", overrides=["model.init=fan_in"]).model, [0])
    assert fan.W1.abs().max() <= 1 / math.sqrt(stim.inputs)
    assert fan.W2.abs().max() <= 1 / math.sqrt(30)


def test_stacked_models_are_independent_copies(gen):
    cfg = load_config("tutorial")
    stack = build_models(cfg.stimulus, cfg.model, [3, 4])
    alone = build_models(cfg.stimulus, cfg.model, [4])
    torch.testing.assert_close(stack.W1[1], alone.W1[0])
    x = (torch.rand(4, cfg.stimulus.steps, cfg.stimulus.inputs, generator=gen) < 0.25).float()
    torch.testing.assert_close(stack(x)[0][1], alone(x)[0][0])


@pytest.mark.parametrize("readout", ["mean", "max", "count", "last", "rate"])
def test_readouts_give_finite_scores_and_gradients(gen, readout):
    cfg = load_config("default", overrides=[f"model.readout={readout}", "model.learn_tau=true",
                                            "model.bins_per_class=3"])
    model = build_models(cfg.stimulus, cfg.model, [0, 1])
    x = (torch.rand(4, cfg.stimulus.steps, cfg.stimulus.inputs, generator=gen) < 0.25).float()
    scores, _ = model(x)
    assert scores.shape == (2, 4, 36)
    scores.sum().backward()
    assert torch.isfinite(model.W1.grad).all() and model.log_tau_hidden.grad is not None


def test_rate_readout_is_the_mean_readout_without_leak(gen):
    # tau_out -> 0: the output membrane is the input current, so the mean over time is the rate readout
    rate_cfg = load_config("default", overrides=["model.readout=rate", "model.bins_per_class=2"])
    mean_cfg = load_config("default", overrides=["model.readout=mean", "model.bins_per_class=2",
                                                 "model.tau_out_ms=1e-6"])
    rate, mean = (build_models(c.stimulus, c.model, [5]) for c in (rate_cfg, mean_cfg))
    x = (torch.rand(3, rate_cfg.stimulus.steps, rate_cfg.stimulus.inputs, generator=gen) < 0.25).float()
    torch.testing.assert_close(rate(x)[0], mean(x)[0])
    assert rate.readout is None and not any("tau_out" in name for name, _ in rate.named_parameters())


def test_hidden_bias_is_a_constant_input_current(gen):
    cfg = load_config("default", overrides=["model.hidden_bias=true"])
    model = build_models(cfg.stimulus, cfg.model, [0])
    silent = torch.zeros(2, cfg.stimulus.steps, cfg.stimulus.inputs)
    assert model(silent)[1].sum() == 0  # bias starts at zero: no input, no spikes
    with torch.no_grad():
        model.b1.fill_(2.0)  # above threshold at once: spike, reset to 0, spike, ...
    spikes = model(silent)[1]
    assert spikes[..., 0::2, :].min() == 1 and spikes[..., 1::2, :].max() == 0
    x = (torch.rand(2, cfg.stimulus.steps, cfg.stimulus.inputs, generator=gen) < 0.25).float()
    model.b1.data.zero_()
    model(x)[0].sum().backward()
    assert model.b1.grad.abs().sum() > 0
    plain = load_config("default")
    assert not build_models(plain.stimulus, plain.model, [0]).b1.requires_grad
