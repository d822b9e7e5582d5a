"""backupDrill: prove, once a week, that the newest backup restores.

It takes the newest package, local or off-site (the off-site copy on a tie:
it is the one a disaster would leave), and checks its size and sha256
against what the ledger recorded when nightlyBackup made it: a package
altered since, even with its manifest recomputed to match, fails here. With
a drill identity it then decrypts the package into a temporary folder under
the home, verifies it, restores database.db there, runs a full
integrity_check, and compares each table's row count and each export's
record count with the manifest. It never touches the live database, and
removes everything it wrote. Without an identity an encrypted package is
checked as far as it can be, and the run is partial: "not restored: no identity".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from jobs import BACKUP_DRILL as SPEC
from lib.archive import manifest_in
from lib.cli import job_command, main
from lib.encryption import clear_package, is_encrypted, read_identities
from lib.errors import CasejobsError, ConfigError
from lib.exports import EXPORTS, table_counts
from lib.harness import RunContext
from lib.home import make_folder
from lib.jobspec import Outcome
from lib.offsite import destination_problem, offsite_packages
from lib.restore import restore
from lib.retention import WORK_FOLDER, differs_from, ledger_record, packages_in, read_record, remove_leftovers
from lib.settings import Settings

IDENTITY_SETTING = "CASEJOBS_BACKUP_DRILL_IDENTITY:"


def check_settings(settings: Settings) -> None:
    """Refuse to start with a drill identity that cannot be used (missing, open to others, no key)."""
    identity = settings.get("backup.drill_identity")
    if identity is not None:
        try:
            read_identities(identity, IDENTITY_SETTING)
        except CasejobsError as error:
            raise ConfigError(str(error)) from None


def newest_package(context: RunContext) -> tuple[dt.date, Path, str]:
    """Return the newest package of a day up to today, its IST date and where it is ("local" or
    "off-site"); an off-site folder that is configured but not there is noted as a problem (the run
    ends partial). Raise CasejobsError when there is no package at all."""
    home = context.settings.home
    candidates = [(day, 0, path, "local") for day, path in packages_in(home / "backups")]
    offsite = context.settings.get("backup.offsite_dir")
    if offsite is not None:
        problem = destination_problem(offsite, home)
        if problem:
            context.outcome.problem(f"{problem}: the drill used the local packages")
        candidates += [(day, 1, path, "off-site") for day, path in offsite_packages(offsite, home)]
    candidates = [candidate for candidate in candidates if candidate[0] <= context.today]  # none from the future
    if not candidates:
        raise CasejobsError("no backup package to drill, local or off-site: has nightlyBackup run?")
    day, _, path, where = max(candidates)
    return day, path, where


def check_against_ledger(context: RunContext, package: Path) -> dict[str, Any]:
    """Compare the package's size and sha256 with the ledger's record of it (never the record beside
    it, which whoever altered the package could have rewritten too); return that record.

    Raise CasejobsError when the ledger has no record of it or the file differs from it.
    """
    record = ledger_record(context.settings.home, package)
    if record is None:
        raise CasejobsError(
            f"{package}: the ledger holds no record of it (size, sha256): it cannot be proven to be the "
            "package nightlyBackup made"
        )
    problem = differs_from(package, record, "the ledger's record of when it was made", context.checkpoint)
    if problem:
        raise CasejobsError(f"{package}: {problem}")
    return record


@contextlib.contextmanager
def drill_folder(home: Path) -> Iterator[Path]:
    """A private temporary folder under the home's work folder, removed with all it holds on the way out."""
    parent = home / WORK_FOLDER
    make_folder(parent, shared=False)
    remove_leftovers(parent, folders=True)
    folder = parent / f".casejobs-drill-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def count_records(archive: zipfile.ZipFile, name: str, context: RunContext) -> int:
    """Count the records of one JSON export (an array, one record a line), parsing each: a line that is
    not JSON raises CasejobsError."""
    count = 0
    with archive.open(name) as member:
        for number, line in enumerate(member, 1):
            text = line.strip().removesuffix(b",")
            if text in (b"[", b"]", b""):
                continue
            try:
                orjson.loads(text)
            except orjson.JSONDecodeError:
                raise CasejobsError(f"{name}: line {number} is not JSON") from None
            count += 1
            if count % 10_000 == 0:
                context.checkpoint()
    return count


