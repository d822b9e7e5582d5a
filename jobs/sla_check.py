"""slaCheck: SLA violations and warnings, one digest a day to each responsible person.

A case or task is a violation when its due date is before today (IST) and a
warning when it is due today or within the next few days (data-model.md).
Each responsible person gets one SLA_DIGEST notification per IST day (its
dedupe_key makes that visible in one line), and the same digest by e-mail
when SMTP is configured. The notification is committed before the mail is
tried, so a failed mail never loses it; FAILED (and never-tried) mails are
retried by the next run of the same day.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from jobs import SLA_CHECK as SPEC
from lib.cli import job_command, main
from lib.clock import format_utc
from lib.dates import bad_date_values, rows_with_bad_dates
from lib.db import parallel_readers, write_transaction
from lib.harness import RunContext
from lib.jobspec import Outcome
from lib.mailer import Mail, Mailer, MailError, SmtpConfig, clean_name, is_mail_address
from lib.redaction import shown_text
from lib.vocabulary import ADMIN, INTERNAL, OPEN_TASK, SLA_CASE, equals

DATE_SHAPE = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"

# Every open case and task due by the horizon is an item; its responsible person is resolved in SQL:
# a case's lawyer, a task's assignee, else the lead of the case's team; only active internal users
# count. NULL means "failing that": every active admin. :bad_dates (a JSON array) holds the due dates
# of the right shape that are no calendar day: those rows are left out and named by skip_bad_dates().
# A busy firm has half a million items, so no query sorts them all: the tasks of an active internal
# assignee (most of them) are read per person in due order from tasks_open_by_assignee_due, only
# each person's first :cap (and those tied with the last); the rest, a few thousand, are ranked.
PEOPLE = f"""
WITH internal (id) AS (SELECT id FROM users WHERE is_active = 1 AND role IN {INTERNAL}),
bad (value) AS (SELECT value FROM json_each(:bad_dates))"""
REAL_DUE = f"GLOB '{DATE_SHAPE}' AND {{due}} NOT IN bad AND {{due}} <= :horizon"
ASSIGNED = f"status IN {OPEN_TASK} AND assignee_id IS NOT NULL"


def _real_due(column: str) -> str:
    """The condition that column is a calendar day by the horizon (see REAL_DUE)."""
    return f"{column} {REAL_DUE.format(due=column)}"


# (kind, id, responsible, due, case number, title, confidential) of each active internal assignee's
# first tasks: those due no later than their :cap-th.
DIRECT_FIRST = f"""{PEOPLE}
SELECT 'task', t.id, t.assignee_id, t.due_date, c.case_number, t.title, coalesce(c.is_confidential, 0)
FROM internal AS person  -- CROSS JOIN: the people outside, whatever the statistics say
CROSS JOIN tasks AS t ON t.assignee_id = person.id AND t.{ASSIGNED}
  AND t.due_date GLOB '{DATE_SHAPE}' AND t.due_date NOT IN bad
  -- the cut alone bounds the range (with a second bound the planner would test the cut on every row)
  AND t.due_date <= coalesce((
      SELECT cut.due_date FROM tasks AS cut
      WHERE cut.assignee_id = person.id AND cut.{ASSIGNED} AND {_real_due("cut.due_date")}
      ORDER BY cut.due_date LIMIT 1 OFFSET :cap - 1
  ), :horizon)
