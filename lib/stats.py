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
from lib.lock import is_locked
from lib.schedule import Entry

REPORTED_STATUSES = ("success", "partial", "failed", "skipped", "locked", "interrupted", "timeout", "crashed")
NOT_ATTEMPTED = ("skipped", "locked")  # runs that never did work do not count against the success rate
SINCE_PATTERN = re.compile(r"^(\d+)([dhm])$")


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """Given `7d`, `12h`, `30m`, an IST date `2026-11-01` or an ISO instant, return the aware instant.

    Raise UsageError on anything else.
    """
    text = text.strip()
    match = SINCE_PATTERN.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now - dt.timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), IST).astimezone(UTC)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r}: expected 7d, 12h, 30m, a date (2026-11-01) or an ISO time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=IST)).astimezone(UTC)


@dataclass
class Run:
    """One run pieced together from its ledger lines."""

    run_id: str
    started_at: str
    status: str = "crashed"
    duration_ms: int | None = None
    items: int = 0
    errors: int = 0
    error: str | None = None


def collect_runs(path: Path, since: str | None) -> list[Run]:
    """Given one job's ledger file, return its runs ordered by start time.

    A start with no finish is `crashed`; the caller decides whether the newest
    one is still running.
    """
    runs: dict[str, Run] = {}
    for record in ledger.read_lines(path, since):
        run_id = record["run_id"]
        run = runs.get(run_id)
        if run is None:
            run = runs[run_id] = Run(run_id=run_id, started_at=record.get("ts", ""))
        if record["event"] == "finish":
            run.status = record.get("status", "failed")
            run.duration_ms = record.get("duration_ms")
            run.items = record.get("items") or 0
            run.errors = record.get("errors") or 0
            run.error = record.get("error")
    return sorted(runs.values(), key=lambda run: run.started_at)


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


@dataclass
class JobReport:
    """The figures of one job, as jobstats shows them."""

    name: str
    runs: list[Run] = field(default_factory=list)
    running: bool = False
    next_run: str | None = None

    def as_dict(self) -> dict[str, Any]:
        counts = dict.fromkeys(REPORTED_STATUSES, 0)
        for run in self.runs:
            counts[run.status] = counts.get(run.status, 0) + 1
        attempted = len(self.runs) - sum(counts[status] for status in NOT_ATTEMPTED)
        durations = sorted(
            run.duration_ms for run in self.runs if run.duration_ms is not None and run.status not in NOT_ATTEMPTED
        )
        last = self.runs[-1] if self.runs else None
        return {
            "runs": len(self.runs),
            "status_counts": counts,
            "success_rate": round(counts["success"] / attempted, 4) if attempted else None,
            "last_run": {"started_at": ist_text(last.started_at), "status": last.status, "error": last.error}
            if last
            else None,
            "duration_ms": {
                "p50": percentile(durations, 0.5),
                "p95": percentile(durations, 0.95),
                "max": durations[-1] if durations else None,
            },
            "items": sum(run.items for run in self.runs),
            "errors": sum(run.errors for run in self.runs),
            "next_run": self.next_run,
            "running": self.running,
        }


def build_reports(
    home: Path, entries: list[Entry], now: dt.datetime, since: dt.datetime | None, only: str | None
) -> dict[str, JobReport]:
    """Return a JobReport per scheduled job (or just `only`), from the ledger under home."""
    since_text = format_utc(since) if since else None
    reports = {}
    for entry in entries:
        if only and entry.job != only:
            continue
        report = JobReport(entry.job, next_run=entry.next_run(now).isoformat(timespec="seconds"))
        report.runs = collect_runs(ledger.ledger_path(home, entry.job), since_text)
        newest = report.runs[-1] if report.runs else None
        if newest and newest.status == "crashed" and is_locked(home, entry.job):
            # Still at work, not a crash and not yet a result: left out of the figures.
            report.running = True
            report.runs.pop()
        reports[entry.job] = report
    return reports
