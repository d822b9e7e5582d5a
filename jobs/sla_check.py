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
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from jobs import SLA_CHECK as SPEC
from lib.cli import job_command, main
from lib.clock import format_utc
from lib.dates import calendar_day, rows_with_bad_dates
from lib.db import write_transaction
from lib.harness import RunContext
from lib.jobspec import Outcome
from lib.mailer import Mail, Mailer, MailError, SmtpConfig, clean_name, is_mail_address
from lib.redaction import shown_text
from lib.vocabulary import ADMIN, INTERNAL, OPEN_TASK, SLA_CASE, equals

DATE_SHAPE = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"

# The responsible person is resolved in SQL: a case's lawyer, a task's
# assignee, else the lead of the case's team; only active internal users
# count. NULL means "failing that": every active admin.
CASE_QUERY = f"""
SELECT 'case', c.id, c.case_number, c.title, c.is_confidential, c.expected_completion_date, lawyer.id
FROM cases AS c
LEFT JOIN users AS lawyer ON lawyer.id = c.lawyer_id AND lawyer.is_active = 1 AND lawyer.role IN {INTERNAL}
WHERE c.status IN {SLA_CASE} AND c.expected_completion_date <= :horizon
  AND c.expected_completion_date GLOB '{DATE_SHAPE}'
"""
TASK_QUERY = f"""
SELECT 'task', t.id, c.case_number, t.title, coalesce(c.is_confidential, 0), t.due_date,
       coalesce(assignee.id, lead.id)
FROM tasks AS t
LEFT JOIN cases AS c ON c.id = t.case_id
LEFT JOIN users AS assignee ON assignee.id = t.assignee_id AND assignee.is_active = 1 AND assignee.role IN {INTERNAL}
LEFT JOIN teams AS team ON team.id = c.team_id
LEFT JOIN users AS lead ON lead.id = team.lead_id AND lead.is_active = 1 AND lead.role IN {INTERNAL}
WHERE t.status IN {OPEN_TASK} AND t.due_date <= :horizon AND t.due_date GLOB '{DATE_SHAPE}'
"""
# Where bad dates are looked for: (kind, table, column, the open rows).
DATED = (
    ("case", "cases", "expected_completion_date", f"status IN {SLA_CASE}"),
    ("task", "tasks", "due_date", f"status IN {OPEN_TASK}"),
)


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
class Digest:
    """One person's items for the day, violations first (most overdue first), then warnings."""

    user_id: int
    name: str
    email: str
    items: list[SlaItem] = field(default_factory=list)

    def ordered(self) -> list[SlaItem]:
        return sorted(self.items, key=lambda item: (not item.is_violation, -item.days, item.case_number, item.item_id))

    def title(self, day: dt.date) -> str:
        violations = sum(item.is_violation for item in self.items)
        warnings = len(self.items) - violations
        return f"SLA digest {day.isoformat()}: {violations} violation{'s' * (violations != 1)}, {warnings} warning{'s' * (warnings != 1)}"

    def sections(self) -> list[tuple[str, list[str]]]:
        ordered = self.ordered()
        return [
            ("Violations (past their due date)", [item.line() for item in ordered if item.is_violation]),
            ("Warnings (due soon)", [item.line() for item in ordered if not item.is_violation]),
        ]

    @property
    def greeting_name(self) -> str:
        return clean_name(self.name) or "colleague"

    def text(self) -> str:
        parts = [f"Hello {self.greeting_name},", ""]
        for heading, lines in self.sections():
            if lines:
                parts += [heading + ":", *(f"- {line}" for line in lines), ""]
        return "\n".join(parts).rstrip() + "\n"

    def html(self, day: dt.date) -> str:
        parts = [f"<p>Hello {html.escape(self.greeting_name)},</p>"]
        for heading, lines in self.sections():
            if lines:
                items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
                parts.append(f"<h3>{html.escape(heading)}</h3><ul>{items}</ul>")
        return f"<html><body><h2>{html.escape(self.title(day))}</h2>{''.join(parts)}</body></html>"


def find_items(context: RunContext, counts: dict[str, int]) -> list[SlaItem]:
    """Return every case and task in violation or warning today; count what was found and the bad dates."""
    today = context.today
    horizon = today + dt.timedelta(days=context.settings.get("sla.warning_days"))
    connection = context.database.conn
    items = []
    for query in (CASE_QUERY, TASK_QUERY):
        for kind, item_id, case_number, title, confidential, due_text, responsible in connection.execute(
            query, {"horizon": horizon.isoformat()}
        ):
            due = calendar_day(due_text)
            if due is None:
                continue  # no calendar day: counted and named by skip_bad_dates()
            days = (today - due).days
            items.append(SlaItem(kind, item_id, case_number, title or "", bool(confidential), due, days, responsible))
            counts[f"{kind}_{'violations' if days > 0 else 'warnings'}"] += 1
    skip_bad_dates(context, counts)
    return items


def skip_bad_dates(context: RunContext, counts: dict[str, int]) -> None:
    """Name and count every open case and task whose due date is no calendar day, whatever its shape."""
    for _kind, table, column, where in DATED:
        for row_id in rows_with_bad_dates(context.database.conn, table, column, where):
            counts["bad_dates"] += 1
            context.bad_row(table, row_id, f"{column} is not a calendar day")


def build_digests(context: RunContext, items: list[SlaItem]) -> list[Digest]:
    """Group the items by responsible person (every active admin for those with nobody)."""
    connection = context.database.conn
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
    by_person: dict[int, list[SlaItem]] = defaultdict(list)
    for item in items:
        for person in [item.responsible_id] if item.responsible_id else admins:
            by_person[person].append(item)
    return [Digest(user_id, *people[user_id], items=by_person[user_id]) for user_id in sorted(by_person)]


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
        if mailer is not None and mailer.login_refused:
            if "mail_error" not in details:
                details["mail_error"] = mailer.login_refused
                context.log.warning("SMTP login refused: no more mail this run", reason=mailer.login_refused)
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
    counts = dict.fromkeys(("case_violations", "task_violations", "case_warnings", "task_warnings", "bad_dates"), 0)
    details = context.outcome.details
    details.update(counts, notified_users=0, emails_sent=0, emails_failed=0)
    items = find_items(context, counts)
    details.update(counts)
    digests = build_digests(context, items)
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
