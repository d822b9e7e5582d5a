"""What the package's size would be under each way of meeting issue 12's last goal (a package at most
1.1x the ZIP of the database alone), measured on the busy shape so that the product owner can choose.

It reads the package nightlyBackup left in the busy home (bench_backup makes it) and a copy of the busy
database, and compresses, never runs the job: each option's size is the sum of its members' deflate
streams, as the job would write them (ISA-L level 1, the job's default) or at zlib's level 6 (what
`zip -q` uses). Leaving the indexes out is measured on a copy whose explicit indexes are dropped with
`secure_delete` on, so that their freed pages are zeros (what a job doing it without a VACUUM would
store).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from isal import isal_zlib

from bench.common import WORK, scale_home

BLOCK = 4 << 20


def deflated_size(blocks: Iterable[bytes], make: Callable[[], object]) -> int:
    """The size of a raw deflate stream of those blocks, made by a fresh compressor from make()."""
    compressor = make()
    size = sum(len(compressor.compress(block)) for block in blocks)
    return size + len(compressor.flush())


def fast() -> object:
    return isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15)


def like_zip() -> object:
    return zlib.compressobj(6, zlib.DEFLATED, -15)


def file_blocks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as source:
        while block := source.read(BLOCK):
            yield block


def member_blocks(archive: zipfile.ZipFile, name: str) -> Iterable[bytes]:
    with archive.open(name) as source:
        while block := source.read(BLOCK):
            yield block


def database_without_indexes(database: Path, copy: Path) -> Path:
    """A copy of the database with every explicit index dropped and its pages zeroed."""
    subprocess.run(["sqlite3", str(database), f".backup {copy}"], check=True)
    with sqlite3.connect(copy) as connection:
        connection.execute("PRAGMA secure_delete = ON")
        names = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        ]
        for name in names:
            connection.execute(f'DROP INDEX "{name}"')
    connection.close()
    return copy


def main(shape: str = "busy") -> dict[str, object]:
    print(f"the package's size under each option ({shape})", flush=True)
    missing = [tool for tool in ("sqlite3", "zip") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"bench_package_size needs {' and '.join(missing)} (apt-get install {' '.join(missing)})")
    home = scale_home(shape)
    packages = sorted((home / "backups").glob("casejobs-backup-*.zip"))
    if not packages:
        raise SystemExit(f"no package in {home / 'backups'}: run bench.bench_backup first (make bench does)")
    package = packages[-1]  # the newest: names sort by date
    scratch = WORK / "package-size"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        with zipfile.ZipFile(package) as archive:
            members = {info.filename: info.compress_size for info in archive.infolist()}
            exports_zip_level = sum(
                deflated_size(member_blocks(archive, name), like_zip) for name in members if name != "database.db"
            )
        reference = scratch / "reference.zip"
        copy = scratch / "copy.db"
        subprocess.run(["sqlite3", str(home / "casejobs.db"), f".backup {copy}"], check=True)
        subprocess.run(["zip", "-q", "-j", str(reference), str(copy)], check=True)
        reference_size = reference.stat().st_size
        database_zip_level = deflated_size(file_blocks(copy), like_zip)
        copy.unlink()
        without_indexes = database_without_indexes(home / "casejobs.db", scratch / "without-indexes.db")
        bare_fast = deflated_size(file_blocks(without_indexes), fast)
        bare_zip_level = deflated_size(file_blocks(without_indexes), like_zip)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    database, cases = members["database.db"], members["cases.json"]
    rest = sum(size for name, size in members.items() if name not in ("database.db", "cases.json"))
    options = {
        "the package today": database + cases + rest,
        "indexes left out of database.db": bare_fast + cases + rest,
        "indexes left out, every member at zip's level 6": bare_zip_level + exports_zip_level,
        "cases.json left out": database + rest,
        "cases.json left out, database.db at zip's level 6": database_zip_level + rest,
        "cases.json and the indexes left out": bare_fast + rest,
    }
    results: dict[str, object] = {"reference_zip_mb": round(reference_size / 1e6, 1)}
    for label, size in options.items():
        results[label] = {"mb": round(size / 1e6, 1), "ratio": round(size / reference_size, 2)}
        print(f"  {label}: {size / 1e6:.1f} MB ({size / reference_size:.2f}x the reference ZIP)", flush=True)
    return results


def table(results: dict[str, object]) -> str:
    """The README's table of options."""
    lines = [
        f"| the busy package | size (the reference ZIP: {results['reference_zip_mb']} MB) | goal <= 1.1x |",
        "|---|---|---|",
    ]
    for label, figure in results.items():
        if isinstance(figure, dict):
            met = "met" if figure["ratio"] <= 1.1 else "not met"
            lines.append(f"| {label} | {figure['mb']} MB ({figure['ratio']}x) | {met} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(main()))
