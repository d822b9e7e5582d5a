"""nightlyBackup: one verified, restorable package a day, and a retention that never loses the last good ones.

A package (casejobs-backup-YYYY-MM-DD.zip, the IST date) holds database.db
(SQLite's online backup, consistent while the application writes), the JSON
exports cases.json, users.json and audit-logs.json, read from that copy so
that everything is one point in time, and manifest.json. It is written
under a temporary name, fsynced, verified, then renamed (lib/archive.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sqlite3
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from jobs import NIGHTLY_BACKUP as SPEC
from lib import __version__
from lib.archive import (
    PackageWriter,
    extract_member,
    free_space_problem,
    fsync_folder,
    integrity_check,
    read_manifest,
    verify_package,
)
from lib.cli import job_command, main, report_errors
from lib.clock import format_utc, now_utc
from lib.errors import CasejobsError, StopRequested, UsageError
from lib.harness import RunContext
from lib.history import process_alive
from lib.home import make_folder
from lib.jobspec import Outcome
from lib.redaction import redact_row
from lib.schema import SCHEMA_VERSION, contract_problems
from lib.settings import load_settings
from lib.stop import StopFlag, exit_on_terminate

PACKAGE_NAME = re.compile(r"^casejobs-backup-(\d{4}-\d{2}-\d{2})\.zip$")
LEFTOVER_NAME = re.compile(r"^\.casejobs-(backup-\d{4}-\d{2}-\d{2}\.zip\.tmp|copy|verify)-(\d+)")
SENSITIVE_USER_COLUMNS = ("password_hash", "api_token", "phone")
EXPORT_BATCH = 1000  # cases between two stop checks
AUDIT_DAYS = 30


def package_path(folder: Path, day: dt.date) -> Path:
    """Given the backups folder and an IST date, return that day's package path."""
    return folder / f"casejobs-backup-{day.isoformat()}.zip"


def packages_in(folder: Path) -> list[tuple[dt.date, Path]]:
    """Return (IST date, path) of every file in folder named like our packages, newest first."""
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = PACKAGE_NAME.match(path.name)
        if match and path.is_file():
            with contextlib.suppress(ValueError):
                found.append((dt.date.fromisoformat(match.group(1)), path))
    return sorted(found, reverse=True)


def remove_leftovers(folder: Path, pattern: re.Pattern[str] = LEFTOVER_NAME) -> list[str]:
    """Delete the temporary files that runs which died left in folder; return their names.

    The name holds the pid of the process that made it: a file of a process
    still alive (a verify going on beside the backup, say) is left alone.
    """
    removed = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = pattern.match(path.name)
        if match and not process_alive(int(match.group(match.lastindex or 0))):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


BACKUP_STEP_PAGES = 4096  # 16 MiB with 4 KiB pages: a stop is seen between two steps


def online_backup(source: sqlite3.Connection, destination: Path, stop_flag: StopFlag | None = None) -> None:
    """Copy the live database with SQLite's online backup API: one point in time, stoppable between steps.

    The copy goes in steps so that a stop is seen between two of them. A read
    transaction held on the source for the whole copy keeps every step on
    the same snapshot: the application's writes meanwhile neither restart
    the copy nor reach it.
    """
    target = sqlite3.connect(destination)
    try:
        source.execute("BEGIN")
        try:
            source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
            source.backup(
                target,
                pages=BACKUP_STEP_PAGES,
                progress=(lambda status, remaining, total: stop_flag.check()) if stop_flag else None,
            )
        finally:
            if source.in_transaction:
                source.execute("ROLLBACK")
        target.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
    finally:
        target.close()


