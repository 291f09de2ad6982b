"""The ideal observer: exactness against a naive brute force, folding, and the published bound."""

import math

import pytest
import torch

from spikeloc.config import StimulusConfig
from spikeloc.evaluation import evaluate
from spikeloc.observer import IdealObserver, bound
from spikeloc.task.stimulus import input_signal, phase_delays

# odd small stimuli: no folding (f*dt = 0.037), folding with a*t mod P (f*dt = 3/10, 23 steps),
# and the full circle of IPDs, where the posterior wraps around
ODD = {
    "unfolded": StimulusConfig(anf_per_ear=3, f=37, duration=0.010, envelope_power=1.5, rate_max=800,
                               ipd_min_deg=-150, ipd_max_deg=170, max_phase_delay_deg=120, num_classes=5),
    "folded": StimulusConfig(anf_per_ear=2, f=300, duration=0.023, envelope_power=3, ipd_min_deg=-40,
                             ipd_max_deg=100, num_classes=3),
    "full_circle": StimulusConfig(anf_per_ear=3, f=125, duration=0.020, rate_max=1000, ipd_min_deg=-180,
                                  ipd_max_deg=180, num_classes=4),
}

# reference.md section 4: 65,536 samples, default stimulus
REFERENCE = {"unknown_offset": {"accuracy": 0.937, "mae_midpoint_deg": 3.85, "mae_median_deg": 1.04},
             "known_offset": {"accuracy": 0.956, "mae_midpoint_deg": 3.80, "mae_median_deg": 0.73}}
REFERENCE_SAMPLES = 65536


def _stimuli(cfg: StimulusConfig, n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lo, hi = cfg.ipd_range
    ipd = lo + (hi - lo) * torch.rand(n, generator=gen)
    return input_signal(ipd, cfg, gen, offset=torch.rand(n, generator=gen))


def _brute_force_posterior(spikes, cfg, bins, offset=None, per_bin=400, offsets=64):
    """Bin posterior by direct summation of the naive Bernoulli likelihood on an IPD x offset grid.

    Midpoint rule: ``per_bin`` IPD points in each bin, ``offsets`` offsets in [0, 1) (or the known one).
    """
    lo, hi = cfg.ipd_range
    ipd = lo + (torch.arange(bins * per_bin, dtype=torch.float64) + 0.5) * (hi - lo) / (bins * per_bin)
    t = torch.arange(cfg.steps, dtype=torch.float64) * cfg.dt
    delay = phase_delays(cfg).double()
    out = []
    grid = (torch.arange(offsets, dtype=torch.float64) + 0.5) / offsets
    for k, x in enumerate(spikes.bool()):
        o = grid if offset is None else offset[k:k + 1].double()
        phase = 2 * math.pi * (cfg.f * t[None, :, None] + o[:, None, None]) + delay  # (offset, step, fibre)
        # (ipd, offset, step, ear, fibre)
        theta = torch.stack([phase.expand(len(ipd), -1, -1, -1), phase + ipd[:, None, None, None]], dim=-2)
        p = cfg.rate_max * cfg.dt * (0.5 * (1 + torch.sin(theta))) ** cfg.envelope_power
        x_ear = x.view(cfg.steps, 2, cfg.anf_per_ear)
        log_lik = torch.where(x_ear, torch.log(p), torch.log(1 - p)).sum((-3, -2, -1))  # (ipd, offsets)
        log_post = torch.logsumexp(log_lik, dim=1)
        mass = (log_post - log_post.max()).exp().view(bins, per_bin).sum(1)
        out.append(mass / mass.sum())
    return torch.stack(out)


@pytest.mark.parametrize("name", ODD)
@pytest.mark.parametrize("known", [False, True])
def test_matches_brute_force(name, known):
    cfg = ODD[name]
    data = _stimuli(cfg, 3)
    observer = IdealObserver(cfg, bins_per_class=2, phase_grid=1440)
    offset = data.offset if known else None
    got = observer.log_posterior(data.spikes, offset).double().exp()
    # fewer IPD points where the offset sum multiplies the cost; both quadratures err by < 6e-5,
    # a shift of the observer's grid by half a cell (0.125 deg) by > 3e-3
    want = _brute_force_posterior(data.spikes, cfg, observer.bins, offset, per_bin=400 if known else 60)
    assert got.sum(1).sub(1).abs().max() < 1e-5
    torch.testing.assert_close(got, want, atol=1.5e-4, rtol=0)


@pytest.mark.parametrize("name", ["folded", "full_circle"])
def test_folding_equals_full_likelihood(name):
    cfg = ODD[name]
    data = _stimuli(cfg, 16)
    folded, full = IdealObserver(cfg, phase_grid=360), IdealObserver(cfg, phase_grid=360, fold=False)
    assert folded.fold is not None and full.fold is None
    torch.testing.assert_close(folded.ear_log_likelihoods(data.spikes), full.ear_log_likelihoods(data.spikes),
                               atol=1e-9, rtol=1e-12)
    for offset in (None, data.offset):
        torch.testing.assert_close(folded.log_posterior(data.spikes, offset).exp(),
                                   full.log_posterior(data.spikes, offset).exp(), atol=1e-9, rtol=0)


def test_folding_only_where_exact():
    assert IdealObserver(StimulusConfig(), phase_grid=36).fold.shape == (50, 100)  # f*dt = 1/50
    assert IdealObserver(StimulusConfig(f=30), phase_grid=36).fold is None  # period 100/3 steps: no gain
    assert IdealObserver(StimulusConfig(f=20.5), phase_grid=36).fold is None  # f*dt = 41/2000


def test_drop_in_for_a_model():
    cfg = ODD["unfolded"]
    data = _stimuli(cfg, 40)
    observer = IdealObserver(cfg, bins_per_class=3, phase_grid=720)
    scores, hidden = observer(data.spikes.float())
    assert scores.shape == (1, 40, cfg.num_classes * 3) and hidden is None
    assert evaluate(observer, data, cfg)[0].accuracy > 1 / cfg.num_classes


def _check_against_reference(result):
    """Every metric within 3 standard errors (ours and the reference's) of the published value."""
    n = result["samples"]
    for observer, published in REFERENCE.items():
        for key, want in published.items():
            got = result[observer][key]
            lo, hi = result[observer][key + "_ci"]
            se = (hi - lo) / (2 * 1.96)
            assert abs(got - want) < 3 * se * math.sqrt(1 + n / REFERENCE_SAMPLES), (observer, key, got, want)


@pytest.fixture(scope="module")
def default_bound():
    return bound(StimulusConfig(), samples=1024, seed=1)


def test_default_stimulus_matches_reference(default_bound):
    _check_against_reference(default_bound)


def test_known_offset_beats_unknown(default_bound):
    known, unknown = default_bound["known_offset"], default_bound["unknown_offset"]
    assert known["mae_median_deg"] < unknown["mae_median_deg"]
    assert known["accuracy"] >= unknown["accuracy"]
    assert known["mae_median_deg_ci"][1] < unknown["mae_median_deg_ci"][0]


@pytest.mark.slow
def test_reference_table_8192_samples():
    _check_against_reference(bound(StimulusConfig(), samples=8192, seed=0))
