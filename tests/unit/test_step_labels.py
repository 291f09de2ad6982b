import pytest
import torch

from spikeloc.config import load_config
from spikeloc.errors import SpikelocError
from spikeloc.models import build_models, losses
from spikeloc.task.bins import class_probabilities, discretise
from spikeloc.task.stimulus import random_ipd_input_signal
from spikeloc.training import fit


def test_step_label_nll_is_the_label_nll_of_each_step_alone_averaged(gen):
    stim = load_config("best").stimulus
    step_scores = torch.randn(2, 5, 7, 60, generator=gen)  # (K, B, T, C)
    ipd = (torch.rand(2, 5, generator=gen) - 0.5) * torch.pi  # each model its own samples
    each = torch.stack([losses.label_nll(step_scores[:, :, t], ipd, stim, 0.7) for t in range(7)])  # (T, K)
    torch.testing.assert_close(losses.step_label_nll(step_scores, ipd, stim, 0.7), each.mean(0))
    shared = ipd[0]  # one model's IPDs (B,), as a single model's batch
    torch.testing.assert_close(losses.step_label_nll(step_scores[:1], shared, stim, 0.0),
                               torch.stack([losses.label_nll(step_scores[:1, :, t], shared, stim, 0.0)
                                            for t in range(7)]).mean(0))


def test_step_label_nll_is_least_at_each_steps_posterior(gen):
    # two kinds of step, each pointing to a bin with its own reliability, labels drawn from that posterior
    stim = load_config("best").stimulus
    bins, centres = 60, torch.linspace(-torch.pi / 2, torch.pi / 2, 121)[1::2]  # the 60 bin centres
    posterior = torch.full((2, bins), 0.1 / (bins - 1))
    posterior[0, 10], posterior[1, 40] = 0.9, 0.9
    posterior[1] = posterior[1] * 0.5 + 0.5 / bins
    labels = torch.stack([torch.multinomial(p, 20000, replacement=True, generator=gen) for p in posterior])
    ipd = centres[labels]  # (2, N): every sample of kind k has one step of kind k
    assert (discretise(ipd, stim, bins) == labels).all()

    def loss(step_logp):  # step scores (2, N, 1, C) of log-probabilities per kind
        return losses.step_label_nll(step_logp[:, None, None].expand(2, 20000, 1, bins), ipd, stim, 0.0)
    best = loss(posterior.log())
    for other in (posterior.roll(1, -1), posterior ** 2 / (posterior ** 2).sum(-1, keepdim=True),
                  torch.full_like(posterior, 1 / bins)):
        assert (loss(other.log()) > best).all()


def test_step_labels_target_trains_a_decoder_from_random_weights():
    cfg = load_config("best-labels", overrides=["stimulus.anf_per_ear=30", "model.hidden=32",
                                                "model.init=fan_in", "train.readout_only_epochs=0",
                                                "model.readout=sum", "train.target=step_labels",
                                                "model.bins_per_class=1", "model.tau_hidden_ms=2",
                                                "train.epochs=12", "train.train_batches=16",
                                                "train.batch_size=32", "train.lr=0.01"])
    data = random_ipd_input_signal(256, cfg.stimulus, torch.Generator().manual_seed(0))
    model = build_models(cfg.stimulus, cfg.model, [0])
    history = fit(model, cfg, [data], [torch.Generator().manual_seed(1)], progress=False)
    assert history[-1].loss < history[0].loss
    test = random_ipd_input_signal(512, cfg.stimulus, torch.Generator().manual_seed(2))
    with torch.no_grad():
        estimate = class_probabilities(model(test.spikes).scores.softmax(-1), 12)[0].argmax(-1)
    error = (estimate - discretise(test.ipd, cfg.stimulus)).abs().float().mean()
    assert error < 2.0  # classes off on average; a constant guess is 3 off


def test_soft_labels_narrow_to_the_true_bin_and_spread_to_its_neighbours(gen):
    stim = load_config("best").stimulus
    logp = torch.randn(2, 6, 60, generator=gen).log_softmax(-1)
    ipd = (torch.rand(6, generator=gen) - 0.5) * torch.pi
    torch.testing.assert_close(losses.soft_bin_nll(logp, ipd, stim, 1e-4), losses.bin_nll(logp, ipd, stim))
    true_bin = discretise(ipd, stim, 60)
    sharp = torch.full((1, 6, 60), -30.0).scatter(-1, true_bin[None, :, None], 0.0).log_softmax(-1)
    spread = torch.full((1, 6, 60), torch.e ** -30)  # the same floor elsewhere
    for shift in (-1, 0, 1):  # the true bin and both neighbours (clamped at the ends)
        spread.scatter_(-1, (true_bin + shift).clamp(0, 59)[None, :, None], 1.0)
    spread = (spread / spread.sum(-1, keepdim=True)).log()
    # a 3-deg Gaussian (one bin) rewards the neighbours: betting everything on the true bin costs more
    assert (losses.soft_bin_nll(spread, ipd, stim, 0.05) < losses.soft_bin_nll(sharp, ipd, stim, 0.05)).all()


@pytest.mark.parametrize("overrides, needle", [
    (["train.label_window_steps=10"], r"label_window_steps \(10\) only matters with target = 'step_labels'"),
    (["model.readout=sum", "train.target=step_labels", "train.label_window_steps=101"],
     r"train.label_window_steps \(101\) must be at most the stimulus.s 100 steps"),
    (["train.target=step_labels"], r"train.target = 'step_labels' needs model.readout = 'sum'"),
])
def test_step_label_settings_that_cannot_work_are_refused_in_one_line(overrides, needle):
    with pytest.raises(SpikelocError, match=needle) as e:
        load_config("best-labels-templates", overrides=overrides)
    assert "\n" not in str(e.value)
