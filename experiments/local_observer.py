"""How much is lost by judging each short window of the stimulus alone?

A network whose hidden neurons forget within a few milliseconds and whose readout sums over time
can at best add up one log-likelihood per window, each with the tone's phase marginalised on its
own (the phase is not tied across windows). This script computes the accuracy of that "local"
observer for windows of k steps, with the exact Bernoulli likelihood on a phase grid of 200 points
per cycle (IPD grid 1.8 deg). If k = 1 is as good as the ideal observer, a feedforward layer of
short-memory neurons is enough in principle, and the remaining gap is approximation.

    .venv/bin/python experiments/local_observer.py [samples]     (about 80 s for 2048 on 2 cores)

The exact ideal observer (`spikeloc bound`) is printed last for the same samples. A grid of 100
points per cycle is too coarse: it costs about a point at every k (93.2 % at k = 1 on the default
2048 samples), which once made the windows look lossy.
"""

import math
import sys

import torch

from spikeloc.config import StimulusConfig
from spikeloc.evaluation import evaluate
from spikeloc.observer import IdealObserver
from spikeloc.task.bins import discretise
from spikeloc.task.likelihood import log_likelihood_tables
from spikeloc.task.stimulus import random_ipd_input_signal

M = 200  # phase grid points per cycle: f*dt = 1/50 cycles, so one step is 4 grid points


def main(samples: int) -> None:
    cfg = StimulusConfig(offset="per_sample")
    data = random_ipd_input_signal(samples, cfg, torch.Generator().manual_seed(1))
    x, fibres = data.spikes.double(), cfg.anf_per_ear
    phase = torch.arange(cfg.steps, dtype=torch.float64) * cfg.dt * cfg.f  # one table row per step
    log_odds, silence = log_likelihood_tables(cfg, phase, M)
    log_odds = log_odds.view(cfg.steps, fibres, M)
    # log-likelihood of each ear's spikes in each step for that ear's phase psi: (samples, steps, M)
    left = torch.einsum("nta,tam->ntm", x[:, :, :fibres], log_odds) + silence
    right = torch.einsum("nta,tam->ntm", x[:, :, fibres:], log_odds) + silence
    shifts = torch.arange(-M // 4, M // 4 + 1)  # IPD = shift * 360/M deg, -90..90
    ipd_grid = shifts.double() * 2 * math.pi / M
    # grid points to classes; a point on a bin edge counts half to each side
    edges = torch.linspace(*cfg.ipd_range, cfg.num_classes + 1, dtype=torch.float64)
    to_class = ((ipd_grid[:, None] > edges[None, :-1] - 1e-9).double()
                * (ipd_grid[:, None] < edges[None, 1:] + 1e-9).double())
    to_class = to_class / to_class.sum(1, keepdim=True)
    true_class = discretise(data.ipd, cfg)
    for k in [1, 2, 5, 10, 25, 50, 100]:
        windows = cfg.steps // k
        L = left[:, :windows * k].unflatten(1, (windows, k)).sum(2)
        R = right[:, :windows * k].unflatten(1, (windows, k)).sum(2)
        log_post = torch.stack([torch.logsumexp(L + R.roll(-s, dims=-1), -1).sum(1)
                                for s in shifts.tolist()], 1)
        post = (log_post - log_post.logsumexp(1, keepdim=True)).exp()
        accuracy = ((post @ to_class).argmax(1) == true_class).double().mean().item()
        print(f"window {k:3d} steps ({windows:3d} windows): accuracy {100 * accuracy:.1f} %", flush=True)
    exact = evaluate(IdealObserver(cfg), data, cfg)[0].accuracy
    print(f"exact ideal observer (spikeloc bound) on the same samples: accuracy {100 * exact:.1f} %")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2048)
