"""The fast paths against the plain-PyTorch references: fused LIF kernels and the leaky integrator's
matrix form.

Spikes must be bit-identical; gradients (random upstream gradient) equal up to float32 rounding
in a different summation order. The triton kernels run here through triton's CPU interpreter.
"""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from spikeloc.errors import SpikelocError
from spikeloc.kernels import alif_numba, dispatch, lif_numba
from spikeloc.kernels.fused import LAG_AND_SHIFT, fused_lif
from spikeloc.kernels.fused_alif import fused_alif
from spikeloc.kernels.li_matrix import li_time_mean, li_trace
from spikeloc.neurons.alif import ALIFParams, alif_sequence
from spikeloc.neurons.li import LIParams, li_sequence
from spikeloc.neurons.lif import LIFParams, lif_sequence

SLOPE = 5.0
RULES = ["standard", "notebook", "immediate"]
RESETS = ["zero", "subtract"]


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
    if not out.requires_grad:  # the notebook rule with T <= 2: the reference spikes are constants
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


def params(alpha, rule, reset="zero", **kw):
    return LIFParams(alpha, rule, reset, surrogate_slope=SLOPE, **kw)


def assert_lif_matches_reference(h, alpha, upstream, rule, backend, reset="zero", **kw):
    ref, ref_grads = forward_backward(lambda h, a: lif_sequence(h, params(a, rule, reset, **kw)),
                                      h, alpha, upstream)
    out, grads = forward_backward(lambda h, a: fused_lif(h, params(a, rule, reset, **kw), backend),
                                  h, alpha, upstream)
    assert out.dtype == torch.float32 and torch.equal(out, ref)
    assert_close_at_scale(grads, ref_grads)
    return out


# (1, 2, 1000, 5): dt = 0.1 ms, 1,000 steps and 5 hidden units, as Quick_Start_250HzClassification
SHAPES = [(1, 4, 37, 5), (2, 3, 100, 30), (3, 1, 20, 1), (2, 5, 1, 4), (1, 2, 2, 3), (2, 2, 3, 6),
          (1, 2, 1000, 5)]


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("shape", SHAPES)
def test_numba_matches_reference(rule, reset, shape):
    h, alpha, up = make_case(shape, scale=0.8, seed=sum(shape))
    spikes = assert_lif_matches_reference(h, alpha, up, rule, lif_numba, reset)
    if shape[2] > 10:
        assert 0 < spikes.mean() < 0.5  # reset and lag are exercised


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("threshold, v_reset", [(1.6, 0.0), (1.0, 0.4), (0.7, -0.3)])
def test_numba_takes_the_threshold_and_reset_value(rule, reset, threshold, v_reset):
    h, alpha, up = make_case((2, 3, 60, 6), scale=threshold, seed=11)
    spikes = assert_lif_matches_reference(h, alpha, up, rule, lif_numba, reset, threshold=threshold,
                                          v_reset=v_reset)
    assert 0 < spikes.mean() < 0.6


@pytest.mark.parametrize("rule", RULES)
def test_numba_without_alpha_grad(rule):
    h, alpha, up = make_case((2, 3, 40, 7), scale=0.8, seed=1, alpha_grad=False)
    assert_lif_matches_reference(h, alpha, up, rule, lif_numba)


def test_numba_takes_strided_currents():
    """``models.stack.project`` hands in ``(K, B, T, H)`` as a permuted view of ``(B, T, K, H)``
    when K > 1."""
    h, alpha, up = make_case((2, 3, 30, 5), scale=0.8, seed=8)
    h = h.detach().permute(1, 2, 0, 3).contiguous().permute(2, 0, 1, 3).requires_grad_()
    assert not h.is_contiguous()
    assert_lif_matches_reference(h, alpha, up, "standard", lif_numba)


@pytest.mark.parametrize("rule", RULES)
def test_numba_tiny_input_never_spikes(rule):
    h, alpha, up = make_case((2, 3, 50, 8), scale=1e-3, seed=2)
    assert assert_lif_matches_reference(h, alpha, up, rule, lif_numba).sum() == 0


@pytest.mark.parametrize("rule", RULES)
def test_numba_huge_input_spikes_as_often_as_reset_allows(rule):
    h, alpha, up = make_case((2, 3, 48, 8), scale=1.0, seed=3)
    h = (h.detach().abs() * 1e4 + 10).requires_grad_()  # every step far above threshold
    spikes = assert_lif_matches_reference(h, alpha, up, rule, lif_numba)
    # reset by multiplication silences the step after a spike (standard: 1010...) or, lagging
    # by two, the two steps after a pair (notebook: 0011 0011...): half the steps at most;
    # immediate resets only the membrane, so the next input alone crosses the threshold again
    assert spikes.mean() == (1.0 if rule == "immediate" else 0.5)


