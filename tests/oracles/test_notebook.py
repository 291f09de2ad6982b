"""The `notebook` update rule and initialisation against a literal transcription of the notebook's loop."""

import numpy as np
import pytest
import torch
from notebook_literal import init_weight_matrices, snn

from spikeloc.config import load_config
from spikeloc.kernels import lif_numba
from spikeloc.kernels.fused import fused_lif
from spikeloc.models import build_models
from spikeloc.neurons.li import LIParams, li_sequence
from spikeloc.neurons.lif import LIFParams


def loss_and_grads(scores, target, params):
    loss = torch.nn.functional.nll_loss(torch.log_softmax(scores, -1), target)
    return loss, torch.autograd.grad(loss, params)


@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_the_tutorial_network_is_the_notebooks(gen, engine):
    cfg = load_config("tutorial", overrides=[f"model.engine={engine}"])
    x = (torch.rand(8, cfg.stimulus.steps, cfg.stimulus.inputs, generator=gen) < 0.25).float()
    target = torch.randint(0, 12, (8,), generator=gen)
    W1, W2 = init_weight_matrices(cfg.stimulus.inputs, cfg.model.hidden, 12)
    W1.data *= 3  # stronger input: many spikes, so the reset and the lag matter
    model = build_models(cfg.stimulus, cfg.model, [0])
    model.W1.data[0] = W1.data
    model.W2.data[0] = W2.data
    expected = snn(x, W1, W2).mean(1)
    scores, spikes = model(x)
    assert spikes.sum() > 50
    torch.testing.assert_close(scores[0], expected, rtol=1e-5, atol=1e-6)
    _, (g1, g2) = loss_and_grads(expected, target, [W1, W2])
    _, (h1, h2) = loss_and_grads(scores[0], target, [model.W1, model.W2])
    torch.testing.assert_close(h1[0], g1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h2[0], g2, rtol=1e-5, atol=1e-6)


def test_the_fused_kernel_reproduces_the_notebook_loop():
    g = torch.Generator().manual_seed(5)
    batch, steps, inputs, hidden, classes = 4, 60, 20, 10, 6
    x = (torch.rand(batch, steps, inputs, generator=g) < 0.3).float()
    W1 = ((torch.rand(inputs, hidden, generator=g) - 0.3) * 0.8).requires_grad_()
    W2 = (torch.rand(hidden, classes, generator=g) - 0.5).requires_grad_()
    up = torch.randn(batch, steps, classes, generator=g)
    expected = snn(x, W1, W2)  # tau 20 ms, dt 1 ms, surrogate slope 5
    alpha = torch.full((1, hidden), np.exp(-1 / 20), dtype=torch.float32)
    spikes = fused_lif((x @ W1)[None], LIFParams(alpha, "notebook"), lif_numba)
    assert spikes.sum() > 20
    out = li_sequence(spikes @ W2, LIParams(alpha[:, :classes], "notebook"))[0]
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    for a, b in zip(torch.autograd.grad(out, (W1, W2), up), torch.autograd.grad(expected, (W1, W2), up),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * b.abs().max().item())
