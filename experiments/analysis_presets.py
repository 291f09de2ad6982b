"""The hidden-unit analysis of trained presets over seeds, set against the community's findings.

Each (preset, seed) is trained as ``spikeloc train`` would, and analysed as ``spikeloc analyse`` would
(4,096 fresh stimuli, a phase offset per sample). Prints the table of docs/analysis.md.

    .venv/bin/python experiments/analysis_presets.py --out /tmp/analysis-runs         # 5 rows x 5 seeds
    .venv/bin/python experiments/analysis_presets.py --rows tutorial --seeds 2 --out /tmp/a
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from spikeloc import analysis
from spikeloc.config import load_config
from spikeloc.runs import save, train

# the default preset of 0.3.0, on the tutorial's base
OLD_DEFAULT = ["stimulus.offset=per_sample", "model.update_rule=standard", "train.epochs=20",
               "train.fresh_data=true", "train.membrane_baseline=false"]
ROWS = {
    "tutorial": ("tutorial", []),
    "default of 0.3.0": ("tutorial", OLD_DEFAULT),
    "default": ("default", []),
    "best-30": ("best-30", []),
    "tutorial + Dale 0.5": ("tutorial", ["model.dale=true", "model.inhibitory_fraction=0.5"]),
}


def mean_sd(values, scale=1.0, digits=1) -> str:
    v = np.asarray(values, dtype=float) * scale
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1) if len(v) > 1 else 0:.{digits}f}"


def summary(found: list[analysis.Analysis]) -> dict[str, str]:
    """One table row from the analyses of the seeds."""
    chance_plus_5 = []
    for a in found:
        curve = a.ablation["largest effect first"]
        chance = 1 / a.output_tuning.shape[1]
        chance_plus_5.append(a.removed[np.argmax(curve <= chance + 0.05)])
    active = [np.isfinite(a.preferred_ipd_deg) for a in found]
    edge = [np.mean(np.abs(a.preferred_ipd_deg[m]) >= 60) for a, m in zip(found, active, strict=True)]
    broad = [np.mean(a.tuning_width_deg[m] >= 90) for a, m in zip(found, active, strict=True)]
    row = {
        "hidden": str(len(found[0].rate_hz)),
        "silent": mean_sd([a.silent.sum() for a in found]),
        "accuracy %": mean_sd([a.accuracy for a in found], 100),
        "without silent %": mean_sd([a.without_silent() for a in found], 100),
        "largest single effect (points)": mean_sd([(a.accuracy - a.single_unit_accuracy).max()
                                                   for a in found], 100),
        "units to near chance": mean_sd(chance_plus_5),
        "preferring abs(IPD) >= 60 deg": mean_sd(edge, 100, 0) + " %",
        "width >= 90 deg": mean_sd(broad, 100, 0) + " %",
    }
    if found[0].dale:
        row["without inhibition %"] = mean_sd([a.accuracy_without_inhibition for a in found], 100)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=";".join(ROWS), help="';'-separated row names")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True, help="folder for the run folders")
    args = parser.parse_args()
    table = {}
    for name in args.rows.split(";"):
        preset, overrides = ROWS[name]
        found = []
        for seed in range(args.seeds):
            start = time.perf_counter()
            cfg = load_config(preset, None, [*overrides, "eval.ideal_observer=false"], seed=seed)
            run = train(cfg, progress=False)
            folder = save(run, args.out / f"{name.replace(' ', '_')}-s{seed}")
            found.append(analysis.analyse(run))
            analysis.write(found[-1], folder)
            print(f"{name} seed {seed}: {time.perf_counter() - start:.0f} s, "
                  f"{int(found[-1].silent.sum())} silent, {100 * found[-1].accuracy:.1f} %", flush=True)
        table[name] = summary(found)
    columns = list(dict.fromkeys(key for row in table.values() for key in row))
    print("\n| row | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(row.get(c, "") for c in columns) + " |")


if __name__ == "__main__":
    main()
