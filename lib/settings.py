"""Settings: command-line options, then CASEJOBS_* environment, then the config file, then defaults.

Every setting is declared once in SETTINGS; its environment variable is
CASEJOBS_<SECTION>_<NAME> (the core section has no section part, so
CASEJOBS_HOME, CASEJOBS_DB), and in the TOML config file it is `name` in the
table `[section]` (core settings at the top level). The README's settings
table is checked against this list by a test.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.clock import now_utc
from lib.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE_NAME = "casejobs.toml"


def _text(value: str) -> str:
    return value


def _path(value: str) -> Path:
    return Path(value).expanduser()


def _number(low: float, high: float | None = None, kind: type = int) -> Callable[[str], Any]:
    """Return a parser of a number from low to high (no upper bound when high is None)."""

    def parse(value: str) -> Any:
        number = kind(value)
        if number < low or (high is not None and number > high):
            raise ValueError(f"must be from {low} to {high}" if high is not None else f"must be at least {low}")
        return number

    return parse


def _one_of(*choices: str) -> Callable[[str], str]:
    """Return a parser that accepts only the given words."""

    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be {', '.join(choices[:-1])} or {choices[-1]}")
        return value

    return parse


_whole_number = _number(0)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url(value: str) -> str:
    """Accept an http(s) URL with a host; plain http only to a loopback host, so that nothing secret travels in clear."""
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError("must be an http(s):// URL with a host") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s):// URL with a host")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("must be https:// (http:// only to a loopback address such as 127.0.0.1)")
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


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "core", "home", None, _path, "folder holding ledger/, lock/, backups/, log/ (default: var/ in the project)"
    ),
    Setting("core", "db", None, _path, "the SQLite database (default: $CASEJOBS_HOME/casejobs.db)"),
    Setting("core", "config", None, _path, "the TOML config file (default: $CASEJOBS_HOME/casejobs.toml, if present)"),
    Setting(
        "core",
        "app_mode",
        "desktop",
        _text,
        "jobs run only when this is `desktop`; the application's own APP_MODE is read when unset",
    ),
    Setting("core", "now", None, _text, "freezes the clock at this ISO-8601 instant (replays and tests)"),
    Setting(
        "core",
        "log_format",
        "auto",
        _one_of("auto", "json", "console"),
        "auto (console on a terminal, JSON otherwise), json or console",
    ),
    Setting(
        "core",
        "max_runtime",
        None,
        _whole_number,
        "seconds a run may take before it stops at the next item (default: the job's own)",
    ),
    Setting(
        "core", "busy_timeout_ms", "10000", _whole_number, "how long a statement waits for the application's write lock"
    ),
    Setting("core", "debug_item_delay_ms", "0", _whole_number, "testing aid: pause this long at every item boundary"),
    Setting("smtp", "host", None, _text, "SMTP server; unset means in-app notifications only"),
    Setting("smtp", "port", "587", _number(1, 65535), "SMTP port"),
    Setting("smtp", "security", "starttls", _one_of("starttls", "tls", "none"), "starttls, tls (implicit) or none"),
    Setting("smtp", "user", None, _text, "SMTP login, if the server asks for one"),
    Setting("smtp", "password", None, _text, "SMTP password", secret=True),
    Setting("smtp", "password_file", None, _path, "file holding the SMTP password, readable only by its owner"),
    Setting("smtp", "from_address", "casejobs@localhost", _text, "the From: address of our mail"),
    Setting("smtp", "timeout", "20", _whole_number, "seconds to wait for the SMTP server"),
    Setting("backup", "retention_days", "30", _whole_number, "delete packages older than this many days"),
    Setting("backup", "keep_newest", "7", _whole_number, "never delete one of this many newest verified packages"),
    Setting("backup", "compression_level", "1", _number(0, 9), "zlib level of the package, 1 (fast) to 9"),
    Setting("ecourts", "base_url", None, _text, "the aggregator's base URL; sim:// is the built-in simulator"),
    Setting("ecourts", "token", None, _text, "the API token", secret=True),
    Setting("ecourts", "token_file", None, _path, "file holding the API token, readable only by its owner"),
    Setting("ecourts", "connect_timeout", "5", _whole_number, "seconds to wait for a connection"),
    Setting("ecourts", "read_timeout", "30", _whole_number, "seconds to wait for an answer"),
    Setting(
        "ecourts",
        "rate_per_minute",
        "60",
        _number(0.001, None, float),
        "requests a minute at most (eCourtsIndia publishes 100 a minute)",
    ),
    Setting("ecourts", "concurrency", "1", _number(1, 10), "requests in flight at once, 1 to 10"),
    Setting(
        "ecourts", "retries", "3", _whole_number, "retries of a request after a 429, 5xx, timeout or lost connection"
    ),
    Setting("ecourts", "backoff_ms", "1000", _whole_number, "first backoff before a retry; doubles each time"),
    Setting("ecourts", "breaker_threshold", "5", _whole_number, "cases failing upstream in a row that stop the run"),
    Setting("sync", "max_cases", "100", _whole_number, "cases fetched per run at most"),
    Setting(
        "sync", "min_hours", "20", _whole_number, "a case synced this recently is not fetched again (without --force)"
    ),
    Setting("monitor", "daily_sync_url", None, _url, "healthchecks-style ping URL of dailySync", secret=True),
    Setting("monitor", "sla_check_url", None, _url, "ping URL of slaCheck", secret=True),
    Setting("monitor", "nightly_backup_url", None, _url, "ping URL of nightlyBackup", secret=True),
    Setting("monitor", "user_pending_refresh_url", None, _url, "ping URL of userPendingRefresh", secret=True),
    Setting("monitor", "timeout", "5", _whole_number, "seconds a ping may take"),
    Setting("monitor", "body_lines", "50", _whole_number, "last log lines sent with the finish ping"),
    Setting("ops", "catch_up_grace_minutes", "10", _whole_number, "a slot counts as missed this long after its time"),
    Setting("sla", "warning_days", "3", _whole_number, "an item due today or within this many days is a warning"),
)

SETTINGS_BY_KEY = {setting.key: setting for setting in SETTINGS}


class Settings:
    """The resolved settings of one process: settings.get("core.home") and friends."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str]) -> None:
        self._values = values
        self.sources = sources

    def get(self, key: str) -> Any:
        """Given a dotted key, return its value (None when unset and without default)."""
        return self._values[key]

    @property
    def home(self) -> Path:
        return self._values["core.home"]

    @property
    def database_path(self) -> Path:
        return self._values["core.db"]

    def now(self) -> dt.datetime:
        """Return the current instant, frozen when CASEJOBS_NOW is set."""
        return now_utc(self._values["core.now"])

    def secret(self, key: str) -> str | None:
        """Given a secret setting's key (e.g. smtp.password), return its value.

        The value comes from the setting itself or from `<key>_file`, which
        must be readable only by its owner. Raise ConfigError naming the
        setting if the file is missing, unreadable or open to others.
        """
        if self._values.get(key):
            return str(self._values[key])
        path = self._values.get(f"{key}_file")
        if path is None:
            return None
        variable = SETTINGS_BY_KEY[f"{key}_file"].environment_variable
        try:
            mode = path.stat().st_mode
            if mode & 0o077 and os.name == "posix":
                raise ConfigError(f"{variable}: {path} is readable by others; make it private: chmod 600 {path}")
            value = path.read_text().strip()
        except OSError as error:
            raise ConfigError(f"{variable}: {path} cannot be read: {error.strerror}") from None
        if not value:
            raise ConfigError(f"{variable}: {path} is empty")
        self._values[key] = value  # so that secret_values() scrubs it from the logs too
        return value

    def load_secrets(self) -> None:
        """Read every secret that has a file now, so that a bad file fails early (exit 78)."""
        for setting in SETTINGS:
            if setting.secret:
                self.secret(setting.key)

    def secret_values(self) -> list[str]:
        """Return every secret's value, so that the log scrubber can blank them anywhere."""
        return [
            str(self._values[setting.key]) for setting in SETTINGS if setting.secret and self._values.get(setting.key)
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
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    flattened: dict[str, Any] = {}
    for name, value in document.items():
        if isinstance(value, dict):
            for inner_name, inner_value in value.items():
                flattened[f"{name}.{inner_name}"] = inner_value
        else:
            flattened[f"core.{name}"] = value
    unknown = sorted(key for key in flattened if key not in SETTINGS_BY_KEY)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]}")
    return flattened


