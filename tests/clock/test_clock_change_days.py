"""Clock-change days with a real cron daemon: every IST slot of every job runs exactly once, at most 25 minutes
late.

For each host zone, the block `jobctl install --dry-run --host-tz ZONE --cron-flavor debian` prints is given to
Debian's cron daemon, running in its own mount namespace on a clock faked by libfaketime: started a while
before the zone's 2027 spring or autumn change and running 120 times fast, all days at once. The daemon's
commands only record the simulated time and their line. The recorded starts are then replayed, in order,
through the real jobs (`bin/run-job`, `bin/jobctl catch-up`) with CASEJOBS_NOW set to each start's time, on a
small database of their own; the jobs' ledgers then say which IST slot ran when.

A control day (London, a summer day, three windows that hold every line of the block) checks the harness
itself: every line fires at its own time. The table of results is the README's ("Clock-change days").
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from jobs import REGISTRY
from lib.clock import IST
from lib.db import connect
from lib.history import Run, runs_since
from lib.migration import migrate_all
from lib.schedule import Entry
from tests.builders import Dataset
from tests.clock.daemon import FakedCron, Fire, debian_cron_version, missing_tools
from tests.conftest import BIN, PROJECT, cron_environment

SPEED = 120  # simulated seconds per real second: a minute of cron's time in half a real second
LATEST = dt.timedelta(minutes=25)  # the most a slot may run late (the catch-up's grace 10 + its period 15)
SETTLED = dt.timedelta(minutes=30)  # slots this close to a window's end are not judged: catch-up had no time
README = PROJECT / "README.md"
TABLE_BEGIN, TABLE_END = "<!-- clock-change-table: begin -->", "<!-- clock-change-table: end -->"


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Window:
    """A stretch of simulated time one daemon runs through (UTC)."""

    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Day:
    """One day to drive: its zone, its date (local), and the windows around what matters on it."""

    zone: str
    date: str
    windows: tuple[Window, ...]
    control: bool = False

    @property
    def name(self) -> str:
        return f"{self.zone} {self.date}{' (control)' if self.control else ''}"


def window(start: str, end: str) -> tuple[Window, ...]:
    return (Window(utc(start), utc(end)),)


# Each window opens an hour or so before the change and closes 40 minutes after the last line near it.
# Europe changes at 01:00 UTC, the very moment of dailySync's 06:30 IST; New York at 06:00/07:00 UTC and
# Sydney at 16:00 UTC, when no daily job is due (Sydney's nightlyBackup lines follow 1 to 3 hours later).
DAYS = (
    Day("Europe/London", "2027-03-28", window("2027-03-27T23:50", "2027-03-28T02:40")),
    Day("Europe/London", "2027-10-31", window("2027-10-30T23:50", "2027-10-31T02:40")),
    Day("Europe/Berlin", "2027-03-28", window("2027-03-27T23:50", "2027-03-28T02:40")),
    Day("Europe/Berlin", "2027-10-31", window("2027-10-30T23:50", "2027-10-31T02:40")),
    Day("America/New_York", "2027-03-14", window("2027-03-14T05:50", "2027-03-14T08:40")),
    Day("America/New_York", "2027-11-07", window("2027-11-07T04:50", "2027-11-07T07:40")),
    Day("Australia/Sydney", "2027-04-04", window("2027-04-03T14:50", "2027-04-03T19:40")),
    Day("Australia/Sydney", "2027-10-03", window("2027-10-02T14:50", "2027-10-02T18:40")),
    # The control: no change that day; its windows hold both lines of each daily job, and both of each
    # weekly one (backupDrill on the Saturday evening, weeklyReport early on the Monday, London time).
    Day(
        "Europe/London",
        "2027-07-15",
        (
            Window(utc("2027-07-14T23:50"), utc("2027-07-15T01:40")),
            Window(utc("2027-07-15T11:20"), utc("2027-07-15T13:10")),
            Window(utc("2027-07-15T16:50"), utc("2027-07-15T18:40")),
            Window(utc("2027-07-17T20:20"), utc("2027-07-17T22:10")),
            Window(utc("2027-07-19T01:20"), utc("2027-07-19T03:10")),
        ),
        control=True,
    ),
)


@dataclass
class Driven:
    """What one window of one day gave: the daemon's starts, the block's schedules, and the runs replayed."""

    day: Day
    window: Window
    block: str
    schedules: dict[int, str] = field(default_factory=dict)
    fires: list[Fire] = field(default_factory=list)
    runs: dict[str, list[Run]] = field(default_factory=dict)
    home: Path | None = None


def block_for(zone: str, home: Path, moment: dt.datetime) -> str:
    """Return the block `jobctl install --dry-run` prints for a Debian cron keeping time in zone."""
    result = subprocess.run(
        [str(BIN / "jobctl"), "install", "--dry-run", "--host-tz", zone, "--cron-flavor", "debian"],
        env=cron_environment(home, CASEJOBS_NOW=moment.isoformat()),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def make_home(home: Path) -> None:
    """A home with a small database of its own and eCourts as the built-in simulator."""
    home.mkdir(parents=True)
    database = connect(home / "casejobs.db", create=True)
    migrate_all(database)
    database.close()
    connection = sqlite3.connect(home / "casejobs.db")
    rows = Dataset(connection)
    lawyer = rows.user()
    case = rows.case(lawyer, cnr="DLHC010000012027")
    rows.task(case, lawyer, due_date="2027-01-10")
    connection.close()
    (home / "casejobs.toml").write_text('[ecourts]\nbase_url = "sim://"\ntoken = "clock-test-token"\n')
    (home / "casejobs.toml").chmod(0o600)


def run_at(home: Path, moment: dt.datetime, *command: str) -> None:
    """Run a bin/ command as cron would, with the clock set to moment."""
    subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        env=cron_environment(home, CASEJOBS_NOW=moment.isoformat()),
        cwd="/",
        capture_output=True,
        timeout=120,
        check=False,
    )


def replay(driven: Driven, home: Path) -> None:
    """Run each job once at its last slot before the window (a day that went well so far), then every
    recorded start in order, through the real jobs; keep the runs each job's ledger then holds."""
    make_home(home)
    start = driven.window.start
    # backupDrill's seed needs a package made before its slot (a week back, at most): one manual backup
    # the day before the earliest seed.
    earliest = min(entry.latest_slot(start) for entry in REGISTRY.entries())
    run_at(home, earliest - dt.timedelta(days=1), "run-job", "nightly-backup", "--trigger", "manual")
    for entry in REGISTRY.entries():
        run_at(home, entry.latest_slot(start), "run-job", entry.script, "--trigger", "cron")
    for fire in driven.fires:
        if fire.name == "catch-up":
            run_at(home, fire.at, "jobctl", "catch-up")
        else:
            run_at(home, fire.at, "run-job", fire.name, "--trigger", "cron")
    driven.runs = {entry.job: list(runs_since(home, entry.job, None)) for entry in REGISTRY.entries()}
    driven.home = home


