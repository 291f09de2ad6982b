import math
import re

import pytest
import torch

from spikeloc.config import load_config
from spikeloc.errors import SpikelocError
from spikeloc.kernels.dispatch import lif
from spikeloc.models import MembraneModel, SpikingNetwork, build_models, construct
from spikeloc.models.protocol import Output
from spikeloc.models.stack import project
from spikeloc.neurons.li import LIParams, li_sequence
from spikeloc.neurons.lif import LIFParams
from spikeloc.task.stimulus import random_ipd_input_signal


def spikes_like(cfg, batch, gen, p=0.25):
    return (torch.rand(batch, cfg.stimulus.steps, cfg.stimulus.inputs, generator=gen) < p).float()


def test_forward_returns_scores_and_hidden_spikes(gen):
    cfg = load_config("tiny", overrides=["model.bins_per_class=2"])
    model = build_models(cfg.stimulus, cfg.model, [0, 1, 2])
    out = model(spikes_like(cfg, 5, gen))
    assert isinstance(out, Output)
    assert out.scores.shape == (3, 5, 24) and out.spikes.shape == (3, 5, cfg.stimulus.steps, cfg.model.hidden)
    membrane = build_models(cfg.stimulus, cfg.model, [0], kind="membrane")
    scores, spikes = membrane(spikes_like(cfg, 5, gen))
    assert scores.shape == (1, 5, 12) and spikes is None


def test_models_take_a_datasets_spikes_as_they_are():
    cfg = load_config("tiny")
    data = random_ipd_input_signal(6, cfg.stimulus, torch.Generator().manual_seed(0))
    assert data.spikes.dtype == torch.uint8
    for kind in ("spiking", "membrane"):
        model = build_models(cfg.stimulus, cfg.model, [0], kind=kind)
        torch.testing.assert_close(model(data.spikes).scores, model(data.spikes.float()).scores,
                                   rtol=0, atol=0)


def test_standard_rule_differs_and_uses_every_step():
    cfg = load_config("default", overrides=["model.engine=reference"])
    model = build_models(cfg.stimulus, cfg.model, [0])
    x = torch.zeros(1, cfg.stimulus.steps, cfg.stimulus.inputs)
    x[0, -1, :] = 1  # input only in the last step
    assert model(x).scores.abs().sum() > 0  # the notebook rule would never see the last step
    nb = build_models(cfg.stimulus, cfg.model.model_copy(update={"update_rule": "notebook"}), [0])
    assert nb(x).scores.abs().sum() == 0


def test_initialisation_bounds():
    stim = load_config("tutorial").stimulus
    nb = build_models(stim, load_config("tutorial").model, [0])
    bound = 1 / math.sqrt(12)  # quirk 2: fan-in of the 200 x 12 membrane matrix
    for W in (nb.W1, nb.W2):
        assert W.abs().max() <= bound and W.abs().max() > 0.9 * bound
    fan = build_models(stim, load_config("tutorial", overrides=["model.init=fan_in"]).model, [0])
    assert fan.W1.abs().max() <= 1 / math.sqrt(stim.inputs)
    assert fan.W2.abs().max() <= 1 / math.sqrt(30)
    # the research notebooks' snn_init: torch's fan-in of an (in, out) matrix is its out dimension
    out = build_models(stim, load_config("tutorial", overrides=["model.init=fan_out"]).model, [0])
    for W, fan_out in ((out.W1, 30), (out.W2, 12)):
        assert 0.9 / math.sqrt(fan_out) < W.abs().max() <= 1 / math.sqrt(fan_out)


def test_construction_sets_shapes_only_and_build_draws():
    cfg = load_config("best", overrides=["model.hidden=32", "model.init_phases=8", "stimulus.anf_per_ear=10"])
    empty = construct("spiking", cfg.stimulus, cfg.model, models=2)
    assert (empty.W1.shape == (2, 20, 32) and empty.b1.shape == (2, 32)
            and empty.log_tau_hidden.shape == (2, 32))
    # nothing drawn, nothing calibrated: ready to load weights
    assert not empty.W1.any() and not empty.b1.any()
    built = build_models(cfg.stimulus, cfg.model, [0, 1])
    assert built.W1.any() and built.b1.any()  # observer templates: calibrated biases
    empty.load_state_dict(built.state_dict())
    assert torch.equal(empty.W1, built.W1)


def test_unknown_kind_names_the_allowed_ones():
    cfg = load_config("tiny")
    with pytest.raises(SpikelocError, match=r"^unknown model kind 'membran'; allowed: spiking, membrane$"):
        build_models(cfg.stimulus, cfg.model, [0], kind="membran")


def test_stacked_models_are_independent_copies(gen):
    cfg = load_config("tutorial")
    stack = build_models(cfg.stimulus, cfg.model, [3, 4])
    alone = build_models(cfg.stimulus, cfg.model, [4])
    torch.testing.assert_close(stack.W1[1], alone.W1[0])
    x = spikes_like(cfg, 4, gen)
    torch.testing.assert_close(stack(x).scores[1], alone(x).scores[0])


