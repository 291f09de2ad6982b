"""Accuracy of the presets and community variants over seeds, beside the ideal observer.

Every model is trained as ``spikeloc train`` would (one run per seed: data and initialisation
both change with the seed) and then tested on the same 8,192 fresh samples with independent
phase offsets, on which the ideal observer is evaluated too. Writes ``docs/results.md``.

    .venv/bin/python experiments/results.py            # all rows, 5 seeds (about half an hour on 2 cores)
    .venv/bin/python experiments/results.py --rows "tutorial;best, anf_per_ear=50" --seeds 2 # re-run two rows
"""

from __future__ import annotations

import argparse
import functools
import platform
import time
from pathlib import Path

import numpy as np

from spikeloc.config import load_config
from spikeloc.evaluation import evaluate
from spikeloc.observer import IdealObserver
from spikeloc.runs import resolve_device, stage_generator, train
from spikeloc.task.stimulus import random_ipd_input_signal

TEST_SAMPLES, TEST_SEED = 8192, 12345
QUIET = ["eval.ideal_observer=false", "train.membrane_baseline=false"]

# (name, preset, overrides, note); the "other stimulus" rows use at most VARIANT_SEEDS seeds
VARIANT_SEEDS = 2
ROWS = [
    ("tutorial", "tutorial", [], "the notebook, as printed: 66.4 % / 6.4 deg; re-run 27-75 %"),
    ("fresh-offset", "tutorial", ["train.fresh_data=true"],
     "community: new phase offset every epoch, 85.3 % / 4.4 deg"),
    ("tau-2ms", "tutorial", ["model.tau_hidden_ms=2", "model.tau_out_ms=2", "train.epochs=50"],
     "community: tau 2 ms, 50 epochs, 84.4 % / 4.5 deg"),
    ("default", "default", [], "since 0.4.0 the best-30-labels recipe; 0.3.0's default had 76.6 ± 5.3 %"),
    ("best-30-labels", "best-30-labels", [], "best-30 trained on labels only"),
    ("best-30", "best-30", [], "30 hidden neurons, as the notebook"),
    ("best-labels-templates", "best-labels-templates", [],
     "labels only, hidden layer started as the observer's templates (best-labels until 0.7.0)"),
    ("best-labels", "best-labels", [], "labels only, random weights: every window of 10 steps on the label"),
    ("best", "best", [], ""),
    ("best-30-labels, anf_per_ear=50", "best-30-labels", ["stimulus.anf_per_ear=50"], "other stimulus"),
    ("best-30, anf_per_ear=50", "best-30", ["stimulus.anf_per_ear=50"], "other stimulus"),
    ("best-labels-templates, anf_per_ear=50", "best-labels-templates", ["stimulus.anf_per_ear=50"],
     "other stimulus"),
    ("best-labels, anf_per_ear=50", "best-labels", ["stimulus.anf_per_ear=50"], "other stimulus"),
    ("best, anf_per_ear=50", "best", ["stimulus.anf_per_ear=50"], "other stimulus"),
    ("best-30-labels, duration=0.2", "best-30-labels", ["stimulus.duration=0.2"], "other stimulus"),
    ("best-30, duration=0.2", "best-30", ["stimulus.duration=0.2"], "other stimulus"),
    ("best-labels-templates, duration=0.2", "best-labels-templates", ["stimulus.duration=0.2"],
     "other stimulus"),
    ("best-labels, duration=0.2", "best-labels", ["stimulus.duration=0.2"], "other stimulus"),
    ("best, duration=0.2", "best", ["stimulus.duration=0.2"], "other stimulus"),
]


def fresh_test_set(stim, device):
    stim = stim.model_copy(update={"offset": "per_sample"})
    return random_ipd_input_signal(TEST_SAMPLES, stim, stage_generator(TEST_SEED, "results-test", device))


