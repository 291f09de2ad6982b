"""The fused LIF kernels and the Toeplitz readout against the plain-PyTorch reference.

Spikes must be bit-identical; gradients (random upstream gradient) equal up to float32 rounding
in a different summation order. The triton kernels run here through triton's CPU interpreter.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from notebook_literal import snn

from spikeloc import kernels
from spikeloc.errors import SpikelocError
from spikeloc.kernels import lif_numba
from spikeloc.kernels.fused import SEMANTICS as SEMANTICS_LAG_SHIFT
from spikeloc.kernels.fused import fused_lif
from spikeloc.neurons import leaky_integrator_reference, lif_reference

BETA = 5.0
SEMANTICS = ["standard", "notebook", "immediate"]


def make_case(shape, scale, seed, alpha_grad=True):
    """Currents in [-0.2, 1] * scale, alpha per neuron in [0.45, 0.95], a random upstream gradient."""
    g = torch.Generator().manual_seed(seed)
    K, _, _, H = shape
    h = ((torch.rand(shape, generator=g) * 1.2 - 0.2) * scale).requires_grad_()
    alpha = (torch.rand(K, H, generator=g) * 0.5 + 0.45).requires_grad_(alpha_grad)
    return h, alpha, torch.randn(shape, generator=g)


def forward_backward(fn, h, alpha, upstream):
    """Output and gradients wrt (h, alpha); zeros where the output does not depend on them at all."""
    out = fn(h, alpha)
    inputs = (h, alpha) if alpha.requires_grad else (h,)
    if not out.requires_grad:  # notebook semantics with T <= 2: the reference spikes are constants
        return out, [torch.zeros_like(x) for x in inputs]
    grads = torch.autograd.grad(out, inputs, upstream, allow_unused=True, materialize_grads=True)
    return out, list(grads)


def assert_close_at_scale(actual, expected):
    for a, e in zip(actual, expected, strict=True):
        # float32 sums in another order: an element that nearly cancels carries the rounding of its
        # large terms, so the absolute slack follows the largest value (LIF gradients over 600 random
        # cases: at most 1.6e-6 of it, and both sides equally far from a float64 reference)
        atol = 1e-5 * max(e.abs().max().item(), 0.1)
        torch.testing.assert_close(a.double(), e.double(), rtol=1e-5, atol=atol)


def assert_lif_matches_reference(h, alpha, upstream, semantics, backend):
    ref, ref_grads = forward_backward(lambda h, a: lif_reference(h, a[:, None, :], BETA, semantics),
                                      h, alpha, upstream)
    out, grads = forward_backward(lambda h, a: fused_lif(h, a, BETA, semantics, backend), h, alpha, upstream)
    assert out.dtype == torch.float32 and torch.equal(out, ref)
    assert_close_at_scale(grads, ref_grads)
    return out


SHAPES = [(1, 4, 37, 5), (2, 3, 100, 30), (3, 1, 20, 1), (2, 5, 1, 4), (1, 2, 2, 3), (2, 2, 3, 6)]


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("shape", SHAPES)
def test_numba_matches_reference(semantics, shape):
    h, alpha, up = make_case(shape, scale=0.8, seed=sum(shape))
    spikes = assert_lif_matches_reference(h, alpha, up, semantics, lif_numba)
    if shape[2] > 10:
        assert 0 < spikes.mean() < 0.5  # reset and lag are exercised


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_numba_without_alpha_grad(semantics):
    h, alpha, up = make_case((2, 3, 40, 7), scale=0.8, seed=1, alpha_grad=False)
    assert_lif_matches_reference(h, alpha, up, semantics, lif_numba)


def test_numba_takes_strided_currents():
    """``model.project`` hands in ``(K, B, T, H)`` as a permuted view of ``(B, T, K, H)`` when K > 1."""
    h, alpha, up = make_case((2, 3, 30, 5), scale=0.8, seed=8)
    h = h.detach().permute(1, 2, 0, 3).contiguous().permute(2, 0, 1, 3).requires_grad_()
    assert not h.is_contiguous()
    assert_lif_matches_reference(h, alpha, up, "standard", lif_numba)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_numba_tiny_input_never_spikes(semantics):
    h, alpha, up = make_case((2, 3, 50, 8), scale=1e-3, seed=2)
    assert assert_lif_matches_reference(h, alpha, up, semantics, lif_numba).sum() == 0


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_numba_huge_input_spikes_as_often_as_reset_allows(semantics):
    h, alpha, up = make_case((2, 3, 48, 8), scale=1.0, seed=3)
    h = (h.detach().abs() * 1e4 + 10).requires_grad_()  # every step far above threshold
    spikes = assert_lif_matches_reference(h, alpha, up, semantics, lif_numba)
    # reset by multiplication silences the step after a spike (standard: 1010...) or, lagging
    # by two, the two steps after a pair (notebook: 0011 0011...): half the steps at most;
    # immediate resets only the membrane, so the next input alone crosses the threshold again
    assert spikes.mean() == (1.0 if semantics == "immediate" else 0.5)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_fused_readout_gradient_through_sum(semantics):
    """``readout='count'`` sums spikes over time: a stride-0 upstream gradient."""
    h, alpha, _ = make_case((2, 3, 30, 4), scale=0.8, seed=4)
    ref = torch.autograd.grad(lif_reference(h, alpha[:, None, :], BETA, semantics).sum(-2).square().sum(),
                              (h, alpha))
    fused = kernels.lif(h, alpha, BETA, semantics, "fused")
    out = torch.autograd.grad(fused.sum(-2).square().sum(), (h, alpha))
    assert_close_at_scale(out, ref)


def test_notebook_semantics_reproduce_the_notebook_loop():
    g = torch.Generator().manual_seed(5)
    batch, steps, inputs, hidden, classes = 4, 60, 20, 10, 6
    x = (torch.rand(batch, steps, inputs, generator=g) < 0.3).float()
    W1 = ((torch.rand(inputs, hidden, generator=g) - 0.3) * 0.8).requires_grad_()
    W2 = (torch.rand(hidden, classes, generator=g) - 0.5).requires_grad_()
    up = torch.randn(batch, steps, classes, generator=g)
    expected = snn(x, W1, W2)  # tau 20 ms, dt 1 ms, beta 5
    alpha = torch.full((1, hidden), np.exp(-1 / 20), dtype=torch.float32)
    spikes = fused_lif((x @ W1)[None], alpha, BETA, "notebook", lif_numba)[0]
    assert spikes.sum() > 20
    out = leaky_integrator_reference(spikes @ W2, alpha[0, :classes], "notebook")
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    assert_close_at_scale(torch.autograd.grad(out, (W1, W2), up), torch.autograd.grad(expected, (W1, W2), up))


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_toeplitz_integrator_matches_reference(semantics):
    h, alpha, up = make_case((2, 3, 100, 12), scale=1.0, seed=6)
    ref, ref_grads = forward_backward(lambda h, a: kernels.integrate(h, a, semantics, "reference"),
                                      h, alpha, up)
    out, grads = forward_backward(lambda h, a: kernels.integrate(h, a, semantics, "fused"), h, alpha, up)
    assert_close_at_scale([out, *grads], [ref, *ref_grads])


# ---------------------------------------------------------------- triton, without a GPU

def load_lif_triton(monkeypatch, interpret: bool):
    """A fresh copy of :mod:`spikeloc.kernels.lif_triton`; ``interpret``: kernels run on CPU tensors."""
    monkeypatch.setenv("TRITON_INTERPRET", "1" if interpret else "0")  # read when the kernels are decorated
    pytest.importorskip("triton")
    name = f"spikeloc.kernels._lif_triton_{'interpreted' if interpret else 'compiled'}"
    spec = importlib.util.spec_from_file_location(name, Path(kernels.__file__).with_name("lif_triton.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("semantics", SEMANTICS)
@pytest.mark.parametrize("shape", [(2, 3, 24, 7), (1, 2, 1, 3), (1, 2, 2, 3), (1, 1, 3, 2)])
def test_triton_matches_reference(monkeypatch, semantics, shape):
    lif_triton = load_lif_triton(monkeypatch, interpret=True)
    h, alpha, up = make_case(shape, scale=0.8, seed=sum(shape))
    spikes = assert_lif_matches_reference(h, alpha, up, semantics, lif_triton)
    if shape[2] > 10:
        assert spikes.sum() > 0


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_triton_compiles_for_sm90_without_fma(monkeypatch, semantics):
    """The interpreter skips compilation; this builds the real sm_90 code (no GPU needed) and checks
    that ``alpha * w + h`` is not contracted to an FMA, which would round differently from the reference."""
    lif_triton = load_lif_triton(monkeypatch, interpret=False)
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile

    lag, shift = SEMANTICS_LAG_SHIFT[semantics]
    ints = dict.fromkeys(["lanes", "batch", "T", "H", "steps"], "i32")
    consts = {"LAG": lag, "SHIFT": shift, "BLOCK": lif_triton.BLOCK}
    signatures = {
        lif_triton._forward_kernel: dict.fromkeys(["h_ptr", "alpha_ptr", "out_ptr", "u_ptr"], "*fp32") | ints,
        lif_triton._backward_kernel: dict.fromkeys(["g_ptr", "u_ptr", "out_ptr", "alpha_ptr", "gh_ptr",
                                                    "ga_ptr"], "*fp32") | {"beta": "fp32"} | ints,
    }
    for kernel, signature in signatures.items():
        source = ASTSource(kernel, signature | dict.fromkeys(consts, "constexpr"), constexprs=consts)
        compiled = compile(source, target=GPUTarget("cuda", 90, 32),
                           options={"num_warps": 1, "enable_fp_fusion": False})
        assert compiled.asm["cubin"] and "fma" not in compiled.asm["ptx"]


# ---------------------------------------------------------------- dispatch

def test_engines_on_cpu():
    h, alpha, _ = make_case((1, 2, 5, 3), scale=0.8, seed=7)
    assert kernels.fused_available("cpu") and kernels.resolve_engine("auto", torch.device("cpu")) == "fused"
    assert type(kernels.lif(h, alpha, BETA, "standard", "fused").grad_fn).__name__ == "FusedLIFBackward"
    assert type(kernels.lif(h, alpha, BETA, "standard", "reference").grad_fn).__name__ == "StackBackward0"


def test_fused_unavailable_is_a_clear_error(monkeypatch):
    assert not kernels.fused_available("meta")
    assert kernels.resolve_engine("auto", "meta") == "reference"
    # pretend triton is not installed
    monkeypatch.setitem(sys.modules, "triton", None)
    monkeypatch.delitem(sys.modules, "spikeloc.kernels.lif_triton", raising=False)
    kernels._backend.cache_clear()
    try:
        assert not kernels.fused_available("cuda")
        with pytest.raises(SpikelocError, match=r"^model.engine: 'fused' is not available on cuda "
                                                r"\(triton not installed\); allowed: auto, reference$"):
            kernels.resolve_engine("fused", "cuda")
    finally:
        kernels._backend.cache_clear()
