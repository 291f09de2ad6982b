"""Perturbed test spikes: deletion removes a share of the spikes and adds none, jitter moves spikes within
their fibre, background adds spontaneous spikes; all reproducible from the generator."""

import re

import pytest
import torch

from spikeloc.config import load_config
from spikeloc.errors import SpikelocError
from spikeloc.task.perturb import Perturbation, perturb
from spikeloc.task.stimulus import random_ipd_input_signal


@pytest.fixture
def spikes():
    cfg = load_config("tiny")
    return random_ipd_input_signal(64, cfg.stimulus, torch.Generator().manual_seed(0)).spikes


def draw(x, p, seed=1):
    return perturb(x, p, torch.Generator().manual_seed(seed))


def test_deletion_removes_about_that_share_and_adds_nothing(spikes):
    out = draw(spikes, Perturbation(deletion=0.3))
    assert out.dtype == torch.uint8 and bool((out <= spikes).all())
    kept = out.sum().item() / spikes.sum().item()
    assert abs(kept - 0.7) < 0.02, kept
    assert torch.equal(out, draw(spikes, Perturbation(deletion=0.3)))  # the same generator, the same draws
    assert not torch.equal(out, draw(spikes, Perturbation(deletion=0.3), seed=2))


def test_jitter_moves_spikes_within_their_fibre(spikes):
    out = draw(spikes, Perturbation(jitter_steps=2.0))
    assert not torch.equal(out, spikes)
    per_fibre_in, per_fibre_out = spikes.sum(1), out.sum(1)  # (n, I): spikes of each fibre of each sample
    assert bool((per_fibre_out <= per_fibre_in).all())  # spikes that land on one step merge, none appear
    assert bool((per_fibre_out[per_fibre_in == 0] == 0).all())
    assert per_fibre_out.sum() > 0.8 * per_fibre_in.sum()
    one = torch.zeros(1, 50, 2, dtype=torch.uint8)
    one[0, 25, 1] = 1
    shifts = [draw(one, Perturbation(jitter_steps=3.0), seed)[0, :, 1].nonzero().item() - 25
              for seed in range(200)]
    assert abs(sum(shifts) / len(shifts)) < 0.6 and 2.5 < torch.tensor(shifts).float().std() < 3.5


def test_background_adds_spontaneous_spikes_at_its_rate():
    silent = torch.zeros(200, 100, 20, dtype=torch.uint8)
    out = draw(silent, Perturbation(background_p=0.05))
    assert abs(out.float().mean().item() - 0.05) < 0.003


def test_the_config_takes_the_perturbations_with_units_and_refuses_bad_ones():
    cfg = load_config("tiny", spike_deletion=0.2, spike_jitter_ms=2.0, spike_background_hz=10.0)
    p = Perturbation.of(cfg.eval, cfg.stimulus)
    assert p == Perturbation(0.2, 2.0e-3 / cfg.stimulus.dt, 10.0 * cfg.stimulus.dt) and not p.none
    assert Perturbation.of(load_config("tiny").eval, cfg.stimulus).none
    for bad, needle in (({"spike_deletion": 1.0}, "eval.spike_deletion"),
                        ({"spike_jitter_ms": -1}, "eval.spike_jitter_ms"),
                        ({"spike_background_hz": 5000.0},
                         "spike_background_hz * stimulus.dt must be at most 1")):
        with pytest.raises(SpikelocError, match=re.escape(needle)):
            load_config("tiny", **bad)
