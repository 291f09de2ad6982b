"""One self-contained HTML report of a run: description, metrics table, figures, config.

Figures are embedded as base64 data URIs and the style sheet is inline, so the file can be
mailed or opened offline and makes no network request. The file is written atomically.
"""

from __future__ import annotations

import base64
import mimetypes
from html import escape
from pathlib import Path

import numpy as np

from ..analysis.study import Analysis
from ..config.schema import RunConfig
from ..errors import SpikelocError
from ..evaluation.metrics import RunMetrics, SplitMetrics, Summary
from ..runs.files import write_atomic

# captions by keywords of the figure name, first match wins ("hidden unit weights" before "weights");
# names may use spaces or underscores, e.g. "spiking model, test set" or "ipd_errors_spiking_test"
CAPTIONS = [
    (("robustness",),
     ("Test accuracy as the test spikes are perturbed (eval.robustness): left, each spike deleted with the "
      "given probability; right, each spike moved by a Gaussian shift of the given standard deviation. "
      "Every level perturbs the same clean test set; the training set was clean.")),
    (("stimul",),
     ("Example input spike trains: left-ear fibres below the line, right-ear fibres above; "
      "each fibre's phase delay grows with its index.")),
    (("loss",),
     ("Training loss per epoch. Thin lines: individual models of a stack; thick: their mean; "
      "dashed, where shown: the loss of a uniform guess; dash-dotted, with train.validation_batches: the "
      "accuracy on the held-out validation set (right axis).")),
    (("hidden unit",),
     "W1 weights of individual hidden units against each fibre's phase delay, left ear and right ear."),
    (("weights",),
     ("Trained weights with hidden units re-ordered by the weighted mean index of their inputs "
      "(weak units, max |w1| < 0.5, last, after the dashed line), the product W1 W2 and the "
      "product thresholded to its top and bottom percentiles.")),
    (("ipd error", "confusion", " set"),
     ("Left: distribution of true and estimated IPDs. Right: confusion matrix, each column "
      "(true IPD class) normalised to 1; a perfect classifier is a bright diagonal.")),
]

