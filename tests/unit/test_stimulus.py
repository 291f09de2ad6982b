import math

import numpy as np
import pytest
import torch

from spikeloc.config import load_config
from spikeloc.errors import SpikelocError
from spikeloc.runs.pipeline import datasets, validation_sets
from spikeloc.task.stimulus import (
    input_signal,
    random_ipd_input_signal,
    spike_probability,
    with_new_offset,
    with_offset,
)


def notebook_probability(ipd, offset, cfg):
    """The notebook's formula in float64 numpy, one offset per sample."""
    t = np.arange(cfg.steps) * cfg.dt
    phi = 2 * np.pi * (cfg.f * t[None, :] + offset[:, None])
    delays = np.linspace(0, np.pi / 2, cfg.anf_per_ear)
    left = phi[:, :, None] + delays[None, None, :]
    theta = np.concatenate([left, left + ipd[:, None, None]], axis=2)
    return cfg.rate_max * cfg.dt * (0.5 * (1 + np.sin(theta))) ** cfg.envelope_power


def test_probability_is_the_notebook_formula(gen):
    cfg = load_config("tutorial").stimulus
    ipd = torch.rand(16, generator=gen) * math.pi - math.pi / 2
    offset = torch.rand(16, generator=gen)
    p = spike_probability(ipd, offset, cfg)
    np.testing.assert_allclose(p.numpy(),
                               notebook_probability(ipd.double().numpy(), offset.double().numpy(), cfg),
                               atol=2e-6)


def test_mean_rate_per_fibre(gen):
    # with a uniform offset, E[(0.5 (1 + sin))^2] = 3/8, so the rate is rate_max * 3/8 = 225 Hz per fibre
    cfg = load_config("default").stimulus
    data = random_ipd_input_signal(2000, cfg, gen)
    rate = data.spikes.double().mean(dim=(0, 1)) / cfg.dt
    expected = cfg.rate_max * 3 / 8
    se = math.sqrt(0.225 * 0.775 / (2000 * cfg.steps)) / cfg.dt  # binomial standard error (Hz)
    assert torch.all((rate - expected).abs() < 5 * se * 3)  # steps within a sample are correlated: wider band


def test_empirical_spike_probability_matches_formula(gen):
    cfg = load_config("tutorial", overrides=["anf_per_ear=4"]).stimulus
    n = 20000
    ipd = torch.full((n,), 0.7)
    offset = torch.full((n,), 0.3)
    data = input_signal(ipd, cfg, gen, offset=offset)
    empirical = data.spikes.double().mean(0)
    p = spike_probability(ipd[:1], offset[:1], cfg)[0].double()
    # 3/n: counts near p = 0
    assert torch.all((empirical - p).abs() < 5 * torch.sqrt(p * (1 - p) / n) + 3 / n)


def test_right_ear_is_left_ear_shifted_by_ipd(gen):
    cfg = load_config("tutorial").stimulus
    offset = torch.tensor([0.1])
    delays = torch.linspace(0, math.pi / 2, cfg.anf_per_ear)
    ipd = delays[7:8] - delays[0]  # right fibre 0 sees the phase of left fibre 7
    p = spike_probability(ipd, offset, cfg)[0]
    torch.testing.assert_close(p[:, cfg.anf_per_ear], p[:, 7], atol=1e-6, rtol=0)
    p0 = spike_probability(torch.zeros(1), offset, cfg)[0]
    torch.testing.assert_close(p0[:, :cfg.anf_per_ear], p0[:, cfg.anf_per_ear:])


def test_offset_modes(gen):
    cfg = load_config("tutorial").stimulus
    assert random_ipd_input_signal(10, cfg, gen).offset.unique().numel() == 1
    per_sample = cfg.model_copy(update={"offset": "per_sample"})
    assert random_ipd_input_signal(10, per_sample, gen).offset.unique().numel() == 10


