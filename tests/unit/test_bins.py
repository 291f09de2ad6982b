import math

import pytest
import torch

from spikeloc.config import load_config
from spikeloc.task import bins
from spikeloc.task.bins import bin_centres, class_probabilities, continuise, discretise, posterior_median

STIM = load_config("tutorial").stimulus  # 12 classes over [-90, 90] deg


def test_discretise_continuise_round_trip():
    idx = torch.arange(STIM.num_classes)
    assert torch.equal(discretise(continuise(idx, STIM), STIM), idx)
    width = math.pi / STIM.num_classes
    ipd = torch.linspace(-math.pi / 2, math.pi / 2 - 1e-6, 1001, dtype=torch.float64)
    assert torch.all((continuise(discretise(ipd, STIM), STIM) - ipd).abs() <= width / 2 + 1e-9)
    # the notebook's floor((ipd + pi/2) * 12 / pi)
    assert torch.equal(discretise(ipd, STIM), ((ipd + math.pi / 2) * 12 / math.pi).long())
    assert discretise(torch.tensor([math.pi / 2]), STIM).item() == STIM.num_classes - 1  # top edge clamped
    torch.testing.assert_close(bin_centres(STIM, 12), continuise(idx, STIM), rtol=0, atol=1e-15)
    assert math.degrees(bin_centres(STIM, 60)[0].item()) == pytest.approx(-88.5)


def test_class_probabilities_sum_the_fine_bins():
    fine = torch.arange(24.0).view(1, 24)
    assert torch.equal(class_probabilities(fine, 12),
                       torch.tensor([[1.0, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45]]))


def test_posterior_median_of_simple_posteriors():
    deg = math.degrees
    one_hot = torch.zeros(3, 12)
    one_hot[torch.arange(3), torch.tensor([0, 5, 11])] = 1  # all mass in one bin: its midpoint
    assert [round(deg(m), 9) for m in posterior_median(one_hot, STIM).tolist()] == [-82.5, -7.5, 82.5]
    # uniform: centre
    assert deg(posterior_median(torch.ones(12), STIM).item()) == pytest.approx(0.0, abs=1e-12)
    halves = torch.zeros(12)
    halves[[2, 3]] = 0.5  # half in each of two neighbours: their common edge
    assert deg(posterior_median(halves, STIM).item()) == pytest.approx(-45.0)
    unnormalised = torch.zeros(12)
    unnormalised[[0, 11]] = torch.tensor([3.0, 1.0])  # three quarters in bin 0: 2/3 of the way through it
    assert deg(posterior_median(unnormalised, STIM).item()) == pytest.approx(-90 + 15 * 2 / 3)


def test_posterior_median_inverts_the_cumulative_distribution(gen):
    p = torch.rand(50, 60, generator=gen, dtype=torch.float64) ** 4
    median = posterior_median(p, STIM)
    lo, hi = STIM.ipd_range
    edges = torch.linspace(lo, hi, 61, dtype=torch.float64)
    # the mass below the median, integrating the piecewise-uniform density, is one half
    inside = ((median[:, None] - edges[:-1]) / (edges[1] - edges[0])).clamp(0, 1)  # (n, bins) fraction below
    below = (inside * p).sum(1) / p.sum(1)
    torch.testing.assert_close(below, torch.full_like(below, 0.5), atol=1e-12, rtol=0)


def test_outcome_per_sample(gen):
    probs = torch.zeros(2, 3, 24)  # K=2 models, 3 samples, 2 fine bins per class
    probs[0, torch.arange(3), torch.tensor([0, 12, 23])] = 1  # classes 0, 6, 11
    probs[1, :, 12] = 1  # always class 6
    ipd = torch.tensor([-85.0, 5.0, 80.0], dtype=torch.float64).deg2rad()  # classes 0, 6, 11
    out = bins.outcome(probs, ipd, STIM)
    assert out.estimate.tolist() == [[0, 6, 11], [6, 6, 6]]
    assert out.correct.tolist() == [[1, 1, 1], [0, 1, 0]]
    assert out.midpoint_error[0].rad2deg().tolist() == pytest.approx([2.5, 2.5, 2.5])
    # the posterior median of all mass in fine bin 12 (0 to 7.5 deg) is its midpoint, 3.75 deg
    assert out.median_error[1].rad2deg().tolist() == pytest.approx([88.75, 1.25, 76.25])
