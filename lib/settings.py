"""Settings: command-line options, then CASEJOBS_* environment, then the config file, then defaults.

Every setting is declared once, with its allowed range (the shared ones
here in CORE_SETTINGS, each job's own beside its JobSpec); its
environment variable is CASEJOBS_<SECTION>_<NAME> (the core section has no
section part, so CASEJOBS_HOME, CASEJOBS_DB), and in the TOML config file it
is `name` in the table `[section]` (core settings at the top level). The
README's settings table is checked against this list by a test.

Every value is checked when the settings are loaded: numbers are finite and
in range, URLs have a scheme and a host and never send a secret in clear,
secrets are printable ASCII. A bad value is kept as an error against its
setting, and a command asks for the sections it uses (`check()`): one job's
bad setting never stops another job.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import os
import re
import sys
import tomllib
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.clock import now_utc
from lib.errors import ConfigError
from lib.home import read_small_file
from lib.platforms import default_home

PROJECT_ROOT = Path(__file__).resolve().parent.parent
IS_CLONE = (PROJECT_ROOT / "bin" / "_python").exists()  # run from the project folder, not an installed copy
SHARED_DATA = Path(sys.prefix) / "share" / "casejobs"  # where an installed copy keeps crontab.ist and the lock


def resource(name: str) -> Path:
    """Return a project file read at run time (crontab.ist, requirements.lock): beside the code in a clone,
    under <virtualenv>/share/casejobs in an installed copy (pyproject.toml's data-files)."""
    here = PROJECT_ROOT / name
    return here if here.exists() or IS_CLONE else SHARED_DATA / name


def launcher(command: str) -> Path:
    """Return the program that starts a casejobs command (run-job, jobctl): bin/<command> in a clone, the
    console script casejobs-<command> beside this Python in an installed copy."""
    if IS_CLONE:
        return PROJECT_ROOT / "bin" / command
    suffix = ".exe" if os.name == "nt" else ""
    return Path(sys.executable).parent / f"casejobs-{command}{suffix}"


CONFIG_FILE_NAME = "casejobs.toml"
SIMULATOR_URL = "sim://"


class Refused(ValueError):
    """A value refused with a reason of its own, said as it is ("file not found"), rather than the
    setting's allowed range."""


class Rule:
    """How to read one setting's text, and its allowed range in words (for errors and the README)."""

    def __init__(self, parse: Callable[[str], Any], allowed: str) -> None:
        self.parse = parse
        self.allowed = allowed

    def __call__(self, value: str) -> Any:
        try:
            return self.parse(value)
        except Refused as reason:
            raise ValueError(f"must be {self.allowed}: {reason}") from None
        except (ValueError, OverflowError, KeyError):
            raise ValueError(f"must be {self.allowed}") from None


def _text(value: str) -> str:
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        raise ValueError("control characters")
    return value


def _path(value: str) -> Path:
    return Path(_text(value)).expanduser()


def whole_number(low: int, high: int) -> Rule:
    """A whole number from low to high."""

    def parse(value: str) -> int:
        text = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):  # int() also takes 1_0 and other scripts' digits
            raise ValueError
        number = int(text)
        if not low <= number <= high:
            raise ValueError
        return number

    return Rule(parse, f"a whole number from {low} to {high}")


def decimal_number(low: float, high: float) -> Rule:
    """A finite decimal number from low to high (no NaN, no infinity)."""

    def parse(value: str) -> float:
        text = value.strip()
        if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", text):
            raise ValueError
        number = float(text)
        if not math.isfinite(number) or not low <= number <= high:
            raise ValueError
        return number

    return Rule(parse, f"a number from {low:g} to {high:g}")


def one_of(*choices: str) -> Rule:
    """One of the given words."""

    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError
        return value

    return Rule(parse, f"{', '.join(choices[:-1])} or {choices[-1]}")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _web_address(value: str, allow_simulator: bool = False) -> str:
    if allow_simulator and value == SIMULATOR_URL:
        return value
    parts = urllib.parse.urlsplit(_text(value))
    parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError  # a token or ping key would travel in clear
    return value


