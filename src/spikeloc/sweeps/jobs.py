"""One job of a sweep, run in a worker process (local pool or Ray task): train its runs and write their
folders, then return one outcome per run to the driver, which records them.

A job is plain data (picklable for any executor): ``{"dir": DIR, "runs": [{"name", "config" (TOML
text)}]}``. Several runs in one job are the consecutive seeds of one point: they train as one stack
(:func:`~spikeloc.runs.pipeline.train_members`), each with its own data, and each gets its own ordinary run
folder ``DIR/runs/NAME`` equal to what ``spikeloc train`` writes for its config, without its figures
(``spikeloc report DIR/runs/NAME`` draws them). If the stack fails (a
NaN in one model stops all of them) each run is trained alone, so only the runs that fail are recorded
failed. A folder left complete by an earlier attempt (a driver killed before it recorded the run) is
taken as it is; one left incomplete is removed and trained again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..config.loading import config_from_toml_text
from ..config.schema import RunConfig
from ..errors import SpikelocError
from ..evaluation.metrics import RunMetrics
from ..runs.files import METRICS
from ..runs.folder import COMPLETE, NEW, RunFolder, read_status
from ..runs.lock import FolderLock
from ..runs.pipeline import train, train_members
from ..runs.run import Run
from .spec import identity

RUNS = "runs"


def outcome_metrics(metrics: RunMetrics) -> dict[str, Any]:
    """What the store keeps of a run's metrics: test accuracy (0..1), MAE and continuous MAE (degrees), the
    ideal observer's on the same test set, and the training time (s)."""
    def split(m) -> dict[str, float]:
        return {"accuracy": m.accuracy.mean, "mae_deg": m.mae_deg.mean,
                "mae_continuous_deg": m.mae_continuous_deg.mean}
    return {**split(metrics.test),
            "ideal_observer": split(metrics.ideal_observer.test) if metrics.ideal_observer else None,
            "train_seconds": sum(s for name, s in metrics.seconds.items() if name.startswith("train_")),
            "test_samples": metrics.test_samples}


def one_line(error: BaseException) -> str:
    """A failure as one line: a SpikelocError's message, else the error's type and its first line."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text if isinstance(error, SpikelocError) else f"{type(error).__name__}: {text}"


def _previous(path: Path, cfg: RunConfig) -> dict[str, Any] | None:
    """The outcome of a complete folder an earlier attempt left at ``path``, None if there is none (an
    incomplete one is removed); a folder of another config is an error."""
    status = read_status(path)
    if status["state"] == NEW:
        return None
    if status["state"] == COMPLETE:
        saved = config_from_toml_text((path / "config.toml").read_text(), str(path / "config.toml"))
        if identity(saved) != identity(cfg):
            raise SpikelocError(f"{path} holds a run of another config; move it away and run the sweep again")
        metrics = RunMetrics.from_json(json.loads((path / METRICS).read_text()))
        return {"status": "finished", "metrics": outcome_metrics(metrics)}
    holder = FolderLock.holder(path)
    if holder is not None:
        raise SpikelocError(f"{path} is being written by process {holder}")
    shutil.rmtree(path)  # an attempt that did not finish: the sweep is this folder's only writer
    return None


def _write(run: Run, path: Path) -> dict[str, Any]:
    with RunFolder.create(path, run.config) as folder:
        folder.save(run)
        folder.complete()
    return {"status": "finished", "metrics": outcome_metrics(run.metrics)}


def _alone(name: str, cfg: RunConfig, root: Path) -> dict[str, Any]:
    try:
        return _write(train(cfg, progress=False), root / name)
    except Exception as e:  # a failed run is recorded with its reason; the sweep goes on
        return {"status": "failed", "reason": one_line(e)}


def run_job(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Train and write the job's runs; ``{name: {"status": "finished", "metrics": {...}}`` or ``{"status":
    "failed", "reason": "..."}}``."""
    root = Path(job["dir"]) / RUNS
    root.mkdir(parents=True, exist_ok=True)
    outcomes, todo = {}, []
    for item in job["runs"]:
        name = item["name"]
        try:
            cfg = config_from_toml_text(item["config"], name)
            previous = _previous(root / name, cfg)
        except Exception as e:
            outcomes[name] = {"status": "failed", "reason": one_line(e)}
            continue
        if previous is not None:
            outcomes[name] = previous
        else:
            todo.append((name, cfg))
    stackable = len(todo) > 1 and [c.seed for _, c in todo] == list(range(todo[0][1].seed,
                                                                             todo[0][1].seed + len(todo)))
    if stackable:
        first = todo[0][1]
        try:
            members = train_members(first.model_copy(update={"train": first.train.model_copy(
                update={"models": len(todo)})}))
        except Exception:  # one model's failure stops the stack: train each alone to find which
            members = None
        if members is not None:
            for (name, _), run in zip(todo, members, strict=True):
                try:
                    outcomes[name] = _write(run, root / name)
                except Exception as e:
                    outcomes[name] = {"status": "failed", "reason": one_line(e)}
            return outcomes
    for name, cfg in todo:
        outcomes[name] = _alone(name, cfg, root)
    return outcomes