@pytest.mark.parametrize("kind", ["spiking", "membrane"])
def test_member_is_one_model_of_the_stack(kind, gen):
    cfg = load_config("tiny", overrides=["model.learn_tau=true", "model.hidden_bias=true"])
    stack = build_models(cfg.stimulus, cfg.model, [5, 6, 7], kind=kind)
    one = stack.member(1)
    assert type(one) is type(stack) and one.models == 1
    for name, t in stack.state_dict().items():
        assert torch.equal(one.state_dict()[name], t[1:2]), name
    x = spikes_like(cfg, 4, gen)
    torch.testing.assert_close(one(x).scores[0], stack(x).scores[1])
    with torch.no_grad():
        one.readout.log_tau_out.add_(1)  # a copy: changing it leaves the stack alone
    assert not torch.equal(one.readout.log_tau_out[0], stack.readout.log_tau_out[1])
    with pytest.raises(SpikelocError, match=r"model 3 does not exist: this stack has 3 \(0..2\)"):
        stack.member(3)


def test_engine_auto_follows_the_tensors_at_call_time(gen):
    """Built on the CPU (fused numba), then moved: to float64 (the kernels are float32) or to a device without
    a fused kernel, the reference runs instead."""
    cfg = load_config("tiny")
    model = build_models(cfg.stimulus, cfg.model, [0])
    x = spikes_like(cfg, 2, gen)
    expected = model(x).scores
    torch.testing.assert_close(model.double()(x).scores, expected.double(), rtol=1e-5, atol=1e-6)
    assert model.float().to("meta")(x.to("meta")).scores.device.type == "meta"


def test_fused_engine_refused_at_construction(monkeypatch):
    from spikeloc.kernels import dispatch

    monkeypatch.setitem(dispatch.FUSED_LIF, "cpu", None)
    cfg = load_config("tiny", overrides=["model.engine=fused"])
    with pytest.raises(SpikelocError, match=r"model.engine: 'fused' is not available on cpu"):
        build_models(cfg.stimulus, cfg.model, [0])


def reference_scores(model: SpikingNetwork, spikes: torch.Tensor, readout: str) -> torch.Tensor:
    """What each readout means, from the hidden spikes and the reference neurons."""
    if readout in ("rate", "sum"):
        counts = spikes.sum(2) / (spikes.shape[2] if readout == "rate" else 1)
        return counts @ model.W2
    current = project(spikes, model.W2)  # (K, B, T, C)
    alpha = torch.exp(-model.stim.dt / model.readout.log_tau_out.exp())
    if readout in ("count", "spike_rate"):
        count = lif(current,
                    LIFParams(alpha, model.cfg.update_rule, surrogate_slope=model.cfg.surrogate_slope),
                    "reference").sum(2)
        return count / (spikes.shape[2] if readout == "spike_rate" else 1)
    trace = li_sequence(current, LIParams(alpha, model.cfg.update_rule))
    return {"mean": trace.mean(2), "max": trace.amax(2), "last": trace[:, :, -1]}[readout]


@pytest.mark.parametrize("readout", ["mean", "max", "count", "spike_rate", "last", "rate", "sum"])
def test_each_readout_is_what_it_says(gen, readout):
    cfg = load_config("default", overrides=[f"model.readout={readout}", "model.learn_tau=true",
                                            "model.bins_per_class=3", "model.init_gain=4",
                                            "model.init=fan_in"])
    model = build_models(cfg.stimulus, cfg.model, [0, 1])
    x = spikes_like(cfg, 4, gen)
    scores, spikes = model(x)
    assert scores.shape == (2, 4, 36)
    torch.testing.assert_close(scores, reference_scores(model, spikes, readout), rtol=1e-5, atol=1e-5)
    if readout in ("mean", "max", "last"):  # the test can tell them apart
        others = [reference_scores(model, spikes, r) for r in ("mean", "max", "last") if r != readout]
        assert all((scores - other).abs().max() > 1e-3 for other in others)
    scores.sum().backward()
    assert torch.isfinite(model.W1.grad).all() and model.log_tau_hidden.grad is not None


def test_rate_readout_is_the_mean_readout_without_leak(gen):
    # tau_out -> 0: the output membrane is the input current, so the mean over time is the rate readout
    rate_cfg = load_config("default", overrides=["model.readout=rate", "model.bins_per_class=2"])
    mean_cfg = load_config("default", overrides=["model.readout=mean", "model.bins_per_class=2",
                                                 "model.tau_out_ms=1e-6"])
    rate, mean = (build_models(c.stimulus, c.model, [5]) for c in (rate_cfg, mean_cfg))
    x = spikes_like(rate_cfg, 3, gen)
    torch.testing.assert_close(rate(x).scores, mean(x).scores)
    assert not any("tau_out" in name for name in rate.state_dict())


