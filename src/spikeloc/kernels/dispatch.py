"""Engines: each neuron's reference (:mod:`spikeloc.neurons`) or its fast path, chosen per call.

``engine`` is ``"reference"``, ``"fused"`` or ``"auto"`` (``model.engine``). Fast paths, by neuron
and device type of the tensors at call time (so a model moved to a GPU after it was built follows):

| neuron | device | fast path | covers |
|---|---|---|---|
| LIF | cpu | :mod:`.lif_numba` (numba) | every update rule and reset |
| LIF | cuda | :mod:`.lif_triton` (triton, optional: the ``gpu`` extra) | every update rule and reset |
| LI | any | :mod:`.li_matrix` (a matrix product over time) | every update rule |

``auto`` takes the fast path where one exists (the fused LIF: for float32 tensors) and the
reference elsewhere; ``fused`` where none exists is a one-line :class:`~spikeloc.errors.SpikelocError`.
Tests hold every fast path equal to its reference: spikes identical, gradients within float32 rounding.
"""

from __future__ import annotations

from types import ModuleType

import torch

from ..errors import SpikelocError
from ..neurons.li import LIParams, li_sequence
from ..neurons.lif import LIFParams, lif_sequence
from . import lif_numba
from .fused import fused_lif
from .li_matrix import li_time_mean, li_trace

try:
    from . import lif_triton

    TRITON_MISSING = "triton not installed"
except ImportError as e:  # triton is optional (the gpu extra); without it a GPU runs the reference
    lif_triton = None
    TRITON_MISSING = "triton not installed" if e.name == "triton" else f"triton failed to import: {e}"

FUSED_LIF: dict[str, ModuleType | None] = {"cpu": lif_numba, "cuda": lif_triton}  # device type -> backend


def fused_lif_backend(device: torch.device | str) -> tuple[ModuleType | None, str]:
    """The fused LIF backend for a device, or None and why there is none."""
    device_type = torch.device(device).type
    if device_type not in FUSED_LIF:
        return None, f"no fused kernel for {device_type}"
    backend = FUSED_LIF[device_type]
    return backend, "" if backend is not None else TRITON_MISSING


def check_engine(engine: str, device: torch.device | str) -> None:
    """Refuse ``engine = "fused"`` on a device without a fused LIF, with the reason."""
    if engine == "fused":
        backend, why = fused_lif_backend(device)
        if backend is None:
            raise SpikelocError(f"model.engine: 'fused' is not available on {torch.device(device).type} "
                                f"({why}); allowed: auto, reference")


def uses_fused_lif(engine: str, h: torch.Tensor) -> bool:
    """Whether a LIF layer runs its fused kernel under ``engine`` for currents ``h`` (by their device
    and dtype)."""
    check_engine(engine, h.device)
    if engine == "auto":
        return fused_lif_backend(h.device)[0] is not None and h.dtype == torch.float32
    return engine == "fused"


def warm_up(device: torch.device | str, update_rule: str = "standard", reset: str = "zero") -> None:
    """Run the device's fused LIF once, forward and backward, on a tiny input: its compiled code is loaded
    now (numba's, from its on-disk cache; triton's for this rule and reset) rather than in the first
    training step."""
    backend, _ = fused_lif_backend(device)
    if backend is not None:
        h = torch.zeros(1, 1, 3, 2, device=device, requires_grad=True)
        p = LIFParams(torch.full((1, 2), 0.5, device=device), update_rule, reset)
        fused_lif(h, p, backend).sum().backward()


def lif(h: torch.Tensor, p: LIFParams, engine: str) -> torch.Tensor:
    """LIF spikes ``(K, B, T, N)`` for currents ``h`` ``(K, B, T, N)``."""
    if uses_fused_lif(engine, h):
        return fused_lif(h, p, fused_lif_backend(h.device)[0])
    return lif_sequence(h, p)


def li(h: torch.Tensor, p: LIParams, engine: str) -> torch.Tensor:
    """Leaky-integrator trace ``(K, B, T, N)`` for currents ``h`` ``(K, B, T, N)``."""
    return li_sequence(h, p) if engine == "reference" else li_trace(h, p)


def li_mean(h: torch.Tensor, p: LIParams, engine: str) -> torch.Tensor:
    """Time mean of :func:`li`, ``(K, B, N)``."""
    return li_sequence(h, p).mean(-2) if engine == "reference" else li_time_mean(h, p)