def test_same_seed_same_spikes():
    cfg = load_config("default").stimulus
    a = random_ipd_input_signal(100, cfg, torch.Generator().manual_seed(5))
    b = random_ipd_input_signal(100, cfg, torch.Generator().manual_seed(5))
    assert torch.equal(a.spikes, b.spikes) and torch.equal(a.ipd, b.ipd)


def test_fibres_without_phase_delays_share_their_ears_phase():
    cfg = load_config("tiny", None, ["stimulus.phase_delays=false"]).stimulus
    ipd, offset = torch.tensor([0.3, -1.0]), torch.tensor([0.1, 0.6])
    p = spike_probability(ipd, offset, cfg)  # (n, T, I)
    half = cfg.anf_per_ear
    assert torch.equal(p[..., :half], p[..., :1].expand_as(p[..., :half]))  # every left fibre alike
    assert torch.equal(p[..., half:], p[..., half:half + 1].expand_as(p[..., half:]))
    assert not torch.equal(p[..., 0], p[..., half])  # the ears differ by the IPD
    delayed = spike_probability(ipd, offset, load_config("tiny").stimulus)
    assert not torch.equal(delayed[..., 0], delayed[..., 1])


def test_per_epoch_offset_keeps_the_draws_and_changes_the_offset(gen):
    cfg = load_config("tutorial", overrides=["stimulus.offset=per_epoch"]).stimulus
    data = random_ipd_input_signal(40, cfg, gen)
    assert data.offset.unique().numel() == 1 and data.draw_state is not None
    assert torch.equal(with_offset(data, cfg, data.offset).spikes, data.spikes)  # the same uniform draws
    moved = with_new_offset(data, cfg, torch.Generator().manual_seed(5))
    assert torch.equal(moved.ipd, data.ipd) and moved.offset.unique().numel() == 1
    assert moved.offset[0] != data.offset[0] and not torch.equal(moved.spikes, data.spikes)
    # the same draws under another offset: a spike where the new probability is at least the old one's
    # wherever the old set had one (u < p_old <= p_new)
    p_old = spike_probability(data.ipd, data.offset, cfg)
    p_new = spike_probability(data.ipd, moved.offset, cfg)
    rises = (p_new >= p_old) & data.spikes.bool()
    assert moved.spikes.bool()[rises].all()


def test_a_set_not_drawn_per_epoch_cannot_take_a_new_offset(gen):
    cfg = load_config("tutorial").stimulus
    with pytest.raises(ValueError, match="per_epoch"):
        with_new_offset(random_ipd_input_signal(4, cfg, gen), cfg, gen)


def test_phase_delay_noise_is_a_fixed_shift_of_each_fibre(gen):
    """A noise of c on every fibre is the same as an offset moved by c / (2 pi) cycles."""
    cfg = load_config("tutorial").stimulus
    ipd, offset = torch.rand(8, generator=gen) - 0.5, torch.rand(8, generator=gen)
    c = 0.3
    shifted = spike_probability(ipd, offset, cfg, delay_noise=torch.full((cfg.inputs,), c))
    torch.testing.assert_close(shifted, spike_probability(ipd, offset + c / (2 * math.pi), cfg), atol=1e-5,
                               rtol=0)


def test_phase_delay_noise_reaches_training_and_validation_sets_only():
    base = load_config("tiny", overrides=["train.validation_batches=1"])
    noisy = load_config("tiny", overrides=["train.validation_batches=1", "train.phase_delay_noise_deg=20"])
    clean, loud = datasets(base, torch.device("cpu")), datasets(noisy, torch.device("cpu"))
    assert torch.equal(clean["test"].spikes, loud["test"].spikes)
    assert not torch.equal(clean["train"].spikes, loud["train"].spikes)
    assert not torch.equal(validation_sets(base, torch.device("cpu"))[0].spikes,
                           validation_sets(noisy, torch.device("cpu"))[0].spikes)
    with pytest.raises(SpikelocError, match=r"train\.phase_delay_noise_deg needs stimulus\.offset"):
        load_config("tiny", overrides=["stimulus.offset=per_epoch", "train.phase_delay_noise_deg=5"])
