"""Nothing lost: real SIGKILLs and resumes, one writer per folder, write errors, divergence, determinism.

A run that is killed is a `spikeloc` process of its own, as a user's or a cluster scheduler's would be;
resumes and checks run the command line in this process, which is quicker.
"""

import contextlib
import io
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spikeloc.cli import main
from spikeloc.runs import files

DRIVER = Path(__file__).with_name("kill_driver.py")
# both model kinds, two stages (the readout-only one first), a cosine schedule, fresh data every epoch and a
# stack of two: every piece of state a checkpoint must carry
ARGS = ["--preset", "tiny", "--set", "train.membrane_baseline=true", "--set", "train.epochs=5", "--set",
        "train.readout_only_epochs=2", "--set", "train.lr_schedule=cosine", "--set", "train.fresh_data=true",
        "--models", "2", "--seed", "7", "-q"]


def cli(*args) -> tuple[int, str, str]:
    """The command line in this process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
        raise SystemExit(0)
    return e.value.code or 0, out.getvalue(), err.getvalue()


def spikeloc(*args, cwd=None, check=True):
    res = subprocess.run([sys.executable, "-m", "spikeloc", *args], capture_output=True, text=True, cwd=cwd)
    if check:
        assert res.returncode == 0, res.stderr
    return res


def killed(when, n, out):
    res = subprocess.run([sys.executable, str(DRIVER), when, str(n), "--", "train", *ARGS, "--out", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == -signal.SIGKILL, res.stderr
    return res


def results(folder):
    metrics = json.loads((folder / files.METRICS).read_text())
    metrics.pop("seconds")
    return (folder / files.WEIGHTS).read_bytes(), metrics, (folder / files.HISTORY).read_text().count("\n")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    assert cli("train", *ARGS, "--out", out)[0] == 0
    return results(out)


def assert_complete(folder):
    assert json.loads((folder / files.STATUS).read_text())["state"] == "complete"
    assert not (folder / files.CHECKPOINT).exists() and not list(folder.glob(".*.tmp"))


# checkpoints in order: spiking epochs 1-5 (2 ends the readout-only stage), spiking done, membrane 1-5, done
KILLS = [("batch", 1, "in the first batch, before any checkpoint"),
         ("batch", 9, "mid-epoch, after the first checkpoint"),
         ("checkpoint", 2, "right after the checkpoint that ends the readout-only stage"),
         ("writing", 4, "during a checkpoint write: its temporary file is written, not renamed"),
         ("checkpoint", 8, "with the spiking model done and the membrane model in training"),
         ("save", 1, "while writing the weights, after training"),
         ("figure", 3, "while drawing the figures, after the results are saved")]


@pytest.mark.parametrize("when, n, where", KILLS, ids=[f"{w}-{n}" for w, n, _ in KILLS])
def test_a_killed_run_resumes_to_the_same_result(tmp_path, reference, when, n, where):
    out = tmp_path / "run"
    killed(when, n, out)
    status = json.loads((out / files.STATUS).read_text())
    assert status["state"] == "running", where
    code, _, err = cli("evaluate", out)
    assert code == 2 and f"resume it with: spikeloc train --resume {out}" in err
    code, _, err = cli("train", *ARGS, "--out", out)
    assert code == 2 and "holds an interrupted run; continue it with" in err
    assert cli("train", "--resume", out, "-q")[0] == 0
    assert_complete(out)
    assert results(out) == reference, where


def test_a_resume_killed_again_still_ends_the_same(tmp_path, reference):
    out = tmp_path / "run"
    killed("checkpoint", 3, out)
    res = subprocess.run([sys.executable, str(DRIVER), "checkpoint", "5", "--", "train", "--resume", str(out),
                          "-q"], capture_output=True, text=True)
    assert res.returncode == -signal.SIGKILL
    progress = json.loads((out / files.STATUS).read_text())["progress"]
    assert progress == {"trained": ["spiking"], "kind": "membrane", "epoch": 1, "epochs": 5}
    code, out_text, _ = cli("train", "--resume", out, "-q")
    assert code == 0 and f"resuming {out}: spiking model trained, membrane model at epoch 1 of 5" in out_text
    assert results(out) == reference
    code, out_text, _ = cli("train", "--resume", out)
    assert code == 0 and "already complete; nothing to resume" in out_text


def test_a_resume_with_an_edited_config_is_refused(tmp_path):
    out = tmp_path / "run"
    killed("checkpoint", 3, out)
    config = (out / files.CONFIG).read_text()
    for edited in (config.replace("seed = 7", "seed = 1"), config.replace("hidden = 8", "hidden = 9")):
        (out / files.CONFIG).write_text(edited)
        code, _, err = cli("train", "--resume", out)
        assert code == 2 and "config.toml is not the config this run's checkpoint was trained with" in err
    (out / files.CONFIG).write_text(config)
    assert cli("train", "--resume", out, "-q")[0] == 0


def test_one_writer_per_folder(tmp_path):
    out = tmp_path / "run"
    slow = subprocess.Popen([sys.executable, "-m", "spikeloc", "train", "--preset", "tiny", "--set",
                             "train.epochs=500", "-q", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while "progress" not in (out / files.STATUS).read_text() if (out / files.STATUS).exists() else True:
            assert time.monotonic() < deadline and slow.poll() is None
            time.sleep(0.1)
        for args, needle in [(["train", "--preset", "tiny", "--out", out],
                              f"is being written by process {slow.pid}"),
                             (["train", "--resume", out], f"is being written by process {slow.pid}"),
                             (["evaluate", out], f"is still being written by process {slow.pid}")]:
            code, _, err = cli(*args)
            assert code == 2 and needle in err and len(err.splitlines()) == 1, err
    finally:
        slow.kill()
        slow.wait()
    # the dead process's lock is free: a resume takes it over (and is stopped here, once it holds the folder)
    res = subprocess.run([sys.executable, str(DRIVER), "checkpoint", "1", "--", "train", "--resume",
                          str(out)], capture_output=True, text=True)
    assert res.returncode == -signal.SIGKILL and "resuming" in res.stdout


def test_parallel_runs_without_out_get_their_own_folders(tmp_path):
    jobs = [subprocess.Popen([sys.executable, "-m", "spikeloc", "train", "--preset", "tiny", "-q", "--set",
                              f"hidden={h}"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for h in (8, 16, 24)]
    assert all(job.wait() == 0 for job in jobs)
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 3
    hidden = sorted(int(line.split("=")[1]) for f in folders
                    for line in (f / files.CONFIG).read_text().splitlines() if line.startswith("hidden ="))
    assert hidden == [8, 16, 24]
    for folder in folders:
        assert_complete(folder)


def test_the_same_command_gives_the_same_weights_in_two_processes(tmp_path):
    for name in ("a", "b"):
        spikeloc("train", "--preset", "tiny", "--models", "2", "--seed", "5", "-q", "--out",
                 str(tmp_path / name))
    assert (tmp_path / "a" / files.WEIGHTS).read_bytes() == (tmp_path / "b" / files.WEIGHTS).read_bytes()


def test_divergence_stops_with_one_line_and_no_results(tmp_path):
    out = tmp_path / "run"
    code, _, err = cli("train", "--preset", "tiny", "-q", "--set", "train.lr=1e30", "--out", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert re.search(r"training diverged in epoch 1, batch \d+: (the loss|a gradient|a weight)", err), err
    assert "a smaller train.lr (now 1e+30)" in err and "no epoch had finished" in err
    assert json.loads((out / files.STATUS).read_text())["state"] == "failed"
    assert not (out / files.METRICS).exists() and not (out / files.REPORT).exists()
    code, _, err = cli("evaluate", str(out))
    assert code == 2 and f"{out} failed: training diverged in epoch 1, batch" in err
    assert not (out / files.CHECKPOINT).exists()  # it diverged in the first epoch: no good state to keep


@pytest.mark.parametrize("out, needle", [("afile/sub", "cannot write to --out"),
                                         ("/proc/spikeloc-run", "cannot write")])
def test_an_unwritable_out_is_refused_before_training(tmp_path, monkeypatch, out, needle):
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("train", "--preset", "tiny", "-q", "--out", out)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


SMALL = ["train", "--preset", "tiny", "-q", "--seed", "2"]


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    assert cli(*SMALL, "--out", out)[0] == 0
    return results(out)


@pytest.mark.parametrize("failing", ["checkpoint.pt", "metrics.json", ".png"])
def test_a_full_disk_is_one_line_and_the_run_resumes(tmp_path, monkeypatch, full_disk, small_reference,
                                                      failing):
    """ENOSPC while writing a checkpoint, the results or a figure: one line, nothing that looks complete, and
    once there is space again the run resumes to what it would have been."""
    out = tmp_path / "run"
    args = SMALL
    full_disk(failing)
    code, _, err = cli(*args, "--out", str(out))
    assert code == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert f"cannot write {out}/" in err and failing in err  # the file is named
    assert f"resume with: spikeloc train --resume {out}" in err
    assert json.loads((out / files.STATUS).read_text())["state"] == "running" and not list(out.glob(".*.tmp"))
    monkeypatch.undo()
    assert cli("train", "--resume", str(out), "-q")[0] == 0
    assert_complete(out)
    assert results(out) == small_reference


def test_too_big_a_config_is_refused_before_anything(tmp_path):
    out = tmp_path / "run"
    code, _, err = cli("train", "--preset", "tiny", "--set", "hidden=100000000", "--out", str(out))
    assert code == 2 and "this config needs about" in err and "GiB available" in err
    assert not out.exists()
