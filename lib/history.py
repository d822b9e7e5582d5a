"""Reading a job's ledger as runs: pairing start and finish lines, and what is running right now.

Looking never disturbs a job: nothing here takes a lock or writes a file. A
run is running when its `start` is the job's newest, has no `finish`, and
its pid is alive on this host; any other `start` without a `finish` is a run
that died (crashed). Monitoring judges the latest run that did work: a
`skipped` or `locked` line (a start that did nothing) and a dry run never
replace that run's outcome.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib import ledger

NOT_ATTEMPTED = ("skipped", "locked")  # runs that never did work
GOOD = ("success", "partial")  # runs that did the period's work


def process_alive(pid: int) -> bool:
    """Return True if a process with this pid exists on this host."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except OSError:
        return False
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """True for a process that has ended but whose parent has not collected it yet (Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _windows_process_alive(pid: int) -> bool:
    import ctypes

    kernel = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        kernel.GetExitCodeProcess(handle, ctypes.byref(code))
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel.CloseHandle(handle)


@dataclass
class Run:
    """One run as the ledger tells it."""

    run_id: str
    started_at: str  # the start line's time, or the finish line's for a run that never started
    status: str  # a ledger status, or `running` / `crashed` for a start without its finish
    trigger: str | None = None
    dry_run: bool = False
    finished_at: str | None = None
    exit_code: int | None = None
    duration_ms: int | None = None
    items: int = 0
    errors: int = 0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    host: str | None = None

    @property
    def did_work(self) -> bool:
        """True for a real run that tried its work: not skipped, not locked out, not a dry run."""
        return self.status not in NOT_ATTEMPTED and not self.dry_run

    @classmethod
    def from_lines(cls, start: dict[str, Any] | None, finish: dict[str, Any]) -> Run:
        return cls(
            run_id=finish["run_id"],
            started_at=(start or finish)["ts"],
            status=finish["status"],
            trigger=finish.get("trigger"),
            dry_run=bool(finish.get("dry_run")),
            finished_at=finish["ts"],
            exit_code=finish.get("exit_code"),
            duration_ms=finish.get("duration_ms"),
            items=finish.get("items") or 0,
            errors=finish.get("errors") or 0,
            error=finish.get("error"),
            details=finish.get("details") or {},
            pid=finish.get("pid"),
            host=finish.get("host"),
        )

    @classmethod
    def unfinished(cls, start: dict[str, Any], running: bool) -> Run:
        return cls(
            run_id=start["run_id"],
            started_at=start["ts"],
            status="running" if running else "crashed",
            trigger=start.get("trigger"),
            dry_run=bool(start.get("dry_run")),
            error=None if running else "no finish line: the run died",
            pid=start.get("pid"),
            host=start.get("host"),
        )


def is_alive_here(start: dict[str, Any]) -> bool:
    """True if the process that wrote this start line is still alive on this host."""
    return start.get("host") == socket.gethostname() and process_alive(start.get("pid") or 0)


def pair(records: Iterable[dict[str, Any]]) -> Iterator[Run]:
    """Given ledger records in file order, yield each run: finished ones as their finish line comes,
    then the unfinished ones, oldest first (the newest start, alive here, is `running`).
    """
    starts: dict[str, dict[str, Any]] = {}
    newest_start: dict[str, Any] | None = None
    for record in records:
        if record["event"] == "start":
            starts[record["run_id"]] = record
            if newest_start is None or record["ts"] >= newest_start["ts"]:
                newest_start = record
            continue
        yield Run.from_lines(starts.pop(record["run_id"], None), record)
    for start in sorted(starts.values(), key=lambda line: line["ts"]):
        yield Run.unfinished(start, running=start is newest_start and is_alive_here(start))


def runs_since(home: Path, job: str, since: str | None, damage: ledger.Damage | None = None) -> Iterator[Run]:
    """Yield the job's runs whose lines are stamped at or after since (None: all of them)."""
    return pair(ledger.read_records(home, job, since, damage))


@dataclass
class Latest:
    """Where one job stands now, from the newest part of its ledger."""

    last_worked: Run | None = None  # the newest run that did work (what monitoring judges)
    last_good_start: str | None = None  # when the newest success or partial started
    last_success_start: str | None = None  # when the newest success started
    failing_since: str | None = None  # the start of the trailing streak of runs with the same bad status
    running: Run | None = None
    ever_ran: bool = False  # any line at all, dry runs and skips included


def latest(home: Path, job: str, damage: ledger.Damage | None = None) -> Latest:
    """Return where the job stands, reading the ledger's newest lines first and going back only as needed.

    A window of the ledger's last bytes is enough once it holds a good run:
    that run is the newest good one, and it bounds any streak of failures
    after it. Without one (a job failing for weeks, or one that never
    succeeded) the window grows, up to the whole ledger. Damaged lines are
    counted within the window read.
    """
    files = ledger.ledger_files(home, job)
    size = ledger.TAIL_BYTES
    while True:
        found = ledger.Damage()
        records, complete = ledger.newest_records(files, size, job, found)
        if not complete:
            # Lines before the window's first start may be the finish of a run whose start was cut off.
            first_start = next((number for number, line in enumerate(records) if line["event"] == "start"), None)
            records = records[first_start:] if first_start is not None else []
        result = _latest_of(records)
        if complete or (result.last_worked is not None and result.last_good_start is not None):
            if damage is not None:
                damage.lines += found.lines
            return result
        size *= 4


def _latest_of(records: Iterable[dict[str, Any]]) -> Latest:
    result = Latest()
    worked: list[Run] = []
    for run in pair(records):
        result.ever_ran = True
        if run.status == "running":
            result.running = run
            continue
        if not run.did_work:
            continue
        worked.append(run)
        if run.status in GOOD and (result.last_good_start is None or run.started_at > result.last_good_start):
            result.last_good_start = run.started_at
        if run.status == "success" and (
            result.last_success_start is None or run.started_at > result.last_success_start
        ):
            result.last_success_start = run.started_at
    worked.sort(key=lambda run: run.started_at)
    if worked:
        result.last_worked = worked[-1]
        streak_start = worked[-1]
        for run in reversed(worked):
            if run.status != streak_start.status:
                break
            result.failing_since = run.started_at
        if streak_start.status in GOOD:
            result.failing_since = None
    return result