URL = Rule(_web_address, "an https:// URL with a host (http:// only to a loopback address such as 127.0.0.1)")
ECOURTS_URL = Rule(
    lambda value: _web_address(value, allow_simulator=True),
    "an https:// URL with a host (http:// only to a loopback address), or sim:// for the built-in simulator",
)
PRINTABLE_SECRET = Rule(
    lambda value: value if value and all(32 <= ord(character) < 127 for character in value) else _fail(),
    "printable ASCII",
)
HOST = Rule(lambda value: value if re.fullmatch(r"[A-Za-z0-9.:\[\]_-]+", value) else _fail(), "a host name or address")
MAIL_ADDRESS = Rule(
    lambda value: value if re.fullmatch(r"[^\s@<>()\[\],;:\"\\]+@[A-Za-z0-9.-]+", value) else _fail(),
    "an e-mail address such as casejobs@firm.example",
)
SWITCH = Rule(lambda value: {"0": False, "1": True, "false": False, "true": True}[value.strip().lower()], "0 or 1")
TEXT = Rule(_text, "text without control characters")
PATH = Rule(_path, "a path without control characters")
GROUP = Rule(lambda value: value if re.fullmatch(r"[A-Za-z0-9._-]+", value) else _fail(), "a group name")


def _fail() -> Any:
    raise ValueError


def _frozen_clock(value: str) -> str:
    now_utc(value)  # raises ConfigError naming CASEJOBS_NOW, with its range
    return value


@dataclass(frozen=True)
class Setting:
    """One setting: where it lives, its default (as text, None for none) and how to read it."""

    section: str
    name: str
    default: str | None
    parse: Callable[[str], Any]
    help: str
    secret: bool = False

    @property
    def key(self) -> str:
        """The setting's dotted name, e.g. core.home or ecourts.base_url."""
        return f"{self.section}.{self.name}"

    @property
    def environment_variable(self) -> str:
        """The one environment variable that sets it."""
        middle = "" if self.section == "core" else f"{self.section.upper()}_"
        return f"CASEJOBS_{middle}{self.name.upper()}"

    @property
    def allowed(self) -> str:
        """The allowed values in words, for the README."""
        return getattr(self.parse, "allowed", "")


SECRET_FILE_LIMIT = 64 * 1024  # a token, a password: never near this

