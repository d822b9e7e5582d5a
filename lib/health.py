"""Is each job keeping up with its schedule? Missed IST slots, overdue flags, what is running now.

A slot is missed when it is more than the grace (10 minutes) old and no
successful or partial run has started since it. Counting starts at the
newest good run, or at `jobctl install` for a job that never ran, so a new
installation is not reported as years behind.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib import ledger
from lib.clock import format_utc, parse_utc
from lib.lock import is_locked, lock_path
from lib.schedule import Entry
from lib.settings import Settings

GOOD = ("success", "partial")
INSTALLED_MARKER = "installed-at"


def installed_at(home: Path) -> dt.datetime | None:
    """Return when `jobctl install` last ran against this home, if it did."""
    try:
        return parse_utc((home / INSTALLED_MARKER).read_text().strip())
    except (OSError, ValueError):
        return None


def mark_installed(home: Path, now: dt.datetime) -> None:
    (home / INSTALLED_MARKER).write_text(format_utc(now) + "\n")


def last_good_start(home: Path, job: str, now: dt.datetime) -> dt.datetime | None:
    """Return the start time of the job's newest success or partial run (dry runs do not count)."""
    path = ledger.ledger_path(home, job)
    for records in (ledger.recent_records(path, format_utc(now - dt.timedelta(days=8))), None):
        if records is None:
            records = list(ledger.read_lines(path))
        starts = {record["run_id"]: record["ts"] for record in records if record.get("event") == "start"}
        good = [
            starts.get(record["run_id"], record["ts"])
            for record in records
            if record.get("event") == "finish" and record.get("status") in GOOD and not record.get("dry_run")
        ]
        if good:
            return parse_utc(max(good))
    return None


@dataclass
class JobHealth:
    """Where one job stands against its schedule."""

    job: str
    latest_slot: dt.datetime
    last_good_start: dt.datetime | None
    missed_slots: int
    running_pid: int | None

    @property
    def overdue(self) -> bool:
        return self.missed_slots > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "overdue": self.overdue,
            "missed_slots": self.missed_slots,
            "latest_slot": self.latest_slot.isoformat(timespec="minutes"),
            "last_good_start": self.last_good_start.isoformat() if self.last_good_start else None,
            "running_pid": self.running_pid,
        }


def running_pid(home: Path, job: str) -> int | None:
    """Return the pid of the run holding the job's lock, or None when none does."""
    if not is_locked(home, job):
        return None
    try:
        return int(lock_path(home, job).with_suffix(".pid").read_text().strip())
    except (OSError, ValueError):
        return -1  # held, by a process that left no pid


def job_health(settings: Settings, entry: Entry, now: dt.datetime) -> JobHealth:
    """Return how the job stands: missed slots since its newest good run (or the install)."""
    home = settings.home
    grace = dt.timedelta(minutes=settings.get("ops.catch_up_grace_minutes"))
    good = last_good_start(home, entry.job, now)
    reference = max((moment for moment in (good, installed_at(home)) if moment is not None), default=None)
    missed = entry.slots_between(reference, now - grace) if reference else 0
    return JobHealth(entry.job, entry.latest_slot(now), good, missed, running_pid(home, entry.job))
