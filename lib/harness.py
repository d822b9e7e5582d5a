"""The harness: the life of one run, the same for every job (design.md).

signal handlers -> settings -> APP_MODE guard -> lock -> database ->
ledger `start` -> the job's work (stoppable) -> audit row -> ledger `finish`
-> monitoring ping. A job supplies only its work function; everything else
lives here once.

Every way a run can end writes exactly one `finish` line, through one
writer (RunRecord.finish): a run that did no work (skipped, locked, a
configuration error, a database held by another program) writes that line
only; a run that started writes it when the `with record.running(...)`
block is left, by any path. Only SIGKILL or power loss leaves a `start`
without its `finish`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils

from lib import alerts, clock, ledger
from lib.cli import plural
from lib.db import check_database_file, check_schema, connect, write_transaction
from lib.errors import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_PARTIAL,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_SUCCESS,
    EXIT_TIMEOUT,
    CasejobsError,
    ConfigError,
    DatabaseBusy,
    JobFailed,
    StopRequested,
)
from lib.home import check_writable_home, is_writable_home, make_folder, share_with_group
from lib.jobspec import JobSpec, Outcome
from lib.lock import JobLock
from lib.log import bind_run, configure_logging, get_logger
from lib.monitor import Monitor
from lib.schedule import entry_for
from lib.scrub import remember as remember_secrets
from lib.scrub import scrub_data
from lib.settings import Settings, home_of, load_settings
from lib.stop import SignalStopper, StopFlag, time_limit

EXIT_BY_STATUS = {
    "success": EXIT_SUCCESS,
    "skipped": EXIT_SUCCESS,
    "partial": EXIT_PARTIAL,
    "failed": EXIT_FAILED,
    "locked": EXIT_LOCKED,
    "timeout": EXIT_TIMEOUT,
    "config": EXIT_CONFIG,
}
STOP_EXIT_CODES = {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM, "SIGBREAK": EXIT_SIGINT, "timeout": EXIT_TIMEOUT}
STOPPING_AUDIT_SECONDS = 0.5  # a stopped run waits this long at most for the write lock of its audit row


@dataclass
class RunOptions:
    """The options every job command takes (see lib/cli.py)."""

    db: str | None = None
    dry_run: bool = False
    force: bool = False
    max_runtime: str | int | None = None
    trigger: str = "manual"
    log_format: str | None = None
    verbose: bool = False
    job_options: dict[str, Any] = field(default_factory=dict)
    show: Callable[[str], None] = print  # how the command layer shows a dry run's plan, a line at a time
    progress: Callable[[str, int], AbstractContextManager[Progress]] | None = None  # a bar, from the command layer
    log_file: bool = False  # log to $CASEJOBS_HOME/log/<script>.log (rotated) instead of standard error


@dataclass
class RunContext:
    """Everything a job's work may use during one run."""

    job: str
    run_id: str
    settings: Settings
    database: sqlite_utils.Database
    now: dt.datetime
    dry_run: bool
    force: bool
    trigger: str
    options: dict[str, Any]
    stop_flag: StopFlag
    log: Any
    item_delay_seconds: float = 0.0
    outcome: Outcome = field(default_factory=Outcome)
    progress: Callable[[str, int], AbstractContextManager[Progress]] = field(default=lambda label, total: NoProgress())

    def bad_row(self, table: str, row_id: Any, reason: str) -> None:
        """Skip one bad row: count it, name it by id in the run's details, and log a warning."""
        self.outcome.bad_row(table, row_id, reason)
        self.log.warning("skipped a bad row", table=table, id=row_id, reason=reason)

    @contextmanager
    def one_row(self, table: str, row_id: Any, doing: str) -> Iterator[RowResult]:
        """Run the block for one row; if the row's data makes it fail, skip that row as a bad row.

        Yield a RowResult whose `skipped` tells the caller afterwards. Only
        failures a row's data can cause are caught (a database error, a value
        of the wrong type or encoding); a stop always goes through.
        """
        result = RowResult()
        try:
            yield result
        except ROW_FAILURES as error:
            if self.stop_flag.is_set():
                raise
            result.skipped = True
            self.bad_row(table, row_id, f"{doing} failed ({type(error).__name__})")

    @property
    def today(self) -> dt.date:
        """The run's calendar date in India."""
        return clock.today_ist(self.now)

    def checkpoint(self) -> None:
        """Call between items: raise StopRequested once a stop was asked for."""
        if self.item_delay_seconds:
            self.stop_flag.sleep(self.item_delay_seconds)
        self.stop_flag.check()


