"""Encrypted packages, the off-site copy and the restore drill, through the bin/ scripts as cron runs them.

The encrypted package is opened by clients nobody here wrote (the `age`
command-line tool, `unzip`, `sqlite3`); the off-site faults are real ones
(a missing folder, a tmpfs that is full or read-only, a copy killed with
SIGKILL); the drill's tampered package has its manifest recomputed to match.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from pyrage import decrypt, x25519

from lib.lock import JobLock
from tests.conftest import run_script, start_script
from tests.helpers import last_finish, seed_small, wait_for_log_event, wait_until

NOW = "2026-11-25T23:30:00+05:30"
DAY = "2026-11-25"
PACKAGE = f"casejobs-backup-{DAY}.zip"
MARKER = "ZQX-MARKER-7f3a9c"  # planted in a confidential case's title and a user's password_hash

needs_age_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("age", "unzip", "sqlite3")),
    reason="needs age, unzip and sqlite3 (.ci/run installs them)",
)


@pytest.fixture
def demo(home: Path, database_path: Path) -> Path:
    """A small seeded database in home, with the marker planted where it must never be readable."""
    seed_small(database_path, NOW)
    connection = sqlite3.connect(database_path)
    with connection:
        connection.execute(
            "UPDATE cases SET title = ? WHERE id = (SELECT min(id) FROM cases WHERE is_confidential = 1)",
            (f"Confidential {MARKER}",),
        )
        connection.execute("UPDATE users SET password_hash = ? WHERE id = (SELECT min(id) FROM users)", (MARKER,))
    connection.close()
    return database_path


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, str]:
    """An age key pair: the identity file (0600, as age-keygen writes it) and its recipient."""
    identity = x25519.Identity.generate()
    path = tmp_path / "keys" / "backup.key"
    path.parent.mkdir()
    recipient = str(identity.to_public())
    path.write_text(f"# created: {NOW}\n# public key: {recipient}\n{identity}\n")
    path.chmod(0o600)
    return path, recipient


def backup(home: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return run_script("nightly-backup", *arguments, home=home, **{"CASEJOBS_NOW": NOW, **environment})


def drill(home: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    return run_script("backup-drill", home=home, **{"CASEJOBS_NOW": "2026-11-29T03:00:00+05:30", **environment})


def dump(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")) if folder.exists() else []


def offsite_folder(tmp_path: Path, home: Path) -> Path:
    folder = tmp_path / "nas"
    folder.mkdir()
    result = run_script("jobctl", "offsite", "init", str(folder), home=home)
    assert result.returncode == 0, result.stderr
    return folder


@needs_age_tools
def test_the_age_client_unzip_and_sqlite3_open_an_encrypted_package(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    identity, recipient = keys
    live = dump(demo)

    result = backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient)

    assert result.returncode == 0, result.stderr
    package = home / "backups" / f"{PACKAGE}.age"
    assert files_under(home / "backups") == [f"{PACKAGE}.age", f"{PACKAGE}.age.json"]
    assert files_under(home / "work") == []  # the clear package and the copy are gone
    clear = tmp_path / "clear.zip"
    subprocess.run(["age", "--decrypt", "-i", str(identity), "-o", str(clear), str(package)], check=True)
    subprocess.run(["unzip", "-q", str(clear), "-d", str(tmp_path / "out")], check=True)
    database = tmp_path / "out" / "database.db"
    checked = subprocess.run(
        ["sqlite3", str(database), "PRAGMA integrity_check"], capture_output=True, text=True, check=True
    )
    assert checked.stdout.strip() == "ok"
    assert dump(database) == live
    details = last_finish(home, "nightlyBackup")["details"]
    assert details["encrypted"] is True and details["size"] == package.stat().st_size
    assert details["sha256"] == sha256(package)


def test_nothing_readable_in_the_encrypted_file_nor_its_record(home: Path, demo: Path, keys: tuple[Path, str]) -> None:
    identity, recipient = keys

    assert backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient).returncode == 0

    package = home / "backups" / f"{PACKAGE}.age"
    for path in (home / "backups").iterdir():
        assert MARKER.encode() not in path.read_bytes(), path.name
    record = json.loads((home / "backups" / f"{PACKAGE}.age.json").read_text())
    assert set(record) >= {"size", "sha256"} and MARKER not in json.dumps(record)
    # The control: the marker is there once decrypted, so the check above can fail.
    opened = decrypt(package.read_bytes(), [x25519.Identity.from_str(identity.read_text().splitlines()[-1])])
    clear = home / "clear.zip"
    clear.write_bytes(opened)
    with zipfile.ZipFile(clear) as archive:
        assert MARKER.encode() in archive.read("database.db")


def test_verify_checks_what_it_can_without_the_identity(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    identity, recipient = keys
    assert backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient).returncode == 0
    package = home / "backups" / f"{PACKAGE}.age"

    plain = run_script("nightly-backup", "verify", home=home)
    opened = run_script("nightly-backup", "verify", "--identity", str(identity), home=home)

    assert plain.returncode == 0 and "ok (size and sha256 as recorded; its contents need --identity)" in plain.stdout
    assert opened.returncode == 0 and opened.stdout.strip().endswith(": ok")
    stranger = tmp_path / "stranger.key"
    stranger.write_text(f"{x25519.Identity.generate()}\n")
    stranger.chmod(0o600)
    wrong = run_script("nightly-backup", "verify", "--identity", str(stranger), home=home)
    assert wrong.returncode == 1 and "the identity does not open it" in wrong.stdout
    data = package.read_bytes()
    package.write_bytes(data[:-100])  # cut short
    cut = run_script("nightly-backup", "verify", home=home)
    assert cut.returncode == 1 and "cut short or altered" in cut.stdout
    package.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped
    flipped = run_script("nightly-backup", "verify", home=home)
    assert flipped.returncode == 1 and "its sha256 differs" in flipped.stdout


def test_restore_of_an_encrypted_package_needs_its_identity(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    identity, recipient = keys
    live = dump(demo)
    assert backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient).returncode == 0
    package = str(home / "backups" / f"{PACKAGE}.age")
    target = tmp_path / "restored.db"

    refused = run_script("nightly-backup", "restore", package, "--to", str(target), home=home)

    assert refused.returncode == 1 and "give the identity" in refused.stderr and not target.exists()

    restored = run_script(
        "nightly-backup", "restore", package, "--to", str(target), "--identity", str(identity), home=home
    )

    assert restored.returncode == 0, restored.stderr
    assert dump(target) == live
    assert files_under(home / "work") == []


def test_a_folder_without_the_marker_is_not_mounted(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    _, recipient = keys
    share = tmp_path / "nas"
    settings = {"CASEJOBS_BACKUP_ENCRYPT_TO": recipient, "CASEJOBS_BACKUP_OFFSITE_DIR": str(share)}

    missing = backup(home, **settings)
    share.mkdir()
    unmarked = backup(home, **settings)

    assert missing.returncode == 3
    assert last_finish(home, "nightlyBackup")["error"].startswith(f"offsite folder {share} is not mounted")
    assert unmarked.returncode == 3 and "no .casejobs-offsite marker" in last_finish(home, "nightlyBackup")["error"]
    assert files_under(share) == []
    assert run_script("nightly-backup", "verify", home=home).returncode == 0  # the local package is intact
    check = run_script("jobstats", "--check", "--job", "nightlyBackup", home=home, CASEJOBS_NOW=NOW)
    assert check.returncode == 1 and f"offsite folder {share} is not mounted" in check.stdout

    assert run_script("jobctl", "offsite", "init", str(share), home=home).returncode == 0
    copied = backup(home, **settings)

    assert copied.returncode == 0, copied.stderr
    assert last_finish(home, "nightlyBackup")["details"]["offsite"]["copied"] == [f"{PACKAGE}.age"]
    assert sha256(share / f"{PACKAGE}.age") == sha256(home / "backups" / f"{PACKAGE}.age")
    assert files_under(share) == [".casejobs-offsite", f"{PACKAGE}.age", f"{PACKAGE}.age.json"]


def test_offsite_needs_encryption_unless_plaintext_is_said_on_purpose(home: Path, demo: Path, tmp_path: Path) -> None:
    share = offsite_folder(tmp_path, home)

    refused = backup(home, CASEJOBS_BACKUP_OFFSITE_DIR=str(share))

    assert refused.returncode == 78 and "CASEJOBS_BACKUP_ENCRYPT_TO is not" in refused.stderr
    assert not (home / "backups" / PACKAGE).exists() and last_finish(home, "nightlyBackup")["status"] == "config"

    allowed = backup(home, CASEJOBS_BACKUP_OFFSITE_DIR=str(share), CASEJOBS_BACKUP_OFFSITE_PLAINTEXT="1")

    assert allowed.returncode == 0, allowed.stderr
    assert sha256(share / PACKAGE) == sha256(home / "backups" / PACKAGE)


@pytest.fixture
def small_mount(tmp_path: Path):
    """A tmpfs of 64 KiB (too small for any package), unmounted at the end."""
    folder = tmp_path / "usb"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], check=False).returncode:
        pytest.skip("needs to mount a small tmpfs (root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def offsite_check(home: Path, settings: dict[str, str]) -> dict:
    """Doctor's off-site line, as --json gives it."""
    report = json.loads(run_script("jobctl", "doctor", "--json", home=home, **settings).stdout)
    (check,) = [check for check in report["checks"] if check["name"] == "off-site copy"]
    return check


