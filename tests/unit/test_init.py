import math

import pytest
import torch

from spikeloc.config import load_config
from spikeloc.errors import SpikelocError
from spikeloc.models import build_models
from spikeloc.models.init import MIN_LOG_ODDS, observer_templates
from spikeloc.task.stimulus import input_signal, random_ipd_input_signal, spike_probability

OBSERVER = ["model.init=observer", "model.hidden=64", "model.init_phases=8"]


def test_templates_are_the_per_step_log_likelihood(gen):
    stim = load_config("best", overrides=["stimulus.anf_per_ear=7"]).stimulus
    phases, ipds = 5, 4
    weights, bias = observer_templates(stim, phases, ipds)
    lo, hi = stim.ipd_range
    theta = torch.arange(phases).repeat_interleave(ipds) / phases  # cycles, column j * ipds + m
    delta = (lo + (torch.arange(ipds) + 0.5) * (hi - lo) / ipds).repeat(phases)
    p = spike_probability(delta, theta, stim)[:, 0, :].double().T  # (inputs, columns): step 0 has phase theta
    x = (torch.rand(10, stim.inputs, generator=gen) < 0.3).double()
    log_odds = (p.log() - (-p).log1p()).clamp(min=MIN_LOG_ODDS)
    p_null = stim.rate_max * stim.dt * 3 / 8  # mean of (0.5 * (1 + sin))**2 over a cycle
    null = x.sum(1, keepdim=True) * math.log(p_null / (1 - p_null)) + stim.inputs * math.log(1 - p_null)
    expected = x @ log_odds + (-p).log1p().sum(0) - null
    torch.testing.assert_close(x @ weights + bias, expected, rtol=1e-5, atol=1e-5)


def test_observer_init_sets_rates_and_stacks_independent_models():
    cfg = load_config("best", overrides=OBSERVER)
    stack = build_models(cfg.stimulus, cfg.model, [0, 1])
    alone = build_models(cfg.stimulus, cfg.model, [1])
    for name in ("W1", "b1", "W2"):
        torch.testing.assert_close(getattr(stack, name)[1], getattr(alone, name)[0])
    assert not torch.equal(stack.b1[0], stack.b1[1])  # each model calibrates on its own stimuli
    x = random_ipd_input_signal(64, cfg.stimulus, torch.Generator().manual_seed(7)).spikes.float()
    rates = stack(x).spikes.mean((1, 2))  # (K, H) on unseen stimuli
    assert rates.mean().item() == pytest.approx(cfg.model.init_rate, rel=0.2)
    assert (rates > 0).float().mean() > 0.95


def test_observer_init_neurons_prefer_their_own_ipd():
    cfg = load_config("best", overrides=OBSERVER)
    model = build_models(cfg.stimulus, cfg.model, [0])
    phases, ipds = cfg.model.init_phases, cfg.model.hidden // cfg.model.init_phases
    lo, hi = cfg.stimulus.ipd_range
    centres = lo + (torch.arange(ipds) + 0.5) * (hi - lo) / ipds
    data = input_signal(centres.repeat_interleave(32), cfg.stimulus, torch.Generator().manual_seed(3))
    spikes = model(data.spikes).spikes[0]  # (samples, T, H)
    # tuning curves: mean rate of the neurons built for IPD m (all phases) for stimuli at IPD n: (n, m)
    rates = spikes.mean(1).view(ipds, 32, phases, ipds).mean((1, 2))
    preferred = rates.argmax(0)  # the stimulus IPD that drives each group most
    assert ((preferred - torch.arange(ipds)).abs() <= 1).all(), rates
    assert (preferred == torch.arange(ipds)).float().mean() >= 0.75


@pytest.mark.parametrize("override, field", [
    (["model.hidden=60"], "init_phases"),
    (["model.hidden_bias=false"], "hidden_bias"),
])
def test_observer_init_config_errors(override, field):
    with pytest.raises(SpikelocError, match=field):
        load_config("best", overrides=[*OBSERVER, *override])