ROW_FAILURES = (sqlite3.Error, ValueError, TypeError, UnicodeError)


class Progress(Protocol):
    """What a job reports its progress to: the command layer shows it (a bar on a terminal), or not."""

    shown: bool

    def update(self, steps: int) -> None: ...


class NoProgress(AbstractContextManager):
    """Progress nobody watches (cron, a pipe)."""

    shown = False

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exception: object) -> None:
        return None

    def update(self, steps: int) -> None:
        return None


@dataclass
class RowResult:
    """What became of one row handed to RunContext.one_row()."""

    skipped: bool = False


def new_run_id() -> str:
    """Return a fresh, unique run id."""
    return uuid.uuid4().hex


def _settings_options(options: RunOptions) -> dict[str, Any]:
    return {"core.db": options.db, "core.max_runtime": options.max_runtime, "core.log_format": options.log_format}


class RunRecord:
    """The ledger lines of one run: at most one `start`, and exactly one `finish` whatever happens."""

    def __init__(
        self, home: Path, job: str, trigger: str, dry_run: bool, now: Callable[[], dt.datetime], run_id: str
    ) -> None:
        self.home = home
        self.base: dict[str, Any] = {"run_id": run_id, "job": job, "trigger": trigger}
        if dry_run:
            self.base["dry_run"] = True
        self._now = now
        self.finished: dict[str, Any] | None = None

    def start(self) -> None:
        ledger.append(self.home, {"event": "start", **self.base, "ts": clock.format_utc(self._now())})

    def finish(self, status: str, **fields: Any) -> dict[str, Any]:
        """Append the run's one finish line (a second call changes nothing); return it."""
        if self.finished is None:
            fields.setdefault("exit_code", EXIT_BY_STATUS.get(status, EXIT_FAILED))
            fields = scrub_data({"duration_ms": 0, "items": 0, "errors": 0, "details": {}, **fields})
            self.finished = {"event": "finish", **self.base, "ts": clock.format_utc(self._now()), "status": status}
            self.finished |= fields
            self.finished = ledger.append(self.home, self.finished)
        return self.finished


def record_configuration_error(job: str, options: RunOptions, error: ConfigError, settings: Settings | None) -> None:
    """Append a `config` finish line for a run that could not start, when the home can take it.

    The home is the one the settings name (resolved without the rest of them
    when they cannot be read). Nothing is written, and nothing created, when
    it does not exist or cannot be written. The time is the run's clock, or
    the real one when the clock setting itself is the bad one.
    """
    home = settings.home if settings is not None else home_of(_settings_options(options))
    if not is_writable_home(home):
        return
    try:
        moment = settings.now() if settings is not None else clock.now_utc(os.environ.get(clock.NOW_VARIABLE))
    except ConfigError:
        moment = dt.datetime.now(dt.UTC)
    if not clock.in_range(moment):
        return  # no clock can stamp a valid line
    try:
        make_folder(home / "ledger")
        record = RunRecord(home, job, options.trigger, options.dry_run, lambda: moment, new_run_id())
        record.finish("config", exit_code=EXIT_CONFIG, error=str(error))
    except OSError:
        pass  # the error itself is still reported on standard error


def run_job(spec: JobSpec, options: RunOptions) -> int:
    """Run one job through its whole life and return the process exit code.

    Raise ConfigError (exit 78) for bad settings, a bad clock, a home that
    cannot be used or an unusable database, after recording it in the ledger
    where the home allows.
    """
    stop_flag = StopFlag()
    stopper = SignalStopper(stop_flag).install()  # before any ledger line: a stop never kills a run unrecorded
    try:
        return _run(spec, options, stop_flag, stopper)
    finally:
        stopper.uninstall()


def _checked_settings(spec: JobSpec, options: RunOptions, database: bool = True) -> Settings:
    """Load and check everything the job needs before anything is written (with database, its file
    too); raise ConfigError otherwise."""
    settings = load_settings(_settings_options(options), scopes=spec.setting_scopes)
    settings.now()
    settings.load_secrets(spec.setting_scopes)
    remember_secrets(settings.secret_values())
    check = spec.check_settings
    if check is not None:
        check(settings)
    if database:
        check_database_file(settings.database_path)
    share_with_group(settings.get("core.home_group"))
    check_writable_home(settings.home)
    return settings


