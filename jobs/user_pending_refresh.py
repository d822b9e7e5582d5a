"""userPendingRefresh: each active internal user's pending-work summary and workload level.

Every figure of data-model.md's "pending" table comes from one grouped query
per kind of item, over all users at once, read from the partial indexes of
lib/schema.py (so only open items are touched). The figures are merged in
Python and written in one transaction: the application sees either the old
summary set or the new one, never a mix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from jobs import USER_PENDING_REFRESH as SPEC
from lib.cli import job_command, main
from lib.clock import Periods, format_utc, periods_for
from lib.dates import bad_date_values, rows_with_bad_dates
from lib.db import parallel_readers, write_transaction
from lib.harness import RunContext
from lib.jobspec import Outcome
from lib.vocabulary import (
    CATEGORIES,
    DRAFT,
    INTERNAL_ROLES,
    OPEN_TASK,
    PENDING_CASE,
    PENDING_LEAVE,
    PENDING_REVIEW,
    PRIORITIES,
    SCHEDULED_HEARING,
    SUBMITTED_WORKLOG,
    equals,
)

FIGURES = ("cases", "tasks", "subtasks", "hearings", "orders", "worklogs", "leave_requests", "documents", "team")

WRITE_BATCH = 100  # summaries per upsert statement batch, all inside one transaction
SUMMARY_COLUMNS = (
    "user_id", *FIGURES, "tasks_by_category", "total", "overdue", "due_today", "due_this_week", "due_this_month",
    "urgent", "by_priority", "workload_level", "refreshed_at",
)  # fmt: skip
# Plain SQL rather than sqlite-utils' upsert_all, which would create a missing table with guessed types.
UPSERT = (
    f"INSERT INTO user_pending_summaries ({', '.join(SUMMARY_COLUMNS)}) "
    f"VALUES ({', '.join(':' + column for column in SUMMARY_COLUMNS)}) "
    f"ON CONFLICT (user_id) DO UPDATE SET {', '.join(f'{column} = excluded.{column}' for column in SUMMARY_COLUMNS[1:])}"
)

# (level, highest total, highest urgent, highest overdue) for every level but CRITICAL.
WORKLOAD_LEVELS = (("LOW", 10, 2, 1), ("MODERATE", 15, 3, 2), ("HIGH", 20, 5, 3))


def _buckets(due: str | None, without_bad_dates: bool = False) -> str:
    """Return the SELECT columns that count a group's items by due date, in IST periods, and the
    items whose due date is no calendar day. `date(x, '+0 days')` normalises the date, so it differs
    from x for 2026-02-30 as for 2026-13-45 (plain `date(x)` passes 2026-02-30 through unchanged).

    without_bad_dates leaves the values in :bad_dates (a JSON array) out of the periods.
    """
    if due is None:
        return "0, 0, 0, 0, 0"
    real = f" AND {due} NOT IN (SELECT value FROM json_each(:bad_dates))" if without_bad_dates else ""
    return (
        f"sum({due} < :today{real}), sum({due} = :today{real}), "
        f"sum({due} BETWEEN :week_start AND :week_end{real}), sum({due} BETWEEN :month_start AND :month_end{real}), "
        f"sum({due} IS NOT NULL AND date({due}, '+0 days') IS NOT {due})"
    )


@dataclass(frozen=True)
class Source:
    """One kind of pending item: which figure it feeds and the grouped query that counts it.

    The query yields rows of (user_id, priority, category, count, overdue,
    due_today, due_this_week, due_this_month, bad_dates). dated names the
    plain table, its date column and the filter of its pending rows, to find
    the rows whose date is no calendar day.
    """

    figure: str
    sql: str
    sql_without_bad_dates: str
    dated: tuple[str, str, str] | None


def _source(
    figure: str,
    table: str,
    user: str,
    where: str,
    due: str | None,
    priority: str = "NULL",
    category: str = "NULL",
    joins: str = "",
    dated: tuple[str, str, str] | None = None,
) -> Source:
    group = ", ".join(column for column in (user, priority, category) if column != "NULL")

    def sql(without_bad_dates: bool) -> str:
        return (
            f"SELECT {user}, {priority}, {category}, count(*), {_buckets(due, without_bad_dates)} FROM {table} "
            f"{joins} WHERE {where} AND {user} IS NOT NULL GROUP BY {group}"
        )

    if due is not None and dated is None:
        dated = (table, due, f"{where} AND {user} IS NOT NULL")
    return Source(figure, sql(False), sql(True), dated)


# The biggest sources first, so that the parallel readers finish together.
SOURCES = (
    _source(
        "subtasks",
        "subtasks AS s",
        "s.assignee_id",
        f"s.status IN {OPEN_TASK}",
        "s.due_date",
        priority="t.priority",
        joins="JOIN tasks AS t ON t.id = s.task_id",
        dated=("subtasks", "due_date", f"status IN {OPEN_TASK} AND assignee_id IS NOT NULL"),
    ),
    _source(
        "tasks", "tasks", "assignee_id", f"status IN {OPEN_TASK}", "due_date", priority="priority", category="category"
    ),
    _source(
        "team",
        "tasks AS t",
        "team.lead_id",
        f"t.status IN {OPEN_TASK} AND t.assignee_id IS NULL",
        "t.due_date",
        priority="t.priority",
        joins="JOIN cases AS c ON c.id = t.case_id JOIN teams AS team ON team.id = c.team_id",
        dated=("tasks", "due_date", f"status IN {OPEN_TASK} AND assignee_id IS NULL"),
    ),
    _source("hearings", "hearings", "attendee_id", equals("status", SCHEDULED_HEARING), "hearing_date"),
    _source(
        "cases",
        "cases",
        "lawyer_id",
        f"status IN {PENDING_CASE}",
        "expected_completion_date",
        priority="priority",
    ),
    _source("documents", "documents", "reviewer_id", equals("status", PENDING_REVIEW), "due_date"),
    _source("documents", "documents", "owner_id", equals("status", DRAFT), "due_date"),
    _source("worklogs", "worklogs", "user_id", equals("status", DRAFT), None),
    _source("worklogs", "worklogs", "approver_id", equals("status", SUBMITTED_WORKLOG), None),
    _source("orders", "orders", "reviewer_id", equals("review_status", PENDING_REVIEW), None),
    _source("leave_requests", "leave_requests", "approver_id", equals("status", PENDING_LEAVE), "start_date"),
)


@dataclass
class Summary:
    """One user's figures as they are being added up."""

    user_id: int
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    tasks_by_category: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    by_priority: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRIORITIES, 0))
    overdue: int = 0
    due_today: int = 0
    due_this_week: int = 0
    due_this_month: int = 0

    def add(
        self, figure: str, priority: str | None, category: str | None, count: int, buckets: Iterable[int | None]
    ) -> None:
        """Add one grouped row of a source to this user's figures."""
        self.counts[figure] += count
        if priority in self.by_priority:
            self.by_priority[priority] += count
        if figure == "tasks" and category in self.tasks_by_category:
            self.tasks_by_category[category] += count
        overdue, today, week, month = (value or 0 for value in buckets)
        self.overdue += overdue
        self.due_today += today
        self.due_this_week += week
        self.due_this_month += month

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def urgent(self) -> int:
        return self.by_priority["URGENT"]

    def describe(self) -> str:
        """One line for people: the user's total, overdue, urgent and level."""
        level = workload_level(self.total, self.urgent, self.overdue)
        return f"user {self.user_id}: total {self.total}, overdue {self.overdue}, urgent {self.urgent}, level {level}"

    def row(self, refreshed_at: str) -> dict[str, object]:
        """Return this summary as a user_pending_summaries row."""
        return {
            "user_id": self.user_id,
            **self.counts,
            "tasks_by_category": json.dumps(self.tasks_by_category),
            "total": self.total,
            "overdue": self.overdue,
            "due_today": self.due_today,
            "due_this_week": self.due_this_week,
            "due_this_month": self.due_this_month,
            "urgent": self.urgent,
            "by_priority": json.dumps(self.by_priority),
            "workload_level": workload_level(self.total, self.urgent, self.overdue),
            "refreshed_at": refreshed_at,
        }


