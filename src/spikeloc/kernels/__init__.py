"""Choice of LIF implementation: the plain PyTorch reference or a fused kernel.

Every engine computes exactly :func:`spikeloc.neurons.lif_reference`; tests hold them equal.
"""

from __future__ import annotations

import torch

from ..neurons import leaky_integrator, leaky_integrator_reference, lif_reference


def fused_available(device: torch.device) -> bool:
    return False


def resolve_engine(engine: str, device: torch.device) -> str:
    """'auto' -> 'fused' where a fused kernel exists for ``device``, else 'reference'."""
    if engine == "auto":
        return "fused" if fused_available(device) else "reference"
    return engine


def lif(h: torch.Tensor, alpha: torch.Tensor, beta: float, semantics: str, engine: str) -> torch.Tensor:
    """Hidden-layer spikes for currents ``h`` ``(models, batch, steps, neurons)``, alpha ``(models, neurons)``."""
    return lif_reference(h, alpha[:, None, :], beta, semantics)


def integrate(h: torch.Tensor, alpha: torch.Tensor, semantics: str, engine: str) -> torch.Tensor:
    """Readout membrane trace for ``h`` ``(models, batch, steps, neurons)``, alpha ``(models, neurons)``."""
    if engine == "reference":
        return leaky_integrator_reference(h, alpha[:, None, :], semantics)
    return leaky_integrator(h, alpha[:, None, :], semantics)