@pytest.mark.parametrize("rule", RULES)
def test_fused_readout_gradient_through_sum(rule):
    """``readout='count'`` sums spikes over time: a stride-0 upstream gradient."""
    h, alpha, _ = make_case((2, 3, 30, 4), scale=0.8, seed=4)
    ref = torch.autograd.grad(lif_sequence(h, params(alpha, rule)).sum(-2).square().sum(), (h, alpha))
    fused = dispatch.lif(h, params(alpha, rule), "fused")
    out = torch.autograd.grad(fused.sum(-2).square().sum(), (h, alpha))
    assert_close_at_scale(out, ref)


@pytest.mark.parametrize("rule", RULES)
def test_matrix_integrator_matches_reference(rule):
    h, alpha, up = make_case((2, 3, 100, 12), scale=1.0, seed=6)
    ref, ref_grads = forward_backward(lambda h, a: li_sequence(h, LIParams(a, rule)), h, alpha, up)
    out, grads = forward_backward(lambda h, a: li_trace(h, LIParams(a, rule)), h, alpha, up)
    assert_close_at_scale([out, *grads], [ref, *ref_grads])


@pytest.mark.parametrize("rule", ["standard", "notebook"])
def test_mean_readout_is_the_time_mean_of_the_trace(gen, rule):
    h = torch.randn(2, 5, 37, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    alpha = torch.rand(2, 4, generator=gen, dtype=torch.float64).mul(0.9).add(0.05).requires_grad_()
    ref = li_sequence(h, LIParams(alpha, rule)).mean(-2)
    out = li_time_mean(h, LIParams(alpha, rule))
    torch.testing.assert_close(out, ref)
    up = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad(out, (h, alpha), up), torch.autograd.grad(ref, (h, alpha), up),
                    strict=True):
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------- triton, without a GPU

