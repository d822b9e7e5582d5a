"""weeklyReport: the one-page HTML report of the jobs, mailed to the ADMIN users every Monday morning.

The mail is plain text (the overall state, each problem as `jobstats --check`
says it, and each job's last run) with the page (`jobstats --html`, the last
30 days) as its HTML alternative; the subject carries the overall state. It
goes through the SMTP settings slaCheck uses; without them nothing is
mailed and the run (a success: nothing is wrong with the jobs) says why in
its details. The page holds only what the ledger holds: no client
data, no secret.
"""

from __future__ import annotations

import datetime as dt

from jobs import REGISTRY
from jobs import WEEKLY_REPORT as SPEC
from lib.alerts import admin_recipients
from lib.cli import job_command, main
from lib.clock import IST
from lib.errors import CasejobsError
from lib.harness import RunContext
from lib.health import LEVEL_NAMES, JobHealth, check_all, headlines, ist_words, job_health, overall_level
from lib.jobspec import Outcome
from lib.mailer import Mail, Mailer, SmtpConfig, send_each
from lib.report import build_page, status_words
from lib.stats import DEFAULT_SINCE, parse_since

REPORT_SINCE = DEFAULT_SINCE  # the page jobstats --html makes by default: the last 30 days


def summary_text(now: dt.datetime, healths: list[JobHealth], problems: list[tuple[int, str]]) -> str:
    """The mail's plain-text part: the state, every problem, the headlines and each job's last run."""
    lines = [f"casejobs on {now.astimezone(IST):%Y-%m-%d %H:%M} IST: {LEVEL_NAMES[overall_level(problems)]}", ""]
    lines += [f"{LEVEL_NAMES[found]} {line}" for found, line in problems] or ["All jobs on schedule."]
    lines += ["", *headlines(healths, now), ""]
    for entry, health in zip(REGISTRY.entries(), healths, strict=True):
        last = health.state.last_worked
        when = f"last run {status_words(last.status)}, {ist_words(last.started_at, now)}" if last else "no run yet"
        lines.append(f"{entry.job}: {when}; next {entry.next_run(now):%Y-%m-%d %H:%M} IST")
    lines += ["", "The whole page (timelines, durations, work done, failures) is this mail's HTML part."]
    return "\n".join(lines) + "\n"


def work(context: RunContext) -> Outcome:
    """The job's work: build the page, then mail it to every active ADMIN user with an address."""
    details = context.outcome.details
    config = SmtpConfig.from_settings(context.settings)
    recipients = admin_recipients(context.settings.database_path)
    if config is None or not recipients:
        details["reason"] = (
            "no SMTP server is set (CASEJOBS_SMTP_HOST): nothing mailed"
            if config is None
            else "no active ADMIN user has an e-mail address: nothing mailed"
        )
        context.log.warning("nothing mailed", reason=details["reason"])
        return context.outcome
    now = context.now
    healths = [job_health(context.settings, entry, now) for entry in REGISTRY.entries()]
    problems = check_all(healths, context.settings.home, now)
    page = build_page(context.settings, REGISTRY.entries(), now, parse_since(REPORT_SINCE, now))
    subject = f"casejobs weekly report: {LEVEL_NAMES[overall_level(problems)]} (week to {now.astimezone(IST):%Y-%m-%d})"
    text = summary_text(now, healths, problems)
    details |= {
        "state": LEVEL_NAMES[overall_level(problems)],
        "page_bytes": len(page.encode()),
        "recipients": len(recipients),
    }
    if context.dry_run:
        context.outcome.plan = iter([f"would mail {subject!r} to {len(recipients)} ADMIN users"])
        return context.outcome
    mailer = Mailer(config)
    try:
        mails = [(user, Mail(address, name, subject, text, page)) for user, name, address in recipients]
        failures = send_each(mailer, mails, context.stop_flag)
    finally:
        mailer.close()
    details["emails_sent"] = len(mails) - len(failures)
    context.outcome.items = details["emails_sent"]
    for user, reason in failures.items():  # by user id: an address never goes into the ledger
        context.log.warning("report not mailed", user_id=user, reason=reason)
        context.outcome.bad_row("users", user, f"report not mailed: {reason}")
    if failures and len(failures) == len(mails):
        raise CasejobsError(f"the report reached nobody: {next(iter(failures.values()))}")
    return context.outcome


command = job_command(SPEC)


def run() -> None:
    """The console script of this job (pyproject.toml): the same as bin/<script>."""
    main(command)


if __name__ == "__main__":
    run()
