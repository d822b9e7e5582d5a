"""Retention of backup packages, which files count as ours, and the temporary files dead runs leave behind."""

from __future__ import annotations

import datetime as dt
import json
import os
import zipfile
from pathlib import Path

from lib.retention import apply_retention, package_path, packages_in, remove_leftovers
from tests.helpers import dead_pid

TODAY = dt.date(2026, 11, 28)


def package(folder: Path, day: dt.date, verified: bool = True) -> Path:
    """Write a package of that IST day: a readable manifest when verified, else bytes that are no ZIP."""
    path = package_path(folder, day)
    if verified:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("manifest.json", json.dumps({"members": {}, "ist_date": day.isoformat()}))
    else:
        path.write_bytes(b"PK\x03\x04 cut short")
    return path


def days_ago(*numbers: int) -> list[dt.date]:
    return [TODAY - dt.timedelta(days=number) for number in numbers]


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_packages_older_than_the_retention_are_deleted_and_one_exactly_at_it_is_kept(tmp_path: Path) -> None:
    for day in days_ago(0, 1, 30, 31, 45):
        package(tmp_path, day)
    deleted = apply_retention(tmp_path, TODAY, retention_days=30, keep_newest=2)
    assert sorted(deleted) == ["casejobs-backup-2026-10-14.zip", "casejobs-backup-2026-10-28.zip"]
    assert names(tmp_path) == [
        "casejobs-backup-2026-10-29.zip",
        "casejobs-backup-2026-11-27.zip",
        "casejobs-backup-2026-11-28.zip",
    ]


def test_the_newest_verified_packages_are_kept_however_old(tmp_path: Path) -> None:
    for day in days_ago(40, 50, 60, 70, 80):
        package(tmp_path, day)
    package(tmp_path, TODAY - dt.timedelta(days=35), verified=False)  # the newest, but unreadable: protects nothing
    deleted = apply_retention(tmp_path, TODAY, retention_days=30, keep_newest=3)
    assert sorted(deleted) == [
        "casejobs-backup-2026-09-09.zip",
        "casejobs-backup-2026-09-19.zip",
        "casejobs-backup-2026-10-24.zip",
    ]
    assert names(tmp_path) == [
        "casejobs-backup-2026-09-29.zip",
        "casejobs-backup-2026-10-09.zip",
        "casejobs-backup-2026-10-19.zip",
    ]


def test_a_file_not_named_like_our_packages_is_never_touched(tmp_path: Path) -> None:
    foreign = [
        "casejobs-backup-2020-01-01.zip.bak",
        "casejobs-backup-2020-13-45.zip",
        "Casejobs-backup-2020-01-01.zip",
        "casejobs-backup-2020-1-1.zip",
        "firm-backup-2020-01-01.zip",
        "notes.txt",
    ]
    for name in foreign:
        (tmp_path / name).write_text("not ours")
    (tmp_path / "casejobs-backup-2020-01-02.zip").mkdir()  # named like one, but a folder
    package(tmp_path, dt.date(2020, 1, 3))
    deleted = apply_retention(tmp_path, TODAY, retention_days=30, keep_newest=0)
    assert deleted == ["casejobs-backup-2020-01-03.zip"]
    assert names(tmp_path) == sorted([*foreign, "casejobs-backup-2020-01-02.zip"])


def test_packages_are_listed_newest_first_and_a_missing_folder_holds_none(tmp_path: Path) -> None:
    for day in (dt.date(2026, 1, 31), dt.date(2025, 12, 31), dt.date(2026, 11, 2)):
        package(tmp_path, day)
    (tmp_path / "casejobs-backup-2026-12-01.zip.tmp").write_text("")
    assert [day for day, _ in packages_in(tmp_path)] == [
        dt.date(2026, 11, 2),
        dt.date(2026, 1, 31),
        dt.date(2025, 12, 31),
    ]
    assert all(path.parent == tmp_path for _, path in packages_in(tmp_path))
    assert packages_in(tmp_path / "missing") == []


def test_a_leftover_of_a_live_process_is_kept_and_one_of_a_dead_process_removed(tmp_path: Path) -> None:
    alive, dead = os.getpid(), dead_pid()
    kept = [
        f".casejobs-backup-2026-11-28.zip.tmp-{alive}",
        f".casejobs-verify-{alive}.db",
        f"casejobs-copy-{dead}",  # not one of our temporary names
        f".casejobs-restore-{dead}",
        "casejobs-backup-2026-11-28.zip",
    ]
    removed = [f".casejobs-backup-2026-11-27.zip.tmp-{dead}", f".casejobs-verify-{dead}.db", f".casejobs-copy-{dead}"]
    for name in kept + removed:
        (tmp_path / name).write_text("")
    assert sorted(remove_leftovers(tmp_path)) == sorted(removed)
    assert names(tmp_path) == sorted(kept)
    assert remove_leftovers(tmp_path / "missing") == []
