"""Export to and import from NIR, the Neuromorphic Intermediate Representation (package ``nir``), which
Norse, snnTorch, Sinabs, Rockpool, Spyx, Lava-DL and hardware toolchains read.

The graph of one model of a run::

    input (I) -> fc1: Affine (W1, b1) -> lif1: LIF (H) -> fc2: Linear (W2) -> out: LI (or LIF) (C) -> output

NIR's neurons are continuous: ``tau dv/dt = (v_leak - v) + r I``, a LIF spiking when ``v > v_threshold`` and
then set to ``v_reset``. A consumer simulating them with forward Euler at the stored ``dt`` (as Norse and
snnTorch do) computes ``v <- (1 - dt/tau) v + (dt/tau) r I``. spikeloc's ``immediate`` update rule is
``v <- alpha R(v) + h`` with the reset ``R`` applied in the step of the spike (:mod:`spikeloc.neurons.lif`),
so the two agree when

    tau = dt / (1 - alpha),   r = 1,   and the weights into the layer divided by (1 - alpha)

(Norse ignores ``r``, so the factor goes into the weights), ``v_threshold = 1``, ``v_reset = 0``,
``v_leak = 0``. The values are stored in float64, so importing the file gives back spikeloc's float32
parameters exactly. What NIR cannot express is refused with the reason: the ``notebook`` and ``standard``
rules (the notebook's one-step spike lag; a reset that also drops the next step's input) unless
``approximate=True``, which exports the ``immediate`` mapping and records the measured agreement of the
hidden spikes in the metadata; and ``reset = "subtract"`` (NIR's LIF resets to a value). The readout's
reduction over time (``mean``, ``max``, ``last``, ``count``, or ``rate``/``sum`` with no output neurons)
has no NIR node: it is in the metadata, with the whole spikeloc config, so :func:`from_nir` rebuilds the run.
"""

from __future__ import annotations

import itertools
from importlib.metadata import version
from pathlib import Path

import nir
import numpy as np
import torch

from ..config.loading import config_from_toml_text
from ..errors import SpikelocError
from ..models.network import SpikingNetwork
from ..models.readout import WITH_NEURONS
from ..models.registry import construct
from ..runs.pipeline import stage_generator
from ..runs.run import Run
from ..task.stimulus import random_ipd_input_signal

AGREEMENT_SAMPLES = 256  # stimuli on which an approximate export measures its spike agreement


def _check_expressible(run: Run, approximate: bool) -> None:
    m = run.config.model
    if m.neuron != "lif":
        raise SpikelocError(f"NIR cannot express model.neuron = '{m.neuron}': it has no neuron with an "
                            "adaptive threshold; only neuron = 'lif' exports")
    if m.delays != "none":
        raise SpikelocError(f"NIR cannot express model.delays = '{m.delays}' (a delay per synapse): only "
                            "delays = 'none' exports")
    if m.reset != "zero":
        raise SpikelocError("NIR cannot express model.reset = 'subtract': its LIF neurons reset to a value "
                            "(v_reset); only reset = 'zero' exports")
    if m.update_rule != "immediate" and not approximate:
        why = {"notebook": "the notebook's one-step spike lag (a spike is taken from the membrane before the "
                           "update)",
               "standard": "a reset that also drops the input of the step after a spike"}[m.update_rule]
        raise SpikelocError(f"NIR cannot express update_rule = '{m.update_rule}' ({why}); export a run "
                            "trained with update_rule = 'immediate', or pass --approximate to export the "
                            "immediate rule's mapping with its measured spike agreement")


def _neurons(alpha: np.ndarray, dt: float, spiking: bool) -> nir.NIRNode:
    """NIR neurons with decay ``alpha`` per step at ``dt`` (float64)."""
    tau, zeros, ones = dt / (1 - alpha), np.zeros_like(alpha), np.ones_like(alpha)
    if spiking:
        return nir.LIF(tau=tau, r=ones, v_leak=zeros, v_threshold=ones, v_reset=zeros)
    return nir.LI(tau=tau, r=ones, v_leak=zeros)


