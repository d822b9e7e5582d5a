"""Every IST slot runs exactly once, whatever the host's zone and cron, daily and weekly jobs alike.

For each host zone and cron flavor, the block's entries are evaluated with
cronsim in the zone that cron would use (IST under CRON_TZ, the host's zone
otherwise) over weeks that hold the zone's daylight-saving changes:
  Europe/London     2026-03-29 01:00 GMT -> 02:00 BST, 2026-10-25 02:00 BST -> 01:00 GMT
  America/New_York  2026-03-08 02:00 EST -> 03:00 EDT, 2026-11-01 02:00 EDT -> 01:00 EST
  Australia/Sydney  2026-04-05 03:00 AEDT -> 02:00 AEST, 2026-10-04 02:00 AEST -> 03:00 AEDT
Each start is then put through the harness's rule (a start whose IST slot
already ran is skipped), and every IST slot must have exactly one run,
starting at the slot's own time. One exception, which no crontab line can
avoid: when daylight saving ends, an hour of local time happens twice and
cron starts a fixed-time line on the first pass only; a slot that falls on
the second pass runs from the other candidate line, an hour late.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from jobs import REGISTRY
from lib.clock import IST
from lib.crontab import FLAVORS_WITH_CRON_TZ, plan_block

ZONES = ("UTC", "Asia/Kolkata", "Europe/London", "America/New_York", "Australia/Sydney")
FLAVORS = ("cronie", "systemd-cron", "debian", "busybox", "bcron", "macos")
WINDOWS = [
    (dt.datetime(2026, 3, 4, tzinfo=dt.UTC), dt.datetime(2026, 4, 9, tzinfo=dt.UTC)),
    (dt.datetime(2026, 9, 30, tzinfo=dt.UTC), dt.datetime(2026, 11, 5, tzinfo=dt.UTC)),
]


def block_entries(flavor: str, zone: str) -> list[tuple[str, str]]:
    """Return (cron expression, script) of every job line the block would hold."""
    lines = plan_block(
        Path("/tmp/casejobs"), REGISTRY.entries(), flavor, zone, dt.datetime(2026, 6, 1, tzinfo=IST)
    ).lines
    entries = []
    for line in lines:
        if line.startswith(("#", "@", "CRON_TZ")):
            continue
        fields = line.split()
        launcher = next(number for number, field in enumerate(fields) if "/bin/" in field)
        if Path(fields[launcher]).name == "run-job":
            entries.append((" ".join(fields[:5]), fields[launcher + 1]))
    return entries


def firings(expression: str, zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    found = []
    for moment in CronSim(expression, start.astimezone(zone)):
        if moment > end:
            return found
        found.append(moment)
    return found


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("window", WINDOWS, ids=["march-april", "october-november"])
def test_every_ist_slot_runs_exactly_once(flavor: str, zone_name: str, window: tuple[dt.datetime, dt.datetime]) -> None:
    start, end = window
    cron_zone = IST if flavor in FLAVORS_WITH_CRON_TZ else ZoneInfo(zone_name)
    schedule = {entry.script: entry for entry in REGISTRY.entries()}
    for script, entry in schedule.items():
        if script == "user-pending-refresh":  # every 5 minutes: the two days around the zone's change suffice
            middle = offset_change(ZoneInfo(zone_name), start, end)
            span = (middle - dt.timedelta(days=1), middle + dt.timedelta(days=1))
        else:
            span = (start, end)
        starts = sorted(
            moment.astimezone(dt.UTC)
            for expression, name in block_entries(flavor, zone_name)
            if name == script
            for moment in firings(expression, cron_zone, span[0], span[1])
        )
        runs: dict[dt.datetime, dt.datetime] = {}
        for moment in starts:
            slot = entry.latest_slot(moment)
            if slot not in runs:  # the harness skips a cron start whose slot already ran
                runs[slot] = moment
        # Leave out the first period (a day; a week for a weekly job): a slot before the window has no run in it.
        weekly = entry.expression.split()[4] != "*"
        period = dt.timedelta(days=7 if weekly else 1)
        first = span[0] + period if script != "user-pending-refresh" else span[0] + dt.timedelta(hours=1)
        slot = entry.latest_slot(first)
        expected = []
        while slot <= span[1] - dt.timedelta(hours=12 if script != "user-pending-refresh" else 1):
            expected.append(slot)
            slot = entry.next_run(slot)
        for slot in expected:
            assert slot in runs, (script, slot.isoformat(), "never ran")
            late = runs[slot] - slot
            allowed = dt.timedelta(hours=1) if second_pass(slot, cron_zone) else dt.timedelta(0)
            assert late <= allowed, (script, slot.isoformat(), "ran at", runs[slot].astimezone(IST).isoformat())


def second_pass(moment: dt.datetime, zone: ZoneInfo) -> bool:
    """True if the instant falls on the second pass of a local hour that happens twice."""
    return moment.astimezone(zone).fold == 1


def offset_change(zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """Return the first hour of the window at which the zone's offset changes (the middle if none)."""
    moment = start
    while moment < end:
        if (moment + dt.timedelta(hours=1)).astimezone(zone).utcoffset() != moment.astimezone(zone).utcoffset():
            return moment
        moment += dt.timedelta(hours=1)
    return start + (end - start) / 2
