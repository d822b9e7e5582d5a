"""jobctl install/uninstall --scheduler windows: each job a task of Task Scheduler, registered with schtasks.

The tasks' XML is written under the home (export/windows/), then registered
one job at a time with `schtasks /Create /XML … /TN \\casejobs\\<job> /F`;
uninstall removes them with `/Delete`. `--dry-run` prints the exact commands
on any host; anywhere but Windows the commands are only ever printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from jobs import REGISTRY
from lib import export
from lib.errors import CasejobsError, UsageError
from lib.home import create_home
from lib.platforms import WINDOWS, detected_windows_install, schtasks_create, schtasks_delete
from lib.settings import Settings

DEFAULT_INSTALL = "C:\\casejobs"  # the project folder on the Windows host, when casejobs does not run there


def job_limits(settings: Settings) -> dict[str, int]:
    """Each job's own time limit as it will run: CASEJOBS_MAX_RUNTIME when set, else the job's."""
    override = settings.get("core.max_runtime")
    return {spec.name: override or spec.time_limit for spec in REGISTRY}


def task_xml(settings: Settings, install: str | None, user: str, logon: str) -> dict[str, bytes]:
    """Return each job's task XML by file name (casejobs-<script>.xml)."""
    limits = job_limits(settings)
    where = install or detected_windows_install() or DEFAULT_INSTALL
    return {
        f"casejobs-{entry.script}.xml": export.windows_task(entry, where, user, logon, limits[entry.job])
        for entry in REGISTRY.entries()
    }


def _refuse_here(verb: str) -> None:
    if os.name != WINDOWS:
        raise UsageError(
            f"jobctl {verb} --scheduler windows runs schtasks, which only Windows has; "
            "--dry-run prints the exact commands on any host"
        )


def install_tasks(
    settings: Settings, dry_run: bool, install: str | None, user: str, logon: str, echo: Callable[[str], None]
) -> None:
    """Write every job's task XML under the home and register it (or, dry, print the commands)."""
    if not dry_run:
        _refuse_here("install")
    folder = settings.home / "export" / "windows"
    files = task_xml(settings, install, user, logon)
    commands = [
        schtasks_create(entry.job, folder / f"casejobs-{entry.script}.xml", user, logon) for entry in REGISTRY.entries()
    ]
    if dry_run:
        # On stderr: stdout stays the exact commands, to be pasted or piped.
        print(
            f"jobctl install: the real install first writes each task's XML into {folder}; "
            "bin/jobctl export --format windows writes the same files now",
            file=sys.stderr,
        )
        for command in commands:
            echo(" ".join(_quoted(part) for part in command))
        return
    create_home(settings.home)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    for command in commands:
        _run(command, echo)


def uninstall_tasks(dry_run: bool, echo: Callable[[str], None]) -> None:
    """Remove every job's task (or, dry, print the commands)."""
    if not dry_run:
        _refuse_here("uninstall")
    for spec in REGISTRY:
        command = schtasks_delete(spec.name)
        if dry_run:
            echo(" ".join(_quoted(part) for part in command))
        else:
            _run(command, echo)


def _quoted(part: str) -> str:
    return f'"{part}"' if " " in part else part


def _run(command: list[str], echo: Callable[[str], None]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip() or f"exit {result.returncode}"
        raise CasejobsError(f"{' '.join(command[:2])} {command[-3] if len(command) > 3 else ''} failed: {reason}")
    echo(result.stdout.strip() or " ".join(command))
