"""One OS file lock per job, non-blocking, released by the OS if the process dies.

filelock takes fcntl.flock on POSIX and msvcrt.locking on Windows, so the
same code guards cron and Task Scheduler runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import filelock


def lock_path(home: Path, job: str) -> Path:
    """Given CASEJOBS_HOME and a job name, return the job's lock file."""
    return home / "lock" / f"{job}.lock"


class JobLock:
    """The lock of one job: acquire() once, release() at the end (or let the OS do it)."""

    def __init__(self, home: Path, job: str) -> None:
        self.path = lock_path(home, job)
        self._lock = filelock.FileLock(
            str(self.path), timeout=0, is_singleton=False, fallback_to_soft=False, preserve_lock_file=True
        )

    def acquire(self) -> bool:
        """Try to take the lock without waiting; return True if this process now holds it."""
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        # Who holds it, for `jobctl status`; informative only, the lock is the flock.
        holder = self.path.with_suffix(".pid")
        holder.write_text(f"{os.getpid()}\n")
        return True

    def release(self) -> None:
        """Give the lock back."""
        if self._lock.is_locked:
            self._lock.release()


def is_locked(home: Path, job: str) -> bool:
    """Return True if some process holds the job's lock right now."""
    probe = JobLock(home, job)
    if probe.acquire():
        probe.release()
        return False
    return True