def to_nir(run: Run, model: int = 0, approximate: bool = False) -> nir.NIRGraph:
    """The NIR graph of model ``model`` of ``run`` (see the module's docstring for the mapping)."""
    _check_expressible(run, approximate)
    member = run.member(model)
    network: SpikingNetwork = member.models["spiking"]
    cfg, dt = member.config, member.config.stimulus.dt
    W1, W2 = (w[0].detach().double().cpu().numpy() for w in network.weights())  # (I, H), (H, C)
    alpha = network.neuron_params().alpha[0].detach().double().cpu().numpy()  # (H,)
    gain = 1 / (1 - alpha)  # NIR's Euler step scales its input by dt/tau = 1 - alpha
    bias = network.b1[0].detach().double().cpu().numpy() if network.b1 is not None else np.zeros_like(alpha)
    nodes = {"input": nir.Input(input_type={"input": np.array([cfg.stimulus.inputs])}),
             "fc1": nir.Affine(weight=(W1 * gain).T, bias=bias * gain),  # (H, I), (H,)
             "lif1": _neurons(alpha, dt, spiking=True)}
    readout = cfg.model.readout
    if readout in WITH_NEURONS:
        alpha_out = network.readout.alpha()[0].detach().double().cpu().numpy()  # (C,)
        nodes["fc2"] = nir.Linear(weight=(W2 / (1 - alpha_out)).T)  # (C, H)
        nodes["out"] = _neurons(alpha_out, dt, spiking=readout in ("count", "spike_rate"))
    else:  # rate, sum: the readout is W2 applied to the hidden spikes, reduced over time
        nodes["fc2"] = nir.Linear(weight=W2.T)
    nodes["output"] = nir.Output(output_type={"output": np.array([network.bins])})
    order = list(nodes)
    metadata = {"source": "spikeloc", "spikeloc_version": version("spikeloc"), "dt": dt,
                "update_rule": cfg.model.update_rule, "reset": cfg.model.reset, "readout": readout,
                "readout_reduction": readout, "model": model, "spikeloc_config": cfg.to_toml()}
    if cfg.model.update_rule != "immediate":
        metadata["approximation"] = "the immediate update rule's mapping"
        metadata["hidden_spike_agreement"] = hidden_spike_agreement(member, nodes["fc1"], nodes["lif1"])
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(order)), metadata=metadata)


def simulate_lif(affine: nir.Affine, lif: nir.LIF, spikes: torch.Tensor, dt: float) -> torch.Tensor:
    """Hidden spikes ``(B, T, H)`` of a NIR Affine -> LIF pair for input spikes ``(B, T, I)``, by forward
    Euler at ``dt`` as a NIR consumer computes them (float32, reset to ``v_reset`` after a spike)."""
    W = torch.as_tensor(affine.weight, dtype=torch.float32)  # (H, I)
    b = torch.as_tensor(affine.bias, dtype=torch.float32)
    step = torch.as_tensor(dt / lif.tau, dtype=torch.float32)
    threshold = torch.as_tensor(lif.v_threshold, dtype=torch.float32)
    v_reset = torch.as_tensor(lif.v_reset, dtype=torch.float32)
    current = spikes.float() @ W.T + b  # (B, T, H)
    v, out = torch.zeros_like(current[:, 0]), []
    for t in range(current.shape[1]):
        v = v + step * (current[:, t] - v)
        z = (v > threshold).float()
        v = (1 - z) * v + z * v_reset
        out.append(z)
    return torch.stack(out, 1)


def hidden_spike_agreement(run: Run, affine: nir.Affine, lif: nir.LIF) -> float:
    """How well NIR neurons simulated by forward Euler reproduce the run's hidden spikes (model 0) on fresh
    stimuli: spikes at the same step and unit in both, over spikes in either (1 = every spike reproduced)."""
    stim = run.config.stimulus
    generator = stage_generator(run.config.seed, "nir", run.device)
    data = random_ipd_input_signal(AGREEMENT_SAMPLES, stim, generator)
    theirs = simulate_lif(affine, lif, data.spikes.cpu(), stim.dt).bool()
    ours = torch.as_tensor(run.hidden_spikes(data.spikes)).bool()
    either = (theirs | ours).sum().item()
    return float((theirs & ours).sum().item() / either) if either else 1.0


