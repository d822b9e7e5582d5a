"""Monitoring pings, compatible with healthchecks.io: start, success, or failure with the exit status.

A ping that fails, times out or raises for any reason is logged as a
warning and never changes a job's outcome (the job's own result always
wins). Ping URLs are checked with the other settings (lib/settings.py), so a
malformed one is a configuration error before the run starts. Dry runs,
skipped and locked runs do not ping.
"""

from __future__ import annotations

import uuid
from typing import Any

from lib.log import recent_lines
from lib.settings import Settings

BODY_LIMIT = 10_000  # bytes of log lines sent with the finish ping (healthchecks keeps 10 KB)
STOPPING_TIMEOUT = 1.0  # seconds a ping may take when the run was stopped: a stop ends the process soon


class Monitor:
    """The pings of one run: start() when it begins, finish(exit_code) when it ends."""

    def __init__(self, settings: Settings, url_key: str, run_id: str, log: Any, dry_run: bool = False) -> None:
        """url_key is the job's ping URL setting (JobSpec.monitor_key)."""
        self.url = None if dry_run else (settings.get(url_key) or "").rstrip("/") or None
        self.timeout = settings.get("monitor.timeout")
        self.body_lines = settings.get("monitor.body_lines")
        self.run_id = str(uuid.UUID(hex=run_id)) if len(run_id) == 32 else run_id
        self.log = log

    def start(self) -> None:
        self._ping("/start", b"")

    def finish(self, exit_code: int, stopping: bool = False) -> None:
        body = "\n".join(recent_lines(self.body_lines)).encode()[-BODY_LIMIT:]
        timeout = min(self.timeout, STOPPING_TIMEOUT) if stopping else self.timeout
        self._ping("" if exit_code == 0 else f"/{exit_code}", body, timeout)

    def _ping(self, suffix: str, body: bytes, timeout: float | None = None) -> None:
        if not self.url:
            return
        try:
            import httpx  # here: most runs ping nothing, and every run would pay for the import

            response = httpx.post(
                f"{self.url}{suffix}", params={"rid": self.run_id}, content=body, timeout=timeout or self.timeout
            )
            response.raise_for_status()
        except Exception as error:  # whatever goes wrong with a ping, the run's own outcome stands
            self.log.warning("monitoring ping failed", ping=suffix or "/success", error=type(error).__name__)