# the analysis section's figures, by name (viz.figures.analysis_specs)
ANALYSIS_CAPTIONS = {
    "hidden unit rates": "Mean firing rate of each hidden unit on the analysis stimuli; the hatched bar "
                         "counts the silent units, which fire below the threshold.",
    "hidden unit tuning curves": "Mean rate of each active hidden unit against the true IPD, in bins of half "
                                 "a class; ordered by the IPD where the unit fires most.",
    "preferred IPDs": "Where the active units fire most (preferred) and least (least preferred), and the "
                      "width of their tuning curves above half height.",
    "output class tuning": "Mean posterior probability of each output class against the true IPD; thin grey "
                           "lines: the class boundaries.",
    "ablation": "Left: accuracy as hidden units are removed (their W2 rows set to 0) in four orders. Right: "
                "the accuracy each unit's removal alone costs, against its firing rate.",
    "hidden layer rasters": "Input spikes (left) and hidden-layer spikes (right) of example stimuli.",
    "error by IPD": "Accuracy and mean absolute error of the network in each true-IPD bin.",
}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1150px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; }
.description { color: #444; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.7em; text-align: right; }
td { white-space: nowrap; }
.wide { overflow-x: auto; }
th { background: #f1f3f5; }
td:first-child, td:nth-child(2), th:first-child, th:nth-child(2) { text-align: left; }
tr.ideal td { background: #f6fbf6; }
.note { font-size: 0.9em; color: #555; }
figure { margin: 2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.92em; color: #444; margin-top: 0.3em; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; font-size: 0.85em; }
"""

MODEL_NAMES = {"spiking": "Spiking network", "membrane": "Membrane only"}


# ---------------------------------------------------------------- number formatting

def _number(x: float, percent: bool) -> str:
    return f"{100 * x:.1f}" if percent else f"{x:.2f}"


def _stat(stat: Summary, percent: bool) -> str:
    """``mean ± sd (min–max)`` over the models of a stack, or the single value."""
    unit = " %" if percent else "°"
    if len(stat.values) <= 1:
        return _number(stat.mean, percent) + unit
    return (f"{_number(stat.mean, percent)} ± {_number(stat.sd, percent)}{unit} "
            f"({_number(stat.min, percent)}–{_number(stat.max, percent)})")


def _gap(split: SplitMetrics, ideal: SplitMetrics) -> list[str]:
    """How far the model's mean is behind the ideal observer: accuracy points and extra MAE (deg)."""
    acc = 100 * (ideal.accuracy.mean - split.accuracy.mean)
    return [f"{acc:.1f} pts", f"{split.mae_deg.mean - ideal.mae_deg.mean:+.2f}°"]


# ---------------------------------------------------------------- sections

def _metrics_table(metrics: RunMetrics) -> str:
    ideal = metrics.ideal_observer.test if metrics.ideal_observer is not None else None
    head = ["Model", "Set", "Accuracy", "MAE, bin midpoint", "MAE, continuous"]
    if ideal:
        head += ["Gap to ideal: accuracy", "Gap to ideal: MAE"]

    def row(name: str, split: str, m: SplitMetrics, is_ideal: bool = False) -> str:
        cells = [name, split, _stat(m.accuracy, True), _stat(m.mae_deg, False),
                 _stat(m.mae_continuous_deg, False)]
        if ideal:
            cells += _gap(m, ideal) if split == "test" and not is_ideal else ["", ""]
        attr = ' class="ideal"' if is_ideal else ""
        return f"<tr{attr}>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"

    rows = [row(MODEL_NAMES.get(kind, kind), split, m)
            for kind, km in metrics.kinds.items() for split, m in km.splits().items()]
    if ideal:
        rows.append(row("Ideal observer", "test", ideal, is_ideal=True))
    header = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
    notes = [f"Chance accuracy: {100 * metrics.chance:.1f} %."]
    if (metrics.models_trained or 1) > 1:
        notes.append(f"Models trained per kind: {metrics.models_trained}; "
                     "values are mean ± sd (min–max) across them.")
    notes.append("MAE, bin midpoint: the estimated class's centre vs the true IPD; "
                 "continuous: the median of the network's posterior.")
    if ideal:
        notes.append("Gap to ideal: how far the model's mean is behind the ideal observer (positive: worse).")
    note = escape(" ".join(notes))
    return f"<div class=\"wide\"><table>{header}{''.join(rows)}</table></div><p class=\"note\">{note}</p>"


def _seconds_table(seconds: dict) -> str:
    rows = "".join(f"<tr><td>{escape(str(k).replace('_', ' '))}</td><td>{float(v):.1f} s</td></tr>"
                   for k, v in seconds.items())
    return f"<h2>Time</h2><table><tr><th>Stage</th><th>Seconds</th></tr>{rows}</table>"


def _caption(name: str) -> str:
    name = name.lower().replace("_", " ")
    return next((text for keywords, text in CAPTIONS if any(k in name for k in keywords)), "")


def _figure(name: str, path: Path, caption: str | None = None) -> str:
    path = Path(path)
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as e:
        raise SpikelocError(f"figure {name!r} cannot be read from {path}: {e.strerror}") from None
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    title = escape(name.replace("_", " "))
    caption = escape(_caption(name) if caption is None else caption)
    return (f'<figure id="{escape(name)}"><img src="data:{mime};base64,{data}" alt="{title}">'
            f"<figcaption><strong>{title}.</strong> {caption}</figcaption></figure>")


def _description(config: RunConfig) -> str:
    s, m, t = config.stimulus, config.model, config.train
    width = (s.ipd_max_deg - s.ipd_min_deg) / s.num_classes
    facts = (f"Sound localisation from the interaural phase difference (IPD) of a {s.f:g} Hz tone heard "
             f"by {s.anf_per_ear} auditory-nerve fibres per ear; IPD in "
             f"[{s.ipd_min_deg:g}°, {s.ipd_max_deg:g}°] classified into {s.num_classes} bins of {width:g}°. "
             f"Spiking network: {s.inputs} inputs → "
             f"{m.hidden} LIF hidden units → {s.num_classes * m.bins_per_class} output units; "
             f"{t.epochs} epochs of {t.train_batches} batches of {t.batch_size}; seed {config.seed}.")
    parts = [config.description, facts]
    return "".join(f'<p class="description">{escape(p)}</p>' for p in parts if p)


def _analysis_table(a: Analysis, hidden: int) -> str:
    """The analysis in numbers: silent units, accuracy and what the ablations did."""
    active = ~a.silent
    drop = a.single_unit_effect
    rows = [("analysis stimuli", f"{a.samples:,} fresh, a phase offset per sample (model {a.model})"),
            ("accuracy on them", f"{100 * a.accuracy:.1f} %"),
            (f"silent units (< {a.silent_hz:g} Hz)", f"{int(a.silent.sum())} of {hidden}"),
            ("accuracy without the silent units", f"{100 * a.without_silent():.1f} %"),
            ("largest single-unit effect", f"{100 * drop.max():.1f} points (unit {int(drop.argmax())})"),
            ("median rate of active units",
             f"{np.median(a.rate_hz[active]):.1f} Hz" if active.any() else "n/a")]
    if a.dale:
        for name, units in (("excitatory", a.sign > 0), ("inhibitory", a.sign < 0)):
            rows.append((f"{name} units: active of all, mean rate",
                         f"{int((units & active).sum())} of {int(units.sum())}, "
                         f"{a.rate_hz[units].mean() if units.any() else 0:.1f} Hz"))
        rows.append(("accuracy without inhibitory weights", f"{100 * a.accuracy_without_inhibition:.1f} %"))
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="analysis">{body}</table>'


def render(config: RunConfig, metrics: RunMetrics, figures: dict[str, Path], analysis: Analysis | None = None,
           analysis_figures: dict[str, Path] | None = None) -> str:
    """The report as an HTML string."""
    body = ["<h1>spikeloc run report</h1>", _description(config), "<h2>Results</h2>", _metrics_table(metrics)]
    if metrics.seconds:
        body.append(_seconds_table(metrics.seconds))
    if figures:
        body.append("<h2>Figures</h2>")
        body += [_figure(name, path) for name, path in figures.items()]
    if analysis is not None:
        body += ["<h2>Analysis</h2>", '<p class="note">What the hidden units of the trained network do '
                 "(<code>spikeloc analyse</code>; data in <code>analysis/</code>).</p>",
                 _analysis_table(analysis, config.model.hidden)]
        body += [_figure(name, path, ANALYSIS_CAPTIONS.get(name, ""))
                 for name, path in (analysis_figures or {}).items()]
    body.append(f"<h2>Configuration</h2><pre>{escape(config.to_toml())}</pre>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>spikeloc run report</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def write_report(path: str | Path, config: RunConfig, metrics: RunMetrics, figures: dict[str, Path],
                 analysis: Analysis | None = None, analysis_figures: dict[str, Path] | None = None) -> Path:
    """Write the report to ``path`` atomically (an existing report is never half-overwritten)."""
    path = Path(path)
    text = render(config, metrics, figures, analysis, analysis_figures)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, text.encode("utf-8"))
