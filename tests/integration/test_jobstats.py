"""jobstats from hand-written ledgers: counts, rates, percentiles, crashes, damaged lines, --since, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_script
from tests.helpers import write_ledger

NOW = "2026-11-28T12:00:00Z"  # 17:30 IST


def run(run_id: str, ts: str, status: str | None, duration_ms: int = 100, **finish: object) -> list[dict]:
    base = {"v": 1, "run_id": run_id, "job": "slaCheck", "pid": 1, "host": "h", "trigger": "cron"}
    lines: list[dict] = []
    if status not in ("skipped", "locked"):
        lines.append({**base, "event": "start", "ts": ts})
    if status is not None:
        lines.append(
            {**base, "event": "finish", "ts": ts, "status": status, "exit_code": 0, "duration_ms": duration_ms}
            | {"items": 10, "errors": 1 if status == "partial" else 0, "details": {}}
            | finish
        )
    return lines


def stats(home: Path, *arguments: str) -> dict:
    result = run_script("jobstats", "--json", *arguments, home=home, CASEJOBS_NOW=NOW)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def history(home: Path) -> Path:
    lines = []
    for day in range(1, 21):  # 20 successes on 1-20 November, durations 100..2000 ms
        lines += run(f"s{day}", f"2026-11-{day:02d}T12:30:00.000Z", "success", duration_ms=day * 100)
    lines += run("p1", "2026-11-21T12:30:00.000Z", "partial", duration_ms=50)
    lines += run("f1", "2026-11-22T12:30:00.000Z", "failed", duration_ms=60, error="SMTP server down")
    lines += run("k1", "2026-11-23T12:30:00.000Z", "skipped", duration_ms=0)
    lines += run("l1", "2026-11-23T12:30:01.000Z", "locked", duration_ms=0)
    lines += run("i1", "2026-11-24T12:30:00.000Z", "interrupted", duration_ms=70)
    lines += run("t1", "2026-11-25T12:30:00.000Z", "timeout", duration_ms=80)
    lines += run("c1", "2026-11-26T12:30:00.000Z", None)  # started, never finished
    write_ledger(home, "slaCheck", lines)
    return home


def test_counts_rates_and_durations(history: Path) -> None:
    job = stats(history)["jobs"]["slaCheck"]

    assert job["runs"] == 27
    assert job["status_counts"] == {
        "success": 20,
        "partial": 1,
        "failed": 1,
        "skipped": 1,
        "locked": 1,
        "interrupted": 1,
        "timeout": 1,
        "config": 0,
        "crashed": 1,
    }
    assert job["success_rate"] == round(20 / 25, 4)  # skipped and locked runs never tried
    assert job["last_run"] == {
        "started_at": "2026-11-26T18:00:00+05:30",
        "status": "crashed",
        "error": "no finish line: the run died",
    }
    # 24 durations: 50, 60, 70, 80, 100, 200, ..., 2000
    assert job["duration_ms"] == {"p50": 800, "p95": 1900, "max": 2000}
    assert (job["items"], job["errors"]) == (240, 1)  # 24 finished runs that did work, 10 items each
    assert job["next_run"] == "2026-11-28T18:00:00+05:30"
    assert job["running"] is False


def test_stable_keys_for_every_scheduled_job(history: Path) -> None:
    report = stats(history)
    assert list(report["jobs"]) == [
        "dailySync",
        "slaCheck",
        "nightlyBackup",
        "userPendingRefresh",
        "backupDrill",
        "weeklyReport",
    ]
    for job in report["jobs"].values():
        assert {
            "runs",
            "status_counts",
            "success_rate",
            "last_run",
            "duration_ms",
            "items",
            "errors",
            "next_run",
        } <= set(job)
    assert report["jobs"]["userPendingRefresh"]["next_run"] == "2026-11-28T17:35:00+05:30"
    assert report["jobs"]["nightlyBackup"]["next_run"] == "2026-11-28T23:30:00+05:30"
    assert report["jobs"]["dailySync"]["next_run"] == "2026-11-29T06:30:00+05:30"
    assert report["jobs"]["backupDrill"]["next_run"] == "2026-11-29T03:00:00+05:30"  # a Sunday


@pytest.mark.parametrize(
    ("since", "runs"),
    [("7d", 7), ("2026-11-24", 3), ("72h", 2), ("2026-11-26T00:00:00Z", 1)],
)
def test_since(history: Path, since: str, runs: int) -> None:
    assert stats(history, "--since", since)["jobs"]["slaCheck"]["runs"] == runs


def test_job_filter_takes_either_spelling(history: Path) -> None:
    assert list(stats(history, "--job", "sla-check")["jobs"]) == ["slaCheck"]
    assert list(stats(history, "--job", "slaCheck")["jobs"]) == ["slaCheck"]


def test_a_damaged_line_is_skipped_with_a_warning(home: Path) -> None:
    lines: list[dict | str] = [*run("a", "2026-11-01T00:00:00.000Z", "success")]
    lines.append('{"v": 1, "event": "finish", "run_id": "b", "sta')  # torn by a crash
    lines.append("\x00\x00garbage")
    lines += run("c", "2026-11-02T00:00:00.000Z", "success")
    write_ledger(home, "slaCheck", lines)

    result = run_script("jobstats", "--json", home=home, CASEJOBS_NOW=NOW)

    assert result.returncode == 0
    assert json.loads(result.stdout)["jobs"]["slaCheck"]["status_counts"]["success"] == 2
    assert result.stderr == "jobstats: warning: skipped 2 damaged ledger lines\n"  # one plain line, no Python warning
    assert json.loads(result.stdout)["damaged_lines"] == 2


def test_text_output_for_people(history: Path) -> None:
    result = run_script("jobstats", "--job", "slaCheck", home=history, CASEJOBS_NOW=NOW)
    assert result.returncode == 0
    assert "slaCheck: 27 runs, success rate 80.0%" in result.stdout
    assert "last run:  2026-11-26T18:00:00+05:30  crashed" in result.stdout
    assert "next run:  2026-11-28T18:00:00+05:30" in result.stdout


def test_an_empty_home_reports_no_runs(home: Path) -> None:
    job = stats(home)["jobs"]["dailySync"]
    assert (job["runs"], job["success_rate"], job["last_run"]) == (0, None, None)