def test_a_full_or_read_only_destination_makes_the_run_partial(
    home: Path, demo: Path, keys: tuple[Path, str], small_mount: Path
) -> None:
    _, recipient = keys
    settings = {"CASEJOBS_BACKUP_ENCRYPT_TO": recipient, "CASEJOBS_BACKUP_OFFSITE_DIR": str(small_mount)}
    assert run_script("jobctl", "offsite", "init", str(small_mount), home=home).returncode == 0

    full = backup(home, **settings)

    assert full.returncode == 3
    assert last_finish(home, "nightlyBackup")["error"].startswith(f"offsite folder {small_mount} is full")
    assert files_under(small_mount) == [".casejobs-offsite"]
    full_check = offsite_check(home, settings)
    assert full_check["status"] == "warning" and full_check["message"].startswith(
        f"offsite folder {small_mount} is full"
    )

    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    read_only = backup(home, **settings, CASEJOBS_BACKUP_RETENTION_DAYS="30")
    read_only_check = offsite_check(home, settings)
    subprocess.run(["mount", "-o", "remount,rw,size=16m", str(small_mount)], check=True)

    assert read_only_check == {
        **read_only_check,
        "status": "warning",
        "message": f"offsite folder {small_mount} is read-only",
    }
    assert offsite_check(home, settings)["status"] == "ok"  # room and write access again
    assert files_under(small_mount) == [".casejobs-offsite"]  # doctor's probe left nothing
    assert read_only.returncode == 3
    assert last_finish(home, "nightlyBackup")["error"] == f"offsite folder {small_mount} is read-only"
    assert files_under(small_mount) == [".casejobs-offsite"]
    assert run_script("nightly-backup", "verify", home=home).returncode == 0

    completed = backup(home, **settings)

    assert completed.returncode == 0, completed.stderr
    assert sha256(small_mount / f"{PACKAGE}.age") == sha256(home / "backups" / f"{PACKAGE}.age")


