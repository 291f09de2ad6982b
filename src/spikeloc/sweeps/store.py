"""A sweep's store: one SQLite database, ``DIR/sweep.sqlite``, with a row per (point, seed).

SQLite is embedded (no server) and its transactions survive a SIGKILL at any moment: a row is
``pending``, ``running``, ``finished`` or ``failed``, and becomes ``finished`` in one transaction, after
its run folder is complete. Only the sweep's driver writes (it holds ``DIR``'s lock); ``spikeloc sweep
status`` and ``summary`` read. The ``sweep`` table holds the sweep's identity (the hash of every run's
config), so a second sweep with another grid cannot be written into the same folder.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpikelocError
from .spec import PlannedRun, SweepSpec

DATABASE = "sweep.sqlite"
STATES = ("pending", "running", "finished", "failed")
SCHEMA = """
CREATE TABLE IF NOT EXISTS sweep (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,          -- the run folder, DIR/runs/NAME
    point TEXT NOT NULL,                -- the swept values, JSON
    seed INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'finished', 'failed')),
    reason TEXT,                        -- why it failed, one line
    metrics TEXT,                       -- JSON: test accuracy, MAE, continuous MAE, ideal observer, seconds
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    ended REAL,
    UNIQUE (point, seed)
);
"""


@dataclass(frozen=True)
class Row:
    """One run of the sweep as stored."""

    name: str
    point: dict[str, Any]
    seed: int
    status: str
    reason: str | None
    metrics: dict[str, Any] | None
    attempts: int


def sweep_identity(runs: list[PlannedRun]) -> str:
    return hashlib.sha256("\n".join(sorted(r.identity for r in runs)).encode()).hexdigest()


class Store:
    """``Store(DIR)``: the sweep's database, created on first use."""

    def __init__(self, folder: Path, create: bool = False):
        self.path = Path(folder) / DATABASE
        if not create and not self.path.is_file():
            raise SpikelocError(f"{folder} holds no sweep ({DATABASE} is missing)")
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA synchronous = FULL")
            if create:
                self.db.executescript(SCHEMA)
            self.db.execute("SELECT count(*) FROM runs").fetchone()
        except sqlite3.DatabaseError as e:
            raise SpikelocError(f"{self.path} is not a sweep database ({e})") from None

    def close(self) -> None:
        self.db.close()

    def _transaction(self, statements: list[tuple[str, tuple]]) -> None:
        with closing(self.db.cursor()) as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    c.execute(sql, args)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def register(self, spec: SweepSpec, runs: list[PlannedRun]) -> None:
        """Record the sweep and its runs (pending) the first time; refuse another sweep's runs; mark the
        runs a killed driver left ``running`` as pending again."""
        ident = sweep_identity(runs)
        known = dict(self.db.execute("SELECT key, value FROM sweep").fetchall())
        if known and known.get("identity") != ident:
            old = json.loads(known.get("spec", "{}"))
            raise SpikelocError(f"{self.path.parent} holds another sweep (preset {old.get('preset')!r}, grid "
                                f"{old.get('grid')}, zip {old.get('zip')}, seeds {old.get('seeds')}); "
                                "choose a new --out for this one")
        if not known:
            self._transaction(
                [("INSERT INTO sweep VALUES (?, ?)", ("identity", ident)),
                 ("INSERT INTO sweep VALUES (?, ?)", ("spec", json.dumps(spec.to_json()))),
                 ("INSERT INTO sweep VALUES (?, ?)", ("created", str(time.time())))]
                + [("INSERT INTO runs (name, point, seed, config_hash, status) "
                    "VALUES (?, ?, ?, ?, 'pending')",
                    (r.name, r.point_json, r.seed, r.identity)) for r in runs])
        self._transaction([("UPDATE runs SET status = 'pending' WHERE status = 'running'", ())])

    def spec(self) -> dict[str, Any]:
        row = self.db.execute("SELECT value FROM sweep WHERE key = 'spec'").fetchone()
        return json.loads(row[0]) if row else {}

    def rows(self) -> list[Row]:
        return [Row(name, json.loads(point), seed, status, reason, json.loads(m) if m else None, attempts)
                for name, point, seed, status, reason, m, attempts in self.db.execute(
                    "SELECT name, point, seed, status, reason, metrics, attempts FROM runs ORDER BY id")]

    def counts(self) -> dict[str, int]:
        found = dict(self.db.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
        return {"total": sum(found.values()), **{state: found.get(state, 0) for state in STATES}}

    def started(self, names: list[str]) -> None:
        self._transaction([("UPDATE runs SET status = 'running', attempts = attempts + 1, started = ? "
                            "WHERE name = ? AND status != 'finished'", (time.time(), n)) for n in names])

    def finished(self, name: str, metrics: dict[str, Any]) -> bool:
        """Mark ``name`` finished with its metrics (its folder is complete); False if it already was."""
        before = self.db.total_changes
        self._transaction([("UPDATE runs SET status = 'finished', metrics = ?, reason = NULL, ended = ? "
                            "WHERE name = ? AND status != 'finished'",
                            (json.dumps(metrics), time.time(), name))])
        return self.db.total_changes > before

    def failed(self, name: str, reason: str) -> None:
        self._transaction([("UPDATE runs SET status = 'failed', reason = ?, ended = ? "
                            "WHERE name = ? AND status != 'finished'", (reason, time.time(), name))])

    def pending(self, names: list[str]) -> None:
        self._transaction([("UPDATE runs SET status = 'pending' WHERE name = ? AND status = 'running'", (n,))
                           for n in names])
