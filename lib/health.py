"""Is each job keeping up with its schedule? Missed IST slots, what is running, what monitoring should say.

A slot is missed when it is more than the grace (10 minutes) old and no
successful or partial run has started since it. Counting starts at the
newest good run, or at `jobctl install` for a job that never ran, so a new
installation is not reported as years behind. check_job() is the one place
that turns where a job stands into OK, WARNING or CRITICAL lines, for
`jobstats --check` and `jobctl status` alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib import ledger
from lib.clock import IST, format_utc, parse_utc, today_ist
from lib.history import Latest, Run, latest
from lib.home import make_file
from lib.jobspec import JobSpec
from lib.schedule import Entry
from lib.settings import Settings

INSTALLED_MARKER = "installed-at"
OK, WARNING, CRITICAL = 0, 1, 2
LEVEL_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}
CRITICAL_STATUSES = ("failed", "crashed", "config")
WARNING_STATUSES = ("partial", "timeout", "interrupted")


def installed_at(home: Path) -> dt.datetime | None:
    """Return when `jobctl install` last ran against this home, if it did."""
    try:
        return parse_utc((home / INSTALLED_MARKER).read_text().strip())
    except (OSError, ValueError):
        return None


def mark_installed(home: Path, now: dt.datetime) -> None:
    path = home / INSTALLED_MARKER
    path.write_text(format_utc(now) + "\n")
    make_file(path)


@dataclass
class JobHealth:
    """Where one job stands against its schedule."""

    job: str
    latest_slot: dt.datetime
    missed_slots: int
    state: Latest = field(default_factory=Latest)
    spec: JobSpec | None = None

    @property
    def overdue(self) -> bool:
        return self.missed_slots > 0

    @property
    def last_good_start(self) -> dt.datetime | None:
        return parse_utc(self.state.last_good_start) if self.state.last_good_start else None

    @property
    def running_pid(self) -> int | None:
        return self.state.running.pid if self.state.running else None

    def as_dict(self) -> dict[str, Any]:
        good = self.last_good_start
        return {
            "overdue": self.overdue,
            "missed_slots": self.missed_slots,
            "latest_slot": self.latest_slot.isoformat(timespec="seconds"),
            "last_good_start": good.astimezone(IST).isoformat(timespec="seconds") if good else None,
        }


def job_health(settings: Settings, entry: Entry, now: dt.datetime, damage: ledger.Damage | None = None) -> JobHealth:
    """Return how the job stands: its latest runs, and missed slots since its newest good run (or the install)."""
    home = settings.home
    grace = dt.timedelta(minutes=settings.get("ops.catch_up_grace_minutes"))
    state = latest(home, entry.job, damage)
    good = parse_utc(state.last_good_start) if state.last_good_start else None
    reference = max((moment for moment in (good, installed_at(home)) if moment is not None), default=None)
    missed = entry.slots_between(reference, now - grace) if reference else 0
    return JobHealth(entry.job, entry.latest_slot(now), missed, state, entry.spec)


def ist_words(utc_text: str, now: dt.datetime) -> str:
    """Given a ledger time, return it for people: `06:30 IST` today, else `2026-11-28 06:30 IST`."""
    moment = parse_utc(utc_text).astimezone(IST)
    if moment.date() == today_ist(now):
        return f"{moment:%H:%M} IST"
    return f"{moment:%Y-%m-%d %H:%M} IST"


def age_words(utc_text: str, now: dt.datetime) -> str:
    """Given a ledger time, return how long ago it was in words: `3 days ago`, `5 hours ago`."""
    seconds = max(0, int((now - parse_utc(utc_text)).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


def headlines(healths: list[JobHealth], now: dt.datetime) -> list[str]:
    """The lines some jobs have of their own (JobSpec.headline): `last restore drill: ok, 3 days ago`;
    none for a job that never ran (the checks say so already)."""
    return [line for health in healths if (line := headline_of(health, now)) is not None]


def _stale(health: JobHealth, now: dt.datetime, installed: dt.datetime | None) -> tuple[int, str] | None:
    """A WARNING when a job that must succeed every so often (JobSpec.good_run_within_days) has not:
    counted from its newest success, or from the install for one that never succeeded."""
    within = health.spec.good_run_within_days if health.spec else None
    success = parse_utc(health.state.last_success_start) if health.state.last_success_start else None
    reference = success or installed
    if within is None or reference is None or now - reference <= dt.timedelta(days=within):
        return None
    days = (now - reference).days
    what = health.spec.headline.removeprefix("last ") if health.spec.headline else "good run"
    since = "" if success else " since the schedule was installed"
    return WARNING, f"{health.job}: no successful {what} for {days} days{since}"


def check_job(
    health: JobHealth, now: dt.datetime, installed: bool, installed_time: dt.datetime | None = None
) -> list[tuple[int, str]]:
    """Given a job's health, return (level, line) per problem: 1 WARNING, 2 CRITICAL (none: OK)."""
    name, state = health.job, health.state
    problems: list[tuple[int, str]] = []
    stale = _stale(health, now, installed_time)
    if stale:
        problems.append(stale)
    last: Run | None = state.last_worked
    if last is not None:
        reason = f": {last.error}" if last.error else ""
        if last.status == "config":
            since = state.failing_since or last.started_at
            problems.append((CRITICAL, f"{name}: configuration error since {ist_words(since, now)}{reason}"))
        elif last.status in CRITICAL_STATUSES:
            problems.append((CRITICAL, f"{name}: last run {last.status} at {ist_words(last.started_at, now)}{reason}"))
        elif last.status in WARNING_STATUSES:
            problems.append((WARNING, f"{name}: last run {last.status} at {ist_words(last.started_at, now)}{reason}"))
    if health.missed_slots > 1:
        problems.append((CRITICAL, f"{name}: {health.missed_slots} scheduled runs missed"))
    elif health.missed_slots == 1:
        problems.append((WARNING, f"{name}: its last scheduled run was missed"))
    elif last is None and state.running is None:
        if installed:
            problems.append((WARNING, f"{name}: never ran since the schedule was installed"))
        else:
            problems.append((WARNING, f"{name}: never ran, and the schedule is not installed (bin/jobctl install)"))
    return problems


