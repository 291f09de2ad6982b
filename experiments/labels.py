"""Probes of issue 18: networks trained from random weights on labels alone, towards the ideal observer.

Each probe is a preset with overrides, trained as ``spikeloc train`` would for each seed and tested on
``results.py``'s 8,192 fresh samples (offset per sample), beside the ideal observer on the same samples.
Every (probe, seed) is one line of ``--out`` (JSON), written when it ends, so a stopped run loses only the
run in progress and a second call skips what is there; ``--table`` prints docs/results.md's probes table.

    .venv/bin/python experiments/labels.py --probes step-labels --seeds 1
    .venv/bin/python experiments/labels.py --table
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from results import QUIET, fresh_test_set, ideal_row

from spikeloc.config import load_config
from spikeloc.evaluation import evaluate
from spikeloc.runs import train

# best-labels-templates (best-labels until 0.7.0) from random weights, at best-30-labels' learning rate
BASE = "best-labels-templates"
RANDOM = ["model.init=fan_in", "train.readout_only_epochs=0", "train.lr=0.01"]
STEP = ["model.readout=sum", "train.target=step_labels"]
# name: (preset, overrides, what it changes)
PROBES = {
    "random": (BASE, RANDOM, "best-labels-templates from random weights, lr 0.01"),
    "step-labels": (BASE, [*RANDOM, *STEP, "train.lr=0.003"],
                    "every step's readout trained on the label alone, lr 0.003"),
    "windows-10": (BASE, [*RANDOM, *STEP, "train.lr=0.003", "train.label_window_steps=10"],
                   "every window of 10 steps trained on the label alone"),
    "windows-25": (BASE, [*RANDOM, *STEP, "train.lr=0.003", "train.label_window_steps=25"],
                   "every window of 25 steps trained on the label alone"),
    "windows-5": (BASE, [*RANDOM, *STEP, "train.lr=0.003", "train.label_window_steps=5"],
                  "every window of 5 steps trained on the label alone"),
    "sum-labels": (BASE, [*RANDOM, "model.readout=sum", "train.lr=0.003"],
                   "the whole sample's label on the summed readout, lr 0.003 (windows of 100 steps)"),
    "windows-10-lr0.01": (BASE, [*RANDOM, *STEP, "train.label_window_steps=10"],
                          "windows of 10 steps at lr 0.01"),
    "windows-10-x4": (BASE, [*RANDOM, *STEP, "train.label_window_steps=10", "train.batch_size=256",
                                "train.lr=0.006"],
                      "windows of 10, 4x the data: batches of 256, lr 0.006"),
    "windows-10-gauss-3": (BASE, [*RANDOM, *STEP, "train.lr=0.003", "train.label_window_steps=10",
                                     "train.label_sigma_deg=3"],
                           "windows of 10 and soft labels of 3 deg"),
    "gauss-3": (BASE, [*RANDOM, "train.label_sigma_deg=3"], "Gaussian soft labels, 3 deg (one bin)"),
    "gauss-6": (BASE, [*RANDOM, "train.label_sigma_deg=6"], "Gaussian soft labels, 6 deg"),
    "30": ("best-30-labels", [], "best-30-labels as in 0.6.0"),
    "30-gauss-3": ("best-30-labels", ["train.label_sigma_deg=3"], "Gaussian soft labels, 3 deg"),
    "30-windows-10": ("best-30-labels", [*STEP, "train.label_window_steps=10"],
                      "every window of 10 steps trained on the label alone, lr 0.01"),
    "30-windows-10-lr0.003": ("best-30-labels", [*STEP, "train.label_window_steps=10", "train.lr=0.003"],
                              "the same at lr 0.003"),
}


def run_probe(name: str, seed: int) -> dict:
    preset, overrides, _ = PROBES[name]
    cfg = load_config(preset, overrides=[*QUIET, *overrides], seed=seed)
    t0 = time.perf_counter()
    model = train(cfg, progress=False).models["spiking"]
    seconds = time.perf_counter() - t0
    r = evaluate(model, fresh_test_set(cfg.stimulus, model.W1.device), cfg.stimulus)[0]
    ideal = ideal_row(cfg.stimulus)
    return {"probe": name, "seed": seed, "accuracy": r.accuracy, "mae": r.mae_deg,
            "mae_continuous": r.mae_continuous_deg, "seconds": seconds, "ideal_accuracy": ideal.accuracy}


def done(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def mean_sd(values: list[float], digits: int) -> str:
    v = np.array(values)
    return f"{v.mean():.{digits}f}" + (f" ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else "")


def table(rows: list[dict]) -> list[str]:
    """docs/results.md's probes table: a line per probe that has runs, mean ± sd over its seeds."""
    lines = ["| probe | overrides of the preset | seeds | accuracy % | MAE deg | MAE cont. deg | gap, points "
             "| train s |", "|---|---|---|---|---|---|---|---|"]
    for name, (preset, overrides, what) in PROBES.items():
        mine = [r for r in rows if r["probe"] == name]
        if not mine:
            continue
        column = {k: [r[k] for r in mine] for k in mine[0]}
        gap = 100 * (mine[0]["ideal_accuracy"] - np.mean(column["accuracy"]))
        effective = {o.split("=")[0]: o for o in overrides}  # a later override of a key replaces the earlier
        lines.append(f"| {name}: {what} | `{preset}` " + " ".join(f"`{o}`" for o in effective.values())
                     + f" | {len(mine)} | {mean_sd([100 * a for a in column['accuracy']], 1)} "
                     f"| {mean_sd(column['mae'], 2)} | {mean_sd(column['mae_continuous'], 2)} | {gap:.1f} "
                     f"| {np.mean(column['seconds']):.0f} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", default="", help="comma-separated names of PROBES")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--out", type=Path, default=Path("runs/labels.jsonl"))
    parser.add_argument("--table", action="store_true", help="only print the table of what --out holds")
    args = parser.parse_args()
    if args.table:
        print("\n".join(table(done(args.out))))
        return
    names = [n for n in args.probes.split(",") if n]
    unknown = set(names) - set(PROBES)
    if unknown or not names:
        parser.error(f"--probes: unknown {sorted(unknown)}; allowed: {', '.join(PROBES)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        for seed in (int(s) for s in args.seeds.split(",")):
            if any(r["probe"] == name and r["seed"] == seed for r in done(args.out)):
                continue
            r = run_probe(name, seed)
            print(f"{name} seed {seed}: {100 * r['accuracy']:.2f} % {r['mae']:.3f} deg "
                  f"{r['mae_continuous']:.3f} deg ({r['seconds']:.0f} s)", flush=True)
            with args.out.open("a") as f:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
