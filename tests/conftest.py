"""Shared test setup: the notebook oracle on the path, one thread per pool, a seeded generator.

Thread counts are pinned: PyTorch's and numba's pools busy-wait between parallel regions, so on a
2-core machine a test that starts a subprocess (the CLI's ``--help``) or follows a parallel kernel
ran up to 10x slower in the suite than alone. One thread each keeps every test's time its own.
"""

import os
import sys
import tempfile
from pathlib import Path

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # before torch and numba start their pools; subprocesses inherit it
# the user's cache stays untouched, and every test session starts with an empty one
os.environ["SPIKELOC_CACHE_DIR"] = tempfile.mkdtemp(prefix="spikeloc-test-cache-")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "oracles"))  # notebook_literal: the notebook's own loop, the oracle
sys.path.insert(0, str(ROOT / "tests" / "support"))  # cli_runner: the command line as the tests call it
DATA = ROOT / "tests" / "data"


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def full_disk(monkeypatch):
    """``full_disk("metrics.json")``: from now on, ENOSPC as a temporary file whose name holds that text is
    flushed to disk (the disk fills up while the file is written); ``monkeypatch.undo()`` frees it again."""
    fsync = os.fsync

    def fill(name: str) -> None:
        def failing(fd):
            if name in os.readlink(f"/proc/self/fd/{fd}"):
                raise OSError(28, os.strerror(28))
            return fsync(fd)

        monkeypatch.setattr(os, "fsync", failing)

    return fill