LEFT JOIN cases AS c ON c.id = t.case_id
"""
# (responsible, violations, warnings) of the same tasks, all of them counted.
DIRECT_TOTALS = f"""{PEOPLE}
SELECT assignee_id, sum(due_date < :today), sum(due_date >= :today) FROM tasks
WHERE {ASSIGNED} AND assignee_id IN internal AND {_real_due("due_date")}
GROUP BY assignee_id
"""
# Every other item: open cases, and the tasks of nobody or of someone who is not an active internal
# user (their team's lead is responsible), each person's first :cap ranked (rank() keeps the ties at
# the cut) with the person's totals and what a digest line shows.
OTHER_FIRST = f"""{PEOPLE},
items (kind, item_id, responsible, due) AS (
    SELECT 'case', c.id, lawyer.id, c.expected_completion_date
    FROM cases AS c
    LEFT JOIN users AS lawyer ON lawyer.id = c.lawyer_id AND lawyer.id IN internal
    WHERE c.status IN {SLA_CASE} AND {_real_due("c.expected_completion_date")}
    UNION ALL
    SELECT 'task', t.id, lead.id, t.due_date
    FROM (
        SELECT id, case_id, due_date FROM tasks INDEXED BY tasks_pending_unassigned  -- even without statistics
        WHERE status IN {OPEN_TASK} AND assignee_id IS NULL AND +due_date <= :horizon
        UNION ALL
        SELECT id, case_id, due_date FROM tasks
        WHERE {ASSIGNED} AND assignee_id NOT IN internal AND +due_date <= :horizon
    ) AS t
    LEFT JOIN cases AS c ON c.id = t.case_id
    LEFT JOIN teams AS team ON team.id = c.team_id
    LEFT JOIN users AS lead ON lead.id = team.lead_id AND lead.id IN internal
    WHERE {_real_due("+t.due_date")}
),
ranked AS (
    SELECT *, rank() OVER person AS place,
           sum(kind = 'case' AND due < :today) OVER everything AS case_violations,
           sum(kind = 'case' AND due >= :today) OVER everything AS case_warnings,
           sum(kind = 'task' AND due < :today) OVER everything AS task_violations,
           sum(kind = 'task' AND due >= :today) OVER everything AS task_warnings
    FROM items
    WINDOW person AS (PARTITION BY responsible ORDER BY due),
           everything AS (person ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
first AS MATERIALIZED (SELECT * FROM ranked WHERE place <= :cap)
SELECT first.kind, first.item_id, first.responsible, first.due, c.case_number,
       CASE first.kind WHEN 'case' THEN c.title ELSE t.title END, coalesce(c.is_confidential, 0),
       case_violations, case_warnings, task_violations, task_warnings
FROM first
LEFT JOIN tasks AS t ON first.kind = 'task' AND t.id = first.item_id
LEFT JOIN cases AS c ON c.id = CASE first.kind WHEN 'case' THEN first.item_id ELSE t.case_id END
"""
# Where bad dates are looked for: (kind, table, column, the open rows).
DATED = (
    ("case", "cases", "expected_completion_date", f"status IN {SLA_CASE}"),
    ("task", "tasks", "due_date", f"status IN {OPEN_TASK}"),
)
KINDS = ("case", "task")


@dataclass(frozen=True)
class SlaItem:
    """One case or task that is late or nearly so."""

    kind: str  # "case" or "task"
    item_id: int
    case_number: str
    title: str
    confidential: bool
    due: dt.date
    days: int  # days past due (positive) or left (negative, zero for today)
    responsible_id: int | None

    @property
    def is_violation(self) -> bool:
        return self.days > 0

    def sort_key(self) -> tuple:
        """Most overdue first, then the nearest warnings; ties by case number, then id."""
        return (not self.is_violation, -self.days, self.case_number or "", self.item_id)

    def line(self) -> str:
        """Return the digest line; a confidential case's titles are redacted (lib/redaction.py)."""
        table = "cases" if self.kind == "case" else "tasks"
        title = shown_text(table, "title", self.title or "(untitled)", self.confidential)
        what = title if self.kind == "case" else f"task: {title}"
        if self.days > 0:
            when = f"{self.days} day{'s' if self.days != 1 else ''} overdue"
        elif self.days == 0:
            when = "due today"
        else:
            when = f"{-self.days} day{'s' if self.days != -1 else ''} left"
        return f"{self.case_number or '(no case)'} · {what} · due {self.due.isoformat()} · {when}"


@dataclass
class Totals:
    """How many items one person (or everyone) has, of each kind: violations and warnings."""

    case_violations: int = 0
    case_warnings: int = 0
    task_violations: int = 0
    task_warnings: int = 0

    def add(self, kind: str, violations: int, warnings: int) -> None:
        """Add a group of items of one kind ("case" or "task")."""
        setattr(self, f"{kind}_violations", getattr(self, f"{kind}_violations") + violations)
        setattr(self, f"{kind}_warnings", getattr(self, f"{kind}_warnings") + warnings)

    def __iadd__(self, other: Totals) -> Totals:
        for kind in KINDS:
            self.add(kind, getattr(other, f"{kind}_violations"), getattr(other, f"{kind}_warnings"))
        return self

    @property
    def violations(self) -> int:
        return self.case_violations + self.task_violations

    @property
    def warnings(self) -> int:
        return self.case_warnings + self.task_warnings


@dataclass
class Digest:
    """One person's items for the day, violations first (most overdue first), then warnings.

    items are the ones listed (at most the cap); totals, when given, count
    every item the person has, listed or not (by default, the items listed).
    """

    user_id: int
    name: str
    email: str
    items: list[SlaItem] = field(default_factory=list)
    totals: Totals | None = None

    def counts(self) -> tuple[int, int]:
        """Return (violations, warnings) over every item of the person, listed or not."""
        if self.totals is not None:
            return self.totals.violations, self.totals.warnings
        violations = sum(item.is_violation for item in self.items)
        return violations, len(self.items) - violations

    def ordered(self) -> list[SlaItem]:
        return sorted(self.items, key=SlaItem.sort_key)

    def title(self, day: dt.date) -> str:
        violations, warnings = self.counts()
        return f"SLA digest {day.isoformat()}: {violations} violation{'s' * (violations != 1)}, {warnings} warning{'s' * (warnings != 1)}"

    def sections(self) -> list[tuple[str, list[str]]]:
        ordered = self.ordered()
        return [
            ("Violations (past their due date)", [item.line() for item in ordered if item.is_violation]),
            ("Warnings (due soon)", [item.line() for item in ordered if not item.is_violation]),
        ]

    def more(self) -> str | None:
        """The closing line for the items not listed ("and 412 more: 380 overdue, 32 due soon"), or None."""
        violations, warnings = self.counts()
        listed_violations = sum(item.is_violation for item in self.items)
        hidden_violations = violations - listed_violations
        hidden_warnings = warnings - (len(self.items) - listed_violations)
        if hidden_violations + hidden_warnings <= 0:
            return None
        return (
            f"and {hidden_violations + hidden_warnings} more: {hidden_violations} overdue, {hidden_warnings} due soon"
        )

    @property
    def greeting_name(self) -> str:
        return clean_name(self.name) or "colleague"

    def text(self) -> str:
        parts = [f"Hello {self.greeting_name},", ""]
        for heading, lines in self.sections():
            if lines:
                parts += [heading + ":", *(f"- {line}" for line in lines), ""]
        if more := self.more():
            parts += [more, ""]
        return "\n".join(parts).rstrip() + "\n"

    def html(self, day: dt.date) -> str:
        parts = [f"<p>Hello {html.escape(self.greeting_name)},</p>"]
        for heading, lines in self.sections():
            if lines:
                items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
                parts.append(f"<h3>{html.escape(heading)}</h3><ul>{items}</ul>")
        if more := self.more():
            parts.append(f"<p>{html.escape(more)}</p>")
        return f"<html><body><h2>{html.escape(self.title(day))}</h2>{''.join(parts)}</body></html>"


@dataclass
class Found:
    """What find_items() found: the first items and the totals of each responsible person (None: nobody)."""

    first_items: dict[int | None, list[SlaItem]]
    totals: dict[int | None, Totals]

    def everyone(self) -> Totals:
        """The totals over every item, each counted once."""
        overall = Totals()
        for totals in self.totals.values():
            overall += totals
        return overall


def find_items(context: RunContext) -> Found:
    """Find every case and task in violation or warning today: each person's first items (at most the
    cap, plus ties) and totals. Name and count (in the outcome) the due dates that are no calendar day.

    Rows stream through SQL only: memory holds the items listed, never all of them. The ranking and the
    totals run on two connections at once.
    """
    today = context.today
    horizon = today + dt.timedelta(days=context.settings.get("sla.warning_days"))
    bad_values = skip_bad_dates(context)
    parameters = {
        "horizon": horizon.isoformat(),
        "today": today.isoformat(),
        "cap": context.settings.get("sla.digest_max_items"),
        "bad_dates": json.dumps(bad_values),
    }
    queries = [("direct", DIRECT_FIRST), ("other", OTHER_FIRST), ("direct totals", DIRECT_TOTALS)]
    with parallel_readers(context.settings, context.stop_flag) as run_query:
        results = dict(run_query([(name, sql, parameters) for name, sql in queries], context.checkpoint))
    totals: dict[int | None, Totals] = defaultdict(Totals)
    first_items: dict[int | None, list[SlaItem]] = defaultdict(list)
    for kind, item_id, responsible, due_text, case_number, title, confidential, *figures in (
        results["direct"] + results["other"]
    ):
        if figures and responsible not in totals:
            totals[responsible] += Totals(*figures)
        due = dt.date.fromisoformat(due_text)
        days = (today - due).days
        first_items[responsible].append(
            SlaItem(kind, item_id, case_number, title or "", bool(confidential), due, days, responsible)
        )
    for responsible, violations, warnings in results["direct totals"]:
        totals[responsible].add("task", violations, warnings)
    return Found(dict(first_items), dict(totals))


def skip_bad_dates(context: RunContext) -> list[str]:
    """Name and count every open case and task whose due date is no calendar day, whatever its shape;
    return those dates (the distinct values) to leave them out of the items."""
    connection = context.database.conn
    values: list[str] = []
    for _kind, table, column, where in DATED:
        bad = bad_date_values(connection, table, column, where)
        values += [value for value in bad if isinstance(value, str)]  # others never pass the items' GLOB
        for row_id in rows_with_bad_dates(connection, table, column, where, bad):
            context.outcome.add("bad_dates")
            context.bad_row(table, row_id, f"{column} is not a calendar day")
    return values


def build_digests(context: RunContext, found: Found) -> list[Digest]:
    """Make each responsible person's digest (every active admin also gets the items of nobody's), each
    listing at most the cap of items, the most overdue first, with the totals of them all."""
    connection = context.database.conn
    cap = context.settings.get("sla.digest_max_items")
    people = {
        user_id: (name, email or "")
        for user_id, name, email in connection.execute(
            f"SELECT id, name, email FROM users WHERE is_active = 1 AND role IN {INTERNAL}"
        )
    }
    admins = [
        user_id
        for (user_id,) in connection.execute(
            f"SELECT id FROM users WHERE is_active = 1 AND {equals('role', ADMIN)} ORDER BY id"
        )
    ]
    nobody_items, nobody_totals = found.first_items.get(None, []), found.totals.get(None, Totals())
    recipients = {person for person in found.totals if person is not None}
    if None in found.totals:
        recipients |= set(admins)
    digests = []
    for user_id in sorted(recipients):
        items, totals = list(found.first_items.get(user_id, [])), Totals()
        totals += found.totals.get(user_id, Totals())
        if user_id in admins:
            items += nobody_items
            totals += nobody_totals
        items = sorted(items, key=SlaItem.sort_key)[:cap]
        digests.append(Digest(user_id, *people[user_id], items=items, totals=totals))
    return digests


@dataclass
class Delivery:
    """What happened to one person's digest in this run."""

    stored: bool = False  # a digest was written (new today, or refreshed under --force)
    email_status: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Stored:
    """Today's notification of one person, as store_notification left it."""

    notification_id: int
    written_now: bool
    mail_due: bool


def store_notification(context: RunContext, digest: Digest) -> Stored:
    """Create today's digest notification for the person, or refresh it under --force.

    The unique dedupe_key keeps it to one a day. The mail is due for a new or
    refreshed digest, and for one whose mail failed or was never finished.
    """
    day = context.today
    key = f"sla:{digest.user_id}:{day.isoformat()}"
    values = {
        "user_id": digest.user_id,
        "kind": "SLA_DIGEST",
        "title": digest.title(day),
        "body": digest.text(),
        "entity_type": "USER",
        "entity_id": digest.user_id,
        "dedupe_key": key,
        "created_at": format_utc(context.now),
    }
    connection = context.database.conn
    with write_transaction(context.database):
        existing = connection.execute(
            "SELECT id, email_status FROM notifications WHERE dedupe_key = ?", (key,)
        ).fetchone()
        if existing is None:
            return Stored(context.database["notifications"].insert(values).last_pk, written_now=True, mail_due=True)
        notification_id, status = existing
        if context.force:
            connection.execute(
                "UPDATE notifications SET title = :title, body = :body, created_at = :created_at, "
                "read_at = NULL, email_status = NULL WHERE id = :id",
                {**values, "id": notification_id},
            )
            return Stored(notification_id, written_now=True, mail_due=True)
    return Stored(notification_id, written_now=False, mail_due=status in (None, "FAILED"))


def mail_digest(context: RunContext, digest: Digest, mailer: Mailer | None) -> tuple[str, str | None]:
    """Mail the digest if we can; return its email_status and the reason when not SENT."""
    if mailer is None:
        return "SKIPPED", "SMTP not configured"
    if not digest.email:
        return "SKIPPED", "no e-mail address"
    if not is_mail_address(digest.email):
        return "SKIPPED", "not a valid e-mail address"
    day = context.today
    mail = Mail(digest.email, digest.greeting_name, digest.title(day), digest.text(), digest.html(day))
    try:
        # On a thread, so that a stop never waits out the server's timeout; a mail the
        # server accepts within the stop's grace is still recorded SENT.
        context.stop_flag.run_in_thread(mailer.send, mail)
    except MailError as error:
        return "FAILED", str(error)
    return "SENT", None


def deliver(context: RunContext, digest: Digest, mailer: Mailer | None) -> Delivery:
    """Store the person's notification (committed first: a failed mail never loses it), then mail it."""
    stored = store_notification(context, digest)
    if not stored.mail_due:
        return Delivery(stored=stored.written_now)
    status, reason = mail_digest(context, digest, mailer)
    with write_transaction(context.database):
        context.database.conn.execute(
            "UPDATE notifications SET email_status = ? WHERE id = ?", (status, stored.notification_id)
        )
    return Delivery(stored=stored.written_now, email_status=status, reason=reason)


def count_delivery(context: RunContext, digest: Digest, delivery: Delivery, mailer: Mailer | None) -> None:
    """Add one person's delivery to the run's figures; a refused login is said once, not per digest."""
    details = context.outcome.details
    context.outcome.add("notified_users", int(delivery.stored))
    if delivery.email_status == "SENT":
        context.outcome.add("emails_sent")
    elif delivery.email_status == "FAILED":
        context.outcome.add("emails_failed")
        context.outcome.errors += 1
        if mailer is not None and mailer.gave_up:
            if "mail_error" not in details:
                details["mail_error"] = mailer.gave_up
                event = "SMTP login refused" if mailer.login_refused else "SMTP server stopped answering"
                context.log.warning(f"{event}: no more mail this run", reason=mailer.gave_up)
        else:
            context.log.warning("digest mail failed", user_id=digest.user_id, reason=delivery.reason)
    elif delivery.reason == "not a valid e-mail address":
        context.bad_row("users", digest.user_id, "email is not a valid e-mail address")
    elif delivery.email_status is not None:
        context.log.debug("digest mail skipped", user_id=digest.user_id, reason=delivery.reason)


def dry_run_plan(digests: list[Digest], day: dt.date) -> Iterator[str]:
    """Yield each person's digest as a run would store and mail it, a line at a time."""
    for digest in digests:
        yield f"{digest.greeting_name} <{digest.email}>: {digest.title(day)}"
        yield from (f"  {line}" for line in digest.text().splitlines()[2:])


def work(context: RunContext) -> Outcome:
    """The job's work: find the items, build each person's digest, store and mail it.

    One person's digest that cannot be built, stored or mailed is a bad row:
    counted, named by user id, and every other person still gets theirs.
    """
    details = context.outcome.details
    details.update(bad_dates=0, notified_users=0, emails_sent=0, emails_failed=0)
    found = find_items(context)
    details.update(vars(found.everyone()))
    digests = build_digests(context, found)
    context.outcome.items = len(digests)
    if context.dry_run:
        details["would_notify_users"] = len(digests)
        context.outcome.plan = dry_run_plan(digests, context.today)
        return context.outcome
    config = SmtpConfig.from_settings(context.settings)
    mailer = Mailer(config) if config else None
    try:
        for digest in digests:
            context.checkpoint()
            with context.one_row("users", digest.user_id, "storing the digest") as row:
                delivery = deliver(context, digest, mailer)
            if not row.skipped:
                count_delivery(context, digest, delivery, mailer)
    finally:
        if mailer and not context.stop_flag.is_set():  # a stopped run does not wait to say goodbye
            mailer.close()
    return context.outcome


command = job_command(SPEC)


def run() -> None:
    """The console script of this job (pyproject.toml): the same as bin/<script>."""
    main(command)


if __name__ == "__main__":
    run()
