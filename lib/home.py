"""CASEJOBS_HOME: the folder holding the ledger, the locks, the backups and the logs.

Everything under it is private to its owner, whatever the umask: folders
0700, files 0600. With CASEJOBS_HOME_GROUP (a monitoring account's group,
so that `jobstats --check` can run as that account), folders are 2750 and
files 0640, owned by that group; the backups stay 0700 and 0600 whatever the
group. POSIX only: on Windows the ACL inherited from the user's profile
already keeps the home private.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from lib.errors import ConfigError, UsageError

SUBFOLDERS = ("ledger", "lock", "backups", "log")
PRIVATE_FOLDER, PRIVATE_FILE = 0o700, 0o600
SHARED_FOLDER, SHARED_FILE = 0o2750, 0o640  # setgid: files made inside (cron's log redirection) take the group
POSIX = os.name == "posix"


class _Policy:
    """Who may read what is under the home: its owner only, or also CASEJOBS_HOME_GROUP."""

    group_id: int | None = None


POLICY = _Policy()


def share_with_group(name: str | None) -> None:
    """Let group `name` (a monitoring account's, say) read the ledger, the locks and the logs, never the backups.

    Raise ConfigError naming CASEJOBS_HOME_GROUP if there is no such group.
    None keeps everything private to the owner. Ignored where there are no
    POSIX groups (Windows).
    """
    if not name or not POSIX:
        POLICY.group_id = None
        return
    import grp

    try:
        POLICY.group_id = grp.getgrnam(name).gr_gid
    except KeyError:
        raise ConfigError(f"CASEJOBS_HOME_GROUP={name!r}: no such group on this host") from None


def umask_for_cron() -> str:
    """The umask a cron line sets before its log redirection, so that the log file gets the home's modes."""
    return "027" if POLICY.group_id is not None else "077"


def _modes(shared: bool) -> tuple[int, int]:
    if shared and POLICY.group_id is not None:
        return SHARED_FOLDER, SHARED_FILE
    return PRIVATE_FOLDER, PRIVATE_FILE


def _give_to_group(path: Path | int) -> None:
    if POLICY.group_id is not None:
        with contextlib.suppress(PermissionError):
            if isinstance(path, int):
                os.fchown(path, -1, POLICY.group_id)
            else:
                os.chown(path, -1, POLICY.group_id)


def make_folder(folder: Path, shared: bool = True) -> None:
    """Create folder (its parent must exist) or keep it, with the home's folder mode, whatever the umask.

    shared=False (the backups) keeps it private to the owner even when a group may read the rest.
    """
    mode, _ = _modes(shared)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=mode & 0o777)
    if not POSIX:
        return
    with contextlib.suppress(PermissionError):  # a folder someone else owns keeps its mode
        if shared:
            _give_to_group(folder)
        if (folder.stat().st_mode & 0o7777) != mode:
            os.chmod(folder, mode)


def make_file(path: Path, descriptor: int | None = None, shared: bool = True) -> None:
    """Give a file we created the home's file mode (the umask may have taken bits away, or left too many)."""
    if not POSIX:
        return
    _, mode = _modes(shared)
    with contextlib.suppress(PermissionError):
        if shared:
            _give_to_group(descriptor if descriptor is not None else path)
        if descriptor is not None:
            if (os.fstat(descriptor).st_mode & 0o7777) != mode:
                os.fchmod(descriptor, mode)
        elif (path.stat().st_mode & 0o7777) != mode:
            os.chmod(path, mode)


class NotASmallFile(OSError):
    """A file we read whole that is not a regular file, or is larger than such a file can be."""


def read_small_file(path: Path, limit: int = 1 << 20) -> bytes:
    """Return the bytes of a small regular file (a config file, a key, a record, a marker).

    Raise NotASmallFile, whose strerror says why, for a pipe, a device or a
    folder (a pipe would block the run for ever, /dev/zero fill the memory)
    or a file above limit bytes; and OSError as the system gives it.
    """
    # Opened without blocking: a pipe's open waits for a writer; fstat then says what it is.
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(descriptor, "rb") as source:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise NotASmallFile(0, "not a regular file (a pipe, a device or a folder)", str(path))
        data = source.read(limit + 1)
    if len(data) > limit:
        raise NotASmallFile(0, f"larger than {limit // 1024} KiB, more than such a file ever holds", str(path))
    return data


def json_of(data: bytes) -> Any:
    """Parse JSON bytes; raise ValueError for anything that is not JSON, nesting beyond reason included
    (which the parser reports as a RecursionError)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested beyond reason") from None


def read_json_file(path: Path, limit: int = 1 << 20) -> Any:
    """Parse a small JSON file casejobs wrote (a record, alerts.json); raise OSError when it cannot be
    read (NotASmallFile when it is no small regular file) and ValueError when it is not JSON."""
    return json_of(read_small_file(path, limit))


def refuse_unless_replaceable(path: Path) -> None:
    """Raise UsageError when path exists but is not a regular file (a device such as /dev/null, a
    folder, a link or a pipe): writing beside it and renaming would replace that thing itself."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path} is not a regular file (a device, folder, link or pipe): give a file's path")


def write_json_file(path: Path, data: Any, temporary: Path | None = None) -> None:
    """Replace path with data as JSON, private (0600): written under a temporary name (by default
    `.<name>.tmp-<pid>` beside it), fsynced, renamed, and the rename made durable; a failure leaves
    the old file as it was and no temporary behind."""
    temporary = temporary or path.with_name(f".{path.name}.tmp-{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as target:
            target.write(json.dumps(data, indent=2) + "\n")
            target.flush()
            os.fsync(target.fileno())
        os.replace(temporary, path)
        with contextlib.suppress(OSError):  # folders cannot be opened on Windows
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def create_home(home: Path) -> Path:
    """Create CASEJOBS_HOME for a setup command (db init, install) when its parent exists.

    Raise ConfigError naming CASEJOBS_HOME when the parent does not exist:
    a mistyped path must not leave folders behind.
    """
    if not home.is_dir():
        if not home.parent.is_dir():
            raise ConfigError(f"CASEJOBS_HOME {home}: its folder {home.parent} does not exist")
        try:
            make_folder(home)
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
            make_folder(home / name, shared=name != "backups")
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
