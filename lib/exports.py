"""The JSON exports of a backup package: every case with its children nested, the users without their
secrets, the recent audit rows; streamed from the copy one record at a time, so memory stays flat.

Each exporter takes a plain sqlite3 connection and yields dicts; write_json_array() turns them into
one JSON array, a record per line, and skips (and names) a record that cannot be written. A
confidential case's text is redacted by the one rule of lib/redaction.py.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from lib.clock import format_utc
from lib.redaction import redact_row

SENSITIVE_USER_COLUMNS = ("password_hash", "api_token", "phone")
EXPORT_BATCH = 1000  # records between two stop checks
AUDIT_DAYS = 30
NOT_TEXT = "cannot be exported: a value is not UTF-8 text"
BadRow = Callable[[str, Any, str], None]  # (table, id, reason)


def _rows(connection: sqlite3.Connection, sql: str, parameters: Any = ()) -> Iterator[dict[str, Any]]:
    cursor = connection.execute(sql, parameters)
    names = [column[0] for column in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def _grouped(rows: Iterator[dict[str, Any]], key: str) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """Given rows ordered by key, yield (key value, its rows), dropping the key column."""
    current: Any = None
    batch: list[dict[str, Any]] = []
    for row in rows:
        value = row.pop(key)
        if batch and value != current:
            yield current, batch
            batch = []
        current = value
        batch.append(row)
    if batch:
        yield current, batch


class _Children:
    """One child table read in case order, handing out each case's rows as the cases go by."""

    def __init__(self, rows: Iterator[dict[str, Any]]) -> None:
        self._groups = _grouped(rows, "_case_id")
        self._pending = next(self._groups, None)

    def of(self, case_id: int) -> list[dict[str, Any]]:
        while self._pending is not None and (type(self._pending[0]) is not int or self._pending[0] < case_id):
            self._pending = next(self._groups, None)  # rows of cases that do not exist are not exported
        if self._pending is not None and self._pending[0] == case_id:
            rows = self._pending[1]
            self._pending = next(self._groups, None)
            return rows
        return []


def nested_cases(connection: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Yield each case with its tasks (each with its subtasks), hearings, orders and documents.

    Every table is read once, in case order, and merged as it streams: memory
    holds one case at a time, whatever the size of the database.
    """
    children = {
        "tasks": _Children(_rows(connection, "SELECT case_id AS _case_id, * FROM tasks ORDER BY case_id, id")),
        "hearings": _Children(
            _rows(connection, "SELECT case_id AS _case_id, * FROM hearings ORDER BY case_id, hearing_date, id")
        ),
        "orders": _Children(
            _rows(connection, "SELECT case_id AS _case_id, * FROM orders ORDER BY case_id, kind, order_no, id")
        ),
        "documents": _Children(_rows(connection, "SELECT case_id AS _case_id, * FROM documents ORDER BY case_id, id")),
    }
    subtasks = _Children(
        _rows(
            connection,
            "SELECT t.case_id AS _case_id, s.* FROM subtasks AS s JOIN tasks AS t ON t.id = s.task_id "
            "ORDER BY t.case_id, s.task_id, s.id",
        )
    )
    for case in _rows(connection, "SELECT * FROM cases ORDER BY id"):
        confidential = bool(case.get("is_confidential"))
        redact_row("cases", case, confidential)
        for name, table in children.items():
            case[name] = [redact_row(name, row, confidential) for row in table.of(case["id"])]
        by_task: dict[int, list[dict[str, Any]]] = {}
        for subtask in subtasks.of(case["id"]):
            by_task.setdefault(subtask["task_id"], []).append(redact_row("subtasks", subtask, confidential))
        for task in case["tasks"]:
            task["subtasks"] = by_task.get(task["id"], [])
        yield case


NESTED = (("tasks", "tasks"), ("hearings", "hearings"), ("orders", "orders"), ("documents", "documents"))


def _encoded(record: dict[str, Any]) -> bytes | None:
    """Return the record as JSON, or None when a value cannot be (text that is not UTF-8, a BLOB)."""
    try:
        return orjson.dumps(record)
    except (TypeError, orjson.JSONEncodeError):
        return None


def _without_bad_children(case: dict[str, Any], bad_row: BadRow) -> dict[str, Any]:
    """Drop (and name) each child row of the case that cannot be exported, so that the rest still is."""
    for key, table in NESTED:
        kept = []
        for row in case.get(key, []):
            if key == "tasks":
                subtasks = row.get("subtasks", [])
                row["subtasks"] = [subtask for subtask in subtasks if _encoded(subtask) is not None]
                for subtask in subtasks:
                    if _encoded(subtask) is None:
                        bad_row("subtasks", subtask.get("id"), NOT_TEXT)
            if _encoded(row) is None:
                bad_row(table, row.get("id"), NOT_TEXT)
            else:
                kept.append(row)
        case[key] = kept
    return case


def write_json_array(
    writer: Any, records: Iterator[dict[str, Any]], table: str, checkpoint: Callable[[], None], bad_row: BadRow
) -> int:
    """Stream records into writer (anything with write(bytes)) as one JSON array, one record per line.

    checkpoint() is called every EXPORT_BATCH records (it raises to stop). A
    record that cannot be written (text that is not UTF-8, a BLOB) is passed
    to bad_row and skipped; a case drops only its bad children. Return how
    many records were written.
    """
    writer.write(b"[\n")
    written = 0
    for number, record in enumerate(records):
        if number and number % EXPORT_BATCH == 0:
            checkpoint()
        data = _encoded(record)
        if data is None and table == "cases":
            data = _encoded(_without_bad_children(record, bad_row))
        if data is None:
            bad_row(table, record.get("id"), NOT_TEXT)
            continue
        writer.write((b",\n" if written else b"") + data)
        written += 1
    writer.write(b"\n]\n")
    return written


def users_without_secrets(connection: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Yield every user without the sensitive columns of data-model.md."""
    for user in _rows(connection, "SELECT * FROM users ORDER BY id"):
        for column in SENSITIVE_USER_COLUMNS:
            user.pop(column, None)
        yield user


def recent_audit_logs(connection: sqlite3.Connection, now: dt.datetime) -> Iterator[dict[str, Any]]:
    """Yield the audit rows of the last 30 days."""
    since = format_utc(now - dt.timedelta(days=AUDIT_DAYS))
    return _rows(connection, "SELECT * FROM audit_logs WHERE created_at >= ? ORDER BY created_at, id", (since,))


def table_counts(connection: sqlite3.Connection) -> dict[str, int]:
    """Return the row count of every table of the copy."""
    names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def open_copy(path: str) -> sqlite3.Connection:
    """Open a database copy read-only for exporting: text that is not UTF-8 is read as it is (with
    surrogates), so that the one row holding it is skipped rather than the whole export failing."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    connection.text_factory = lambda data: data.decode("utf-8", "surrogateescape")
    return connection


def exports(connection: sqlite3.Connection, now: dt.datetime) -> list[tuple[str, str, Iterator[dict[str, Any]]]]:
    """Return (member name, table, records) of every JSON export, in the order they are written."""
    return [
        ("cases.json", "cases", nested_cases(connection)),
        ("users.json", "users", users_without_secrets(connection)),
        ("audit-logs.json", "audit_logs", recent_audit_logs(connection, now)),
    ]
