"""CASEJOBS_HOME: the folder holding the ledger, the locks, the backups and the logs.

Everything under it is private to its owner, whatever the umask: folders
0700, files 0600 (POSIX; on Windows the file's ACL, inherited from the
user's profile, already does this).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from lib.errors import ConfigError

SUBFOLDERS = ("ledger", "lock", "backups", "log")
FOLDER_MODE = 0o700
FILE_MODE = 0o600
POSIX = os.name == "posix"


def make_private_folder(folder: Path) -> None:
    """Create folder (its parent must exist) or keep it, with mode 0700."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=FOLDER_MODE)
    if POSIX and (folder.stat().st_mode & 0o777) != FOLDER_MODE:
        with contextlib.suppress(PermissionError):  # a folder someone else owns keeps its mode
            os.chmod(folder, FOLDER_MODE)


def make_private_file(path: Path, descriptor: int | None = None) -> None:
    """Give a file we created mode 0600 (the umask may have taken bits away, never added them)."""
    if not POSIX:
        return
    with contextlib.suppress(PermissionError):
        if descriptor is not None:
            if (os.fstat(descriptor).st_mode & 0o777) != FILE_MODE:
                os.fchmod(descriptor, FILE_MODE)
        elif (path.stat().st_mode & 0o777) != FILE_MODE:
            os.chmod(path, FILE_MODE)


def create_home(home: Path) -> Path:
    """Create CASEJOBS_HOME for a setup command (db init, install) when its parent exists.

    Raise ConfigError naming CASEJOBS_HOME when the parent does not exist:
    a mistyped path must not leave folders behind.
    """
    if not home.is_dir():
        if not home.parent.is_dir():
            raise ConfigError(f"CASEJOBS_HOME {home}: its folder {home.parent} does not exist")
        try:
            make_private_folder(home)
        except OSError as error:
            raise ConfigError(f"CASEJOBS_HOME {home} cannot be created: {error.strerror or error}") from None
    return prepare_home(home)


def check_home(home: Path) -> Path:
    """Raise ConfigError naming CASEJOBS_HOME unless it is an existing folder; create nothing."""
    if not home.is_dir():
        hint = "it is not a folder" if home.exists() else "it does not exist (bin/jobctl db init creates it)"
        raise ConfigError(f"CASEJOBS_HOME {home}: {hint}")
    return home


def prepare_home(home: Path) -> Path:
    """Given an existing CASEJOBS_HOME, create its subfolders (0700) and prove it is writable.

    Return the same path. Raise ConfigError naming CASEJOBS_HOME if it does
    not exist, or any part cannot be made or written (a write probe, since
    root passes every access check).
    """
    check_home(home)
    try:
        for name in SUBFOLDERS:
            make_private_folder(home / name)
        with tempfile.NamedTemporaryFile(dir=home / "ledger", prefix=".probe-"):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"CASEJOBS_HOME {home} is not writable: {reason}") from None
    return home


def check_writable_home(home: Path) -> Path:
    """Given CASEJOBS_HOME, prove it exists and can be written (a probe file, removed); create nothing.

    Return the same path; raise ConfigError naming CASEJOBS_HOME otherwise.
    """
    check_home(home)
    try:
        with tempfile.NamedTemporaryFile(dir=home, prefix=".casejobs-probe-"):
            pass
    except OSError as error:
        raise ConfigError(f"CASEJOBS_HOME {home} is not writable: {error.strerror or error}") from None
    return home


def is_writable_home(home: Path) -> bool:
    """Return True if home is an existing folder this process can write in (without creating anything)."""
    return home.is_dir() and os.access(home, os.W_OK | os.X_OK)
