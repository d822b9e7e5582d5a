"""bin/user-pending-refresh as cron runs it: a subprocess in cron's bare environment, from another folder."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

from tests import helpers
from tests.builders import Dataset
from tests.conftest import run_script, start_script

SLOW = {"CASEJOBS_DEBUG_ITEM_DELAY_MS": "300"}


def ledger_lines(home: Path, job: str = "userPendingRefresh") -> list[dict]:
    return helpers.ledger_lines(home, job)


def wait_for_log_event(process, event: str, timeout: float = 30) -> dict:
    """Read the process's JSON log lines until one has the given event; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        record = json.loads(line)
        if record.get("event") == event:
            return record
    raise AssertionError(f"no {event!r} log line")


def summaries(database_path: Path) -> list[tuple]:
    connection = sqlite3.connect(database_path)
    rows = connection.execute(
        "SELECT user_id, total, refreshed_at FROM user_pending_summaries ORDER BY user_id"
    ).fetchall()
    connection.close()
    return rows


def dump(database_path: Path) -> list[str]:
    """Return the database's whole content as SQL text (bytes on disk move with WAL checkpoints)."""
    connection = sqlite3.connect(database_path)
    lines = list(connection.iterdump())
    connection.close()
    return lines


def many_users(dataset: Dataset, count: int) -> None:
    case = dataset.case()
    for _ in range(count):
        dataset.task(case, dataset.user(), due_date="2026-11-20")


def test_a_cron_run_succeeds_and_leaves_its_record(home: Path, dataset: Dataset, database_path: Path) -> None:
    many_users(dataset, 3)

    result = run_script("user-pending-refresh", "--trigger", "cron", home=home)

    assert result.returncode == 0, result.stderr
    start, finish = ledger_lines(home)
    assert (start["event"], finish["event"]) == ("start", "finish")
    assert start["run_id"] == finish["run_id"]
    assert (finish["status"], finish["exit_code"], finish["trigger"], finish["items"]) == ("success", 0, "cron", 3)
    assert finish["ts"].endswith("Z") and {"v", "pid", "host", "duration_ms", "errors", "details"} <= set(finish)
    assert [row[1] for row in summaries(database_path)] == [1, 1, 1]
    logs = [json.loads(line) for line in result.stderr.splitlines()]
    assert all(log["job"] == "userPendingRefresh" and log["run_id"] == start["run_id"] for log in logs)
    assert sum(log["event"] == "run finished" for log in logs) == 1
    audit = sqlite3.connect(database_path).execute("SELECT action, severity, entity_name FROM audit_logs").fetchall()
    assert audit == [("JOB_COMPLETED", "LOW", "userPendingRefresh")]


def test_no_secret_reaches_a_log_line(home: Path, dataset: Dataset) -> None:
    many_users(dataset, 2)

    result = run_script("user-pending-refresh", "-v", "--dry-run", home=home)

    assert result.returncode == 0
    for secret in ("pbkdf2$secret-hash", "tok_secret", "+91 9800000000"):
        assert secret not in result.stderr + result.stdout


def test_dry_run_writes_nothing_but_its_ledger_lines(home: Path, dataset: Dataset, database_path: Path) -> None:
    many_users(dataset, 2)
    before = dump(database_path)

    result = run_script("user-pending-refresh", "--dry-run", home=home)

    assert result.returncode == 0, result.stderr
    assert "user 1: total 1, overdue 1" in result.stdout
    assert summaries(database_path) == []
    assert sqlite3.connect(database_path).execute("SELECT count(*) FROM audit_logs").fetchone() == (0,)
    assert [line["event"] for line in ledger_lines(home)] == ["start", "finish"]
    assert ledger_lines(home)[1]["dry_run"] is True
    assert dump(database_path) == before


def test_another_app_mode_skips_the_run(home: Path, dataset: Dataset, database_path: Path) -> None:
    result = run_script("user-pending-refresh", home=home, APP_MODE="server")

    assert result.returncode == 0
    (finish,) = ledger_lines(home)
    assert (finish["event"], finish["status"]) == ("finish", "skipped")
    assert "server" in finish["details"]["reason"]


