"""Learned synaptic delays (spikeloc.models.delays) against the dcls package, and in a network."""

import numpy as np
import pytest
import torch

import spikeloc
from spikeloc.config import load_config
from spikeloc.errors import SpikelocError
from spikeloc.models import build_models
from spikeloc.models.delays import delayed_project, initial_delays, kernel, sigma_at, taps_for
from spikeloc.models.stack import project
from spikeloc.viz.figures import figure_specs


def dcls_layer(n_in, n_out, taps, version, gen):
    dcls = pytest.importorskip("DCLS.construct.modules")
    layer = dcls.Dcls1d(n_in, n_out, kernel_count=1, dilated_kernel_size=taps, bias=False, version=version)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen))
        layer.P.copy_(torch.rand(layer.P.shape, generator=gen) * (taps - 1) - taps // 2)
        layer.SIG.fill_(1.7 if version == "gauss" else 0.0)
    return layer


def as_spikeloc(layer, taps):
    """The Dcls1d layer's weights ``(1, in, out)`` and delays (steps) ``(1, in, out)``: d = taps // 2 - P."""
    return layer.weight[:, :, 0].T[None], (taps // 2 - layer.P[0, :, :, 0]).T[None]


def dcls_currents(layer, x, taps):
    """Dcls1d on spikes ``(B, T, in)`` padded with taps - 1 zeros in front: currents ``(B, T, out)``."""
    return layer(torch.nn.functional.pad(x.permute(0, 2, 1), (taps - 1, 0))).permute(0, 2, 1)


def test_gaussian_delays_equal_dcls_forward_and_backward(gen):
    taps, x = 31, (torch.rand(3, 50, 7, generator=gen) < 0.3).float()
    layer = dcls_layer(7, 5, taps, "gauss", gen)
    ref = dcls_currents(layer, x, taps)
    W, delay = (t.detach().clone().requires_grad_() for t in as_spikeloc(layer, taps))
    out = delayed_project(x, W, delay, taps, sigma=1.7 + 0.27)[0]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    up = torch.randn(out.shape, generator=gen)
    grad_w, grad_p = torch.autograd.grad(ref, (layer.weight, layer.P), up)
    ours_w, ours_d = torch.autograd.grad(out, (W, delay), up)
    torch.testing.assert_close(ours_w[0], grad_w[:, :, 0].T, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours_d[0], -grad_p[0, :, :, 0].T, atol=1e-4, rtol=1e-4)  # d = taps // 2 - P


def test_rounded_delays_equal_dcls_at_evaluation(gen):
    """The notebook evaluates with Dcls1d's 'max' version on rounded positions: one tap per synapse."""
    taps, x = 25, (torch.rand(2, 40, 6, generator=gen) < 0.3).float()
    layer = dcls_layer(6, 4, taps, "max", gen)
    with torch.no_grad():
        layer.P.round_()
    W, delay = as_spikeloc(layer, taps)
    torch.testing.assert_close(delayed_project(x, W, delay + 0.2, taps, sigma=None)[0],
                               dcls_currents(layer, x, taps), atol=1e-5, rtol=1e-5)


def test_a_delay_shifts_the_current_and_zero_delays_are_the_product(gen):
    x = (torch.rand(2, 30, 5, generator=gen) < 0.3).float()
    W = torch.randn(2, 5, 3, generator=gen)
    zero = torch.zeros(2, 5, 3)
    torch.testing.assert_close(delayed_project(x, W, zero, 9, None), project(x, W), atol=1e-6, rtol=0)
    shifted = delayed_project(x, W, zero + 4, 9, None)
    torch.testing.assert_close(shifted[:, :, 4:], project(x, W)[:, :, :-4], atol=1e-6, rtol=0)
    assert (shifted[:, :, :4] == 0).all()


def test_kernel_and_schedule():
    delay = torch.tensor([[3.0, 7.4]])
    soft = kernel(delay, 11, sigma=0.8)
    torch.testing.assert_close(soft.sum(-1), torch.ones(1, 2), atol=1e-6, rtol=0)
    assert soft[0, 0].argmax() == 3 and soft[0, 1].argmax() == 7
    assert kernel(delay, 11, None)[0, 1, 7] == 1
    assert taps_for(30, 1e-3) == 31 and taps_for(24, 1e-3) == 25 and taps_for(25, 1e-3) == 27  # odd counts
    assert sigma_at(1, 100, 31) == pytest.approx(15.27)
    assert sigma_at(26, 100, 31) == pytest.approx(0.5) and sigma_at(90, 100, 31) == pytest.approx(0.5)
    assert sigma_at(13, 100, 31) == pytest.approx(15 * (0.23 / 15) ** 0.48 + 0.27)
    d = initial_delays((200, 30), 31, [torch.Generator().manual_seed(0)])
    assert d.shape == (1, 200, 30) and abs(d.mean() - 15) < 0.05 and 0.4 < d.std() < 0.6


def delay_config(*overrides):
    return load_config("tiny", overrides=["model.delays=learned", "model.max_delay_ms=6",
                                          "stimulus.phase_delays=false", *overrides])


def test_a_network_with_learned_delays_trains_them_and_keeps_them_in_range(tmp_path):
    cfg = delay_config("train.epochs=4", "train.delay_lr=0.5")
    untrained = build_models(cfg.stimulus, cfg.model, [cfg.seed])
    run = spikeloc.runs.train(cfg, progress=False)
    net = run.models["spiking"]
    assert net.taps == 7 and net.delay_sigma.item() == pytest.approx(0.5)
    assert not torch.equal(net.W1_delay, untrained.W1_delay)
    assert not torch.equal(net.W2_delay, untrained.W2_delay)
    assert net.W1_delay.min() >= 0 and net.W1_delay.max() <= 6
    spikeloc.runs.save(run, tmp_path / "run")
    loaded = spikeloc.runs.load_run(tmp_path / "run")
    x = (torch.rand(8, cfg.stimulus.steps, cfg.stimulus.inputs) < 0.2).float()
    np.testing.assert_array_equal(loaded.predict_proba(x), run.predict_proba(x))
    spec = figure_specs(loaded)["learned delays"]
    (tmp_path / "delays.png").write_bytes(spec.png())
    assert spec.png()[:4] == b"\x89PNG"


def test_the_training_loss_sees_soft_delays_and_evaluation_rounded_ones(gen):
    cfg = delay_config()
    net = build_models(cfg.stimulus, cfg.model, [0])
    x = (torch.rand(4, cfg.stimulus.steps, cfg.stimulus.inputs, generator=gen) < 0.2).float()
    soft = net(x, soft_delays=True).scores
    (grad,) = torch.autograd.grad(soft.sum(), net.W1_delay)
    assert grad.abs().sum() > 0
    assert net(x).scores.requires_grad and not torch.equal(net(x).scores, soft)
    with torch.no_grad():  # whole-step delays: the soft kernel is as good as one-hot at a tiny width
        net.W1_delay.round_()
        net.W2_delay.round_()
        net.delay_sigma.fill_(0.05)
    torch.testing.assert_close(net(x, soft_delays=True).scores, net(x).scores)


@pytest.mark.parametrize("overrides, needle", [
    (["model.max_delay_ms=0.5"], r"model.max_delay_ms \(0.5\) must be at least one time step \(1 ms\)"),
    (["model.max_delay_ms=-1"], "model.max_delay_ms"),
    (["model.readout=sum", "train.target=observer"], "train.target = 'observer' cannot be combined with "
                                                     "model.delays"),
    (["model.init=observer", "model.hidden=16", "model.hidden_bias=true"], "init = 'observer' cannot be "
                                                                           "combined with delays"),
    (["train.delay_lr=0"], "train.delay_lr"),
])
def test_bad_delay_settings_are_one_line_errors(overrides, needle):
    with pytest.raises(SpikelocError, match=needle):
        delay_config(*overrides)