def workload_level(total: int, urgent: int, overdue: int) -> str:
    """Given a user's total, urgent and overdue counts, return the highest level any reaches."""
    for level, highest_total, highest_urgent, highest_overdue in WORKLOAD_LEVELS:
        if total <= highest_total and urgent <= highest_urgent and overdue <= highest_overdue:
            return level
    return "CRITICAL"


def active_internal_user_ids(context: RunContext) -> list[int]:
    """Return the ids of active internal users, the only ones who get a summary."""
    placeholders = ", ".join("?" for _ in INTERNAL_ROLES)
    rows = context.database.conn.execute(
        f"SELECT id FROM users WHERE is_active = 1 AND role IN ({placeholders}) ORDER BY id", INTERNAL_ROLES
    )
    return [user_id for (user_id,) in rows]


def compute_summaries(context: RunContext, periods: Periods) -> dict[int, Summary]:
    """Return every active internal user's Summary, counting each source in one grouped query.

    The sources run on parallel_readers(), the biggest first; the job can be
    stopped between any two of them.
    """
    summaries = {user_id: Summary(user_id) for user_id in active_internal_user_ids(context)}
    parameters = vars(periods)
    with parallel_readers(context.settings, context.stop_flag) as run_query:
        counted = list(run_query([(source, source.sql, parameters) for source in SOURCES], context.checkpoint))
    for source, rows in counted:
        if any(row[-1] for row in rows):
            rows = recount_without_bad_dates(context, source, parameters)
        for user_id, priority, category, count, *buckets in rows:
            summary = summaries.get(user_id)
            if summary is not None:
                summary.add(source.figure, priority, category, count, buckets[:4])
    return summaries


