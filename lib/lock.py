"""One OS file lock per job, non-blocking, released by the OS if the process dies.

filelock takes fcntl.flock on POSIX and msvcrt.locking on Windows, so the
same code guards cron and Task Scheduler runs. Only a run takes the lock:
status, jobstats and monitoring never touch it (they read the ledger, see
lib/history.py), so looking can never make a start fail.
"""

from __future__ import annotations

from pathlib import Path

import filelock

from lib.home import make_file, make_folder


def lock_path(home: Path, job: str) -> Path:
    """Given CASEJOBS_HOME and a job name, return the job's lock file."""
    return home / "lock" / f"{job}.lock"


class JobLock:
    """The lock of one job: acquire() once, release() at the end (or let the OS do it)."""

    def __init__(self, home: Path, job: str) -> None:
        self.path = lock_path(home, job)
        self._lock = filelock.FileLock(
            str(self.path), timeout=0, is_singleton=False, fallback_to_soft=False, preserve_lock_file=True, mode=0o600
        )

    def acquire(self) -> bool:
        """Try to take the lock without waiting; return True if this process now holds it."""
        make_folder(self.path.parent)
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        make_file(self.path)
        return True

    def release(self) -> None:
        """Give the lock back."""
        if self._lock.is_locked:
            self._lock.release()
