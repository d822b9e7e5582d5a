"""What a job is, declared once: its JobSpec, and the Registry of them (jobs/__init__.py fills it).

A JobSpec carries the job's ledger name, its script (the name crontab.ist
and bin/ use), its module (jobs.<script with underscores>), its time limit,
its own settings (declared beside it) and the shared sections it reads, and
its monitoring setting. Everything else (the schedule's entries, the
exports, the pings, status, the settings) derives from it and from
crontab.ist. This module is light on purpose: the commands that only look
(jobstats, status) read the registry without loading any job's work.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lib.errors import ConfigError
from lib.settings import URL, Setting, declare

if TYPE_CHECKING:
    from lib.harness import RunContext
    from lib.schedule import Entry

MAX_BAD_ROWS = 50  # rows named in a run's details; the count covers them all


@dataclass
class Outcome:
    """What a job's work reports: items done, items failed, and its own figures.

    The run's context holds one from the start and the job adds to it as it
    goes, so that the figures are recorded however the run ends. For a dry
    run, `plan` is what the run would do, one line at a time (an iterator,
    so that memory stays flat): the command prints it, the work never does.
    """

    items: int = 0
    errors: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    plan: Iterator[str] | None = None
    problems: list[str] = field(default_factory=list)  # what could not be done, in words: a partial run's error

    def problem(self, reason: str) -> None:
        """Note a part of the work that could not be done: the run ends partial, with reason as its error."""
        self.errors += 1
        self.problems.append(reason)

    def add(self, figure: str, amount: int = 1) -> None:
        """Add amount to one of the run's figures in details (the one way figures are added up)."""
        self.details[figure] = self.details.get(figure, 0) + amount

    def bad_row(self, table: str, row_id: Any, reason: str) -> None:
        """Count one row that was skipped, and name it by table and id (never by its content)."""
        self.errors += 1
        self.add("bad_rows_total")
        named = self.details.setdefault("bad_rows", [])
        if len(named) < MAX_BAD_ROWS:
            named.append({"table": table, "id": row_id, "reason": reason})


def snake_case(name: str) -> str:
    """Given a job name such as dailySync, return daily_sync."""
    return "".join(f"_{letter.lower()}" if letter.isupper() else letter for letter in name)


@dataclass(frozen=True)
class JobSpec:
    """A job, as everything else in casejobs sees it."""

    name: str  # its name in the ledger: dailySync
    script: str  # its name in crontab.ist and bin/: daily-sync
    summary: str
    time_limit: int  # seconds a run may take before it stops itself (CASEJOBS_MAX_RUNTIME overrides it)
    settings: tuple[Setting, ...] = ()  # its own settings, declared beside it
    shared_sections: tuple[str, ...] = ()  # sections it reads that another part owns (smtp)
    failure_severity: str = "HIGH"  # of the audit row of a failed run
    good_run_within_days: int | None = None  # monitoring warns when its newest success is older than this
    # A line of its own in status, jobstats and --check: "last restore drill: ok, 3 days ago".
    headline: str | None = None
    # The figures of its report's work-done chart: (label, key in a run's details, key within it or None).
    work_figures: tuple[tuple[str, str, str | None], ...] = ()

    @property
    def module(self) -> str:
        """The module holding its work and command: jobs.daily_sync."""
        return f"jobs.{self.script.replace('-', '_')}"

    @property
    def monitor_key(self) -> str:
        """The dotted key of its monitoring ping URL: monitor.daily_sync_url."""
        return f"monitor.{snake_case(self.name)}_url"

    @property
    def monitor_setting(self) -> Setting:
        """Its healthchecks-style ping URL setting, CASEJOBS_MONITOR_<NAME>_URL."""
        section, name = self.monitor_key.split(".", 1)
        return Setting(section, name, None, URL, f"healthchecks-style ping URL of {self.name}", secret=True)

    @property
    def setting_scopes(self) -> tuple[str, ...]:
        """Every settings section and key this job reads: what is checked before it runs."""
        own = tuple(dict.fromkeys(setting.section for setting in self.settings))
        return ("core", *own, *self.shared_sections, self.monitor_key, "monitor.timeout", "monitor.body_lines")

    def _member(self, name: str) -> Any:
        return getattr(importlib.import_module(self.module), name, None)

    def work(self, context: RunContext) -> Outcome | None:
        """Run the job's work (the module's `work` function, imported now)."""
        return self._member("work")(context)

    @property
    def check_settings(self) -> Callable[..., None] | None:
        """The module's own check of its settings, if it has one (raises ConfigError)."""
        return self._member("check_settings")


class Registry:
    """Every job casejobs knows, in order; declares their settings when made."""

    def __init__(self, specs: tuple[JobSpec, ...]) -> None:
        self.specs = specs
        for key in ("name", "script"):
            values = [getattr(spec, key) for spec in specs]
            duplicates = sorted({value for value in values if values.count(value) > 1})
            if duplicates:
                raise ConfigError(f"two jobs have the {key} {duplicates[0]}")
        for spec in specs:
            declare((*spec.settings, spec.monitor_setting))

    def __iter__(self) -> Iterator[JobSpec]:
        return iter(self.specs)

    def find(self, name: str) -> JobSpec | None:
        """Given a job name (dailySync) or script (daily-sync), return its spec, or None."""
        return next((spec for spec in self.specs if name in (spec.name, spec.script)), None)

    def job(self, name: str) -> JobSpec:
        """Return the spec of a job that must exist (a job module asking for its own)."""
        spec = self.find(name)
        if spec is None:
            raise KeyError(name)
        return spec

    def entries(self) -> list[Entry]:
        """Return crontab.ist's entries, each with its job's spec, in file order."""
        from lib.schedule import schedule_of

        return schedule_of(self)
