"""How long the hidden-unit analysis takes: ``analyse`` (the numbers) and its figures, per run folder.

    .venv/bin/python benchmarks/analysis_speed.py RUN [RUN ...] [--samples 4096] [--repeats 3]

Prints the median of the repeats in seconds; the targets (docs/analysis.md) are 10 s for a 30-hidden run
and 60 s for a 512-hidden run, analysis and figures together, on 4,096 samples and 2 CPU cores.
"""

from __future__ import annotations

import argparse
import statistics
import time

from spikeloc import analysis, load_run
from spikeloc.runs import resolve_threads, using_threads
from spikeloc.viz.figures import analysis_specs, render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'run':40} {'hidden':>6} {'analyse (s)':>12} {'figures (s)':>12} {'total (s)':>10}")
    for path in args.runs:
        run = load_run(path)
        threads = resolve_threads(run.config.threads)
        numbers, figures = [], []
        with using_threads(threads):
            for _ in range(args.repeats):
                start = time.perf_counter()
                found = analysis.analyse(run, args.samples)
                numbers.append(time.perf_counter() - start)
                start = time.perf_counter()
                render(analysis_specs(run, found), threads)
                figures.append(time.perf_counter() - start)
        a, f = statistics.median(numbers), statistics.median(figures)
        print(f"{path:40} {run.config.model.hidden:6d} {a:12.1f} {f:12.1f} {a + f:10.1f}")


if __name__ == "__main__":
    main()