# The settings every command shares; each job declares its own beside its JobSpec (jobs/__init__.py).
CORE_SETTINGS: tuple[Setting, ...] = (
    Setting("core", "home", None, PATH, "folder holding ledger/, lock/, backups/, log/ (default: var/ in the project)"),
    Setting("core", "db", None, PATH, "the SQLite database (default: $CASEJOBS_HOME/casejobs.db)"),
    Setting("core", "config", None, PATH, "the TOML config file (default: $CASEJOBS_HOME/casejobs.toml, if present)"),
    Setting(
        "core",
        "app_mode",
        "desktop",
        TEXT,
        "jobs run only when this is `desktop`; the application's own APP_MODE is read when unset",
    ),
    Setting(
        "core",
        "now",
        None,
        Rule(_frozen_clock, "an ISO-8601 time from 2000 to 2099"),
        "freezes the clock at this ISO-8601 instant (replays and tests)",
    ),
    Setting(
        "core",
        "log_format",
        "auto",
        one_of("auto", "json", "console"),
        "auto (console on a terminal, JSON otherwise), json or console",
    ),
    Setting(
        "core",
        "max_runtime",
        None,
        whole_number(1, 86_400),
        "seconds a run may take before it stops (default: the job's own)",
    ),
    Setting(
        "core",
        "busy_timeout_ms",
        "10000",
        whole_number(0, 600_000),
        "how long to wait for another program's lock on the database",
    ),
    Setting(
        "core",
        "home_group",
        None,
        GROUP,
        "a group (a monitoring account's, say) that may read the ledger and logs: folders 2750, files 0640",
    ),
    Setting(
        "core",
        "debug_item_delay_ms",
        "0",
        whole_number(0, 60_000),
        "testing aid: pause this long at every item boundary",
    ),
    Setting("smtp", "host", None, HOST, "SMTP server; unset means in-app notifications only"),
    Setting("smtp", "port", "587", whole_number(1, 65535), "SMTP port"),
    Setting("smtp", "security", "starttls", one_of("starttls", "tls", "none"), "starttls, tls (implicit) or none"),
    Setting(
        "smtp",
        "allow_plaintext",
        "0",
        SWITCH,
        "1 allows security `none` to a server that is not on this machine (the password and mail travel in clear)",
    ),
    Setting("smtp", "user", None, PRINTABLE_SECRET, "SMTP login, if the server asks for one"),
    Setting("smtp", "password", None, PRINTABLE_SECRET, "SMTP password", secret=True),
    Setting("smtp", "password_file", None, PATH, "file holding the SMTP password, readable only by its owner"),
    Setting("smtp", "from_address", "casejobs@localhost", MAIL_ADDRESS, "the From: address of our mail"),
    Setting("smtp", "timeout", "20", whole_number(1, 300), "seconds to wait for the SMTP server"),
    Setting("monitor", "timeout", "5", whole_number(1, 60), "seconds a ping may take"),
    Setting("monitor", "body_lines", "50", whole_number(0, 1000), "last log lines sent with the finish ping"),
    Setting(
        "ops",
        "catch_up_grace_minutes",
        "10",
        whole_number(0, 1440),
        "a slot counts as missed this long after its time",
    ),
)

_DECLARED: dict[str, Setting] = {setting.key: setting for setting in CORE_SETTINGS}


def declare(settings: tuple[Setting, ...]) -> None:
    """Add settings a job declares (the registry calls this); a key declared twice must be the same setting."""
    for setting in settings:
        known = _DECLARED.setdefault(setting.key, setting)
        if (known.section, known.name, known.default) != (setting.section, setting.name, setting.default):
            raise ValueError(f"the setting {setting.key} is declared twice, differently")


def all_settings() -> tuple[Setting, ...]:
    """Every setting known: the shared ones, then each registered job's, in the order declared."""
    return tuple(_DECLARED.values())


def declared(key: str) -> Setting:
    """Given a dotted key, return its Setting; raise KeyError if nothing declares it."""
    return _DECLARED[key]


