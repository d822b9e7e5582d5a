"""Alerts by mail, the suite's MAILTO for a firm without a monitoring service.

With SMTP set, the ADMIN users get one mail when a job turns CRITICAL (as
`jobstats --check` judges it) and one when it recovers: once per change of
state, never once per run. The state each job was last reported in is kept
in $CASEJOBS_HOME/alerts.json; a change is written there only once its mail
was sent to at least one ADMIN, so a mail the server refused is tried again
at the next look. A look happens after every run (for that job) and at every
`jobctl catch-up` (every 15 minutes from cron, for every job: a job that
stopped running turns CRITICAL without a run of its own). A lock under the
home keeps two looks from mailing the same change twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import sqlite3
from pathlib import Path
from typing import Any

import filelock

from lib.clock import IST, format_utc
from lib.errors import ConfigError, StopRequested
from lib.health import CRITICAL, LEVEL_NAMES, job_health, overall_level, problems_by_job
from lib.home import make_folder, read_json_file, write_json_file
from lib.mailer import Mail, Mailer, SmtpConfig, is_mail_address, send_each
from lib.schedule import Entry
from lib.settings import Settings
from lib.stop import StopFlag
from lib.vocabulary import ADMIN, equals

STATE_FILE = "alerts.json"
# The ADMINs last read from the database: a database that is gone or unreadable is the worst case,
# and the people to tell are still known.
RECIPIENTS_FILE = "alert-recipients.json"


def admin_recipients(database: Path) -> list[tuple[int, str, str]]:
    """(user id, name, address) of every active ADMIN user with a valid address, read-only."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            f"SELECT id, name, email FROM users WHERE is_active = 1 AND {equals('role', ADMIN)} ORDER BY id"
        ).fetchall()
    finally:
        connection.close()
    return [(user, str(name or ""), str(address)) for user, name, address in rows if is_mail_address(address)]


def known_recipients(settings: Settings, log: Any) -> list[tuple[int, str, str]]:
    """The ADMINs to alert: read from the database (and remembered under the home), or, when the
    database cannot be read, the ones last remembered."""
    path = settings.home / RECIPIENTS_FILE
    try:
        remembered = [tuple(entry) for entry in read_json_file(path)]
    except (OSError, ValueError, TypeError):
        remembered = []
    remembered = [
        (user, name, address)
        for user, name, address in (entry for entry in remembered if len(entry) == 3)
        if type(user) is int and isinstance(name, str) and isinstance(address, str) and is_mail_address(address)
    ]
    try:
        current = admin_recipients(settings.database_path)
    except (sqlite3.Error, OSError) as error:
        log.warning("alert recipients are the last known ADMINs: the database cannot be read", reason=str(error))
        return remembered
    if current != remembered:
        write_json_file(path, [list(entry) for entry in current])
    return current


def read_state(home: Path) -> dict[str, Any]:
    """The state each job was last reported in ({} when none was, or the file is damaged)."""
    try:
        state = read_json_file(home / STATE_FILE)
    except (OSError, ValueError):
        return {}
    if not isinstance(state, dict):
        return {}
    # Only well-formed entries: a damaged one is a job whose state is not known.
    return {
        job: entry
        for job, entry in state.items()
        if isinstance(entry, dict) and entry.get("level") in LEVEL_NAMES.values()
    }


def current_levels(settings: Settings, entries: list[Entry], now: dt.datetime) -> dict[str, tuple[int, list[str]]]:
    """Each job's level and problem lines, as --check judges them now."""
    healths = [job_health(settings, entry, now) for entry in entries]
    by_job = problems_by_job(healths, settings.home, now)
    return {job: (overall_level(found), [line for _, line in found]) for job, found in by_job.items()}


def alert_mail(job: str, turned_critical: bool, lines: list[str], now: dt.datetime) -> tuple[str, str, str]:
    """The subject, text and HTML of one alert or recovery mail."""
    when = f"{now.astimezone(IST):%Y-%m-%d %H:%M} IST"
    if turned_critical:
        subject = f"casejobs CRITICAL: {job}"
        text = f"{job} turned CRITICAL at {when}:\n\n" + "\n".join(f"  {line}" for line in lines)
        text += "\n\nOne mail per change: the next comes when it recovers. See: bin/jobstats --check\n"
    else:
        subject = f"casejobs recovered: {job}"
        text = f"{job} is no longer CRITICAL ({when}).\n" + "".join(f"  {line}\n" for line in lines)
    body = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip())
    return subject, text, f"<!DOCTYPE html><html><body>{body}</body></html>"


ALERT_TIMEOUT = 10  # seconds an alert waits for the SMTP server at most: it comes after a run, not in it


def look(settings: Settings, entries: list[Entry], log: Any, stop_flag: StopFlag | None = None) -> list[str]:
    """Compare each job's state now with the one last reported and mail the ADMIN users about every job
    that turned CRITICAL or recovered; return what was mailed ("dailySync CRITICAL"). Without SMTP,
    nothing. Never raises for a mail or a lock: an alert never changes how a run ends."""
    try:
        config = SmtpConfig.from_settings(settings)
    except ConfigError as error:  # the run that uses SMTP says so; an alert never fails a run
        log.warning("alerts not looked at", reason=str(error))
        return []
    if config is None:
        return []
    config = dataclasses.replace(config, timeout=min(config.timeout, ALERT_TIMEOUT))
    home = settings.home
    make_folder(home / "lock")
    # timeout 0: while another process looks, this one need not (the next run or catch-up looks again).
    lock = filelock.FileLock(str(home / "lock" / "alerts.lock"), timeout=0, mode=0o600)
    sent: list[str] = []
    try:
        with lock:
            now = settings.now()
            state = read_state(home)
            before = json.dumps(state, sort_keys=True)
            changes = []
            for job, (level, lines) in current_levels(settings, entries, now).items():
                was_critical = state.get(job, {}).get("level") == LEVEL_NAMES[CRITICAL]
                if (level == CRITICAL) != was_critical:
                    changes.append((job, level, lines))
                elif job not in state:
                    state[job] = {"level": LEVEL_NAMES[level], "since": format_utc(now)}
            recipients = known_recipients(settings, log)  # every look, so that the list is never stale
            if changes:
                mailer = Mailer(config)
                try:
                    for job, level, lines in changes:
                        mail = alert_mail(job, level == CRITICAL, lines, now)
                        if _mail_everyone(mailer, recipients, *mail, log, stop_flag):
                            state[job] = {"level": LEVEL_NAMES[level], "since": format_utc(now)}
                            sent.append(f"{job} {LEVEL_NAMES[level] if level == CRITICAL else 'recovered'}")
                finally:
                    mailer.close()
            if json.dumps(state, sort_keys=True) != before:
                write_json_file(home / STATE_FILE, state)
    except (filelock.Timeout, OSError, sqlite3.Error, StopRequested) as error:
        log.warning("alerts not looked at", reason=str(error) or "stopped")
    return sent


def _mail_everyone(
    mailer: Mailer,
    recipients: list[tuple[int, str, str]],
    subject: str,
    text: str,
    page: str,
    log: Any,
    stop_flag: StopFlag | None,
) -> bool:
    """Send one mail to each recipient; True if at least one accepted it."""
    mails = [(user, Mail(address, name, subject, text, page)) for user, name, address in recipients]
    if not mails:
        log.warning("alert not sent: no active ADMIN user with an e-mail address", subject=subject)
        return False
    failures = send_each(mailer, mails, stop_flag)
    for user, reason in failures.items():
        log.warning("alert mail not sent", user_id=user, reason=reason)
    return len(failures) < len(mails)