def paused_copy(home: Path, tmp_path: Path, recipient: str) -> tuple[subprocess.Popen[str], Path, dict[str, str]]:
    """Make today's encrypted package, then start a run that copies it off-site with a 5 s pause between
    chunks (the check of the package in place has one too); return once its temporary copy holds the
    first chunk, before its read-back and rename (two more pauses): the process, the share, the settings."""
    assert backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient).returncode == 0
    share = offsite_folder(tmp_path, home)
    settings = {"CASEJOBS_BACKUP_ENCRYPT_TO": recipient, "CASEJOBS_BACKUP_OFFSITE_DIR": str(share), "CASEJOBS_NOW": NOW}
    process = start_script("nightly-backup", home=home, CASEJOBS_DEBUG_ITEM_DELAY_MS="5000", **settings)
    try:
        wait_for_log_event(process, "copying off-site")
        temporary = wait_until(lambda: list(share.glob(".casejobs-offsite-*")), what="the temporary copy")
        wait_until(lambda: temporary[0].stat().st_size > 0, what="its first chunk")
    except BaseException:
        process.kill()
        process.communicate()
        raise
    return process, share, settings


def test_a_copy_killed_half_way_leaves_no_final_name_and_the_next_run_completes_it(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    _, recipient = keys
    process, share, settings = paused_copy(home, tmp_path, recipient)
    process.send_signal(signal.SIGKILL)
    process.communicate()

    assert not (share / f"{PACKAGE}.age").exists()
    assert [path.name for path in share.iterdir() if not path.name.startswith(".")] == []

    completed = backup(home, **settings)

    assert completed.returncode == 0, completed.stderr
    assert files_under(share) == [".casejobs-offsite", f"{PACKAGE}.age", f"{PACKAGE}.age.json"]
    assert sha256(share / f"{PACKAGE}.age") == sha256(home / "backups" / f"{PACKAGE}.age")


def test_offsite_retention_deletes_only_casejobs_packages(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    _, recipient = keys
    share = offsite_folder(tmp_path, home)
    foreign = [
        "notes.txt",
        "casejobs-backup-2026-01-01.zip.bak",
        "other-backup-2026-01-01.zip",
        "casejobs-backup-2026-01-01.tar",
        "casejobs-backup-2026-13-01.zip.age",
    ]
    for name in foreign:
        (share / name).write_text("not ours\n")
    (share / "photos").mkdir()
    old = share / "casejobs-backup-2026-10-01.zip.age"
    old.write_bytes(b"age-encryption.org/v1\nold")
    (share / f"{old.name}.json").write_text(json.dumps({"size": old.stat().st_size, "sha256": sha256(old)}))
    settings = {"CASEJOBS_BACKUP_ENCRYPT_TO": recipient, "CASEJOBS_BACKUP_OFFSITE_DIR": str(share)}

    result = backup(home, **settings, CASEJOBS_BACKUP_KEEP_NEWEST="1")

    assert result.returncode == 0, result.stderr
    assert last_finish(home, "nightlyBackup")["details"]["offsite"]["deleted"] == [old.name]
    assert files_under(share) == sorted(
        [".casejobs-offsite", *foreign, "photos", f"{PACKAGE}.age", f"{PACKAGE}.age.json"]
    )


def test_the_drill_restores_an_encrypted_package_and_leaves_nothing(
    home: Path, demo: Path, keys: tuple[Path, str]
) -> None:
    identity, recipient = keys
    assert backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient).returncode == 0
    live_before = dump(demo)

    result = drill(home, CASEJOBS_BACKUP_DRILL_IDENTITY=str(identity))

    assert result.returncode == 0, result.stderr
    details = last_finish(home, "backupDrill")["details"]
    assert details["restored"] is True and details["integrity_check"] == "ok" and details["where"] == "local"
    backup_rows = last_finish(home, "nightlyBackup")["details"]["rows"]
    assert details["exports"] == {name: backup_rows[name] for name in ("cases.json", "users.json", "audit-logs.json")}
    assert details["exports"]["cases.json"] == 500 and details["exports"]["users.json"] == 25
    assert details["rows"] == last_finish(home, "nightlyBackup")["details"]["rows"]["database.db"]
    assert files_under(home / "work") == []
    # The live database is never opened for the drill's work: only the audit row every run writes is new.
    assert [line for line in dump(demo) if "backupDrill" not in line] == live_before
    later = "2026-12-02T03:00:00+05:30"
    check = run_script("jobstats", "--check", home=home, CASEJOBS_NOW=later)
    assert "last restore drill: ok, 3 days ago" in check.stdout
    assert "last restore drill: ok, 3 days ago" in run_script("jobctl", "status", home=home, CASEJOBS_NOW=later).stdout
    assert "last restore drill: ok, 3 days ago" in run_script("jobstats", home=home, CASEJOBS_NOW=later).stdout


def test_the_drill_without_an_identity_checks_and_says_why_it_did_not_restore(
    home: Path, demo: Path, keys: tuple[Path, str]
) -> None:
    _, recipient = keys
    assert backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient).returncode == 0

    result = drill(home)

    assert result.returncode == 3
    finish = last_finish(home, "backupDrill")
    assert finish["status"] == "partial" and finish["error"].startswith("not restored: no identity")
    check = run_script(
        "jobstats", "--check", "--job", "backupDrill", home=home, CASEJOBS_NOW="2026-11-29T04:00:00+05:30"
    )
    assert check.returncode == 1 and "last restore drill: partial" in check.stdout


