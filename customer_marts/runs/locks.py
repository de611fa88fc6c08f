"""Exclusive locks on files that the kernel releases when their holder's process ends."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockHeld(Exception):
    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.path, self.holder = path, holder


@contextmanager
def exclusive_lock(path: Path, holder: str) -> Iterator[int]:
    """Hold an exclusive `flock` on `path`, or raise LockHeld at once naming its holder.

    The kernel releases the lock when the holder's process ends, however it ends
    (kill -9 included), so a lock that can be taken was never left behind by a live
    process. `holder` is written into the file for the message of whoever is refused;
    the file descriptor is yielded (a child process given it shares the lock).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(path, os.pread(fd, 1000, 0).decode(errors="replace").strip()) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{holder}\n".encode(), 0)
        except OSError:  # a full disk: the lock holds without its note
            pass
        try:
            yield fd
        finally:
            try:
                os.ftruncate(fd, 0)  # the note goes with the lock
            except OSError:
                pass
    finally:
        os.close(fd)
