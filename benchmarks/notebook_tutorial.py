"""The source notebook's whole script, "slow computer" setting, without plots: the end-to-end baseline.

Data generation in numpy as in the notebook, the membrane-only model and the spiking model
(``notebook_literal``: the notebook's own loop and initialisation), 10 epochs each, then the
train/test analysis (accuracy, absolute error, confusion matrix) and the weight re-ordering
and thresholding. Printing is kept, drawing is left out. Run from anywhere:

    .venv-bench/bin/python benchmarks/notebook_tutorial.py [--seed N]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "oracles"))
from notebook_literal import init_weight_matrices, snn  # the notebook's loop, transcribed

dtype = torch.float
device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")

ms = 1e-3
dt = 1 * ms
anf_per_ear = 100
envelope_power = 2
rate_max = 600
f = 20
duration = 0.1
duration_steps = int(np.round(duration / dt))
input_size = 2 * anf_per_ear
num_classes = 180 // 15
num_hidden = 30

# my_computer_is_slow = True
batch_size = 64
n_training_batches = 64
n_testing_batches = 32
num_samples = batch_size * n_training_batches
nb_epochs = 10
lr = 0.01


def input_signal(ipd):
    num_samples = len(ipd)
    T = np.arange(duration_steps) * dt
    phi = 2 * np.pi * (f * T + np.random.rand())  # one random offset for the whole set
    theta = np.zeros((num_samples, duration_steps, 2 * anf_per_ear))
    phase_delays = np.linspace(0, np.pi / 2, anf_per_ear)
    theta[:, :, :anf_per_ear] = phi[np.newaxis, :, np.newaxis] + phase_delays[np.newaxis, np.newaxis, :]
    theta[:, :, anf_per_ear:] = (phi[np.newaxis, :, np.newaxis] + phase_delays[np.newaxis, np.newaxis, :]
                                 + ipd[:, np.newaxis, np.newaxis])
    return np.random.rand(num_samples, duration_steps, 2 * anf_per_ear) < rate_max * dt * (
        0.5 * (1 + np.sin(theta))) ** envelope_power


def random_ipd_input_signal(num_samples):
    ipd = np.random.rand(num_samples) * np.pi - np.pi / 2
    spikes = input_signal(ipd)
    return torch.tensor(ipd, device=device, dtype=dtype), torch.tensor(spikes, device=device, dtype=dtype)


def discretise(ipds):
    return ((ipds + np.pi / 2) * num_classes / np.pi).long()


def continuise(ipd_indices):
    return (ipd_indices + 0.5) / num_classes * np.pi - np.pi / 2


def init_weight_matrix():
    W = nn.Parameter(torch.empty((input_size, num_classes), device=device, dtype=dtype, requires_grad=True))
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(W)
    bound = 1 / np.sqrt(fan_in)
    nn.init.uniform_(W, -bound, bound)
    return W


def membrane_only(input_spikes, W, tau=20 * ms):
    v = torch.zeros((batch_size, num_classes), device=device, dtype=dtype)
    v_rec = [v]
    h = torch.einsum("abc,cd->abd", (input_spikes, W))
    alpha = np.exp(-dt / tau)
    for t in range(duration_steps - 1):
        v = alpha * v + h[:, t, :]
        v_rec.append(v)
    return torch.stack(v_rec, dim=1)


def data_generator(ipds, spikes):
    perm = torch.randperm(spikes.shape[0])
    spikes = spikes[perm, :, :]
    ipds = ipds[perm]
    n, _, _ = spikes.shape
    for i in range(n // batch_size):
        yield spikes[i * batch_size:(i + 1) * batch_size, :, :], ipds[i * batch_size:(i + 1) * batch_size]


def train(run, params, readout):
    """The notebook's training loop; ``readout`` turns the output trace into class scores."""
    ipds, spikes = random_ipd_input_signal(num_samples)
    optimizer = torch.optim.Adam(params, lr=lr)
    log_softmax_fn = nn.LogSoftmax(dim=1)
    loss_fn = nn.NLLLoss()
    for e in range(nb_epochs):
        local_loss = []
        for x_local, y_local in data_generator(discretise(ipds), spikes):
            loss = loss_fn(log_softmax_fn(readout(run(x_local))), y_local)
            local_loss.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"Epoch {e + 1}: loss={np.mean(local_loss):.5f}")
    return ipds, spikes


def analyse(ipds, spikes, label, run):
    accs, ipd_true, ipd_est = [], [], []
    confusion = np.zeros((num_classes, num_classes))
    for x_local, y_local in data_generator(ipds, spikes):
        y_local_orig = y_local
        y_local = discretise(y_local)
        m = torch.sum(run(x_local), 1)
        _, am = torch.max(m, 1)
        for i, j in zip(y_local.detach().cpu().numpy(), am.detach().cpu().numpy(), strict=True):
            confusion[j, i] += 1
        ipd_true.append(y_local_orig.detach().cpu().numpy())
        ipd_est.append(continuise(am.detach().cpu().numpy()))
        accs.append(np.mean((y_local == am).detach().cpu().numpy()))
    abs_errors_deg = abs(np.hstack(ipd_true) - np.hstack(ipd_est)) * 180 / np.pi
    confusion /= np.sum(confusion, axis=0)[np.newaxis, :]
    print(f"{label} classifier accuracy: {100 * np.mean(accs):.1f}%")
    print(f"{label} absolute error: {np.mean(abs_errors_deg):.1f} deg")


def train_and_analyse(run, params, readout):
    ipds, spikes = train(run, params, readout)
    analyse(ipds, spikes, "Train", run)
    ipds_test, spikes_test = random_ipd_input_signal(batch_size * n_testing_batches)
    analyse(ipds_test, spikes_test, "Test", run)


def threshold_weights(W1, W2, th_percent=25):
    """The notebook's figure data: hidden units re-ordered by weighted mean input, W1 @ W2 thresholded."""
    w1, w2 = W1.detach().cpu().numpy(), W2.detach().cpu().numpy()
    A = np.arange(w1.shape[0])[:, None]
    weighted_mean = np.mean((A * w1), axis=0)
    weighted_mean[np.max(np.abs(w1), axis=0) < .5] = np.inf
    order = np.argsort(weighted_mean)
    w1_w2_raw = w1[:, order] @ w2[order, :]
    return (np.where(w1_w2_raw > np.percentile(w1_w2_raw, 100 - th_percent), 1.0, 0.0)
            + np.where(w1_w2_raw < np.percentile(w1_w2_raw, th_percent), -1.0, 0.0))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    seed = ap.parse_args().seed
    np.random.seed(seed)
    torch.manual_seed(seed)

    print("Membrane only")
    W = init_weight_matrix()
    train_and_analyse(lambda x: membrane_only(x, W), [W], lambda out: torch.sum(out, 1) * 0.01)

    print("Spiking model")
    W1, W2 = init_weight_matrices(input_size, num_hidden, num_classes, device=device, dtype=dtype)
    train_and_analyse(lambda x: snn(x, W1, W2, batch_size=batch_size), [W1, W2],
                      lambda out: torch.mean(out, 1))
    threshold_weights(W1, W2)


if __name__ == "__main__":
    main()