def rebuild_with_altered_database(package: Path, work: Path) -> None:
    """Change a row of database.db inside a clear package and recompute its manifest (and the record
    beside it) to match: only the ledger still knows the package's true sha256."""
    work.mkdir()
    with zipfile.ZipFile(package) as archive:
        archive.extractall(work)
        names = archive.namelist()
    connection = sqlite3.connect(work / "database.db")
    with connection:
        connection.execute("UPDATE cases SET title = 'altered' WHERE id = (SELECT min(id) FROM cases)")
    connection.close()
    manifest = json.loads((work / "manifest.json").read_text())
    database = (work / "database.db").read_bytes()
    manifest["members"]["database.db"] |= {"size": len(database), "sha256": hashlib.sha256(database).hexdigest()}
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.write(work / name, name)
    record = package.with_name(package.name + ".json")
    record.write_text(
        json.dumps({**json.loads(record.read_text()), "size": package.stat().st_size, "sha256": sha256(package)})
    )


def test_the_drill_fails_loudly_on_a_package_altered_with_its_manifest_recomputed(
    home: Path, demo: Path, tmp_path: Path
) -> None:
    assert backup(home).returncode == 0
    package = home / "backups" / PACKAGE
    rebuild_with_altered_database(package, tmp_path / "unpacked")
    from lib.archive import verify_package

    assert verify_package(package, check_database=True).ok  # the package alone looks sound

    result = drill(home)

    assert result.returncode == 1
    finish = last_finish(home, "backupDrill")
    assert finish["status"] == "failed"
    assert "its sha256 and size differ from the ledger's record of when it was made" in finish["error"]
    assert finish["error"].endswith("cut short or altered)")
    check = run_script(
        "jobstats", "--check", "--job", "backupDrill", home=home, CASEJOBS_NOW="2026-11-29T04:00:00+05:30"
    )
    assert check.returncode == 2 and "CRITICAL backupDrill: last run failed" in check.stdout
    verify = run_script("nightly-backup", "verify", home=home)
    assert verify.returncode == 1 and "differ from the ledger's record" in verify.stdout
    assert "its record beside it" not in verify.stdout  # recomputed too: only the ledger still knows