def _rows(connection: sqlite3.Connection, sql: str, parameters: Any = ()) -> Iterator[dict[str, Any]]:
    cursor = connection.execute(sql, parameters)
    names = [column[0] for column in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def _grouped(rows: Iterator[dict[str, Any]], key: str) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """Given rows ordered by key, yield (key value, its rows), dropping the key column."""
    current: Any = None
    batch: list[dict[str, Any]] = []
    for row in rows:
        value = row.pop(key)
        if batch and value != current:
            yield current, batch
            batch = []
        current = value
        batch.append(row)
    if batch:
        yield current, batch


class _Children:
    """One child table read in case order, handing out each case's rows as the cases go by."""

    def __init__(self, rows: Iterator[dict[str, Any]]) -> None:
        self._groups = _grouped(rows, "_case_id")
        self._pending = next(self._groups, None)

    def of(self, case_id: int) -> list[dict[str, Any]]:
        while self._pending is not None and (type(self._pending[0]) is not int or self._pending[0] < case_id):
            self._pending = next(self._groups, None)  # rows of cases that do not exist are not exported
        if self._pending is not None and self._pending[0] == case_id:
            rows = self._pending[1]
            self._pending = next(self._groups, None)
            return rows
        return []


def nested_cases(connection: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Yield each case with its tasks (each with its subtasks), hearings, orders and documents.

    Every table is read once, in case order, and merged as it streams: memory
    holds one case at a time, whatever the size of the database.
    """
    children = {
        "tasks": _Children(_rows(connection, "SELECT case_id AS _case_id, * FROM tasks ORDER BY case_id, id")),
        "hearings": _Children(
            _rows(connection, "SELECT case_id AS _case_id, * FROM hearings ORDER BY case_id, hearing_date, id")
        ),
        "orders": _Children(
            _rows(connection, "SELECT case_id AS _case_id, * FROM orders ORDER BY case_id, kind, order_no, id")
        ),
        "documents": _Children(_rows(connection, "SELECT case_id AS _case_id, * FROM documents ORDER BY case_id, id")),
    }
    subtasks = _Children(
        _rows(
            connection,
            "SELECT t.case_id AS _case_id, s.* FROM subtasks AS s JOIN tasks AS t ON t.id = s.task_id "
            "ORDER BY t.case_id, s.task_id, s.id",
        )
    )
    for case in _rows(connection, "SELECT * FROM cases ORDER BY id"):
        confidential = bool(case.get("is_confidential"))
        redact_row("cases", case, confidential)
        for name, table in children.items():
            case[name] = [redact_row(name, row, confidential) for row in table.of(case["id"])]
        by_task: dict[int, list[dict[str, Any]]] = {}
        for subtask in subtasks.of(case["id"]):
            by_task.setdefault(subtask["task_id"], []).append(redact_row("subtasks", subtask, confidential))
        for task in case["tasks"]:
            task["subtasks"] = by_task.get(task["id"], [])
        yield case


NESTED = (("tasks", "tasks"), ("hearings", "hearings"), ("orders", "orders"), ("documents", "documents"))


def _encoded(record: dict[str, Any]) -> bytes | None:
    """Return the record as JSON, or None when a value cannot be (text that is not UTF-8, a BLOB)."""
    try:
        return orjson.dumps(record)
    except (TypeError, orjson.JSONEncodeError):
        return None


def _without_bad_children(case: dict[str, Any], context: RunContext) -> dict[str, Any]:
    """Drop (and name) each child row of the case that cannot be exported, so that the rest still is."""
    for key, table in NESTED:
        kept = []
        for row in case.get(key, []):
            subtasks = row.get("subtasks", []) if key == "tasks" else []
            good_subtasks = [subtask for subtask in subtasks if _encoded(subtask) is not None]
            for subtask in subtasks:
                if subtask not in good_subtasks:
                    context.bad_row("subtasks", subtask.get("id"), "cannot be exported: a value is not UTF-8 text")
            if key == "tasks":
                row["subtasks"] = good_subtasks
            if _encoded(row) is None:
                context.bad_row(table, row.get("id"), "cannot be exported: a value is not UTF-8 text")
            else:
                kept.append(row)
        case[key] = kept
    return case


def write_json_array(writer: Any, records: Iterator[dict[str, Any]], context: RunContext, table: str) -> None:
    """Stream records into a member as one JSON array, one record per line, checking for a stop.

    A record that cannot be written (text that is not UTF-8, a BLOB) is a bad
    row: skipped, counted, named by id; a case drops only its bad children.
    """
    writer.write(b"[\n")
    written = 0
    for number, record in enumerate(records):
        if number and number % EXPORT_BATCH == 0:
            context.checkpoint()
        data = _encoded(record)
        if data is None and table == "cases":
            data = _encoded(_without_bad_children(record, context))
        if data is None:
            context.bad_row(table, record.get("id"), "cannot be exported: a value is not UTF-8 text")
            continue
        writer.write((b",\n" if written else b"") + data)
        written += 1
        writer.rows += 1
    writer.write(b"\n]\n")


def users_without_secrets(connection: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Yield every user without the sensitive columns of data-model.md."""
    for user in _rows(connection, "SELECT * FROM users ORDER BY id"):
        for column in SENSITIVE_USER_COLUMNS:
            user.pop(column, None)
        yield user


def recent_audit_logs(connection: sqlite3.Connection, now: dt.datetime) -> Iterator[dict[str, Any]]:
    """Yield the audit rows of the last 30 days."""
    since = format_utc(now - dt.timedelta(days=AUDIT_DAYS))
    return _rows(connection, "SELECT * FROM audit_logs WHERE created_at >= ? ORDER BY created_at, id", (since,))


class _IntegrityCheck(threading.Thread):
    """integrity_check of the copy on a second core while the exports are written (a stop interrupts it)."""

    def __init__(self, path: Path, stop_flag: StopFlag) -> None:
        super().__init__(name="integrity-check", daemon=True)
        self.path = path
        self.stop_flag = stop_flag
        self.verdict = "not run"

    def run(self) -> None:
        with contextlib.suppress(StopRequested):  # the main thread sees the stop itself
            self.verdict = integrity_check(self.path, self.stop_flag)


def table_counts(connection: sqlite3.Connection) -> dict[str, int]:
    """Return the row count of every table of the copy."""
    names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def write_exports(context: RunContext, writer: PackageWriter, copy_path: Path) -> dict[str, int]:
    """Stream the JSON exports from the copy into the package; return the copy's row count per table."""
    copy = sqlite3.connect(f"file:{copy_path}?mode=ro", uri=True, check_same_thread=False)
    # Text that is not UTF-8 must not stop the export: it is read as it is, and that row is skipped.
    copy.text_factory = lambda data: data.decode("utf-8", "surrogateescape")
    unregister = context.stop_flag.on_stop(copy.interrupt)  # a stop interrupts the export's statements
    try:
        for name, table, records in (
            ("cases.json", "cases", nested_cases(copy)),
            ("users.json", "users", users_without_secrets(copy)),
            ("audit-logs.json", "audit_logs", recent_audit_logs(copy, context.now)),
        ):
            context.checkpoint()
            context.log.info("exporting", member=name)
            with writer.member(name) as member:
                write_json_array(member, records, context, table)
        return table_counts(copy)
    finally:
        unregister()
        copy.close()


def _raise_unless_sound(verdict: str) -> None:
    if verdict != "ok":
        raise CasejobsError(f"integrity_check failed on the database copy: {verdict}; no package made")


def write_package(context: RunContext, copy_path: Path, final_path: Path, started: float) -> dict[str, Any]:
    """Write, fsync and verify the package from the copy, then rename it into place; return its manifest.

    Raise CasejobsError (and leave no file behind) if the copy is not sound or
    the package does not verify.
    """
    checker = _IntegrityCheck(copy_path, context.stop_flag)
    checker.start()
    writer = PackageWriter(final_path, context.settings.get("backup.compression_level"))
    try:
        try:
            tables = write_exports(context, writer, copy_path)
        except sqlite3.DatabaseError:
            context.stop_flag.join(checker)  # a damaged database usually breaks the exports first: say why
            _raise_unless_sound(checker.verdict)
            raise
        context.stop_flag.join(checker)
        _raise_unless_sound(checker.verdict)
        context.checkpoint()
        context.log.info("adding the database", member="database.db", integrity_check=checker.verdict)
        writer.add_file("database.db", copy_path, rows=sum(tables.values()), between_chunks=context.checkpoint)
        manifest = writer.close(
            {
                "created_at": format_utc(context.now),
                "ist_date": context.today.isoformat(),
                "schema_version": SCHEMA_VERSION,
                "sqlite_version": sqlite3.sqlite_version,
                "casejobs_version": __version__,
                "integrity_check": checker.verdict,
                "duration_ms": int((time.monotonic() - started) * 1000),
                "tables": tables,
            }
        )
        context.log.info("verifying the package")
        verification = verify_package(writer.temporary_path, stop_flag=context.stop_flag)
        if not verification.ok:
            raise CasejobsError(f"the new package failed verification: {'; '.join(verification.problems)}")
        context.checkpoint()
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return manifest


def apply_retention(folder: Path, today: dt.date, retention_days: int, keep_newest: int) -> list[str]:
    """Delete packages older than retention_days, never one of the keep_newest newest verified ones.

    Only files named like our packages are considered. A package counts as
    verified when its manifest can be read (only verified packages ever get a
    final name). Return the names deleted.
    """
    packages = packages_in(folder)
    readable = []
    for _day, path in packages:
        with contextlib.suppress(ValueError):
            read_manifest(path)
            readable.append(path)
    protected = set(readable[:keep_newest])
    deleted = []
    for day, path in packages:
        if (today - day).days > retention_days and path not in protected:
            path.unlink(missing_ok=True)
            deleted.append(path.name)
    if deleted:
        fsync_folder(folder)
    return deleted


def work(context: RunContext) -> Outcome:
    """The job's work: make today's package unless a verified one exists, then apply retention."""
    started = time.monotonic()
    folder = context.settings.home / "backups"
    today = context.today
    final_path = package_path(folder, today)
    retention = (context.settings.get("backup.retention_days"), context.settings.get("backup.keep_newest"))
    if context.dry_run:
        exists = final_path.exists()
        click.echo(f"would {'keep' if exists and not context.force else 'write'} {final_path}")
        return Outcome(details={"package": str(final_path), "already_exists": exists})
    make_folder(folder, shared=False)
    leftovers = remove_leftovers(folder)
    if leftovers:
        context.log.info("removed what a dead run left", files=leftovers)
    if final_path.exists() and not context.force:
        verification = verify_package(final_path)
        if verification.ok:
            deleted = apply_retention(folder, today, *retention)
            return Outcome(details={"already_done": True, "package": str(final_path), "deleted_packages": deleted})
        context.log.warning("today's package does not verify: making it again", problems=verification.problems)
    copy_path = folder / f".casejobs-copy-{os.getpid()}.db"
    try:
        online_backup(context.database.conn, copy_path, context.stop_flag)
        context.log.info("database copied", bytes=copy_path.stat().st_size)
        context.checkpoint()
        manifest = write_package(context, copy_path, final_path, started)
    finally:
        copy_path.unlink(missing_ok=True)
    deleted = apply_retention(folder, today, *retention)
    members = manifest["members"]
    uncompressed = sum(member["size"] for member in members.values())
    size = final_path.stat().st_size
    context.outcome.details |= {
        "package": str(final_path),
        "size": size,
        "compression_ratio": round(uncompressed / size, 2) if size else None,
        "rows": {name: member["rows"] for name, member in members.items()},
        "duration_ms": int((time.monotonic() - started) * 1000),
        "deleted_packages": deleted,
        "already_done": False,
    }
    context.outcome.items = len(members)
    return context.outcome


def _backups_folder() -> Path:
    return load_settings().home / "backups"


def _scratch_folder() -> Path:
    """Where verify and restore inflate a database copy: the backups folder, cleared of dead runs' copies."""
    folder = _backups_folder()
    if folder.parent.is_dir():
        make_folder(folder, shared=False)
    remove_leftovers(folder)
    return folder


@click.command(name="verify")
@click.argument("package", required=False, type=click.Path(dir_okay=False))
@click.option("--all", "check_all", is_flag=True, help="Verify every package in the backups folder.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("nightly-backup verify")
def verify_command(package: str | None, check_all: bool, verbose: bool) -> None:
    """Verify a package (default: the newest; --all: every one): checksums, the ZIP's CRCs and
    integrity_check of the database inside. One line per package, `ok` or `BAD: <reason>`;
    exit 1 when any package is bad.
    """
    exit_on_terminate()
    if package and check_all:
        raise UsageError("give a PACKAGE or --all, not both")
    if package:
        paths = [Path(package)]
    else:
        found = [path for _, path in packages_in(_backups_folder())]
        if not found:
            raise CasejobsError(f"no package in {_backups_folder()}")
        paths = found if check_all else found[:1]
    scratch = _scratch_folder()
    bad = 0
    for path in paths:
        problems = (
            verify_package(path, check_database=True, scratch=scratch).problems
            if path.is_file()
            else ["no such package"]
        )
        if problems:
            bad += 1
            click.echo(f"{path}: BAD: {'; '.join(problems)}")
        else:
            click.echo(f"{path}: ok")
    sys.exit(1 if bad else 0)


@click.command(name="restore")
@click.argument("package", type=click.Path(dir_okay=False, exists=True))
@click.option("--to", "target", required=True, type=click.Path(dir_okay=False), help="Where to write the database.")
@click.option("--force", is_flag=True, help="Replace an existing file (kept beside it as PATH.bak-<timestamp>).")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("nightly-backup restore")
def restore_command(package: str, target: str, force: bool, verbose: bool) -> None:
    """Restore the database of a package to PATH, after verifying the package.

    The file is written beside PATH under a temporary name, fsynced and
    renamed; nothing is written outside PATH's folder, whatever names the
    archive holds.
    """
    exit_on_terminate()
    restored = restore(Path(package), Path(target), force)
    click.echo(f"restored {restored} from {package}")


RESTORE_LEFTOVER = ".{name}.restore-"


def restore(package: Path, target: Path, force: bool) -> Path:
    """Verify package, then write its database.db to target atomically; return the target path.

    The database must meet the contract of data-model.md at a version this
    casejobs knows; a replaced file's mode and owner are kept. Raise
    CasejobsError if the package does not verify, its database is not a
    casejobs database, the target exists without force, its folder does not
    exist or has too little room.
    """
    result = verify_package(package, check_database=True, scratch=_scratch_folder())
    if not result.ok:
        raise CasejobsError(f"{package} failed verification, nothing restored: {'; '.join(result.problems)}")
    target = target.absolute()
    folder = target.parent
    if not folder.is_dir():
        raise CasejobsError(f"{folder} does not exist")
    if target.exists() and not force:
        raise CasejobsError(f"{target} exists; add --force to replace it (the old file is kept beside it)")
    leftover = re.compile(rf"^{re.escape(RESTORE_LEFTOVER.format(name=target.name))}(\d+)$")
    remove_leftovers(folder, leftover)
    temporary = folder / f"{RESTORE_LEFTOVER.format(name=target.name)}{os.getpid()}"
    try:
        with zipfile.ZipFile(package) as archive:
            space = free_space_problem(folder, archive.getinfo("database.db").file_size)
            if space:
                raise CasejobsError(f"nothing restored: database.db {space}")
            extract_member(archive, "database.db", temporary)
        refuse_unless_casejobs_database(temporary, package)
        if target.exists():
            keep_mode_and_owner(target, temporary)
            stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
            # The old database's -wal and -shm go with it: left behind, they would be replayed onto the restored file.
            for suffix in ("", "-wal", "-shm"):
                old = target.with_name(target.name + suffix)
                if old.exists():
                    os.replace(old, target.with_name(f"{target.name}.bak-{stamp}{suffix}"))
        os.replace(temporary, target)
        fsync_folder(folder)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def refuse_unless_casejobs_database(path: Path, package: Path) -> None:
    """Raise CasejobsError naming what is missing unless path meets the contract at a known version."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        problems = contract_problems(connection)
    finally:
        connection.close()
    if not 1 <= version <= SCHEMA_VERSION:
        problems.insert(0, f"schema version {version} is not one this casejobs knows (1 to {SCHEMA_VERSION})")
    if problems:
        raise CasejobsError(f"{package} does not hold a casejobs database, nothing restored: {'; '.join(problems)}")


def keep_mode_and_owner(old: Path, new: Path) -> None:
    """Give new the mode and owner of the file it replaces (an owner we may not set is left as it is)."""
    status = old.stat()
    os.chmod(new, status.st_mode & 0o7777)
    if hasattr(os, "chown"):
        with contextlib.suppress(PermissionError):
            os.chown(new, status.st_uid, status.st_gid)


command = job_command(SPEC, subcommands=(verify_command, restore_command))

if __name__ == "__main__":
    main(command)
