"""The off-site copy: each verified package copied to a mounted folder (a NAS share, a USB disk, a
synced folder), checked there, and kept by the same retention.

An unmounted share is just an empty local folder, so a folder counts as the
destination only when it holds the marker that `jobctl offsite init DIR`
writes. A copy goes under a temporary name, is fsynced, read back and
compared by sha256 with the package's record, and only then renamed: the
destination never holds a partial file under a final name. Every fault is
one line in words (OffsiteProblem): "offsite folder /mnt/nas/backups is not
mounted".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import os
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lib.archive import CHUNK, fsync_folder
from lib.clock import format_utc
from lib.encryption import file_digest, is_encrypted
from lib.errors import CasejobsError
from lib.home import read_small_file
from lib.retention import (
    apply_retention,
    is_sound,
    ledger_record,
    packages_in,
    read_record,
    record_path,
    remove_leftovers,
    write_record,
)

MARKER = ".casejobs-offsite"
SPACE_MARGIN = 1 << 20
HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())  # a shared folder may serve several machines
# What a copy killed half-way leaves there: only these are ever removed, files only, this host's only.
LEFTOVER = re.compile(
    rf"^\.casejobs-offsite-{re.escape(HOST)}-(\d+)\."
    rf"(?:casejobs-backup-\d{{4}}-\d{{2}}-\d{{2}}\.zip(?:\.age)?(?:\.json)?|probe)$"  # a copy, its record, doctor's probe
)


def temporary_name(folder: Path, name: str) -> Path:
    """Where a file is written in the off-site folder before it is renamed to name."""
    return folder / f".casejobs-offsite-{HOST}-{os.getpid()}.{name}"


class OffsiteProblem(CasejobsError):
    """The off-site folder cannot take the copy: missing, not mounted, full, read-only. The local
    package is unaffected; the run is partial."""


def owner_of(home: Path) -> str:
    """The installation an off-site folder belongs to: this host and its home. Package names carry no
    host, so two installations sharing one folder would overwrite and expire each other's packages."""
    return f"{socket.gethostname()}:{home.absolute()}"


OWNER_LINE = re.compile(r"^owner: (.+)$", re.MULTILINE)


def marker_owner(folder: Path) -> str | None:
    """The owner written in the folder's marker (None for a marker without one, or unreadable)."""
    try:
        match = OWNER_LINE.search(read_small_file(folder / MARKER).decode("utf-8", errors="replace"))
    except OSError:
        return None
    return match.group(1).strip() if match else None


def init_folder(folder: Path, home: Path, now: dt.datetime) -> bool:
    """Write the marker that makes folder this installation's off-site destination; return False if it
    was this installation's already.

    Raise CasejobsError when the folder does not exist (mount it first), cannot be written, or is
    another installation's.
    """
    if not folder.is_dir():
        raise CasejobsError(f"{folder} does not exist or is not a folder: mount the share (or create it) first")
    marker = folder / MARKER
    owner = owner_of(home)
    if marker.is_file():
        found = marker_owner(folder)
        if found not in (None, owner):
            raise CasejobsError(
                f"{folder} is already the off-site folder of {found}: give each installation a folder of its own "
                f"(a subfolder such as {folder / socket.gethostname()})"
            )
        if found == owner:
            return False
    try:
        marker.write_text(
            "This folder receives casejobs backup packages (its nightlyBackup job copies them here).\n"
            "Without this file the folder is taken for an unmounted share and nothing is copied.\n"
            f"initialised {format_utc(now)}\nowner: {owner}\n",
            encoding="utf-8",
        )
    except OSError as error:
        raise CasejobsError(f"{folder} cannot be written: {error.strerror}") from None
    fsync_folder(folder)
    return True


def destination_problem(folder: Path, home: Path | None = None) -> str | None:
    """Say why folder cannot be the off-site destination now (missing, not mounted, or with home
    given, another installation's), else None."""
    if folder.exists() and not folder.is_dir():
        return f"offsite folder {folder} is a file, not a folder"
    if not folder.is_dir():
        return f"offsite folder {folder} is not mounted (it does not exist)"
    if not (folder / MARKER).is_file():
        return (
            f"offsite folder {folder} is not mounted (it has no {MARKER} marker; "
            f"once the share is there, run: bin/jobctl offsite init {folder})"
        )
    found = marker_owner(folder) if home is not None else None
    if found is not None and found != owner_of(home):
        return f"offsite folder {folder} belongs to another installation ({found}): give this one a folder of its own"
    return None


def room_problem(folder: Path, size: int, name: str = "the next package") -> str | None:
    """Say why folder cannot take size bytes (read-only, or without size and 1 MiB to spare), or None:
    the words of both the nightly copy and doctor."""
    if hasattr(os, "statvfs") and os.statvfs(folder).f_flag & os.ST_RDONLY:
        return f"offsite folder {folder} is read-only"
    free = shutil.disk_usage(folder).free
    if free < size + SPACE_MARGIN:
        return (
            f"offsite folder {folder} is full: {name} needs {size / 2**20:.1f} MiB "
            f"and 1 MiB to spare, {free / 2**20:.1f} MiB free"
        )
    return None


def writing_problem(folder: Path, next_size: int) -> str | None:
    """Say why a mounted off-site folder cannot take a package of next_size bytes now (read-only, not
    writable, full), in the words the nightly run would use, else None. Writes and removes a probe
    (a read-only folder refuses it: EROFS)."""
    probe = temporary_name(folder, "probe")
    with contextlib.suppress(OSError):
        probe.unlink()  # one a killed doctor of the same pid left
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        return _in_words(folder, error)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return room_problem(folder, next_size)


