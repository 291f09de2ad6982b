"""The run folder: the one place that decides what a folder is, writes it and reads it.

    status.json          running (with progress), complete (with the stages' wall times) or failed (with
                         the reason): first and last
    config.toml          the exact resolved config (seed and device included): re-runs the run exactly
    checkpoint.pt        while running: where training stands (runs.checkpoint), removed when complete
    weights.safetensors  trained parameters and buffers of every model kind (loads without executing code)
    history.csv          loss per epoch and model
    metrics.json         train/test metrics of every model, the ideal observer, timings (evaluation.metrics)
    figures/*.png        every figure of the report (viz)
    report.html          one self-contained page (viz)
    run.lock             held by the one process writing the folder (runs.lock)

A :class:`RunFolder` is one writer's handle from creation (or resumption) to completion; the status
says ``complete`` only after every other file is written. Folders written by release 0.1.0 (no
status: config, weights and metrics mean complete) load too: their configs use the old field names
and their hidden bias is stored as ``(K, 1, 1, H)``.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from ..config.loading import config_from_toml_text
from ..config.schema import RunConfig
from ..errors import SpikelocError, TrainingDiverged
from ..evaluation.metrics import RunMetrics
from ..models.registry import MODEL_KINDS, construct
from ..training.loop import stopped_early
from . import checkpoint
from .files import (
    CHECKPOINT,
    CONFIG,
    HISTORY,
    LOCK,
    METRICS,
    STATUS,
    TEMPORARY,
    WEIGHTS,
    history_csv,
    read_history,
    remove_temporaries,
    write_atomic,
    write_json,
)
from .lock import FolderLock
from .resources import resolve_threads
from .run import Run, resolve_device

COMPLETE, RUNNING, FAILED, NEW, FOREIGN = "complete", "running", "failed", "new", "foreign"


def read_status(folder: Path) -> dict:
    """What ``folder`` is: ``{"state": ...}``, with the progress of a running run or the reason of a
    failed one.

    ``new`` (absent or empty), ``foreign`` (files, but no spikeloc run), ``running``, ``complete``,
    ``failed``. A folder of release 0.1.0 has no status file: config, weights and metrics mean
    complete, a config alone a run that stopped (it can be started again with ``--resume``).
    """
    if not folder.exists():
        return {"state": NEW}
    if not folder.is_dir():
        raise SpikelocError(f"{folder} exists and is not a folder")
    try:
        return _valid_status(json.loads((folder / STATUS).read_text()))
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        raise SpikelocError(f"{folder / STATUS} is damaged ({e}); the folder cannot be trusted") from None
    # a killed writer's temporary files and the lock say nothing about what the folder holds
    names = {p.name for p in folder.iterdir() if not p.match(TEMPORARY)} - {LOCK}
    if not names:
        return {"state": NEW}
    if {CONFIG, WEIGHTS, METRICS} <= names:
        return {"state": COMPLETE}
    return {"state": RUNNING} if CONFIG in names else {"state": FOREIGN}


def _valid_status(status) -> dict:
    """``status`` if it is one this release writes, else ValueError."""
    if not isinstance(status, dict) or status.get("state") not in (RUNNING, COMPLETE, FAILED):
        raise ValueError(f"not a status: {str(status)[:60]}")
    progress = status.get("progress", {})
    ok = (isinstance(progress, dict) and isinstance(progress.get("trained", []), list)
          and ("kind" not in progress or {"epoch", "epochs"} <= progress.keys()))
    if not ok:
        raise ValueError(f"not a progress: {str(progress)[:60]}")
    return status


def _progress(status: dict) -> str:
    p = status.get("progress", {})
    done = [f"{kind} model trained" for kind in p.get("trained", [])]
    if "kind" in p:
        done.append(f"{p['kind']} model at epoch {p['epoch']} of {p['epochs']}")
    return ", ".join(done) or "no epoch done"


def not_complete(folder: Path, status: dict) -> SpikelocError:
    """The one-line error for a folder that is not a complete run, with what to do."""
    state = status["state"]
    if state == NEW:
        return SpikelocError(f"{folder} holds no spikeloc run" if folder.exists() else
                             f"run folder not found: {folder}")
    if state == FOREIGN:
        return SpikelocError(f"{folder} holds no spikeloc run")
    if state == FAILED:
        return SpikelocError(f"{folder} failed: {status.get('reason', 'no reason recorded')}; "
                             "start a new run")
    owner = FolderLock.holder(folder)
    if owner is not None:
        return SpikelocError(f"{folder} is still being written by process {owner}")
    return SpikelocError(f"{folder} is not complete ({_progress(status)}); resume it with: "
                         f"spikeloc train --resume {folder}")


class RunFolder:
    """One writer's handle on a run folder: use as a context manager (``with RunFolder.create(...) as f:``).

    Inside it the folder is locked. Leaving it on :class:`~spikeloc.errors.TrainingDiverged` marks the
    folder failed; on a write error (a full disk, a read-only mount) it says how to resume; on
    anything else the folder stays resumable.
    """

    def __init__(self, path: Path, config: RunConfig, lock: FolderLock):
        self.path, self.config, self.lock = path, config, lock
        self.checkpoints = checkpoint.Checkpoints(path / CHECKPOINT, on_save=self._progressed)

    @classmethod
    def create(cls, out: str | Path, cfg: RunConfig, unique: bool = False) -> RunFolder:
        """A new run of ``cfg`` in ``out``: refused if ``out`` holds a run or other files. With ``unique``,
        ``out-2``, ``out-3``, ... when ``out`` exists (default names of parallel runs never collide). The
        folder's ``config.toml`` records the device and thread count resolved now (``auto``), so a resume
        runs as the run started."""
        out = Path(out)
        cfg = cfg.model_copy(update={"device": resolve_device(cfg.device).type,
                                     "threads": resolve_threads(cfg.threads)})
        try:
            if unique:
                out = _new_folder(out)
            else:
                out.mkdir(parents=True, exist_ok=True)
            status = read_status(out)
            if status["state"] == FOREIGN:
                raise SpikelocError(f"--out {out} holds files but no spikeloc run; "
                                    "choose a new or empty folder")
            lock = FolderLock(out).acquire()
        except OSError as e:
            raise SpikelocError(f"cannot write to --out {out}: {e.strerror}") from None
        try:
            # again, holding the lock: another process may have written it meanwhile
            status = read_status(out)
            if status["state"] == RUNNING:
                raise SpikelocError(f"--out {out} holds an interrupted run; continue it with: spikeloc train "
                                    f"--resume {out} (or choose a new folder)")
            if status["state"] != NEW:
                raise SpikelocError(f"--out {out} already holds a {status['state']} run; choose a new "
                                    "folder or remove it")
            folder = cls(out, cfg, lock)
            write_atomic(out / CONFIG, cfg.to_toml().encode())  # first: a status without a config is no run
            folder._write_status(RUNNING)
            return folder
        except OSError as e:
            lock.release()
            raise SpikelocError(f"cannot write to --out {out}: {e.strerror}") from None
        except BaseException:
            lock.release()
            raise

    @classmethod
    def resume(cls, path: str | Path) -> RunFolder:
        """The interrupted run in ``path``, to continue; SpikelocError if there is none to continue."""
        path = Path(path)
        status = read_status(path)
        if status["state"] != RUNNING:
            if status["state"] == COMPLETE:
                raise AlreadyComplete(f"{path} is already complete; nothing to resume")
            raise not_complete(path, status)
        lock = FolderLock(path).acquire()
        try:
            status = read_status(path)  # again, holding the lock: another resume may have finished it
            if status["state"] == COMPLETE:
                raise AlreadyComplete(f"{path} is already complete; nothing to resume")
            if status["state"] != RUNNING:
                raise not_complete(path, status)
            remove_temporaries(path)
            cfg = _read_config(path / CONFIG)
            return cls(path, cfg, lock)
        except BaseException:
            lock.release()
            raise

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, kind, error, tb) -> None:
        try:
            if isinstance(error, TrainingDiverged):
                self._write_status(FAILED, reason=str(error))
                kept = (f"the last good checkpoint stays in {self.path / CHECKPOINT} (torch.load it with "
                        "weights_only=True to inspect it)" if (self.path / CHECKPOINT).exists()
                        else "no epoch had finished")
                raise SpikelocError(f"{error}; {kept}") from None
            if isinstance(error, OSError):
                raise SpikelocError(f"cannot write {error.filename or self.path}: {error.strerror}; "
                                    "what was trained is kept: resume with: spikeloc train --resume "
                                    f"{self.path}") from None
        finally:
            self.lock.release()

    def progress(self) -> str:
        return _progress(read_status(self.path))

    def save(self, run: Run) -> None:
        """Write config, weights, history and metrics of ``run`` (the checkpoint keeps what they came
        from)."""
        write_results(run, self.path)

    def complete(self, seconds: dict[str, float] | None = None) -> None:
        """Mark the run complete, the last write; then its checkpoint is no longer needed. ``seconds``: the
        wall time of the command's stages, kept in the status (``metrics.json`` has training's own)."""
        self._write_status(COMPLETE, **({"seconds": seconds} if seconds else {}))
        (self.path / CHECKPOINT).unlink(missing_ok=True)

    def _write_status(self, state: str, **extra) -> None:
        write_json(self.path / STATUS, {"state": state, "spikeloc": version("spikeloc"), **extra})

    def _progressed(self, ckpt: checkpoint.Checkpoint) -> None:
        """After every epoch: the history so far (a running run can be followed in history.csv) and the
        progress in the status."""
        history = {kind: rows for kind, (_, rows) in ckpt.finished.items()}
        progress = {"trained": list(ckpt.finished)}
        if ckpt.kind is not None:
            history[ckpt.kind] = ckpt.fit.history
            progress |= {"kind": ckpt.kind, "epoch": ckpt.fit.epoch, "epochs": self.config.train.epochs}
        write_atomic(self.path / HISTORY, history_csv(history))
        self._write_status(RUNNING, progress=progress)


class AlreadyComplete(SpikelocError):
    """``--resume`` of a run that has nothing left to do."""


def _new_folder(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``, ...: the first that did not exist, created here (atomically)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise SpikelocError(f"no free folder name like {base}")


def _read_config(path: Path) -> RunConfig:
    try:
        return config_from_toml_text(path.read_text(), str(path))
    except (OSError, UnicodeDecodeError) as e:
        raise SpikelocError(f"cannot read {path}: {e}") from None


# ---------------------------------------------------------------- the files themselves

def save(run: Run, out: str | Path) -> Path:
    """``run`` as a new, complete run folder ``out`` (figures and report come with
    :func:`spikeloc.viz.draw`); refused where ``out`` holds a run or other files, as on the command line."""
    if run.metrics is None:
        raise SpikelocError("this run has no metrics to save (evaluate it with spikeloc.runs.evaluate_run)")
    folder = RunFolder.create(out, run.config)
    try:
        folder.save(run)
        folder.complete()
    except OSError as e:  # nothing half-saved stays: the folder is as new, and save can be called again
        for name in (STATUS, CONFIG, WEIGHTS, HISTORY, METRICS):
            (folder.path / name).unlink(missing_ok=True)
        raise SpikelocError(f"cannot write {e.filename}: {e.strerror}; nothing was saved") from None
    finally:
        folder.lock.release()
    return folder.path


def write_results(run: Run, out: Path) -> None:
    """Config, weights, history and metrics of ``run`` into the folder ``out``."""
    write_atomic(out / CONFIG, run.config.to_toml().encode())
    tensors = {f"{kind}.{name}": t.detach().cpu().contiguous() for kind, m in run.models.items()
               for name, t in m.state_dict().items()}
    write_atomic(out / WEIGHTS, safetensors_bytes(tensors))
    write_atomic(out / HISTORY, history_csv(run.history))
    write_json(out / METRICS, run.metrics.to_json())
    run.path = out


def _upgrade(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights of release 0.1.0: the spiking bias was ``(K, 1, 1, H)``."""
    return {name: t.flatten(1) if name == "b1" and t.ndim == 4 else t  # (K, 1, 1, H) -> (K, H)
            for name, t in state.items()}


