"""Backup packages encrypted in the age format (age-encryption.org/v1), with pyrage, streamed.

The nightly job needs only the recipients (public keys, `age1…`): the private
key that opens a package is needed by `verify --identity`, `restore
--identity` and the restore drill, never to make one. Nothing here does
cryptography by hand: pyrage is the Rust implementation of age, and any
`age` or `rage` client reads what it writes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.errors import CasejobsError, StopRequested
from lib.home import read_small_file

AGE_HEADER = b"age-encryption.org/v1\n"
IDENTITY_PREFIX = "AGE-SECRET-KEY-1"


def _recipient(text: str) -> Any:
    from pyrage import RecipientError, x25519  # loaded only by the settings that use it

    from lib.settings import Refused

    if text.upper().startswith("AGE-SECRET-KEY-"):
        raise Refused("that is a private key: give its public key (age1…, age-keygen -y KEYFILE prints it)")
    if text.startswith(("ssh-", "ecdsa-")):
        raise Refused("SSH keys are not taken: give an age recipient (age1…, from age-keygen)")
    try:
        return x25519.Recipient.from_str(text)
    except RecipientError:
        raise Refused(f"{text[:12]}… is not an age recipient (mistyped or cut?)") from None


def opens_any(identities: list[Any], recipients: tuple[str, ...]) -> bool:
    """True when one of the identities is the private key of one of the recipients (as age reads them:
    a recipient written in capitals is the same one)."""
    public = {str(identity.to_public()) for identity in identities}
    return bool(public & {str(_recipient(word)) for word in recipients})


def parse_recipients(value: str) -> tuple[str, ...]:
    """Given the setting's text, return its age recipients (age1…): the text holds them, separated by
    spaces or commas, or names a recipients file holding one per line (`#` comments allowed, as
    `age -R` reads). Raise ValueError (lib.settings.Refused, with the reason) for anything else."""
    from lib.settings import Refused

    text = value.strip()
    if not text:
        raise Refused("empty")
    path = Path(text).expanduser()
    if path.is_file():
        try:
            lines = read_small_file(path).decode("utf-8").splitlines()
        except (OSError, UnicodeError):
            raise Refused(f"{path} cannot be read as a text file") from None
        words = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        if not words:
            raise Refused(f"{path} holds no recipient")
    elif os.sep in text or text.startswith((".", "~")):
        raise Refused(f"{path}: file not found" if not path.exists() else f"{path} is not a file")
    else:
        words = text.replace(",", " ").split()
    for word in words:
        _recipient(word)
    return tuple(words)


def read_identities(path: Path, what: str = "identity file") -> list[Any]:
    """Return the age identities (AGE-SECRET-KEY-1…) of a key file written by `age-keygen`.

    Raise CasejobsError in one line when the file is missing, unreadable,
    readable by others (on POSIX) or holds no identity.
    """
    from pyrage import IdentityError, x25519

    if path.is_dir():
        raise CasejobsError(f"{what} {path} is a folder, not a key file")
    try:
        if os.name == "posix" and path.stat().st_mode & 0o077:
            raise CasejobsError(f"{what} {path} is readable by others; make it private: chmod 600 {path}")
        lines = read_small_file(path).decode("utf-8").splitlines()
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or "not a text file"
        raise CasejobsError(f"{what} {path} cannot be read: {reason}") from None
    identities = []
    for line in lines:
        text = line.strip()
        if text.startswith(IDENTITY_PREFIX):
            try:
                identities.append(x25519.Identity.from_str(text))
            except IdentityError:
                raise CasejobsError(f"{what} {path} holds a damaged key") from None
    if not identities:
        raise CasejobsError(f"{what} {path} holds no age identity (a line AGE-SECRET-KEY-1…, as age-keygen writes)")
    return identities


def is_encrypted(path: Path) -> bool:
    """True for a file name of an encrypted package (.age)."""
    return path.name.endswith(".age")


def starts_like_age(path: Path) -> bool:
    """True if the file begins with the age format's header line."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(AGE_HEADER)) == AGE_HEADER
    except OSError:
        return False


@dataclass
class Written:
    """What was written to a file: its size and sha256."""

    size: int
    sha256: str


