"""The ledger: which lines are valid, where and how a line is appended, and how readers skip and count damage."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from lib import ledger
from lib.ledger import Damage, append, read_records, recent_records, validate
from tests.helpers import write_ledger

START = {"v": 1, "event": "start", "run_id": "r1", "job": "slaCheck", "ts": "2026-11-28T12:30:00.000Z"}
START |= {"pid": 4242, "host": "desk", "trigger": "cron"}
FINISH = {**START, "event": "finish", "ts": "2026-11-28T12:31:00.000Z", "status": "success", "exit_code": 0}
FINISH |= {"duration_ms": 60_000, "items": 3, "errors": 0, "error": None, "details": {"notified_users": 3}}


def line(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Return base with changes; a change to the value ... removes that field."""
    result = {**base, **changes}
    return {key: value for key, value in result.items() if value is not ...}


def record(job: str, ts: str, event: str = "start", run_id: str = "r", **fields: Any) -> dict[str, Any]:
    """Return a valid start line (or the event given) of job at ts."""
    base = {"v": 1, "event": event, "run_id": run_id, "job": job, "ts": ts, "pid": 1, "host": "h", "trigger": "cron"}
    return base | fields


def ledger_time(moment: dt.datetime) -> str:
    """Return an aware instant as a ledger time."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.parametrize("valid", [START, FINISH, line(START, dry_run=True), line(FINISH, ts="2099-12-31T23:59:59Z")])
def test_a_line_with_every_field_in_its_documented_range_is_kept(valid: dict[str, Any]) -> None:
    assert validate(dict(valid), "slaCheck") == valid


@pytest.mark.parametrize(
    "invalid",
    [
        line(START, v=0),
        line(START, v="1"),
        line(START, event="stop"),
        line(START, run_id=""),
        line(START, run_id="x" * 65),
        line(START, job="dailySync"),
        line(START, ts="2026-11-28T12:30:00.000"),
        line(START, ts="1999-12-31T23:59:59.000Z"),
        line(START, ts="2100-01-01T00:00:00.000Z"),
        line(START, ts="2026-02-30T00:00:00.000Z"),
        line(START, pid=-1),
        line(START, pid=True),
        line(START, host=...),
        line(START, trigger="hourly"),
        line(START, dry_run="yes"),
        line(START, status="success"),
        line(FINISH, status=...),
        line(FINISH, status="ok"),
        line(FINISH, exit_code=256),
        line(FINISH, duration_ms=-1),
        line(FINISH, items=1.5),
        line(FINISH, error=5),
        line(FINISH, details=["a"]),
    ],
)
def test_a_line_with_a_field_out_of_its_range_is_skipped(invalid: dict[str, Any]) -> None:
    assert validate(invalid, "slaCheck") is None


def test_a_line_of_a_newer_version_is_read_leniently() -> None:
    newer = line(FINISH, v=2, pid=..., host=..., items="many", shiny_new_field=[1, 2])
    kept = validate(newer)
    assert kept is not None
    assert "items" not in kept
    assert (kept["status"], kept["shiny_new_field"], kept["errors"]) == ("success", [1, 2], 0)
    assert validate(line(FINISH, v=2, status="exploded")) is None  # a finish needs a status this version knows
    assert validate(line(START, v=2, ts="1970-01-01T00:00:00Z")) is None  # never without a valid time


def test_append_files_a_line_by_the_month_of_its_time_in_a_private_file(tmp_path: Path) -> None:
    append(tmp_path, record("dailySync", "2026-10-31T23:59:59.999Z", run_id="a"))
    append(tmp_path, record("dailySync", "2026-11-01T00:00:00.000Z", run_id="b"))

    folder = tmp_path / "ledger" / "dailySync"
    assert sorted(path.name for path in folder.iterdir()) == ["2026-10.jsonl", "2026-11.jsonl"]
    assert json.loads((folder / "2026-10.jsonl").read_text())["run_id"] == "a"
    assert stat.S_IMODE((folder / "2026-11.jsonl").stat().st_mode) == 0o600


def test_append_adds_the_process_pid_and_host_when_missing(tmp_path: Path) -> None:
    bare = {"event": "start", "run_id": "r", "job": "slaCheck", "ts": "2026-11-28T00:00:00.000Z", "trigger": "cron"}
    written = append(tmp_path, bare)
    assert (written["v"], written["pid"], written["host"]) == (1, os.getpid(), socket.gethostname())
    assert validate(written, "slaCheck") == written


def test_a_line_cut_by_a_crash_is_ended_before_the_next_is_written(tmp_path: Path) -> None:
    folder = tmp_path / "ledger" / "slaCheck"
    folder.mkdir(parents=True)
    path = folder / "2026-11.jsonl"
    path.write_bytes(json.dumps(START).encode() + b'\n{"v": 1, "event": "fin')
    append(tmp_path, record("slaCheck", "2026-11-28T13:00:00.000Z", run_id="after"))

    raw = path.read_bytes().split(b"\n")
    assert raw[1] == b'{"v": 1, "event": "fin'
    assert json.loads(raw[2])["run_id"] == "after"
    damage = Damage()
    assert [entry["run_id"] for entry in read_records(tmp_path, "slaCheck", damage=damage)] == ["r1", "after"]
    assert damage.lines == 1


@pytest.mark.parametrize("ts", ["1999-12-31T23:59:59.000Z", "2100-01-01T00:00:00.000Z", "2026-11-28 01:00:00"])
def test_append_refuses_a_time_outside_2000_to_2099_and_writes_nothing(tmp_path: Path, ts: str) -> None:
    with pytest.raises(ValueError, match="between 2000 and 2099"):
        append(tmp_path, record("slaCheck", ts))
    assert not (tmp_path / "ledger").exists()


def test_read_records_since_opens_only_the_months_from_its_own(tmp_path: Path) -> None:
    write_ledger(
        tmp_path,
        "slaCheck",
        [
            record("slaCheck", "2026-09-30T12:00:00.000Z", run_id="september"),
            "{damaged",
            record("slaCheck", "2026-10-14T12:00:00.000Z", run_id="before"),
            record("slaCheck", "2026-10-15T12:00:00.000Z", run_id="at"),
            record("slaCheck", "2026-11-01T00:00:00.000Z", run_id="november"),
        ],
    )
    damage = Damage()
    since = [entry["run_id"] for entry in read_records(tmp_path, "slaCheck", "2026-10-15T12:00:00.000Z", damage)]
    assert since == ["at", "november"]
    assert damage.lines == 0  # September's damaged line was never read
    everything = Damage()
    assert len(list(read_records(tmp_path, "slaCheck", damage=everything))) == 4
    assert everything.lines == 1


def test_recent_records_reads_the_tail_and_reaches_further_back_only_when_needed(tmp_path: Path) -> None:
    first = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    lines: list[dict[str, Any] | str] = ["{damaged at the very start"]
    for number in range(3000):  # about 500 KiB: far more than one tail window
        moment = first + dt.timedelta(minutes=5 * number)
        lines.append(record("userPendingRefresh", ledger_time(moment), run_id=f"run-{number}", note="x" * 40))
    write_ledger(tmp_path, "userPendingRefresh", lines)
    assert (tmp_path / "ledger" / "userPendingRefresh" / "2026-11.jsonl").stat().st_size > 2 * ledger.TAIL_BYTES

    tail_damage = Damage()
    since = ledger_time(first + dt.timedelta(minutes=5 * 2990))
    recent = recent_records(tmp_path, "userPendingRefresh", since, tail_damage)
    assert [entry["run_id"] for entry in recent] == [f"run-{number}" for number in range(2990, 3000)]
    assert tail_damage.lines == 0

    whole_damage = Damage()
    everything = recent_records(tmp_path, "userPendingRefresh", ledger_time(first), whole_damage)
    assert len(everything) == 3000
    assert whole_damage.lines == 1


def test_damage_is_described_in_one_plain_line_and_newer_lines_are_not_damage(tmp_path: Path) -> None:
    assert Damage().describe() is None
    assert Damage(1).describe() == "skipped 1 damaged ledger line"
    assert Damage(3).describe() == "skipped 3 damaged ledger lines"
    write_ledger(
        tmp_path,
        "slaCheck",
        [
            record("slaCheck", "2026-11-01T00:00:00.000Z"),
            json.dumps(line(FINISH, v=2, status="exploded")),  # a newer casejobs's line: skipped, not damage
            "not json at all",
            json.dumps(line(START, items=-3)),
        ],
    )
    damage = Damage()
    assert len(list(read_records(tmp_path, "slaCheck", damage=damage))) == 1
    assert damage.lines == 2
