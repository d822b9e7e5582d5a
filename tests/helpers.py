"""Helpers every kind of test shares: reading and writing ledgers, waiting for an event (never a fixed sleep)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lib import ledger


def ledger_lines(home: Path, job: str) -> list[dict[str, Any]]:
    """Return every line of a job's ledger (all months, oldest first), parsed, damaged ones left out."""
    lines = []
    for _, path in ledger.ledger_files(home, job):
        for raw in path.read_text().splitlines():
            if raw.strip():
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    continue
    return lines


def finishes(home: Path, job: str) -> list[dict[str, Any]]:
    """Return the job's finish lines, oldest first."""
    return [line for line in ledger_lines(home, job) if line.get("event") == "finish"]


def last_finish(home: Path, job: str) -> dict[str, Any]:
    """Return the job's newest finish line."""
    return finishes(home, job)[-1]


def write_ledger(home: Path, job: str, lines: list[dict[str, Any] | str]) -> None:
    """Write hand-made ledger lines as the harness files them: by the month of each line's ts.

    A line given as text, or with a time that is not a valid ledger time (a damaged one), goes into the
    month of the line before it.
    """
    folder = ledger.job_folder(home, job)
    folder.mkdir(parents=True, exist_ok=True)
    month = "2026-11"
    by_month: dict[str, list[str]] = {}
    for line in lines:
        if isinstance(line, dict):
            month = line["ts"][:7] if ledger.is_valid_time(line.get("ts")) else month
            text = json.dumps(line)
        else:
            text = line
        by_month.setdefault(month, []).append(text)
    for name, texts in by_month.items():
        (folder / f"{name}.jsonl").write_text("".join(text + "\n" for text in texts))


def wait_until(condition: Callable[[], Any], timeout: float = 60, what: str = "the condition") -> Any:
    """Poll condition until it returns something true; return that. Fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def wait_for_log_event(process: subprocess.Popen[str], event: str, timeout: float = 60) -> dict[str, Any]:
    """Read the process's JSON log lines (stderr) until one has the given event; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            return record
    raise AssertionError(f"no {event!r} log line")


def dead_pid() -> int:
    """A pid no process can have: the kernel's own limit (Linux)."""
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def seed_small(database_path: Path, now_text: str) -> Path:
    """Fill the test's migrated database with the seeder's small firm, as of an ISO time; return its path."""
    from lib.clock import parse_frozen_now, today_ist
    from lib.db import connect
    from lib.seed import seed_database

    database = connect(database_path)
    now = parse_frozen_now(now_text)
    seed_database(database, "small", 1, now, today_ist(now))
    database.close()
    return database_path


def make_the_refresh_fail(database_path: Path) -> None:
    """Make userPendingRefresh fail inside its work, its schema whole: triggers refuse every write to
    user_pending_summaries (its error names the table), and one active lawyer gives it a row to write."""
    connection = sqlite3.connect(database_path)
    refusal = "SELECT RAISE(ABORT, 'user_pending_summaries refuses writes (a test trigger)');"
    for verb in ("INSERT", "UPDATE", "DELETE"):
        connection.execute(
            f"CREATE TRIGGER test_refuses_{verb.lower()} BEFORE {verb} ON user_pending_summaries BEGIN {refusal} END"
        )
    connection.execute(
        "INSERT INTO users (name, email, role, is_active) VALUES ('Trigger Test', 'trigger@firm.example', 'LAWYER', 1)"
    )
    connection.commit()
    connection.close()
