import pytest
import torch

from spikeloc.config import load_config
from spikeloc.errors import SpikelocError
from spikeloc.evaluation.metrics import bin_probabilities
from spikeloc.models import build_models
from spikeloc.observer import IdealObserver
from spikeloc.observer.step import GRID, StepObserver
from spikeloc.task.bins import class_probabilities, discretise
from spikeloc.task.likelihood import LOG_FLOOR
from spikeloc.task.stimulus import random_ipd_input_signal, spike_probability
from spikeloc.training import fit


def test_step_observer_is_the_per_step_likelihood_summed_over_phases(gen):
    stim = load_config("best", overrides=["stimulus.anf_per_ear=5"]).stimulus
    bins = 60
    lo, hi = stim.ipd_range
    delta = lo + (torch.arange(bins) + 0.5) * (hi - lo) / bins
    theta = torch.arange(GRID) / GRID  # cycles; step 0 has phase theta
    p = spike_probability(delta.repeat_interleave(GRID), theta.repeat(bins), stim)[:, 0].double()
    log_p, log_q = p.log().clamp(min=LOG_FLOOR), (-p).log1p().clamp(min=LOG_FLOOR)
    x = (torch.rand(20, stim.inputs, generator=gen) < 0.3).double()
    ll = (x @ (log_p - log_q).T + log_q.sum(1)).view(20, bins, GRID)  # (steps, IPD, phase)
    torch.testing.assert_close(StepObserver(stim, bins)(x), ll.logsumexp(-1).float(), rtol=1e-5, atol=1e-3)


def test_step_observer_summed_over_steps_decides_as_the_ideal_observer():
    stim = load_config("best").stimulus
    data = random_ipd_input_signal(256, stim, torch.Generator().manual_seed(4))
    local = StepObserver(stim, 60)(data.spikes.float()).sum(1).softmax(-1)
    ideal = bin_probabilities(IdealObserver(stim), data.spikes)[0]
    agree = class_probabilities(local, 12).argmax(-1) == class_probabilities(ideal, 12).argmax(-1)
    assert agree.float().mean() > 0.95


def test_sum_readout_adds_the_step_scores():
    cfg = load_config("tiny", overrides=["model.readout=sum", "stimulus.anf_per_ear=10", "model.hidden=8"])
    model = build_models(cfg.stimulus, cfg.model, [0])
    rate = build_models(cfg.stimulus, cfg.model.model_copy(update={"readout": "rate"}), [0])
    x = random_ipd_input_signal(4, cfg.stimulus, torch.Generator().manual_seed(0)).spikes.float()
    scores, spikes = model(x)
    torch.testing.assert_close(model.step_scores(spikes).sum(2), scores)
    torch.testing.assert_close(rate(x).scores * cfg.stimulus.steps, scores)


def test_observer_target_trains_each_step_towards_the_observer():
    cfg = load_config("best", overrides=["stimulus.anf_per_ear=30", "model.hidden=32", "model.init_phases=8",
                                         "train.readout_only_epochs=0", "train.epochs=4",
                                         "train.train_batches=8", "train.batch_size=32", "train.lr=0.01"])
    assert cfg.train.target == "observer"
    data = random_ipd_input_signal(256, cfg.stimulus, torch.Generator().manual_seed(0))
    model = build_models(cfg.stimulus, cfg.model, [0])
    history = fit(model, cfg, [data], [torch.Generator().manual_seed(1)], progress=False)
    assert history[-1].loss < history[0].loss - 0.05  # a KL per step, not a label NLL
    test = random_ipd_input_signal(512, cfg.stimulus, torch.Generator().manual_seed(2))
    with torch.no_grad():
        estimate = class_probabilities(model(test.spikes).scores.softmax(-1), 12)[0].argmax(-1)
    error = (estimate - discretise(test.ipd, cfg.stimulus)).abs().float().mean()
    assert error < 1.5  # classes off on average; a constant guess is 3 off, a mirrored posterior 4


@pytest.mark.parametrize("target", ["observer", "step_labels"])
@pytest.mark.parametrize("readout", ["rate", "mean"])
def test_per_step_targets_need_the_sum_readout(readout, target):
    with pytest.raises(SpikelocError, match=rf"train.target = '{target}' needs model.readout = 'sum'") as e:
        load_config("best", overrides=[f"train.target={target}", f"model.readout={readout}"])
    assert "\n" not in str(e.value)
