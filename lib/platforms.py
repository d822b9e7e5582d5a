"""What differs between the two schedulers' worlds, POSIX with cron and Windows with Task Scheduler.

Every function here takes the platform's facts as arguments (the system's
name, the environment, the install folder), so that the Windows answers are
computed, and tested, on any host.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath, PureWindowsPath

WINDOWS = "nt"
TASK_FOLDER = "\\casejobs\\"  # every task lives in this Task Scheduler folder
LOGON_TYPES = {"s4u": "S4U", "password": "Password"}
CONSOLE_PREFIX = "casejobs-"  # pyproject.toml's console scripts: casejobs-daily-sync, casejobs-run-job, ...


def default_home(project_root: Path, system: str = os.name, environ: Mapping[str, str] | None = None) -> PurePath:
    """Return CASEJOBS_HOME when none is set.

    On Windows: %LOCALAPPDATA%\\casejobs (the user's own, never roamed). On
    POSIX: var/ in the project for a clone (bin/ beside lib/), else the
    user's data folder ($XDG_DATA_HOME/casejobs, ~/.local/share/casejobs).
    """
    environ = os.environ if environ is None else environ
    if system == WINDOWS:
        base = environ.get("LOCALAPPDATA") or str(
            PureWindowsPath(environ.get("USERPROFILE", "C:\\"), "AppData", "Local")
        )
        return PureWindowsPath(base, "casejobs")
    if (project_root / "bin" / "_python").exists():
        return project_root / "var"
    data = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".local" / "share")
    return Path(data) / "casejobs"


def windows_scripts_folder(install: str) -> PureWindowsPath:
    """Given the install location on Windows (the project folder holding .venv, or the virtualenv itself),
    return the folder of its console scripts (...\\Scripts)."""
    folder = PureWindowsPath(install)
    if folder.name.lower() == "scripts":
        return folder
    if folder.name.lower() in (".venv", "venv"):
        return folder / "Scripts"
    return folder / ".venv" / "Scripts"


def windows_launcher(install: str, command: str = "run-job") -> PureWindowsPath:
    """Return the .exe pip made for a console script: casejobs-run-job.exe by default."""
    return windows_scripts_folder(install) / f"{CONSOLE_PREFIX}{command}.exe"


def detected_windows_install() -> str | None:
    """The install location when this process runs on Windows from a virtualenv, else None."""
    if os.name != WINDOWS:
        return None
    return str(Path(sys.executable).parent)


def task_name(job: str) -> str:
    """Return a job's Task Scheduler name: \\casejobs\\dailySync."""
    return f"{TASK_FOLDER}{job}"


def schtasks_create(job: str, xml: PurePath, user: str, logon: str) -> list[str]:
    """Return the command that registers a job's task from its XML, replacing an older one.

    A task that logs on with a password needs it once, now: `/RP *` makes
    schtasks ask for it (it is never written anywhere by casejobs).
    """
    command = ["schtasks", "/Create", "/XML", str(xml), "/TN", task_name(job), "/F"]
    if LOGON_TYPES[logon] == "Password":
        command += ["/RU", user, "/RP", "*"]
    return command


def schtasks_delete(job: str) -> list[str]:
    """Return the command that removes a job's task."""
    return ["schtasks", "/Delete", "/TN", task_name(job), "/F"]


def kill_limit(time_limit: int) -> int:
    """Given a job's own time limit, return the limit a scheduler may kill it at: a margin later, so that
    the job always stops itself first and records `timeout` (a minute, or a tenth of the limit if more)."""
    return time_limit + max(60, time_limit // 10)
