"""The backup's JSON exports: cases with their children nested in case order, confidential text redacted, a row
that cannot be exported (a BLOB, text that is not UTF-8) skipped and named alone, and write_json_array's stream
(valid JSON, a stop check every batch)."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from lib.exports import EXPORT_BATCH, NOT_TEXT, nested_cases, open_copy, users_without_secrets, write_json_array
from lib.migration import migrate_all
from lib.redaction import REDACTED
from tests.builders import Dataset


@pytest.fixture
def connection() -> Iterator[sqlite3.Connection]:
    """An in-memory database at the current schema."""
    database = sqlite_utils.Database(memory=True)
    migrate_all(database)
    yield database.conn
    database.close()


class BadRows:
    """Collects what write_json_array reports as bad rows."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, Any, str]] = []

    def __call__(self, table: str, row_id: Any, reason: str) -> None:
        self.rows.append((table, row_id, reason))


def encoded(records: list[dict[str, Any]]) -> list[tuple[Any, bytes]]:
    """The (id, JSON) records an exporter yields, for the given rows."""
    return [(record["id"], json.dumps(record, separators=(",", ":")).encode()) for record in records]


def written(records: list[tuple[Any, bytes | None]], table: str = "users") -> tuple[Any, int, BadRows, int]:
    """Write records as one array; return the parsed JSON, the count written, the bad rows and the checkpoints."""
    writer, bad_rows, checkpoints = io.BytesIO(), BadRows(), []
    count = write_json_array(writer, iter(records), table, lambda: checkpoints.append(1), bad_rows)
    return json.loads(writer.getvalue()), count, bad_rows, len(checkpoints)


def cases_of(connection: sqlite3.Connection, bad_rows: BadRows | None = None) -> list[dict[str, Any]]:
    """Every case as nested_cases exports it, parsed."""
    return [json.loads(data) for _, data in nested_cases(connection, bad_rows or BadRows()) if data is not None]


def test_children_are_nested_under_their_case_in_case_order(connection: sqlite3.Connection) -> None:
    data = Dataset(connection)
    lawyer = data.user()
    first, second = data.case(lawyer), data.case(lawyer)
    late_task = data.task(second, lawyer, title="Second's task")
    early_task = data.task(first, lawyer, title="First's task")
    data.subtask(early_task, lawyer, title="Step one")
    data.hearing(first, "2026-12-01", lawyer)
    data.hearing(first, "2026-11-01", lawyer)
    data.document(second, "DRAFT", lawyer, title="Affidavit")
    data.task(999, lawyer, title="Orphan")  # its case does not exist: exported nowhere

    cases = cases_of(connection)
    assert [case["id"] for case in cases] == [first, second]
    one, two = cases
    assert [(task["id"], task["title"]) for task in one["tasks"]] == [(early_task, "First's task")]
    assert [subtask["title"] for subtask in one["tasks"][0]["subtasks"]] == ["Step one"]
    assert [hearing["hearing_date"] for hearing in one["hearings"]] == ["2026-11-01", "2026-12-01"]
    assert (one["orders"], one["documents"]) == ([], [])
    assert [(task["id"], task["subtasks"]) for task in two["tasks"]] == [(late_task, [])]
    assert [document["title"] for document in two["documents"]] == ["Affidavit"]
    assert all("_case_id" not in task for case in cases for task in case["tasks"])


def test_a_confidential_cases_text_and_its_childrens_are_redacted(connection: sqlite3.Connection) -> None:
    data = Dataset(connection)
    lawyer = data.user()
    open_case = data.case(lawyer, title="Open matter", description="Public facts")
    secret = data.case(lawyer, is_confidential=1, title="Secret merger", client_name="Acme", description="Terms")
    task = data.task(secret, lawyer, title="Draft the merger deed")
    data.subtask(task, lawyer, title="Call Acme's CFO")
    connection.execute(
        "INSERT INTO hearings (case_id, hearing_date, status, purpose, outcome) VALUES (?, '2026-12-01', 'SCHEDULED', "
        "'Merger approval', NULL)",
        (secret,),
    )
    data.order(secret, lawyer, summary="Merger stayed", document_url="https://court.example/o/1")
    data.document(secret, "DRAFT", lawyer, title="Merger deed")
    data.task(open_case, lawyer, title="File reply")

    public, hidden = cases_of(connection)
    assert (public["title"], public["description"], public["tasks"][0]["title"]) == (
        "Open matter",
        "Public facts",
        "File reply",
    )
    assert (hidden["title"], hidden["client_name"], hidden["description"]) == (REDACTED, REDACTED, REDACTED)
    assert hidden["case_number"].startswith("CASE-2026-")  # not free text: kept
    assert hidden["tasks"][0]["title"] == REDACTED
    assert hidden["tasks"][0]["subtasks"][0]["title"] == REDACTED
    assert (hidden["hearings"][0]["purpose"], hidden["hearings"][0]["outcome"]) == (REDACTED, None)
    assert (hidden["orders"][0]["summary"], hidden["orders"][0]["document_url"]) == (REDACTED, REDACTED)
    assert hidden["documents"][0]["title"] == REDACTED
    assert "Merger" not in json.dumps([public, hidden])


