"""crontab.ist: which job runs when, in IST, and when each runs next.

A line is five cron fields and a job's script name; the job itself (its
ledger name, module, time limit) comes from the registry (jobs/__init__.py),
never from the name by hand. Next-run times come from cronsim evaluated on
India's wall clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cronsim import CronSim, CronSimError

from lib.clock import IST
from lib.errors import ConfigError
from lib.settings import launcher, resource

if TYPE_CHECKING:
    from lib.jobspec import JobSpec, Registry

CRONTAB_PATH = resource("crontab.ist")
LAUNCHER = launcher("run-job")  # starts any registered job: bin/run-job daily-sync


@dataclass(frozen=True)
class Line:
    """One schedule line of crontab.ist: its cron expression (IST) and its job's script name."""

    expression: str
    script: str
    number: int


@dataclass(frozen=True)
class Entry:
    """One scheduled job: its cron expression (IST) and its JobSpec."""

    expression: str
    spec: JobSpec

    @property
    def job(self) -> str:
        return self.spec.name

    @property
    def script(self) -> str:
        return self.spec.script

    @property
    def command(self) -> list[str]:
        """The command that starts the job: the launcher and the job's script name."""
        return [str(LAUNCHER), self.spec.script]

    def next_run(self, after: dt.datetime) -> dt.datetime:
        """Given an aware instant, return the next scheduled start after it (aware, IST)."""
        return next(CronSim(self.expression, after.astimezone(IST).replace(microsecond=0)))

    def latest_slot(self, moment: dt.datetime) -> dt.datetime:
        """Given an aware instant, return the latest scheduled start at or before it (aware, IST)."""
        just_after = moment.astimezone(IST).replace(microsecond=0) + dt.timedelta(seconds=1)
        return next(CronSim(self.expression, just_after, reverse=True))

    def slots_between(self, start: dt.datetime, end: dt.datetime, limit: int = 10_000) -> int:
        """Count the scheduled starts s with start < s <= end (at most limit)."""
        count = 0
        for slot in CronSim(self.expression, start.astimezone(IST).replace(microsecond=0)):
            if slot > end or count >= limit:
                break
            count += 1
        return count


def read_lines(path: Path = CRONTAB_PATH) -> list[Line]:
    """Return crontab.ist's schedule lines in file order; raise ConfigError on a line it cannot read."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#") or "=" in text.split()[0]:
            continue
        fields = text.split()
        if len(fields) != 6:
            raise ConfigError(f"{path}:{number}: expected five cron fields and a script name")
        expression = " ".join(fields[:5])
        try:
            CronSim(expression, dt.datetime(2026, 1, 1, tzinfo=IST))
        except CronSimError as error:
            raise ConfigError(f"{path}:{number}: {error}") from None
        lines.append(Line(expression, fields[5], number))
    return lines


def schedule_of(registry: Registry, path: Path = CRONTAB_PATH) -> list[Entry]:
    """Return the entries of crontab.ist, each joined to its job in the registry.

    Raise ConfigError for a line whose script no registered job has.
    """
    entries = []
    for line in read_lines(path):
        spec = registry.find(line.script)
        if spec is None or spec.script != line.script:
            raise ConfigError(f"{path}:{line.number}: no job has the script {line.script!r} (see jobs/__init__.py)")
        entries.append(Entry(line.expression, spec))
    return entries


def entry_for(spec: JobSpec, path: Path = CRONTAB_PATH) -> Entry | None:
    """Return the job's entry in crontab.ist, or None when it is not scheduled."""
    line = next((line for line in read_lines(path) if line.script == spec.script), None)
    return Entry(line.expression, spec) if line else None
