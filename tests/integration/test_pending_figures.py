"""The pending figures of data-model.md on small hand-made datasets with known answers.

The job runs in-process through the real harness against a real SQLite file,
with the clock frozen by CASEJOBS_NOW. Wednesday 2026-11-25 IST is "today"
unless a test says otherwise: its week runs Monday 23 to Sunday 29 November.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from jobs.user_pending_refresh import SPEC
from lib.harness import RunOptions, run_job
from tests.builders import Dataset

WEDNESDAY_NOON_IST = "2026-11-25T12:00:00+05:30"


@pytest.fixture
def refresh(job_environment: Path, database_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Return a function that runs the refresh at a frozen instant and returns the summaries by user."""

    def run_at(now: str = WEDNESDAY_NOON_IST) -> dict[int, dict]:
        monkeypatch.setenv("CASEJOBS_NOW", now)
        assert run_job(SPEC, RunOptions(log_format="json")) == 0
        connection = sqlite3.connect(database_path)
        connection.row_factory = sqlite3.Row
        rows = {row["user_id"]: dict(row) for row in connection.execute("SELECT * FROM user_pending_summaries")}
        connection.close()
        return rows

    return run_at


def test_due_dates_fall_into_ist_periods(dataset: Dataset, refresh) -> None:
    lawyer = dataset.user()
    case = dataset.case(lawyer_id=None)
    for due in ("2026-11-22", "2026-11-24", "2026-11-25", "2026-11-29", "2026-11-30", "2026-12-01", None):
        dataset.task(case, lawyer, due_date=due)
    dataset.task(case, lawyer, status="DONE", due_date="2026-11-24")
    dataset.task(case, lawyer, status="CANCELLED", due_date="2026-11-24")

    summary = refresh()[lawyer]

    assert summary["tasks"] == 7
    assert summary["overdue"] == 2  # Sunday the 22nd and yesterday
    assert summary["due_today"] == 1
    assert summary["due_this_week"] == 3  # the 24th, 25th and Sunday the 29th
    assert summary["due_this_month"] == 5  # all but December and the undated one


@pytest.mark.parametrize(
    ("now_utc", "expected_overdue", "expected_today"),
    [
        ("2026-11-24T18:29:59Z", 0, 1),  # 23:59:59 IST on the 24th: still the due day
        ("2026-11-24T18:30:00Z", 1, 0),  # 00:00 IST on the 25th, though UTC still says the 24th
    ],
)
def test_the_day_turns_at_midnight_ist_not_utc(
    dataset: Dataset, refresh, now_utc: str, expected_overdue: int, expected_today: int
) -> None:
    lawyer = dataset.user()
    dataset.task(dataset.case(), lawyer, due_date="2026-11-24")

    summary = refresh(now_utc)[lawyer]

    assert (summary["overdue"], summary["due_today"]) == (expected_overdue, expected_today)


def test_week_and_month_turn_at_midnight_ist(dataset: Dataset, refresh) -> None:
    lawyer = dataset.user()
    case = dataset.case()
    dataset.task(case, lawyer, due_date="2026-11-29")  # a Sunday
    dataset.task(case, lawyer, due_date="2026-11-30")  # the last day of November, a Monday

    sunday_night = refresh("2026-11-29T18:29:00Z")[lawyer]
    monday = refresh("2026-11-29T18:30:00Z")[lawyer]
    first_of_december = refresh("2026-11-30T18:30:00Z")[lawyer]

    assert (sunday_night["due_this_week"], sunday_night["due_this_month"]) == (1, 2)
    assert (monday["due_this_week"], monday["due_today"], monday["due_this_month"]) == (1, 1, 2)
    assert (first_of_december["due_this_month"], first_of_december["overdue"]) == (0, 2)


def test_every_category_counts_only_pending_items(dataset: Dataset, refresh) -> None:
    user = dataset.user()
    other = dataset.user(role="PARALEGAL")
    dataset.case(lawyer_id=user, status="OPEN")
    dataset.case(lawyer_id=user, status="IN_PROGRESS")
    dataset.case(lawyer_id=user, status="ON_HOLD")  # on hold is not pending work
    closed = dataset.case(lawyer_id=user, status="CLOSED")
    dataset.task(closed, user, status="IN_PROGRESS")
    dataset.task(closed, user, status="BLOCKED")
    dataset.subtask(dataset.task(closed, other, status="DONE"), user, status="TODO")
    dataset.subtask(dataset.task(closed, other, status="DONE"), user, status="DONE")
    dataset.hearing(closed, "2026-11-26", user, status="SCHEDULED")
    dataset.hearing(closed, "2026-11-20", user, status="HELD")
    dataset.order(closed, user, review_status="PENDING_REVIEW")
    dataset.order(closed, user, review_status="REVIEWED")
    dataset.worklog(user, status="DRAFT")
    dataset.worklog(user, status="SUBMITTED", approver_id=other)  # pending for the approver, not for the author
    dataset.worklog(other, status="SUBMITTED", approver_id=user)
    dataset.worklog(other, status="DRAFT", approver_id=user)  # another person's draft
    dataset.leave_request(other, user, "2026-11-27")
    dataset.leave_request(other, user, "2026-11-27", status="APPROVED")
    dataset.document(closed, "PENDING_REVIEW", owner_id=other, reviewer_id=user)
    dataset.document(closed, "DRAFT", owner_id=user, reviewer_id=other)
    dataset.document(closed, "FILED", owner_id=user, reviewer_id=user)

    summaries = refresh()
    summary = summaries[user]

    expected = {"cases": 2, "tasks": 2, "subtasks": 1, "hearings": 1, "orders": 1}
    expected |= {"worklogs": 2, "leave_requests": 1, "documents": 2, "team": 0}
    assert {figure: summary[figure] for figure in expected} == expected
    assert summary["total"] == sum(expected.values())
    assert summaries[other]["worklogs"] == 2  # their own draft and the one they must approve


