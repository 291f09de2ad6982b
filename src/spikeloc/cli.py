"""``spikeloc``: the command line. It only wires the library's stages together.

The stages are reached through their packages' lazy names (``runs.train``), so ``spikeloc --help``,
``presets`` and ``config`` never import torch or matplotlib. Bad input ends with one line on stderr
(``error: ...``) and exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

import click

from . import analysis, config, export, observer, runs, sweeps, viz
from .errors import SpikelocError

CONFIG_OPTIONS = [
    click.option("--preset", "-p", default=None,
                 help="Named preset (see `spikeloc presets`); default: 'default'."),
    click.option("--config", "-c", "config_file",
                 type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="TOML file; overrides the preset (it may name its own `preset = \"...\"`)."),
    click.option("--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE",
                 help="Override one field, e.g. --set train.epochs=20 or --set hidden=64 (repeatable)."),
    click.option("--seed", type=click.IntRange(min=0), default=None,
                 help="Random seed (default: the config's)."),
    click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
                 help="Where to compute (default: the config's, 'auto')."),
    click.option("--threads", type=click.IntRange(min=1), default=None,
                 help="CPU threads (default: the config's, 'auto': OMP_NUM_THREADS if set, else the CPUs "
                      "other work leaves free)."),
]

ANALYSE_UP_TO = 1024  # hidden units: `train` analyses smaller networks itself

THREADS_OPTION = click.option("--threads", type=click.IntRange(min=1), default=None,
                              help="CPU threads (default: the count the run recorded; 'auto' for a run of an "
                                   "earlier release).")


def config_options(f):
    for option in reversed(CONFIG_OPTIONS):
        f = option(f)
    return f


def resolve(preset, config_file, overrides, seed, device, threads):
    return config.load_config(preset, config_file, overrides, seed=seed, device=device, threads=threads)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spikeloc")
def cli():
    """Train and analyse spiking networks that localise sound from the interaural phase difference."""


@cli.command()
@config_options
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder to create (default: runs/NAME-TIME-sSEED, NAME the preset or config file's).")
@click.option("--models", "-k", type=click.IntRange(min=1), default=None,
              help="Train K independent models at once (seeds seed..seed+K-1).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Continue the interrupted run in this folder, from its last checkpoint, "
                   "as its config.toml says.")
@click.option("--quiet", "-q", is_flag=True,
              help="Print only the result table: no progress bar, no line per epoch or stage.")
@click.option("--no-analysis", is_flag=True,
              help=f"Skip the hidden-unit analysis (done by default up to {ANALYSE_UP_TO} hidden units).")
def train(preset, config_file, overrides, seed, device, threads, out, models, resume_dir, quiet, no_analysis):
    """Train a spiking model (and, with train.membrane_baseline, the membrane-only baseline) and write a run
    folder with a report.

    A checkpoint is written after every epoch; an interrupted run continues with --resume and ends
    as it would have without the interruption.
    """
    started = time.perf_counter()
    if resume_dir is not None:
        given = [flag for flag, value in (("--preset", preset), ("--config", config_file),
                                          ("--set", overrides), ("--seed", seed), ("--device", device),
                                          ("--threads", threads), ("--out", out), ("--models", models))
                 if value not in (None, ())]
        if given:
            raise click.UsageError("--resume continues the run as its config.toml says; "
                                   f"drop {', '.join(given)}")
        try:
            folder = runs.RunFolder.resume(resume_dir)
        except runs.AlreadyComplete as e:
            click.echo(str(e))
            return
        click.echo(f"resuming {folder.path}: {folder.progress()}")
    else:
        overrides = (*overrides, f"train.models={models}") if models else overrides
        cfg = resolve(preset, config_file, overrides, seed, device, threads)
        runs.check_memory(cfg)  # before any folder is made
        name = preset or (config_file.stem if config_file else "default")
        default = Path("runs") / f"{name}-{datetime.now():%Y%m%d-%H%M%S}-s{cfg.seed}"
        folder = runs.RunFolder.create(out or default, cfg, unique=out is None)
    seconds = {}

    def stage_ended(name: str) -> None:  # wall time since the end of the last stage
        seconds[name] = time.perf_counter() - started - sum(seconds.values())

    log = None if quiet else click.echo  # a line per epoch and per stage

    with folder:
        stage_ended("start (imports, config, folder)")
        run = runs.train(folder.config, progress=not quiet, checkpoints=folder.checkpoints, log=log)
        stage_ended("training and evaluation")
        folder.save(run)  # results are on disk before anything that could fail while drawing
        click.echo(viz.metrics_table(run.metrics))
        found = None
        if not no_analysis and run.config.model.hidden <= ANALYSE_UP_TO:
            found = analysis.analyse(run)
            analysis.write(found, folder.path)
            stage_ended("hidden-unit analysis")
            if log:
                log(f"hidden-unit analysis: {seconds['hidden-unit analysis']:.1f} s\n"
                    f"{viz.analysis_summary(found)}")
        report = viz.draw(run, folder.path, analysis=found)
        stage_ended("save, figures and report")
        folder.complete(seconds | {"total": time.perf_counter() - started})
    if log:
        log(f"figures and report: {seconds['save, figures and report']:.1f} s\nrun folder: {folder.path}\n"
            f"report: {report}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the fresh test set (default: the run's seed + 1).")
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="Test samples (default: the run's).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Evaluate with another stimulus or perturbed test spikes, e.g. --set stimulus.f=40 or "
                   "--set eval.spike_deletion=0.2 (repeatable; the fields a trained network can take: "
                   + ", ".join([*(f"stimulus.{k}" for k in config.EVALUABLE_STIMULUS),
                                *(f"eval.{k}" for k in config.EVALUABLE_EVAL)]) + ").")
@THREADS_OPTION
def evaluate(run_dir, seed, samples, as_json, overrides, threads):
    """Evaluate a trained run on a fresh test set, with the ideal observer on the same samples, and print
    the metrics."""
    run = runs.load_run(run_dir)
    tc = run.config.train
    cfg = runs.evaluation_config(run, overrides)
    samples = samples or tc.batch_size * tc.test_batches
    seed = run.config.seed + 1 if seed is None else seed
    runs.check_samples(cfg.stimulus, samples)
    with runs.using_threads(threads or runs.resolve_threads(run.config.threads)):
        metrics = runs.evaluate_fresh(run, samples, seed, cfg, ideal_observer=True)
    if as_json:
        click.echo(json.dumps(metrics.to_json(), indent=2))
        return
    changed = [f"{section}.{k} = {v} (trained with {getattr(getattr(run.config, section), k)})"
               for section in ("stimulus", "eval") for k, v in getattr(cfg, section).model_dump().items()
               if v != getattr(getattr(run.config, section), k)]
    perturbed = any(k.startswith("eval.spike_") for k in changed)  # the input spikes, not the network
    click.echo(f"{samples:,} fresh test samples (seed {seed})"
               + (f"; {', '.join(changed)}" if changed else "")
               + ("; the ideal observer assumes clean spikes" if perturbed else ""))
    click.echo(viz.metrics_table(metrics))


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@THREADS_OPTION
def report(run_dir, threads):
    """Re-draw the figures and the HTML report of a run folder (and its metrics, if they are unreadable)."""
    run = runs.load_run(run_dir)
    threads = threads or runs.resolve_threads(run.config.threads)
    with runs.locked(run_dir), runs.using_threads(threads):
        runs.remove_temporaries(run_dir)  # of an earlier report that was killed
        if run.metrics is None:
            run.metrics = runs.evaluate_run(run, runs.member_datasets(run.config, run.device))
            runs.write_metrics(run)
            click.echo("note: metrics.json recomputed from the weights (the stages' timings are lost)",
                       err=True)
        if not run.history:
            click.echo("note: without history.csv the report has no loss figure", err=True)
        for problem in run.problems:
            click.echo(f"note: {problem}", err=True)
        click.echo(f"report: {viz.draw(run, run_dir, workers=threads, analysis=analysis.read(run_dir))}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--samples", "-n", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Fresh stimuli to analyse (each with its own phase offset).")
@click.option("--model", "-k", "model", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which model of a run of several (train --models K).")
@THREADS_OPTION
def analyse(run_dir, samples, model, threads):
    """What the hidden units learned: rates, silent units, IPD tuning, ablation, errors by IPD.

    Writes RUN_DIR/analysis/ (CSV, JSON and figures) and adds an Analysis section to report.html.
    """
    run = runs.load_run(run_dir)
    runs.check_samples(run.config.stimulus, samples)
    threads = threads or runs.resolve_threads(run.config.threads)
    with runs.locked(run_dir), runs.using_threads(threads):
        runs.remove_temporaries(run_dir)
        found = analysis.analyse(run, samples, model)
        folder = analysis.write(found, run_dir)
        report = viz.draw(run, run_dir, workers=threads, analysis=found) if run.metrics is not None else None
    click.echo(viz.analysis_summary(found))
    click.echo(f"analysis: {folder}")
    click.echo(f"report: {report}" if report else "note: no report (metrics.json is missing)")


@cli.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["nir"]), default="nir", show_default=True,
              help="File format: NIR, the Neuromorphic Intermediate Representation.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write, e.g. model.nir (an existing file is replaced whole).")
@click.option("--model", "-k", "model", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which model of a run of several (train --models K).")
@click.option("--approximate", is_flag=True,
              help="Export a run whose update rule NIR cannot express (notebook, standard) with the "
                   "immediate rule's mapping; the measured spike agreement is printed and stored in the "
                   "file.")
def export_run(run_dir, fmt, out, model, approximate):
    """Write one trained model as a NIR graph (for Norse, snnTorch, Sinabs, Rockpool, hardware)."""
    graph = export.to_nir(runs.load_run(run_dir), model, approximate)
    path = export.write(graph, out)
    agreement = graph.metadata.get("hidden_spike_agreement")
    if agreement is not None:
        click.echo(f"approximation: {100 * agreement:.2f} % of hidden spikes reproduced by forward Euler "
                   f"(update_rule = {graph.metadata['update_rule']} exported as immediate)")
    click.echo(f"{fmt}: {path}")


@cli.command("config")
@config_options
def show_config(preset, config_file, overrides, seed, device, threads):
    """Print the resolved config as TOML (what `train` would run with)."""
    click.echo(resolve(preset, config_file, overrides, seed, device, threads).to_toml(), nl=False)


@cli.command()
def presets():
    """List the named presets."""
    descriptions = config.preset_descriptions()
    width = max(map(len, descriptions))
    for name, text in descriptions.items():
        click.echo(f"{name:{width}}  {text}")


@cli.command()
@config_options
@click.option("--samples", "-n", type=click.IntRange(min=1), default=8192, show_default=True,
              help="Test samples (each with its own phase offset).")
@click.option("--json", "as_json", is_flag=True,
              help="Print {known_offset: {...}, unknown_offset: {...}} as JSON.")
def bound(preset, config_file, overrides, seed, device, threads, samples, as_json):
    """The Bayesian ideal observer's accuracy and error for the config's stimulus: the physical limit."""
    cfg = resolve(preset, config_file, overrides, seed, device, threads)
    runs.check_samples(cfg.stimulus, samples)
    with runs.using_threads(runs.resolve_threads(cfg.threads)):
        result = observer.bound(cfg.stimulus, samples=samples, seed=cfg.seed,
                                device=runs.resolve_device(cfg.device))
    click.echo(json.dumps(result, indent=2) if as_json else viz.bound_summary(result))


# ---------------------------------------------------------------- sweeps

@cli.group()
def sweep():
    """Many runs from one command: a grid of config values times seeds, with statistics (docs/sweeps.md)."""


@sweep.command("run")
@click.argument("sweep_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--preset", "-p", default=None, help="Base preset (without a sweep file); default: 'default'.")
@click.option("--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE",
              help="A base override for every run (repeatable; without a sweep file).")
@click.option("--grid", "-g", multiple=True, metavar="KEY=V1,V2,...",
              help="Swept values; several --grid give their product (without a sweep file).")
@click.option("--zip", "zipped", multiple=True, metavar="KEY=V1,V2,...",
              help="Lists of one length taken together (without a sweep file).")
@click.option("--seeds", type=click.IntRange(min=1, max=1000), default=None,
              help="Seeds 0..N-1 of every point (without a sweep file; default 1).")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The sweep's folder (default with a sweep file: runs/sweeps/NAME).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="A local process pool, or Ray tasks (pip install 'spikeloc[cluster]').")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Jobs at once (default: one per CPU, or what the Ray cluster holds).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads per job (default: CPUs // jobs).")
@click.option("--address", default=None,
              help="Ray cluster to join: auto or HOST:PORT (default: a local Ray).")
@click.option("--gpus-per-job", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="GPUs each Ray job asks for; a fraction lets jobs share a GPU.")
@click.option("--stack", type=click.IntRange(min=1), default=None,
              help="At most this many seeds of a point trained at once in one job (default: enough jobs to "
                   "keep every slot busy, at most 16 seeds each).")
@click.option("--retry-failed", is_flag=True,
              help="Run the failed runs again (default: only unfinished ones).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary: no bar, no line per run.")
def sweep_run(sweep_file, preset, overrides, grid, zipped, seeds, out, executor, jobs, threads, address,
              gpus_per_job, stack, retry_failed, quiet):
    """Run a sweep into a folder: one run folder per (point, seed), a SQLite store, sweep.html.

    Run it again to finish an interrupted sweep: finished runs are skipped.
    """
    if sweep_file is not None:
        given = [flag for flag, value in (("--preset", preset), ("--set", overrides), ("--grid", grid),
                                          ("--zip", zipped), ("--seeds", seeds)) if value not in (None, ())]
        if given:
            raise click.UsageError(f"a sweep file says what to sweep; drop {', '.join(given)}")
        spec = sweeps.read_spec(sweep_file)
        out = out or Path("runs") / "sweeps" / sweep_file.stem
    else:
        if out is None:
            raise click.UsageError("--out DIR is needed without a sweep file")
        spec = sweeps.spec_from_flags(preset, overrides, grid, zipped, seeds)
    if address is not None and executor != "ray":
        raise click.UsageError("--address is for --executor ray")
    if gpus_per_job and executor != "ray":
        raise click.UsageError("--gpus-per-job is for --executor ray")
    resources = sweeps.Resources(executor, jobs, threads, gpus_per_job, address, stack)
    counts = sweeps.run_sweep(spec, out, resources, retry_failed=retry_failed,
                              log=None if quiet else click.echo, progress=not quiet)
    report = viz.write_sweep_report(out)
    store = sweeps.Store(out)
    try:
        click.echo(sweeps.text_table(sweeps.summarise(store.rows())))
    finally:
        store.close()
    click.echo(f"{counts['finished']} of {counts['total']} runs finished, {counts['failed']} failed; "
               f"report: {report}")


@sweep.command("status")
@click.argument("sweep_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help='Print {"total", "finished", "running", "failed", "pending"}.')
def sweep_status(sweep_dir, as_json):
    """How far a sweep is: runs in all, finished, running, failed and still to do."""
    counts = sweeps.sweep_status(sweep_dir)
    click.echo(json.dumps(counts) if as_json else
               ", ".join(f"{counts[k]} {k}" for k in ("total", "finished", "running", "failed", "pending")))


@sweep.command("summary")
@click.argument("sweep_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON, one object per point.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the summary as CSV to this file.")
def sweep_summary(sweep_dir, as_json, csv_file):
    """Per point: n, and mean, sd and 95 % t-interval over seeds of accuracy, MAE, continuous MAE and train
    time."""
    store = sweeps.Store(sweep_dir)
    try:
        summary = sweeps.summarise(store.rows())
    finally:
        store.close()
    if csv_file is not None:
        runs.write_atomic(csv_file, sweeps.to_csv(summary).encode())
    click.echo(json.dumps([s.to_json() for s in summary], indent=2) if as_json
               else sweeps.text_table(summary))


@sweep.command("report")
@click.argument("sweep_dir", type=click.Path(file_okay=False, path_type=Path))
def sweep_report(sweep_dir):
    """Draw the sweep's figures and sweep.html again from its store."""
    click.echo(f"report: {viz.write_sweep_report(sweep_dir)}")


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="spikeloc", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted (a run folder keeps its last checkpoint: spikeloc train --resume DIR; a "
                   "sweep keeps its finished runs: run the same sweep command again)", err=True)
        sys.exit(130)
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(2)
    except SpikelocError as e:
        click.echo(f"error: {' '.join(str(e).split())}", err=True)  # one line, whatever a library put in it
        sys.exit(2)
    except OSError as e:  # a file that cannot be read or written, outside a run folder's own handling
        click.echo(f"error: {e.filename or 'a file'}: {e.strerror or e}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