def check_all(healths: list[JobHealth], home: Path, now: dt.datetime) -> list[tuple[int, str]]:
    """Return the problems of every job, or one WARNING when nothing was ever installed or run; a
    ledger that cannot be read comes first, CRITICAL (what it hides is not known)."""
    damaged = ledger.unreadable(home, [health.job for health in healths])
    if damaged:
        return [(CRITICAL, f"the ledger cannot be read: {damaged}; no run can be judged or recorded")]
    installed = installed_at(home) is not None
    if not installed and not any(health.state.ever_ran for health in healths):
        return [(WARNING, "casejobs is not installed (bin/jobctl install) and no job has ever run")]
    when = installed_at(home)
    return [problem for health in healths for problem in check_job(health, now, installed, when)]


def problems_by_job(healths: list[JobHealth], home: Path, now: dt.datetime) -> dict[str, list[tuple[int, str]]]:
    """check_all's problems, per job: a problem about no job in particular (nothing installed, nothing
    ever ran) counts for every job."""
    problems = check_all(healths, home, now)
    general = [(level, line) for level, line in problems if not any(line.startswith(f"{h.job}:") for h in healths)]
    return {
        health.job: [(level, line) for level, line in problems if line.startswith(f"{health.job}:")] or general
        for health in healths
    }


def overall_level(problems: list[tuple[int, str]]) -> int:
    """The worst level of a list of problems: OK when there are none."""
    return max((level for level, _ in problems), default=OK)


def headline_of(health: JobHealth, now: dt.datetime) -> str | None:
    """One job's own line (JobSpec.headline), or None: `last restore drill: ok, 3 days ago`."""
    last = health.state.last_worked
    if health.spec is None or health.spec.headline is None or last is None:
        return None
    word = "ok" if last.status == "success" else last.status
    reason = f" ({last.error})" if last.error and last.status != "success" else ""
    return f"{health.spec.headline}: {word}, {age_words(last.started_at, now)}{reason}"