def check_job_config(spec: JobSpec, options: RunOptions) -> int:
    """Check the job's settings as this environment gives them (not the database: jobctl doctor
    checks that apart); print one JSON object; write nothing.

    The object has `job`, `ok`, `error` (the one-line reason, or null) and
    `sources`: where each of the job's settings that is not a default came
    from (never a value). Return 0, or 78 when the run would be refused.
    """
    report: dict[str, Any] = {"job": spec.name, "ok": True, "error": None, "sources": {}}
    try:
        settings = _checked_settings(spec, options, database=False)
        report["sources"] = {
            key: source
            for key, source in settings.sources.items()
            if source != "default" and any(key == scope or key.startswith(f"{scope}.") for scope in spec.setting_scopes)
        }
    except ConfigError as error:
        report |= {"ok": False, "error": str(error)}
    print(json.dumps(report))
    return 0 if report["ok"] else EXIT_CONFIG


def _run(spec: JobSpec, options: RunOptions, stop_flag: StopFlag, stopper: SignalStopper) -> int:
    settings: Settings | None = None
    try:
        settings = _checked_settings(spec, options)
        home = settings.home
    except ConfigError as error:
        record_configuration_error(spec.name, options, error, settings)
        raise
    configure_logging(
        settings.get("core.log_format"), options.verbose, settings.secret_values(), _log_file(home, spec, options)
    )
    record = RunRecord(home, spec.name, options.trigger, options.dry_run, settings.now, new_run_id())
    bind_run(spec.name, record.base["run_id"])
    log = get_logger()

    def not_started(status: str, reason: str, exit_code: int | None = None) -> int:
        """Record a run that did no work: a finish line only."""
        fields: dict[str, Any] = {"details": {"reason": reason}}
        if exit_code is not None:
            fields |= {"exit_code": exit_code, "error": reason}
        line = record.finish(status, **fields)
        (log.info if status == "skipped" else log.warning)(f"run {status}", reason=reason)
        return line["exit_code"]

    app_mode = settings.get("core.app_mode")
    if app_mode != "desktop":
        return not_started("skipped", f"APP_MODE is {app_mode!r}, not 'desktop'")
    try:
        database = connect(settings.database_path, settings.get("core.busy_timeout_ms"), stop_flag=stop_flag)
        try:
            check_schema(database, settings.database_path)
        except ConfigError:
            database.close()
            raise
    except ConfigError as error:
        record.finish("config", exit_code=EXIT_CONFIG, error=str(error))
        raise
    except DatabaseBusy as error:  # a runtime fault, not a setting: exit 1, and the next run may well work
        return not_started("failed", str(error), EXIT_FAILED)
    except StopRequested as stop:
        return not_started(_stop_status(stop.reason), _stop_error(stop.reason), _stop_exit(stop.reason))
    try:
        lock = JobLock(home, spec.name)
        if not lock.acquire():
            return not_started("locked", f"another run of this job holds the lock {lock.path}")
        try:
            done_by = _slot_done_by(home, spec, settings.now()) if options.trigger == "cron" else None
            if done_by:
                return not_started("skipped", done_by)
            exit_code = _run_started(spec, options, settings, database, record, stop_flag, stopper, log)
        finally:
            lock.release()
    finally:
        database.close()
    # After the lock and the database are let go: a slow mail server never holds up the next run.
    if not options.dry_run and not stop_flag.is_set():
        _look_for_alerts(settings, spec, stop_flag, log)
    return exit_code


def _log_file(home: Path, spec: JobSpec, options: RunOptions) -> Path | None:
    """The job's own log file, when asked for or when no console exists (pythonw has no standard error)."""
    if not options.log_file and sys.__stderr__ is not None:
        return None
    make_folder(home / "log")
    return home / "log" / f"{spec.script}.log"


