"""The ledger: one JSON Lines file per job under $CASEJOBS_HOME/ledger/, appended, never rewritten.

Each line is written with a single write() on a file opened O_APPEND and then
fsynced, so that concurrent runs never interleave and a crash loses at most
the line in flight. Readers skip a damaged line with a warning.
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

LEDGER_VERSION = 1
STATUSES = ("success", "partial", "failed", "skipped", "locked", "interrupted", "timeout")


class DamagedLineWarning(UserWarning):
    """A ledger line that is not a JSON object was skipped."""


def ledger_path(home: Path, job: str) -> Path:
    """Given CASEJOBS_HOME and a job name, return that job's ledger file."""
    return home / "ledger" / f"{job}.jsonl"


def append(home: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Given CASEJOBS_HOME and a record with at least event, run_id and job, append it.

    The common fields v, pid and host are added if missing. Return the record written.
    """
    line = {"v": LEDGER_VERSION, **record}
    line.setdefault("pid", os.getpid())
    line.setdefault("host", socket.gethostname())
    data = orjson.dumps(line) + b"\n"
    descriptor = os.open(ledger_path(home, record["job"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return line


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """Return the ledger record on one line, or None if the line is damaged or blank."""
    try:
        record = orjson.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict) or "run_id" not in record or "event" not in record:
        return None
    return record


def read_lines(path: Path, since: str | None = None) -> Iterator[dict[str, Any]]:
    """Given a ledger file, yield its records in order, skipping damaged lines with a warning.

    since, a UTC timestamp in the ledger's own form, skips records stamped
    earlier (compared as text, which is exact for that one `Z` format).
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        for number, raw in enumerate(handle, 1):
            record = parse_line(raw)
            if record is None:
                if raw.strip():
                    warnings.warn(f"{path}:{number}: damaged ledger line skipped", DamagedLineWarning, stacklevel=2)
                continue
            if since is not None and str(record.get("ts", "")) < since:
                continue
            yield record


TAIL_BYTES = 256 * 1024


def recent_records(path: Path, since: str) -> list[dict[str, Any]]:
    """Return the records stamped at or after since, reading only the file's tail.

    Good for "what happened since the last slot": the last 256 KiB hold
    days of even the five-minute job's history.
    """
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            data = handle.read()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line is cut
    records = (parse_line(raw) for raw in lines)
    return [record for record in records if record is not None and str(record.get("ts", "")) >= since]
