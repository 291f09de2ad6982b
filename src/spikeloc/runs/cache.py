"""A per-user cache of results that take seconds to compute and depend only on their inputs: the ideal
observer's metrics on a run's test set.

The ideal observer of a stimulus config scores the same on the same test set every time, yet building
its likelihood tables and scoring a test set is a noticeable part of a short run (docs/performance.md).
Entries live in ``$SPIKELOC_CACHE_DIR`` if set, else the user cache folder (``~/.cache/spikeloc`` on
Linux), one JSON file each, named by a hash of everything the result depends on: the caller's key (for
the observer: the stimulus config, a hash of the test set's spikes and IPDs, the device and the CPU
thread count), the versions of spikeloc and torch, and a hash of spikeloc's source. An entry that cannot
be read is computed again; a cache that cannot be written is skipped. Nothing in a run folder depends on
the cache: ``metrics.json`` holds the numbers either way.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import platformdirs
import torch

from .files import write_atomic

CACHE_DIR_VARIABLE = "SPIKELOC_CACHE_DIR"
PACKAGE = Path(__file__).resolve().parents[1]  # src/spikeloc


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_VARIABLE) or platformdirs.user_cache_dir("spikeloc"))


def data_hash(*tensors: torch.Tensor) -> str:
    """A hash of the tensors' values, dtypes and shapes."""
    h = hashlib.blake2b(digest_size=16)
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().data if t.numel() else b"")
    return h.hexdigest()


def source_hash() -> str:
    """A hash of spikeloc's own source files: any change to the code is a new key (an editable install
    keeps its version number while its code changes)."""
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(PACKAGE.rglob("*.py")):
        h.update(path.relative_to(PACKAGE).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cached_json(kind: str, key: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()``'s JSON-able result for ``key`` (JSON-able too), from the cache when it holds one, else
    computed and stored."""
    key = {"kind": kind, "spikeloc": version("spikeloc"), "torch": torch.__version__, **key}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    path = cache_dir() / f"{kind}-{digest}.json"
    try:
        entry = json.loads(path.read_text())
        if entry["key"] == key:
            return entry["value"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or damaged: computed again below
    value = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"key": key, "value": value}).encode())
    except OSError:
        pass  # a read-only or full home: the run goes on without the cache
    return value