@pytest.fixture(scope="module")
def driven_days(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Driven]]:
    """Drive every window of every day at once (each its own daemon), then replay each."""
    missing = missing_tools()
    assert not missing, f"the clock-change test needs: {', '.join(missing)} (see .ci/run)"
    folder = tmp_path_factory.mktemp("clock")
    work = [Driven(day, one, "") for day in DAYS for one in day.windows]
    daemons = []
    try:
        for number, driven in enumerate(work):
            driven.block = block_for(driven.day.zone, folder / f"home-{number}", driven.window.start)
            daemon = FakedCron(folder / f"daemon-{number}", driven.block, driven.day.zone, driven.window.start, SPEED)
            driven.schedules = daemon.schedules
            daemons.append(daemon)
        began = time.monotonic()
        for daemon in daemons:
            daemon.start()
        for driven, daemon in zip(work, daemons, strict=True):
            remaining = (driven.window.end - driven.window.start).total_seconds() / SPEED
            daemon.wait_until(driven.window.end, timeout=remaining * 3 + 60)
            daemon.stop()
            driven.fires = [fire for fire in daemon.fires() if fire.at <= driven.window.end]
        print(f"\nthe daemons ran {time.monotonic() - began:.0f} s")
    finally:
        for daemon in daemons:
            daemon.stop()
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda pair: replay(pair[1], folder / f"home-{pair[0]}"), enumerate(work)))
    print(f"the replays ran {time.monotonic() - began:.0f} s")
    by_day: dict[str, list[Driven]] = {}
    for driven in work:
        by_day.setdefault(driven.day.name, []).append(driven)
    return by_day


