"""One writer per run folder: an advisory lock on ``run.lock`` that holds its owner's process id.

The lock is ``flock`` on an open file, so the operating system releases it when its process ends,
however it ends (a SIGKILL too): a lock file left by a dead process is free, and the next writer
takes it over. The file itself stays (removing it could let two writers lock two different files).
Local file systems only; on a network file system the lock may not hold.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import SpikelocError
from .files import FILE_MODE, LOCK


class FolderLock:
    """``FolderLock(folder).acquire()``: hold the folder or raise, naming the process that holds it."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK
        self.fd: int | None = None

    def acquire(self) -> FolderLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise SpikelocError(f"{self.path.parent} is being written by process {owner}; wait for it to "
                                "finish or choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing releases the flock
            self.fd = None

    @staticmethod
    def holder(folder: Path) -> str | None:
        """The process id that holds ``folder``'s lock now, or None if it is free."""
        path = folder / LOCK
        if not path.is_file():
            return None
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            return os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
        finally:
            os.close(fd)  # also releases the shared lock taken to test it


@contextmanager
def locked(folder: Path) -> Iterator[FolderLock]:
    """Hold ``folder`` while the block writes into it."""
    lock = FolderLock(Path(folder)).acquire()
    try:
        yield lock
    finally:
        lock.release()
