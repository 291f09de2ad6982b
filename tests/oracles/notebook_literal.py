"""A literal transcription of the source notebook's spiking model (the oracle for tests and benchmarks).

Only the globals became arguments; the arithmetic and loop are the notebook's, line for line.
"""

import numpy as np
import torch
import torch.nn as nn

ms = 1e-3


def make_surrogate(beta):
    class SurrGradSpike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            out = torch.zeros_like(input)
            out[input > 0] = 1.0
            return out

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            grad = grad_output*beta*torch.sigmoid(beta*input)*(1-torch.sigmoid(beta*input))
            return grad

    return SurrGradSpike.apply


def snn(input_spikes, W1, W2, tau=20*ms, dt=1*ms, beta=5, batch_size=None):
    spike_fn = make_surrogate(beta)
    batch_size = input_spikes.shape[0] if batch_size is None else batch_size
    duration_steps = input_spikes.shape[1]
    num_hidden, num_classes = W2.shape
    device, dtype = input_spikes.device, input_spikes.dtype
    # First layer: input to hidden
    v = torch.zeros((batch_size, num_hidden), device=device, dtype=dtype)
    s = torch.zeros((batch_size, num_hidden), device=device, dtype=dtype)
    s_rec = [s]
    h = torch.einsum("abc,cd->abd", (input_spikes, W1))
    alpha = np.exp(-dt/tau)
    for t in range(duration_steps - 1):
        new_v = (alpha*v + h[:, t, :])*(1-s)  # multiply by 0 after a spike
        s = spike_fn(v-1)  # threshold of 1
        v = new_v
        s_rec.append(s)
    s_rec = torch.stack(s_rec, dim=1)
    # Second layer: hidden to output
    v = torch.zeros((batch_size, num_classes), device=device, dtype=dtype)
    s = torch.zeros((batch_size, num_classes), device=device, dtype=dtype)
    v_rec = [v]
    h = torch.einsum("abc,cd->abd", (s_rec, W2))
    alpha = np.exp(-dt/tau)
    for t in range(duration_steps - 1):
        v = alpha*v + h[:, t, :]
        v_rec.append(v)
    v_rec = torch.stack(v_rec, dim=1)
    # Return recorded membrane potential of output
    return v_rec


def init_weight_matrices(input_size, num_hidden, num_classes, device=None, dtype=torch.float):
    """The notebook's initialisation, fan-in taken from the membrane-only W (input_size x num_classes)."""
    W = nn.Parameter(torch.empty((input_size, num_classes), device=device, dtype=dtype, requires_grad=True))
    W1 = nn.Parameter(torch.empty((input_size, num_hidden), device=device, dtype=dtype, requires_grad=True))
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(W)
    bound = 1 / np.sqrt(fan_in)
    nn.init.uniform_(W1, -bound, bound)
    W2 = nn.Parameter(torch.empty((num_hidden, num_classes), device=device, dtype=dtype, requires_grad=True))
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(W)
    bound = 1 / np.sqrt(fan_in)
    nn.init.uniform_(W2, -bound, bound)
    return W1, W2
