"""What monitoring says (`jobstats --check`, `jobctl status`) for hand-written ledgers, and a fuzzed ledger
that never breaks a reader."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from tests.conftest import run_script
from tests.helpers import write_ledger

NOW = "2026-11-28T12:00:00Z"  # 17:30 IST; slaCheck's latest slot was 2026-11-27 18:00 IST
SLOT = "2026-11-27T12:30:00.000Z"  # 18:00 IST


def line(event: str, run_id: str, ts: str, status: str | None = None, **fields: object) -> dict:
    base = {"v": 1, "event": event, "run_id": run_id, "job": "slaCheck", "ts": ts, "pid": 1, "host": "elsewhere"}
    base["trigger"] = "cron"
    if event == "finish":
        base |= {"status": status, "exit_code": 0, "duration_ms": 10, "items": 1, "errors": 0, "details": {}}
    return base | fields


def run(run_id: str, ts: str, status: str, **fields: object) -> list[dict]:
    finish = line("finish", run_id, ts, status, **fields)
    return [finish] if status in ("skipped", "locked", "config") else [line("start", run_id, ts), finish]


def check(home: Path) -> tuple[int, list[str]]:
    result = run_script("jobstats", "--check", "--job", "slaCheck", home=home, CASEJOBS_NOW=NOW)
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout.splitlines()


def install(home: Path, at: str = "2026-11-27T00:00:00.000Z") -> None:
    (home / "installed-at").write_text(at + "\n")


CASES = {
    "failed then skipped": (
        run("a", SLOT, "failed", error="SMTP server down") + run("b", "2026-11-27T13:30:00.000Z", "skipped"),
        2,
        [
            "CRITICAL slaCheck: last run failed at 2026-11-27 18:00 IST: SMTP server down",
            "WARNING slaCheck: its last scheduled run was missed",
        ],
    ),
    "config error": (
        run("a", "2026-11-26T12:30:00.000Z", "success")
        + run("b", SLOT, "config", error="CASEJOBS_SMTP_PORT must be from 1 to 65535"),
        2,
        [
            "CRITICAL slaCheck: configuration error since 2026-11-27 18:00 IST: CASEJOBS_SMTP_PORT must be from 1 to 65535",
            "WARNING slaCheck: its last scheduled run was missed",
        ],
    ),
    "partial then locked": (
        run("a", SLOT, "partial") + run("b", "2026-11-27T12:30:05.000Z", "locked"),
        1,
        ["WARNING slaCheck: last run partial at 2026-11-27 18:00 IST"],
    ),
    "crashed then success": (
        [line("start", "a", "2026-11-26T12:30:00.000Z"), *run("b", SLOT, "success")],
        0,
        ["OK all jobs on schedule"],
    ),
    "success then skipped": (run("a", SLOT, "success") + run("b", "2026-11-27T13:30:00.000Z", "skipped"), 0, None),
    "timeout": (run("a", SLOT, "timeout", error="time limit reached"), 1, None),
    "success then crashed": (
        [*run("a", "2026-11-26T12:30:00.000Z", "success"), line("start", "b", SLOT)],
        2,
        [
            "CRITICAL slaCheck: last run crashed at 2026-11-27 18:00 IST: no finish line: the run died",
            "WARNING slaCheck: its last scheduled run was missed",
        ],
    ),
    "a dry run never judged": (
        run("a", SLOT, "success") + run("b", "2026-11-28T10:00:00.000Z", "failed", dry_run=True),
        0,
        None,
    ),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_check_judges_the_latest_run_that_did_work(home: Path, case: str) -> None:
    lines, expected_code, expected_lines = CASES[case]
    install(home)
    write_ledger(home, "slaCheck", lines)

    code, output = check(home)

    assert code == expected_code, output
    if expected_lines is not None:
        assert output == expected_lines


def test_never_ran_since_installation_is_a_warning_until_slots_pass(home: Path) -> None:
    install(home, "2026-11-28T10:00:00.000Z")  # 15:30 IST, before today's 18:00 slot
    assert check(home) == (1, ["WARNING slaCheck: never ran since the schedule was installed"])

    install(home, "2026-11-25T10:00:00.000Z")  # the 25th, 26th and 27th slots have passed since
    assert check(home) == (2, ["CRITICAL slaCheck: 3 scheduled runs missed"])


def test_nothing_installed_and_nothing_run_is_never_ok(home: Path) -> None:
    result = run_script("jobstats", "--check", home=home, CASEJOBS_NOW=NOW)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "WARNING casejobs is not installed (bin/jobctl install) and no job has ever run"
    ]


def test_a_run_alive_here_is_running_not_crashed(home: Path) -> None:
    alive = line("start", "now", "2026-11-28T11:59:00.000Z", pid=os.getpid(), host=socket.gethostname())
    write_ledger(home, "slaCheck", [*run("a", SLOT, "success"), alive])

    assert check(home) == (0, ["OK all jobs on schedule"])
    status = json.loads(run_script("jobctl", "status", "--json", home=home, CASEJOBS_NOW=NOW).stdout)
    assert status["jobs"]["slaCheck"]["running"] is True
    assert status["jobs"]["slaCheck"]["running_pid"] == os.getpid()
    assert status["jobs"]["slaCheck"]["last_run"]["status"] == "success"
    stats = json.loads(run_script("jobstats", "--json", "--job", "slaCheck", home=home, CASEJOBS_NOW=NOW).stdout)
    assert stats["jobs"]["slaCheck"]["running"] is True and stats["jobs"]["slaCheck"]["status_counts"]["crashed"] == 0


def test_status_shows_the_run_that_did_work(home: Path) -> None:
    install(home)
    write_ledger(
        home, "slaCheck", run("a", SLOT, "failed", error="boom") + run("b", "2026-11-27T13:30:00.000Z", "skipped")
    )

    result = run_script("jobctl", "status", home=home, CASEJOBS_NOW=NOW)

    assert "slaCheck             last 2026-11-27T18:00:00+05:30 failed" in result.stdout
    assert "CRITICAL slaCheck: last run failed" in result.stdout


def test_success_rate_counts_only_runs_that_did_work(home: Path) -> None:
    write_ledger(
        home,
        "slaCheck",
        run("a", "2026-11-25T12:30:00.000Z", "success")
        + run("b", "2026-11-26T12:30:00.000Z", "failed")
        + run("c", "2026-11-26T12:30:01.000Z", "locked")
        + run("d", SLOT, "skipped"),
    )
    job = json.loads(run_script("jobstats", "--json", home=home, CASEJOBS_NOW=NOW).stdout)["jobs"]["slaCheck"]
    assert (job["runs"], job["success_rate"]) == (4, 0.5)


# --- A fuzzed ledger --------------------------------------------------------------------------

BAD_VALUES = {
    "v": ["1", 0, -1, None, 1.5],
    "event": ["begin", None, 3],
    "run_id": ["", 5, None, "x" * 65],
    "job": [5, None, "dailySync"],
    "ts": [5, "zzzz", "9999-12-31T23:59:59.000Z", "1999-12-31T23:59:59.000Z", "2026-02-30T00:00:00.000Z", None],
    "pid": ["4242", -1, 2**40, None],
    "host": [5, None],
    "trigger": ["cosmic", 5],
    "status": [["success"], "exploded", None, 5],
    "exit_code": [300, -1, "0", None],
    "duration_ms": ["slow", -5, 10**15, 1.5],
    "items": ["many", -1, 10**13],
    "errors": ["none", -1],
    "error": [5, ["x"]],
    "details": ["x", [1], 5],
    "dry_run": ["yes", 1],
}


def fuzzed_lines() -> list[dict | str]:
    lines: list[dict | str] = []
    for field, values in BAD_VALUES.items():
        for number, value in enumerate(values):
            event = "start" if field in ("event",) else "finish"
            bad = line(event, f"bad-{field}-{number}", "2026-11-20T12:30:00.000Z", "success")
            bad[field] = value
            lines.append(bad)
    lines += ["not json", "[1, 2]", '"a string"', "{}", '{"v": 1, "event": "finish"']
    return lines


def test_a_fuzzed_ledger_never_breaks_a_reader(home: Path) -> None:
    bad = fuzzed_lines()
    newer = [
        line("start", "future", "2026-11-21T12:30:00.000Z", v=2, cost={"cpu": 1}),
        line("finish", "future", "2026-11-21T12:30:05.000Z", "success", v=2, duration_ms="fast", cost={"cpu": 1}),
        line("finish", "future-status", "2026-11-21T13:00:00.000Z", "vanished", v=2),
    ]
    good = run("g1", "2026-11-25T12:30:00.000Z", "success") + run("g2", SLOT, "success")
    write_ledger(home, "slaCheck", [*bad, *newer, *good])

    stats = run_script("jobstats", "--json", home=home, CASEJOBS_NOW=NOW)
    text = run_script("jobstats", "--since", "all", home=home, CASEJOBS_NOW=NOW)
    checked = run_script("jobstats", "--check", "--job", "slaCheck", home=home, CASEJOBS_NOW=NOW)
    status = run_script("jobctl", "status", "--json", home=home, CASEJOBS_NOW=NOW)

    for result in (stats, text, checked, status):
        assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr
    assert stats.returncode == 0 and text.returncode == 0 and status.returncode == 0
    assert checked.returncode == 0, checked.stdout
    report = json.loads(stats.stdout)
    assert report["damaged_lines"] == len(bad)  # every bad line counted, the newer version's never
    assert report["jobs"]["slaCheck"]["status_counts"]["success"] == 3  # g1, g2 and the newer version's run
    assert f"skipped {len(bad)} damaged ledger lines" in stats.stderr
    assert stats.stderr.count("\n") == 1  # one plain line, however many
    assert json.loads(status.stdout)["jobs"]["slaCheck"]["last_run"]["status"] == "success"
