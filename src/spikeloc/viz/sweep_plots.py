"""The figure of a sweep: each metric against one swept key, every seed a dot, the mean of each point with
its 95 % t-interval, one line per value of the other swept keys (``series``), and the ideal observer as a
dashed line where the stimulus is the same for every run."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..sweeps.store import Row
from ..sweeps.summary import PointSummary
from .analysis_plots import OKABE_ITO

COLOURS = [OKABE_ITO[c] for c in ("blue", "vermillion", "green", "orange", "purple", "sky blue", "black",
                                  "yellow")]
SHOWN = ("accuracy", "mae_deg", "mae_continuous_deg")
LABELS = {"accuracy": "Test accuracy (%)", "mae_deg": "Test MAE (deg)",
          "mae_continuous_deg": "Test continuous MAE (deg)"}


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _label(point: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k.rpartition('.')[2]} = {point[k]}" for k in keys)


def metric_against_key(summary: list[PointSummary], rows: list[Row], key: str, series: list[str],
                       ideal: dict[str, float] | None, xlabel: str | None = None) -> Figure:
    """Accuracy, MAE and continuous MAE against ``key`` (one panel each), one line per combination of the
    values of ``series`` (keys zipped with ``key`` move with it and are not among them). ``ideal``: the ideal
    observer's value of each metric (mean over the runs' test sets), drawn when the stimulus does not
    change."""
    others = series
    values = list(dict.fromkeys(s.point[key] for s in summary))
    numeric = _numeric(values)
    position = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
    series = list(dict.fromkeys(tuple(s.point[k] for k in others) for s in summary))
    fig = Figure(figsize=(12.5, 3.9), layout="constrained")
    axes = fig.subplots(1, len(SHOWN))
    span = (max(position.values()) - min(position.values())) or 1.0
    for ax, metric in zip(axes, SHOWN, strict=True):
        scale = 100 if metric == "accuracy" else 1
        for n, combo in enumerate(series):
            colour = COLOURS[n % len(COLOURS)]
            points = [s for s in summary if tuple(s.point[k] for k in others) == combo and s.metrics[metric]]
            offset = (n - (len(series) - 1) / 2) * 0.012 * span  # series side by side, not on top
            for s in points:
                seeds = [r.metrics[metric] * scale for r in rows
                         if r.point == s.point and r.status == "finished" and r.metrics]
                ax.scatter(np.full(len(seeds), position[s.point[key]] + offset), seeds, s=18, color=colour,
                           alpha=0.5, linewidths=0)
            x = np.array([position[s.point[key]] + offset for s in points])
            mean = np.array([s.metrics[metric].mean * scale for s in points])
            bounds = np.array([s.metrics[metric].ci95 or (s.metrics[metric].mean,) * 2 for s in points])
            low, high = bounds[:, 0] * scale, bounds[:, 1] * scale
            label = _label(dict(zip(others, combo, strict=True)), others) if others else "mean, 95 % interval"
            ax.errorbar(x, mean, yerr=[mean - low, high - mean], color=colour, marker="o", ms=4, capsize=3,
                        lw=1.4, label=label)
        if ideal is not None and metric in ideal:
            ax.axhline(ideal[metric] * scale, color="0.35", ls="--", lw=1, label="ideal observer")
        # a t-interval of few seeds can reach past what the metric can be: the axis stops there
        low_limit, high_limit = ax.get_ylim()
        ax.set_ylim(max(low_limit, 0.0), min(high_limit, 100.0) if metric == "accuracy" else high_limit)
        if not numeric:
            ax.set_xticks(range(len(values)), [str(v) for v in values])
        # a zip group's label names every key: wrapped at its "(with", it stays under its own panel
        ax.set_xlabel((xlabel or key).replace(" (with ", "\n(with "))
        ax.set_ylabel(LABELS[metric])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, frameon=True, framealpha=0.9, loc="best")
    fig.suptitle(f"Test metrics against {xlabel or key}: dots are seeds, bars the 95 % t-interval of the "
                 "mean")
    return fig
