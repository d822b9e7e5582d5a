"""The ledger: JSON Lines under $CASEJOBS_HOME/ledger/<job>/<YYYY-MM>.jsonl, appended, never rewritten.

One file per job per month (the month of each line's UTC time), so that a
reader opens only the months it needs however many years accumulate. Each
line is written with a single write() on a file opened O_APPEND and then
fsynced, so that concurrent runs never interleave and a crash loses at most
the line in flight; a writer that finds the last line cut by a crash starts
its own on a new line.

Readers use a line only when each field has its documented type and range
(validate()); every other line is skipped and counted in a Damage, which the
commands report once, in one plain line. Folders and files are private to
the home's owner (lib/home.py).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lib.home import make_file, make_folder

LEDGER_VERSION = 1
EVENTS = ("start", "finish")
STATUSES = ("success", "partial", "failed", "skipped", "locked", "interrupted", "timeout", "config")
TRIGGERS = ("cron", "manual", "catchup")
EARLIEST_YEAR, LATEST_YEAR = 2000, 2099  # a time outside these years is a broken clock, not a run
TIME_SHAPE = re.compile(r"^(\d{4})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
MONTH_FILE = re.compile(r"^(\d{4}-\d{2})\.jsonl$")
MAX_DURATION_MS = 31 * 24 * 3600 * 1000
MAX_COUNT = 10**12
TAIL_BYTES = 256 * 1024


@dataclass
class Damage:
    """How many ledger lines a reader skipped because they were not valid."""

    lines: int = 0

    def describe(self) -> str | None:
        """Return the one plain line to show, or None when nothing was skipped."""
        if not self.lines:
            return None
        return f"skipped {self.lines} damaged ledger line{'s' * (self.lines != 1)}"


def job_folder(home: Path, job: str) -> Path:
    """Given CASEJOBS_HOME and a job name, return the folder of that job's monthly files."""
    return home / "ledger" / job


def legacy_path(home: Path, job: str) -> Path:
    """The single file of ledgers written before the monthly split; still read, never written."""
    return home / "ledger" / f"{job}.jsonl"


def month_of(timestamp: str) -> str:
    """Given a ledger time (2026-11-28T01:00:00.000Z), return its month, 2026-11."""
    return timestamp[:7]


def is_valid_time(value: Any) -> bool:
    """Return True for a ledger time: UTC ISO-8601 with Z, a real instant from 2000 to 2099."""
    if not isinstance(value, str):
        return False
    match = TIME_SHAPE.match(value)
    if match is None or not EARLIEST_YEAR <= int(match.group(1)) <= LATEST_YEAR:
        return False
    try:
        dt.datetime.fromisoformat(value[:-1])
    except ValueError:
        return False
    return True


