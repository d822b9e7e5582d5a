"""weeklyReport: the one-page HTML report of the jobs, mailed to the ADMIN users every Monday morning.

The mail is plain text (the overall state, each problem as `jobstats --check`
says it, and each job's last run) with the page (`jobstats --html`, the last
30 days) as its HTML alternative; the subject carries the overall state. It
goes through the SMTP settings slaCheck uses; without them the run is
skipped, and says why. The page holds only what the ledger holds: no client
data, no secret.
"""

from __future__ import annotations

from jobs import REGISTRY
from jobs import WEEKLY_REPORT as SPEC
from lib.alerts import admin_recipients
from lib.cli import job_command, main
from lib.clock import IST
from lib.errors import CasejobsError
from lib.harness import RunContext
from lib.health import LEVEL_NAMES, OK, check_all, headlines, job_health
from lib.jobspec import Outcome
from lib.mailer import Mail, Mailer, MailError, SmtpConfig
from lib.report import build_page
from lib.stats import DEFAULT_SINCE, parse_since

REPORT_SINCE = DEFAULT_SINCE  # the page jobstats --html makes by default: the last 30 days


def summary_text(context: RunContext, level: int, problems: list[tuple[int, str]]) -> str:
    """The mail's plain-text part: the state, every problem, the headlines and each job's last run."""
    now = context.now
    entries = REGISTRY.entries()
    healths = [job_health(context.settings, entry, now) for entry in entries]
    lines = [f"casejobs on {now.astimezone(IST):%Y-%m-%d %H:%M} IST: {LEVEL_NAMES[level]}", ""]
    lines += [f"{LEVEL_NAMES[found]} {line}" for found, line in problems] or ["All jobs on schedule."]
    lines += ["", *headlines(healths, now), ""]
    for entry, health in zip(entries, healths, strict=True):
        last = health.state.last_worked
        when = f"{last.status}, {last.started_at}" if last else "never ran"
        lines.append(f"{entry.job}: last run {when}; next {entry.next_run(now):%Y-%m-%d %H:%M} IST")
    lines += ["", "The whole page (timelines, durations, work done, failures) is this mail's HTML part."]
    return "\n".join(lines) + "\n"


def work(context: RunContext) -> Outcome:
    """The job's work: build the page, then mail it to every active ADMIN user with an address."""
    config = SmtpConfig.from_settings(context.settings)
    if config is None:
        context.outcome.details["reason"] = "no SMTP server is set (CASEJOBS_SMTP_HOST): nothing mailed"
        context.log.warning("nothing mailed: no SMTP server is set")
        return context.outcome
    now = context.now
    entries = REGISTRY.entries()
    healths = [job_health(context.settings, entry, now) for entry in entries]
    problems = check_all(healths, context.settings.home, now)
    level = max((found for found, _ in problems), default=OK)
    page = build_page(context.settings, entries, now, parse_since(REPORT_SINCE, now))
    subject = f"casejobs weekly report: {LEVEL_NAMES[level]} (week to {now.astimezone(IST):%Y-%m-%d})"
    text = summary_text(context, level, problems)
    recipients = admin_recipients(context.settings.database_path)
    details = context.outcome.details
    details |= {"state": LEVEL_NAMES[level], "page_bytes": len(page.encode()), "recipients": len(recipients)}
    if context.dry_run:
        context.outcome.plan = iter([f"would mail {subject!r} to {len(recipients)} ADMIN users"])
        return context.outcome
    if not recipients:
        raise CasejobsError("no active ADMIN user has an e-mail address: nobody to mail the report to")
    mailer = Mailer(config)
    try:
        for name, address in recipients:
            context.checkpoint()
            try:
                context.stop_flag.run_in_thread(mailer.send, Mail(address, name, subject, text, page))
                context.outcome.add("emails_sent")
                context.outcome.items += 1
            except MailError as error:
                context.outcome.problem(f"report not mailed to {address}: {error}")
    finally:
        mailer.close()
    return context.outcome


command = job_command(SPEC)


def run() -> None:
    """The console script of this job (pyproject.toml): the same as bin/<script>."""
    main(command)


if __name__ == "__main__":
    run()
