"""bin/jobstats: what ran, how it went, and what runs next, per job, from the ledger."""

from __future__ import annotations

import datetime as dt
import gc
import json
import sys
from pathlib import Path
from typing import Any

import click

from jobs import REGISTRY
from lib import clock
from lib.cli import main, os_error_words, plural, report_errors
from lib.errors import ConfigError, UsageError
from lib.health import CRITICAL, LEVEL_NAMES, OK, check_all, headlines, job_health
from lib.ledger import Damage
from lib.report import write_report
from lib.schedule import Entry
from lib.settings import Settings, load_settings
from lib.stats import DEFAULT_SINCE, REPORTED_STATUSES, build_reports, parse_since


def _format_duration(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "-"
    return f"{milliseconds} ms" if milliseconds < 10_000 else f"{milliseconds / 1000:.1f} s"


def render_text(summary: dict[str, Any]) -> str:
    """Given jobstats' JSON summary, return it as text for a person."""
    lines = [f"casejobs runs since {summary['since'] or 'the start of the ledger'} (times in IST)", ""]
    if summary["headlines"]:
        lines += [*summary["headlines"], ""]
    for name, job in summary["jobs"].items():
        rate = "-" if job["success_rate"] is None else f"{job['success_rate'] * 100:.1f}%"
        lines.append(
            f"{name}: {plural(job['runs'], 'run')}, success rate {rate}" + ("  [running now]" if job["running"] else "")
        )
        counts = ", ".join(f"{status} {count}" for status, count in job["status_counts"].items() if count)
        lines.append(f"  statuses:  {counts or 'none yet'}")
        last = job["last_run"]
        if last:
            lines.append(
                f"  last run:  {last['started_at']}  {last['status']}"
                + (f"  ({last['error']})" if last["error"] else "")
            )
        duration = job["duration_ms"]
        lines.append(
            f"  duration:  p50 {_format_duration(duration['p50'])}, p95 {_format_duration(duration['p95'])}, "
            f"max {_format_duration(duration['max'])}"
        )
        lines.append(f"  items:     {job['items']} done, {plural(job['errors'], 'error')}")
        lines.append(
            f"  next run:  {job['next_run']}" + (f"  OVERDUE ({job['missed_slots']} missed)" if job["overdue"] else "")
        )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


@click.command(name="jobstats", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--job", help="Only this job (dailySync or daily-sync).")
@click.option(
    "--since",
    default=DEFAULT_SINCE,
    show_default=True,
    help="Only runs started since: 7d, 12h, 30m, 2026-11-01 (IST), an ISO time, or all.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON with stable keys instead of text.")
@click.option(
    "--check",
    is_flag=True,
    help="For monitoring: one line per problem; exit 0 OK, 1 WARNING (last run partial, timeout or "
    "interrupted, one slot missed, never ran), 2 CRITICAL (last run failed, crashed or a configuration "
    "error, or more than one slot missed).",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the one-page HTML report (tiles, timelines, durations, work done, failures) to this file.",
)
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobstats")
def jobstats(job: str | None, since: str, as_json: bool, check: bool, html_file: str | None, verbose: bool) -> None:
    """Summarise the ledger per job: runs and counts per status, success rate, last run that did work,
    duration p50/p95/max, items and errors, and the next run from crontab.ist.
    """
    gc.disable()  # a short-lived reader of many small objects without cycles: a year reads a quarter faster
    try:
        settings = load_settings()
    except ConfigError as error:
        if not check:
            raise
        click.echo(f"CRITICAL configuration error: {error}")  # a monitor reads 0, 1 or 2, never 78
        sys.exit(CRITICAL)
    if not settings.home.is_dir():
        problem = f"CASEJOBS_HOME {settings.home} does not exist: no job has run with it"
        if not check:
            raise ConfigError(f"{problem}; set CASEJOBS_HOME to the installation's home")
        click.echo(f"CRITICAL {problem} (set CASEJOBS_HOME to the installation's home)")
        sys.exit(CRITICAL)
    now = settings.now()
    entries = REGISTRY.entries()
    only = None
    if job == "" or html_file == "":
        raise UsageError(f"{'--job' if job == '' else '--html'} was given an empty value")
    if check and as_json:
        raise UsageError("--check prints the monitoring lines; --json the summary: give one")
    if job:
        spec = REGISTRY.find(job)
        if spec is None:
            raise UsageError(f"unknown job {job!r}; known jobs: {', '.join(spec.name for spec in REGISTRY)}")
        only = spec.name
    since_moment = parse_since(since, now)
    damage = Damage()
    if html_file:
        if check or as_json or job:
            raise UsageError("--html makes the whole page: it takes --since only")
        path = write_report(Path(html_file), settings, REGISTRY.entries(), now, since_moment)
        click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
        return
    chosen = [entry for entry in entries if only is None or entry.job == only]
    if check:
        sys.exit(monitoring_check(settings, chosen, now))
    health = {entry.job: job_health(settings, entry, now) for entry in chosen}
    reports = build_reports(settings.home, entries, now, since_moment, only, damage)
    summary = {
        "generated_at": clock.to_ist(now).isoformat(timespec="seconds"),
        "since": since_moment.astimezone(clock.IST).isoformat(timespec="seconds") if since_moment else None,
        "statuses": list(REPORTED_STATUSES),
        "damaged_lines": damage.lines,
        "headlines": headlines(list(health.values()), now),
        "jobs": {
            name: {**report.as_dict(), "overdue": health[name].overdue, "missed_slots": health[name].missed_slots}
            for name, report in reports.items()
        },
    }
    if damage.describe():
        click.echo(f"jobstats: warning: {damage.describe()}", err=True)
    click.echo(json.dumps(summary, indent=2) if as_json else render_text(summary), nl=as_json)


def monitoring_check(settings: Settings, chosen: list[Entry], now: dt.datetime) -> int:
    """Print --check's lines (one per problem, then the headlines) and return its exit code: 0 OK,
    1 WARNING, 2 CRITICAL, and CRITICAL too when the jobs could not be judged at all."""
    damage = Damage()
    try:
        healths = [job_health(settings, entry, now, damage) for entry in chosen]
        problems = check_all(healths, settings.home, now)
        lines = headlines(healths, now)
    except Exception as error:  # a monitor reads 0, 1 or 2: what cannot be judged is never "OK" or a 1
        words = os_error_words(error) if isinstance(error, OSError) else f"{type(error).__name__}: {error}"
        click.echo(f"CRITICAL jobstats could not judge the jobs: {words}")
        return CRITICAL
    for level, line in problems:
        click.echo(f"{LEVEL_NAMES[level]} {line}")
    if not problems:
        click.echo("OK all jobs on schedule")
    for line in lines:
        click.echo(line)
    if damage.describe():
        click.echo(f"jobstats: warning: {damage.describe()}", err=True)
    return max((level for level, _ in problems), default=OK)


def run() -> None:
    """The console script casejobs-jobstats (pyproject.toml): the same as bin/jobstats."""
    main(jobstats)


if __name__ == "__main__":
    run()
