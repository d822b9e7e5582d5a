"""jobstats over a year of ledger history: wall time of the whole command.

Target (issue 2): a year of history summarised in well under a second. The
history: userPendingRefresh every 5 minutes and the three daily jobs, each
run a start and a finish line as the harness writes them.
"""

from __future__ import annotations

import datetime as dt
import uuid

import orjson

from bench.common import PROJECT, WORK, measure, summarise
from lib.clock import format_utc
from lib.schedule import read_schedule

RUNS = 5
END = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)


def _runs(job: str, every: dt.timedelta, duration_ms: int) -> list[bytes]:
    lines = []
    moment = END - dt.timedelta(days=365)
    number = 0
    while moment < END:
        number += 1
        run_id = uuid.UUID(int=hash((job, number)) & (2**128 - 1)).hex
        base = {"v": 1, "run_id": run_id, "job": job, "pid": 4242, "host": "firm-desktop", "trigger": "cron"}
        status = "success" if number % 50 else "partial"
        lines.append(orjson.dumps({**base, "event": "start", "ts": format_utc(moment)}))
        finish = {"event": "finish", "ts": format_utc(moment + dt.timedelta(milliseconds=duration_ms))}
        finish |= {
            "status": status,
            "exit_code": 0 if status == "success" else 3,
            "duration_ms": duration_ms + number % 97,
        }
        finish |= {"items": 1432, "errors": 0 if status == "success" else 1, "details": {"users": 1432, "removed": 0}}
        lines.append(orjson.dumps({**base, **finish}))
        moment += every
    return lines


def year_of_history() -> tuple[object, int]:
    """Write a year of ledger lines under a bench home; return the home and the line count."""
    home = WORK / "ledger-year"
    (home / "ledger").mkdir(parents=True, exist_ok=True)
    total = 0
    for entry in read_schedule():
        every = dt.timedelta(minutes=5) if entry.job == "userPendingRefresh" else dt.timedelta(days=1)
        lines = _runs(entry.job, every, 900)
        (home / "ledger" / f"{entry.job}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        total += len(lines)
    return home, total


def main() -> dict[str, object]:
    home, lines = year_of_history()
    print(f"jobstats over a year of history, {lines:,} ledger lines (target: well under 1 s)", flush=True)
    environment = {"CASEJOBS_HOME": str(home), "CASEJOBS_NOW": format_utc(END)}
    results = {}
    for label, arguments in (("all of it, --json", ["--json"]), ("--since 7d", ["--since", "7d"])):
        command = [str(PROJECT / "bin" / "jobstats"), *arguments]
        measurements = [measure(command, environment) for _ in range(RUNS)]
        results[label] = summarise(f"jobstats {label}", measurements)
    return {"ledger_lines": lines, **results}
