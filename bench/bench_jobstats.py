"""jobstats and jobctl status over years of ledger history: wall time of the whole command.

Target (issue 9): `jobstats` (its default, the last 30 days), `jobstats --check`
and `jobctl status` stay under 0.5 s however many years have accumulated,
because the ledger is split by month and they open only the months they
need. The history: userPendingRefresh every 5 minutes and the three daily
jobs, each run a start and a finish line as the harness writes them, five
years of it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid

import orjson
from cronsim import CronSim

from bench.common import PROJECT, WORK, measure, summarise
from jobs import REGISTRY
from lib.clock import IST, format_utc
from lib.schedule import Entry

RUNS = 5
YEARS = 5
END = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
REPORT = WORK / "report.html"


def _runs(entry: Entry, duration_ms: int) -> dict[str, list[bytes]]:
    """Return a job's ledger lines over the years, one run at each of its slots, by month."""
    months: dict[str, list[bytes]] = {}
    job = entry.job
    slots = CronSim(entry.expression, (END - dt.timedelta(days=365 * YEARS)).astimezone(IST))
    for number, moment in enumerate(slots, 1):
        if moment >= END:
            break
        run_id = uuid.UUID(int=hash((job, number)) & (2**128 - 1)).hex
        base = {"v": 1, "run_id": run_id, "job": job, "pid": 4242, "host": "firm-desktop", "trigger": "cron"}
        status = "success" if number % 50 else "partial"
        start = {**base, "event": "start", "ts": format_utc(moment)}
        finish = {"event": "finish", "ts": format_utc(moment + dt.timedelta(milliseconds=duration_ms))}
        finish |= {
            "status": status,
            "exit_code": 0 if status == "success" else 3,
            "duration_ms": duration_ms + number % 97,
        }
        finish |= {"items": 1432, "errors": 0 if status == "success" else 1, "details": {"users": 1432, "removed": 0}}
        for line in (start, {**base, **finish}):
            months.setdefault(line["ts"][:7], []).append(orjson.dumps(line))
    return months


def years_of_history() -> tuple[object, int]:
    """Write the years of ledger lines under a bench home; return the home and the line count."""
    home = WORK / "ledger-years"
    shutil.rmtree(home, ignore_errors=True)
    total = 0
    for entry in REGISTRY.entries():
        folder = home / "ledger" / entry.job
        folder.mkdir(parents=True, exist_ok=True)
        for month, lines in _runs(entry, 900).items():
            (folder / f"{month}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
            total += len(lines)
    (home / "installed-at").write_text(format_utc(END - dt.timedelta(days=365 * YEARS)) + "\n")
    return home, total


def main() -> dict[str, object]:
    home, lines = years_of_history()
    print(f"jobstats over {YEARS} years of history, {lines:,} ledger lines (target: under 0.5 s)", flush=True)
    environment = {"CASEJOBS_HOME": str(home), "CASEJOBS_NOW": format_utc(END)}
    results = {}
    commands = (
        ("jobstats (last 30 days)", ["jobstats"]),
        ("jobstats --check", ["jobstats", "--check"]),
        ("jobctl status", ["jobctl", "status"]),
        ("jobstats --json --since 365d", ["jobstats", "--json", "--since", "365d"]),
        ("jobstats --json --since all", ["jobstats", "--json", "--since", "all"]),
        ("jobstats --html (last 30 days)", ["jobstats", "--html", str(REPORT)]),
        ("jobstats --html --since 365d", ["jobstats", "--html", str(REPORT), "--since", "365d"]),
    )
    for label, arguments in commands:
        command = [str(PROJECT / "bin" / arguments[0]), *arguments[1:]]
        measurements = [measure(command, environment) for _ in range(RUNS)]
        results[label] = summarise(label, measurements)
        if "--html" in arguments:
            results[label]["page_mb"] = round(REPORT.stat().st_size / 1e6, 2)
            print(
                f"  the page: {results[label]['page_mb']} MB (goal: 30 days < 2 MB in < 1 s; 365 days < 5 MB in < 3 s)"
            )
    return {"ledger_lines": lines, "years": YEARS, **results}


if __name__ == "__main__":
    main()
