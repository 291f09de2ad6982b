"""Sweeps: the sweep file and flags, run folders equal to `spikeloc train`'s, the store (re-runs, a different
sweep, SIGKILL), failures, statistics, the report, and the local and Ray executors with a dying worker."""

import dataclasses
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch
from cli_runner import run_cli
from dying_job import MARKER, dying_job
from safetensors.torch import load_file
from scipy import stats

import spikeloc
from spikeloc.runs.folder import load_run, read_status
from spikeloc.sweeps import Resources, run_sweep, spec_from_dict, spec_from_flags
from spikeloc.sweeps.spec import plan
from spikeloc.sweeps.store import Store

TINY = ["--preset", "tiny", "--set", "train.epochs=2"]
GRID = ["--grid", "model.hidden=8,16", "--seeds", "2"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A 2 x 2 sweep with the local executor, two jobs of one thread, the seeds of a point stacked."""
    out = tmp_path_factory.mktemp("sweep") / "s"
    spec = spec_from_flags("tiny", ("train.epochs=2",), ("model.hidden=8,16",), (), 2)
    counts = run_sweep(spec, out, Resources(jobs=2, threads=1), progress=False)
    return out, counts


def test_the_sweep_file_reads_as_the_flags(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('preset = "tiny"\nseeds = [3, 4]\n[base.train]\nepochs = 2\n'
                    '[grid]\n"model.hidden" = [8, 16]\nlr = [0.01, 0.02]\n'
                    '[zip]\n"model.readout" = ["mean", "max"]\ntau_out_ms = [2.0, 20.0]\n')
    spec = spikeloc.sweeps.read_spec(path)
    assert spec.base == {"train.epochs": 2} and spec.seeds == (3, 4)
    assert spec.keys == ["model.hidden", "train.lr", "model.readout", "model.tau_out_ms"]
    points = spec.points()
    assert len(points) == 2 * 2 * 2
    assert {(p["model.readout"], p["model.tau_out_ms"]) for p in points} == {("mean", 2.0), ("max", 20.0)}
    runs = plan(spec)
    assert len(runs) == 16 and len({r.name for r in runs}) == 16 and len({r.identity for r in runs}) == 16
    assert runs[1].config.seed == 4 and runs[1].config.model.hidden == 8 and runs[1].config.train.epochs == 2
    clash = plan(spec_from_flags("tiny", (), ("description=a/b,a_b",), (), 1))  # one folder name, made safe
    assert [r.name for r in clash] == ["p0000-s0", "p0001-s0"]
    flags = spec_from_flags("tiny", ("train.epochs=2",), ("model.hidden=8,16", "lr=0.01,0.02"),
                            ("model.readout=mean,max", "tau_out_ms=2.0,20.0"), None)
    assert [r.identity for r in plan(dataclasses.replace(flags, seeds=(3, 4)))] == [r.identity for r in runs]


@pytest.mark.parametrize("text, message", [
    ('[grid]\n"model.hiden" = [1, 2]', r"unknown config key 'model.hiden' \(did you mean model.hidden"),
    ('[grid]\n"model.hidden" = [8, -1]',
     r"swept model.hidden: Input should be greater than or equal to 1 \(got -1\)"),
    ('[grid]\n"model.readout" = ["mean", "nope"]', r"swept model.readout: Input should be 'mean'"),
    ('[grid]\n"model.hidden" = 8', r"grid.model.hidden: must be a non-empty list"),
    ('[zip]\n"model.hidden" = [8, 16]\nlr = [0.1]', r"the zipped lists must have one length"),
    ('[base]\nhidden = 8\n[grid]\nhidden = [8, 16]', r"model.hidden is set twice"),
    ('seeds = 0', r"seeds must be a count from 1 to 1000"),
    ('seed = [1, 2]', r"unknown key 'seed'; a sweep file has preset, seeds"),
    ('[grid]\nseed = [1, 2]', r"seed is set by the sweep's seeds"),
    ('[base]\nmodels = 3', r"train.models is set by the sweep"),
    ('preset = "nope"', r"unknown preset 'nope'"),
])
def test_a_bad_sweep_file_is_one_line_naming_the_key(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    status, _, err = run_cli("sweep", "run", str(path), "--out", str(tmp_path / "o"), capsys=capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err
    assert not (tmp_path / "o").exists()  # nothing ran, nothing was made


def test_bad_flags_are_one_line(tmp_path, capsys):
    for args in (["--grid", "hidden"], ["--grid", "hidden=8,16", "--address", "auto"],
                 [str(tmp_path / "missing.toml")]):
        status, _, err = run_cli("sweep", "run", *TINY, *args, "--out", str(tmp_path / "o"), capsys=capsys)
        assert status == 2 and len(err.strip().splitlines()) == 1, err
    status, _, err = run_cli("sweep", "status", str(tmp_path), capsys=capsys)
    assert status == 2 and "holds no sweep" in err
    (tmp_path / "a-run").mkdir()
    (tmp_path / "a-run" / "metrics.json").write_text("{}")
    status, _, err = run_cli("sweep", "run", *TINY, *GRID, "--out", str(tmp_path / "a-run"), capsys=capsys)
    assert status == 2 and "holds files but no sweep" in err
    assert sorted(p.name for p in (tmp_path / "a-run").iterdir()) == ["metrics.json"]  # left as it was


def test_every_run_is_an_ordinary_folder_equal_to_spikeloc_train(swept, tmp_path, capsys):
    out, counts = swept
    assert counts == {"total": 4, "pending": 0, "running": 0, "finished": 4, "failed": 0}
    folders = sorted((out / "runs").iterdir())
    assert [f.name for f in folders] == ["hidden=16-s0", "hidden=16-s1", "hidden=8-s0", "hidden=8-s1"]
    assert all(read_status(f)["state"] == "complete" for f in folders)
    # seed 1 trained in a stack with seed 0: the same as `spikeloc train` of its config, bit for bit
    member = out / "runs" / "hidden=16-s1"
    status, _, _ = run_cli("train", "--config", str(member / "config.toml"), "--out", str(tmp_path / "alone"),
                           "-q", "--no-analysis", capsys=capsys)
    assert status == 0
    a, b = load_file(member / "weights.safetensors"), load_file(tmp_path / "alone" / "weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    run = load_run(member)
    assert run.config.seed == 1 and run.config.model.hidden == 16 and run.config.train.models == 1
    alone = load_run(tmp_path / "alone")
    assert run.metrics.test == alone.metrics.test
    status, _, _ = run_cli("report", str(member), capsys=capsys)  # the figures can be drawn later
    assert status == 0 and (member / "report.html").is_file()


def test_the_summary_is_the_mean_sd_and_t_interval_of_the_seeds(swept, tmp_path, capsys):
    out, _ = swept
    status, text, _ = run_cli("sweep", "summary", str(out), "--json", "--csv", str(tmp_path / "s.csv"),
                              capsys=capsys)
    assert status == 0
    summary = json.loads(text)
    assert [s["point"] for s in summary] == [{"model.hidden": 8}, {"model.hidden": 16}]
    for s in summary:
        hidden = s["point"]["model.hidden"]
        acc = [json.loads((out / "runs" / f"hidden={hidden}-s{seed}" / "metrics.json").read_text())
               ["models"]["spiking"]["test"]["accuracy"]["mean"] for seed in (0, 1)]
        mean, sd = sum(acc) / 2, math.sqrt(sum((a - sum(acc) / 2) ** 2 for a in acc))
        half = stats.t.ppf(0.975, 1) * sd / math.sqrt(2)
        assert s["n"] == 2 and s["failed"] == 0
        assert s["accuracy"]["mean"] == pytest.approx(mean) and s["accuracy"]["sd"] == pytest.approx(sd)
        assert s["accuracy"]["ci95"] == pytest.approx([mean - half, mean + half])
        assert set(s) >= {"mae_deg", "mae_continuous_deg", "train_seconds"}
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0].startswith("model.hidden,n,failed,accuracy_mean") and len(lines) == 3
    status, text, _ = run_cli("sweep", "report", str(out), capsys=capsys)
    html = (out / "sweep.html").read_text()
    assert status == 0 and "MAE against model.hidden" in html and "data:image/png;base64" in html
    assert (out / "figures" / "model_hidden.png").stat().st_size > 10_000


def test_a_second_run_skips_finished_runs_and_another_sweep_is_refused(swept, capsys):
    out, _ = swept
    before = {r.name: r.metrics for r in Store(out).rows()}
    status, text, _ = run_cli("sweep", "run", *TINY, *GRID, "--out", str(out), "--jobs", "2", "--threads",
                              "1", capsys=capsys)
    assert status == 0 and "[" not in text.split("hidden  n")[0]  # no run line: nothing trained
    assert {r.name: r.metrics for r in Store(out).rows()} == before
    assert all(r.attempts == 1 for r in Store(out).rows())
    status, _, err = run_cli("sweep", "run", *TINY, "--grid", "model.hidden=8,32", "--seeds", "2", "--out",
                             str(out), capsys=capsys)
    assert status == 2 and "holds another sweep" in err and len(err.strip().splitlines()) == 1


def test_failed_runs_are_recorded_with_their_reason_and_the_sweep_goes_on(tmp_path, capsys):
    """A NaN (a learning rate of 1e30) in a stack of two: each seed is tried alone, and fails; a refused
    combination (Dale's law and excitatory-only) fails without running; the other points finish."""
    out = tmp_path / "f"
    spec = spec_from_dict({"preset": "tiny", "seeds": 2, "base": {"train.epochs": 1, "model.dale": True},
                           "grid": {"train.lr": [0.01, 1e30], "model.excitatory_only": [False, True]}},
                          "test")
    counts = run_sweep(spec, out, Resources(jobs=1, threads=1), progress=False)
    assert counts["total"] == 8 and counts["finished"] == 2 and counts["failed"] == 6
    rows = Store(out).rows()
    reasons = {r.name: r.reason for r in rows if r.status == "failed"}
    diverged = [reasons[f"lr=1e+30,excitatory_only=False-s{s}"] for s in (0, 1)]
    assert all("training diverged in epoch 1" in r for r in diverged), diverged
    assert all("dale and excitatory_only exclude each other" in reasons[n]
               for n in reasons if "excitatory_only=True" in n)
    _, text, _ = run_cli("sweep", "summary", str(out), "--json", capsys=capsys)
    by_point = {json.dumps(s["point"], sort_keys=True): s for s in json.loads(text)}
    ok = by_point[json.dumps({"model.excitatory_only": False, "train.lr": 0.01}, sort_keys=True)]
    assert ok["n"] == 2 and ok["failed"] == 0
    assert sum(s["failed"] for s in by_point.values()) == 6
    assert not (out / "runs" / "lr=1e+30,excitatory_only=False-s0").exists()


def test_a_sigkilled_sweep_finishes_when_run_again_with_every_run_recorded_once(tmp_path, capsys):
    out = tmp_path / "k"
    args = ["sweep", "run", *TINY, "--set", "train.epochs=4", "--grid", "model.hidden=8,12,16", "--seeds",
            "2", "--stack", "1", "--jobs", "1", "--threads", "1", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "spikeloc", *args, "-q"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    finished_before = 0
    while time.time() < deadline and proc.poll() is None:  # kill it once some, not all, runs are finished
        if (out / "sweep.sqlite").exists():
            with sqlite3.connect(out / "sweep.sqlite") as db:
                query = "SELECT count(*) FROM runs WHERE status = 'finished'"
                finished_before = db.execute(query).fetchone()[0]
            if finished_before >= 2:
                break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = {r.name: r.metrics for r in Store(out).rows() if r.status == "finished"}
    assert len(kept) >= 2
    status, _, _ = run_cli("sweep", "status", str(out), capsys=capsys)
    status, text, _ = run_cli("sweep", "status", str(out), "--json", capsys=capsys)
    counts = json.loads(text)
    assert counts["running"] == 0 and counts["finished"] == len(kept) and counts["total"] == 6
    status, _, _ = run_cli(*args, capsys=capsys)
    assert status == 0
    rows = Store(out).rows()
    assert len(rows) == 6 and all(r.status == "finished" for r in rows)
    assert {r.name: r.metrics for r in rows if r.name in kept} == kept  # none redone, none recorded twice
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(r.name for r in rows)
    assert all(read_status(out / "runs" / r.name)["state"] == "complete" for r in rows)


def test_a_dead_local_worker_is_replaced_and_its_job_run_again(tmp_path):
    out = tmp_path / "d"
    spec = spec_from_flags("tiny", ("train.epochs=1",), ("model.hidden=8,16",), (), 1)
    counts = run_sweep(spec, out, Resources(jobs=2, threads=1), progress=False, job_function=dying_job)
    assert (out / MARKER).exists() and counts["finished"] == 2 and counts["failed"] == 0
    assert all(r.attempts == 1 for r in Store(out).rows())


def test_the_ray_executor_gives_the_local_results_and_retries_a_dead_worker(swept, tmp_path):
    ray = pytest.importorskip("ray")
    import dying_job as module

    ray.cloudpickle.register_pickle_by_value(module)  # Ray's workers do not have tests/support on their path
    out = tmp_path / "r"
    spec = spec_from_flags("tiny", ("train.epochs=2",), ("model.hidden=8,16",), (), 2)
    counts = run_sweep(spec, out, Resources(executor="ray", jobs=2, threads=1), progress=False,
                       job_function=dying_job)
    assert (out / MARKER).exists()
    assert counts == {"total": 4, "pending": 0, "running": 0, "finished": 4, "failed": 0}
    local, _ = swept
    for name in ("hidden=8-s0", "hidden=16-s1"):
        a, b = load_file(out / "runs" / name / "weights.safetensors"), load_file(
            local / "runs" / name / "weights.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert {r.name: r.metrics["accuracy"] for r in Store(out).rows()} == {
        r.name: r.metrics["accuracy"] for r in Store(local).rows()}