def test_the_drill_takes_the_offsite_copy_and_keeps_to_the_lock(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    identity, recipient = keys
    share = offsite_folder(tmp_path, home)
    settings = {"CASEJOBS_BACKUP_ENCRYPT_TO": recipient, "CASEJOBS_BACKUP_OFFSITE_DIR": str(share)}
    assert backup(home, **settings).returncode == 0

    lock = JobLock(home, "backupDrill")
    assert lock.acquire()
    try:
        locked = drill(home, **settings, CASEJOBS_BACKUP_DRILL_IDENTITY=str(identity))
    finally:
        lock.release()

    assert locked.returncode == 75 and last_finish(home, "backupDrill")["status"] == "locked"

    result = drill(home, **settings, CASEJOBS_BACKUP_DRILL_IDENTITY=str(identity))

    assert result.returncode == 0, result.stderr
    details = last_finish(home, "backupDrill")["details"]
    assert details["where"] == "off-site" and details["package"] == str(share / f"{PACKAGE}.age")
    assert details["restored"] is True


def test_a_disk_that_fills_while_encrypting_is_said_as_such(home: Path, demo: Path, keys: tuple[Path, str]) -> None:
    _, recipient = keys
    backups = home / "backups"
    backups.mkdir(mode=0o700, exist_ok=True)
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32k,mode=0700", "tmpfs", str(backups)], check=False
    ).returncode:
        pytest.skip("needs to mount a small tmpfs (root)")
    try:
        result = backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient)
        left = sorted(path.name for path in backups.iterdir())
    finally:
        subprocess.run(["umount", str(backups)], check=False)

    assert result.returncode == 1, result.stderr
    error = last_finish(home, "nightlyBackup")["error"]
    assert error.startswith("no room for the backup: the disk filled up while it was made"), error
    assert f"{backups} has " in error and "encrypting" not in error
    assert left == []  # no temporary left in the full folder


