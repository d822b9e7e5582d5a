"""Backup packages: a ZIP written under a temporary name, verified, then renamed.

Every member is streamed (memory does not grow with its size), compressed with
ISA-L into a side file beside the package, and then placed in the ZIP as it is,
so that members can be compressed at once on two cores and placed in order; its
size, sha256 and row count are recorded in manifest.json, the last member. A package
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
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isal import isal_zlib

from lib.home import json_of

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


def isal_level(level: int) -> int:
    """Map the setting's zlib-style level (1 fast to 9 small) onto ISA-L's levels 1 to 3."""
    return min(3, (level + 2) // 3)


@dataclass
class Deflated:
    """A member's data compressed aside (raw deflate, or stored at level 0), ready to be placed in a
    package as it is, with what its ZIP headers and the manifest say of it."""

    path: Path
    method: int  # zipfile.ZIP_DEFLATED or zipfile.ZIP_STORED
    size: int
    compressed_size: int
    crc: int
    sha256: str


class Compressor:
    """Compresses one member's bytes into a side file as they come (ISA-L's deflate, which is zlib's
    format at four times zlib's speed), with the CRC-32 and sha256 of what it holds.

    ISA-L, zlib's crc32 and hashlib all release the GIL on big blocks, so a
    Compressor on its own thread uses a second core.
    """

    def __init__(self, path: Path, level: int) -> None:
        self.path = path
        self._compressor = isal_zlib.compressobj(isal_level(level), isal_zlib.DEFLATED, -15) if level else None
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._target = os.fdopen(descriptor, "wb")
        self._hash = hashlib.sha256()
        self._crc = 0
        self.size = 0
        self._compressed = 0

    def add(self, block: bytes) -> None:
        self._hash.update(block)
        self._crc = zlib.crc32(block, self._crc)
        self.size += len(block)
        self._write(self._compressor.compress(block) if self._compressor else block)

    def _write(self, data: bytes) -> None:
        self._compressed += len(data)
        self._target.write(data)

    def finish(self) -> Deflated:
        """Flush and close the side file; return what it holds."""
        if self._compressor:
            self._write(self._compressor.flush())
        self._target.close()
        method = zipfile.ZIP_DEFLATED if self._compressor else zipfile.ZIP_STORED
        return Deflated(self.path, method, self.size, self._compressed, self._crc, self._hash.hexdigest())

    def discard(self) -> None:
        """Close and remove the side file; never raises."""
        with contextlib.suppress(OSError):
            self._target.close()
        self.path.unlink(missing_ok=True)


class MemberWriter:
    """A member being written: write() bytes, count rows; size, CRC and sha256 follow along.

    Small writes are gathered into 1 MiB blocks that a second thread
    compresses and hashes into a side file, so producing the data and
    compressing it use both cores.
    """

    def __init__(self, compressor: Compressor) -> None:
        self._compressor = compressor
        self._buffer = bytearray()
        self._blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)  # bounded: memory stays flat
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="zip-writer", daemon=True)
        self._thread.start()
        self.size = 0
        self.rows = 0
        self.deflated: Deflated | None = None  # set once compressed (PackageWriter.compressed)

    def _drain(self) -> None:
        while (block := self._blocks.get()) is not None:
            if self._error is None:
                try:
                    self._compressor.add(block)
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

    def close(self) -> Deflated:
        """Hand over what is left, wait for the writer thread and return the member; raise what it met."""
        if self._buffer:
            self._blocks.put(bytes(self._buffer))
            self._buffer.clear()
        self._blocks.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._compressor.finish()


def deflate_file(
    source: Path, destination: Path, level: int, between_chunks: Callable[[], None] | None = None
) -> Deflated:
    """Compress source into destination (created 0600), the way a member is compressed; on a thread,
    this uses a second core while the first writes the exports. between_chunks() is called after
    each chunk (it may raise to stop; the side file is then removed)."""
    compressor = Compressor(destination, level)
    try:
        with source.open("rb") as reader:
            while chunk := reader.read(CHUNK):
                compressor.add(chunk)
                if between_chunks is not None:
                    between_chunks()
        return compressor.finish()
    except BaseException:
        compressor.discard()
        raise


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
        self._zip = zipfile.ZipFile(self._file, "w", zipfile.ZIP_DEFLATED)
        self.compression_level = compression_level
        self.members: dict[str, Member] = {}

    def side_path(self, name: str) -> Path:
        """Where a member is compressed before it is placed: beside the package, named so that a dead
        run's leftovers are found and removed (lib/retention.LEFTOVER_NAME)."""
        return self.temporary_path.with_name(f"{self.temporary_path.name}.{name}")

    @contextlib.contextmanager
    def compressed(self, name: str) -> Iterator[MemberWriter]:
        """Compress one member into its side file, not yet placed: its MemberWriter's `deflated` then
        says what it holds, for add_deflated() to place. This may run on any thread: members are
        compressed at once, and placed in order."""
        compressor = Compressor(self.side_path(name), self.compression_level)
        writer = MemberWriter(compressor)
        try:
            yield writer
            writer.deflated = writer.close()
        except BaseException:
            with contextlib.suppress(BaseException):  # the first error is the one to report
                writer.close()
            compressor.discard()
            raise

    @contextlib.contextmanager
    def member(self, name: str) -> Iterator[MemberWriter]:
        """Stream one member into the package; its figures are kept for the manifest."""
        with self.compressed(name) as writer:
            yield writer
        try:
            self.add_deflated(name, writer.deflated, writer.rows)
        finally:
            writer.deflated.path.unlink(missing_ok=True)

    def add_deflated(
        self, name: str, deflated: Deflated, rows: int | None = None, between_chunks: Callable[[], None] | None = None
    ) -> None:
        """Place a member compressed aside (Compressor) in the package, copying its bytes as they are.

        zipfile has no public way to add data compressed already, so the member's
        header is written here the way ZipFile.open(name, "w") writes one (ZIP64
        sizes, known before the data, no data descriptor); verify_package then reads
        it back like any other member, CRC and sha256 included.
        """
        archive = self._zip
        info = zipfile.ZipInfo(name)
        info.compress_type = deflated.method
        info.external_attr = 0o600 << 16
        info.flag_bits = 0
        info.file_size, info.compress_size, info.CRC = deflated.size, deflated.compressed_size, deflated.crc
        archive._writecheck(info)  # the checks ZipFile.open(name, "w") makes: a new name, sizes
        archive.fp.seek(archive.start_dir)
        info.header_offset = archive.fp.tell()
        archive._didModify = True  # so that close() writes the central directory
        archive.fp.write(info.FileHeader(zip64=True))
        with deflated.path.open("rb") as source:
            while chunk := source.read(CHUNK):
                archive.fp.write(chunk)
                if between_chunks is not None:
                    between_chunks()
        archive.start_dir = archive.fp.tell()
        archive.filelist.append(info)
        archive.NameToInfo[name] = info
        self.members[name] = Member(size=deflated.size, sha256=deflated.sha256, rows=rows)

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
        """Remove what was written, side files included; never raises."""
        with contextlib.suppress(Exception):
            self._zip.close()
        with contextlib.suppress(Exception):
            self._file.close()
        for path in (self.temporary_path, *self.temporary_path.parent.glob(f"{self.temporary_path.name}.*")):
            with contextlib.suppress(OSError):
                path.unlink()


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


