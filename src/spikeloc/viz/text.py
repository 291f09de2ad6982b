"""Results as text for the terminal: the metrics table and the ideal observer's bound."""

from __future__ import annotations

from ..analysis.study import Analysis
from ..evaluation.metrics import RunMetrics, SplitMetrics, Summary


def _pct(s: Summary) -> str:
    return f"{100 * s.mean:.1f} %" + (f" ± {100 * s.sd:.1f} ({100 * s.min:.1f}-{100 * s.max:.1f})"
                                      if len(s.values) > 1 else "")


def _deg(s: Summary) -> str:
    return f"{s.mean:.2f} deg" + (f" ± {s.sd:.2f}" if len(s.values) > 1 else "")


def metrics_table(metrics: RunMetrics) -> str:
    """One line per model kind and set (and the ideal observer): accuracy and both MAEs."""
    rows: list[tuple[str, SplitMetrics]] = [(f"{kind} {split}", m) for kind, km in metrics.kinds.items()
                                            for split, m in km.splits().items()]
    if metrics.ideal_observer is not None:
        rows.append(("ideal observer test", metrics.ideal_observer.test))
    lines = [f"{'':22} {'accuracy':>24} {'MAE (midpoint)':>16} {'MAE (continuous)':>17}"]
    lines += [f"{name:22} {_pct(m.accuracy):>24} {_deg(m.mae_deg):>16} {_deg(m.mae_continuous_deg):>17}"
              for name, m in rows]
    lines.append(f"chance: {100 * metrics.chance:.1f} %")
    models = len(metrics.train.accuracy.values if metrics.train else metrics.test.accuracy.values)
    if models > 1:
        lines.append(f"± is the standard deviation over the {models} models, (a-b) their range")
    return "\n".join(lines)


def bound_summary(result: dict) -> str:
    """:func:`spikeloc.observer.bound`'s result, offset unknown and known."""
    lines = [f"ideal observer, {result['samples']} samples ({result['seconds']:.1f} s)"]
    for name in ("unknown_offset", "known_offset"):
        r = result[name]
        ci = r["accuracy_ci"]
        lines.append(f"  offset {name.split('_')[0]:8} accuracy {100 * r['accuracy']:.1f} % "
                     f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]  "
                     f"MAE midpoint {r['mae_midpoint_deg']:.2f} deg  "
                     f"MAE median {r['mae_median_deg']:.2f} deg")
    return "\n".join(lines)


def analysis_summary(a: Analysis) -> str:
    """Two lines: silent units, accuracy and the ablations' headline (and, with Dale's law, inhibition)."""
    silent, units = int(a.silent.sum()), len(a.rate_hz)
    drop = a.single_unit_effect
    without = f", {100 * a.without_silent():.1f} % without the silent units" if silent else ""
    lines = [f"model {a.model}: {silent} of {units} hidden units silent (< {a.silent_hz:g} Hz); accuracy "
             f"{100 * a.accuracy:.1f} % on {a.samples:,} fresh stimuli{without}",
             f"largest single-unit effect: {100 * drop.max():.1f} points (unit {int(drop.argmax())})"]
    if a.dale:
        lines.append(f"without the inhibitory weights: {100 * a.accuracy_without_inhibition:.1f} %")
    return "\n".join(lines)
