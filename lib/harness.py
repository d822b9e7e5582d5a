"""The harness: the life of one run, the same for every job (design.md).

settings -> APP_MODE guard -> database check -> lock -> ledger `start` ->
the job's work (stoppable at item boundaries) -> audit row -> ledger `finish`.
A job supplies only its work function; everything else lives here once.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from lib import clock, ledger
from lib.db import check_schema, connect, write_transaction
from lib.errors import (
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_PARTIAL,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_SUCCESS,
    EXIT_TIMEOUT,
    CasejobsError,
    JobFailed,
    StopRequested,
)
from lib.home import prepare_home
from lib.lock import JobLock
from lib.log import bind_run, configure_logging, get_logger
from lib.monitor import Monitor
from lib.schedule import find_entry
from lib.settings import Settings, load_settings

EXIT_BY_STATUS = {
    "success": EXIT_SUCCESS,
    "skipped": EXIT_SUCCESS,
    "partial": EXIT_PARTIAL,
    "failed": EXIT_FAILED,
    "locked": EXIT_LOCKED,
    "timeout": EXIT_TIMEOUT,
}
STOP_EXIT_CODES = {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM, "timeout": EXIT_TIMEOUT}


@dataclass
class Outcome:
    """What a job's work reports: items done, items failed, and its own figures."""

    items: int = 0
    errors: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobSpec:
    """A job as the harness sees it: its ledger name and its work function."""

    name: str
    summary: str
    work: Callable[[RunContext], Outcome]
    default_max_runtime: int = 3600
    failure_severity: str = "HIGH"
    # Checks the job's own settings before anything is written; raises ConfigError (exit 78).
    check_settings: Callable[[Settings], None] | None = None


@dataclass
class RunOptions:
    """The options every job command takes (see lib/cli.py)."""

    db: str | None = None
    dry_run: bool = False
    force: bool = False
    max_runtime: int | None = None
    trigger: str = "manual"
    log_format: str | None = None
    verbose: bool = False
    job_options: dict[str, Any] = field(default_factory=dict)


class StopFlag:
    """Set by SIGTERM, SIGINT or the time limit; read by the job between items."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._event = threading.Event()

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


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

    @property
    def today(self) -> dt.date:
        """The run's calendar date in India."""
        return clock.today_ist(self.now)

    def checkpoint(self) -> None:
        """Call between items: raise StopRequested once a stop was asked for."""
        if self.item_delay_seconds:
            time.sleep(self.item_delay_seconds)
        if self.stop_flag.is_set():
            raise StopRequested(self.stop_flag.reason or "stop")


def new_run_id() -> str:
    """Return a fresh, unique run id."""
    return uuid.uuid4().hex


def _settings_for(options: RunOptions) -> Settings:
    return load_settings(
        {"core.db": options.db, "core.max_runtime": options.max_runtime, "core.log_format": options.log_format}
    )


@contextmanager
def _stop_on_signals_and_time_limit(stop_flag: StopFlag, max_runtime: int | None) -> Iterator[None]:
    """Within the block, SIGTERM/SIGINT and the time limit set stop_flag instead of killing."""

    def on_signal(number: int, frame: Any) -> None:
        name = signal.Signals(number).name
        if name == "SIGINT" and stop_flag.reason == "SIGINT":
            raise KeyboardInterrupt  # a second Ctrl-C: the person really means it
        stop_flag.set(name)

    previous = {number: signal.signal(number, on_signal) for number in (signal.SIGTERM, signal.SIGINT)}
    timer = threading.Timer(max_runtime, stop_flag.set, args=("timeout",)) if max_runtime else None
    if timer:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer:
            timer.cancel()
        for number, handler in previous.items():
            signal.signal(number, handler)


def _write_audit_row(context: RunContext, spec: JobSpec, finish: dict[str, Any]) -> None:
    """Record the run in audit_logs; a failure here is logged and never hides the job's outcome."""
    failed = finish["status"] in ("failed", "timeout")
    severity = spec.failure_severity if failed else ("MEDIUM" if finish["status"] != "success" else "LOW")
    row = {
        "action": "JOB_ERROR" if failed else "JOB_COMPLETED",
        "entity_type": "JOB",
        "entity_id": None,
        "entity_name": spec.name,
        "severity": severity,
        "description": f"{spec.name} {finish['status']}: {finish['items']} items, {finish['errors']} errors",
        "details": json.dumps(
            {
                key: finish.get(key)
                for key in ("run_id", "trigger", "status", "exit_code", "duration_ms", "items", "errors", "details")
            },
            default=str,
        ),
        "error_message": finish.get("error"),
        "user_id": None,
        "created_at": clock.format_utc(context.now),
    }
    try:
        with write_transaction(context.database):
            context.database["audit_logs"].insert(row)
    except Exception as error:  # the job's own outcome must win over a bookkeeping failure
        context.log.warning("audit row not written", error=str(error))