class _HashingWriter:
    """A file's writer that counts and hashes what goes through it, for pyrage to write into."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self._hash = hashlib.sha256()
        self.size = 0
        self.raised: OSError | None = None  # a full disk, kept: pyrage hands it back only as its error's text

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        try:
            return self._target.write(data)
        except OSError as error:
            self.raised = error
            raise

    def flush(self) -> None:
        try:
            self._target.flush()
        except OSError as error:
            self.raised = error
            raise

    def written(self) -> Written:
        return Written(self.size, self._hash.hexdigest())


class _CheckedReader:
    """A file's reader that calls check() before each read: pyrage reads in small blocks, so a stop is
    seen within milliseconds even in the middle of a large package. What a read raised (a stop, the
    SystemExit of a SIGTERM) is kept: pyrage hands it back only as its own error's text."""

    def __init__(self, source: Any, check: Callable[[], None]) -> None:
        self._source = source
        self._check = check
        self.raised: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            self._check()
            return self._source.read(size)
        except BaseException as error:
            self.raised = error
            raise

    def readinto(self, buffer: Any) -> int:
        try:
            self._check()
            return self._source.readinto(buffer)
        except BaseException as error:
            self.raised = error
            raise


def _raise_what_the_reader_met(reader: _CheckedReader) -> None:
    """A stop or an exit met while pyrage was reading stays what it was, not a decryption error."""
    if isinstance(reader.raised, StopRequested | SystemExit | KeyboardInterrupt):
        raise reader.raised


def encrypt_file(
    source: Path, destination: Path, recipients: tuple[str, ...], check: Callable[[], None] = lambda: None
) -> Written:
    """Encrypt source into destination (created 0600, fsynced) for the recipients, streamed; return the
    size and sha256 of what was written. check() is called between blocks and may raise to stop."""
    from pyrage import EncryptError, encrypt_io

    keys = [_recipient(text) for text in recipients]
    descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as target, source.open("rb") as plain:
        writer = _HashingWriter(target)
        reader = _CheckedReader(plain, check)
        try:
            encrypt_io(reader, writer, keys)
        except EncryptError as error:
            _raise_what_the_reader_met(reader)
            if writer.raised is not None:
                raise writer.raised from None  # the system's error (ENOSPC...), for the caller to name
            raise CasejobsError(f"encrypting {source.name} failed: {error}") from None
        target.flush()
        os.fsync(target.fileno())
    return writer.written()


def decrypt_file(
    source: Path, destination: Path, identities: list[Any], check: Callable[[], None] = lambda: None
) -> None:
    """Decrypt source into destination (created 0600), streamed. Raise CasejobsError in words when the
    identities do not open it or the file is damaged or cut short."""
    from pyrage import DecryptError, decrypt_io

    descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as target, source.open("rb") as encrypted:
        reader = _CheckedReader(encrypted, check)
        try:
            decrypt_io(reader, target, identities)
        except DecryptError as error:
            _raise_what_the_reader_met(reader)
            if "No matching keys" in str(error):
                raise CasejobsError(
                    f"{source.name}: the identity does not open it (encrypted to another key)"
                ) from None
            raise CasejobsError(f"{source.name}: cannot be decrypted: damaged ({error})") from None
        except OSError as error:
            _raise_what_the_reader_met(reader)
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise CasejobsError(f"no room to decrypt {source.name} into {destination.parent}") from None
            raise CasejobsError(f"{source.name}: cannot be decrypted: damaged or cut short") from None


def file_digest(path: Path, check: Callable[[], None] = lambda: None) -> Written:
    """Read a file once from disk; return its size and sha256."""
    digest, size = hashlib.sha256(), 0
    from lib.archive import CHUNK

    with path.open("rb") as reader:
        while block := reader.read(CHUNK):
            digest.update(block)
            size += len(block)
            check()
    return Written(size, digest.hexdigest())


@contextlib.contextmanager
def clear_package(
    package: Path, identities: list[Any] | None, scratch: Path, check: Callable[[], None] = lambda: None
) -> Iterator[Path]:
    """Yield a clear package to read: the package itself, or for an encrypted one its decrypted copy in
    scratch (`.casejobs-decrypted-<pid>.zip`, 0600), removed on the way out whatever happens.

    Raise CasejobsError for an encrypted package without identities, or one they cannot open.
    """
    if not is_encrypted(package):
        yield package
        return
    if not identities:
        raise CasejobsError(f"{package.name} is encrypted: give the identity that opens it (--identity FILE)")
    from lib.archive import free_space_problem

    space = free_space_problem(scratch, package.stat().st_size)
    if space:
        raise CasejobsError(f"{package.name} cannot be decrypted: it {space}")
    decrypted = scratch / f".casejobs-decrypted-{os.getpid()}.zip"
    try:
        decrypt_file(package, decrypted, identities, check)
        yield decrypted
    finally:
        decrypted.unlink(missing_ok=True)
