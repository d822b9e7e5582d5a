"""Restoring a package's database: verified first, refused unless it is a casejobs database, written
beside its target under a temporary name, fsynced and renamed, keeping the replaced file's mode and owner."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from lib.archive import extract_member, free_space_problem, fsync_folder, verify_package
from lib.clock import now_utc
from lib.errors import CasejobsError
from lib.home import refuse_unless_replaceable
from lib.retention import remove_leftovers
from lib.schema import SCHEMA_VERSION, contract_problems

if TYPE_CHECKING:
    from lib.stop import StopFlag

RESTORE_LEFTOVER = ".{name}.restore-"


def restore(package: Path, target: Path, force: bool, scratch: Path, stop_flag: StopFlag | None = None) -> Path:
    """Verify package (inflating its database into scratch), then write its database.db to target
    atomically; return the target path. With a stop_flag, a stop interrupts the verification.

    The database must meet the contract of data-model.md at a version this
    casejobs knows; a replaced file's mode and owner are kept. Raise
    CasejobsError if the package does not verify, its database is not a
    casejobs database, the target exists without force, its folder does not
    exist or has too little room.
    """
    target = target.absolute()
    folder = target.parent
    if not folder.is_dir():
        raise CasejobsError(f"{folder} does not exist")
    refuse_unless_replaceable(target)  # a folder, a device or a link is never moved aside
    if target.exists() and not force:
        raise CasejobsError(f"{target} exists; add --force to replace it (the old file is kept beside it)")
    result = verify_package(package, check_database=True, stop_flag=stop_flag, scratch=scratch)
    if not result.ok:
        raise CasejobsError(f"{package} failed verification, nothing restored: {'; '.join(result.problems)}")
    leftover = re.compile(rf"^{re.escape(RESTORE_LEFTOVER.format(name=target.name))}(\d+)$")
    remove_leftovers(folder, leftover)
    temporary = folder / f"{RESTORE_LEFTOVER.format(name=target.name)}{os.getpid()}"
    try:
        with zipfile.ZipFile(package) as archive:
            space = free_space_problem(folder, archive.getinfo("database.db").file_size)
            if space:
                raise CasejobsError(f"nothing restored: database.db {space}")
            extract_member(archive, "database.db", temporary)
        refuse_unless_casejobs_database(temporary, package)
        if target.exists():
            keep_mode_and_owner(target, temporary)
            stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
            # The old database's -wal and -shm go with it: left behind, they would be replayed onto the restored file.
            for suffix in ("", "-wal", "-shm"):
                old = target.with_name(target.name + suffix)
                if old.exists():
                    os.replace(old, target.with_name(f"{target.name}.bak-{stamp}{suffix}"))
        os.replace(temporary, target)
        fsync_folder(folder)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def refuse_unless_casejobs_database(path: Path, package: Path) -> None:
    """Raise CasejobsError naming what is missing unless path meets the contract at a known version."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        problems = contract_problems(connection)
    finally:
        connection.close()
    if not 1 <= version <= SCHEMA_VERSION:
        problems.insert(0, f"schema version {version} is not one this casejobs knows (1 to {SCHEMA_VERSION})")
    if problems:
        raise CasejobsError(f"{package} does not hold a casejobs database, nothing restored: {'; '.join(problems)}")


def keep_mode_and_owner(old: Path, new: Path) -> None:
    """Give new the mode and owner of the file it replaces (an owner we may not set is left as it is)."""
    status = old.stat()
    os.chmod(new, status.st_mode & 0o7777)
    if hasattr(os, "chown"):
        with contextlib.suppress(PermissionError):
            os.chown(new, status.st_uid, status.st_gid)