class Settings:
    """The resolved settings of one process: settings.get("core.home") and friends."""

    def __init__(
        self,
        values: dict[str, Any],
        sources: dict[str, str],
        errors: dict[str, str],
        in_config_file: frozenset[str] = frozenset(),
    ) -> None:
        self._values = values
        self.sources = sources
        self.errors = errors  # dotted key -> the one-line reason its value was refused
        # The keys the config file sets, whatever overrides them here: those reach cron too.
        self.in_config_file = in_config_file

    def check(self, scopes: Iterable[str]) -> None:
        """Raise ConfigError for the first refused setting within scopes (section names or dotted keys)."""
        for key, message in self.errors.items():
            if any(key == scope or key.startswith(f"{scope}.") for scope in scopes):
                raise ConfigError(message)

    def get(self, key: str) -> Any:
        """Given a dotted key, return its value (None when unset and without default).

        Raise ConfigError if its value was refused.
        """
        if key in self.errors:
            raise ConfigError(self.errors[key])
        return self._values[key]

    @property
    def home(self) -> Path:
        return self._values["core.home"]

    @property
    def database_path(self) -> Path:
        return self._values["core.db"]

    def now(self) -> dt.datetime:
        """Return the current instant, frozen when CASEJOBS_NOW is set."""
        return now_utc(self.get("core.now"))

    def secret(self, key: str) -> str | None:
        """Given a secret setting's key (e.g. smtp.password), return its value.

        The value comes from the setting itself or from `<key>_file`, which
        must be readable only by its owner and hold printable ASCII. Raise
        ConfigError naming the setting if the file is missing, unreadable,
        open to others or holds anything else.
        """
        if self.get(key):
            return str(self._values[key])
        if f"{key}_file" not in _DECLARED:
            return None
        path = self.get(f"{key}_file")
        if path is None:
            return None
        variable = declared(f"{key}_file").environment_variable
        try:
            mode = path.stat().st_mode
            if mode & 0o077 and os.name == "posix":
                raise ConfigError(f"{variable}: {path} is readable by others; make it private: chmod 600 {path}")
            data = read_small_file(path, SECRET_FILE_LIMIT).strip()
        except OSError as error:
            raise ConfigError(f"{variable}: {path} cannot be read: {error.strerror}") from None
        if not data:
            raise ConfigError(f"{variable}: {path} is empty")
        if not all(32 <= byte < 127 for byte in data):
            raise ConfigError(f"{variable}: {path} must hold printable ASCII only")
        self._values[key] = data.decode("ascii")  # so that secret_values() scrubs it everywhere too
        return self._values[key]

    def load_secrets(self, scopes: Iterable[str]) -> None:
        """Read every secret within scopes that has a file now, so that a bad file fails early (exit 78)."""
        scopes = tuple(scopes)
        for setting in all_settings():
            if setting.secret and any(setting.key == scope or setting.section == scope for scope in scopes):
                self.secret(setting.key)

    def secret_values(self) -> list[str]:
        """Return every secret's value, so that the scrubber can blank them anywhere."""
        return [
            str(self._values[setting.key])
            for setting in all_settings()
            if setting.secret and setting.key not in self.errors and self._values.get(setting.key)
        ]


def _read_config_file(path: Path, explicit: bool) -> dict[str, Any]:
    """Given the config file's path, return its tables flattened to dotted keys.

    A missing file is fine unless it was named explicitly; a broken one is not.
    """
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} (CASEJOBS_CONFIG) does not exist")
        return {}
    try:
        text = read_small_file(path).decode("utf-8")
        document = tomllib.loads(text)
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path} is not UTF-8 (a bad byte at offset {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    flattened: dict[str, Any] = {}
    for name, value in document.items():
        if isinstance(value, dict):
            for inner_name, inner_value in value.items():
                flattened[f"{name}.{inner_name}"] = inner_value
        else:
            flattened[f"core.{name}"] = value
    unknown = sorted(key for key in flattened if key not in _DECLARED)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]}")
    return flattened


def _parse(setting: Setting, raw: Any, origin: str) -> Any:
    """Return the setting's value; raise ConfigError naming it and its allowed range otherwise."""
    if isinstance(raw, bool):
        raw = int(raw)
    try:
        return setting.parse(str(raw))
    except ValueError as error:
        # A ping URL holds its key, and a private key pasted where a public one belongs is still private:
        # never echo either.
        shown = "" if setting.secret or "AGE-SECRET-KEY-" in str(raw).upper() else f"={raw!r}"
        raise ConfigError(f"bad setting {origin}{shown}: {error}") from None


