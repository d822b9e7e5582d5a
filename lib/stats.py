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
class Runs:
    """One job's runs, added up while reading its ledger (a year is 200,000 lines: no run is kept)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REPORTED_STATUSES, 0))
    durations: list[int] = field(default_factory=list)
    items: int = 0
    errors: int = 0
    last_finished: dict[str, Any] | None = None
    crashed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def last(self) -> dict[str, Any] | None:
        """The newest run: the newest finished one, or a newer start that never finished."""
        finished = self.last_finished
        if self.crashed and (finished is None or self.crashed[-1] >= finished["started_at"]):
            return {"started_at": self.crashed[-1], "status": "crashed", "error": "no finish line: the run died"}
        return finished

    def mark_newest_start_running(self) -> None:
        """Take the newest unfinished start out of the crashes: its run is still at work."""
        self.crashed.pop()
        self.counts["crashed"] -= 1


def collect_runs(path: Path, since: str | None) -> Runs:
    """Given one job's ledger file, return its runs added up.

    A finish is matched to its start by run_id; a start with no finish is a
    run that died (crashed), its start time kept in runs.crashed.
    """
    runs = Runs()
    counts, durations = runs.counts, runs.durations
    starts: dict[str, str] = {}
    last_started = ""
    for record in ledger.read_lines(path, since):
        if record["event"] == "start":
            starts[record["run_id"]] = record.get("ts", "")
            continue
        started_at = starts.pop(record["run_id"], None) or record.get("ts", "")
        status = record.get("status", "failed")
        counts[status] = counts.get(status, 0) + 1
        if status not in NOT_ATTEMPTED and record.get("duration_ms") is not None:
            durations.append(record["duration_ms"])
        runs.items += record.get("items") or 0
        runs.errors += record.get("errors") or 0
        if started_at >= last_started:
            last_started = started_at
            runs.last_finished = {"started_at": started_at, "status": status, "error": record.get("error")}
    runs.crashed = sorted(starts.values())
    counts["crashed"] = len(runs.crashed)
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


@dataclass
class JobReport:
    """The figures of one job, as jobstats shows them."""

    name: str
    runs: Runs = field(default_factory=Runs)
    running: bool = False
    next_run: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the job's figures under jobstats' stable JSON keys."""
        runs = self.runs
        attempted = runs.total - sum(runs.counts[status] for status in NOT_ATTEMPTED)
        durations = sorted(runs.durations)
        last = runs.last
        return {
            "runs": runs.total,
            "status_counts": runs.counts,
            "success_rate": round(runs.counts["success"] / attempted, 4) if attempted else None,
            "last_run": {"started_at": ist_text(last["started_at"]), "status": last["status"], "error": last["error"]}
            if last
            else None,
            "duration_ms": {
                "p50": percentile(durations, 0.5),
                "p95": percentile(durations, 0.95),
                "max": durations[-1] if durations else None,
            },
            "items": runs.items,
            "errors": runs.errors,
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
        if report.runs.crashed and is_locked(home, entry.job):
            # Only the newest start can be the run holding the lock; older ones died.
            report.running = True
            report.runs.mark_newest_start_running()
        reports[entry.job] = report
    return reports