def load_run(run_dir: str | Path, device: str | None = None) -> Run:
    """Load a complete run folder: its config, trained models, metrics and history (on the CPU unless it
    ran on cuda or ``device`` says otherwise).

    A damaged ``metrics.json`` or ``history.csv`` does not stop it: the run then has no metrics or
    history, and ``run.problems`` says why.
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status["state"] != COMPLETE:
        raise not_complete(run_dir, status)
    cfg = _read_config(run_dir / CONFIG)
    try:
        tensors = load_file(run_dir / WEIGHTS)
    except FileNotFoundError:
        raise SpikelocError(f"{run_dir} is not a complete run folder: {WEIGHTS} is missing") from None
    except (OSError, SafetensorError) as e:
        raise SpikelocError(f"cannot read {run_dir / WEIGHTS}: {e}") from None
    dev = resolve_device(device or "auto") if device or cfg.device == "cuda" else torch.device("cpu")
    cfg = cfg.model_copy(update={"device": dev.type})
    models = {}
    for kind in MODEL_KINDS:
        state = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(kind + ".")}
        if not state:
            continue
        model = construct(kind, cfg.stimulus, cfg.model, cfg.train.models, dev)
        try:
            model.load_state_dict(_upgrade(state))
        except RuntimeError as e:
            first = str(e).strip().splitlines()[-1].strip()
            raise SpikelocError(f"{run_dir / WEIGHTS} does not match {CONFIG}: {first}") from None
        models[kind] = model.eval()
    if "spiking" not in models:
        raise SpikelocError(f"{run_dir / WEIGHTS} holds no spiking model weights")
    run = Run(config=cfg, models=models, path=run_dir)
    run.metrics = _read_side_file(run_dir / METRICS, lambda text: RunMetrics.from_json(json.loads(text)), run)
    run.history = _read_side_file(run_dir / HISTORY, lambda text: _whole(read_history(text), run), run) or {}
    return run


def _whole(history: dict, run: Run) -> dict:
    """``history`` if it has every epoch of every model of ``run`` (up to where early stopping ended the fit),
    else ValueError (a cut-off file)."""
    tc = run.config.train
    for kind in run.models:
        rows = history.get(kind, [])
        ended = len(rows) == tc.epochs or stopped_early(rows, tc.early_stopping_patience)
        if (not ended or [r.epoch for r in rows] != list(range(1, len(rows) + 1))
                or any(len(r.loss_per_model) != tc.models for r in rows)):
            raise ValueError(f"it does not hold every epoch of the {kind} model")
    return history


def _read_side_file(path: Path, parse, run: Run):
    """``parse(text)`` of a file a run can do without; None (and a note in ``run.problems``) if it cannot."""
    try:
        return parse(path.read_text())
    except FileNotFoundError:
        run.problems.append(f"{path.name} is missing")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        run.problems.append(f"{path.name} is unreadable ({type(e).__name__}: {e})")
    return None


def write_metrics(run: Run) -> None:
    """Write ``run.metrics`` into its folder again (after ``spikeloc report`` recomputed them)."""
    write_json(run.path / METRICS, run.metrics.to_json())