MANIFEST_LIMIT = 4 << 20  # ours is about a kilobyte; a larger one is hostile, never inflated whole


def manifest_in(archive: zipfile.ZipFile) -> Any:
    """Return the parsed manifest of an open package; raise KeyError when it has none and ValueError when
    it is larger than any manifest, or not JSON (nesting beyond reason included)."""
    with archive.open(MANIFEST) as member:
        data = member.read(MANIFEST_LIMIT + 1)
    if len(data) > MANIFEST_LIMIT:
        raise ValueError(f"larger than {MANIFEST_LIMIT >> 20} MiB")
    return json_of(data)


def read_manifest(path: Path) -> dict[str, Any]:
    """Return a package's manifest; raise ValueError (with the reason) if it cannot be read or is malformed."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = manifest_in(archive)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, zlib.error) as error:
        raise ValueError(f"{MANIFEST}: {error}") from None
    if not is_valid_manifest(manifest):
        raise ValueError(INVALID_MANIFEST)
    return manifest


def free_space_problem(folder: Path, size: int) -> str | None:
    """Say why size bytes cannot be inflated into folder (not enough free space), or None when they can."""
    free = shutil.disk_usage(folder).free
    if free < size + SPACE_MARGIN:
        return (
            f"needs {size >> 20} MiB and {SPACE_MARGIN >> 20} MiB to spare in {folder}, "
            f"which has {free / 2**20:.1f} MiB free"
        )
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
            result.manifest = manifest_in(archive)
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
                name: pool.submit(_check_member, path, archive.getinfo(name), figures, stop_flag)
                if name in names
                else None
                for name, figures in expected.items()
            }
            for name, check in checks.items():
                if check is None:
                    problem = "missing"
                else:
                    problem = stop_flag.wait_for(check) if stop_flag is not None else check.result()
                if problem:
                    result.problems.append(f"{name}: {problem}")
        if check_database and "database.db" in expected and result.ok:
            problem = _check_database_inside(archive, stop_flag, scratch or path.parent)
            if problem:
                result.problems.append(f"database.db: {problem}")
    return result


LOCAL_HEADER = struct.Struct(
    "<4s22xHH"
)  # signature, then (past versions, flags, method, time, CRC, sizes) the name and extra lengths


class Truncated(Exception):
    """A member's data ends before its header says it does."""


