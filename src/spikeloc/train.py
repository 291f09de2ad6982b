"""Training: Adam on the NLL of log-softmax of the readout, one loop for every model kind.

Read top to bottom: batches of a :class:`~spikeloc.stimulus.Dataset` in random order, the loss
(labels, or with ``train.target = "observer"`` the ideal observer's evidence in every step), the
optional firing-rate penalty, the learning-rate schedule and the per-epoch history.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import RunConfig
from .stimulus import Dataset, discretise, random_ipd_input_signal


def batches(data: Dataset, batch_size: int, generator: torch.Generator | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(spikes as float32, IPD) batches; shuffled when a generator is given; a short last batch is dropped."""
    n = len(data)
    order = torch.randperm(n, generator=generator, device=generator.device) if generator is not None else None
    for start in range(0, n - batch_size + 1, batch_size):
        idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
        yield data.spikes[idx].float(), data.ipd[idx]


def log_probs(scores: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over output bins, ``(models, batch, bins)``."""
    return F.log_softmax(scores, dim=-1)


def _nll(logp: torch.Tensor, ipd: torch.Tensor, cfg: RunConfig) -> torch.Tensor:
    """Mean NLL per model, ``(models,)``, of log-probabilities ``(models, batch, bins)`` over equal IPD bins."""
    target = discretise(ipd, cfg.stimulus, logp.shape[-1]).expand(logp.shape[0], -1)
    nll = F.nll_loss(logp.flatten(0, 1), target.flatten(), reduction="none")
    return nll.view(logp.shape[:2]).mean(1)


def chance_loss(cfg: RunConfig, bins_per_class: int) -> float:
    """The loss (without the rate penalty) of a uniform guess over ``bins_per_class`` bins per class:
    ln(bins), plus the weighted class term where there are fine bins."""
    classes = cfg.stimulus.num_classes
    return math.log(classes * bins_per_class) + (cfg.train.class_loss_weight * math.log(classes) if bins_per_class > 1 else 0.0)


@functools.cache
def _step_observer(stim, bins: int):
    from .teacher import StepObserver  # here, not at the top: observer.py imports evaluate, which imports train

    return StepObserver(stim, bins)


def uses_observer_target(model, cfg: RunConfig) -> bool:
    """Whether ``model`` trains on the observer's per-step evidence (the membrane baseline has no steps to match)."""
    return cfg.train.target == "observer" and hasattr(model, "step_scores")


def _observer_kl(model, x: torch.Tensor, hidden: torch.Tensor, cfg: RunConfig) -> torch.Tensor:
    """Mean KL per step, ``(models,)``, from the ideal observer's posterior given one step's spikes
    to the softmax of that step's readout."""
    scores = model.step_scores(hidden)  # (models, batch, steps, bins)
    target = F.log_softmax(_step_observer(cfg.stimulus, scores.shape[-1])(x), -1)
    kl = F.kl_div(F.log_softmax(scores, -1), target.expand_as(scores), log_target=True, reduction="none")
    return kl.sum(-1).mean((1, 2))


def loss_fn(model, x: torch.Tensor, ipd: torch.Tensor, cfg: RunConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed per-model loss (models train independently) and the per-model loss ``(models,)``."""
    scores, hidden = model(x)
    if uses_observer_target(model, cfg):
        per_model = _observer_kl(model, x, hidden, cfg)
    else:
        logp = log_probs(scores)
        per_model = _nll(logp, ipd, cfg)
        classes = cfg.stimulus.num_classes
        if cfg.train.class_loss_weight > 0 and logp.shape[-1] > classes:
            class_logp = logp.unflatten(-1, (classes, -1)).logsumexp(-1)  # fine bins summed per class
            per_model = per_model + cfg.train.class_loss_weight * _nll(class_logp, ipd, cfg)
    if cfg.train.rate_reg > 0 and hidden is not None:
        # mean firing rate per hidden neuron (Hz), pulled towards target_rate_hz
        rate = hidden.mean(dim=(1, 2)) / cfg.stimulus.dt
        target_rate = max(cfg.train.target_rate_hz, 1e-9)
        per_model = per_model + cfg.train.rate_reg * ((rate / target_rate - 1) ** 2).mean(-1)
    return per_model.sum(), per_model.detach()


def _optimizer(params: list[torch.nn.Parameter], cfg: RunConfig, epochs: int):
    """Adam and, for the cosine schedule, a decay to 0 over ``epochs``."""
    optimizer = torch.optim.Adam(params, lr=cfg.train.lr)
    steps = epochs * cfg.train.train_batches
    if cfg.train.lr_schedule != "cosine":
        return optimizer, None
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))


def fit(model, cfg: RunConfig, train_data: Dataset, generator: torch.Generator,
        progress: bool = True, label: str = "train") -> list[dict]:
    """Train ``model`` in place on ``train_data``, reshuffled each epoch; returns one history row per epoch.

    With ``cfg.train.fresh_data`` every epoch after the first draws a new training set of the
    same size from ``generator``. With ``cfg.train.readout_only_epochs`` = N > 0 training has two
    stages, each with its own Adam and learning-rate schedule: N epochs of the readout alone (the
    hidden layer fixed), then the other epochs of everything.
    """
    tc = cfg.train
    params = [p for p in model.parameters() if p.requires_grad]
    hidden = [p for p in model.hidden_parameters() if p.requires_grad]
    # first epoch of each stage -> (does it train the hidden layer, its epochs)
    stages = {1: (True, tc.epochs)}
    if tc.readout_only_epochs and hidden:
        stages = {1: (False, tc.readout_only_epochs), tc.readout_only_epochs + 1: (True, tc.epochs - tc.readout_only_epochs)}
    history = []
    bar = tqdm(total=tc.epochs * tc.train_batches, desc=label, disable=not progress, leave=False, unit="batch")
    for epoch in range(1, tc.epochs + 1):
        start = time.perf_counter()
        if epoch in stages:
            train_hidden, stage_epochs = stages[epoch]
            for p in hidden:  # a fixed hidden layer needs no gradient: the readout-only stage runs faster
                p.requires_grad_(train_hidden)
            optimizer, scheduler = _optimizer([p for p in params if p.requires_grad], cfg, stage_epochs)
        if tc.fresh_data and epoch > 1:
            train_data = random_ipd_input_signal(len(train_data), cfg.stimulus, generator)
        losses = []
        for x, ipd in batches(train_data, tc.batch_size, generator):
            loss, per_model = loss_fn(model, x, ipd, cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            losses.append(per_model)
            bar.update()
            bar.set_postfix(loss=f"{per_model.mean().item():.3f}", epoch=epoch)
        per_model = torch.stack(losses).mean(0).tolist()
        history.append({"epoch": epoch, "loss": sum(per_model) / len(per_model), "loss_per_model": per_model,
                        "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - start})
    bar.close()
    for p in hidden:
        p.requires_grad_(True)
    return history