def append(home: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Given CASEJOBS_HOME and a record with at least event, run_id, job and ts, append it.

    The common fields v, pid and host are added if missing. Return the record
    written. Raise ValueError if ts is not a valid ledger time (the caller
    checks the clock first: see lib/clock.py).
    """
    line = {"v": LEDGER_VERSION, **record}
    line.setdefault("pid", os.getpid())
    line.setdefault("host", socket.gethostname())
    if not is_valid_time(line.get("ts")):
        raise ValueError(f"ledger time {line.get('ts')!r} is not between {EARLIEST_YEAR} and {LATEST_YEAR}")
    folder = job_folder(home, record["job"])
    make_folder(home / "ledger")
    make_folder(folder)
    path = folder / f"{month_of(line['ts'])}.jsonl"
    data = orjson.dumps(line) + b"\n"
    descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        make_file(path, descriptor)
        size = os.fstat(descriptor).st_size
        if size and _byte_at(descriptor, size - 1) != b"\n":
            data = b"\n" + data  # the last line was cut by a crash: never glue ours onto it
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return line


def _byte_at(descriptor: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(descriptor, 1, offset)
    os.lseek(descriptor, offset, os.SEEK_SET)  # Windows: appends still go to the end (O_APPEND)
    return os.read(descriptor, 1)


def _is_count(value: Any, highest: int = MAX_COUNT) -> bool:
    return type(value) is int and 0 <= value <= highest


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


_MISSING = object()
# (field, its check, required on a start line, required on a finish line); built once, used for every line.
FIELD_CHECKS: tuple[tuple[str, Any, bool, bool], ...] = (
    ("pid", lambda value: _is_count(value, 2**32), True, True),
    ("host", _is_text, True, True),
    ("trigger", lambda value: value in TRIGGERS, True, True),
    ("dry_run", lambda value: isinstance(value, bool), False, False),
    ("status", lambda value: isinstance(value, str) and value in STATUSES, False, True),
    ("exit_code", lambda value: _is_count(value, 255), False, True),
    ("duration_ms", lambda value: _is_count(value, MAX_DURATION_MS), False, False),
    ("items", _is_count, False, False),
    ("errors", _is_count, False, False),
    ("error", lambda value: value is None or isinstance(value, str), False, False),
    ("details", lambda value: isinstance(value, dict), False, False),
)


def validate(record: Any, job: str | None = None) -> dict[str, Any] | None:
    """Given one parsed line, return it if every field has its documented type and range, else None.

    A line of a newer version is read by the fields this version knows: it
    needs a valid event, run_id, job and ts, and any known field of the wrong
    type is dropped rather than the line. None means "skip this line".
    """
    if type(record) is not dict:
        return None
    version = record.get("v")
    if type(version) is not int or version < 1:
        return None
    event = record.get("event")
    if event != "start" and event != "finish":
        return None
    run_id = record.get("run_id")
    if type(run_id) is not str or not 0 < len(run_id) <= 64:
        return None
    line_job = record.get("job")
    if type(line_job) is not str or (job is not None and line_job != job):
        return None
    if not is_valid_time(record.get("ts")):
        return None
    finish = event == "finish"
    if version > LEDGER_VERSION:
        kept = dict(record)
        for key, check, _, _ in FIELD_CHECKS:
            if key in kept and not check(kept[key]):
                del kept[key]
        return kept if not finish or "status" in kept else None
    # Written out rather than looped over FIELD_CHECKS: a year of ledger is 200,000 lines.
    pid, host, trigger = record.get("pid"), record.get("host"), record.get("trigger")
    if type(pid) is not int or not 0 <= pid <= 2**32 or type(host) is not str or trigger not in TRIGGERS:
        return None
    dry_run = record.get("dry_run", False)
    if dry_run is not False and dry_run is not True:
        return None
    if finish:
        status, exit_code = record.get("status"), record.get("exit_code")
        if type(status) is not str or status not in STATUSES or type(exit_code) is not int or not 0 <= exit_code <= 255:
            return None
    for key, highest in (("duration_ms", MAX_DURATION_MS), ("items", MAX_COUNT), ("errors", MAX_COUNT)):
        value = record.get(key, 0)
        if type(value) is not int or not 0 <= value <= highest:
            return None
    error, details = record.get("error"), record.get("details", _MISSING)
    if (error is not None and type(error) is not str) or (details is not _MISSING and type(details) is not dict):
        return None
    if not finish and "status" in record:
        return None
    return record


def parse_line(raw: bytes, job: str | None = None) -> dict[str, Any] | None:
    """Return the valid ledger record on one line, or None if the line is damaged or blank."""
    try:
        return validate(orjson.loads(raw), job)
    except orjson.JSONDecodeError:
        return None


def _newer_version(raw: bytes) -> bool:
    """True for a line that a newer casejobs wrote: skipped without being counted as damaged."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(record, dict) and _is_count(record.get("v")) and record["v"] > LEDGER_VERSION


def ledger_files(home: Path, job: str) -> list[tuple[str, Path]]:
    """Return (month, path) of the job's ledger files, oldest first; the legacy file comes first as month ''."""
    files = []
    legacy = legacy_path(home, job)
    if legacy.is_file():
        files.append(("", legacy))
    folder = job_folder(home, job)
    if folder.is_dir():
        for path in folder.iterdir():
            match = MONTH_FILE.match(path.name)
            if match and path.is_file():
                files.append((match.group(1), path))
    return sorted(files)


def unreadable(home: Path, jobs: list[str]) -> str | None:
    """Say, in words, why the jobs' ledger cannot be read or written (a folder that is a file, a month
    that is a folder, a file we may not open), or None when it can. A reader that skipped such a thing
    would report a job that ran as one that never did."""
    try:
        return _first_unreadable(home, jobs)
    except OSError as error:  # a folder this account may not enter: exists() itself raises
        return f"{error.filename or home / 'ledger'} cannot be read: {error.strerror}"


def _first_unreadable(home: Path, jobs: list[str]) -> str | None:
    root = home / "ledger"
    if root.exists() and not root.is_dir():
        return f"{root} is not a folder"
    for job in jobs:
        folder = job_folder(home, job)
        if folder.exists() and not folder.is_dir():
            return f"{folder} is not a folder"
        if not folder.is_dir():
            continue
        try:
            entries = list(folder.iterdir())
        except OSError as error:
            return f"{folder} cannot be read: {error.strerror}"
        for path in entries:
            if not MONTH_FILE.match(path.name):
                continue
            if not path.is_file():
                return f"{path} is not a file"
            if not os.access(path, os.R_OK):
                return f"{path} cannot be read"
    return None


def parse_lines(lines: list[bytes], job: str, damage: Damage | None) -> Iterator[dict[str, Any]]:
    for raw in lines:
        record = parse_line(raw, job)
        if record is not None:
            yield record
        elif raw.strip() and damage is not None and not _newer_version(raw):
            damage.lines += 1


def read_records(
    home: Path, job: str, since: str | None = None, damage: Damage | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the job's valid records in file order, skipping (and counting) damaged lines.

    since, a ledger time, opens only the months from its own and skips records
    stamped earlier (compared as text, which is exact for the one `Z` form).
    """
    first_month = month_of(since) if since else ""
    for month, path in ledger_files(home, job):
        if month and month < first_month:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for record in parse_lines(data.split(b"\n"), job, damage):
            if since is None or record["ts"] >= since:
                yield record


def newest_records(
    files: list[tuple[str, Path]], size: int, job: str, damage: Damage | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """Given the job's files (ledger_files), return the valid records in their last `size` bytes, in file
    order, and whether that is the whole ledger. A line cut by the window's edge is left out, uncounted.
    """
    chunks: list[list[bytes]] = []
    remaining = size
    complete = True
    for _, path in reversed(files):
        if remaining <= 0:
            complete = False
            break
        try:
            with path.open("rb") as handle:
                end = handle.seek(0, os.SEEK_END)
                start = max(0, end - remaining)
                handle.seek(start)
                lines = handle.read(end - start).split(b"\n")
        except OSError:
            continue
        if start:
            lines = lines[1:]  # the first line is cut
            complete = False
        chunks.append(lines)
        remaining -= end - start
        if start:
            break
    records = [record for lines in reversed(chunks) for record in parse_lines(lines, job, damage)]
    return records, complete


def recent_records(home: Path, job: str, since: str, damage: Damage | None = None) -> list[dict[str, Any]]:
    """Return the records stamped at or after since, reading only the tail of each file where that suffices.

    Good for "what happened since the last slot": the last 256 KiB of a month
    hold days of even the five-minute job's history.
    """
    records: list[dict[str, Any]] = []
    first_month = month_of(since)
    for month, path in ledger_files(home, job):
        if month and month < first_month:
            continue
        records += [record for record in _tail(path, since, job, damage) if record["ts"] >= since]
    return records


def _tail(path: Path, since: str, job: str, damage: Damage | None) -> list[dict[str, Any]]:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            window = TAIL_BYTES
            while True:
                start = max(0, size - window)
                handle.seek(start)
                lines = handle.read().split(b"\n")
                if start:
                    lines = lines[1:]  # the first line is cut
                found = Damage()
                records = list(parse_lines(lines, job, found))
                if start == 0 or (records and records[0]["ts"] < since):
                    break
                window *= 4
    except OSError:
        return []
    if damage is not None:
        damage.lines += found.lines
    return records
