"""Which files in a backups folder are our packages, their clear-text records, which to keep, and what
dead runs left.

Only files named like our packages (casejobs-backup-YYYY-MM-DD.zip, or .zip.age
when encrypted) are ever considered; beside each is its record
(<package>.json: the package's size and sha256, nothing about clients), the
same record the ledger keeps. Retention deletes packages older than the
retention, never one of the newest sound ones; a temporary file is removed
only when the process whose pid its name holds is gone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lib.archive import SHA256, fsync_folder, read_manifest
from lib.history import process_alive, runs_since
from lib.home import read_json_file, write_json_file

WORK_FOLDER = "work"  # under the home: where an encrypted package is made, and the drill restores, in clear (0700)
PACKAGE_NAME = re.compile(r"^casejobs-backup-(\d{4}-\d{2}-\d{2})\.zip(\.age)?$")
RECORD_NAME = re.compile(r"^casejobs-backup-(\d{4}-\d{2}-\d{2})\.zip(\.age)?\.json$")
RECORD_SUFFIX = ".json"

LEFTOVER_NAME = re.compile(
    r"^\.casejobs-(backup-\d{4}-\d{2}-\d{2}\.zip(?:\.age)?(?:\.json)?\.tmp|copy|verify|decrypted|drill)-(\d+)"
)


def package_path(folder: Path, day: dt.date, encrypted: bool = False) -> Path:
    """Given the backups folder and an IST date, return that day's package path (.zip.age when encrypted)."""
    return folder / f"casejobs-backup-{day.isoformat()}.zip{'.age' if encrypted else ''}"


def packages_in(folder: Path) -> list[tuple[dt.date, Path]]:
    """Return (IST date, path) of every file in folder named like our packages, newest first."""
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = PACKAGE_NAME.match(path.name)
        if match and path.is_file():
            with contextlib.suppress(ValueError):
                found.append((dt.date.fromisoformat(match.group(1)), path))
    return sorted(found, reverse=True)


def record_path(package: Path) -> Path:
    """The clear-text record beside a package: casejobs-backup-YYYY-MM-DD.zip.age.json."""
    return package.with_name(package.name + RECORD_SUFFIX)


def write_record(package: Path, record: dict[str, Any], temporary: Path | None = None) -> None:
    """Write a package's record beside it, atomically and durably (under `temporary` if given)."""
    write_json_file(record_path(package), record, temporary)


def is_valid_record(record: Any) -> bool:
    """True for a record of the shape the job writes: a size and a sha256."""
    return (
        isinstance(record, dict)
        and type(record.get("size")) is int
        and isinstance(record.get("sha256"), str)
        and bool(SHA256.match(record["sha256"]))
    )


def read_record(package: Path) -> dict[str, Any] | None:
    """Return the record beside a package, or None when it is missing or malformed."""
    try:
        record = read_json_file(record_path(package))
    except (OSError, ValueError):
        return None
    return record if is_valid_record(record) else None


def ledger_record(home: Path, package: Path) -> dict[str, Any] | None:
    """Return what the ledger recorded of the package when nightlyBackup made it (size, sha256), or None.

    The newest run whose details name a package of the same file name with
    its size and sha256 wins, however that run ended (a run stopped after the
    package was in place still made it): an off-site copy is found by its
    local original's record.
    """
    match = PACKAGE_NAME.match(package.name)
    if not match:
        return None
    since = (dt.date.fromisoformat(match.group(1)) - dt.timedelta(days=1)).isoformat()
    found = None
    for run in runs_since(home, "nightlyBackup", since):
        details = run.details
        if Path(str(details.get("package", ""))).name == package.name:
            record = {"size": details.get("size"), "sha256": details.get("sha256")}
            if is_valid_record(record):
                found = record
    return found


def differs_from(
    package: Path, record: dict[str, Any], where: str, check: Callable[[], None] = lambda: None
) -> str | None:
    """Read the package once and compare its size and sha256 with a record of it; return how it differs,
    in words naming where the record is, or None when it matches."""
    from lib.encryption import file_digest

    written = file_digest(package, check)
    if written.sha256 == record["sha256"]:
        return None
    if written.size != record["size"]:
        return (
            f"its sha256 and size differ from {where} ({written.size} bytes, {record['size']} recorded: "
            "cut short or altered)"
        )
    return f"its sha256 differs from {where} (the file was altered)"


def is_sound(package: Path, home: Path | None = None) -> bool:
    """True for a package that looks whole without opening it: a clear one whose manifest reads, an
    encrypted one whose record (beside it, or else in home's ledger) has its size."""
    if package.name.endswith(".age"):
        record = read_record(package) or (ledger_record(home, package) if home else None)
        return record is not None and package.stat().st_size == record["size"]
    try:
        read_manifest(package)
    except ValueError:
        return False
    return True


def remove_leftovers(folder: Path, pattern: re.Pattern[str] = LEFTOVER_NAME, folders: bool = False) -> list[str]:
    """Delete the temporary files (and, with folders, folders) that runs which died left in folder;
    return their names.

    The name holds the pid of the process that made it: a file of a process
    still alive (a verify going on beside the backup, say) is left alone.
    """
    removed = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = pattern.match(path.name)
        if not match or process_alive(int(match.group(match.lastindex or 0))):
            continue
        if path.is_dir() and not path.is_symlink():
            if not folders:
                continue
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed


def apply_retention(
    folder: Path, today: dt.date, retention_days: int, keep_newest: int, home: Path | None = None
) -> list[str]:
    """Delete packages older than retention_days (and their records), never one of the keep_newest
    newest sound ones (is_sound).

    Only files named like our packages or their records are ever
    considered: anything else in the folder is left alone. Return the names deleted.
    """
    packages = packages_in(folder)
    protected = set([path for _, path in packages if is_sound(path, home)][:keep_newest])
    deleted = []
    for day, path in packages:
        if (today - day).days > retention_days and path not in protected:
            path.unlink(missing_ok=True)
            record_path(path).unlink(missing_ok=True)
            deleted.append(path.name)
    for path in folder.iterdir():
        match = RECORD_NAME.match(path.name)
        if match and not path.with_name(path.name.removesuffix(RECORD_SUFFIX)).exists():
            with contextlib.suppress(ValueError):
                if (today - dt.date.fromisoformat(match.group(1))).days > retention_days:
                    path.unlink(missing_ok=True)  # a record whose package is gone
    if deleted:
        fsync_folder(folder)
    return deleted
