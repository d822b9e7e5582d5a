"""nightlyBackup through bin/nightly-backup: packages, verification, restore, retention and faults."""

from __future__ import annotations

import hashlib
import json
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import BIN, cron_environment, run_script, start_script
from tests.helpers import last_finish, seed_small, wait_until

NOW = "2026-11-25T23:30:00+05:30"
RECORD = re.compile(r"^casejobs-backup-.*\.zip(\.age)?\.json$")
PACKAGE = "casejobs-backup-2026-11-25.zip"


@pytest.fixture
def demo(home: Path, database_path: Path) -> Path:
    """A small seeded database in home."""
    seed_small(database_path, NOW)
    return database_path


def backup(home: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return run_script("nightly-backup", *arguments, home=home, **{"CASEJOBS_NOW": NOW, **environment})


def dump(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    lines = list(connection.iterdump())
    connection.close()
    return lines


def finish(home: Path) -> dict:
    return last_finish(home, "nightlyBackup")


def app_writes(database: Path) -> int:
    connection = sqlite3.connect(database)
    try:
        return connection.execute("SELECT count(*) FROM audit_logs WHERE action = 'APP_WRITE'").fetchone()[0]
    finally:
        connection.close()


def backups(home: Path) -> list[str]:
    folder = home / "backups"
    # A package's record (<package>.json, its size and sha256) goes with it: listed apart (records()).
    return sorted(path.name for path in folder.iterdir() if not RECORD.match(path.name)) if folder.exists() else []


def records(home: Path) -> list[str]:
    folder = home / "backups"
    return sorted(path.name for path in folder.iterdir() if RECORD.match(path.name)) if folder.exists() else []


def test_round_trip_restores_the_same_content(home: Path, demo: Path, tmp_path: Path) -> None:
    before = dump(demo)

    result = backup(home)

    assert result.returncode == 0, result.stderr
    package = home / "backups" / PACKAGE
    restored = tmp_path / "restored" / "casejobs.db"
    restored.parent.mkdir()
    answer = run_script("nightly-backup", "restore", str(package), "--to", str(restored), home=home)
    assert answer.returncode == 0, answer.stderr
    assert dump(restored) == before
    details = finish(home)["details"]
    assert details["rows"]["cases.json"] == 500 and details["rows"]["users.json"] == 25
    assert details["size"] == package.stat().st_size and details["compression_ratio"] > 1
    assert records(home) == [f"{PACKAGE}.json"]  # the clear-text record beside it: size and sha256, as the ledger's
    record = json.loads((home / "backups" / f"{PACKAGE}.json").read_text())
    sha256 = hashlib.sha256(package.read_bytes()).hexdigest()
    assert (
        (record["size"], record["sha256"]) == (details["size"], details["sha256"]) == (package.stat().st_size, sha256)
    )
    action, severity = (
        sqlite3.connect(demo).execute("SELECT action, severity FROM audit_logs ORDER BY id DESC").fetchone()
    )
    assert (action, severity) == ("JOB_COMPLETED", "LOW")


def test_the_package_is_complete_and_private(home: Path, demo: Path, tmp_path: Path) -> None:
    assert backup(home).returncode == 0
    package = home / "backups" / PACKAGE

    assert (home / "backups").stat().st_mode & 0o777 == 0o700
    assert package.stat().st_mode & 0o777 == 0o600
    with zipfile.ZipFile(package) as archive:
        assert sorted(archive.namelist()) == [
            "audit-logs.json",
            "cases.json",
            "database.db",
            "manifest.json",
            "users.json",
        ]
        manifest = json.loads(archive.read("manifest.json"))
        archive.extract("database.db", tmp_path)
        users = json.loads(archive.read("users.json"))
        cases = json.loads(archive.read("cases.json"))
    assert manifest["ist_date"] == "2026-11-25" and manifest["integrity_check"] == "ok"
    assert {"created_at", "schema_version", "sqlite_version", "casejobs_version", "duration_ms"} <= set(manifest)
    for name, member in manifest["members"].items():
        assert set(member) == {"size", "sha256", "rows"}, name
    assert all(not {"password_hash", "api_token", "phone"} & set(user) for user in users)
    confidential = [case for case in cases if case["is_confidential"]]
    assert confidential and all(case["title"] == case["client_name"] == "[redacted]" for case in confidential)
    nested = next(case for case in cases if case["tasks"] and any(task["subtasks"] for task in case["tasks"]))
    assert all(task["case_id"] == nested["id"] for task in nested["tasks"])
    assert {"hearings", "orders", "documents"} <= set(nested)
    database_copy = sqlite3.connect(tmp_path / "database.db")
    assert database_copy.execute("SELECT count(*) FROM users WHERE password_hash IS NOT NULL").fetchone()[0] == 25


@pytest.mark.skipif(
    not (shutil.which("unzip") and shutil.which("sqlite3")), reason="needs unzip and sqlite3 (.ci/run installs them)"
)
def test_system_tools_read_the_package(home: Path, demo: Path, tmp_path: Path) -> None:
    assert backup(home).returncode == 0
    package = home / "backups" / PACKAGE

    tested = subprocess.run(["unzip", "-t", str(package)], capture_output=True, text=True, check=False)
    unpacked = subprocess.run(["unzip", "-q", str(package), "database.db", "-d", str(tmp_path)], check=False)
    query = subprocess.run(
        ["sqlite3", str(tmp_path / "database.db"), "SELECT count(*) FROM cases"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert tested.returncode == 0 and "No errors detected" in tested.stdout
    assert unpacked.returncode == 0
    assert query.stdout.strip() == "500"


def test_a_second_run_does_nothing_and_force_replaces_the_package(home: Path, demo: Path) -> None:
    assert backup(home).returncode == 0
    first = (home / "backups" / PACKAGE).stat().st_ino

    again = backup(home)
    assert again.returncode == 0 and finish(home)["details"]["already_done"] is True
    assert (home / "backups" / PACKAGE).stat().st_ino == first

    forced = backup(home, "--force")
    assert forced.returncode == 0 and finish(home)["details"]["already_done"] is False
    assert (home / "backups" / PACKAGE).stat().st_ino != first
    assert backups(home) == [PACKAGE]


def test_a_flipped_byte_is_found_and_named(home: Path, demo: Path) -> None:
    assert backup(home).returncode == 0
    package = home / "backups" / PACKAGE
    data = bytearray(package.read_bytes())
    middle = len(data) // 3
    data[middle] ^= 0xFF
    package.write_bytes(bytes(data))

    result = run_script("nightly-backup", "verify", str(package), home=home)

    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{package}: BAD: ")
    assert any(member in line for member in ("cases.json:", "database.db:", "users.json:", "not a readable ZIP"))
    assert "Error -3" not in line and "error: error" not in result.stderr


def test_verify_all_and_a_tampered_member(home: Path, demo: Path, tmp_path: Path) -> None:
    assert backup(home).returncode == 0
    package = home / "backups" / PACKAGE
    tampered = home / "backups" / "casejobs-backup-2026-11-24.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():  # the same package, but users.json emptied behind the manifest's back
            target.writestr(item, b"[]\n" if item.filename == "users.json" else source.read(item))

    result = run_script("nightly-backup", "verify", "--all", home=home)

    assert result.returncode == 1
    assert f"{PACKAGE}: ok" in result.stdout
    assert (
        "casejobs-backup-2026-11-24.zip: BAD: users.json: its size in the ZIP differs from the manifest"
        in result.stdout
    )


def test_verify_all_checks_every_package_and_names_the_bad_one(home: Path, demo: Path) -> None:
    for day in ("2026-11-23", "2026-11-24", "2026-11-25"):
        assert backup(home, CASEJOBS_NOW=f"{day}T23:30:00+05:30").returncode == 0
    middle = home / "backups" / "casejobs-backup-2026-11-24.zip"
    with zipfile.ZipFile(middle) as archive:
        member = archive.getinfo("cases.json")
    data = bytearray(middle.read_bytes())
    start = member.header_offset + 30 + len(member.filename) + len(member.extra)
    for offset in range(start + 100, start + 400):  # inside cases.json's deflate stream
        data[offset] ^= 0x5A
    middle.write_bytes(bytes(data))

    result = run_script("nightly-backup", "verify", "--all", home=home)

    assert result.returncode == 1
    lines = sorted(result.stdout.splitlines())
    assert lines[0] == f"{home / 'backups' / 'casejobs-backup-2026-11-23.zip'}: ok"
    assert lines[1] == f"{middle}: BAD: cases.json: data corrupted"
    assert lines[2] == f"{home / 'backups' / 'casejobs-backup-2026-11-25.zip'}: ok"
    assert "Traceback" not in result.stderr


def test_restore_refuses_zip_slip_names(home: Path, demo: Path, tmp_path: Path) -> None:
    assert backup(home).returncode == 0
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(home / "backups" / PACKAGE) as source, zipfile.ZipFile(evil, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("../../escaped.db", b"SQLite format 3\x00")
    target_path = tmp_path / "inside" / "restored.db"
    target_path.parent.mkdir()

    result = run_script("nightly-backup", "restore", str(evil), "--to", str(target_path), home=home)

    assert result.returncode == 1
    assert "unsafe member name" in result.stderr
    assert not target_path.exists() and not (tmp_path / "escaped.db").exists()
    assert list(target_path.parent.iterdir()) == []


def test_restore_keeps_the_old_file_only_with_force(home: Path, demo: Path, tmp_path: Path) -> None:
    assert backup(home).returncode == 0
    target = tmp_path / "live.db"
    target.write_bytes(b"the old database")
    (tmp_path / "live.db-wal").write_bytes(b"its wal")

    refused = run_script("nightly-backup", "restore", str(home / "backups" / PACKAGE), "--to", str(target), home=home)
    forced = run_script(
        "nightly-backup", "restore", str(home / "backups" / PACKAGE), "--to", str(target), "--force", home=home
    )

    assert refused.returncode == 1 and "--force" in refused.stderr
    assert forced.returncode == 0, forced.stderr
    kept = sorted(path.name for path in tmp_path.iterdir() if ".bak-" in path.name)
    assert len(kept) == 2 and kept[0].endswith("Z") and kept[1].endswith("Z-wal")
    assert (tmp_path / kept[0]).read_bytes() == b"the old database"
    assert not (tmp_path / "live.db-wal").exists()  # never replayed onto the restored file
    assert sqlite3.connect(target).execute("SELECT count(*) FROM cases").fetchone() == (500,)


def copy_package_as(home: Path, day: str) -> None:
    shutil.copy(home / "backups" / PACKAGE, home / "backups" / f"casejobs-backup-{day}.zip")


def test_retention_keeps_thirty_days_and_the_seven_newest(home: Path, demo: Path) -> None:
    assert backup(home).returncode == 0
    for day in ("2026-10-26", "2026-10-25", "2026-10-24", "2026-09-01", "2026-08-01", "2026-07-01", "2026-06-01"):
        copy_package_as(home, day)  # 30, 31, 32 days old, then older
    (home / "backups" / "notes.txt").write_text("mine")
    (home / "backups" / "casejobs-backup-2026-01-01.zip.keep").write_text("mine too")

    assert backup(home, "--force").returncode == 0

    # 8 packages: the 7 newest are protected, so only the oldest goes
    assert finish(home)["details"]["deleted_packages"] == ["casejobs-backup-2026-06-01.zip"]
    copy_package_as(home, "2026-11-20")
    copy_package_as(home, "2026-11-21")
    assert backup(home, "--force").returncode == 0
    # now 9 newer than the 31-day-old ones: everything over 30 days old goes, exactly 30 stays
    assert sorted(finish(home)["details"]["deleted_packages"]) == [
        "casejobs-backup-2026-07-01.zip",
        "casejobs-backup-2026-08-01.zip",
    ]
    assert "casejobs-backup-2026-10-26.zip" in backups(home)
    assert {"notes.txt", "casejobs-backup-2026-01-01.zip.keep"} <= set(backups(home))


def test_fewer_than_seven_packages_are_never_deleted(home: Path, demo: Path) -> None:
    assert backup(home).returncode == 0
    for day in ("2025-01-01", "2024-01-01"):
        copy_package_as(home, day)

    assert backup(home, "--force").returncode == 0

    assert finish(home)["details"]["deleted_packages"] == []
    assert len(backups(home)) == 3


def test_a_corrupt_database_makes_no_package_and_touches_nothing(home: Path, demo: Path) -> None:
    assert backup(home).returncode == 0
    copy_package_as(home, "2026-11-24")
    connection = sqlite3.connect(demo)
    connection.execute("CREATE INDEX users_by_name ON users (name)")
    root = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'cases'").fetchone()[0]
    connection.execute("PRAGMA writable_schema = ON")
    connection.execute("UPDATE sqlite_master SET rootpage = ? WHERE name = 'users_by_name'", (root,))
    connection.commit()
    connection.close()
    before = {name: (home / "backups" / name).read_bytes() for name in backups(home)}

    # An index that is really a table: only the full check (each index against its table) sees it.
    quick = backup(home, "--force", "--dry-run")
    assert quick.returncode == 0
    result = backup(home, "--force", CASEJOBS_BACKUP_FULL_CHECK_DAY="every")

    assert result.returncode == 1
    assert finish(home)["status"] == "failed" and "integrity_check failed" in finish(home)["error"]
    audit = sqlite3.connect(demo).execute("SELECT action, severity FROM audit_logs ORDER BY id DESC").fetchone()
    assert audit == ("JOB_ERROR", "HIGH")
    assert {name: (home / "backups" / name).read_bytes() for name in backups(home)} == before


def _limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_mid_package_leaves_nothing_behind(home: Path, demo: Path) -> None:
    assert backup(home).returncode == 0
    connection = sqlite3.connect(demo)
    copy_size = (
        connection.execute("PRAGMA page_count").fetchone()[0] * connection.execute("PRAGMA page_size").fetchone()[0]
    )
    connection.close()
    copy_package_as(home, "2026-11-24")
    before = {name: (home / "backups" / name).read_bytes() for name in backups(home)}
    # Stored, not compressed: the package outgrows the copy, so the limit strikes inside the ZIP.
    environment = cron_environment(home, CASEJOBS_NOW=NOW, CASEJOBS_BACKUP_COMPRESSION_LEVEL="0")

    result = subprocess.run(
        [str(BIN / "nightly-backup"), "--force"],
        env=environment,
        cwd="/",
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size(copy_size + 64 * 1024),
        check=False,
    )

    assert result.returncode == 1, result.stderr
    assert finish(home)["status"] == "failed"
    assert "File too large" in finish(home)["error"]  # from the ZIP writer, not SQLite's copy
    assert [name for name in backups(home) if name.startswith(".")] == []
    assert {name: (home / "backups" / name).read_bytes() for name in backups(home)} == before


def test_a_home_without_room_for_the_copy_says_so_before_writing(demo: Path, tmp_path: Path) -> None:
    small_home = tmp_path / "small-home"
    small_home.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small_home)], check=False).returncode:
        pytest.skip("needs to mount a small tmpfs (root)")
    try:
        result = run_script("nightly-backup", home=small_home, CASEJOBS_DB=str(demo), CASEJOBS_NOW=NOW)
        left = sorted(path.name for path in (small_home / "backups").iterdir())
    finally:
        subprocess.run(["umount", str(small_home)], check=False)

    assert result.returncode == 1, result.stderr
    assert "no room for the backup: the database copy needs" in result.stderr, result.stderr
    assert "database or disk is full" not in result.stderr  # never as if the live database were full
    assert left == []


def test_a_disk_that_fills_is_said_as_such() -> None:
    import errno

    from jobs.nightly_backup import is_disk_full

    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_disk_full(OSError(errno.EFBIG, "File too large"))
    assert not is_disk_full(sqlite3.OperationalError("database is locked"))


@pytest.mark.slow
def test_sigkill_at_many_points_never_leaves_a_partial_package(home: Path, demo: Path) -> None:
    assert backup(home, CASEJOBS_NOW="2026-11-24T23:30:00+05:30").returncode == 0
    old = {name: (home / "backups" / name).read_bytes() for name in backups(home)}
    slow = {"CASEJOBS_DEBUG_ITEM_DELAY_MS": "150", "CASEJOBS_NOW": NOW}
    for delay in (0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.1, 1.3):
        process = start_script("nightly-backup", "--force", home=home, **slow)
        time.sleep(delay)
        process.kill()
        process.communicate()
        for name in backups(home):
            if not name.startswith("."):
                check = run_script("nightly-backup", "verify", str(home / "backups" / name), home=home)
                assert check.returncode == 0, (delay, name, check.stderr)
        assert all((home / "backups" / name).read_bytes() == data for name, data in old.items())

    assert backup(home, "--force").returncode == 0
    assert [name for name in backups(home) if name.startswith(".")] == []  # the dead runs' leftovers are gone


def test_backup_while_another_process_keeps_writing(home: Path, demo: Path, tmp_path: Path) -> None:
    writer_code = f"""
import sqlite3, time
connection = sqlite3.connect({str(demo)!r}, timeout=30)
connection.execute("PRAGMA journal_mode = WAL")
deadline = time.time() + 20
while time.time() < deadline:
    with connection:
        connection.execute("INSERT INTO audit_logs (action, severity, created_at) VALUES ('APP_WRITE', 'LOW', '2026-11-25T18:00:00.000Z')")
"""
    writer = subprocess.Popen([sys.executable, "-c", writer_code])
    try:
        wait_until(lambda: app_writes(demo) > 0, what="the application's first write")
        result = backup(home)
        during = (
            sqlite3.connect(demo).execute("SELECT count(*) FROM audit_logs WHERE action = 'APP_WRITE'").fetchone()[0]
        )
    finally:
        writer.kill()
        writer.wait()

    assert result.returncode == 0, result.stderr
    assert run_script("nightly-backup", "verify", home=home).returncode == 0
    with zipfile.ZipFile(home / "backups" / PACKAGE) as archive:
        archive.extract("database.db", tmp_path)
        audit = json.loads(archive.read("audit-logs.json"))
    copied = (
        sqlite3.connect(tmp_path / "database.db")
        .execute("SELECT count(*) FROM audit_logs WHERE action = 'APP_WRITE'")
        .fetchone()[0]
    )
    assert 0 < copied <= during
    assert sum(row["action"] == "APP_WRITE" for row in audit) == copied  # the exports are the copy's point in time


def test_dry_run_writes_nothing(home: Path, demo: Path) -> None:
    result = backup(home, "--dry-run")
    assert result.returncode == 0
    assert f"would write {home / 'backups' / PACKAGE}" in result.stdout
    assert backups(home) == []


def test_verify_with_no_package_says_so(home: Path, demo: Path) -> None:
    result = run_script("nightly-backup", "verify", home=home)
    assert result.returncode == 1 and "no package" in result.stderr


@pytest.mark.parametrize(
    ("now", "full_check_day", "check"),
    [
        ("2026-11-29T23:30:00+05:30", "sunday", "integrity_check"),  # a Sunday in India
        ("2026-11-30T01:00:00+05:30", "sunday", "quick_check"),  # Sunday still in UTC, Monday in India
        ("2026-11-25T23:30:00+05:30", "wednesday", "integrity_check"),
        ("2026-11-25T23:30:00+05:30", "every", "integrity_check"),
    ],
)
def test_the_full_check_runs_on_its_ist_weekday_and_a_quick_check_on_the_others(
    home: Path, demo: Path, now: str, full_check_day: str, check: str
) -> None:
    result = backup(home, CASEJOBS_NOW=now, CASEJOBS_BACKUP_FULL_CHECK_DAY=full_check_day)
    assert result.returncode == 0, result.stderr
    (package,) = (home / "backups").glob("casejobs-backup-*.zip")
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert (manifest["database_check"], manifest["integrity_check"]) == (check, "ok")