def test_two_runs_started_together_one_works_the_other_is_locked(home: Path, dataset: Dataset) -> None:
    many_users(dataset, 2)
    first = start_script("user-pending-refresh", "--log-format", "json", home=home, **SLOW)
    try:
        wait_for_log_event(first, "run started")
        second = run_script("user-pending-refresh", home=home)
        during = json.loads(run_script("jobstats", "--json", home=home).stdout)["jobs"]["userPendingRefresh"]
        first_code = first.wait(timeout=60)
    finally:
        first.kill()
        first.communicate()

    assert (first_code, second.returncode) == (0, 75)
    statuses = sorted(line["status"] for line in ledger_lines(home) if line["event"] == "finish")
    assert statuses == ["locked", "success"]
    assert "holds the lock" in second.stderr
    assert during["running"] is True  # a start without a finish whose lock is held is no crash
    assert during["status_counts"]["crashed"] == 0


def signal_mid_run(home: Path, number: signal.Signals) -> int:
    """Start a slow run, send it a signal once it has started, and return its exit code."""
    process = start_script("user-pending-refresh", "--log-format", "json", home=home, **SLOW)
    try:
        wait_for_log_event(process, "run started")
        process.send_signal(number)
        return process.wait(timeout=30)
    finally:
        process.kill()
        process.communicate()


def test_sigterm_mid_run_is_recorded_interrupted(home: Path, dataset: Dataset, database_path: Path) -> None:
    many_users(dataset, 2)

    assert signal_mid_run(home, signal.SIGTERM) == 143
    finish = ledger_lines(home)[-1]
    assert (finish["status"], finish["exit_code"], finish["error"]) == ("interrupted", 143, "stopped by SIGTERM")
    assert summaries(database_path) == []


def test_sigint_is_exit_130(home: Path, dataset: Dataset) -> None:
    assert signal_mid_run(home, signal.SIGINT) == 130
    assert ledger_lines(home)[-1]["status"] == "interrupted"


def test_the_time_limit_stops_the_run_at_an_item_boundary(home: Path, dataset: Dataset) -> None:
    result = run_script("user-pending-refresh", "--max-runtime", "1", home=home, **SLOW)

    assert result.returncode == 124
    finish = ledger_lines(home)[-1]
    assert (finish["status"], finish["error"]) == ("timeout", "time limit reached")
    assert 1000 <= finish["duration_ms"] < 5000


def test_sigkill_while_writing_leaves_the_old_summaries_whole(
    home: Path, dataset: Dataset, database_path: Path
) -> None:
    many_users(dataset, 250)  # three write batches, with a pause between them
    assert run_script("user-pending-refresh", home=home, CASEJOBS_NOW="2026-11-25T10:00:00Z").returncode == 0
    old = summaries(database_path)

    process = start_script(
        "user-pending-refresh", "-v", "--log-format", "json", home=home, CASEJOBS_NOW="2026-11-25T11:00:00Z", **SLOW
    )
    try:
        wait_for_log_event(process, "summaries batch written")  # inside the write transaction, between batches
        process.kill()
        process.wait(timeout=30)
    finally:
        process.kill()
        process.communicate()

    connection = sqlite3.connect(database_path)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()
    assert summaries(database_path) == old
    stats = json.loads(run_script("jobstats", "--json", home=home).stdout)
    report = stats["jobs"]["userPendingRefresh"]
    assert report["status_counts"]["crashed"] == 1
    assert report["last_run"]["status"] == "crashed"

    after = run_script("user-pending-refresh", home=home, CASEJOBS_NOW="2026-11-25T12:00:00Z")

    assert after.returncode == 0, after.stderr
    assert {row[2] for row in summaries(database_path)} == {"2026-11-25T12:00:00.000Z"}


def test_a_failure_in_the_work_is_recorded_failed_with_a_high_audit_row(
    home: Path, dataset: Dataset, database_path: Path
) -> None:
    helpers.make_the_refresh_fail(database_path)
    connection = sqlite3.connect(database_path)

    result = run_script("user-pending-refresh", home=home)

    assert result.returncode == 1
    finish = ledger_lines(home)[-1]
    assert finish["status"] == "failed"
    assert "user_pending_summaries" in finish["error"]
    assert connection.execute("SELECT action, severity FROM audit_logs").fetchall() == [("JOB_ERROR", "HIGH")]
    assert "Traceback" not in result.stderr