def _slot_done_by(home: Path, spec: JobSpec, now: dt.datetime) -> str | None:
    """For a cron start: say why it should skip if a run already began in its IST slot, else None.

    Where the host's zone has daylight saving, `jobctl install` puts a daily
    job at both candidate local times; the second start of the same IST slot
    ends here.
    """
    entry = entry_for(spec)
    if entry is None:
        return None
    slot = entry.latest_slot(now)
    for line in ledger.recent_records(home, spec.name, clock.format_utc(slot)):
        if line["event"] == "start" and not line.get("dry_run"):
            return f"the {slot.isoformat(timespec='minutes')} slot already ran (run {line['run_id']})"
    return None


def _stop_status(reason: str | None) -> str:
    return "timeout" if reason == "timeout" else "interrupted"


def _stop_error(reason: str | None) -> str:
    return "time limit reached" if reason == "timeout" else f"stopped by {reason}"


def _stop_exit(reason: str | None) -> int:
    return STOP_EXIT_CODES.get(reason or "", EXIT_SIGTERM)


@dataclass
class _Ending:
    """How the work ended: status, exit code, error text and what it did."""

    status: str
    exit_code: int
    error: str | None
    outcome: Outcome


def classify(error: BaseException | None, outcome: Outcome, stop_flag: StopFlag) -> _Ending:
    """Given what the work raised (None: it returned outcome), return how the run ended.

    Once a stop was asked for, any error is the stop's doing (an interrupted
    statement, an abandoned wait): the run is `interrupted` or `timeout`.
    """
    if isinstance(error, KeyboardInterrupt):
        stop_flag.set("SIGINT")
    if error is None:
        status = "partial" if outcome.errors else "success"
        return _Ending(status, EXIT_BY_STATUS[status], "; ".join(outcome.problems) or None, outcome)
    if isinstance(error, JobFailed) and isinstance(error.outcome, Outcome):
        outcome = error.outcome
    if stop_flag.is_set() or isinstance(error, StopRequested):
        reason = stop_flag.reason or getattr(error, "reason", None)
        return _Ending(_stop_status(reason), _stop_exit(reason), _stop_error(reason), outcome)
    if isinstance(error, sqlite3.OperationalError) and "database is locked" in str(error):
        return _Ending("failed", EXIT_FAILED, str(DatabaseBusy()), outcome)
    if isinstance(error, ConfigError):  # a setting found wrong only while working: still a configuration error
        return _Ending("config", EXIT_CONFIG, str(error), outcome)
    if isinstance(error, CasejobsError):
        return _Ending("failed", EXIT_FAILED, str(error), outcome)
    return _Ending("failed", EXIT_FAILED, f"{type(error).__name__}: {error}", outcome)


def _run_started(
    spec: JobSpec,
    options: RunOptions,
    settings: Settings,
    database: sqlite_utils.Database,
    record: RunRecord,
    stop_flag: StopFlag,
    stopper: SignalStopper,
    log: Any,
) -> int:
    """The part of a run that happens under the job's lock with the database open; return the exit code."""
    max_runtime = settings.get("core.max_runtime") or spec.time_limit
    context = RunContext(
        job=spec.name,
        run_id=record.base["run_id"],
        settings=settings,
        database=database,
        now=settings.now(),
        dry_run=options.dry_run,
        force=options.force,
        trigger=options.trigger,
        options=options.job_options,
        stop_flag=stop_flag,
        log=log,
        item_delay_seconds=settings.get("core.debug_item_delay_ms") / 1000,
    )
    if options.progress is not None:
        context.progress = options.progress
    monitor = Monitor(settings, spec.monitor_key, record.base["run_id"], log, dry_run=options.dry_run)
    run = Run(spec, options, settings, record, stopper, monitor, log)
    run.outcome = context.outcome  # what the work did so far is recorded however the run ends
    with run, time_limit(stop_flag, max_runtime):
        log.info("run started", trigger=options.trigger, dry_run=options.dry_run, max_runtime=max_runtime)
        run.outcome = spec.work(context) or context.outcome
        for line in run.outcome.plan or ():  # a dry run's plan, read lazily while the database is open
            options.show(line)
    return run.exit_code


def _look_for_alerts(settings: Settings, spec: JobSpec, stop_flag: StopFlag, log: Any) -> None:
    """Mail the ADMINs if this run turned its job CRITICAL, or back (lib/alerts.py). Whatever goes wrong
    there is a warning in the log: the run has ended, and its record and exit code stand."""
    entry = entry_for(spec)
    if entry is None:
        return
    try:
        alerts.look(settings, [entry], log, stop_flag)
    except Exception as error:
        log.warning("alerts not looked at", reason=f"{type(error).__name__}: {error}")