def _log_tau(alpha: np.ndarray, dt: float) -> torch.Tensor:
    """The float32 log time constants (log s) from which spikeloc computes exactly these float32 decays
    ``exp(-dt / exp(log_tau))``: the nearest value, or one of its float32 neighbours."""
    target = torch.as_tensor(alpha, dtype=torch.float32)
    guess = torch.as_tensor(np.log(-dt / np.log(alpha)), dtype=torch.float32)
    best = guess.clone()
    for ulps in (2, -2, 1, -1, 0):  # the last match wins: the nearest one
        candidate = guess
        for _ in range(abs(ulps)):
            candidate = torch.nextafter(candidate, torch.full_like(candidate, np.sign(ulps) * np.inf))
        best = torch.where(torch.exp(-dt / candidate.exp()) == target, candidate, best)
    return best


def write(graph: nir.NIRGraph, path: str | Path) -> Path:
    """Write ``graph`` to ``path`` (HDF5, as ``nir.write``), whole or not at all."""
    path = Path(path)
    if not path.parent.is_dir():
        raise SpikelocError(f"{path.parent} is not a folder")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        nir.write(str(tmp), graph)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def from_nir(source: str | Path | nir.NIRGraph, device: str = "cpu") -> Run:
    """A run of one model rebuilt from a NIR file (or graph) written by :func:`to_nir`; its predictions are
    those of the exported model. A graph spikeloc did not write is a one-line error."""
    try:
        graph = source if isinstance(source, nir.NIRGraph) else nir.read(str(source))
    except (OSError, KeyError, ValueError) as e:
        raise SpikelocError(f"cannot read NIR file {source}: {e}") from None
    meta = graph.metadata or {}
    if meta.get("source") != "spikeloc" or "spikeloc_config" not in meta:
        raise SpikelocError(f"{source} was not written by spikeloc (no spikeloc_config in its metadata); "
                            "only spikeloc's own NIR graphs import")
    cfg = config_from_toml_text(str(meta["spikeloc_config"]), f"the spikeloc_config of {source}")
    network = construct("spiking", cfg.stimulus, cfg.model, 1, torch.device(device))
    fc1, lif1, fc2 = graph.nodes["fc1"], graph.nodes["lif1"], graph.nodes["fc2"]
    dt = cfg.stimulus.dt
    alpha = 1 - dt / np.asarray(lif1.tau, dtype=np.float64)
    state = {"W1": np.asarray(fc1.weight).T * (1 - alpha)}
    if network.b1 is not None:
        state["b1"] = np.asarray(fc1.bias) * (1 - alpha)
    if cfg.model.learn_tau:
        state["log_tau_hidden"] = _log_tau(alpha, dt)
    state["W2"] = np.asarray(fc2.weight).T
    if "out" in graph.nodes:
        alpha_out = 1 - dt / np.asarray(graph.nodes["out"].tau, dtype=np.float64)
        state["W2"] = state["W2"] * (1 - alpha_out)
        if cfg.model.learn_tau:
            state["readout.log_tau_out"] = _log_tau(alpha_out, dt)
    with torch.no_grad():
        tensors = dict(network.named_parameters()) | dict(network.named_buffers())
        for name, value in state.items():
            tensors[name].copy_(torch.as_tensor(value)[None])  # float64 -> the model's float32
        if network.signed:  # the signs are those of the exported weights
            network.sign_in.copy_(torch.where(network.W1.sum(-1) < 0, -1.0, 1.0))
            network.sign_hidden.copy_(torch.where(network.W2.sum(-1) < 0, -1.0, 1.0))
    return Run(cfg, {"spiking": network})
