import pytest
import torch

from spikeloc.neurons import leaky_integrator_mean, leaky_integrator_reference


@pytest.mark.parametrize("semantics", ["standard", "notebook"])
def test_mean_readout_is_the_time_mean_of_the_trace(gen, semantics):
    h = torch.randn(2, 5, 37, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    alpha = torch.rand(2, 4, generator=gen, dtype=torch.float64).mul(0.9).add(0.05).requires_grad_()
    ref = leaky_integrator_reference(h, alpha[:, None, :], semantics).mean(-2)
    out = leaky_integrator_mean(h, alpha, semantics)
    torch.testing.assert_close(out, ref)
    up = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    g_ref = torch.autograd.grad(ref, (h, alpha), up)
    g_out = torch.autograd.grad(out, (h, alpha), up)
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b)