def recount_without_bad_dates(context: RunContext, source: Source, parameters: dict[str, str]) -> list[tuple]:
    """Count a source again, its items whose date is no calendar day left out of every period.

    Those items still count as pending; each is a bad row, named by id. Only
    a database holding such dates pays for this second query.
    """
    assert source.dated is not None
    table, column, where = source.dated
    connection = context.database.conn
    bad_values = bad_date_values(connection, table, column, where)
    for row_id in rows_with_bad_dates(connection, table, column, where, bad_values):
        context.bad_row(table, row_id, f"{column} is not a calendar day")
    # A BLOB sorts above every text, so it never falls in a period; JSON could not carry it anyway.
    arguments = {**parameters, "bad_dates": json.dumps([value for value in bad_values if not isinstance(value, bytes)])}
    return connection.execute(source.sql_without_bad_dates, arguments).fetchall()


def write_summaries(context: RunContext, summaries: dict[int, Summary]) -> int:
    """Upsert every summary and remove the rows of users no longer active and internal, in one
    transaction; return how many stale rows were removed.

    A stop asked for between two batches rolls the whole set back: readers see
    the old set or the new one, never a mix.
    """
    refreshed_at = format_utc(context.now)
    rows = [summary.row(refreshed_at) for summary in summaries.values()]
    placeholders = ", ".join("?" for _ in INTERNAL_ROLES)
    context.log.debug("writing summaries", users=len(rows))
    with write_transaction(context.database) as database:
        for start in range(0, len(rows), WRITE_BATCH):
            if start:
                context.checkpoint()
            database.conn.executemany(UPSERT, rows[start : start + WRITE_BATCH])
            context.log.debug("summaries batch written", rows=min(len(rows), start + WRITE_BATCH))
        removed = database.conn.execute(
            f"DELETE FROM user_pending_summaries WHERE user_id NOT IN "
            f"(SELECT id FROM users WHERE is_active = 1 AND role IN ({placeholders}))",
            INTERNAL_ROLES,
        ).rowcount
    return removed


def work(context: RunContext) -> Outcome:
    """The job's work: compute every summary, then write them all at once (unless dry-run)."""
    periods = periods_for(context.today)
    summaries = compute_summaries(context, periods)
    levels = {level: 0 for level in ("LOW", "MODERATE", "HIGH", "CRITICAL")}
    for summary in summaries.values():
        levels[workload_level(summary.total, summary.urgent, summary.overdue)] += 1
    details = context.outcome.details
    details |= {
        "users": len(summaries),
        "pending_total": sum(summary.total for summary in summaries.values()),
        "overdue_total": sum(summary.overdue for summary in summaries.values()),
        "workload_levels": levels,
        "today": periods.today,
    }
    context.checkpoint()
    if context.dry_run:
        context.outcome.plan = (summary.describe() for summary in summaries.values())
        details["removed"] = 0
    else:
        details["removed"] = write_summaries(context, summaries)
    context.outcome.items = len(summaries)
    return context.outcome


command = job_command(SPEC)


def run() -> None:
    """The console script of this job (pyproject.toml): the same as bin/<script>."""
    main(command)


if __name__ == "__main__":
    run()
