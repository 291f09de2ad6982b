"""A sweep's statistics: per point, the number of finished runs and, of each metric over its seeds, the
mean, the sample standard deviation and the 95 % t-interval of the mean.

The interval is ``mean ± t(0.975, n - 1) * sd / sqrt(n)`` (scipy's Student t quantile): the seeds are
independent replicates, each with its own data and initialisation. With one finished run the interval is
undefined (``null`` in JSON, blank in CSV).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from .spec import point_json
from .store import Row

METRICS = {"accuracy": "accuracy", "mae_deg": "MAE (deg)", "mae_continuous_deg": "continuous MAE (deg)",
           "train_seconds": "train time (s)"}


@dataclass(frozen=True)
class Interval:
    """One metric over a point's seeds."""

    mean: float
    sd: float
    ci95: tuple[float, float] | None

    @classmethod
    def of(cls, values: list[float]) -> Interval | None:
        if not values:
            return None
        v = np.asarray(values, dtype=float)
        n, mean = len(v), float(v.mean())
        if n == 1:
            return cls(mean, 0.0, None)
        sd = float(v.std(ddof=1))
        half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
        return cls(mean, sd, (mean - half, mean + half))

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "sd": self.sd, "ci95": list(self.ci95) if self.ci95 else None}


@dataclass(frozen=True)
class PointSummary:
    point: dict[str, Any]
    n: int  # finished runs
    failed: int
    pending: int  # not run yet, or running
    metrics: dict[str, Interval | None]
    ideal_observer: Interval | None  # its accuracy on the same test sets

    def to_json(self) -> dict[str, Any]:
        return {"point": self.point, "n": self.n, "failed": self.failed, "pending": self.pending,
                **{k: (m.to_json() if m else None) for k, m in self.metrics.items()},
                "ideal_observer_accuracy": self.ideal_observer.to_json() if self.ideal_observer else None}


def summarise(rows: list[Row]) -> list[PointSummary]:
    """One summary per point, in the sweep's order."""
    points: dict[str, list[Row]] = {}
    for row in rows:
        points.setdefault(point_json(row.point), []).append(row)
    out = []
    for group in points.values():
        done = [r.metrics for r in group if r.status == "finished" and r.metrics]
        ideal = [m["ideal_observer"]["accuracy"] for m in done if m.get("ideal_observer")]
        out.append(PointSummary(
            group[0].point, len(done), sum(r.status == "failed" for r in group),
            sum(r.status in ("pending", "running") for r in group),
            {k: Interval.of([m[k] for m in done]) for k in METRICS}, Interval.of(ideal)))
    return out


def failures(rows: list[Row]) -> list[tuple[str, str]]:
    """(run name, reason) of every failed run."""
    return [(r.name, r.reason or "") for r in rows if r.status == "failed"]


def to_csv(summary: list[PointSummary]) -> str:
    keys = list(summary[0].point) if summary else []
    header = [*keys, "n", "failed"] + [f"{m}_{part}" for m in METRICS
                                       for part in ("mean", "sd", "ci95_low", "ci95_high")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for s in summary:
        cells: list[Any] = [s.point[k] for k in keys] + [s.n, s.failed]
        for m in METRICS:
            i = s.metrics[m]
            cells += ([i.mean, i.sd, *(i.ci95 or ("", ""))] if i else ["", "", "", ""])
        writer.writerow(cells)
    return buffer.getvalue()


def _cell(i: Interval | None, percent: bool, interval: bool = True) -> str:
    if i is None:
        return "-"
    scale = 100 if percent else 1
    ci = f" [{scale * i.ci95[0]:.1f}, {scale * i.ci95[1]:.1f}]" if i.ci95 and interval else ""
    return f"{scale * i.mean:.1f} ± {scale * i.sd:.1f}{ci}" if percent else f"{i.mean:.2f} ± {i.sd:.2f}{ci}"


def table_rows(summary: list[PointSummary]) -> tuple[list[str], list[list[str]]]:
    """The summary as a header and text cells: the point's values, n (and failures), each metric as
    ``mean ± sd [95 % interval]``, accuracy in %; the train time as mean ± sd (of a stack, each model's
    share)."""
    keys = list(summary[0].point) if summary else []
    header = [k.rpartition(".")[2] for k in keys] + ["n", "accuracy (%)", "MAE (deg)", "continuous MAE (deg)",
                                                     "train (s)"]
    rows = []
    for s in summary:
        n = f"{s.n}" + (f" ({s.failed} failed)" if s.failed else "") + (f" ({s.pending} to do)" if s.pending
                                                                         else "")
        rows.append([str(s.point[k]) for k in keys] + [n, _cell(s.metrics["accuracy"], True),
                                                       _cell(s.metrics["mae_deg"], False),
                                                       _cell(s.metrics["mae_continuous_deg"], False),
                                                       _cell(s.metrics["train_seconds"], False, False)])
    return header, rows


def text_table(summary: list[PointSummary]) -> str:
    header, rows = table_rows(summary)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:],
                      "mean ± sd over seeds [95 % t-interval of the mean]"])
