"""The spiking network of the notebook, as a stack of K independent copies that train in one pass.

    x (B, T, I) spikes  --W1, b1-->  LIF hidden layer (H neurons)  --W2-->  readout  -->  scores (K, B, C)

Each of the K models trains exactly as it would alone: Adam is element-wise and the loss is a sum
of per-model losses. The model owns its loss (:meth:`SpikingNetwork.loss`): the NLL of the true IPD
bin, with ``train.target = "step_labels"`` that NLL of every step's readout alone, or with
``train.target = "observer"`` the KL per step to the ideal observer's evidence.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..config.schema import ModelConfig, StimulusConfig, TrainConfig
from ..kernels.dispatch import lif
from ..neurons.alif import ALIFParams
from ..neurons.lif import LIFParams
from . import delays, init, losses
from .protocol import Output
from .readout import LINEAR_READOUTS, Readout
from .stack import StackedModel, as_input, project, register_time_constant


def gaussian(sigma: float):
    """A draw of Gaussian noise of standard deviation ``sigma``: ``(shape, generator) -> tensor``."""
    return lambda shape, g: torch.randn(shape, generator=g, device=g.device) * sigma


class Noise(NamedTuple):
    """Training noise of one batch, each ``(K, B, T, H)`` or None: Gaussian current added to the hidden units
    (``model.membrane_noise``) and the dropout mask of their spikes, 0 or ``1 / (1 - p)``
    (``train.dropout``)."""

    current: torch.Tensor | None
    keep: torch.Tensor | None


class SpikingNetwork(StackedModel):
    """Inputs -> ``hidden`` LIF neurons -> readout into ``num_classes * bins_per_class`` output bins.

    Parameters, all with a leading K: ``W1`` ``(K, I, H)``, ``b1`` ``(K, H)`` (only with ``hidden_bias``),
    ``log_tau_hidden`` ``(K, H)`` (log seconds; a parameter with ``learn_tau``, else a buffer), ``W2``
    ``(K, H, C)`` and, for readouts with output neurons, ``readout.log_tau_out`` ``(K, C)``.
    """

    def __init__(self, stim: StimulusConfig, cfg: ModelConfig, models: int = 1, device=None):
        super().__init__(stim, cfg, models, device)
        self.bins = stim.num_classes * cfg.bins_per_class
        self.W1 = nn.Parameter(torch.zeros(models, stim.inputs, cfg.hidden, device=device))
        self.W2 = nn.Parameter(torch.zeros(models, cfg.hidden, self.bins, device=device))
        self.b1 = nn.Parameter(torch.zeros(models, cfg.hidden, device=device)) if cfg.hidden_bias else None
        register_time_constant(self, "log_tau_hidden", (models, cfg.hidden), cfg.tau_hidden_ms,
                               cfg.learn_tau, device)
        self.signed = cfg.dale or cfg.excitatory_only
        if self.signed:  # the fixed sign of each presynaptic unit: input fibres for W1, hidden neurons for W2
            self.register_buffer("sign_in", torch.ones(models, stim.inputs, device=device))
            self.register_buffer("sign_hidden", torch.ones(models, cfg.hidden, device=device))
        self.readout = Readout(stim, cfg, cfg.readout, models, self.bins, device)
        self.taps = delays.taps_for(cfg.max_delay_ms, stim.dt) if cfg.delays == "learned" else 0
        if self.taps:  # each synapse's delay (steps) and the training kernel's width of the current epoch
            self.W1_delay = nn.Parameter(torch.zeros(models, stim.inputs, cfg.hidden, device=device))
            self.W2_delay = nn.Parameter(torch.zeros(models, cfg.hidden, self.bins, device=device))
            self.register_buffer("delay_sigma", torch.full((models,), delays.sigma_at(1, 1, self.taps),
                                                           device=device))

    def reset_parameters(self, generators: list[torch.Generator]) -> None:
        """Draw ``W1`` and ``W2`` as ``model.init`` says, model k from ``generators[k]``
        (the bias stays 0)."""
        with torch.no_grad():
            for W in (self.W1, self.W2):  # W1 first: every model's draws in the same order
                W.copy_(init.uniform(W.shape[1:], init.bound(self.cfg, W.shape[1:]), generators))
            if self.cfg.dale:
                for signs, units in ((self.sign_in, self.stim.inputs), (self.sign_hidden, self.cfg.hidden)):
                    signs.copy_(init.signs(units, self.cfg.inhibitory_fraction, generators,
                                           self.cfg.inhibitory_units))
            if self.taps:
                self.W1_delay.copy_(delays.initial_delays(self.W1.shape[1:], self.taps, generators))
                self.W2_delay.copy_(delays.initial_delays(self.W2.shape[1:], self.taps, generators))
        self.constrain_()

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``W1`` ``(K, I, H)`` and ``W2`` ``(K, H, C)`` as the network uses them: with ``model.dale`` or
        ``model.excitatory_only``, ``|W| * sign`` of each row's presynaptic unit (a gradient reaches ``W``
        through the absolute value, as in the community's Dale's law notebooks)."""
        if not self.signed:
            return self.W1, self.W2
        return self.W1.abs() * self.sign_in[:, :, None], self.W2.abs() * self.sign_hidden[:, :, None]

    def constrain_(self) -> None:
        """Store the weights as they are used (:meth:`weights`), so that saved weights obey the signs, and
        keep learned delays within ``[0, taps - 1]`` steps; called after every optimiser step. The forward
        pass does not change."""
        with torch.no_grad():
            if self.signed:
                W1, W2 = self.weights()
                self.W1.copy_(W1)
                self.W2.copy_(W2)
            if self.taps:
                self.W1_delay.clamp_(0, self.taps - 1)
                self.W2_delay.clamp_(0, self.taps - 1)

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Set what depends on the epoch (1-based) of a fit of ``epochs``: the width of the learned delays'
        training kernel (:func:`spikeloc.models.delays.sigma_at`)."""
        if self.taps:
            self.delay_sigma.fill_(delays.sigma_at(epoch, epochs, self.taps))

    def _projections(self, soft_delays: bool):
        """How input spikes and hidden spikes become currents: the product with the weights, or with learned
        delays their delayed product (Gaussian kernels of the epoch's width if ``soft_delays``, else the
        rounded delays)."""
        if not self.taps:
            return project, project
        sigma = self.delay_sigma[0].item() if soft_delays else None  # one schedule for the whole stack

        def hidden(x, W):
            return delays.delayed_project(x, W, self.W1_delay, self.taps, sigma)

        def readout(x, W):
            return delays.delayed_project(x, W, self.W2_delay, self.taps, sigma)
        return hidden, readout

    def calibrate(self, generators: list[torch.Generator]) -> None:
        """The data-dependent initialisation: with ``model.init = "observer"``, the hidden layer becomes the
        ideal observer's templates, calibrated on stimuli drawn from ``generators``."""
        if self.cfg.init == "observer":
            init.observer_templates_(self, generators)

    def neuron_params(self) -> LIFParams:
        """The hidden neurons' :class:`~spikeloc.neurons.lif.LIFParams` (with ``model.neuron = "alif"``
        :class:`~spikeloc.neurons.alif.ALIFParams`): threshold 1 (currents are in threshold units), reset to
        0 or by subtraction as ``model.reset`` says."""
        cfg = self.cfg
        alpha = torch.exp(-self.stim.dt / self.log_tau_hidden.exp())  # (K, H)
        if cfg.neuron == "alif":
            return ALIFParams(alpha, cfg.update_rule, cfg.reset, surrogate_slope=cfg.surrogate_slope,
                              adapt_decay=math.exp(-self.stim.dt / (cfg.adapt_tau_ms * 1e-3)),
                              adapt_strength=cfg.adapt_strength)
        return LIFParams(alpha, cfg.update_rule, cfg.reset, surrogate_slope=cfg.surrogate_slope)

    def forward(self, x: torch.Tensor, train_hidden: bool = True, noise: Noise | None = None,
                soft_delays: bool = False) -> Output:
        """Scores ``(K, B, C)`` and hidden spikes ``(K, B, T, H)`` for input spikes ``x`` ``(B, T, I)``
        (shared by the stack) or ``(K, B, T, I)``, of any dtype. ``train_hidden=False``: no gradient
        reaches W1, b1, tau. ``noise``: training noise (:meth:`training_noise`); the spikes returned are
        those the readout sees (after dropout). ``soft_delays``: learned delays as the training loss uses
        them (Gaussian kernels), else rounded."""
        to_hidden, to_readout = self._projections(soft_delays)
        W1, W2 = self.weights()
        with torch.set_grad_enabled(train_hidden and torch.is_grad_enabled()):
            current = to_hidden(as_input(x, W1), W1)  # (K, B, T, H)
            if self.b1 is not None:
                current = current + self.b1[:, None, None, :]  # (K, 1, 1, H): constant in batch and time
            if noise is not None and noise.current is not None:
                current = current + noise.current
            spikes = lif(current, self.neuron_params(), self.cfg.engine)
            if noise is not None and noise.keep is not None:
                spikes = spikes * noise.keep
        return Output(self.readout(spikes, W2, to_readout), spikes)

    def training_noise(self, x: torch.Tensor, train: TrainConfig, generators: list[torch.Generator] | None
                       ) -> Noise | None:
        """The noise of one training batch of spikes ``x``, model k's from ``generators[k]`` (None without
        ``model.membrane_noise`` and ``train.dropout``)."""
        sigma, p = self.cfg.membrane_noise, train.dropout
        if generators is None or (sigma == 0 and p == 0):
            return None
        def kept(shape, g):
            return (torch.rand(shape, generator=g, device=g.device) >= p).float() / (1 - p)
        current = self._draw(x, generators, gaussian(sigma)) if sigma else None
        keep = self._draw(x, generators, kept) if p else None
        return Noise(current, keep)

    def _draw(self, x: torch.Tensor, generators: list[torch.Generator], make) -> torch.Tensor:
        """``(K, B, T, H)`` for a batch of spikes ``x``: model k's ``make((B, T, H), generators[k])``."""
        shape = (*x.shape[-3:-1], self.cfg.hidden)  # (B, T, H)
        return torch.stack([make(shape, g) for g in generators]).to(self.W1.device)

    @property
    def has_unit_scores(self) -> bool:
        """Whether :meth:`unit_scores` has a value: readouts linear in their input, without learned delays
        (each delayed synapse has a response of its own)."""
        return self.cfg.readout in LINEAR_READOUTS and not self.taps

    def score_hidden(self, spikes: torch.Tensor, W2: torch.Tensor | None = None) -> torch.Tensor:
        """Class scores ``(K, B, C)`` of hidden spikes ``(K, B, T, H)`` through the readout, with the readout
        weights ``W2`` (default: the network's, as used) and its learned delays, if any, rounded."""
        W2 = self.weights()[1] if W2 is None else W2
        return self.readout(spikes, W2, self._projections(soft_delays=False)[1])

    def unit_scores(self, spikes: torch.Tensor) -> torch.Tensor | None:
        """Each hidden unit's share of the class scores, ``(K, B, H, C)`` for hidden spikes ``(K, B, T, H)``:
        their sum over ``H`` is the scores. Only readouts linear in their input have one (``mean``, ``last``,
        ``rate``, ``sum``); None for ``max`` and ``count``.

        The readout itself scores a single spike at each step (so its equations are not written twice):
        unit h's share is ``W2[h] * sum_t s_h[t] * score_of_one_spike[t]``.
        """
        if not self.has_unit_scores:
            return None
        K, steps = self.models, spikes.shape[-2]
        impulses = torch.eye(steps, device=spikes.device).expand(K, steps, steps)[..., None]  # (K, T, T, 1)
        one_spike = self.readout(impulses, torch.ones(K, 1, self.bins, device=spikes.device))  # (K, T, C)
        per_unit = torch.einsum("kbth,ktc->kbhc", spikes, one_spike)  # (K, B, H, C)
        return per_unit * self.weights()[1][:, None]  # (K, 1, H, C) broadcast over the batch

    def step_scores(self, spikes: torch.Tensor) -> torch.Tensor:
        """Each step's scores ``spikes[t] @ W2``, ``(K, B, T, C)``: with ``readout = "sum"`` the class scores
        are their sum over steps."""
        return spikes @ self.weights()[1][:, None]  # (K, 1, H, C) broadcast over the batch

    def loss(self, x: torch.Tensor, ipd: torch.Tensor, train: TrainConfig, train_hidden: bool = True,
             generators: list[torch.Generator] | None = None) -> torch.Tensor:
        """Per-model loss ``(K,)``: the target's loss (labels, per-step labels or the observer) plus the rate
        penalty, with the training noise drawn from ``generators``."""
        out = self(x, train_hidden, self.training_noise(x, train, generators), soft_delays=True)
        if train.target == "observer":
            per_model = losses.step_kl(self.step_scores(out.spikes),
                                       losses.observer_evidence(self.stim, x, self.bins))
        elif train.target == "step_labels":
            per_model = losses.step_label_nll(self.step_scores(out.spikes), ipd, self.stim,
                                              train.class_loss_weight, train.label_window_steps,
                                              math.radians(train.label_sigma_deg))
        else:
            per_model = losses.label_nll(out.scores, ipd, self.stim, train.class_loss_weight,
                                         math.radians(train.label_sigma_deg))
        if train.rate_reg > 0:
            per_model = per_model + train.rate_reg * losses.rate_penalty(out.spikes, self.stim.dt,
                                                                         train.target_rate_hz)
        return per_model

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by layer, and the learned delays (in their layers too) that train at
        ``train.delay_lr``."""
        readout = set(self.readout.parameters()) | {self.W2} | ({self.W2_delay} if self.taps else set())
        return {"hidden": [p for p in self.parameters() if p not in readout],
                "readout": [p for p in self.parameters() if p in readout],
                "delays": [self.W1_delay, self.W2_delay] if self.taps else []}

    def uniform_guess_loss(self, train: TrainConfig) -> float | None:
        """None with the observer target: a KL to the observer has no uniform-guess level of its own."""
        if train.target == "observer":
            return None
        return losses.uniform_guess(self.stim.num_classes, self.cfg.bins_per_class, train.class_loss_weight)


class MembraneNoise:
    """A spiking network evaluated with Gaussian noise of ``sigma`` (threshold units) added to every hidden
    unit's input current at every step (``eval.test_membrane_noise``), model k's drawn from
    ``generators[k]``: called as the network, it returns the network's :class:`Output` under that noise."""

    def __init__(self, network: SpikingNetwork, sigma: float, generators: list[torch.Generator]):
        self.network, self.sigma, self.generators = network, sigma, generators
        self.models, self.bins = network.models, network.bins

    def __call__(self, x: torch.Tensor) -> Output:
        current = self.network._draw(x, self.generators, gaussian(self.sigma))
        return self.network(x, noise=Noise(current, None))
