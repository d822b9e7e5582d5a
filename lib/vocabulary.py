"""The words of the data model (docs/data-model.md), said once: roles, statuses, categories, priorities.

The schema's partial indexes and the jobs' queries are both built from
these, so their WHERE clauses are the same text: SQLite uses a partial index
only when the query's condition matches the index's, term for term. A test
(tests/unit/test_query_plans.py) checks every pending and SLA query's plan.
"""

from __future__ import annotations

from collections.abc import Iterable

ADMIN = "ADMIN"  # who answers for an item nobody else does
INTERNAL_ROLES = (ADMIN, "LAWYER", "PARALEGAL")  # the people who get summaries and digests
ROLES = (*INTERNAL_ROLES, "CLIENT", "EXTERNAL")
OPEN_TASK_STATUSES = ("TODO", "IN_PROGRESS", "BLOCKED")  # tasks and subtasks alike
PENDING_CASE_STATUSES = ("OPEN", "IN_PROGRESS")  # a lawyer's pending cases; the cases dailySync refreshes
SLA_CASE_STATUSES = ("OPEN", "IN_PROGRESS", "ON_HOLD")  # cases an SLA applies to
SCHEDULED_HEARING = "SCHEDULED"
PENDING_REVIEW = "PENDING_REVIEW"  # orders (review_status) and documents (status)
DRAFT = "DRAFT"  # worklogs and documents
SUBMITTED_WORKLOG = "SUBMITTED"
PENDING_LEAVE = "PENDING"
CATEGORIES = ("RESEARCH", "DRAFTING", "FILING", "HEARING_PREP", "CLIENT_COMMUNICATION", "ADMINISTRATIVE")
PRIORITIES = ("LOW", "MEDIUM", "HIGH", "URGENT")
WORKLOAD_LEVELS = ("LOW", "MODERATE", "HIGH", "CRITICAL")


def words(values: Iterable[str]) -> str:
    """Given words, return them as an SQL list: ('TODO', 'IN_PROGRESS', 'BLOCKED')."""
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


def one_of(column: str, values: Iterable[str]) -> str:
    """Return the SQL condition `column IN (...)` over the given words."""
    return f"{column} IN {words(values)}"


def equals(column: str, value: str) -> str:
    """Return the SQL condition `column = 'VALUE'`."""
    return f"{column} = '{value}'"


OPEN_TASK = words(OPEN_TASK_STATUSES)
PENDING_CASE = words(PENDING_CASE_STATUSES)
SLA_CASE = words(SLA_CASE_STATUSES)
INTERNAL = words(INTERNAL_ROLES)
