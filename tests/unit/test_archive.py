"""Backup packages: what PackageWriter writes verifies, and every way a package can lie or be damaged is named."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import pytest

from lib.archive import (
    INVALID_MANIFEST,
    PackageWriter,
    deflate_file,
    is_valid_manifest,
    read_manifest,
    verify_package,
)

CASES = b'[\n{"id": 1, "title": "Sharma v. Union of India"}\n]\n'
USERS = b'[\n{"id": 1, "name": "Asha Rao"}\n]\n'


def figures(data: bytes, rows: int | None = None) -> dict[str, Any]:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "rows": rows}


def write_package(folder: Path, compression_level: int = 1) -> Path:
    """Write and commit a package of two JSON members and a real SQLite database; return its path."""
    database = folder / "source.db"
    connection = sqlite3.connect(database)
    connection.execute("CREATE TABLE cases (id INTEGER PRIMARY KEY, title TEXT)")
    connection.execute("INSERT INTO cases (title) VALUES ('Sharma v. Union of India')")
    connection.commit()
    connection.close()
    writer = PackageWriter(folder / "casejobs-backup-2026-11-28.zip", compression_level)
    with writer.member("cases.json") as member:
        for line in CASES.splitlines(keepends=True):
            member.write(line)
        member.rows = 1
    with writer.member("users.json") as member:
        member.write(USERS)
        member.rows = 1
    compressed = deflate_file(database, writer.side_path("database.db"), compression_level)  # as the job does
    writer.add_deflated("database.db", compressed)
    compressed.path.unlink()
    writer.close({"ist_date": "2026-11-28"})
    writer.commit()
    return writer.final_path


def hand_made(path: Path, members: dict[str, bytes], manifest: Any) -> Path:
    """Write a ZIP by hand (as a hostile package would be) with the given members and manifest."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", json.dumps(manifest))
    return path


def test_a_package_as_written_verifies_with_its_figures_in_the_manifest(tmp_path: Path) -> None:
    path = write_package(tmp_path)
    result = verify_package(path, check_database=True)
    assert result.problems == []
    assert result.ok
    assert result.manifest is not None
    assert result.manifest["ist_date"] == "2026-11-28"
    assert result.manifest["members"]["cases.json"] == figures(CASES, rows=1)
    assert result.manifest["members"]["users.json"] == figures(USERS, rows=1)
    assert sorted(file.name for file in tmp_path.iterdir()) == ["casejobs-backup-2026-11-28.zip", "source.db"]
    assert read_manifest(path) == result.manifest


def test_a_flipped_byte_in_a_member_is_data_corrupted(tmp_path: Path) -> None:
    path = write_package(tmp_path, compression_level=0)  # stored blocks: the member's bytes are in the file as they are
    data = bytearray(path.read_bytes())
    where = data.index(b"Union of India")
    data[where] ^= 0x20
    path.write_bytes(bytes(data))
    assert verify_package(path).problems == ["cases.json: data corrupted"]


def test_a_member_whose_zip_size_differs_from_the_manifest_is_refused_before_inflating(tmp_path: Path) -> None:
    lying = {"members": {"cases.json": {**figures(CASES), "size": 10}}}
    path = hand_made(tmp_path / "package.zip", {"cases.json": CASES}, lying)
    result = verify_package(path)
    assert result.problems == ["cases.json: its size in the ZIP differs from the manifest's"]


def test_a_member_with_other_content_than_the_manifest_says_is_named(tmp_path: Path) -> None:
    other = {"members": {"cases.json": {**figures(CASES), "sha256": hashlib.sha256(b"other").hexdigest()}}}
    path = hand_made(tmp_path / "package.zip", {"cases.json": CASES}, other)
    assert verify_package(path).problems == ["cases.json: content differs from the manifest (sha256)"]


@pytest.mark.parametrize("name", ["../cases.json", "backups/cases.json", "/etc/cron.d/evil", ".hidden", "a b.json"])
def test_a_member_name_that_could_become_a_path_is_refused(tmp_path: Path, name: str) -> None:
    path = hand_made(tmp_path / "package.zip", {name: CASES}, {"members": {name: figures(CASES)}})
    assert f"{name}: unsafe member name" in verify_package(path).problems


def test_a_member_the_manifest_does_not_list_is_named(tmp_path: Path) -> None:
    path = hand_made(
        tmp_path / "package.zip",
        {"cases.json": CASES, "extra.json": USERS},
        {"members": {"cases.json": figures(CASES)}},
    )
    assert verify_package(path).problems == ["extra.json: not in the manifest"]


VALID_MEMBER = {"size": 3, "sha256": "a" * 64, "rows": None}


@pytest.mark.parametrize(
    ("manifest", "valid"),
    [
        ({"members": {"cases.json": VALID_MEMBER}}, True),
        ({"members": {"cases.json": {**VALID_MEMBER, "rows": 7}}, "created_at": "x"}, True),
        ({"members": {}}, True),
        ([], False),
        ({}, False),
        ({"members": []}, False),
        ({"members": {"cases.json": "abc"}}, False),
        ({"members": {"cases.json": {**VALID_MEMBER, "size": -1}}}, False),
        ({"members": {"cases.json": {**VALID_MEMBER, "size": True}}}, False),
        ({"members": {"cases.json": {**VALID_MEMBER, "size": "3"}}}, False),
        ({"members": {"cases.json": {**VALID_MEMBER, "sha256": "A" * 64}}}, False),
        ({"members": {"cases.json": {**VALID_MEMBER, "sha256": "a" * 63}}}, False),
        ({"members": {"cases.json": {**VALID_MEMBER, "rows": "7"}}}, False),
    ],
)
def test_a_manifest_is_valid_only_in_the_shape_the_writer_makes(manifest: Any, valid: bool) -> None:
    assert is_valid_manifest(manifest) is valid


def test_a_package_whose_manifest_has_the_wrong_shape_gets_one_line(tmp_path: Path) -> None:
    path = hand_made(tmp_path / "package.zip", {"cases.json": CASES}, {"members": [{"cases.json": 1}]})
    assert verify_package(path).problems == [INVALID_MANIFEST]
    with pytest.raises(ValueError, match=r"^manifest\.json is not a valid manifest$"):
        read_manifest(path)


def test_a_truncated_package_is_not_a_readable_zip(tmp_path: Path) -> None:
    path = write_package(tmp_path)
    path.write_bytes(path.read_bytes()[:-200])
    problems = verify_package(path).problems
    assert len(problems) == 1
    assert problems[0].startswith("not a readable ZIP file, damaged or truncated")


def test_abort_leaves_no_file_and_nothing_under_the_final_name(tmp_path: Path) -> None:
    writer = PackageWriter(tmp_path / "casejobs-backup-2026-11-28.zip", 1)
    assert writer.temporary_path.name.startswith(".casejobs-backup-2026-11-28.zip.tmp-")
    with writer.member("cases.json") as member:
        member.write(CASES)
    writer.abort()
    writer.abort()  # never raises, even twice
    assert list(tmp_path.iterdir()) == []