def load_lif_triton(monkeypatch, interpret: bool):
    """A fresh copy of :mod:`spikeloc.kernels.lif_triton`; ``interpret``: kernels run on CPU tensors."""
    monkeypatch.setenv("TRITON_INTERPRET", "1" if interpret else "0")  # read when the kernels are decorated
    pytest.importorskip("triton")
    name = f"spikeloc.kernels._lif_triton_{'interpreted' if interpret else 'compiled'}"
    spec = importlib.util.spec_from_file_location(name, Path(dispatch.__file__).with_name("lif_triton.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("shape", [(2, 3, 24, 7), (1, 2, 1, 3), (1, 2, 2, 3), (1, 1, 3, 2)])
def test_triton_matches_reference(monkeypatch, rule, reset, shape):
    lif_triton = load_lif_triton(monkeypatch, interpret=True)
    h, alpha, up = make_case(shape, scale=0.8, seed=sum(shape))
    spikes = assert_lif_matches_reference(h, alpha, up, rule, lif_triton, reset)
    if shape[2] > 10:
        assert spikes.sum() > 0


@pytest.mark.parametrize("rule", RULES)
def test_triton_takes_the_threshold_and_reset_value(monkeypatch, rule):
    lif_triton = load_lif_triton(monkeypatch, interpret=True)
    h, alpha, up = make_case((1, 2, 30, 5), scale=1.4, seed=12)
    for reset in RESETS:
        spikes = assert_lif_matches_reference(h, alpha, up, rule, lif_triton, reset, threshold=1.4,
                                              v_reset=0.3)
        assert spikes.sum() > 0


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("subtract", [False, True])
def test_triton_compiles_for_sm90_without_fma(monkeypatch, rule, subtract):
    """The interpreter skips compilation; this builds the real sm_90 code (no GPU needed) and checks
    that ``alpha * w + h`` is not contracted to an FMA, which would round differently from the reference."""
    lif_triton = load_lif_triton(monkeypatch, interpret=False)
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile

    lag, shift = LAG_AND_SHIFT[rule]
    ints = dict.fromkeys(["lanes", "batch", "T", "H", "steps"], "i32")
    floats = dict.fromkeys(["theta", "v_reset"], "fp32")
    consts = {"LAG": lag, "SHIFT": shift, "SUBTRACT": subtract, "BLOCK": lif_triton.BLOCK}
    signatures = {
        lif_triton._forward_kernel: dict.fromkeys(["h_ptr", "alpha_ptr", "out_ptr", "u_ptr"], "*fp32")
        | floats | ints,
        lif_triton._backward_kernel: dict.fromkeys(["g_ptr", "u_ptr", "out_ptr", "alpha_ptr", "gh_ptr",
                                                    "ga_ptr"], "*fp32") | {"slope": "fp32"} | floats | ints,
    }
    for kernel, signature in signatures.items():
        source = ASTSource(kernel, signature | dict.fromkeys(consts, "constexpr"), constexprs=consts)
        compiled = compile(source, target=GPUTarget("cuda", 90, 32),
                           options={"num_warps": 1, "enable_fp_fusion": False})
        assert compiled.asm["cubin"] and "fma" not in compiled.asm["ptx"]


# ---------------------------------------------------------------- dispatch

def test_engines_on_cpu():
    h, alpha, _ = make_case((1, 2, 5, 3), scale=0.8, seed=7)
    assert dispatch.fused_backend("cpu")[0] is lif_numba and dispatch.uses_fused("auto", h)
    assert type(dispatch.lif(h, params(alpha, "standard"), "auto").grad_fn).__name__ == "FusedLIFBackward"
    assert type(dispatch.lif(h, params(alpha, "standard"), "reference").grad_fn).__name__ == "StackBackward0"
    # no fused kernel there: auto takes the reference
    assert not dispatch.uses_fused("auto", h.to("meta"))
    assert not dispatch.uses_fused("auto", h.double())  # the kernels are float32


def test_fused_unavailable_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(dispatch.FUSED_LIF, "cuda", None)  # as without triton installed
    assert dispatch.fused_backend("cuda") == (None, "triton not installed")
    with pytest.raises(SpikelocError, match=r"^model.engine: 'fused' is not available on cuda "
                                            r"\(triton not installed\); allowed: auto, reference$"):
        dispatch.check_engine("fused", "cuda")


def test_fused_lif_refuses_alpha_of_another_stack():
    h, alpha, _ = make_case((3, 2, 5, 4), scale=0.8, seed=9)
    with pytest.raises(ValueError, match=r"alpha \(K, N\); got \(3, 2, 5, 4\) and \(1, 4\)"):
        fused_lif(h, params(alpha[:1], "standard"), lif_numba)


@pytest.mark.parametrize("backend", ["numba", "triton"])
@pytest.mark.parametrize("rule", RULES)
def test_fused_surrogate_is_cut_off_far_below_threshold(monkeypatch, rule, backend):
    """Membranes far below threshold (the cut-off of the surrogate) get exactly the reference's gradient,
    0, never a subnormal float."""
    kernel = lif_numba if backend == "numba" else load_lif_triton(monkeypatch, interpret=True)
    h, alpha, up = make_case((1, 3, 30, 6), scale=0.8, seed=7)
    with torch.no_grad():
        h[..., :3] -= 10.0  # three neurons sink below -18: slope x (v - 1) far below the cut-off
    out = assert_lif_matches_reference(h, alpha, up, rule, kernel)
    assert out[..., 3:].sum() > 0  # the others still spike
    _, (grad_h, _) = forward_backward(lambda h, a: fused_lif(h, params(a, rule), kernel), h, alpha, up)
    deep = grad_h[0, :, 20:, :3]  # late steps, membrane long past the cut-off
    assert torch.equal(deep, torch.zeros_like(deep))
    tiny = torch.finfo(torch.float32).tiny
    assert not ((grad_h != 0) & (grad_h.abs() < tiny)).any()


# ---------------------------------------------------------------- ALIF (adaptive threshold)

def alif_params(alpha, reset="zero", **kw):
    return ALIFParams(alpha, "notebook", reset, surrogate_slope=SLOPE, adapt_decay=math.exp(-0.5),
                      adapt_strength=kw.pop("adapt_strength", 1.3), **kw)


def assert_alif_matches_reference(h, alpha, upstream, backend, reset="zero", **kw):
    ref, ref_grads = forward_backward(lambda h, a: alif_sequence(h, alif_params(a, reset, **kw)), h, alpha,
                                      upstream)
    out, grads = forward_backward(lambda h, a: fused_alif(h, alif_params(a, reset, **kw), backend), h, alpha,
                                  upstream)
    assert out.dtype == torch.float32 and torch.equal(out, ref)
    assert_close_at_scale(grads, ref_grads)
    return out


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("shape", SHAPES)
def test_numba_alif_matches_reference(reset, shape):
    h, alpha, up = make_case(shape, scale=0.8, seed=sum(shape) + 1)
    spikes = assert_alif_matches_reference(h, alpha, up, alif_numba, reset)
    if shape[2] > 10:
        assert 0 < spikes.mean() < 0.5


@pytest.mark.parametrize("reset", RESETS)
def test_numba_alif_takes_threshold_reset_value_and_strength(reset):
    h, alpha, up = make_case((2, 3, 60, 6), scale=1.5, seed=13)
    spikes = assert_alif_matches_reference(h, alpha, up, alif_numba, reset, threshold=1.2, v_reset=0.3,
                                           adapt_strength=2.5)
    assert 0 < spikes.mean() < 0.6


def test_alif_adapts_and_is_lif_without_strength():
    """The threshold rises with spikes: fewer spikes than the LIF on the same currents; strength 0 is the
    LIF."""
    h, alpha, _ = make_case((2, 3, 80, 6), scale=1.0, seed=14)
    lif_spikes = lif_sequence(h, params(alpha, "notebook"))
    assert torch.equal(alif_sequence(h, alif_params(alpha, adapt_strength=0.0)), lif_spikes)
    assert alif_sequence(h, alif_params(alpha, adapt_strength=3.0)).sum() < lif_spikes.sum()


def load_alif_triton(monkeypatch):
    load_lif_triton(monkeypatch, interpret=True)  # TRITON_INTERPRET set, triton present
    spec = importlib.util.spec_from_file_location("spikeloc.kernels._alif_triton_interpreted",
                                                  Path(dispatch.__file__).with_name("alif_triton.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("shape", [(2, 3, 24, 7), (1, 2, 1, 3), (1, 2, 2, 3), (1, 1, 3, 2)])
def test_triton_alif_matches_reference(monkeypatch, reset, shape):
    alif_triton = load_alif_triton(monkeypatch)
    h, alpha, up = make_case(shape, scale=0.8, seed=sum(shape) + 2)
    spikes = assert_alif_matches_reference(h, alpha, up, alif_triton, reset, v_reset=0.2 * (reset == "zero"))
    if shape[2] > 10:
        assert spikes.sum() > 0


@pytest.mark.parametrize("subtract", [False, True])
def test_triton_alif_compiles_for_sm90_without_fma(monkeypatch, subtract):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    pytest.importorskip("triton")
    spec = importlib.util.spec_from_file_location("spikeloc.kernels._alif_triton_compiled",
                                                  Path(dispatch.__file__).with_name("alif_triton.py"))
    alif_triton = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(alif_triton)
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile

    ints = dict.fromkeys(["lanes", "batch", "T", "H"], "i32")
    floats = dict.fromkeys(["theta", "v_reset", "rho", "gain", "beta"], "fp32")
    consts = {"SUBTRACT": subtract, "BLOCK": alif_triton.BLOCK}
    signatures = {
        alif_triton._forward_kernel: dict.fromkeys(["h_ptr", "alpha_ptr", "out_ptr", "v_ptr", "u_ptr",
                                                    "a_ptr"], "*fp32") | floats | ints,
        alif_triton._backward_kernel: dict.fromkeys(["g_ptr", "v_ptr", "u_ptr", "a_ptr", "out_ptr", "sig_ptr",
                                                     "alpha_ptr", "gh_ptr", "ga_ptr"], "*fp32")
        | {"slope": "fp32"} | floats | ints,
    }
    for kernel, signature in signatures.items():
        source = ASTSource(kernel, signature | dict.fromkeys(consts, "constexpr"), constexprs=consts)
        compiled = compile(source, target=GPUTarget("cuda", 90, 32),
                           options={"num_warps": 1, "enable_fp_fusion": False})
        assert compiled.asm["cubin"] and "fma" not in compiled.asm["ptx"]


def test_alif_engines():
    h, alpha, _ = make_case((1, 2, 5, 3), scale=0.8, seed=7)
    assert type(dispatch.lif(h, alif_params(alpha), "auto").grad_fn).__name__ == "FusedALIFBackward"
    standard = ALIFParams(alpha, "standard", "zero")
    with pytest.raises(SpikelocError, match=r"^model.engine: 'fused' is not available on cpu \(no fused "
                                            r"ALIF for update_rule 'standard'; it has one for notebook\); "
                                            r"allowed: auto, reference$"):
        dispatch.lif(h, standard, "fused")
    with pytest.warns(UserWarning, match="the ALIF layer runs the reference"):
        out = dispatch.lif(h, standard, "auto")
    assert torch.equal(out, alif_sequence(h, standard))
