"""crontab.ist: which job runs when, in IST, and when each runs next.

A line is five cron fields and a script name from bin/; the job's ledger
name is the script name in camelCase (daily-sync -> dailySync). Next-run
times come from cronsim evaluated on India's wall clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cronsim import CronSim, CronSimError

from lib.clock import IST
from lib.errors import ConfigError
from lib.settings import PROJECT_ROOT

CRONTAB_PATH = PROJECT_ROOT / "crontab.ist"


def job_name_for_script(script: str) -> str:
    """Given a script name such as daily-sync, return its job name, dailySync."""
    first, *rest = script.split("-")
    return first + "".join(word.capitalize() for word in rest)


@dataclass(frozen=True)
class Entry:
    """One scheduled job: its cron expression (IST), script and ledger name."""

    expression: str
    script: str

    @property
    def job(self) -> str:
        return job_name_for_script(self.script)

    @property
    def script_path(self) -> Path:
        """The absolute path of the job's bin/ script."""
        return PROJECT_ROOT / "bin" / self.script

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


def read_schedule(path: Path = CRONTAB_PATH) -> list[Entry]:
    """Return crontab.ist's entries in file order; raise ConfigError on a line it cannot read."""
    entries = []
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
        entries.append(Entry(expression, fields[5]))
    return entries


def find_entry(job: str, path: Path = CRONTAB_PATH) -> Entry | None:
    """Given a job name (dailySync) or script name (daily-sync), return its entry, if scheduled."""
    name = job_name_for_script(job) if "-" in job else job
    return next((entry for entry in read_schedule(path) if entry.job == name), None)