def test_hidden_bias_is_a_constant_input_current(gen):
    cfg = load_config("default", overrides=["model.hidden_bias=true", "model.update_rule=standard"])
    model = build_models(cfg.stimulus, cfg.model, [0])
    silent = torch.zeros(2, cfg.stimulus.steps, cfg.stimulus.inputs)
    assert model(silent).spikes.sum() == 0  # bias starts at zero: no input, no spikes
    with torch.no_grad():
        model.b1.fill_(2.0)  # above threshold at once: spike, reset to 0, spike, ...
    spikes = model(silent).spikes
    assert spikes[..., 0::2, :].min() == 1 and spikes[..., 1::2, :].max() == 0
    model.b1.data.zero_()
    model(spikes_like(cfg, 2, gen)).scores.sum().backward()
    assert model.b1.grad.abs().sum() > 0
    plain = load_config("default", overrides=["model.hidden_bias=false"])
    assert build_models(plain.stimulus, plain.model, [0]).b1 is None


def test_parameter_groups_split_hidden_from_readout():
    cfg = load_config("tiny", overrides=["model.learn_tau=true", "model.hidden_bias=true"])
    net = build_models(cfg.stimulus, cfg.model, [0])
    groups = net.parameter_groups()
    assert groups["hidden"] == [net.W1, net.b1, net.log_tau_hidden]
    assert groups["readout"] == [net.W2, net.readout.log_tau_out]
    fixed_tau = build_models(cfg.stimulus, cfg.model.model_copy(update={"learn_tau": False}), [0])
    assert "log_tau_hidden" in fixed_tau.state_dict()
    # a buffer: saved, not trained
    assert not any(p is fixed_tau.log_tau_hidden for p in fixed_tau.parameters())
    membrane = build_models(cfg.stimulus, cfg.model, [0], kind="membrane")
    assert isinstance(membrane, MembraneModel) and membrane.parameter_groups()["hidden"] == []


@pytest.mark.parametrize("signs", [[], ["model.dale=true"], ["model.delays=learned"]])
def test_train_hidden_false_lets_no_gradient_reach_the_hidden_layer(gen, signs):
    """Also with Dale's law, whose signed W2 must keep its gradient (0.5.0 lost it), and learned delays."""
    cfg = load_config("tiny", overrides=["model.learn_tau=true", "model.hidden_bias=true", *signs])
    net = build_models(cfg.stimulus, cfg.model, [0])
    data = random_ipd_input_signal(8, cfg.stimulus, gen)
    net.loss(data.spikes, data.ipd, cfg.train, train_hidden=False).sum().backward()
    assert all(p.grad is None for p in net.parameter_groups()["hidden"])
    assert all(p.grad is not None for p in net.parameter_groups()["readout"])
    assert all(p.requires_grad for p in net.parameters())  # nothing was frozen to get there


def test_input_of_the_wrong_shape_is_a_one_line_error(gen):
    cfg = load_config("tiny")
    stack = build_models(cfg.stimulus, cfg.model, [0, 1])
    x = spikes_like(cfg, 3, gen)
    for bad, shape in ((x[None], "(1, 3, 100, 32)"), (x[..., 1:], "(3, 100, 31)"), (x[0], "(100, 32)")):
        with pytest.raises(SpikelocError, match=rf"^input spikes must be \(B, T, 32\) or \(2, B, T, 32\); "
                                                rf"got {re.escape(shape)}$"):
            stack(bad)
    torch.testing.assert_close(stack(x.expand(2, -1, -1, -1)).scores, stack(x).scores)  # (K, B, T, I) is fine


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_alif_network_is_fused_equal_to_its_reference(gen, reset):
    """``model.neuron = "alif"`` with the notebook rule: the fused network's scores and gradients equal the
    reference engine's on the same weights."""
    overrides = ["model.neuron=alif", "model.update_rule=notebook", f"model.reset={reset}",
                 "model.adapt_tau_ms=2", "model.adapt_strength=1.5", "model.learn_tau=true"]
    x = spikes_like(load_config("tiny"), 6, gen)
    results = []
    for engine in ("fused", "reference"):
        cfg = load_config("tiny", overrides=[*overrides, f"model.engine={engine}"])
        model = build_models(cfg.stimulus, cfg.model, [0, 1])
        assert model.neuron_params().adapt_decay == pytest.approx(math.exp(-cfg.stimulus.dt / 2e-3))
        out = model(x)
        out.scores.square().sum().backward()
        results.append((out.spikes, out.scores, model.W1.grad, model.log_tau_hidden.grad))
    (spikes, *rest), (ref_spikes, *ref_rest) = results
    assert torch.equal(spikes, ref_spikes) and spikes.sum() > 0
    for a, b in zip(rest, ref_rest, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_alif_without_a_fused_kernel_is_refused_by_the_config():
    with pytest.raises(SpikelocError, match=r"model: engine = 'fused' has no ALIF kernel for update_rule "
                                            r"'standard' \(it has one for notebook\)"):
        load_config("tiny", overrides=["model.neuron=alif", "model.update_rule=standard",
                                       "model.engine=fused"])
