"""The community's research variants (the comob-* presets) over 5 seeds: each under its notebook's protocol
and under spikeloc's fair one, beside the numbers the notebooks printed. Prints the rows of
docs/results.md's "Community variants" section.

    .venv/bin/python experiments/community.py --out runs/community               # every row
    .venv/bin/python experiments/community.py --out runs/community --rows dcls,tau2   # some rows
    .venv/bin/python experiments/community.py --out runs/community --table        # only print what is there

Each (row, protocol) is an ordinary sweep folder ``OUT/ROW/PROTOCOL`` (``spikeloc sweep summary`` reads it),
so a stopped run goes on where it stopped. The notebook protocol is the preset as it is (its own data sizes
and phase offsets); the fair protocol adds an offset per sample in training and testing and 8,192 test
samples, on which the ideal observer is scored too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spikeloc.sweeps import Store, run_sweep, spec_from_flags, summarise
from spikeloc.sweeps.driver import Resources

FAIR = ("stimulus.offset=per_sample", "train.test_batches=128")
# name, preset, overrides, what the notebook printed
ROWS = [
    ("random-offset", "comob-random-offset", (), "Quick_Start_random: 85.3 % / 4.4 deg (one run)"),
    ("random-offset-tau20", "comob-random-offset", ("model.tau_hidden_ms=20", "model.tau_out_ms=20"),
     "(a probe: the tutorial's 20 ms time constants)"),
    ("tau2", "comob-tau2", (), "Optimizing-Membrane-Time-Constant: 84.4 % / 4.5 deg (one run)"),
    ("dale-0.5", "comob-dale", (), "IE-neuron-distribution: 83.7 % / 4.4 deg (one run)"),
    ("dale-0.5-first", "comob-dale", ("model.inhibitory_units=first",),
     "(a probe: IE-neuron-distribution's masks, the left ear inhibitory)"),
    ("dale-0.2", "comob-dale", ("model.inhibitory_fraction=0.2",),
     "IE-neuron-distribution: 70.6 % / 6.2 deg"),
    ("excitatory-only", "comob-excitatory-only", (), "Excitatory-only-localisation: 51.2 % / 9.0 deg"),
    ("readout-spiking", "comob-readout-spiking", (), "Altering_output_neurons, fr 20 ms: 46.6 % (10 runs)"),
    ("alif", "comob-alif", (), "Dynamic_threshold, dth_2ms: 85.0 % / 4.3 deg (10 runs)"),
    ("alif-subtract", "comob-alif-subtract", (),
     "Dynamic_threshold, dth_sub_2ms: 87.3 % / 4.2 deg (10 runs)"),
    ("noise", "comob-noise", (), "Noise_robustness, 0.2 rad: about 70 % (3 runs, read off its plot)"),
    ("dt0.1", "comob-dt0.1", (), "Quick_Start_250HzClassification, tau 0.5 / 0.5 ms: 81.5 % / 4.6 deg"),
    ("dcls", "comob-dcls", (), "Quick_Start_Delay_DCLS, 30 ms: 88.2 % / 4.2 deg (one run)"),
]


def cell(interval, percent=True) -> str:
    if interval is None:
        return "-"
    scale, digits = (100, 1) if percent else (1, 2)
    return f"{scale * interval.mean:.{digits}f} ± {scale * interval.sd:.{digits}f}"


def summary_of(folder: Path):
    """The one point's summary of a sweep folder, None before it exists."""
    return summarise(Store(folder).rows())[0] if (folder / "sweep.sqlite").exists() else None


def table(out: Path, rows) -> list[str]:
    lines = ["| variant (preset) | the notebook printed | notebook protocol: acc % / MAE deg | "
             "fair protocol: acc % / MAE deg | ideal observer acc % | gap, points |",
             "|---|---|---|---|---|---|"]
    for name, preset, overrides, published in rows:
        note = preset + "".join(f", {o}" for o in overrides)
        own, fair = summary_of(out / name / "notebook"), summary_of(out / name / "fair")
        if not any(s is not None and s.n for s in (own, fair)):
            continue  # not run yet
        cells = []
        for s in (own, fair):
            cells.append("-" if s is None or not s.n else f"{cell(s.metrics['accuracy'])} / "
                         f"{cell(s.metrics['mae_deg'], percent=False)} (n = {s.n})")
        ideal = fair.ideal_observer if fair is not None else None
        gap = (f"{100 * (ideal.mean - fair.metrics['accuracy'].mean):.1f}"
               if ideal is not None and fair.metrics["accuracy"] else "-")
        lines.append(f"| {name} (`{note}`) | {published} | {cells[0]} | {cells[1]} | "
                     f"{cell(ideal) if ideal else '-'} | {gap} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", default="", help="comma-separated row names (default: all)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--protocols", default="notebook,fair")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--table", action="store_true", help="only print the table of what is there")
    args = parser.parse_args()
    names = [n.strip() for n in args.rows.split(",") if n.strip()]
    unknown = set(names) - {r[0] for r in ROWS}
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; allowed: {', '.join(r[0] for r in ROWS)}")
    rows = [r for r in ROWS if not names or r[0] in names]
    if not args.table:
        for name, preset, overrides, _ in rows:
            for protocol in args.protocols.split(","):
                extra = FAIR if protocol == "fair" else ()
                spec = spec_from_flags(preset, (*overrides, *extra), (), (), args.seeds)
                print(f"{name} / {protocol}", flush=True)
                run_sweep(spec, args.out / name / protocol, Resources(jobs=args.jobs, threads=1),
                          log=lambda line: print("  " + line, flush=True), progress=False)
    print("\n".join(table(args.out, rows)))


if __name__ == "__main__":
    main()
