"""Backup packages: a ZIP written under a temporary name, verified, then renamed.

Every member is streamed (memory does not grow with its size) and its size,
sha256 and row count recorded in manifest.json, the last member. A package
appears under its final name only once it is complete, fsynced and verified,
so a run that dies at any moment leaves no incomplete file under a final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import shutil
import sqlite3
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lib.stop import StopFlag

CHUNK = 1 << 20
MANIFEST = "manifest.json"
SAFE_MEMBER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # no folders, no '..', nothing absolute


@dataclass
class Member:
    """What the manifest says of one member."""

    size: int = 0
    sha256: str = ""
    rows: int | None = None


class MemberWriter:
    """A member being written: write() bytes, count rows; its size and sha256 follow along.

    Small writes are gathered into 1 MiB blocks that a second thread
    compresses, hashes and writes (zlib and hashlib release the GIL on big
    blocks), so producing the data and compressing it use both cores.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)  # bounded: memory stays flat
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="zip-writer", daemon=True)
        self._thread.start()
        self.size = 0
        self.rows = 0

    def _drain(self) -> None:
        while (block := self._blocks.get()) is not None:
            if self._error is None:
                try:
                    self._stream.write(block)
                    self._hash.update(block)
                except BaseException as error:  # handed to the producer at its next write or at close
                    self._error = error

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self.size += len(data)
        if not self._buffer and len(data) >= CHUNK:
            self._blocks.put(data)  # a whole block already: no copy
            return
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            self._blocks.put(bytes(self._buffer))
            self._buffer.clear()

    def close(self) -> None:
        """Hand over what is left and wait for the writer thread; raise what it met."""
        if self._buffer:
            self._blocks.put(bytes(self._buffer))
            self._buffer.clear()
        self._blocks.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def finished(self) -> Member:
        return Member(size=self.size, sha256=self._hash.hexdigest(), rows=self.rows)


def fsync_folder(folder: Path) -> None:
    """Make a rename in folder durable (a no-op where folders cannot be opened, as on Windows)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class PackageWriter:
    """Writes one package to `.NAME.tmp-PID` beside its final path; commit() renames it into place."""

    def __init__(self, final_path: Path, compression_level: int) -> None:
        self.final_path = final_path
        self.temporary_path = final_path.with_name(f".{final_path.name}.tmp-{os.getpid()}")
        descriptor = os.open(self.temporary_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._file = os.fdopen(descriptor, "wb")
        self._zip = zipfile.ZipFile(self._file, "w", zipfile.ZIP_DEFLATED, compresslevel=compression_level)
        self.members: dict[str, Member] = {}

    @contextlib.contextmanager
    def member(self, name: str) -> Iterator[MemberWriter]:
        """Stream one member into the package; its figures are kept for the manifest."""
        with self._zip.open(name, "w", force_zip64=True) as stream:
            writer = MemberWriter(stream)
            try:
                yield writer
            except BaseException:
                with contextlib.suppress(BaseException):  # the first error is the one to report
                    writer.close()
                raise
            writer.close()
        self.members[name] = writer.finished()

    def add_file(
        self, name: str, path: Path, rows: int | None = None, between_chunks: Callable[[], None] | None = None
    ) -> None:
        """Copy a file into the package as a member, in chunks (calling between_chunks, which may raise, after each)."""
        with self.member(name) as writer, path.open("rb") as source:
            while chunk := source.read(CHUNK):
                writer.write(chunk)
                if between_chunks is not None:
                    between_chunks()
        self.members[name].rows = rows

    def close(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Add manifest.json (the given fields plus every member's figures), close and fsync.

        Return the manifest written.
        """
        manifest = {**manifest, "members": {name: vars(member) for name, member in self.members.items()}}
        self._zip.writestr(MANIFEST, json.dumps(manifest, indent=2) + "\n")
        self._zip.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return manifest

    def commit(self) -> None:
        """Rename the finished package to its final name (replacing an older one atomically)."""
        os.replace(self.temporary_path, self.final_path)
        fsync_folder(self.final_path.parent)

    def abort(self) -> None:
        """Remove what was written; never raises."""
        with contextlib.suppress(Exception):
            self._zip.close()
        with contextlib.suppress(Exception):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.temporary_path.unlink()


@dataclass
class Verification:
    """The result of checking one package: each problem names the member it is about."""

    path: Path
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


SHA256 = re.compile(r"^[0-9a-f]{64}$")
INVALID_MANIFEST = f"{MANIFEST} is not a valid manifest"
SPACE_MARGIN = 16 << 20  # bytes left free beyond what is inflated


def is_valid_manifest(manifest: Any) -> bool:
    """True for a manifest of the shape the writer makes: members by name, each with size, sha256 and rows."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("members"), dict):
        return False
    for name, figures in manifest["members"].items():
        if not isinstance(name, str) or not isinstance(figures, dict):
            return False
        size, digest, rows = figures.get("size"), figures.get("sha256"), figures.get("rows")
        if type(size) is not int or size < 0 or not isinstance(digest, str) or not SHA256.match(digest):
            return False
        if rows is not None and type(rows) is not int:
            return False
    return True


def read_manifest(path: Path) -> dict[str, Any]:
    """Return a package's manifest; raise ValueError (with the reason) if it cannot be read or is malformed."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read(MANIFEST))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise ValueError(f"{MANIFEST}: {error}") from None
    if not is_valid_manifest(manifest):
        raise ValueError(INVALID_MANIFEST)
    return manifest


