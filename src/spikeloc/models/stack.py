"""What every model of a stack shares: its size ``K``, member ``k`` alone, input handling and time
constants."""

from __future__ import annotations

from typing import Self

import torch
from torch import nn

from ..config.schema import ModelConfig, StimulusConfig
from ..errors import SpikelocError
from ..kernels.dispatch import check_engine


def as_input(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Input spikes for weights ``W`` ``(K, I, out)``, on their device and in their dtype, whatever the
    spikes' (a :class:`~spikeloc.task.Dataset` holds uint8): ``(B, T, I)`` or ``(K, B, T, I)``, else a
    one-line error."""
    K, inputs, _ = W.shape
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[0] == K)) or x.shape[-1] != inputs:
        raise SpikelocError(f"input spikes must be (B, T, {inputs}) or ({K}, B, T, {inputs}); "
                            f"got {tuple(x.shape)}")
    return x.to(W.device, W.dtype)


def project(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Currents ``(K, B, T, out)`` for spikes ``x`` and stacked weights ``W`` ``(K, in, out)``.

    ``x`` is ``(B, T, in)`` (shared by all models) or ``(K, B, T, in)``. Shared inputs take one matrix
    product with the models' weights side by side, ``(B*T, in) @ (in, K*out)``, rather than a batched
    product per model.
    """
    K, n_in, n_out = W.shape
    if x.ndim == 3:
        out = x.reshape(-1, n_in) @ W.permute(1, 0, 2).reshape(n_in, K * n_out)  # (B*T, K*out)
        return out.view(*x.shape[:2], K, n_out).permute(2, 0, 1, 3)  # (K, B, T, out)
    return torch.bmm(x.reshape(K, -1, n_in), W).view(*x.shape[:3], n_out)  # (K, B, T, out)


def register_time_constant(module: nn.Module, name: str, shape: tuple[int, int], tau_ms: float, learn: bool,
                           device=None) -> None:
    """Register ``name`` on ``module``: the log of a time constant (s), ``(K, units)``; a parameter if
    learned, else a buffer (saved with the weights either way)."""
    log_tau = torch.full(shape, tau_ms * 1e-3, device=device).log()
    if learn:
        module.register_parameter(name, nn.Parameter(log_tau))
    else:
        module.register_buffer(name, log_tau)


class StackedModel(nn.Module):
    """Base of the models: ``models`` (K) independent networks whose every tensor has a leading K axis.

    Construction sets shapes only (weights start at 0); :meth:`reset_parameters` draws them.
    """

    def __init__(self, stim: StimulusConfig, cfg: ModelConfig, models: int, device=None):
        super().__init__()
        # refused here, before any training, not at the first step
        check_engine(cfg.engine, device or "cpu", cfg.neuron, cfg.update_rule)
        self.stim, self.cfg, self.models = stim, cfg, models

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def constrain_(self) -> None:
        """Restore the parameters' constraints after an optimiser step (a no-op unless a model has some)."""

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Set what depends on the epoch (1-based) of ``epochs`` (a no-op unless a model has something)."""

    def member(self, k: int) -> Self:
        """Model ``k`` alone, as a stack of one: a copy with the ``[k]`` slice of every parameter and
        buffer."""
        if not 0 <= k < self.models:
            raise SpikelocError(f"model {k} does not exist: this stack has {self.models} "
                                f"(0..{self.models - 1})")
        alone = type(self)(self.stim, self.cfg, models=1, device=self.device)
        alone.load_state_dict({name: t[k:k + 1].clone() for name, t in self.state_dict().items()})
        return alone.train(self.training)
