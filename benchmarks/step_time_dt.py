"""Time of one training step (forward, backward, Adam; 64 stimuli, one model, 2 threads) at dt = 1 ms and at
dt = 0.1 ms (1,000 steps, as Quick_Start_250HzClassification), and with ALIF hidden neurons
(Dynamic_threshold), with the fused and the reference engine.

    .venv/bin/python benchmarks/step_time_dt.py

Median of 10 steps after 3 warm-up steps; the network is `tutorial`'s with the given hidden layer.
"""

from __future__ import annotations

import statistics
import time

import torch

import spikeloc
from spikeloc.models import build_models
from spikeloc.task.stimulus import random_ipd_input_signal

CASES = [(1e-3, 30, "lif"), (1e-4, 30, "lif"), (1e-4, 5, "lif"), (1e-3, 30, "alif")]  # (dt s, hidden, neuron)


def step_ms(dt: float, hidden: int, neuron: str, engine: str) -> float:
    cfg = spikeloc.load_config("tutorial", dt=dt, hidden=hidden, neuron=neuron, engine=engine)
    model = build_models(cfg.stimulus, cfg.model, [0])
    data = random_ipd_input_signal(64, cfg.stimulus, torch.Generator().manual_seed(0))
    x, adam = data.spikes.float(), torch.optim.Adam(model.parameters(), lr=cfg.train.lr)

    def step() -> float:
        start = time.perf_counter()
        adam.zero_grad()
        model.loss(x, data.ipd, cfg.train).sum().backward()
        adam.step()
        return time.perf_counter() - start
    for _ in range(3):
        step()
    return 1e3 * statistics.median(step() for _ in range(10))


def main() -> None:
    torch.set_num_threads(2)
    for dt, hidden, neuron in CASES:
        steps = round(0.1 / dt)
        times = {engine: step_ms(dt, hidden, neuron, engine) for engine in ("fused", "reference")}
        print(f"dt {dt * 1e3:g} ms ({steps} steps), {hidden} hidden {neuron.upper()}: "
              f"fused {times['fused']:.1f} ms, reference {times['reference']:.1f} ms per step of 64")


if __name__ == "__main__":
    main()
