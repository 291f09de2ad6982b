"""The hidden-unit analysis of one model of a run: :func:`analyse` computes an :class:`Analysis`,
:func:`write` puts it in ``RUN/analysis/`` and :func:`read` gets it back (for the report).

    analysis.json    everything below, and the settings it was made with
    units.csv        per hidden unit: rate, silent, sign, preferred and least-preferred IPD, tuning width,
                     accuracy without the unit
    tuning.csv       mean rate of each hidden unit and mean probability of each output class per IPD bin
    ablation.csv     accuracy as units are removed, in each of four orders
    by_ipd.csv       accuracy and absolute error per true-IPD bin

The stimuli are fresh (seed: the run's, stage ``analysis``) and have a phase offset per sample whatever
the run trained on, so a unit's tuning is its response to the IPD alone.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..config.schema import RunConfig, StimulusConfig
from ..errors import SpikelocError
from ..evaluation.metrics import bin_probabilities
from ..runs.files import ANALYSIS as FOLDER
from ..runs.files import write_atomic, write_json
from ..runs.pipeline import stage_generator
from ..runs.run import Run
from ..task.bins import class_probabilities, outcome
from ..task.stimulus import random_ipd_input_signal
from .units import (
    CHUNK,
    SILENT_HZ,
    ablation_orders,
    accuracy_without,
    binned_mean,
    rates_hz,
    removed_counts,
    tuning_summary,
)

TUNING_BINS_PER_CLASS = 2  # tuning curves are sampled at twice the class resolution


@dataclass(frozen=True)
class Analysis:
    """What the hidden units of model ``model`` do, on ``samples`` fresh stimuli. Arrays by hidden unit
    ``(H,)``, by IPD bin ``(bins,)`` or ``(bins, units)``; rates in Hz, IPDs in degrees, accuracies as
    fractions."""

    model: int
    samples: int
    seed: int
    accuracy: float  # of the intact network on these stimuli
    rate_hz: np.ndarray  # (H,) mean over the stimuli
    sign: np.ndarray  # (H,) +1 excitatory, -1 inhibitory (W2's Dale's law signs; all +1 without)
    preferred_ipd_deg: np.ndarray  # (H,) NaN for a silent unit or a flat tuning curve
    least_preferred_ipd_deg: np.ndarray  # (H,)
    tuning_width_deg: np.ndarray  # (H,)
    single_unit_accuracy: np.ndarray  # (H,) accuracy with that unit removed
    ipd_deg: np.ndarray  # (bins,) centres of the tuning bins
    hidden_tuning_hz: np.ndarray  # (bins, H) mean rate per IPD bin
    output_tuning: np.ndarray  # (bins, classes) mean posterior probability of each class per IPD bin
    accuracy_by_ipd: np.ndarray  # (bins,)
    mae_by_ipd_deg: np.ndarray  # (bins,) mean |estimated class midpoint - true IPD|
    removed: np.ndarray  # (points,) units removed at each point of the ablation curves
    ablation: dict[str, np.ndarray]  # order -> (points,) accuracy
    dale: bool = False
    accuracy_without_inhibition: float | None = None  # Dale's law runs: every inhibitory weight set to 0
    silent_hz: float = SILENT_HZ

    @property
    def single_unit_effect(self) -> np.ndarray:
        """``(H,)`` the accuracy each unit's removal alone costs (a fraction; negative where it helps)."""
        return self.accuracy - self.single_unit_accuracy

    @property
    def silent(self) -> np.ndarray:
        """``(H,)`` True for the units firing below ``silent_hz``."""
        return self.rate_hz < self.silent_hz

    def without_silent(self) -> float:
        """Accuracy with every silent unit removed (a point of the "silent first" ablation curve)."""
        point = list(self.removed.astype(int)).index(int(self.silent.sum()))
        return float(self.ablation["silent first"][point])

    def to_json(self) -> dict:
        def plain(value):
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, np.ndarray):
                return [plain(v) for v in value.tolist()] if value.ndim else plain(value.item())
            if isinstance(value, list):
                return [plain(v) for v in value]
            if isinstance(value, float) and not math.isfinite(value):
                return None  # strict JSON has no NaN
            return value
        return plain(asdict(self))

    @classmethod
    def from_json(cls, d: dict) -> Analysis:
        """Read what :meth:`to_json` wrote; KeyError, TypeError or ValueError if it is not that."""
        def array(value):
            return np.array(value, dtype=float)  # None (a NaN written as null) reads as NaN
        scalars = {"model", "samples", "seed", "accuracy", "dale", "accuracy_without_inhibition", "silent_hz"}
        out = {key: d[key] for key in scalars}
        out |= {key: array(d[key]) for key in cls.__dataclass_fields__ if key not in scalars | {"ablation"}}
        out["ablation"] = {name: array(v) for name, v in d["ablation"].items()}
        return cls(**out)


def analysis_stimulus(cfg: RunConfig) -> StimulusConfig:
    """The stimulus the analysis draws from: the run's, with a phase offset per sample."""
    return cfg.stimulus.model_copy(update={"offset": "per_sample"})


