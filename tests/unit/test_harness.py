"""How a run's ending is classified (status, exit code, error), and the one finish line RunRecord writes."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from lib.errors import CasejobsError, DatabaseBusy, JobFailed, StopRequested
from lib.harness import RunRecord, classify
from lib.jobspec import Outcome
from lib.stop import StopFlag
from tests.helpers import finishes, ledger_lines

NOW = dt.datetime(2026, 11, 28, 1, 0, 0, 123456, tzinfo=dt.UTC)


def test_work_that_returns_is_a_success_and_with_errors_a_partial() -> None:
    clean = classify(None, Outcome(items=4), StopFlag())
    assert (clean.status, clean.exit_code, clean.error, clean.outcome.items) == ("success", 0, None, 4)
    with_errors = classify(None, Outcome(items=4, errors=1), StopFlag())
    assert (with_errors.status, with_errors.exit_code, with_errors.error) == ("partial", 3, None)


@pytest.mark.parametrize(
    ("reason", "status", "exit_code", "error"),
    [
        ("timeout", "timeout", 124, "time limit reached"),
        ("SIGTERM", "interrupted", 143, "stopped by SIGTERM"),
        ("SIGINT", "interrupted", 130, "stopped by SIGINT"),
        ("SIGBREAK", "interrupted", 130, "stopped by SIGBREAK"),
    ],
)
def test_a_stop_requested_is_classified_by_its_reason(reason: str, status: str, exit_code: int, error: str) -> None:
    ending = classify(StopRequested(reason), Outcome(), StopFlag())
    assert (ending.status, ending.exit_code, ending.error) == (status, exit_code, error)


@pytest.mark.parametrize(
    "error",
    [sqlite3.OperationalError("interrupted"), ValueError("boom"), CasejobsError("upstream gone"), DatabaseBusy()],
)
def test_once_the_stop_flag_is_set_any_error_is_the_stops_doing(error: BaseException) -> None:
    flag = StopFlag()
    flag.set("timeout")
    ending = classify(error, Outcome(items=2), flag)
    assert (ending.status, ending.exit_code, ending.error, ending.outcome.items) == (
        "timeout",
        124,
        "time limit reached",
        2,
    )


def test_a_keyboard_interrupt_sets_the_flag_and_is_an_interrupted_run_with_exit_130() -> None:
    flag = StopFlag()
    ending = classify(KeyboardInterrupt(), Outcome(), flag)
    assert flag.reason == "SIGINT"
    assert (ending.status, ending.exit_code, ending.error) == ("interrupted", 130, "stopped by SIGINT")


def test_a_keyboard_interrupt_after_a_sigterm_keeps_the_first_reason() -> None:
    flag = StopFlag()
    flag.set("SIGTERM")
    ending = classify(KeyboardInterrupt(), Outcome(), flag)
    assert (flag.reason, ending.exit_code) == ("SIGTERM", 143)


def test_a_job_failure_carrying_an_outcome_reports_what_the_work_did() -> None:
    done = Outcome(items=7, errors=2, details={"synced": 5})
    ending = classify(JobFailed("eCourts refused the token", done), Outcome(items=1), StopFlag())
    assert (ending.status, ending.exit_code, ending.error) == ("failed", 1, "eCourts refused the token")
    assert ending.outcome is done


def test_a_job_failure_carrying_something_else_keeps_the_runs_own_outcome() -> None:
    own = Outcome(items=1)
    ending = classify(JobFailed("gave up", {"items": 99}), own, StopFlag())
    assert ending.outcome is own
    assert ending.status == "failed"


@pytest.mark.parametrize("error", [DatabaseBusy(), sqlite3.OperationalError("database is locked")])
def test_a_database_held_by_another_program_fails_with_one_plain_reason(error: BaseException) -> None:
    ending = classify(error, Outcome(), StopFlag())
    assert (ending.status, ending.exit_code, ending.error) == ("failed", 1, "the database is locked by another program")


def test_another_operational_error_keeps_its_own_words() -> None:
    ending = classify(sqlite3.OperationalError("no such table: cases"), Outcome(), StopFlag())
    assert (ending.status, ending.error) == ("failed", "OperationalError: no such table: cases")


def test_a_casejobs_error_is_its_message_and_any_other_error_names_its_type() -> None:
    own = classify(CasejobsError("the breaker tripped"), Outcome(), StopFlag())
    assert (own.status, own.exit_code, own.error) == ("failed", 1, "the breaker tripped")
    other = classify(KeyError("case_id"), Outcome(), StopFlag())
    assert (other.status, other.exit_code, other.error) == ("failed", 1, "KeyError: 'case_id'")


def test_finish_writes_exactly_one_line_and_a_second_call_changes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    record = RunRecord(home, "slaCheck", "cron", dry_run=False, now=lambda: NOW, run_id="run-1")
    record.start()
    first = record.finish("partial", items=3, errors=1)
    second = record.finish("failed", error="too late")

    assert second == first
    lines = finishes(home, "slaCheck")
    assert len(lines) == 1
    line = lines[0]
    assert (line["status"], line["exit_code"], line["items"], line["errors"]) == ("partial", 3, 3, 1)
    assert (line["run_id"], line["trigger"], line["ts"]) == ("run-1", "cron", "2026-11-28T01:00:00.123Z")
    assert "error" not in line and "dry_run" not in line
    assert [entry["event"] for entry in ledger_lines(home, "slaCheck")] == ["start", "finish"]


def test_a_dry_runs_finish_says_so_and_takes_the_exit_code_of_its_status(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    record = RunRecord(home, "dailySync", "manual", dry_run=True, now=lambda: NOW, run_id="run-2")
    record.finish("locked")
    raw = (home / "ledger" / "dailySync" / "2026-11.jsonl").read_text().splitlines()
    assert len(raw) == 1
    line = json.loads(raw[0])
    assert (line["dry_run"], line["status"], line["exit_code"], line["duration_ms"]) == (True, "locked", 75, 0)