def test_doctor_knows_a_drill_identity_that_opens_nothing(home: Path, keys: tuple[Path, str], tmp_path: Path) -> None:
    identity, recipient = keys
    public_only = tmp_path / "public.key"
    public_only.write_text(f"{recipient}\n")
    public_only.chmod(0o600)
    other = tmp_path / "other.key"
    other.write_text(f"{x25519.Identity.generate()}\n")
    other.chmod(0o600)

    def drill_key_check(path: Path) -> dict:
        environment = {"CASEJOBS_BACKUP_ENCRYPT_TO": recipient, "CASEJOBS_BACKUP_DRILL_IDENTITY": str(path)}
        report = json.loads(run_script("jobctl", "doctor", "--json", home=home, **environment).stdout)
        (check,) = [check for check in report["checks"] if check["name"] == "backup.drill_identity"]
        return check

    public_check, other_check, right_check = (drill_key_check(path) for path in (public_only, other, identity))
    recipient = recipient.upper()  # age takes a recipient in capitals too
    assert drill_key_check(identity)["status"] == "ok"

    assert public_check["status"] == "fail" and "holds no age identity" in public_check["message"]
    assert other_check["status"] == "fail" and "the drill could open no package" in other_check["message"]
    assert right_check["status"] == "ok" and "opens the packages" in right_check["message"]


def test_a_drill_identity_open_to_others_is_refused(home: Path, demo: Path, keys: tuple[Path, str]) -> None:
    identity, _ = keys
    os.chmod(identity, 0o644)

    result = drill(home, CASEJOBS_BACKUP_DRILL_IDENTITY=str(identity))

    assert result.returncode == 78 and "is readable by others" in result.stderr


def test_catch_up_and_status_know_the_weekly_slot(home: Path, database_path: Path) -> None:
    (home / "installed-at").write_text("2026-11-28T00:00:00.000Z\n")  # Saturday, 05:30 IST

    before = run_script("jobctl", "catch-up", "--dry-run", home=home, CASEJOBS_NOW="2026-11-29T02:59:00+05:30")
    after = run_script("jobctl", "catch-up", "--dry-run", home=home, CASEJOBS_NOW="2026-11-29T03:30:00+05:30")
    status = run_script("jobctl", "status", "--json", home=home, CASEJOBS_NOW="2026-11-29T03:30:00+05:30")

    assert "backupDrill" not in before.stdout
    assert "backupDrill: 1 slot missed; would run it once" in after.stdout
    drill_status = json.loads(status.stdout)["jobs"]["backupDrill"]
    assert drill_status["next_run"] == "2026-12-06T03:00:00+05:30" and drill_status["missed_slots"] == 1


def test_clear_packages_stay_home_when_encryption_is_on(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    _, recipient = keys
    assert backup(home, CASEJOBS_NOW="2026-11-24T23:30:00+05:30").returncode == 0  # before encryption was on
    share = offsite_folder(tmp_path, home)

    result = backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient, CASEJOBS_BACKUP_OFFSITE_DIR=str(share))

    assert result.returncode == 0, result.stderr
    assert files_under(share) == [".casejobs-offsite", f"{PACKAGE}.age", f"{PACKAGE}.age.json"]
    for path in share.iterdir():
        assert MARKER.encode() not in path.read_bytes()


def test_a_lost_record_is_rebuilt_from_the_ledger_and_the_copy_made(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    _, recipient = keys
    assert backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient).returncode == 0
    record = home / "backups" / f"{PACKAGE}.age.json"
    record.unlink()
    share = offsite_folder(tmp_path, home)

    result = backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient, CASEJOBS_BACKUP_OFFSITE_DIR=str(share))

    assert result.returncode == 0, result.stderr
    assert json.loads(record.read_text())["sha256"] == sha256(home / "backups" / f"{PACKAGE}.age")
    assert sha256(share / f"{PACKAGE}.age") == sha256(home / "backups" / f"{PACKAGE}.age")


