"""The one redaction rule of confidential cases: which columns of which tables are blanked, and when."""

from __future__ import annotations

import pytest

from lib.redaction import REDACTED, redact_row, shown_text

ROWS = {
    "cases": {"id": 1, "case_number": "CASE-1", "title": "T", "client_name": "C", "description": "D", "status": "OPEN"},
    "tasks": {"id": 2, "title": "T", "status": "TODO", "due_date": "2026-11-28"},
    "subtasks": {"id": 3, "title": "T", "status": "TODO"},
    "hearings": {"id": 4, "purpose": "P", "outcome": "O", "judge": "J", "hearing_date": "2026-12-01"},
    "orders": {"id": 5, "summary": "S", "document_url": "https://court.example/o/5", "order_no": "12"},
    "documents": {"id": 6, "title": "T", "kind": "AFFIDAVIT"},
    "worklogs": {"id": 7, "description": "D", "hours": 1.5},
}
FREE_TEXT = {
    "cases": {"title", "client_name", "description"},
    "tasks": {"title"},
    "subtasks": {"title"},
    "hearings": {"purpose", "outcome"},
    "orders": {"summary", "document_url"},
    "documents": {"title"},
    "worklogs": {"description"},
}


@pytest.mark.parametrize("table", sorted(ROWS))
def test_a_confidential_cases_rows_lose_their_free_text_and_keep_the_rest(table: str) -> None:
    row = dict(ROWS[table])
    returned = redact_row(table, row, confidential=True)
    assert returned is row
    assert {column for column, value in row.items() if value == REDACTED} == FREE_TEXT[table]
    assert {column: value for column, value in row.items() if column not in FREE_TEXT[table]} == {
        column: value for column, value in ROWS[table].items() if column not in FREE_TEXT[table]
    }


def test_a_case_that_is_not_confidential_keeps_everything() -> None:
    for table, original in ROWS.items():
        assert redact_row(table, dict(original), confidential=False) == original


def test_a_null_stays_null_and_an_absent_column_stays_absent() -> None:
    row = {"id": 4, "purpose": None}
    assert redact_row("hearings", row, confidential=True) == {"id": 4, "purpose": None}


def test_a_table_outside_the_rule_is_left_as_it_is() -> None:
    row = {"id": 9, "title": "Digest", "body": "text"}
    assert redact_row("notifications", dict(row), confidential=True) == row


@pytest.mark.parametrize(
    ("table", "column", "value", "confidential", "shown"),
    [
        ("cases", "title", "Secret merger", True, REDACTED),
        ("tasks", "title", "Draft the deed", True, REDACTED),
        ("cases", "case_number", "CASE-2026-000001", True, "CASE-2026-000001"),
        ("cases", "title", None, True, None),
        ("cases", "title", "", True, REDACTED),
        ("cases", "title", "Open matter", False, "Open matter"),
    ],
)
def test_shown_text_applies_the_same_rule_to_one_value(
    table: str, column: str, value: str | None, confidential: bool, shown: str | None
) -> None:
    assert shown_text(table, column, value, confidential) == shown