@dataclass(frozen=True)
class SlotResult:
    """One IST slot of one job inside a window: the runs that did its work."""

    job: str
    slot: dt.datetime
    runs: tuple[Run, ...]

    @property
    def lateness(self) -> dt.timedelta:
        return dt.datetime.fromisoformat(self.runs[0].started_at.replace("Z", "+00:00")) - self.slot


def started(run: Run) -> dt.datetime:
    return dt.datetime.fromisoformat(run.started_at.replace("Z", "+00:00"))


def slot_results(driven: Driven) -> list[SlotResult]:
    """Every IST slot of every job strictly after the window's start and settled before its end, with the runs
    that did its work (a run does the work of the latest slot at or before its start)."""
    results = []
    for entry in REGISTRY.entries():
        worked = [run for run in driven.runs[entry.job] if run.did_work]
        by_slot: dict[dt.datetime, list[Run]] = {}
        for run in worked:
            by_slot.setdefault(entry.latest_slot(started(run)), []).append(run)
        for slot in slots_within(entry, driven.window.start, driven.window.end - SETTLED):
            results.append(SlotResult(entry.job, slot, tuple(by_slot.get(slot, ()))))
    return results


def times_of(expression: str, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Return the times a cron expression matches after start up to end, on start's clock (its zone)."""
    return list(itertools.takewhile(lambda moment: moment <= end, CronSim(expression, start)))


def slots_within(entry: Entry, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    return times_of(entry.expression, start.astimezone(IST), end)


def minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


@pytest.mark.parametrize("day", DAYS, ids=[day.name for day in DAYS])
def test_every_slot_runs_exactly_once_and_at_most_25_minutes_late(
    driven_days: dict[str, list[Driven]], day: Day
) -> None:
    for driven in driven_days[day.name]:
        results = slot_results(driven)
        assert results, "no slot inside the window: the window is wrong"
        assert any(result.job == "userPendingRefresh" for result in results)
        for result in results:
            starts = [f"{started(run).astimezone(IST):%H:%M:%S} {run.trigger} {run.status}" for run in result.runs]
            assert len(result.runs) == 1, f"{result.job} {result.slot:%Y-%m-%d %H:%M} IST ran {len(starts)}: {starts}"
            assert dt.timedelta(0) <= result.lateness <= LATEST, f"{result.job} {result.slot} ran {starts}"
            assert result.runs[0].status in ("success", "partial"), starts
        # Every start the daemon made was replayed: one ledger run per job start, one catch-up per catch-up.
        job_fires = [fire for fire in driven.fires if fire.name != "catch-up"]
        cron_runs = [run for runs in driven.runs.values() for run in runs if run.trigger == "cron"]
        seeded = len(REGISTRY.entries())
        assert len(cron_runs) == len(job_fires) + seeded


def test_the_control_day_fires_every_line_at_its_own_time(driven_days: dict[str, list[Driven]]) -> None:
    control = next(day for day in DAYS if day.control)
    zone = ZoneInfo(control.zone)
    fired_lines = set()
    for driven in driven_days[control.name]:
        recorded_until = driven.fires[-1].at
        for number, schedule in driven.schedules.items():
            fires = [minute(fire.at) for fire in driven.fires if fire.line == number]
            if schedule == "@reboot":
                assert len(fires) == 1 and fires[0] - driven.window.start < dt.timedelta(minutes=2)
                continue
            # The line's own times inside the window, on the host's clock.
            expected = times_of(schedule, driven.window.start.astimezone(zone), minute(recorded_until))
            assert fires == [moment.astimezone(dt.UTC) for moment in expected], f"line {number} {schedule}"
            if fires:
                fired_lines.add(number)
        # Nothing was missed on a plain day, so catch-up never ran a job.
        assert not [run for runs in driven.runs.values() for run in runs if run.trigger == "catchup"]
    every_line = {
        number for number, schedule in driven_days[control.name][0].schedules.items() if schedule != "@reboot"
    }
    assert fired_lines == every_line, "the control windows must hold every line of the block"


def change_of(day: Day) -> str:
    """Describe the zone's clock change on the day, as its wall clock shows it: `02:00 BST → 01:00 GMT`."""
    zone = ZoneInfo(day.zone)
    moment = day.windows[0].start
    while moment < day.windows[-1].end:
        after = moment + dt.timedelta(minutes=1)
        if moment.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            before_local = after.astimezone(dt.timezone(moment.astimezone(zone).utcoffset() or dt.timedelta()))
            return f"{before_local:%H:%M} {moment.astimezone(zone):%Z} → {after.astimezone(zone):%H:%M %Z}"
        moment = after
    return "none (control)"


def describe(driven: list[Driven]) -> tuple[str, int]:
    """Return what a day's daily jobs did in its windows (IST), and its worst lateness in whole minutes."""
    notes, worst = [], dt.timedelta(0)
    for one in driven:
        results = slot_results(one)
        worst = max([worst, *(result.lateness for result in results)])
        for entry in REGISTRY.entries():
            if entry.job == "userPendingRefresh":
                continue
            starts = []
            for run in sorted(one.runs[entry.job], key=started):
                if not one.window.start < started(run) <= one.window.end:
                    continue
                when = f"{started(run).astimezone(IST):%H:%M}"
                if not run.did_work:
                    starts.append(f"{when} {run.status}")
                    continue
                slot = entry.latest_slot(started(run))
                late = int((started(run) - slot).total_seconds() // 60)
                by = " by catch-up" if run.trigger == "catchup" else ""
                starts.append(f"{when}{by} for its {slot:%H:%M} slot" + (f" ({late} min late)" if late else ""))
            if starts:
                notes.append(f"{entry.job}: {', '.join(starts)}")
    refresh = sum(1 for one in driven for result in slot_results(one) if result.job == "userPendingRefresh")
    notes.append(f"userPendingRefresh: {refresh} five-minute slots, each once")
    return "; ".join(notes), int(worst.total_seconds() // 60)


def table(driven_days: dict[str, list[Driven]]) -> str:
    cron = f"Debian cron {debian_cron_version()}"
    lines = ["| host zone | day | clock change | cron | what ran (IST) | worst lateness |", "|---|---|---|---|---|---|"]
    for day in DAYS:
        what, worst = describe(driven_days[day.name])
        lines.append(f"| {day.zone} | {day.date} | {change_of(day)} | {cron} | {what} | {worst} min |")
    return "\n".join(lines)


def test_the_readme_table_is_this_test_s_output(driven_days: dict[str, list[Driven]]) -> None:
    generated = table(driven_days)
    print(f"\n{generated}")  # `make test-clock` shows it (-s): the README's section, to paste when it changed
    text = README.read_text()
    match = re.search(re.escape(TABLE_BEGIN) + r"\n(.*?)\n" + re.escape(TABLE_END), text, re.DOTALL)
    assert match, f"README.md has no {TABLE_BEGIN} … {TABLE_END} section"
    assert match.group(1) == generated, f"README.md's clock-change table differs; this run gave:\n{generated}"
