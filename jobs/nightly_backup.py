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
import errno
import os
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from jobs import NIGHTLY_BACKUP as SPEC
from jobs import WEEKDAYS
from lib import __version__
from lib.archive import (
    FULL_CHECK,
    QUICK_CHECK,
    PackageWriter,
    deflate_file,
    free_space_problem,
    fsync_folder,
    integrity_check,
    verify_package,
)
from lib.cli import job_command, main, report_errors
from lib.clock import format_utc
from lib.encryption import (
    Written,
    clear_package,
    encrypt_file,
    file_digest,
    is_encrypted,
    read_identities,
    starts_like_age,
)
from lib.errors import CasejobsError, StopRequested, UsageError
from lib.exports import EXPORTS, export_records, open_copy, table_counts, write_json_array
from lib.harness import RunContext
from lib.home import make_folder
from lib.jobspec import Outcome
from lib.offsite import OffsiteProblem, synchronise
from lib.restore import restore
from lib.retention import (
    WORK_FOLDER,
    apply_retention,
    differs_from,
    ledger_record,
    package_path,
    packages_in,
    read_record,
    remove_leftovers,
    write_record,
)
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


def write_package(
    context: RunContext, copy_path: Path, final_path: Path, started: float, work_folder: Path
) -> tuple[dict[str, Any], Written]:
    """Write, fsync and verify the package from the copy, then put it in place under final_path; return
    its manifest and the size and sha256 of the file in place.

    While the main thread writes the JSON exports, a second core runs
    integrity_check on the copy and compresses the copy aside (deflate_file):
    the database member is then copied into the package as it is. A clear
    package is renamed into place once verified. An encrypted one (final_path
    ends in .age) is written and verified in clear in work_folder, never
    beside it, then encrypted into place (seal_encrypted). Raise CasejobsError
    (and leave no file behind) if the copy is not sound or the package does
    not verify.
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
    encrypted = is_encrypted(final_path)
    digest = None
    writer = PackageWriter(work_folder / final_path.name.removesuffix(".age") if encrypted else final_path, level)
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
        # The clear package's sha256 is read off the disk while it is verified: the second core is free now.
        if not encrypted:
            digest = start_in_thread(file_digest, writer.temporary_path, stop_flag.check)
        verification = verify_package(writer.temporary_path, stop_flag=stop_flag)
        if not verification.ok:
            raise CasejobsError(f"the new package failed verification: {'; '.join(verification.problems)}")
        context.checkpoint()
        if encrypted:
            written = seal_encrypted(context, writer.temporary_path, final_path)
        else:
            written = stop_flag.wait_for(digest)
            # The record first: a package never has its final name without its record.
            write_record(final_path, package_record(context, final_path, written))
            writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        cancelled.set()
        concurrent.futures.wait([deflater, *([digest] if digest is not None else [])])
        if not stop_flag.is_set():  # a stop interrupts the check; waiting for it would only delay the exit
            concurrent.futures.wait([checker])
        deflated_path.unlink(missing_ok=True)
        if encrypted:
            writer.abort()  # the clear package in the work folder goes, whatever happened
    return manifest, written


def package_record(context: RunContext, package: Path, written: Written) -> dict[str, Any]:
    """The clear-text record kept beside a package and in the ledger: no client data, only what proves
    the file is the one this run made."""
    return {
        "package": package.name,
        "size": written.size,
        "sha256": written.sha256,
        "created_at": format_utc(context.now),
        "ist_date": context.today.isoformat(),
        "encrypted_to": list(context.settings.get("backup.encrypt_to") or ()),
        "casejobs_version": __version__,
    }


def seal_encrypted(context: RunContext, clear: Path, final_path: Path) -> Written:
    """Encrypt the verified clear package into final_path's folder under a temporary name, streamed, read
    it back to compare its sha256 with what was written, write its record, then rename it into place;
    return its size and sha256."""
    temporary = final_path.with_name(f".{final_path.name}.tmp-{os.getpid()}")
    try:
        context.log.info("encrypting the package", recipients=len(context.settings.get("backup.encrypt_to")))
        written = encrypt_file(clear, temporary, context.settings.get("backup.encrypt_to"), context.checkpoint)
        if file_digest(temporary, context.checkpoint) != written:
            raise CasejobsError("the encrypted package read back differs from what was written: the disk is failing")
        # The record first: a package never has its final name without its record.
        write_record(final_path, package_record(context, final_path, written))
        os.replace(temporary, final_path)
        fsync_folder(final_path.parent)
    finally:
        temporary.unlink(missing_ok=True)
    return written


def existing_package_problems(path: Path, home: Path, context: RunContext) -> list[str]:
    """Check a package already in place the way the nightly job can (an encrypted one without opening
    it); return its problems (none: it is sound)."""
    if is_encrypted(path):
        return record_problems(path, home, check=context.checkpoint)
    return verify_package(path, stop_flag=context.stop_flag).problems


def record_problems(
    path: Path, home: Path, required: bool = True, check: Callable[[], None] = lambda: None
) -> list[str]:
    """Compare a package's size and sha256 with its records (beside it, and in the ledger); return the
    differences in words. An encrypted package must have at least one record unless not required
    (its identity is at hand: age's own authentication then proves it whole); a clear one is
    checked against those it has."""
    problems = []
    if is_encrypted(path) and not starts_like_age(path):
        problems.append("not an age-encrypted file (its header is wrong)")
    records = {"its record beside it": read_record(path), "the ledger's record": ledger_record(home, path)}
    known = {where: record for where, record in records.items() if record is not None}
    if not known:
        missing = "no record of its size and sha256 (none beside it, none in the ledger): give --identity to open it"
        return [*problems, missing] if is_encrypted(path) and required else problems
    for where, record in known.items():
        problem = differs_from(path, record, where, check)
        if problem:
            problems.append(problem)
    return problems


def copy_offsite(context: RunContext, folder: Path, retention: tuple[int, int]) -> None:
    """Copy the recent packages missing off-site and apply the retention there; a fault there makes the
    run partial, in words, and leaves the local packages as they are."""
    offsite = context.settings.get("backup.offsite_dir")
    if offsite is None:
        return
    try:
        clear_allowed = bool(context.settings.get("backup.offsite_plaintext"))
        result = synchronise(
            context.settings.home,
            folder,
            offsite,
            context.today,
            retention,
            clear_allowed,
            context.checkpoint,
            context.log,
        )
    except OffsiteProblem as problem:
        context.outcome.problem(str(problem))
        context.outcome.details["offsite"] = {"folder": str(offsite), "problem": str(problem)}
        context.log.warning("off-site copy not made", reason=str(problem))
        return
    for reason in result["not_copied"]:
        context.outcome.problem(reason)
    context.outcome.details["offsite"] = {"folder": str(offsite), **result}


def is_disk_full(error: BaseException) -> bool:
    """True for a full disk or quota, as the system (ENOSPC, EDQUOT) or SQLite ("database or disk is
    full", which reads as if the live database were full) reports it."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(error, sqlite3.OperationalError) and "disk is full" in str(error)


def work(context: RunContext) -> Outcome:
    """The job's work: make today's package unless a sound one exists, apply retention, copy it off-site."""
    started = time.monotonic()
    home = context.settings.home
    folder = home / "backups"
    today = context.today
    encrypted = bool(context.settings.get("backup.encrypt_to"))
    final_path = package_path(folder, today, encrypted)
    retention = (context.settings.get("backup.retention_days"), context.settings.get("backup.keep_newest"))
    if context.dry_run:
        exists = final_path.exists()
        context.outcome.details |= {"package": str(final_path), "already_exists": exists}
        context.outcome.plan = iter([f"would {'keep' if exists and not context.force else 'write'} {final_path}"])
        return context.outcome
    make_folder(folder, shared=False)
    # With encryption on, nothing in clear is ever written beside the packages: the copy and the clear
    # package are made in the work folder (0700), and removed on every exit path.
    work_folder = home / WORK_FOLDER if encrypted else folder
    make_folder(work_folder, shared=False)
    # The work folder is cleared whatever tonight's setting: a killed encrypted run left clear data there.
    leftovers = remove_leftovers(folder) + remove_leftovers(home / WORK_FOLDER, folders=True)
    if leftovers:
        context.log.info("removed what a dead run left", files=leftovers)
    if final_path.exists() and not context.force:
        problems = existing_package_problems(final_path, home, context)
        if not problems:
            deleted = apply_retention(folder, today, *retention, home=home)
            context.outcome.details |= {"already_done": True, "package": str(final_path), "deleted_packages": deleted}
            copy_offsite(context, folder, retention)
            return context.outcome
        context.log.warning("today's package is not sound: making it again", problems=problems)
    copy_path = work_folder / f".casejobs-copy-{os.getpid()}.db"
    # The copy alone needs the database's size: say so before starting rather than fill the disk.
    space = free_space_problem(work_folder, context.settings.database_path.stat().st_size)
    if space:
        raise CasejobsError(f"no room for the backup: the database copy {space}")
    try:
        online_backup(context.database.conn, copy_path, context.stop_flag)
        context.log.info("database copied", bytes=copy_path.stat().st_size)
        context.checkpoint()
        manifest, written = write_package(context, copy_path, final_path, started, work_folder)
    except (sqlite3.OperationalError, OSError) as error:
        if not is_disk_full(error):
            raise
        where = "; ".join(
            f"{place} has {shutil.disk_usage(place).free / 2**20:.1f} MiB free"
            for place in dict.fromkeys((work_folder, folder))
        )
        raise CasejobsError(
            f"no room for the backup: the disk filled up while it was made ({where}); "
            "nothing was kept, the older packages are untouched"
        ) from None
    finally:
        copy_path.unlink(missing_ok=True)
    # In the details at once: whatever happens next, the ledger knows the package that is in place.
    context.outcome.details |= {"package": str(final_path), "size": written.size, "sha256": written.sha256}
    deleted = apply_retention(folder, today, *retention, home=home)
    members = manifest["members"]
    uncompressed = sum(member["size"] for member in members.values())
    context.outcome.details |= {
        "package": str(final_path),
        "size": written.size,
        "sha256": written.sha256,
        "encrypted": encrypted,
        "compression_ratio": round(uncompressed / written.size, 2) if written.size else None,
        "rows": {name: member["rows"] for name, member in members.items()},
        "duration_ms": int((time.monotonic() - started) * 1000),
        "deleted_packages": deleted,
        "already_done": False,
    }
    context.outcome.items = len(members)
    copy_offsite(context, folder, retention)
    return context.outcome


def _backups_folder() -> Path:
    return load_settings().home / "backups"


def _scratch_folder(encrypted: bool = False) -> Path:
    """Where verify and restore inflate a database copy, cleared of dead runs' copies: the backups
    folder, or for an encrypted package the work folder (nothing in clear beside the packages)."""
    home = load_settings().home
    if not home.is_dir():
        raise CasejobsError(
            f"the home {home} does not exist: create it (mkdir -p {home}) or point CASEJOBS_HOME at the one to use"
        )
    folder = home / (WORK_FOLDER if encrypted else "backups")
    make_folder(folder, shared=False)
    remove_leftovers(folder)
    return folder


IDENTITY_OPTION = click.option(
    "--identity",
    type=click.Path(dir_okay=False, exists=True),
    help="The age identity file (age-keygen's) that opens encrypted packages (.zip.age).",
)


def _identities(identity: str | None) -> list[Any] | None:
    return read_identities(Path(identity)) if identity else None


def check_package(path: Path, identities: list[Any] | None) -> tuple[list[str], str]:
    """Verify one package as far as the identities allow; return its problems and, when sound, what was
    checked ("" for everything). A clear package's members are checked first (a problem names its
    member), then its size and sha256 against its records; an encrypted one's records come first."""
    if not path.is_file():
        return ["no such package"], ""
    home = load_settings().home
    encrypted = is_encrypted(path)
    if not encrypted and starts_like_age(path):
        return [f"it is age-encrypted: name it {path.name}.age (and verify it with --identity)"], ""
    if encrypted:
        problems = record_problems(path, home, required=not identities)
        if problems:
            return problems, ""
        if not identities:
            return [], " (size and sha256 as recorded; its contents need --identity)"
    scratch = _scratch_folder(encrypted)
    try:
        with clear_package(path, identities, scratch) as clear:
            problems = verify_package(clear, check_database=True, scratch=scratch).problems
    except CasejobsError as error:
        return [str(error)], ""
    return (problems or ([] if encrypted else record_problems(path, home))), ""


@click.command(name="verify")
@click.argument("package", required=False, type=click.Path(dir_okay=False))
@click.option("--all", "check_all", is_flag=True, help="Verify every package in the backups folder.")
@IDENTITY_OPTION
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("nightly-backup verify")
def verify_command(package: str | None, check_all: bool, identity: str | None, verbose: bool) -> None:
    """Verify a package (default: the newest; --all: every one): its size and sha256 against its records
    (beside it and in the ledger), checksums, the ZIP's CRCs and integrity_check of the database inside.
    An encrypted package without --identity gets the first check only. One line per package, `ok` or
    `BAD: <reason>`; exit 1 when any package is bad.
    """
    exit_on_terminate()
    if package and check_all:
        raise UsageError("give a PACKAGE or --all, not both")
    identities = _identities(identity)
    if package:
        paths = [Path(package)]
    else:
        found = [path for _, path in packages_in(_backups_folder())]
        if not found:
            raise CasejobsError(f"no package in {_backups_folder()}")
        paths = found if check_all else found[:1]
    bad = 0
    for path in paths:
        problems, scope = check_package(path, identities)
        if problems:
            bad += 1
            click.echo(f"{path}: BAD: {'; '.join(problems)}")
        else:
            click.echo(f"{path}: ok{scope}")
    sys.exit(1 if bad else 0)


@click.command(name="restore")
@click.argument("package", type=click.Path(dir_okay=False, exists=True))
@click.option("--to", "target", required=True, type=click.Path(dir_okay=False), help="Where to write the database.")
@click.option("--force", is_flag=True, help="Replace an existing file (kept beside it as PATH.bak-<timestamp>).")
@IDENTITY_OPTION
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("nightly-backup restore")
def restore_command(package: str, target: str, force: bool, identity: str | None, verbose: bool) -> None:
    """Restore the database of a package to PATH, after verifying the package (an encrypted one needs
    --identity; it is decrypted into the work folder and removed after).

    The file is written beside PATH under a temporary name, fsynced and
    renamed; nothing is written outside PATH's folder, whatever names the
    archive holds.
    """
    exit_on_terminate()
    if not target.strip():
        raise UsageError("--to was given an empty path")
    path = Path(package)
    problems = record_problems(path, load_settings().home, required=identity is None)
    if problems:
        raise CasejobsError(f"{package} does not match its record, nothing restored: {'; '.join(problems)}")
    scratch = _scratch_folder(is_encrypted(path))
    with clear_package(path, _identities(identity), scratch) as clear:
        restored = restore(clear, Path(target), force, scratch)
    click.echo(f"restored {restored} from {package}")


command = job_command(SPEC, subcommands=(verify_command, restore_command))


def run() -> None:
    """The console script of this job (pyproject.toml): the same as bin/<script>."""
    main(command)


if __name__ == "__main__":
    run()
