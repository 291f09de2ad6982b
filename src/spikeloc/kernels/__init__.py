"""Choice of LIF implementation: the plain PyTorch reference or a fused kernel.

Every engine computes exactly :func:`spikeloc.neurons.lif_reference`; tests hold them equal.
The fused kernels (:mod:`.fused`) run on the CPU with numba and on CUDA with triton; each is
imported on first use, so a missing optional package only matters when its device is asked for.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

import torch

from ..errors import SpikelocError
from ..neurons import leaky_integrator, leaky_integrator_mean, leaky_integrator_reference, lif_reference
from .fused import fused_lif

_BACKENDS = {"cpu": ("numba", "lif_numba"), "cuda": ("triton", "lif_triton")}  # device -> (package, module)


@functools.cache
def _backend(device_type: str) -> tuple[ModuleType | None, str]:
    """The fused backend module for a device type, or None and why not."""
    if device_type not in _BACKENDS:
        return None, "no fused kernel for this device"
    package, module = _BACKENDS[device_type]
    try:
        return importlib.import_module(f".{module}", __name__), ""
    except ModuleNotFoundError as e:
        if e.name != package:  # a broken install of ours, not a missing optional package
            raise
        return None, f"{package} not installed"


def fused_available(device: torch.device | str) -> bool:
    return _backend(torch.device(device).type)[0] is not None


def resolve_engine(engine: str, device: torch.device | str) -> str:
    """'auto' -> 'fused' where a fused kernel exists for ``device``, else 'reference'."""
    if engine == "auto":
        return "fused" if fused_available(device) else "reference"
    if engine == "fused":
        device_type = torch.device(device).type
        backend, why = _backend(device_type)
        if backend is None:
            raise SpikelocError(f"model.engine: 'fused' is not available on {device_type} ({why}); "
                                "allowed: auto, reference")
    return engine


def lif(h: torch.Tensor, alpha: torch.Tensor, beta: float, semantics: str, engine: str) -> torch.Tensor:
    """Hidden-layer spikes for currents ``h`` (models, batch, steps, neurons), ``alpha`` (models, neurons).

    'reference' runs :func:`~spikeloc.neurons.lif_reference`; 'fused' the kernel for ``h.device``.
    """
    if resolve_engine(engine, h.device) == "reference":
        return lif_reference(h, alpha[:, None, :], beta, semantics)
    return fused_lif(h, alpha, beta, semantics, _backend(h.device.type)[0])


def integrate(h: torch.Tensor, alpha: torch.Tensor, semantics: str, engine: str) -> torch.Tensor:
    """Readout membrane trace for ``h`` ``(models, batch, steps, neurons)``, alpha ``(models, neurons)``."""
    if engine == "reference":
        return leaky_integrator_reference(h, alpha[:, None, :], semantics)
    return leaky_integrator(h, alpha, semantics)


def integrate_mean(h: torch.Tensor, alpha: torch.Tensor, semantics: str, engine: str) -> torch.Tensor:
    """Time mean of :func:`integrate`, ``(models, batch, neurons)``."""
    if engine == "reference":
        return integrate(h, alpha, semantics, engine).mean(-2)
    return leaky_integrator_mean(h, alpha, semantics)