@torch.no_grad()
def analyse(run: Run, samples: int = 4096, model: int = 0) -> Analysis:
    """Analyse the hidden units of model ``model`` of ``run`` on ``samples`` fresh stimuli."""
    network = run.member(model).models["spiking"]
    stim = analysis_stimulus(run.config)
    data = random_ipd_input_signal(samples, stim, stage_generator(run.config.seed, "analysis", run.device))
    ipd_deg = np.degrees(data.ipd.double().cpu().numpy())
    hidden, scores = [], []
    for start in range(0, samples, CHUNK):
        out = network(data.spikes[start:start + CHUNK])
        hidden.append(out.spikes[0].bool())
        scores.append(out.scores[0])
    hidden = torch.cat(hidden)  # (n, T, H) bool: 1 byte a spike
    probs = torch.cat(scores).log_softmax(-1).exp()  # (n, bins)
    result = outcome(probs, data.ipd, stim)

    per_sample_hz = rates_hz(hidden, stim.dt)  # (n, H)
    rate = per_sample_hz.mean(0)
    bins = stim.num_classes * TUNING_BINS_PER_CLASS
    edges = np.linspace(stim.ipd_min_deg, stim.ipd_max_deg, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    hidden_tuning = binned_mean(per_sample_hz, ipd_deg, edges)
    class_probs = class_probabilities(probs, stim.num_classes).double().cpu().numpy()  # (n, classes)
    # only active units have a tuning: a silent unit's handful of spikes would give it a random one
    summary = tuning_summary(hidden_tuning, centres)
    preferred, least, width = (np.where(rate < SILENT_HZ, np.nan, v) for v in summary)

    units = hidden.shape[-1]
    single = accuracy_without(network, hidden, data.ipd, stim, [np.array([h]) for h in range(units)])
    orders = ablation_orders(rate, single, np.random.default_rng(run.config.seed))
    counts = removed_counts(units, int((rate < SILENT_HZ).sum()))
    prefixes = [order[:j] for order in orders.values() for j in counts]
    curves = accuracy_without(network, hidden, data.ipd, stim, prefixes).reshape(len(orders), len(counts))

    sign = network.sign_hidden[0].cpu().numpy() if network.signed else np.ones(units)
    dale = run.config.model.dale
    return Analysis(
        model=model, samples=samples, seed=run.config.seed, accuracy=float(result.correct.mean()),
        rate_hz=rate, sign=sign, preferred_ipd_deg=preferred, least_preferred_ipd_deg=least,
        tuning_width_deg=width, single_unit_accuracy=single, ipd_deg=centres, hidden_tuning_hz=hidden_tuning,
        output_tuning=binned_mean(class_probs, ipd_deg, edges),
        accuracy_by_ipd=binned_mean(result.correct.numpy(), ipd_deg, edges),
        mae_by_ipd_deg=binned_mean(np.degrees(result.midpoint_error.numpy()), ipd_deg, edges),
        removed=counts, ablation=dict(zip(orders, curves, strict=True)), dale=dale,
        accuracy_without_inhibition=_without_inhibition(network, data, stim) if dale else None)


def _without_inhibition(network, data, stim) -> float:
    """Accuracy with every inhibitory weight (rows of inhibitory fibres in W1 and of inhibitory hidden
    units in W2) set to 0, as the community's Dale's law notebooks remove inhibition after training."""
    excitatory = network.member(0)
    excitatory.W1.data[:, excitatory.sign_in[0] < 0] = 0
    excitatory.W2.data[:, excitatory.sign_hidden[0] < 0] = 0
    return float(outcome(bin_probabilities(excitatory, data.spikes)[0], data.ipd, stim).correct.mean())


def _csv(header: list[str], rows) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[f"{v:.6g}" if isinstance(v, float) else v for v in row] for row in rows])
    return text.getvalue().encode()


def write(analysis: Analysis, run_dir: str | Path) -> Path:
    """Write ``analysis`` into ``run_dir/analysis/`` (each file atomically, ``analysis.json`` last);
    returns the folder."""
    folder = Path(run_dir) / FOLDER
    folder.mkdir(exist_ok=True)
    a, units = analysis, range(len(analysis.rate_hz))
    write_atomic(folder / "units.csv", _csv(
        ["unit", "rate_hz", "silent", "sign", "preferred_ipd_deg", "least_preferred_ipd_deg",
         "tuning_width_deg", "accuracy_without_unit"],
        [[h, a.rate_hz[h], int(a.silent[h]), int(a.sign[h]), a.preferred_ipd_deg[h],
          a.least_preferred_ipd_deg[h], a.tuning_width_deg[h], a.single_unit_accuracy[h]] for h in units]))
    classes = a.output_tuning.shape[1]
    write_atomic(folder / "tuning.csv", _csv(
        ["ipd_deg", *(f"hidden_{h}_hz" for h in units), *(f"class_{c}_probability" for c in range(classes))],
        [[a.ipd_deg[b], *a.hidden_tuning_hz[b], *a.output_tuning[b]] for b in range(len(a.ipd_deg))]))
    write_atomic(folder / "ablation.csv", _csv(
        ["order", "removed", "accuracy"],
        [[name, int(j), acc] for name, curve in a.ablation.items()
         for j, acc in zip(a.removed, curve, strict=True)]))
    write_atomic(folder / "by_ipd.csv", _csv(
        ["ipd_deg", "accuracy", "mae_deg"],
        [[a.ipd_deg[b], a.accuracy_by_ipd[b], a.mae_by_ipd_deg[b]] for b in range(len(a.ipd_deg))]))
    write_json(folder / "analysis.json", analysis.to_json())
    return folder


def read(run_dir: str | Path) -> Analysis | None:
    """The analysis saved in ``run_dir/analysis/``, None if there is none; a damaged file is a one-line
    error."""
    path = Path(run_dir) / FOLDER / "analysis.json"
    try:
        return Analysis.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SpikelocError(f"{path} is damaged ({e}); run `spikeloc analyse {run_dir}` again") from None
