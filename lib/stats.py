"""What jobstats reports: runs per job from the ledger, their statuses, durations and what is next."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib import ledger
from lib.clock import IST, UTC, format_utc, parse_utc
from lib.errors import UsageError
from lib.history import Run, runs_since
from lib.schedule import Entry

REPORTED_STATUSES = (
    "success", "partial", "failed", "skipped", "locked", "interrupted", "timeout", "config", "crashed",
)  # fmt: skip
SINCE_PATTERN = re.compile(r"^([0-9]+)([dhm])$")
DEFAULT_SINCE = "30d"
EARLIEST = dt.datetime(ledger.EARLIEST_YEAR, 1, 1, tzinfo=UTC)


def parse_since(text: str, now: dt.datetime) -> dt.datetime | None:
    """Given `7d`, `12h`, `30m`, an IST date `2026-11-01`, an ISO instant or `all`, return the aware instant.

    `all` (and anything before 2000, where no ledger line can be) gives None:
    the whole ledger. Raise UsageError on anything else.
    """
    text = text.strip()
    if text == "all":
        return None
    match = SINCE_PATTERN.match(text)
    try:
        if match:
            amount, unit = int(match.group(1)), match.group(2)
            minutes = amount * {"d": 1440, "h": 60, "m": 1}[unit]
            reach = (now - EARLIEST).total_seconds() / 60
            moment = now - dt.timedelta(minutes=minutes) if minutes < reach else EARLIEST  # beyond 2000: everything
        elif re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            moment = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), IST).astimezone(UTC)
        else:
            given = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            moment = (given if given.tzinfo else given.replace(tzinfo=IST)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise UsageError(f"--since {text!r}: expected 7d, 12h, 30m, a date (2026-11-01), an ISO time or all") from None
    if moment > now:
        raise UsageError(f"--since {text!r} is in the future: no run started after it")
    return None if moment <= EARLIEST else moment


@dataclass
class Runs:
    """One job's runs, added up while reading its ledger (a year is 200,000 lines: no run is kept)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REPORTED_STATUSES, 0))
    durations: list[int] = field(default_factory=list)
    items: int = 0
    errors: int = 0
    last_worked: Run | None = None
    running: Run | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def worked(self) -> int:
        """Runs that did work: the denominator of the success rate."""
        return self.total - self.counts["skipped"] - self.counts["locked"]

    def add(self, run: Run) -> None:
        if run.status == "running":
            self.running = run
            return
        self.counts[run.status] = self.counts.get(run.status, 0) + 1
        if run.status in ("skipped", "locked"):
            return
        if run.duration_ms is not None:
            self.durations.append(run.duration_ms)
        self.items += run.items
        self.errors += run.errors
        if run.did_work and (self.last_worked is None or run.started_at >= self.last_worked.started_at):
            self.last_worked = run


def collect_runs(home: Path, job: str, since: str | None, damage: ledger.Damage | None = None) -> Runs:
    """Given one job's ledger, return its runs since a ledger time (None: all), added up."""
    runs = Runs()
    for run in runs_since(home, job, since, damage):
        runs.add(run)
    return runs


def percentile(sorted_values: list[int], fraction: float) -> int | None:
    """Given ascending values, return the nearest-rank percentile (None for no values)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[int(rank) - 1]


def ist_text(utc_text: str | None) -> str | None:
    """Given a ledger timestamp, return it on India's wall clock (ISO, +05:30)."""
    if not utc_text:
        return None
    return parse_utc(utc_text).astimezone(IST).isoformat(timespec="seconds")


def run_summary(run: Run | None) -> dict[str, Any] | None:
    """Return a run as jobstats and status show it: start (IST), status, error."""
    if run is None:
        return None
    return {"started_at": ist_text(run.started_at), "status": run.status, "error": run.error}


@dataclass
class JobReport:
    """The figures of one job, as jobstats shows them."""

    name: str
    runs: Runs = field(default_factory=Runs)
    next_run: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the job's figures under jobstats' stable JSON keys."""
        runs = self.runs
        durations = sorted(runs.durations)
        return {
            "runs": runs.total,
            "status_counts": runs.counts,
            "success_rate": round(runs.counts["success"] / runs.worked, 4) if runs.worked else None,
            "last_run": run_summary(runs.last_worked),
            "duration_ms": {
                "p50": percentile(durations, 0.5),
                "p95": percentile(durations, 0.95),
                "max": durations[-1] if durations else None,
            },
            "items": runs.items,
            "errors": runs.errors,
            "next_run": self.next_run,
            "running": runs.running is not None,
        }


def build_reports(
    home: Path,
    entries: list[Entry],
    now: dt.datetime,
    since: dt.datetime | None,
    only: str | None,
    damage: ledger.Damage | None = None,
) -> dict[str, JobReport]:
    """Return a JobReport per scheduled job (or just `only`), from the ledger under home."""
    since_text = format_utc(since) if since else None
    reports = {}
    for entry in entries:
        if only and entry.job != only:
            continue
        report = JobReport(entry.job, next_run=entry.next_run(now).isoformat(timespec="seconds"))
        report.runs = collect_runs(home, entry.job, since_text, damage)
        reports[entry.job] = report
    return reports
