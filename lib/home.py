"""CASEJOBS_HOME: the folder holding the ledger, the locks, the backups and the logs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lib.errors import ConfigError

SUBFOLDERS = ("ledger", "lock", "backups", "log")


def prepare_home(home: Path) -> Path:
    """Given CASEJOBS_HOME, create it and its subfolders and prove it is writable.

    Return the same path. Raise ConfigError naming CASEJOBS_HOME if any part
    cannot be made or written (a write probe, since root passes every access check).
    """
    try:
        for name in SUBFOLDERS:
            (home / name).mkdir(parents=True, exist_ok=True)
        os.chmod(home / "backups", 0o700)
        with tempfile.NamedTemporaryFile(dir=home / "ledger", prefix=".probe-"):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"CASEJOBS_HOME {home} is not writable: {reason}") from None
    return home
