"""The JSON exports of a backup package: every case with its children nested, the users without their
secrets, the recent audit rows; streamed from the copy one record at a time, so memory stays flat.

SQLite writes each row's JSON itself (json_object, in C): Python only joins a case's rows into one
record and writes it, so that a busy firm's five million rows cost seconds, not minutes. Each
exporter takes a plain sqlite3 connection and yields (id, JSON bytes) records, the bytes None for
a row that cannot be exported (a BLOB, text that is not UTF-8); write_json_array() turns them into
one JSON array, a record per line, and skips (and names) each such row. A case drops only its bad
children. A confidential case's text is redacted by the one rule of lib/redaction.py.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from lib.clock import format_utc
from lib.redaction import CONFIDENTIAL_TEXT, redact_row

SENSITIVE_USER_COLUMNS = ("password_hash", "api_token", "phone")
EXPORT_BATCH = 1000  # records between two stop checks
AUDIT_DAYS = 30
NOT_TEXT = "cannot be exported: a value is not UTF-8 text"
BadRow = Callable[[str, Any, str], None]  # (table, id, reason)
Record = tuple[Any, bytes | None]  # (the row's id, its JSON, or None when it cannot be exported)
CHILDREN = ("tasks", "hearings", "orders", "documents")  # nested under each case, in this order
CHILD_ORDER = {
    "tasks": "case_id, id",
    "hearings": "case_id, hearing_date, id",
    "orders": "case_id, kind, order_no, id",
    "documents": "case_id, id",
}


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in connection.execute(f'PRAGMA table_info("{table}")')]


def _as_json(connection: sqlite3.Connection, table: str, alias: str, leave_out: tuple[str, ...] = ()) -> str:
    """Return the SELECT columns (blobs, json) of a row of table: how many of its values are BLOBs
    (JSON cannot hold them: the row is not exported), and its JSON object as bytes, every column in
    table order but those left out."""
    columns = [column for column in _columns(connection, table) if column not in leave_out]
    quoted = [f'{alias}."{column}"' for column in columns]
    blobs = " + ".join(f"(typeof({value}) = 'blob')" for value in quoted) or "0"
    pairs = ", ".join(
        f"'{column}', CASE typeof({value}) WHEN 'blob' THEN NULL ELSE {value} END"
        for column, value in zip(columns, quoted, strict=True)
    )
    return f"{blobs}, CAST(json_object({pairs}) AS BLOB)"


def _exportable(blobs: int, data: bytes) -> bytes | None:
    """Return a row's JSON if it can be exported: no BLOB, and text that is UTF-8 (checked only when
    there is anything beyond ASCII, which is rare and cheap to ask)."""
    if blobs:
        return None
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return data


def _redacted(table: str, data: bytes, confidential: bool) -> bytes:
    """Return a row's JSON with its free text redacted when its case is confidential."""
    if not confidential or not CONFIDENTIAL_TEXT.get(table):
        return data
    return orjson.dumps(redact_row(table, orjson.loads(data), True))


def _with(data: bytes, extra: bytes) -> bytes:
    """Append members to a JSON object: b'{"a":1}' with b'"b":[]' gives b'{"a":1,"b":[]}'."""
    return data[:-1] + (b"," if len(data) > 2 else b"") + extra + b"}"


class _Children:
    """One child table read in case order, handing out each case's rows (id, blobs, json) as the cases go by."""

    def __init__(self, rows: Iterator[tuple]) -> None:
        self._rows = rows
        self._pending = next(self._rows, None)

    def of(self, case_id: int) -> list[tuple]:
        found = []
        while self._pending is not None:
            owner = self._pending[0]
            if type(owner) is int and owner > case_id:
                break
            if owner == case_id and type(owner) is int:
                found.append(self._pending[1:])
            # rows of cases that do not exist (or of no case) are not exported
            self._pending = next(self._rows, None)
        return found


def _children(connection: sqlite3.Connection) -> tuple[dict[str, _Children], _Children]:
    """Every child table (and the subtasks, by their task's case) read once, in case order."""
    tables = {
        table: _Children(
            connection.execute(
                f"SELECT t.case_id, t.id, {_as_json(connection, table, 't')} FROM {table} AS t "
                f"ORDER BY {', '.join('t.' + column.strip() for column in CHILD_ORDER[table].split(','))}"
            )
        )
        for table in CHILDREN
    }
    subtasks = _Children(
        connection.execute(
            f"SELECT t.case_id, s.id, s.task_id, {_as_json(connection, 'subtasks', 's')} "
            "FROM subtasks AS s JOIN tasks AS t ON t.id = s.task_id ORDER BY t.case_id, s.task_id, s.id"
        )
    )
    return tables, subtasks