def test_inactive_users_and_clients_get_no_summary(dataset: Dataset, refresh, database_path: Path) -> None:
    active = dataset.user()
    inactive = dataset.user(is_active=0)
    client = dataset.user(role="CLIENT")
    external = dataset.user(role="EXTERNAL")
    case = dataset.case(lawyer_id=inactive)
    for user in (active, inactive, client, external):
        dataset.task(case, user, due_date="2026-11-20")

    first = refresh()
    dataset.connection.execute("UPDATE users SET is_active = 0 WHERE id = ?", (active,))
    dataset.connection.commit()
    second = refresh()

    assert set(first) == {active}
    assert first[active]["tasks"] == 1
    assert second == {}  # the row of a user who stopped being active is removed


def test_a_subtask_takes_its_tasks_priority(dataset: Dataset, refresh) -> None:
    owner, helper = dataset.user(), dataset.user(role="PARALEGAL")
    case = dataset.case()
    urgent_task = dataset.task(case, owner, status="DONE", priority="URGENT")
    dataset.subtask(urgent_task, helper, due_date="2026-11-26")
    dataset.subtask(dataset.task(case, owner, status="DONE", priority="LOW"), helper)

    summary = refresh()[helper]

    assert summary["subtasks"] == 2
    assert summary["urgent"] == 1
    assert json.loads(summary["by_priority"]) == {"LOW": 1, "MEDIUM": 0, "HIGH": 0, "URGENT": 1}


def test_a_team_lead_counts_the_unassigned_tasks_of_their_team(dataset: Dataset, refresh) -> None:
    lead, member, other_lead = dataset.user(), dataset.user(role="PARALEGAL"), dataset.user()
    team = dataset.team(lead)
    other_team = dataset.team(other_lead)
    case = dataset.case(team_id=team)
    dataset.task(case, None, priority="URGENT", due_date="2026-11-24")
    dataset.task(case, None, status="BLOCKED")
    dataset.task(case, None, status="DONE")
    dataset.task(case, member)
    dataset.task(dataset.case(team_id=other_team), None)

    summaries = refresh()

    assert summaries[lead]["team"] == 2
    assert (summaries[lead]["urgent"], summaries[lead]["overdue"]) == (1, 1)
    assert summaries[lead]["tasks"] == 0
    assert summaries[member]["team"] == 0
    assert summaries[other_lead]["team"] == 1


def test_urgent_and_priorities_come_from_cases_and_tasks(dataset: Dataset, refresh) -> None:
    lawyer = dataset.user()
    case = dataset.case(lawyer_id=lawyer, priority="URGENT", expected_completion_date="2026-11-25")
    dataset.task(case, lawyer, priority="HIGH", category="FILING")
    dataset.task(case, lawyer, priority="URGENT", category="RESEARCH")
    dataset.hearing(case, "2026-11-25", lawyer)  # a hearing has no priority

    summary = refresh()[lawyer]

    assert summary["urgent"] == 2
    assert json.loads(summary["by_priority"]) == {"LOW": 0, "MEDIUM": 0, "HIGH": 1, "URGENT": 2}
    by_category = json.loads(summary["tasks_by_category"])
    assert (by_category["FILING"], by_category["RESEARCH"], by_category["DRAFTING"]) == (1, 1, 0)
    assert summary["due_today"] == 2  # the case and the hearing


@pytest.mark.parametrize(
    ("count", "level"), [(10, "LOW"), (11, "MODERATE"), (15, "MODERATE"), (16, "HIGH"), (21, "CRITICAL")]
)
def test_the_workload_level_is_written_for_each_user(dataset: Dataset, refresh, count: int, level: str) -> None:
    lawyer = dataset.user()
    case = dataset.case()
    for _ in range(count):
        dataset.task(case, lawyer)

    assert refresh()[lawyer]["workload_level"] == level