def row(name, preset, overrides, seeds):
    values, seconds = [], []
    for seed in range(seeds):
        cfg = load_config(preset, overrides=[*QUIET, *overrides], seed=seed)
        t0 = time.perf_counter()
        run = train(cfg, progress=False)
        seconds.append(time.perf_counter() - t0)
        test = fresh_test_set(cfg.stimulus, run.device)
        r = evaluate(run.models["spiking"], test, cfg.stimulus)[0]
        values.append((r.accuracy, r.mae_deg, r.mae_continuous_deg))
        print(f"  {name} seed {seed}: {100 * r.accuracy:.1f} % {r.mae_deg:.2f} deg "
              f"{r.mae_continuous_deg:.2f} deg ({seconds[-1]:.0f} s)", flush=True)
    # the stimulus is the same for every seed
    return np.array(values), float(np.mean(seconds)), ideal_row(cfg.stimulus)


@functools.cache
def ideal_row(stim):
    """The ideal observer on the test set of a stimulus (rows with the same stimulus share it)."""
    return evaluate(IdealObserver(stim), fresh_test_set(stim, resolve_device("cpu")), stim)[0]


def read_table_and_notes(path: Path) -> tuple[dict[str, str], list[str]]:
    """The table lines of ``path`` by row name, and the hand-written lines after the table."""
    if not path.exists():
        return {}, []
    old = path.read_text().splitlines()
    start = next((i for i, line in enumerate(old) if line.startswith("| row |")), len(old))
    end = next((i for i in range(start, len(old)) if not old[i].startswith("|")), len(old))
    return {line[2:].split(" (")[0]: line for line in old[start + 2:end]}, old[end:]


def fmt(v, scale=1.0, digits=1):
    v = v * scale
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f} ({v.min():.{digits}f}-{v.max():.{digits}f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rows", default="", help="semicolon-separated row names (default: all); the other "
                        "rows already in --out are kept")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs" / "results.md")
    args = parser.parse_args()
    names = [n.strip() for n in args.rows.split(";") if n.strip()]
    unknown = set(names) - {r[0] for r in ROWS}
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; allowed: {'; '.join(r[0] for r in ROWS)}")
    wanted = [r for r in ROWS if not names or r[0] in names]
    # table lines by row name: those of an earlier run are kept until their row is run again
    old_table, _ = read_table_and_notes(args.out)
    table = old_table if names else {}
    lines = [
        "# Results", "",
        f"Test accuracy and mean absolute error over {args.seeds} seeds ({VARIANT_SEEDS} for other stimuli; "
        "mean ± sd (min-max)), each model",
        f"tested on the same {TEST_SAMPLES} fresh samples with an independent phase offset each; the ideal",
        "observer (exact Bernoulli likelihood, offset marginalised) on the same samples. MAE (midpoint):",
        "true IPD vs the estimated class's midpoint; MAE (continuous): vs the posterior median.",
        "", "Made by `.venv/bin/python experiments/results.py` "
        f"({platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}).", "",
        "| row | command (per seed S) | test accuracy % | MAE midpoint deg | MAE continuous deg "
        "| ideal: acc % / MAE / MAE cont. | gap, acc points | train time s | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, preset, overrides, note in wanted:
        print(name, flush=True)
        seeds = min(args.seeds, VARIANT_SEEDS) if note == "other stimulus" else args.seeds
        v, sec, ideal = row(name, preset, overrides, seeds)
        cmd = f"`spikeloc train --preset {preset} --seed S" + "".join(f" --set {o}" for o in overrides) + "`"
        gap = 100 * (ideal.accuracy - v[:, 0].mean())
        table[name] = (f"| {name} ({len(v)} seeds) | {cmd} | {fmt(v[:, 0], 100)} | {fmt(v[:, 1], digits=2)} "
                       f"| {fmt(v[:, 2], digits=2)} "
                       f"| {100 * ideal.accuracy:.1f} / {ideal.mae_deg:.2f} / {ideal.mae_continuous_deg:.2f} "
                       f"| {gap:.1f} | {sec:.0f} | {note} |")
        rows = [table[r[0]] for r in ROWS if r[0] in table]
        # read now, not at the start: notes edited during a long run stay
        notes = read_table_and_notes(args.out)[1]
        # after every row: a stopped run keeps what it finished
        args.out.write_text("\n".join(lines + rows + notes) + "\n")
        print(table[name], flush=True)


if __name__ == "__main__":
    main()