def _kept(table: str, rows: list[tuple], confidential: bool, bad_row: BadRow) -> Iterator[tuple[tuple, bytes]]:
    """Yield (row, JSON) of the child rows that can be exported, redacted if need be; name the others."""
    for row in rows:
        exportable = _exportable(*row[-2:])
        if exportable is None:
            bad_row(table, row[0], NOT_TEXT)
        else:
            yield row, _redacted(table, exportable, confidential)


def nested_cases(connection: sqlite3.Connection, bad_row: BadRow) -> Iterator[Record]:
    """Yield each case as (id, JSON) with its tasks (each with its subtasks), hearings, orders and
    documents; a child that cannot be exported is left out and passed to bad_row.

    Every table is read once, in case order, and merged as it streams: memory
    holds one case at a time, whatever the size of the database.
    """
    tables, subtasks = _children(connection)
    cases = connection.execute(
        f"SELECT c.id, c.is_confidential, {_as_json(connection, 'cases', 'c')} FROM cases AS c ORDER BY c.id"
    )
    for case_id, is_confidential, blobs, data in cases:
        confidential = bool(is_confidential)
        by_task: dict[Any, list[bytes]] = {}
        for (_, task_id, *_), subtask in _kept("subtasks", subtasks.of(case_id), confidential, bad_row):
            by_task.setdefault(task_id, []).append(subtask)
        members = []
        for table in CHILDREN:
            rows = _kept(table, tables[table].of(case_id), confidential, bad_row)
            if table == "tasks":
                encoded = [
                    _with(task, b'"subtasks":[' + b",".join(by_task.get(row[0], ())) + b"]") for row, task in rows
                ]
            else:
                encoded = [child for _, child in rows]
            members.append(b'"%s":[%s]' % (table.encode(), b",".join(encoded)))
        case = _exportable(blobs, data)
        yield case_id, None if case is None else _with(_redacted("cases", case, confidential), b",".join(members))


def _flat(
    connection: sqlite3.Connection, table: str, where: str, parameters: Any, leave_out: tuple[str, ...] = ()
) -> Iterator[Record]:
    """Yield (id, JSON) of the rows of table matching where (with its ORDER BY)."""
    query = f"SELECT r.id, {_as_json(connection, table, 'r', leave_out)} FROM {table} AS r {where}"
    for row_id, blobs, data in connection.execute(query, parameters):
        yield row_id, _exportable(blobs, data)


def users_without_secrets(connection: sqlite3.Connection) -> Iterator[Record]:
    """Yield every user without the sensitive columns of data-model.md."""
    return _flat(connection, "users", "ORDER BY r.id", (), SENSITIVE_USER_COLUMNS)


def recent_audit_logs(connection: sqlite3.Connection, now: dt.datetime) -> Iterator[Record]:
    """Yield the audit rows of the last 30 days."""
    since = format_utc(now - dt.timedelta(days=AUDIT_DAYS))
    return _flat(connection, "audit_logs", "WHERE r.created_at >= ? ORDER BY r.created_at, r.id", (since,))


def write_json_array(
    writer: Any, records: Iterator[Record], table: str, checkpoint: Callable[[], None], bad_row: BadRow
) -> int:
    """Stream (id, JSON) records into writer (anything with write(bytes)) as one JSON array, one record
    per line.

    checkpoint() is called every EXPORT_BATCH records (it raises to stop). A
    record that cannot be written (None) is passed to bad_row and skipped.
    Return how many records were written.
    """
    writer.write(b"[\n")
    written = 0
    for number, (record_id, data) in enumerate(records):
        if number and number % EXPORT_BATCH == 0:
            checkpoint()
        if data is None:
            bad_row(table, record_id, NOT_TEXT)
            continue
        writer.write((b",\n" if written else b"") + data)
        written += 1
    writer.write(b"\n]\n")
    return written


def table_counts(connection: sqlite3.Connection) -> dict[str, int]:
    """Return the row count of every table of the copy."""
    names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def open_copy(path: str) -> sqlite3.Connection:
    """Open a database copy read-only for exporting: text that is not UTF-8 is read as it is (with
    surrogates), so that a name read from it never fails the export."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    connection.text_factory = lambda data: data.decode("utf-8", "surrogateescape")
    return connection


EXPORTS = {"cases.json": "cases", "users.json": "users", "audit-logs.json": "audit_logs"}  # member: table, in order


def export_records(connection: sqlite3.Connection, name: str, now: dt.datetime, bad_row: BadRow) -> Iterator[Record]:
    """Return the records of the export named name (one of EXPORTS)."""
    if name == "cases.json":
        return nested_cases(connection, bad_row)
    if name == "users.json":
        return users_without_secrets(connection)
    return recent_audit_logs(connection, now)
