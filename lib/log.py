"""structlog set-up: JSON lines when not on a terminal, readable console output on one.

Every line carries the bound `job` and `run_id`. Secrets never reach a line:
keys that name a secret are blanked, and every known secret value (tokens,
passwords from the settings) is scrubbed from every string.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog

from lib import scrub

RECENT_LINES: deque[str] = deque(maxlen=200)  # the run's last log lines, for the monitoring ping's body
SECRET_KEYS = frozenset({"password", "password_hash", "api_token", "token", "phone", "authorization", "smtp_password"})
REDACTED = scrub.REDACTED


class SecretScrubber:
    """A structlog processor that removes secret keys and every spelling of a secret value from an event."""

    def __init__(self, secret_values: Iterable[str] = ()) -> None:
        scrub.remember(secret_values)

    def scrub_text(self, text: str) -> str:
        """Given any text, return it with every known secret value blanked."""
        return scrub.scrub(text)

    def __call__(self, logger: Any, method_name: str, event: dict[str, Any]) -> dict[str, Any]:
        for key, value in list(event.items()):
            if key.lower() in SECRET_KEYS:
                event[key] = REDACTED
            else:
                event[key] = scrub.scrub_data(value)
        return event


LOG_FILE_BYTES = 10 << 20  # a log file is rotated at this size...
LOG_FILE_KEEP = 5  # ...keeping this many older ones (<job>.log.1 ... .5): Windows has no logrotate


class RotatingLogFile:
    """A log file the job rotates itself, by size: what structlog writes to when no console watches.

    The rotation is the standard library's (logging.handlers.RotatingFileHandler);
    the files keep the home's modes (0600, or 0640 with CASEJOBS_HOME_GROUP).
    """

    def __init__(self, path: Path, max_bytes: int = LOG_FILE_BYTES, keep: int = LOG_FILE_KEEP) -> None:
        from lib.home import make_file

        class _Handler(logging.handlers.RotatingFileHandler):
            def _open(self) -> Any:
                stream = super()._open()
                make_file(Path(self.baseFilename))
                return stream

        self.handler = _Handler(path, maxBytes=max_bytes, backupCount=keep, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(message)s"))

    def write(self, text: str) -> None:
        message = text.rstrip("\n")
        if message:
            self.handler.emit(logging.makeLogRecord({"msg": message, "levelno": logging.INFO}))

    def flush(self) -> None:
        self.handler.flush()


def configure_logging(
    log_format: str = "auto", verbose: bool = False, secret_values: Iterable[str] = (), log_file: Path | None = None
) -> SecretScrubber:
    """Configure structlog for this process, writing to standard error (or to log_file, rotated, as JSON
    lines); return the scrubber.

    log_format: auto (console on a terminal, JSON otherwise), json or console.
    """
    use_console = log_file is None and (log_format == "console" or (log_format == "auto" and sys.stderr.isatty()))
    scrubber = SecretScrubber(secret_values)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        scrubber,
    ]
    if use_console:
        colors = sys.stderr.isatty() and not os.environ.get("NO_COLOR")  # https://no-color.org
        processors.append(_Remembered(structlog.dev.ConsoleRenderer(colors=colors)))
    else:
        processors += [
            structlog.processors.format_exc_info,
            _Remembered(structlog.processors.JSONRenderer(sort_keys=False)),
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if verbose else logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=RotatingLogFile(log_file) if log_file else sys.stderr),
        cache_logger_on_first_use=False,
    )
    return scrubber


class _Remembered:
    """Wraps the renderer: every rendered line is also kept in RECENT_LINES."""

    def __init__(self, renderer: Callable[..., str]) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, method_name: str, event: dict[str, Any]) -> str:
        line = self.renderer(logger, method_name, event)
        RECENT_LINES.append(line)
        return line


def recent_lines(limit: int) -> list[str]:
    """Return up to the last `limit` log lines of this process."""
    return list(RECENT_LINES)[-limit:] if limit else []


def bind_run(job: str, run_id: str) -> None:
    """Bind job and run_id to every line logged from here on in this process."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(job=job, run_id=run_id)


def get_logger() -> Any:
    """Return the process's structlog logger."""
    return structlog.get_logger("casejobs")