def test_offsite_cleanup_touches_only_its_own_killed_copies(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    _, recipient = keys
    share = offsite_folder(tmp_path, home)
    (share / ".casejobs-drill-88888").mkdir()
    (share / ".casejobs-drill-88888" / "precious.txt").write_text("keep")
    (share / ".casejobs-copy-99999").write_text("keep")
    (share / ".casejobs-offsite-otherhost-77777.casejobs-backup-2026-11-24.zip.age").write_text("another machine's")

    assert backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient, CASEJOBS_BACKUP_OFFSITE_DIR=str(share)).returncode == 0

    assert (share / ".casejobs-drill-88888" / "precious.txt").exists() and (share / ".casejobs-copy-99999").exists()
    assert (share / ".casejobs-offsite-otherhost-77777.casejobs-backup-2026-11-24.zip.age").exists()


def test_the_drill_finds_a_damaged_older_offsite_copy(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    identity, recipient = keys
    share = offsite_folder(tmp_path, home)
    settings = {"CASEJOBS_BACKUP_ENCRYPT_TO": recipient, "CASEJOBS_BACKUP_OFFSITE_DIR": str(share)}
    assert backup(home, **settings, CASEJOBS_NOW="2026-11-24T23:30:00+05:30").returncode == 0
    assert backup(home, **settings).returncode == 0
    older = share / "casejobs-backup-2026-11-24.zip.age"
    data = bytearray(older.read_bytes())
    data[5000] ^= 0xFF
    older.write_bytes(bytes(data))

    result = drill(home, **settings, CASEJOBS_BACKUP_DRILL_IDENTITY=str(identity))

    assert result.returncode == 3
    finish = last_finish(home, "backupDrill")
    assert (
        finish["details"]["restored"] is True and finish["details"]["offsite_copies_checked"] == 1
    )  # the newest was read as the drilled one
    assert (
        finish["error"]
        == f"off-site copy {older} differs from its record: delete it, and the next nightlyBackup copies it again"
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("AGE-SECRET-KEY-1QQQQ", "that is a private key"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA", "SSH keys are not taken"),
        ("age1typo", "is not an age recipient"),
        ("./missing-recipients.txt", "file not found"),
    ],
)
def test_a_bad_recipient_is_refused_with_its_reason_and_a_private_key_is_never_echoed(
    home: Path, database_path: Path, value: str, reason: str
) -> None:
    result = backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=value)

    assert result.returncode == 78 and reason in result.stderr
    assert "QQQQ" not in result.stderr
    assert "QQQQ" not in json.dumps(last_finish(home, "nightlyBackup"))


def test_a_switch_that_is_not_0_or_1_is_a_setting_error_and_offsite_init_needs_a_folder(
    home: Path, database_path: Path
) -> None:
    result = backup(home, CASEJOBS_BACKUP_OFFSITE_PLAINTEXT="yes")
    empty = run_script("jobctl", "offsite", "init", "", home=home)

    assert result.returncode == 78 and "CASEJOBS_BACKUP_OFFSITE_PLAINTEXT='yes': must be 0 or 1" in result.stderr
    assert empty.returncode == 1 and "name the folder" in empty.stderr
    assert not (Path("/") / ".casejobs-offsite").exists()


def test_a_full_destination_frees_itself_by_the_retention_before_copying(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    _, recipient = keys
    share = tmp_path / "usb3"
    share.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(share)], check=False).returncode:
        pytest.skip("needs to mount a small tmpfs (root)")
    try:
        assert run_script("jobctl", "offsite", "init", str(share), home=home).returncode == 0
        for day in ("2026-10-10", "2026-10-11", "2026-10-12"):  # expired long ago, 0.9 MB each
            old = share / f"casejobs-backup-{day}.zip.age"
            old.write_bytes(b"age-encryption.org/v1\n" + os.urandom(900_000))
            (share / f"{old.name}.json").write_text(json.dumps({"size": old.stat().st_size, "sha256": sha256(old)}))
        settings = {"CASEJOBS_BACKUP_ENCRYPT_TO": recipient, "CASEJOBS_BACKUP_OFFSITE_DIR": str(share)}

        result = backup(home, **settings, CASEJOBS_BACKUP_KEEP_NEWEST="1")

        assert result.returncode == 0, result.stderr
        offsite = last_finish(home, "nightlyBackup")["details"]["offsite"]
        assert offsite["copied"] == [f"{PACKAGE}.age"] and len(offsite["deleted"]) == 3
        assert files_under(share) == [".casejobs-offsite", f"{PACKAGE}.age", f"{PACKAGE}.age.json"]
    finally:
        subprocess.run(["umount", str(share)], check=False)


