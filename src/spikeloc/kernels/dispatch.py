"""Engines: each neuron's reference (:mod:`spikeloc.neurons`) or its fast path, chosen per call.

``engine`` is ``"reference"``, ``"fused"`` or ``"auto"`` (``model.engine``). Fast paths, by neuron
and device type of the tensors at call time (so a model moved to a GPU after it was built follows):

| neuron | device | fast path | covers |
|---|---|---|---|
| LIF | cpu | :mod:`.lif_numba` (numba) | every update rule and reset |
| LIF | cuda | :mod:`.lif_triton` (triton, optional: the ``gpu`` extra) | every update rule and reset |
| ALIF | cpu | :mod:`.alif_numba` | the ``notebook`` update rule (``Dynamic_threshold``'s), both resets |
| ALIF | cuda | :mod:`.alif_triton` | the ``notebook`` update rule, both resets |
| LI | any | :mod:`.li_matrix` (a matrix product over time) | every update rule |

``auto`` takes the fast path where one exists (the fused kernels: for float32 tensors) and the
reference elsewhere (for an ALIF layer of another update rule it says so, once); ``fused`` where none
exists is a one-line :class:`~spikeloc.errors.SpikelocError`.
Tests hold every fast path equal to its reference: spikes identical, gradients within float32 rounding.
"""

from __future__ import annotations

import warnings
from types import ModuleType

import torch

from ..errors import SpikelocError
from ..neurons.alif import ALIFParams, alif_sequence
from ..neurons.li import LIParams, li_sequence
from ..neurons.lif import LIFParams, lif_sequence
from . import alif_numba, lif_numba
from .fused import fused_lif
from .fused_alif import FUSED_RULES, fused_alif
from .li_matrix import li_time_mean, li_trace

try:
    from . import alif_triton, lif_triton

    TRITON_MISSING = "triton not installed"
except ImportError as e:  # triton is optional (the gpu extra); without it a GPU runs the reference
    lif_triton = alif_triton = None
    TRITON_MISSING = "triton not installed" if e.name == "triton" else f"triton failed to import: {e}"

# device type -> backend, per neuron
FUSED_LIF: dict[str, ModuleType | None] = {"cpu": lif_numba, "cuda": lif_triton}
FUSED_ALIF: dict[str, ModuleType | None] = {"cpu": alif_numba, "cuda": alif_triton}


def fused_backend(device: torch.device | str, neuron: str = "lif", update_rule: str = "standard"
                  ) -> tuple[ModuleType | None, str]:
    """The fused backend of a neuron (``"lif"`` or ``"alif"``) and update rule on a device, or None and why
    there is none."""
    device_type = torch.device(device).type
    table = FUSED_ALIF if neuron == "alif" else FUSED_LIF
    if device_type not in table:
        return None, f"no fused kernel for {device_type}"
    if neuron == "alif" and update_rule not in FUSED_RULES:
        return None, f"no fused ALIF for update_rule {update_rule!r}; it has one for {', '.join(FUSED_RULES)}"
    backend = table[device_type]
    return backend, "" if backend is not None else TRITON_MISSING


def check_engine(engine: str, device: torch.device | str, neuron: str = "lif", update_rule: str = "standard"
                 ) -> None:
    """Refuse ``engine = "fused"`` where the neuron has no fused kernel, with the reason."""
    if engine == "fused":
        backend, why = fused_backend(device, neuron, update_rule)
        if backend is None:
            raise SpikelocError(f"model.engine: 'fused' is not available on {torch.device(device).type} "
                                f"({why}); allowed: auto, reference")


def _neuron(p: LIFParams) -> str:
    return "alif" if isinstance(p, ALIFParams) else "lif"


def uses_fused(engine: str, h: torch.Tensor, p: LIFParams | None = None) -> bool:
    """Whether a LIF (or ALIF) layer with parameters ``p`` runs its fused kernel under ``engine`` for
    currents ``h`` (by their device and dtype)."""
    neuron, rule = (_neuron(p), p.update_rule) if p is not None else ("lif", "standard")
    check_engine(engine, h.device, neuron, rule)
    if engine == "auto":
        backend, why = fused_backend(h.device, neuron, rule)
        if backend is None and neuron == "alif" and h.device.type in FUSED_ALIF:
            warnings.warn(f"model.engine 'auto': the ALIF layer runs the reference ({why})", stacklevel=3)
        return backend is not None and h.dtype == torch.float32
    return engine == "fused"


def warm_up(device: torch.device | str, update_rule: str = "standard", reset: str = "zero",
            neuron: str = "lif") -> None:
    """Run the device's fused kernels of the neuron (and of the LIF, which spiking readouts use) once, forward
    and backward, on a tiny input: their compiled code is loaded now (numba's, from its on-disk cache;
    triton's for this rule and reset) rather than in the first training step."""
    for kind in dict.fromkeys(["lif", neuron]):
        if fused_backend(device, kind, update_rule)[0] is not None:
            h = torch.zeros(1, 1, 3, 2, device=device, requires_grad=True)
            params = (ALIFParams if kind == "alif" else LIFParams)(torch.full((1, 2), 0.5, device=device),
                                                                  update_rule, reset)
            lif(h, params, "fused").sum().backward()


def lif(h: torch.Tensor, p: LIFParams, engine: str) -> torch.Tensor:
    """LIF spikes ``(K, B, T, N)`` for currents ``h`` ``(K, B, T, N)``; ALIF spikes for
    :class:`~spikeloc.neurons.alif.ALIFParams`."""
    adaptive = isinstance(p, ALIFParams)
    if uses_fused(engine, h, p):
        backend = fused_backend(h.device, _neuron(p), p.update_rule)[0]
        return fused_alif(h, p, backend) if adaptive else fused_lif(h, p, backend)
    return alif_sequence(h, p) if adaptive else lif_sequence(h, p)


def li(h: torch.Tensor, p: LIParams, engine: str) -> torch.Tensor:
    """Leaky-integrator trace ``(K, B, T, N)`` for currents ``h`` ``(K, B, T, N)``."""
    return li_sequence(h, p) if engine == "reference" else li_trace(h, p)


def li_mean(h: torch.Tensor, p: LIParams, engine: str) -> torch.Tensor:
    """Time mean of :func:`li`, ``(K, B, N)``."""
    return li_sequence(h, p).mean(-2) if engine == "reference" else li_time_mean(h, p)
