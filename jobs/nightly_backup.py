"""nightlyBackup: one verified, restorable package a day, and a retention that never loses the last good ones.

A package (casejobs-backup-YYYY-MM-DD.zip, the IST date) holds database.db
(SQLite's online backup, consistent while the application writes), the JSON
exports cases.json, users.json and audit-logs.json, read from that copy so
that everything is one point in time, and manifest.json. It is written
under a temporary name, fsynced, verified, then renamed. The pieces live
apart: the package writer and verifier (lib/archive.py), the exports
(lib/exports.py), the retention (lib/retention.py) and restore
(lib/restore.py); this module is the job and its commands.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from jobs import NIGHTLY_BACKUP as SPEC
from jobs import WEEKDAYS
from lib import __version__
from lib.archive import FULL_CHECK, QUICK_CHECK, PackageWriter, deflate_file, integrity_check, verify_package
from lib.cli import job_command, main, report_errors
from lib.clock import format_utc
from lib.errors import CasejobsError, StopRequested, UsageError
from lib.exports import EXPORTS, export_records, open_copy, table_counts, write_json_array
from lib.harness import RunContext
from lib.home import make_folder
from lib.jobspec import Outcome
from lib.restore import restore
from lib.retention import apply_retention, package_path, packages_in, remove_leftovers
from lib.schema import SCHEMA_VERSION
from lib.settings import load_settings
from lib.stop import StopFlag, exit_on_terminate, start_in_thread

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


def write_exports(context: RunContext, writer: PackageWriter, copy_path: Path) -> dict[str, int]:
    """Stream the JSON exports from the copy into the package; return the copy's row count per table.

    cases.json, by far the biggest, is written on this thread; the others are
    compressed at the same time on a second thread and connection, then
    placed after it, in order.
    """
    first, *others = EXPORTS
    rest = start_in_thread(lambda: [write_aside(context, copy_path, writer, name) for name in others])
    try:
        with _open_for_export(context, copy_path) as copy:
            context.log.info("exporting", member=first)
            records = export_records(copy, first, context.now, context.bad_row)
            with writer.member(first) as member:
                member.rows = write_json_array(member, records, EXPORTS[first], context.checkpoint, context.bad_row)
            counts = table_counts(copy)
        for name, member in context.stop_flag.wait_for(rest):
            context.checkpoint()
            writer.add_deflated(name, member.deflated, member.rows)
            member.deflated.path.unlink(missing_ok=True)
        return counts
    finally:
        concurrent.futures.wait([rest])  # its side files are gone with the package's only once it has ended


@contextlib.contextmanager
def _open_for_export(context: RunContext, copy_path: Path) -> Iterator[sqlite3.Connection]:
    """The copy, opened for exporting: a stop interrupts its statements."""
    copy = open_copy(str(copy_path))
    unregister = context.stop_flag.on_stop(copy.interrupt)
    try:
        yield copy
    finally:
        unregister()
        copy.close()


def write_aside(context: RunContext, copy_path: Path, writer: PackageWriter, name: str) -> tuple[str, Any]:
    """Compress one export into its side file (on the second thread); return (name, its MemberWriter)."""
    with _open_for_export(context, copy_path) as copy:
        context.log.info("exporting", member=name)
        records = export_records(copy, name, context.now, context.bad_row)
        with writer.compressed(name) as member:
            member.rows = write_json_array(member, records, EXPORTS[name], context.stop_flag.check, context.bad_row)
        return name, member


def _raise_unless_sound(verdict: str, pragma: str) -> None:
    if verdict != "ok":
        raise CasejobsError(f"{pragma} failed on the database copy: {verdict}; no package made")


def database_check(context: RunContext) -> str:
    """The check the copy gets tonight: the full integrity_check on the full-check day (IST), a quick_check
    on the other nights (it checks every page and row but not that each index holds exactly its table's
    rows, the part that costs fourteen fifteenths of the time on a busy database)."""
    day = context.settings.get("backup.full_check_day")
    if day == "every" or WEEKDAYS.index(day) == context.today.weekday():
        return FULL_CHECK
    return QUICK_CHECK


def write_package(context: RunContext, copy_path: Path, final_path: Path, started: float) -> dict[str, Any]:
    """Write, fsync and verify the package from the copy, then rename it into place; return its manifest.

    While the main thread writes the JSON exports, a second core runs
    integrity_check on the copy and compresses the copy aside (deflate_file):
    the database member is then copied into the package as it is. Raise
    CasejobsError (and leave no file behind) if the copy is not sound or the
    package does not verify.
    """
    stop_flag = context.stop_flag
    level = context.settings.get("backup.compression_level")
    deflated_path = copy_path.with_name(copy_path.name + ".deflate")
    pragma = database_check(context)
    cancelled = threading.Event()  # set on the way out: the compression of the copy stops at its next chunk

    def unless_cancelled() -> None:
        if cancelled.is_set():
            raise StopRequested("cancelled")

    checker = start_in_thread(integrity_check, copy_path, stop_flag, pragma)
    deflater = start_in_thread(deflate_file, copy_path, deflated_path, level, unless_cancelled)
    writer = PackageWriter(final_path, level)
    try:
        try:
            tables = write_exports(context, writer, copy_path)
        except sqlite3.DatabaseError:
            # a damaged database usually breaks the exports first: say why
            _raise_unless_sound(stop_flag.wait_for(checker), pragma)
            raise
        verdict = stop_flag.wait_for(checker)
        _raise_unless_sound(verdict, pragma)
        context.checkpoint()
        deflated = stop_flag.wait_for(deflater)
        context.log.info("adding the database", member="database.db", check=pragma, verdict=verdict)
        writer.add_deflated("database.db", deflated, rows=sum(tables.values()), between_chunks=context.checkpoint)
        manifest = writer.close(
            {
                "created_at": format_utc(context.now),
                "ist_date": context.today.isoformat(),
                "schema_version": SCHEMA_VERSION,
                "sqlite_version": sqlite3.sqlite_version,
                "casejobs_version": __version__,
                "integrity_check": verdict,
                "database_check": pragma,
                "duration_ms": int((time.monotonic() - started) * 1000),
                "tables": tables,
            }
        )
        context.log.info("verifying the package")
        verification = verify_package(writer.temporary_path, stop_flag=stop_flag)
        if not verification.ok:
            raise CasejobsError(f"the new package failed verification: {'; '.join(verification.problems)}")
        context.checkpoint()
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        cancelled.set()
        concurrent.futures.wait([deflater])
        if not stop_flag.is_set():  # a stop interrupts the check; waiting for it would only delay the exit
            concurrent.futures.wait([checker])
        deflated_path.unlink(missing_ok=True)
    return manifest


def work(context: RunContext) -> Outcome:
    """The job's work: make today's package unless a verified one exists, then apply retention."""
    started = time.monotonic()
    folder = context.settings.home / "backups"
    today = context.today
    final_path = package_path(folder, today)
    retention = (context.settings.get("backup.retention_days"), context.settings.get("backup.keep_newest"))
    if context.dry_run:
        exists = final_path.exists()
        context.outcome.details |= {"package": str(final_path), "already_exists": exists}
        context.outcome.plan = iter([f"would {'keep' if exists and not context.force else 'write'} {final_path}"])
        return context.outcome
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
    restored = restore(Path(package), Path(target), force, _scratch_folder())
    click.echo(f"restored {restored} from {package}")


command = job_command(SPEC, subcommands=(verify_command, restore_command))


def run() -> None:
    """The console script of this job (pyproject.toml): the same as bin/<script>."""
    main(command)


if __name__ == "__main__":
    run()