def test_users_are_exported_without_their_secrets(connection: sqlite3.Connection) -> None:
    Dataset(connection).user(name="Asha Rao")
    ((_, data),) = users_without_secrets(connection)
    user = json.loads(data)
    assert user["name"] == "Asha Rao"
    assert not {"password_hash", "api_token", "phone"} & set(user)


def test_records_are_written_as_one_valid_json_array_a_record_per_line() -> None:
    records = [{"id": 1, "name": "Asha"}, {"id": 2, "name": 'Ravi "R" Kumar\n'}]
    parsed, count, bad_rows, _ = written(encoded(records))
    assert (parsed, count, bad_rows.rows) == (records, 2, [])
    writer = io.BytesIO()
    write_json_array(writer, iter(encoded(records)), "users", lambda: None, BadRows())
    assert len(writer.getvalue().splitlines()) == 4  # "[", a line each, "]"
    empty, none_written, _, _ = written([])
    assert (empty, none_written) == ([], 0)


@pytest.mark.parametrize(
    ("records", "checkpoints"), [(EXPORT_BATCH, 0), (EXPORT_BATCH + 1, 1), (2 * EXPORT_BATCH + 1, 2)]
)
def test_the_stop_check_is_called_once_every_batch_of_records(records: int, checkpoints: int) -> None:
    parsed, count, _, called = written(encoded([{"id": number} for number in range(records)]))
    assert (len(parsed), count, called) == (records, records, checkpoints)


def test_a_checkpoint_that_raises_stops_the_stream() -> None:
    def stop() -> None:
        raise RuntimeError("stop requested")

    writer = io.BytesIO()
    with pytest.raises(RuntimeError, match="stop requested"):
        write_json_array(
            writer, iter(encoded([{"id": number} for number in range(EXPORT_BATCH + 5)])), "users", stop, BadRows()
        )
    assert writer.getvalue().count(b"\n{") == EXPORT_BATCH  # the first batch only
    assert writer.getvalue().endswith(b'{"id":%d}' % (EXPORT_BATCH - 1))


def test_a_row_with_a_blob_or_text_that_is_not_utf8_is_skipped_and_named(connection: sqlite3.Connection) -> None:
    data = Dataset(connection)
    fine, blob, bad_text, last = (data.user(name=name) for name in ("Asha", "Blob", "Bad", "Last"))
    connection.execute("UPDATE users SET name = x'0001' WHERE id = ?", (blob,))
    connection.execute("UPDATE users SET name = CAST(x'4266ff' AS TEXT) WHERE id = ?", (bad_text,))
    parsed, count, bad_rows, _ = written(list(users_without_secrets(connection)))
    assert [record["id"] for record in parsed] == [fine, last]
    assert count == 2
    assert bad_rows.rows == [("users", blob, NOT_TEXT), ("users", bad_text, NOT_TEXT)]


def test_a_case_drops_only_its_children_that_cannot_be_exported(connection: sqlite3.Connection) -> None:
    data = Dataset(connection)
    lawyer = data.user()
    case = data.case(lawyer, title="Fine")
    good_task, bad_task = data.task(case, lawyer, title="ok"), data.task(case, lawyer, title="bad")
    good_subtask, bad_subtask = data.subtask(good_task, lawyer, title="ok"), data.subtask(good_task, lawyer)
    hearing = data.hearing(case, "2026-12-01", lawyer)
    document = data.document(case, "DRAFT", lawyer, title="deed")
    connection.execute("UPDATE tasks SET title = CAST(x'ff' AS TEXT) WHERE id = ?", (bad_task,))
    connection.execute("UPDATE subtasks SET title = CAST(x'fe41' AS TEXT) WHERE id = ?", (bad_subtask,))
    connection.execute("UPDATE hearings SET purpose = x'ff' WHERE id = ?", (hearing,))
    bad_rows = BadRows()
    (kept,) = cases_of(connection, bad_rows)
    assert [task["id"] for task in kept["tasks"]] == [good_task]
    assert [subtask["id"] for subtask in kept["tasks"][0]["subtasks"]] == [good_subtask]
    assert (kept["hearings"], [document["id"] for document in kept["documents"]]) == ([], [document])
    assert sorted(bad_rows.rows) == [
        ("hearings", hearing, NOT_TEXT),
        ("subtasks", bad_subtask, NOT_TEXT),
        ("tasks", bad_task, NOT_TEXT),
    ]


def test_text_that_is_not_utf8_in_a_copy_costs_only_its_own_row(tmp_path: Path) -> None:
    path = tmp_path / "copy.db"
    database = sqlite_utils.Database(path)
    migrate_all(database)
    data = Dataset(database.conn)
    lawyer = data.user()
    case = data.case(lawyer)
    task = data.task(case, lawyer)
    database.conn.execute("UPDATE tasks SET title = CAST(x'4166666964ff' AS TEXT) WHERE id = ?", (task,))
    database.conn.commit()
    database.close()

    copy = open_copy(str(path))
    try:
        writer, bad_rows = io.BytesIO(), BadRows()
        count = write_json_array(writer, nested_cases(copy, bad_rows), "cases", lambda: None, bad_rows)
    finally:
        copy.close()
    (exported,) = json.loads(writer.getvalue())
    assert (count, exported["id"], exported["tasks"]) == (1, case, [])
    assert bad_rows.rows == [("tasks", task, NOT_TEXT)]