def raw_member(path: Path, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """Yield a member's data as it is stored (compressed), read from the package file in chunks.

    Read apart from zipfile, on a file of its own, so that it can be inflated with ISA-L (several
    times zlib's speed) and two members at once. Raise Truncated if the file ends too soon and
    zipfile.BadZipFile if the local header is not one.
    """
    with path.open("rb") as package:
        package.seek(info.header_offset)
        header = package.read(LOCAL_HEADER.size)
        if len(header) < LOCAL_HEADER.size:
            raise Truncated
        signature, name_length, extra_length = LOCAL_HEADER.unpack(header)
        if signature != b"PK\x03\x04":
            raise zipfile.BadZipFile("bad local header")
        package.seek(name_length + extra_length, os.SEEK_CUR)
        left = info.compress_size
        while left > 0:
            chunk = package.read(min(CHUNK, left))
            if not chunk:
                raise Truncated
            left -= len(chunk)
            yield chunk


def _check_member(
    path: Path, info: zipfile.ZipInfo, figures: dict[str, Any], stop_flag: StopFlag | None = None
) -> str | None:
    """Inflate one member from the package file and check its size and CRC against the ZIP's headers
    and its size and sha256 against the manifest; return the problem, or None."""
    digest, crc, size = hashlib.sha256(), 0, 0
    inflater = isal_zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    if info.compress_type not in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED):
        return f"unreadable (compression method {info.compress_type})"
    try:
        for chunk in raw_member(path, info):
            data = inflater.decompress(chunk) if inflater else chunk
            digest.update(data)
            crc = zlib.crc32(data, crc)
            size += len(data)
            if stop_flag is not None:
                stop_flag.check()
        if inflater is not None:
            data = inflater.flush()
            digest.update(data)
            crc = zlib.crc32(data, crc)
            size += len(data)
            if not inflater.eof:
                return "data corrupted"  # the deflate stream does not end where the member does
    except Truncated:
        return "data cut short (the package is truncated)"
    except isal_zlib.error:
        return "data corrupted"
    except (OSError, zipfile.BadZipFile) as error:
        return f"unreadable ({error})"
    if size != info.file_size or crc != info.CRC:
        return "data corrupted"
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


FULL_CHECK, QUICK_CHECK = "integrity_check", "quick_check"
CHECK_CACHE_KIB = 32 * 1024  # the full check looks every index entry up in its table: a cache saves most reads


def integrity_check(path: Path, stop_flag: StopFlag | None = None, pragma: str = FULL_CHECK) -> str:
    """Return PRAGMA integrity_check's verdict on a database file ("ok" when sound), or quick_check's:
    the same checks but that each index holds exactly its table's rows, in a fifteenth of the time.

    With a stop_flag, a stop interrupts the check and raises StopRequested.
    """
    assert pragma in (FULL_CHECK, QUICK_CHECK)
    unregister: Callable[[], None] = lambda: None  # noqa: E731
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        if stop_flag is not None:
            unregister = stop_flag.on_stop(connection.interrupt)
        try:
            connection.execute(f"PRAGMA cache_size = -{CHECK_CACHE_KIB}")
            if stop_flag is not None:
                stop_flag.check()  # a stop that came before on_stop: interrupt() would have had nothing to end
            rows = connection.execute(f"PRAGMA {pragma}").fetchall()
        finally:
            unregister()
            connection.close()
    except sqlite3.DatabaseError as error:
        if stop_flag is not None:
            stop_flag.check()
        if "disk is full" in str(error):
            raise  # no room for the check's temporary space: not a verdict on the copy
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
