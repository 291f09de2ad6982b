"""A sweep's self-contained HTML report, ``DIR/sweep.html``: what was swept, a figure per swept key, the
table of every point (mean ± sd and 95 % t-interval over seeds), the failures and the base config."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from ..runs.files import write_atomic
from ..sweeps.store import Row, Store
from ..sweeps.summary import failures, summarise, table_rows
from .plots import png
from .report import CSS, _figure
from .sweep_plots import SHOWN, metric_against_key

REPORT = "sweep.html"
FIGURES = "figures"


def _ideal(rows: list[Row], spec: dict) -> dict[str, float] | None:
    """The ideal observer's mean metrics over the finished runs, where no swept key changes the stimulus."""
    swept = [*spec.get("grid", {}), *spec.get("zip", {})]
    observed = [r.metrics["ideal_observer"] for r in rows
                if r.status == "finished" and r.metrics and r.metrics.get("ideal_observer")]
    if not observed or any(k.startswith("stimulus.") for k in swept):
        return None
    return {m: sum(o[m] for o in observed) / len(observed) for m in SHOWN}


def _axes(spec: dict) -> list[tuple[str, list[str], str]]:
    """A figure per grid key and one for the zipped keys (which move together): (the key on the x axis,
    the keys that make the lines, the axis label)."""
    grid, zipped = list(spec.get("grid", {})), list(spec.get("zip", {}))
    out = [(key, [k for k in grid if k != key] + zipped[:1], key) for key in grid]
    if zipped:
        label = zipped[0] + (f" (with {', '.join(zipped[1:])})" if len(zipped) > 1 else "")
        out.append((zipped[0], grid, label))
    return out


def _spec_text(spec: dict) -> str:
    """The sweep as it was given, one key per line: preset, seeds, then the base, grid and zip tables."""
    lines = [f"preset = {json.dumps(spec.get('preset'))}", f"seeds = {json.dumps(spec.get('seeds'))}"]
    for table in ("base", "grid", "zip"):
        if spec.get(table):
            entries = [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in spec[table].items()]
            lines += ["", f"[{table}]", *entries]
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'


def write_sweep_report(out: str | Path) -> Path:
    """Draw the figures into ``out/figures`` and write ``out/sweep.html`` (atomically) from the store."""
    out = Path(out)
    store = Store(out)
    try:
        spec, rows = store.spec(), store.rows()
    finally:
        store.close()
    summary = summarise(rows)
    ideal = _ideal(rows, spec)
    keys = list(summary[0].point) if summary else []
    counts = {s: sum(r.status == s for r in rows) for s in ("finished", "failed")}
    body = ["<h1>spikeloc sweep report</h1>",
            f'<p class="description">{escape(spec.get("description") or "")}</p>' if spec.get("description")
            else "",
            f'<p class="description">Preset <code>{escape(spec.get("preset", ""))}</code>; swept: '
            f"{escape(', '.join(keys) or 'nothing (seeds only)')}; seeds {escape(str(spec.get('seeds')))}; "
            f"{len(rows)} runs, {counts['finished']} finished, {counts['failed']} failed. Each run is a run "
            "folder in <code>runs/</code>.</p>"]
    finished = [s for s in summary if s.n]
    if finished and keys:
        (out / FIGURES).mkdir(exist_ok=True)
        for old in (out / FIGURES).glob("*.png"):  # an earlier release's or an earlier layout's figures
            old.unlink()
        body.append("<h2>Figures</h2>")
        for number, (key, series, xlabel) in enumerate(_axes(spec), start=1):
            path = write_atomic(out / FIGURES / f"{key.replace('.', '_')}.png",
                                png(metric_against_key(finished, rows, key, series, ideal, xlabel)))
            lines = f", one line per value of {', '.join(series)}" if series else ""
            dashed = "; dashed: the ideal observer on the same test sets" if ideal else ""
            caption = (f"Test accuracy, MAE and continuous MAE against {xlabel}: each seed a dot, the mean "
                       f"of each point with its 95 % t-interval{lines}{dashed}.")
            body.append(_figure(f"Figure {number}", path, caption))
    header, cells = table_rows(summary)
    observer = (f"the ideal observer on the same test sets: {100 * ideal['accuracy']:.1f} %, MAE "
                f"{ideal['mae_deg']:.2f} deg." if ideal else
                "the stimulus changes across points: each run's ideal observer is in its metrics.json.")
    body += ["<h2>Results</h2>", _table(header, cells),
             '<p class="note">mean ± sd over seeds [95 % t-interval of the mean]; accuracy on each '
             f"run's own test set; {observer}</p>"]
    failed = failures(rows)
    if failed:
        body += ["<h2>Failures</h2>", _table(["run", "reason"], [list(f) for f in failed])]
    body.append(f"<h2>Sweep</h2><pre>{escape(_spec_text(spec))}</pre>")
    text = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>spikeloc sweep report</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")
    return write_atomic(out / REPORT, text.encode("utf-8"))