def test_a_local_package_changed_since_its_record_is_named_and_the_others_are_copied(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    _, recipient = keys
    assert backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient, CASEJOBS_NOW="2026-11-24T23:30:00+05:30").returncode == 0
    older = home / "backups" / "casejobs-backup-2026-11-24.zip.age"
    data = bytearray(older.read_bytes())
    data[-50] ^= 0xFF  # same size: it still looks whole
    older.write_bytes(bytes(data))
    share = offsite_folder(tmp_path, home)

    result = backup(home, CASEJOBS_BACKUP_ENCRYPT_TO=recipient, CASEJOBS_BACKUP_OFFSITE_DIR=str(share))

    assert result.returncode == 3
    finish = last_finish(home, "nightlyBackup")
    assert finish["error"] == f"local package {older} differs from its record: not copied off-site"
    assert finish["details"]["offsite"]["copied"] == [f"{PACKAGE}.age"]
    assert not (share / older.name).exists()


def test_sigterm_during_the_offsite_copy_ends_the_run_interrupted_and_leaves_no_temporary(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    _, recipient = keys
    process, share, _ = paused_copy(home, tmp_path, recipient)
    try:
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        stopped_within = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 143 and stopped_within < 2.5, stopped_within  # not after the 5 s pause
    assert last_finish(home, "nightlyBackup")["status"] == "interrupted"
    assert files_under(share) == [".casejobs-offsite"]


def test_the_drill_compares_the_restored_counts_with_the_manifest(home: Path, demo: Path, tmp_path: Path) -> None:
    """A package the ledger vouches for (as if the writer itself had erred) whose manifest miscounts a
    table: the restore works, the comparison fails and says which table."""
    assert backup(home).returncode == 0
    package = home / "backups" / PACKAGE
    before = sha256(package)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(unpacked)
        names = archive.namelist()
    manifest = json.loads((unpacked / "manifest.json").read_text())
    manifest["tables"]["cases"] += 1
    (unpacked / "manifest.json").write_text(json.dumps(manifest, indent=2))
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.write(unpacked / name, name)
    for month in (home / "ledger" / "nightlyBackup").glob("*.jsonl"):  # the ledger vouches for the new bytes
        text = month.read_text().replace(before, sha256(package))
        month.write_text(re.sub(r'"size": ?\d+', f'"size": {package.stat().st_size}', text))

    result = drill(home)

    assert result.returncode == 1
    finish = last_finish(home, "backupDrill")
    assert (
        finish["error"]
        == f"the restored cases table has {manifest['tables']['cases'] - 1} rows, the manifest says {manifest['tables']['cases']}"
    )
    assert files_under(home / "work") == []


def test_an_offsite_folder_belongs_to_one_installation(
    home: Path, demo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    _, recipient = keys
    share = offsite_folder(tmp_path, home)
    other = tmp_path / "other-home"
    other.mkdir()
    shutil.copy(demo, other / "casejobs.db")
    settings = {"CASEJOBS_BACKUP_ENCRYPT_TO": recipient, "CASEJOBS_BACKUP_OFFSITE_DIR": str(share)}

    refused = run_script("jobctl", "offsite", "init", str(share), home=other)
    result = backup(other, **settings)

    assert refused.returncode == 1 and "is already the off-site folder of" in refused.stderr
    assert result.returncode == 3
    assert "belongs to another installation" in last_finish(other, "nightlyBackup")["error"]
    assert files_under(share) == [".casejobs-offsite"]
    assert run_script("jobctl", "offsite", "init", str(share), home=home).returncode == 0  # its own: fine again


def test_a_probe_a_killed_doctor_left_is_cleaned_up_like_a_killed_copy() -> None:
    from lib.offsite import LEFTOVER, temporary_name

    assert LEFTOVER.match(temporary_name(Path("/nas"), "probe").name)
    assert LEFTOVER.match(temporary_name(Path("/nas"), f"{PACKAGE}.age").name)
    assert not LEFTOVER.match(temporary_name(Path("/nas"), "notes.txt").name)  # never a foreign file
