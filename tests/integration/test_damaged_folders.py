"""Every file of a run folder deleted, truncated or garbled: `evaluate` and `report` either work or end with
one line (exit 2), never a traceback. What a run can do without (metrics, history, figures, the report)
never stops `evaluate`, and `report` re-creates what it can."""

import contextlib
import io
import json
import shutil

import pytest

from spikeloc.cli import main

FILES = ["config.toml", "weights.safetensors", "metrics.json", "history.csv", "status.json", "report.html",
         "run.lock", "figures/weights.png"]
NEEDED = {"config.toml", "weights.safetensors", "status.json"}  # without these there is no run to evaluate


def cli(*args):
    err = io.StringIO()
    with (contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err),
          pytest.raises(SystemExit) as e):
        main([str(a) for a in args])
        raise SystemExit(0)
    return e.value.code or 0, err.getvalue()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    both_kinds = ("--set", "train.membrane_baseline=true")
    assert cli("train", "--preset", "tiny", "-q", *both_kinds, "--out", out)[0] == 0
    return out


def damage(path, how):
    data = path.read_bytes()
    if how == "deleted":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:  # garbled: the middle third overwritten with bytes that are no text and no format
        third = len(data) // 3
        path.write_bytes(data[:third] + bytes(range(256)) * (third // 256 + 1) + data[2 * third:])


@pytest.mark.parametrize("how", ["deleted", "truncated", "garbled"])
@pytest.mark.parametrize("name", FILES)
def test_evaluate_a_damaged_folder(run_dir, tmp_path, name, how):
    folder = shutil.copytree(run_dir, tmp_path / "run")
    damage(folder / name, how)
    code, err = cli("evaluate", folder, "--samples", "32")
    if name in NEEDED and not (name == "status.json" and how == "deleted"):  # no status: read as 0.1.0's run
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    else:
        assert code == 0, err


@pytest.mark.parametrize("name", FILES)
def test_report_re_creates_what_it_can(run_dir, tmp_path, name):
    folder = shutil.copytree(run_dir, tmp_path / "run")
    damage(folder / name, "truncated")
    code, err = cli("report", folder)
    if name in NEEDED:
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        return
    assert code == 0, err
    html = (folder / "report.html").read_text()
    figures = 7 if name == "history.csv" else 8  # and the analysis's 7
    assert html.startswith("<!DOCTYPE html>") and html.count("<img") == figures + 7
    if name == "metrics.json":
        assert "recomputed from the weights" in err
        assert json.loads((folder / "metrics.json").read_text())["models"]
    if name == "history.csv":
        assert "no loss figure" in err and "history.csv is unreadable" in err
