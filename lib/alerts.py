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
import hashlib
import html
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import filelock

from lib.clock import IST, format_utc, parse_utc
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
        try:
            write_json_file(path, [list(entry) for entry in current])
        except OSError as error:  # a full or read-only home is no reason not to mail
            log.warning("alert recipients not remembered", reason=str(error))
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
    kept = {
        job: entry
        for job, entry in state.items()
        if isinstance(entry, dict) and entry.get("level") in LEVEL_NAMES.values()
    }
    refusal = state.get(REFUSED)
    if isinstance(refusal, dict) and all(isinstance(refusal.get(key), str) for key in ("at", "salt", "fingerprint")):
        kept[REFUSED] = refusal
    return kept


# A refused SMTP login, remembered so that a wrong password is not tried at every look (96 times a day
# from catch-up alone, enough to lock a mail account): the same settings are tried again after
# RETRY_REFUSED_LOGIN, changed ones at once. The fingerprint is a salted hash, never the password.
REFUSED = "__smtp_login_refused__"
RETRY_REFUSED_LOGIN = dt.timedelta(hours=6)


def login_fingerprint(config: SmtpConfig, salt: bytes) -> str:
    """A salted hash of the SMTP server, its security, the user and the password: it changes when any
    of them does."""
    identity = f"{config.host}\0{config.port}\0{config.security}\0{config.user or ''}\0{config.password or ''}".encode()
    return hashlib.sha256(salt + identity).hexdigest()


def refused_recently(state: dict[str, Any], config: SmtpConfig, now: dt.datetime) -> str | None:
    """When these SMTP settings had their login refused less than RETRY_REFUSED_LOGIN ago, return when
    (UTC text); else None."""
    refusal = state.get(REFUSED)
    if refusal is None:
        return None
    try:
        same = login_fingerprint(config, bytes.fromhex(refusal["salt"])) == refusal["fingerprint"]
        recent = now - parse_utc(refusal["at"]) < RETRY_REFUSED_LOGIN
    except ValueError:
        return None
    return refusal["at"] if same and recent else None


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
            refused_at = refused_recently(state, config, now) if changes else None
            if refused_at:
                log.warning(
                    "alerts not mailed: the SMTP login was refused; fix the SMTP settings",
                    refused_at=refused_at,
                    jobs=[job for job, _, _ in changes],
                )
            elif changes:
                mailer = Mailer(config)
                try:
                    for job, level, lines in changes:
                        mail = alert_mail(job, level == CRITICAL, lines, now)
                        if _mail_everyone(mailer, recipients, *mail, log, stop_flag):
                            state[job] = {"level": LEVEL_NAMES[level], "since": format_utc(now)}
                            sent.append(f"{job} {LEVEL_NAMES[level] if level == CRITICAL else 'recovered'}")
                finally:
                    mailer.close()
                if mailer.login_refused:
                    salt = os.urandom(16)
                    state[REFUSED] = {
                        "at": format_utc(now),
                        "salt": salt.hex(),
                        "fingerprint": login_fingerprint(config, salt),
                    }
                elif sent:
                    state.pop(REFUSED, None)
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
        log.warning("alert mail not sent", subject=subject, user_id=user, reason=reason)
    return len(failures) < len(mails)
