"""Every pending and SLA query reads the index it was written for.

The plans are recorded here: a change of plan (a reordered status list, a
dropped index) fails this test, so that it is a deliberate change of the
test. The schema's partial indexes and the queries are both built from
lib/vocabulary.py.
"""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from jobs import sla_check
from jobs.user_pending_refresh import SOURCES
from lib.migration import migrate_all

PARAMETERS = {
    "today": "2026-11-28",
    "week_start": "2026-11-23",
    "week_end": "2026-11-29",
    "month_start": "2026-11-01",
    "month_end": "2026-11-30",
    "horizon": "2026-12-01",
    "bad_dates": "[]",
    "cap": 50,
}
PENDING_PLANS = [
    ("subtasks", ["SCAN s USING INDEX subtasks_pending_by_task", "SEARCH t USING INTEGER PRIMARY KEY (rowid=?)"]),
    ("tasks", ["SEARCH tasks USING INDEX tasks_pending_by_assignee (assignee_id>?)"]),
    ("team", ["SCAN t USING INDEX tasks_open_by_due", "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"]),
    ("hearings", ["SEARCH hearings USING INDEX hearings_pending_by_attendee (attendee_id>?)"]),
    ("cases", ["SEARCH cases USING INDEX cases_pending_by_lawyer (lawyer_id>?)"]),
    ("documents", ["SEARCH documents USING INDEX documents_review_by_reviewer (reviewer_id>?)"]),
    ("documents", ["SEARCH documents USING INDEX documents_draft_by_owner (owner_id>?)"]),
    ("worklogs", ["SCAN worklogs USING INDEX worklogs_draft_by_user"]),
    ("worklogs", ["SEARCH worklogs USING INDEX worklogs_submitted_by_approver (approver_id>?)"]),
    ("orders", ["SEARCH orders USING INDEX orders_pending_by_reviewer (reviewer_id>?)"]),
    ("leave_requests", ["SEARCH leave_requests USING INDEX leave_requests_pending_by_approver (approver_id>?)"]),
]
SLA_PLANS = [
    (
        sla_check.DIRECT_FIRST,
        [
            "SEARCH t USING INDEX tasks_open_by_assignee_due (assignee_id=? AND due_date<?)",
            "SEARCH cut USING INDEX tasks_open_by_assignee_due (assignee_id=? AND due_date<?)",
        ],
    ),
    (sla_check.DIRECT_TOTALS, ["SEARCH tasks USING INDEX tasks_open_by_assignee_due (assignee_id=? AND due_date<?)"]),
    (
        sla_check.OTHER_FIRST,
        [
            "SEARCH c USING INDEX cases_open_by_due (expected_completion_date<?)",
            "SCAN tasks USING INDEX tasks_pending_unassigned",
            "SEARCH tasks USING INDEX tasks_open_by_assignee_due (assignee_id>?)",
        ],
    ),
]


@pytest.fixture(scope="module")
def connection() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    migrate_all(sqlite_utils.Database(connection))
    return connection


def plan(connection: sqlite3.Connection, sql: str) -> list[str]:
    return [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", PARAMETERS)]


@pytest.mark.parametrize(
    ("number", "expected"), list(enumerate(PENDING_PLANS)), ids=[name for name, _ in PENDING_PLANS]
)
def test_each_pending_source_reads_its_partial_index(connection, number: int, expected: tuple[str, list[str]]) -> None:
    figure, steps = expected
    source = SOURCES[number]
    assert source.figure == figure
    found = plan(connection, source.sql)
    assert found[: len(steps)] == steps, found


@pytest.mark.parametrize(("sql", "steps"), SLA_PLANS, ids=["direct first", "direct totals", "other first"])
def test_each_sla_query_reads_the_open_items_from_an_index_never_a_table_scan(
    connection, sql: str, steps: list[str]
) -> None:
    found = plan(connection, sql)
    assert all(step in found for step in steps), found
    assert not any(step.startswith("SCAN") and "INDEX" not in step for step in found if " tasks" in step), found