def run_job(spec: JobSpec, options: RunOptions) -> int:
    """Run one job through its whole life and return the process exit code.

    Raise ConfigError (exit 78, nothing written) for bad settings, a bad clock,
    an unwritable home or an unusable database.
    """
    settings = _settings_for(options)
    now = settings.now()
    home = prepare_home(settings.home)
    settings.load_secrets()
    if spec.check_settings:
        spec.check_settings(settings)
    configure_logging(settings.get("core.log_format"), options.verbose, settings.secret_values())
    run_id = new_run_id()
    bind_run(spec.name, run_id)
    log = get_logger()
    base = {"run_id": run_id, "job": spec.name, "trigger": options.trigger}
    if options.dry_run:
        base["dry_run"] = True

    def finish_line(status: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("exit_code", EXIT_BY_STATUS.get(status, EXIT_FAILED))
        return ledger.append(
            home, {"event": "finish", **base, "ts": clock.format_utc(settings.now()), "status": status, **fields}
        )

    def not_started(status: str, reason: str) -> int:
        """Record a run that did no work (skipped or locked): a finish line only."""
        finish_line(status, duration_ms=0, items=0, errors=0, details={"reason": reason})
        (log.info if status == "skipped" else log.warning)(f"run {status}", reason=reason)
        return EXIT_BY_STATUS[status]

    app_mode = settings.get("core.app_mode")
    if app_mode != "desktop":
        return not_started("skipped", f"APP_MODE is {app_mode!r}, not 'desktop'")

    database = connect(settings.database_path, settings.get("core.busy_timeout_ms"))
    check_schema(database, settings.database_path)

    lock = JobLock(home, spec.name)
    if not lock.acquire():
        database.close()
        return not_started("locked", f"another run of this job holds the lock {lock.path}")
    try:
        done_by = _slot_done_by(home, spec.name, now) if options.trigger == "cron" else None
        if done_by:
            return not_started("skipped", done_by)
        return _run_locked(spec, options, settings, database, now, base, home, log)
    finally:
        lock.release()
        database.close()


def _slot_done_by(home: Path, job: str, now: dt.datetime) -> str | None:
    """For a cron start: say why it should skip if a run already began in its IST slot, else None.

    Where the host's zone has daylight saving, `jobctl install` puts a daily
    job at both candidate local times; the second start of the same IST slot
    ends here.
    """
    entry = find_entry(job)
    if entry is None:
        return None
    slot = entry.latest_slot(now)
    for record in ledger.recent_records(ledger.ledger_path(home, job), clock.format_utc(slot)):
        if record.get("event") == "start" and not record.get("dry_run"):
            return f"the {slot.isoformat(timespec='minutes')} slot already ran (run {record.get('run_id')})"
    return None


def _run_locked(
    spec: JobSpec,
    options: RunOptions,
    settings: Settings,
    database: sqlite_utils.Database,
    now: dt.datetime,
    base: dict[str, Any],
    home: Path,
    log: Any,
) -> int:
    """The part of a run that happens under the job's lock; return the exit code."""
    max_runtime = settings.get("core.max_runtime") or spec.default_max_runtime
    stop_flag = StopFlag()
    context = RunContext(
        job=spec.name,
        run_id=base["run_id"],
        settings=settings,
        database=database,
        now=now,
        dry_run=options.dry_run,
        force=options.force,
        trigger=options.trigger,
        options=options.job_options,
        stop_flag=stop_flag,
        log=log,
        item_delay_seconds=settings.get("core.debug_item_delay_ms") / 1000,
    )
    ledger.append(home, {"event": "start", **base, "ts": clock.format_utc(settings.now())})
    log.info("run started", trigger=options.trigger, dry_run=options.dry_run, max_runtime=max_runtime)
    monitor = Monitor(settings, spec.name, base["run_id"], log, dry_run=options.dry_run)
    monitor.start()
    started = time.monotonic()
    outcome = Outcome()
    error: str | None = None
    with _stop_on_signals_and_time_limit(stop_flag, max_runtime):
        try:
            outcome = spec.work(context)
            status = "partial" if outcome.errors else "success"
            exit_code = EXIT_PARTIAL if outcome.errors else EXIT_SUCCESS
        except StopRequested as stop:
            status = "timeout" if stop.reason == "timeout" else "interrupted"
            exit_code = STOP_EXIT_CODES.get(stop.reason, EXIT_SIGTERM)
            error = "time limit reached" if stop.reason == "timeout" else f"stopped by {stop.reason}"
        except JobFailed as failure:
            status, exit_code, error = "failed", EXIT_FAILED, str(failure)
            outcome = failure.outcome if isinstance(failure.outcome, Outcome) else outcome
        except CasejobsError as failure:
            status, exit_code, error = "failed", EXIT_FAILED, str(failure)
        except Exception as failure:
            status, exit_code, error = "failed", EXIT_FAILED, f"{type(failure).__name__}: {failure}"
            log.error("run failed", error=error, traceback=traceback.format_exc() if options.verbose else None)
    finish = {
        "status": status,
        "exit_code": exit_code,
        "duration_ms": int((time.monotonic() - started) * 1000),
        "items": outcome.items,
        "errors": outcome.errors,
        "details": outcome.details,
    }
    if error:
        finish["error"] = error
    if not options.dry_run:
        _write_audit_row(context, spec, {**base, **finish})
    ledger.append(home, {"event": "finish", **base, "ts": clock.format_utc(settings.now()), **finish})
    summary = log.info if status == "success" else log.warning if status in ("partial", "interrupted") else log.error
    summary("run finished", **finish)
    monitor.finish(exit_code)
    return exit_code