def _parse(setting: Setting, raw: Any, origin: str) -> Any:
    try:
        return setting.parse(str(raw))
    except ValueError as error:
        shown = "" if setting.secret else f"={raw!r}"  # a ping URL holds its key: never echo a secret
        raise ConfigError(f"bad setting {origin}{shown}: {error}") from None


def home_of(options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Return CASEJOBS_HOME as the settings would resolve it, without reading anything else.

    Used to record a configuration error in the ledger when the rest of the
    settings cannot be read. Never raises.
    """
    environ = os.environ if environ is None else environ
    given = (options or {}).get("core.home") or environ.get("CASEJOBS_HOME") or None
    home = _path(str(given)) if given else PROJECT_ROOT / "var"
    return home if home.is_absolute() else home.absolute()


def load_settings(options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Given command-line values (by dotted key, None meaning not given) and the
    environment, return the resolved Settings; raise ConfigError naming the setting
    that is wrong.
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
    config_given = from_options_or_environment(SETTINGS_BY_KEY["core.config"])
    config_path = Path(str(config_given[0])).expanduser() if config_given else home / CONFIG_FILE_NAME
    file_values = _read_config_file(config_path, explicit=config_given is not None)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        given = from_options_or_environment(setting)
        if given is None and setting.key == "core.app_mode" and environ.get("APP_MODE"):
            given = (environ["APP_MODE"], "APP_MODE")
        if given is None and setting.key in file_values:
            given = (file_values[setting.key], f"{config_path}:{setting.key}")
        if given is not None:
            values[setting.key] = _parse(setting, given[0], given[1])
            sources[setting.key] = given[1]
        else:
            values[setting.key] = None if setting.default is None else setting.parse(setting.default)
            sources[setting.key] = "default"
    values["core.home"] = home
    values["core.config"] = config_path
    if values["core.db"] is None:
        values["core.db"] = values["core.home"] / "casejobs.db"
    elif not values["core.db"].is_absolute():
        values["core.db"] = values["core.db"].resolve()
    return Settings(values, sources)
