"""Which files in a backups folder are our packages, which to keep, and what dead runs left.

Only files named like our packages (casejobs-backup-YYYY-MM-DD.zip) are ever
considered; retention deletes packages older than the retention, never one
of the newest verified ones; a temporary file is removed only when the
process whose pid its name holds is gone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from pathlib import Path

from lib.archive import fsync_folder, read_manifest
from lib.history import process_alive

PACKAGE_NAME = re.compile(r"^casejobs-backup-(\d{4}-\d{2}-\d{2})\.zip$")

LEFTOVER_NAME = re.compile(r"^\.casejobs-(backup-\d{4}-\d{2}-\d{2}\.zip\.tmp|copy|verify)-(\d+)")


def package_path(folder: Path, day: dt.date) -> Path:
    """Given the backups folder and an IST date, return that day's package path."""
    return folder / f"casejobs-backup-{day.isoformat()}.zip"


def packages_in(folder: Path) -> list[tuple[dt.date, Path]]:
    """Return (IST date, path) of every file in folder named like our packages, newest first."""
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = PACKAGE_NAME.match(path.name)
        if match and path.is_file():
            with contextlib.suppress(ValueError):
                found.append((dt.date.fromisoformat(match.group(1)), path))
    return sorted(found, reverse=True)


def remove_leftovers(folder: Path, pattern: re.Pattern[str] = LEFTOVER_NAME) -> list[str]:
    """Delete the temporary files that runs which died left in folder; return their names.

    The name holds the pid of the process that made it: a file of a process
    still alive (a verify going on beside the backup, say) is left alone.
    """
    removed = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = pattern.match(path.name)
        if match and not process_alive(int(match.group(match.lastindex or 0))):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def apply_retention(folder: Path, today: dt.date, retention_days: int, keep_newest: int) -> list[str]:
    """Delete packages older than retention_days, never one of the keep_newest newest verified ones.

    Only files named like our packages are considered. A package counts as
    verified when its manifest can be read (only verified packages ever get a
    final name). Return the names deleted.
    """
    packages = packages_in(folder)
    readable = []
    for _day, path in packages:
        with contextlib.suppress(ValueError):
            read_manifest(path)
            readable.append(path)
    protected = set(readable[:keep_newest])
    deleted = []
    for day, path in packages:
        if (today - day).days > retention_days and path not in protected:
            path.unlink(missing_ok=True)
            deleted.append(path.name)
    if deleted:
        fsync_folder(folder)
    return deleted