def home_of(options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Return CASEJOBS_HOME as the settings would resolve it, without reading anything else.

    Used to record a configuration error in the ledger when the rest of the
    settings cannot be read. Never raises.
    """
    environ = os.environ if environ is None else environ
    given = (options or {}).get("core.home") or environ.get("CASEJOBS_HOME") or None
    home = Path(str(given)).expanduser() if given else Path(default_home(PROJECT_ROOT, environ=environ))
    return home if home.is_absolute() else home.absolute()


def _check_combinations(values: dict[str, Any], errors: dict[str, str]) -> None:
    """Refuse settings that are each fine but together would send a secret, or client data, in clear."""
    if (
        values.get("backup.offsite_dir")
        and not values.get("backup.encrypt_to")
        and not values.get("backup.offsite_plaintext")
    ):
        errors.setdefault(
            "backup.offsite_dir",
            "CASEJOBS_BACKUP_OFFSITE_DIR is set but CASEJOBS_BACKUP_ENCRYPT_TO is not: every client's data would "
            "leave this machine in clear; set CASEJOBS_BACKUP_ENCRYPT_TO to an age recipient (README: Backups that "
            "survive the office), or CASEJOBS_BACKUP_OFFSITE_PLAINTEXT=1 on purpose",
        )
    host = values.get("smtp.host")
    if (
        host
        and values.get("smtp.security") == "none"
        and not values.get("smtp.allow_plaintext")
        and not _is_loopback(host.strip("[]"))
    ):
        errors.setdefault(
            "smtp.security",
            f"CASEJOBS_SMTP_SECURITY=none sends the password and mail in clear to {host}: use starttls or tls, "
            "or set CASEJOBS_SMTP_ALLOW_PLAINTEXT=1 on purpose (none is always allowed to a relay on this machine)",
        )


COMMAND_SCOPES = ("core", "ops")  # what jobstats and jobctl use; a job adds its own sections


def load_settings(
    options: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    scopes: Iterable[str] = COMMAND_SCOPES,
) -> Settings:
    """Given command-line values (by dotted key, None meaning not given) and the
    environment, return the resolved Settings.

    Raise ConfigError for a config file that cannot be read, or a refused
    value within scopes (section names or dotted keys); a refused value
    elsewhere is kept as an error against its setting (see Settings.check),
    so that it stops only the commands that use it.
    """
    options = {key: value for key, value in (options or {}).items() if value is not None}
    environ = os.environ if environ is None else environ

    def from_options_or_environment(setting: Setting) -> tuple[Any, str] | None:
        if setting.key in options:
            return options[setting.key], f"--{setting.name.replace('_', '-')}"
        if environ.get(setting.environment_variable, "") != "":
            return environ[setting.environment_variable], setting.environment_variable
        return None

    home = home_of(options, environ)
    config_given = from_options_or_environment(declared("core.config"))
    config_path = Path(str(config_given[0])).expanduser() if config_given else home / CONFIG_FILE_NAME
    file_values = _read_config_file(config_path, explicit=config_given is not None)
    # The file is found through these two, so it cannot change them: the same value is harmless.
    for key, actual in (("core.home", home), ("core.config", config_path)):
        if key in file_values:
            written = Path(str(file_values.pop(key))).expanduser()
            if written.absolute() != actual.absolute():
                variable = declared(key).environment_variable
                raise ConfigError(
                    f"config file {config_path}: {key.split('.')[1]} = {written} differs from {actual}, where the "
                    f"file was found; the file cannot move it: set {variable} instead"
                )

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    errors: dict[str, str] = {}
    for setting in all_settings():
        given = from_options_or_environment(setting)
        if given is None and setting.key == "core.app_mode" and environ.get("APP_MODE"):
            given = (environ["APP_MODE"], "APP_MODE")
        if given is None and setting.key in file_values:
            given = (file_values[setting.key], f"{config_path}:{setting.key}")
        if given is not None:
            sources[setting.key] = given[1]
            try:
                values[setting.key] = _parse(setting, given[0], given[1])
            except ConfigError as error:
                values[setting.key] = None
                errors[setting.key] = str(error)
        else:
            values[setting.key] = None if setting.default is None else setting.parse(setting.default)
            sources[setting.key] = "default"
    _check_combinations(values, errors)
    values["core.home"] = home
    values["core.config"] = config_path
    if values["core.db"] is None:
        values["core.db"] = home / "casejobs.db"
    elif not values["core.db"].is_absolute():
        values["core.db"] = values["core.db"].absolute()
    settings = Settings(values, sources, errors, frozenset(file_values))
    settings.check(scopes)
    return settings
