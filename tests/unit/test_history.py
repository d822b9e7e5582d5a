"""A job's ledger read as runs: pairing start and finish lines, crashed and running runs, and where a job stands."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from lib import ledger
from lib.history import latest, pair
from tests.helpers import dead_pid, write_ledger

HOST = socket.gethostname()


def start(run_id: str, ts: str, pid: int = 1, host: str = "elsewhere", **fields: Any) -> dict[str, Any]:
    """Return a start line of dailySync (fields added as they are)."""
    base = {"v": 1, "event": "start", "run_id": run_id, "job": "dailySync", "ts": ts, "pid": pid, "host": host}
    return base | {"trigger": "cron"} | fields


def finish(run_id: str, ts: str, status: str, **fields: Any) -> dict[str, Any]:
    """Return a finish line of dailySync with its status (fields added as they are)."""
    return start(run_id, ts, **fields) | {"event": "finish", "status": status, "exit_code": 0}


def run(run_id: str, day: int, status: str, **fields: Any) -> list[dict[str, Any]]:
    """Return the start and finish lines of one run on a day of November 2026, started at 06:30 IST."""
    return [
        start(run_id, f"2026-11-{day:02d}T01:00:00.000Z", **fields),
        finish(run_id, f"2026-11-{day:02d}T01:05:00.000Z", status, **fields),
    ]


def test_a_start_and_its_finish_make_one_finished_run() -> None:
    runs = list(
        pair([*run("a", 1, "partial", error="2 bad rows"), finish("orphan", "2026-11-02T01:05:00.000Z", "config")])
    )
    assert [(one.run_id, one.status) for one in runs] == [("a", "partial"), ("orphan", "config")]
    first, orphan = runs
    assert (first.started_at, first.finished_at, first.error) == (
        "2026-11-01T01:00:00.000Z",
        "2026-11-01T01:05:00.000Z",
        "2 bad rows",
    )
    assert orphan.started_at == orphan.finished_at == "2026-11-02T01:05:00.000Z"  # never started: its finish's time


def test_a_start_without_a_finish_is_a_crashed_run() -> None:
    runs = list(pair([start("died", "2026-11-01T01:00:00.000Z", pid=dead_pid(), host=HOST), *run("b", 2, "success")]))
    assert [(one.run_id, one.status) for one in runs] == [("b", "success"), ("died", "crashed")]
    assert runs[1].error == "no finish line: the run died"


def test_the_newest_start_of_a_live_process_on_this_host_is_running() -> None:
    runs = list(pair([start("now", "2026-11-02T01:00:00.000Z", pid=os.getpid(), host=HOST)]))
    assert [(one.status, one.pid, one.error) for one in runs] == [("running", os.getpid(), None)]


def test_a_live_pid_is_running_only_on_this_host_and_only_for_the_newest_start() -> None:
    older = start("older", "2026-11-01T01:00:00.000Z", pid=os.getpid(), host=HOST)
    newer = start("newer", "2026-11-02T01:00:00.000Z", pid=os.getpid(), host=HOST)
    assert [(one.run_id, one.status) for one in pair([older, newer])] == [("older", "crashed"), ("newer", "running")]
    other_host = start("there", "2026-11-03T01:00:00.000Z", pid=os.getpid(), host=HOST + "-not")
    assert [one.status for one in pair([other_host])] == ["crashed"]


def test_last_worked_ignores_skipped_locked_and_dry_runs(tmp_path: Path) -> None:
    write_ledger(
        tmp_path,
        "dailySync",
        [
            *run("worked", 1, "failed", error="token refused"),
            *run("skipped", 2, "skipped"),
            *run("locked", 3, "locked"),
            *run("dry", 4, "success", dry_run=True),
        ],
    )
    state = latest(tmp_path, "dailySync")
    assert state.last_worked is not None
    assert (state.last_worked.run_id, state.last_worked.error) == ("worked", "token refused")
    assert state.last_good_start is None
    assert state.ever_ran


def test_failing_since_is_the_start_of_the_trailing_streak_of_one_bad_status(tmp_path: Path) -> None:
    write_ledger(
        tmp_path,
        "dailySync",
        [
            *run("good", 1, "success"),
            *run("broken", 2, "failed"),
            *run("first", 3, "config"),
            *run("skip", 4, "skipped"),
            *run("second", 5, "config"),
        ],
    )
    state = latest(tmp_path, "dailySync")
    assert state.last_worked is not None and state.last_worked.run_id == "second"
    assert state.failing_since == "2026-11-03T01:00:00.000Z"
    assert state.last_good_start == "2026-11-01T01:00:00.000Z"


def test_a_good_last_run_is_failing_since_nothing_and_a_partial_counts_as_good(tmp_path: Path) -> None:
    write_ledger(
        tmp_path, "dailySync", [*run("bad", 1, "failed"), *run("good", 2, "success"), *run("part", 3, "partial")]
    )
    state = latest(tmp_path, "dailySync")
    assert state.failing_since is None
    assert state.last_good_start == "2026-11-03T01:00:00.000Z"


def test_latest_reaches_back_past_the_newest_months_for_the_last_good_start(tmp_path: Path) -> None:
    lines: list[dict[str, Any] | str] = []
    for month, status in ((6, "success"), (7, "failed"), (8, "failed"), (9, "failed"), (10, "failed")):
        lines += [
            start(f"m{month}", f"2026-{month:02d}-01T01:00:00.000Z"),
            finish(f"m{month}", f"2026-{month:02d}-01T01:05:00.000Z", status),
        ]
    write_ledger(tmp_path, "dailySync", lines)
    state = latest(tmp_path, "dailySync")
    assert state.last_good_start == "2026-06-01T01:00:00.000Z"
    assert state.failing_since == "2026-07-01T01:00:00.000Z"
    assert state.last_worked is not None and state.last_worked.run_id == "m10"


def test_a_job_with_no_ledger_never_ran(tmp_path: Path) -> None:
    state = latest(tmp_path, "dailySync")
    assert (state.last_worked, state.last_good_start, state.running, state.ever_ran) == (None, None, None, False)


def many_runs(count: int, status: str, first_minute: int = 0) -> list[dict[str, Any]]:
    """Return count runs of one status, one a minute from 2026-11-01 00:00 UTC plus first_minute (>256 KiB for
    a few thousand: each run's lines carry a long error)."""
    lines: list[dict[str, Any]] = []
    for number in range(first_minute, first_minute + count):
        moment = f"2026-11-{1 + number // 1440:02d}T{number // 60 % 24:02d}:{number % 60:02d}:00.000Z"
        lines += [start(f"r{number}", moment), finish(f"r{number}", moment, status, error="x" * 200)]
    return lines


def test_latest_reads_only_the_tail_when_it_holds_a_good_run(tmp_path: Path) -> None:
    write_ledger(tmp_path, "dailySync", [*many_runs(3000, "success"), *run("bad", 29, "failed")])
    path = tmp_path / "ledger" / "dailySync" / "2026-11.jsonl"
    assert path.stat().st_size > 4 * ledger.TAIL_BYTES
    # Damage the file's first line: a reader of the whole file would count it, a reader of the tail does not.
    path.write_bytes(b"{not json\n" + path.read_bytes())
    damage = ledger.Damage()
    state = latest(tmp_path, "dailySync", damage)
    assert state.last_good_start == "2026-11-03T01:59:00.000Z" and state.failing_since == "2026-11-29T01:00:00.000Z"
    assert damage.lines == 0


def test_latest_goes_back_past_the_tail_for_a_long_streak_of_failures(tmp_path: Path) -> None:
    write_ledger(tmp_path, "dailySync", [*run("good", 1, "success"), *many_runs(3000, "failed", first_minute=1440)])
    state = latest(tmp_path, "dailySync")
    assert state.last_good_start == "2026-11-01T01:00:00.000Z"
    assert state.failing_since == "2026-11-02T00:00:00.000Z"


def test_a_run_cut_by_the_tail_window_is_not_taken_for_one_started_at_its_finish(tmp_path: Path) -> None:
    """The window may begin between a good run's start and its finish: that run must not count as started at
    its finish; the reader goes further back and finds its start."""
    long_run = [start("long", "2026-11-01T00:00:00.000Z"), finish("long", "2026-11-01T02:00:00.000Z", "success")]
    filler = [finish(f"n{number}", "2026-11-01T01:00:00.000Z", "config", error="y" * 300) for number in range(1000)]
    lines = [
        long_run[0],
        *filler,
        long_run[1],
        *[line for number in range(3) for line in run(f"c{number}", 2 + number, "config")],
    ]
    write_ledger(tmp_path, "dailySync", lines)
    state = latest(tmp_path, "dailySync")
    assert state.last_good_start == "2026-11-01T00:00:00.000Z"
