"""The exceptions casejobs raises on purpose, and the exit codes they map to.

Exit codes (design.md): 0 success or skipped, 1 failed, 2 usage, 3 partial,
75 locked, 78 configuration, 124 time limit, 130/143 stopped by SIGINT/SIGTERM.
"""

from __future__ import annotations

EXIT_SUCCESS = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_LOCKED = 75
EXIT_CONFIG = 78
EXIT_TIMEOUT = 124
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class CasejobsError(Exception):
    """An error the user can act on; its message is one plain line."""

    exit_code = EXIT_FAILED


class ConfigError(CasejobsError):
    """A setting, file or environment value is wrong: fix it and run again."""

    exit_code = EXIT_CONFIG


class DatabaseBusy(CasejobsError):
    """The database stayed locked by another program for the whole busy timeout: a runtime failure."""

    def __init__(self, message: str = "the database is locked by another program") -> None:
        super().__init__(message)


class UsageError(CasejobsError):
    """A command was called with words it cannot take."""

    exit_code = EXIT_USAGE


class JobFailed(CasejobsError):
    """A job's work failed as a whole, after doing part of it: outcome holds what it did."""

    def __init__(self, message: str, outcome: object) -> None:
        super().__init__(message)
        self.outcome = outcome


class StopRequested(Exception):
    """Raised at an item boundary once a signal or the time limit asked to stop."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"stop requested: {reason}")
        self.reason = reason