def restored_counts(context: RunContext, database: Path) -> dict[str, int]:
    """Each table's row count in the restored database; a stop interrupts the counting."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    unregister = context.stop_flag.on_stop(connection.interrupt)
    try:
        context.checkpoint()
        return table_counts(connection)
    finally:
        unregister()
        connection.close()


def restore_and_compare(context: RunContext, clear: Path, folder: Path) -> dict[str, Any]:
    """Restore the clear package's database into folder as `nightly-backup restore` would (every member
    verified, integrity_check of the database, free space checked, refused unless a casejobs
    database), then compare its row counts and the exports' record counts with the manifest; return
    the figures. Raise CasejobsError naming the first difference."""
    context.log.info("restoring", package=clear.name, folder=str(folder))
    restored = restore(clear, folder / "restored.db", False, folder, context.stop_flag)
    context.checkpoint()
    with zipfile.ZipFile(clear) as archive:
        manifest = manifest_in(archive)  # verified by the restore above
        tables = restored_counts(context, restored)
        expected = manifest.get("tables") or {}
        different = sorted(name for name in set(tables) | set(expected) if tables.get(name) != expected.get(name))
        if different:
            name = different[0]
            raise CasejobsError(
                f"the restored {name} table has {tables.get(name)} rows, the manifest says {expected.get(name)}"
            )
        exports = {}
        for name in EXPORTS:
            if name in manifest["members"]:
                exports[name] = count_records(archive, name, context)
                if exports[name] != manifest["members"][name]["rows"]:
                    raise CasejobsError(
                        f"{name} holds {exports[name]} records, the manifest says {manifest['members'][name]['rows']}"
                    )
    return {"integrity_check": "ok", "tables": len(tables), "rows": sum(tables.values()), "exports": exports}


def check_offsite_copies(context: RunContext, drilled: Path) -> None:
    """Read every other off-site copy back and compare it with the ledger's record of it (or else the
    record beside it): a copy damaged since it was made, or one nothing records, is named, and the run
    ends partial. The nightly job checks only the copies it makes; this is where an older one is found out."""
    offsite = context.settings.get("backup.offsite_dir")
    home = context.settings.home
    if offsite is None or destination_problem(offsite, home):
        return
    checked = 0
    for _, copy in offsite_packages(offsite, home):
        if copy == drilled:
            continue  # read already, against the ledger
        record = ledger_record(home, copy) or read_record(copy)
        if record is None:
            context.outcome.problem(f"off-site copy {copy} cannot be checked: nothing records its size and sha256")
            continue
        checked += 1
        if differs_from(copy, record, "its record", context.checkpoint):
            context.outcome.problem(
                f"off-site copy {copy} differs from its record: delete it, and the next nightlyBackup copies it again"
            )
    context.outcome.details["offsite_copies_checked"] = checked


def work(context: RunContext) -> Outcome:
    """The job's work: find the newest package, prove it is the one made, restore it aside and compare."""
    day, package, where = newest_package(context)
    details = context.outcome.details
    details |= {"package": str(package), "where": where, "package_age_days": (context.today - day).days}
    if context.dry_run:
        context.outcome.plan = iter([f"would drill {package} ({where})"])
        return context.outcome
    record = check_against_ledger(context, package)
    details |= {"size": record["size"], "sha256": record["sha256"], "restored": False}
    check_offsite_copies(context, package)
    identity = context.settings.get("backup.drill_identity")
    if is_encrypted(package) and identity is None:
        context.outcome.problem("not restored: no identity (CASEJOBS_BACKUP_DRILL_IDENTITY); size and sha256 match")
        return context.outcome
    identities = read_identities(identity, IDENTITY_SETTING) if is_encrypted(package) else None
    with (
        drill_folder(context.settings.home) as folder,
        clear_package(package, identities, folder, context.checkpoint) as clear,
    ):
        details |= restore_and_compare(context, clear, folder)
    details["restored"] = True
    context.outcome.items = 1
    return context.outcome


command = job_command(SPEC)


def run() -> None:
    """The console script of this job (pyproject.toml): the same as bin/<script>."""
    main(command)


if __name__ == "__main__":
    run()