class Run:
    """One run that does work, as a context manager.

    Entering writes the `start` line and pings the start; leaving, by any
    path (a return, an error, a stop, a second Ctrl-C, SystemExit), writes
    the audit row, the one `finish` line and the finish ping, and swallows
    what was raised: the exit code says how the run ended.
    """

    def __init__(
        self,
        spec: JobSpec,
        options: RunOptions,
        settings: Settings,
        record: RunRecord,
        stopper: SignalStopper,
        monitor: Monitor,
        log: Any,
    ) -> None:
        self.spec = spec
        self.options = options
        self.settings = settings
        self.record = record
        self.stopper = stopper
        self.stop_flag = stopper.flag
        self.monitor = monitor
        self.log = log
        self.outcome = Outcome()
        self.exit_code = EXIT_FAILED
        self._started = time.monotonic()

    def __enter__(self) -> Run:
        try:
            self.record.start()
        except KeyboardInterrupt:
            self.stop_flag.set("SIGINT")  # a second Ctrl-C this early: the work's first check stops it
        self._started = time.monotonic()
        self.monitor.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> bool:
        self.stopper.recording = True  # from here a second Ctrl-C only hurries the recording along
        ending = classify(error, self.outcome, self.stop_flag)
        if ending.status == "failed" and error is not None and not isinstance(error, CasejobsError):
            trace_text = "".join(traceback.format_exception(error)) if self.options.verbose else None
            self.log.error("run failed", error=ending.error, traceback=trace_text)
        finish: dict[str, Any] = {
            "status": ending.status,
            "exit_code": ending.exit_code,
            "duration_ms": int((time.monotonic() - self._started) * 1000),
            "items": ending.outcome.items,
            "errors": ending.outcome.errors,
            "details": ending.outcome.details,
        }
        if ending.error:
            finish["error"] = ending.error
        if not self.options.dry_run and not self.stop_flag.hurry:
            _write_audit_row(self.settings, self.spec, {**self.record.base, **finish}, self.stop_flag, self.log)
        self.record.finish(**finish)
        level = "info" if ending.status == "success" else "warning" if ending.status != "failed" else "error"
        getattr(self.log, level)("run finished", **finish)
        if not self.stop_flag.hurry:
            self.monitor.finish(ending.exit_code, stopping=self.stop_flag.is_set())
        self.exit_code = ending.exit_code
        return True


def _write_audit_row(settings: Settings, spec: JobSpec, finish: dict[str, Any], stop_flag: StopFlag, log: Any) -> None:
    """Record the run in audit_logs, on a connection of its own (the run's may be interrupted).

    A failure here is logged and never hides the job's outcome; a stopped run
    waits only briefly for the application's write lock.
    """
    failed = finish["status"] in ("failed", "timeout")
    severity = spec.failure_severity if failed else ("MEDIUM" if finish["status"] != "success" else "LOW")
    finish = scrub_data(finish)
    row = {
        "action": "JOB_ERROR" if failed else "JOB_COMPLETED",
        "entity_type": "JOB",
        "entity_id": None,
        "entity_name": spec.name,
        "severity": severity,
        "description": f"{spec.name} {finish['status']}: {plural(finish['items'], 'item')}, "
        f"{plural(finish['errors'], 'error')}",
        "details": json.dumps(
            {
                key: finish.get(key)
                for key in ("run_id", "trigger", "status", "exit_code", "duration_ms", "items", "errors", "details")
            },
            default=str,
        ),
        "error_message": finish.get("error"),
        "user_id": None,
        "created_at": clock.format_utc(settings.now()),
    }
    wait_ms = settings.get("core.busy_timeout_ms")
    if stop_flag.is_set():
        wait_ms = min(wait_ms, int(STOPPING_AUDIT_SECONDS * 1000))
    try:
        database = connect(settings.database_path, wait_ms)
        try:
            with write_transaction(database):
                database.conn.execute(
                    f"INSERT INTO audit_logs ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                    tuple(row.values()),
                )
        finally:
            database.close()
    except Exception as error:  # the job's own outcome must win over a bookkeeping failure
        log.warning("audit row not written", error=str(error))
