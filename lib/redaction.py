"""One redaction rule for confidential cases, used wherever case data leaves the database.

For a case with is_confidential = 1, its own title, client and description
are redacted, and so are the titles and free text of everything that belongs
to it: tasks, subtasks, hearings (purpose and outcome), orders (summary and
document link), documents and worklogs. This holds for the backup's JSON
exports, mail, in-app notifications and logs; the binary database copy in
the backup package is the one exception (data-model.md).
"""

from __future__ import annotations

from typing import Any

REDACTED = "[redacted]"

# The columns of free text, per table, that a confidential case's rows never show.
CONFIDENTIAL_TEXT: dict[str, tuple[str, ...]] = {
    "cases": ("title", "client_name", "description"),
    "tasks": ("title",),
    "subtasks": ("title",),
    "hearings": ("purpose", "outcome"),
    "orders": ("summary", "document_url"),
    "documents": ("title",),
    "worklogs": ("description",),
}


def redact_row(table: str, row: dict[str, Any], confidential: bool) -> dict[str, Any]:
    """Given a row of table that belongs to a case, blank its free text in place if the case is confidential.

    A column that is NULL stays NULL (its absence tells nothing). Return the row.
    """
    if confidential:
        for column in CONFIDENTIAL_TEXT.get(table, ()):
            if row.get(column) is not None:
                row[column] = REDACTED
    return row


def shown_text(table: str, column: str, value: str | None, confidential: bool) -> str | None:
    """Given one value of a case's row, return what may be shown of it: the value, or REDACTED."""
    if confidential and value is not None and column in CONFIDENTIAL_TEXT.get(table, ()):
        return REDACTED
    return value
