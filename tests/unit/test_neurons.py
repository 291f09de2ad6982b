"""The reference neurons against the equations of their docstrings, written again here with Python floats."""

import math

import pytest
import torch

from spikeloc.neurons.li import LIParams, LIState, li_sequence, li_step
from spikeloc.neurons.lif import LIFParams, LIFState, initial_state, lif_sequence, lif_step
from spikeloc.neurons.surrogate import CUTOFF, spike_fn

RULES = ["standard", "immediate", "notebook"]
RESETS = ["zero", "subtract"]


def scalar_lif(h, alpha, rule, reset, theta=1.0, v_reset=0.0):
    """One neuron, the docstring's equations step by step: spikes and membrane lists."""
    def R(v, s):
        return v - theta * s if reset == "subtract" else v * (1 - s) + v_reset * s

    v, s, spikes, membrane = 0.0, 0.0, [], []
    for t, x in enumerate(h):
        if rule == "standard":
            v = R(alpha * v + x, s)
            s = float(v > theta)
        elif rule == "immediate":
            v = alpha * R(v, s) + x
            s = float(v > theta)
        else:  # notebook: v[t] = R(alpha v[t-1] + h[t-1], s[t-1]); s[t] = H(v[t-1] - theta)
            if t == 0:
                spikes.append(0.0)
                membrane.append(0.0)
                continue
            v, s = R(alpha * v + h[t - 1], s), float(v > theta)
        spikes.append(s)
        membrane.append(v)
    return spikes, membrane


def as_sequence(h):  # (T,) -> (K=1, B=1, T, N=1), float64 so the comparison with Python floats is exact
    return torch.tensor(h, dtype=torch.float64).view(1, 1, -1, 1)


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("theta, v_reset", [(1.0, 0.0), (1.7, 0.0), (1.0, 0.3), (0.8, -0.2)])
def test_lif_follows_its_equations(rule, reset, theta, v_reset):
    h = [0.6, 0.9, 0.0, 1.3, 2.5, 0.4, 0.4, 0.4, 3.0, 3.0, 0.1, 0.0, 0.7, 1.1]
    alpha = 0.8
    p = LIFParams(torch.full((1, 1), alpha, dtype=torch.float64), rule, reset, theta, v_reset)
    spikes, membrane = lif_sequence(as_sequence(h), p, record_membrane=True)
    want_spikes, want_membrane = scalar_lif(h, alpha, rule, reset, theta, v_reset)
    assert spikes.flatten().tolist() == want_spikes
    assert membrane.flatten().tolist() == pytest.approx(want_membrane, abs=1e-12)
    assert 2 <= sum(want_spikes) < len(h)  # the case spikes and resets


def test_threshold_and_reset_value_change_the_spikes():
    h = as_sequence([0.6] * 40)
    alpha = torch.full((1, 1), 0.9, dtype=torch.float64)
    count = {(theta, v_reset):
             lif_sequence(h, LIFParams(alpha, threshold=theta, v_reset=v_reset)).sum().item()
             for theta, v_reset in [(1.0, 0.0), (2.0, 0.0), (1.0, 0.5)]}
    # higher threshold fewer, higher reset more
    assert count[(2.0, 0.0)] < count[(1.0, 0.0)] < count[(1.0, 0.5)]


@pytest.mark.parametrize("rule", RULES)
def test_spikes_are_thresholded_from_the_recorded_membrane(rule, gen):
    h = torch.rand(2, 3, 50, 4, generator=gen) * 1.2
    p = LIFParams(torch.rand(2, 4, generator=gen) * 0.5 + 0.4, rule)
    spikes, membrane = lif_sequence(h, p, record_membrane=True)
    crossed = (membrane > p.threshold).float()
    if rule == "notebook":  # s[t] comes from v[t-1]
        assert torch.equal(spikes[:, :, 1:], crossed[:, :, :-1]) and not spikes[:, :, 0].any()
    else:
        assert torch.equal(spikes, crossed)
    assert 0.05 < spikes.mean() < 0.5


@pytest.mark.parametrize("rule", RULES)
def test_step_function_is_the_sequence_runner(rule, gen):
    """``lif_step`` from ``initial_state``, fed one step at a time, gives the runner's spikes."""
    h = torch.rand(2, 3, 30, 5, generator=gen) * 1.2
    p = LIFParams(torch.rand(2, 5, generator=gen) * 0.5 + 0.4, rule, "subtract")
    state = initial_state(h)
    assert isinstance(state, LIFState) and state.v.shape == (2, 3, 5)
    steps = []
    for t in range(h.shape[2]):
        state = lif_step(p, state, h[:, :, t])
        steps.append(state.s)
    stepped = torch.stack(steps, dim=2)
    expected = lif_sequence(h, p)
    if rule == "notebook":  # the runner records s[0] = 0 first and drops the last step's spike
        stepped = torch.cat([torch.zeros_like(stepped[:, :, :1]), stepped[:, :, :-1]], dim=2)
    assert torch.equal(stepped, expected)


def test_params_are_records_and_the_gradient_is_the_surrogate():
    p = LIFParams(torch.full((1, 1), 0.5))
    with pytest.raises(AttributeError):
        p.threshold = 2.0  # frozen: a step cannot change its parameters
    v = torch.tensor([[[0.9]]], requires_grad=True)
    state = lif_step(LIFParams(torch.zeros(1, 1), surrogate_slope=5.0),
                     LIFState(torch.zeros(1, 1, 1), torch.zeros(1, 1, 1)), v)
    state.s.sum().backward()
    sig = 1 / (1 + math.exp(-5 * (0.9 - 1)))
    assert v.grad.item() == pytest.approx(5 * sig * (1 - sig))


@pytest.mark.parametrize("rule", RULES)
def test_leaky_integrator_follows_its_equations(rule):
    h = [0.5, -1.0, 2.0, 0.0, 0.25, 1.0]
    trace = li_sequence(as_sequence(h),
                        LIParams(torch.full((1, 1), 0.5, dtype=torch.float64), rule)).flatten()
    y, want = 0.0, []
    for t in range(len(h)):
        if rule == "notebook":  # y[t] = alpha y[t-1] + h[t-1], y[0] = 0
            y = 0.5 * y + h[t - 1] if t else 0.0
        else:
            y = 0.5 * y + h[t]
        want.append(y)
    assert trace.tolist() == pytest.approx(want)
    one = li_step(LIParams(torch.full((1, 1), 0.5)), LIState(torch.ones(1, 1, 1)), torch.ones(1, 1, 1))
    assert one.y.item() == 1.5


def test_surrogate_is_zero_below_its_cutoff_and_never_subnormal():
    """Far below threshold the surrogate is exactly 0 (not a subnormal float, which slows the CPU)."""
    slope = 5.0
    x = torch.tensor([CUTOFF / slope - 0.1, CUTOFF / slope + 0.1, -20.0, -0.3, 0.0, 0.4], requires_grad=True)
    spike_fn(x, slope).sum().backward()
    sig = torch.sigmoid(slope * x.detach())
    expected = torch.where(slope * x.detach() < CUTOFF, 0.0, slope * sig * (1 - sig))
    assert x.grad[0] == 0 and x.grad[2] == 0 and x.grad[1] > 0
    torch.testing.assert_close(x.grad, expected, rtol=0, atol=0)
    tiny = torch.finfo(torch.float32).tiny
    assert not ((x.grad != 0) & (x.grad.abs() < tiny)).any()