def _in_words(folder: Path, error: OSError) -> str:
    """An OSError met while writing to folder, as one line for people."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"offsite folder {folder} is full"
    if error.errno == errno.EROFS:
        return f"offsite folder {folder} is read-only"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"offsite folder {folder} is not writable (permission denied)"
    return f"offsite folder {folder} cannot be written: {error.strerror or error}"


def is_there(package: Path, copy: Path, record: dict[str, Any]) -> bool:
    """True when copy is already a finished copy of package: its size and its record match."""
    try:
        size = copy.stat().st_size
    except OSError:
        return False
    there = read_record(copy)
    return size == record["size"] and there is not None and there["sha256"] == record["sha256"]


class LocalMismatch(CasejobsError):
    """The local package no longer matches its record: it is not copied (the others are)."""


def copy_package(package: Path, folder: Path, record: dict[str, Any], check: Callable[[], None]) -> Path:
    """Copy package (and its record) into folder under a temporary name, fsync it, read it back, compare
    both the source read and the copy with the record's sha256, then rename it; return the copy's path.

    check() is called between chunks and may raise to stop; the temporary
    file is then removed. Raise LocalMismatch when the local package differs
    from its record, and OffsiteProblem for a folder that is full, read-only
    or cannot be written, or a copy that does not match.
    """
    final = folder / package.name
    temporary = temporary_name(folder, package.name)
    try:
        try:
            problem = room_problem(folder, record["size"], package.name)
            if problem:
                raise OffsiteProblem(problem)
            source_hash = hashlib.sha256()
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as target, package.open("rb") as source:
                while block := source.read(CHUNK):
                    source_hash.update(block)
                    target.write(block)
                    check()
                target.flush()
                os.fsync(target.fileno())
            if source_hash.hexdigest() != record["sha256"]:
                raise LocalMismatch(f"local package {package} differs from its record: not copied off-site")
            written = file_digest(temporary, check)  # read back from the destination, not from memory
            if written.sha256 != record["sha256"] or written.size != record["size"]:
                raise OffsiteProblem(
                    f"the copy of {package.name} in {folder} differs from what was read (sha256): not kept"
                )
            # The record first: a copy never has its final name without its record.
            write_record(final, record, temporary_name(folder, record_path(final).name))
            os.replace(temporary, final)
            fsync_folder(folder)
        except OSError as error:
            raise OffsiteProblem(_in_words(folder, error)) from None
    finally:
        with contextlib.suppress(OSError):  # a read-only folder refuses even to unlink what is not there
            temporary.unlink(missing_ok=True)
    return final


def recent_packages(
    home: Path, local: Path, today: dt.date, retention_days: int, clear_allowed: bool
) -> Iterator[tuple[Path, dict[str, Any] | None]]:
    """Yield each local package within the retention that may go off-site (encrypted ones; clear ones
    only when clear_allowed), newest first, with its record: the one beside it, or else the ledger's
    (written back beside it), or None when neither knows its size and sha256."""
    for day, path in packages_in(local):
        if (today - day).days > retention_days or not (clear_allowed or is_encrypted(path)):
            continue
        record = read_record(path)
        if record is None:
            record = ledger_record(home, path)
            if record is not None and path.stat().st_size == record["size"]:
                with contextlib.suppress(OSError):  # a record lost beside it is written back when it can be
                    write_record(path, {"package": path.name, **record})
            else:
                record = None
        if record is None or is_sound(path):
            yield path, record


def synchronise(
    home: Path,
    local: Path,
    folder: Path,
    today: dt.date,
    retention: tuple[int, int],
    clear_allowed: bool,
    check: Callable[[], None],
    log: Any,
) -> dict[str, Any]:
    """Copy every recent local package missing in folder (the newest first), then apply the retention
    there; return {"copied": names, "deleted": names, "not_copied": reasons}. Raise OffsiteProblem
    when the folder is not there or cannot take a copy."""
    problem = destination_problem(folder, home)
    if problem:
        raise OffsiteProblem(problem)
    try:
        removed = remove_leftovers(folder, LEFTOVER)
        # The retention first: a folder that filled up frees the room the new copy needs.
        deleted = apply_retention(folder, today, *retention, home=home)
    except OSError as error:
        raise OffsiteProblem(_in_words(folder, error)) from None
    if removed:
        log.info("removed what a killed copy left off-site", files=removed)
    copied, not_copied = [], []
    for package, record in recent_packages(home, local, today, retention[0], clear_allowed):
        if record is None:
            not_copied.append(f"{package.name} not copied off-site: no record of its size and sha256")
            continue
        if is_there(package, folder / package.name, record):
            continue
        log.info("copying off-site", package=package.name, folder=str(folder))
        try:
            copy_package(package, folder, record, check)
        except LocalMismatch as mismatch:
            not_copied.append(str(mismatch))
            continue
        copied.append(package.name)
    try:
        deleted += apply_retention(folder, today, *retention, home=home)  # now that the new copies count
    except OSError as error:
        raise OffsiteProblem(_in_words(folder, error)) from None
    return {"copied": copied, "deleted": deleted, "not_copied": not_copied}


def offsite_packages(folder: Path, home: Path | None = None) -> list[tuple[dt.date, Path]]:
    """The finished packages in the off-site folder, newest first (none when it is not mounted)."""
    if destination_problem(folder, home):
        return []
    return packages_in(folder)