def free_space_problem(folder: Path, size: int) -> str | None:
    """Say why size bytes cannot be inflated into folder (not enough free space), or None when they can."""
    free = shutil.disk_usage(folder).free
    if free < size + SPACE_MARGIN:
        return f"needs {size >> 20} MiB in {folder}, which has {free >> 20} MiB free"
    return None


def verify_package(
    path: Path, check_database: bool = False, stop_flag: StopFlag | None = None, scratch: Path | None = None
) -> Verification:
    """Check a package: member names, the manifest's shape, each member's size in the ZIP's headers,
    the ZIP's own CRCs, each member's size and sha256 against the manifest and, with check_database,
    integrity_check of database.db inside, inflated into scratch (default: the package's folder)
    only once the free space there is known to be enough.

    With a stop_flag, a stop raises StopRequested within a chunk's time.
    """
    result = Verification(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        result.problems.append(f"not a readable ZIP file, damaged or truncated ({error})")
        return result
    with archive:
        names = archive.namelist()
        unsafe = [name for name in names if not SAFE_MEMBER_NAME.match(name)]
        result.problems += [f"{name}: unsafe member name" for name in unsafe]
        try:
            result.manifest = json.loads(archive.read(MANIFEST))
        except (KeyError, ValueError, zipfile.BadZipFile, zlib.error) as error:
            result.problems.append(f"{MANIFEST}: missing or unreadable ({error})")
            return result
        if not is_valid_manifest(result.manifest):
            result.problems.append(INVALID_MANIFEST)
            return result
        expected = result.manifest["members"]
        for name in sorted(set(names) - set(expected) - {MANIFEST}):
            result.problems.append(f"{name}: not in the manifest")
        for name, figures in expected.items():
            if name in names and archive.getinfo(name).file_size != figures["size"]:
                result.problems.append(f"{name}: its size in the ZIP differs from the manifest's")
        if not result.ok:
            return result  # nothing is inflated from a package that already lies about its sizes
        # Two members at a time: inflating and hashing release the GIL, so both cores work.
        with ThreadPoolExecutor(max_workers=2) as pool:
            checks = {
                name: pool.submit(_check_member, archive, name, figures, stop_flag)
                for name, figures in expected.items()
            }
            for name, check in checks.items():
                problem = stop_flag.wait_for(check) if stop_flag is not None else check.result()
                if problem:
                    result.problems.append(f"{name}: {problem}")
        if check_database and "database.db" in expected and result.ok:
            problem = _check_database_inside(archive, stop_flag, scratch or path.parent)
            if problem:
                result.problems.append(f"database.db: {problem}")
    return result


def _check_member(
    archive: zipfile.ZipFile, name: str, figures: dict[str, Any], stop_flag: StopFlag | None = None
) -> str | None:
    digest = hashlib.sha256()
    size = 0
    try:
        with archive.open(name) as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if stop_flag is not None:
                    stop_flag.check()
    except KeyError:
        return "missing"
    except EOFError:
        return "data cut short (the package is truncated)"
    except (zipfile.BadZipFile, zlib.error) as error:  # a bad CRC, or deflate data that does not inflate
        return "data corrupted" if "CRC" in str(error) or isinstance(error, zlib.error) else f"unreadable ({error})"
    except (OSError, ValueError) as error:
        return f"unreadable ({error})"
    if size != figures.get("size"):
        return f"size {size} differs from the manifest's {figures.get('size')}"
    if digest.hexdigest() != figures.get("sha256"):
        return "content differs from the manifest (sha256)"
    return None


def extract_member(archive: zipfile.ZipFile, name: str, destination: Path) -> None:
    """Stream one member into destination (created 0600, fsynced); member names never make paths."""
    descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as target, archive.open(name) as source:
        while chunk := source.read(CHUNK):
            target.write(chunk)
        target.flush()
        os.fsync(target.fileno())


def integrity_check(path: Path, stop_flag: StopFlag | None = None) -> str:
    """Return PRAGMA integrity_check's verdict on a database file ("ok" when sound).

    With a stop_flag, a stop interrupts the check and raises StopRequested.
    """
    unregister: Callable[[], None] = lambda: None  # noqa: E731
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        if stop_flag is not None:
            unregister = stop_flag.on_stop(connection.interrupt)
        try:
            rows = connection.execute("PRAGMA integrity_check").fetchall()
        finally:
            unregister()
            connection.close()
    except sqlite3.DatabaseError as error:
        if stop_flag is not None:
            stop_flag.check()
        return str(error)
    return "; ".join(str(row[0]) for row in rows[:5])


VERIFY_COPY = ".casejobs-verify-{pid}.db"  # removed on every exit path; a killed run's by the next one


def _check_database_inside(archive: zipfile.ZipFile, stop_flag: StopFlag | None, scratch: Path) -> str | None:
    size = archive.getinfo("database.db").file_size
    space = free_space_problem(scratch, size)
    if space:
        return f"not checked: {space}"
    copy = scratch / VERIFY_COPY.format(pid=os.getpid())
    try:
        extract_member(archive, "database.db", copy)
        verdict = integrity_check(copy, stop_flag)
    finally:
        copy.unlink(missing_ok=True)
    return None if verdict == "ok" else f"integrity_check: {verdict}"
