"""The managed crontab block (put in, replaced, taken out, foreign lines untouched) and the translation of IST
times for a cron that ignores CRON_TZ."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from jobs import REGISTRY
from lib.clock import IST
from lib.crontab import (
    BEGIN,
    CATCH_UP_EXPRESSION,
    END,
    block_environment,
    cron_lines_for,
    has_daylight_saving,
    installed_block,
    local_times,
    plan_block,
    split_block,
    with_block,
    without_block,
)
from lib.errors import CasejobsError
from lib.schedule import Entry
from lib.settings import declared

FOREIGN_BEFORE = "MAILTO=ops@firm.example\n# nightly report  \n\n0 3 * * * /usr/bin/report --pct 50\\% >/dev/null\t\n"
FOREIGN_AFTER = "@reboot /usr/local/bin/vpn-up\n"
BLOCK = [f"{BEGIN} (written by test)", "CRON_TZ=Asia/Kolkata", "30 6 * * * /x/bin/run-job daily-sync", END]
NEW_BLOCK = [f"{BEGIN} (written by test)", "0 1 * * * /x/bin/run-job daily-sync", END]


def entry(script: str, expression: str | None = None) -> Entry:
    """Return crontab.ist's entry of script, or one with another expression."""
    found = next(one for one in REGISTRY.entries() if one.script == script)
    return found if expression is None else Entry(expression, found.spec)


def test_a_crontab_without_our_block_gets_it_at_the_end_and_keeps_every_other_line() -> None:
    assert split_block(FOREIGN_BEFORE) == (FOREIGN_BEFORE.splitlines(), None, [])
    text = with_block(FOREIGN_BEFORE, BLOCK)
    assert text == FOREIGN_BEFORE + "\n".join(BLOCK) + "\n"
    assert installed_block(text) == BLOCK
    assert with_block(text, BLOCK) == text  # installing twice changes nothing


def test_a_new_block_replaces_the_old_one_where_it_stands() -> None:
    installed = FOREIGN_BEFORE + "\n".join(BLOCK) + "\n" + FOREIGN_AFTER
    replaced = with_block(installed, NEW_BLOCK)
    assert replaced == FOREIGN_BEFORE + "\n".join(NEW_BLOCK) + "\n" + FOREIGN_AFTER
    before, block, after = split_block(replaced)
    assert (before, block, after) == (FOREIGN_BEFORE.splitlines(), NEW_BLOCK, FOREIGN_AFTER.splitlines())


def test_taking_the_block_out_leaves_the_rest_byte_for_byte() -> None:
    installed = FOREIGN_BEFORE + "\n".join(BLOCK) + "\n" + FOREIGN_AFTER
    assert without_block(installed) == FOREIGN_BEFORE + FOREIGN_AFTER
    assert without_block("\n".join(BLOCK) + "\n") == ""
    untouched = "0 3 * * * /usr/bin/report"  # no block, no final newline: returned as it is
    assert without_block(untouched) == untouched
    assert installed_block(untouched) is None


def test_a_begin_without_its_end_is_refused_and_nothing_is_rewritten() -> None:
    broken = FOREIGN_BEFORE + f"{BEGIN}\n30 6 * * * /x/bin/run-job daily-sync\n"
    for change in (lambda text: with_block(text, BLOCK), without_block, installed_block):
        with pytest.raises(CasejobsError, match="without '# END casejobs'; mend it by hand"):
            change(broken)


@pytest.mark.parametrize("separator", ["\x0c", "\u2028"])
def test_a_foreign_line_holding_an_unusual_line_break_character_is_kept_as_it_was(separator: str) -> None:
    foreign = f"# owner: Asha{separator}Rao\n"
    assert without_block(with_block(foreign, BLOCK)) == foreign


def test_the_variables_of_the_installed_block_are_read_back_from_its_job_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "firm's 100% home"
    monkeypatch.delenv("CASEJOBS_CONFIG", raising=False)
    monkeypatch.setenv("CASEJOBS_HOME", str(home))
    monkeypatch.setenv("CASEJOBS_DB", "/data/case files/app.db")
    plan = plan_block(home, REGISTRY.entries(), "debian", "UTC", dt.datetime(2026, 6, 1, tzinfo=IST))
    assert block_environment(plan.lines) == {"CASEJOBS_HOME": str(home), "CASEJOBS_DB": "/data/case files/app.db"}
    catch_up_only = [BEGIN, plan.lines[-3], END]
    assert catch_up_only[1].startswith("@reboot ")
    assert block_environment(catch_up_only) == {"CASEJOBS_HOME": str(home), "CASEJOBS_DB": "/data/case files/app.db"}
    assert block_environment([BEGIN, "CRON_TZ=Asia/Kolkata", END]) == {}


@pytest.mark.parametrize(
    ("zone", "year", "expected"),
    [
        ("Europe/London", 2026, True),
        ("America/New_York", 2026, True),
        ("Australia/Sydney", 2026, True),
        ("UTC", 2026, False),
        ("Asia/Kolkata", 2026, False),
        ("Asia/Kathmandu", 2026, False),
    ],
)
def test_daylight_saving_is_a_change_of_offset_within_the_year(zone: str, year: int, expected: bool) -> None:
    assert has_daylight_saving(ZoneInfo(zone), year) is expected


@pytest.mark.parametrize(
    ("hour", "minute", "zone", "expected"),
    [
        (6, 30, "Europe/London", [(1, 0), (2, 0)]),
        (6, 30, "America/New_York", [(20, 0), (21, 0)]),  # the evening before, EST and EDT
        (23, 30, "UTC", [(18, 0)]),
        (6, 30, "Asia/Kathmandu", [(6, 45)]),
        (0, 0, "Asia/Kolkata", [(0, 0)]),
    ],
)
def test_local_times_are_every_wall_clock_time_an_ist_time_falls_on(
    hour: int, minute: int, zone: str, expected: list[tuple[int, int]]
) -> None:
    assert local_times(hour, minute, ZoneInfo(zone), 2026) == expected


def test_cron_lines_are_as_written_under_cron_tz_translated_otherwise_and_every_five_minutes_everywhere() -> None:
    daily_sync, sla_check, refresh = entry("daily-sync"), entry("sla-check"), entry("user-pending-refresh")
    assert cron_lines_for(daily_sync, None, 2026) == ["30 6 * * *"]
    assert cron_lines_for(daily_sync, ZoneInfo("Europe/London"), 2026) == ["0 1 * * *", "0 2 * * *"]
    assert cron_lines_for(sla_check, ZoneInfo("UTC"), 2026) == ["30 12 * * *"]
    assert cron_lines_for(refresh, ZoneInfo("Australia/Sydney"), 2026) == ["*/5 * * * *"]


def test_a_weekly_line_is_translated_with_its_weekday_which_may_move_to_the_day_before() -> None:
    drill = entry("backup-drill")
    assert drill.expression == "0 3 * * 0"  # Sunday 03:00 IST
    assert cron_lines_for(drill, None, 2026) == ["0 3 * * 0"]
    assert cron_lines_for(drill, ZoneInfo("UTC"), 2026) == ["30 21 * * 6"]  # Saturday 21:30 UTC
    assert cron_lines_for(drill, ZoneInfo("Europe/London"), 2026) == ["30 21 * * 6", "30 22 * * 6"]
    assert cron_lines_for(drill, ZoneInfo("Asia/Tokyo"), 2026) == ["30 6 * * 0"]
    assert cron_lines_for(entry("daily-sync", "0 9 * * 1"), ZoneInfo("America/New_York"), 2026) == [
        "30 22 * * 0",
        "30 23 * * 0",
    ]


def test_every_translated_weekly_line_fires_at_the_ist_slot_through_the_year() -> None:
    drill = entry("backup-drill")
    zone = ZoneInfo("America/New_York")
    lines = cron_lines_for(drill, zone, 2026)
    start = dt.datetime(2026, 1, 1, tzinfo=zone)
    end = dt.datetime(2027, 1, 1, tzinfo=zone)
    fired = set()
    for line in lines:
        for moment in itertools.takewhile(lambda moment: moment < end, CronSim(line, start)):
            fired.add(moment.astimezone(IST).replace(tzinfo=None))
    sundays = {
        dt.datetime(2026, 1, 4, 3, 0) + dt.timedelta(weeks=week)
        for week in range(53)
        if dt.datetime(2026, 1, 4, 3, 0) + dt.timedelta(weeks=week) < dt.datetime(2027, 1, 1)
    }
    assert sundays <= fired  # every Sunday 03:00 IST has a line; a second start in the slot skips itself


@pytest.mark.parametrize("expression", ["0 9 1 * *", "*/7 * * * *", "30 6,18 * * *", "0 9 * * 1-5"])
def test_a_schedule_that_is_neither_daily_weekly_nor_every_few_minutes_cannot_be_translated(expression: str) -> None:
    with pytest.raises(CasejobsError, match="only daily, weekly and every-N-minutes schedules can be translated"):
        cron_lines_for(entry("daily-sync", expression), ZoneInfo("Europe/London"), 2026)
    assert cron_lines_for(entry("daily-sync", expression), None, 2026) == [expression]


def minutes_of(expression: str) -> set[int]:
    """Return the minutes of the hour at which a cron expression (any hour) fires."""
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    return {moment.minute for moment in itertools.takewhile(lambda moment: moment < end, CronSim(expression, start))}


@pytest.mark.parametrize("flavor", ["cronie", "debian"])
def test_catch_up_runs_every_fifteen_minutes_on_a_wildcard_hour_never_with_a_job(flavor: str) -> None:
    lines = plan_block(
        Path("/h"), REGISTRY.entries(), flavor, "Europe/London", dt.datetime(2027, 6, 1, tzinfo=IST)
    ).lines
    catch_up = [line for line in lines if "catch-up" in line and not line.startswith("@reboot")]
    assert len(catch_up) == 1
    minute, hour = catch_up[0].split()[:2]
    assert hour == "*" and minute == CATCH_UP_EXPRESSION.split()[0] == "2,17,32,47"
    assert any(line.startswith("@reboot ") and "catch-up" in line for line in lines)
    # Every zone's offset from IST is a multiple of 15 minutes: no shift by one can bring a job's minute
    # onto a catch-up minute, in IST or on the host's clock.
    catch_up_minutes = minutes_of(CATCH_UP_EXPRESSION)
    for one in REGISTRY.entries():
        for shift in range(0, 60, 15):
            assert not {(minute + shift) % 60 for minute in minutes_of(one.expression)} & catch_up_minutes


def test_a_missed_slot_of_any_job_is_caught_up_at_most_twenty_five_minutes_late() -> None:
    # catch-up runs a slot once it is more than the grace (10 minutes) old: the first catch-up minute at
    # least that far past the slot's minute is when a slot cron did not start runs.
    grace = int(declared("ops.catch_up_grace_minutes").default)
    catch_up_minutes = minutes_of(CATCH_UP_EXPRESSION)
    for one in REGISTRY.entries():
        for minute in minutes_of(one.expression):
            lateness = min(
                (catch_up - minute) % 60 for catch_up in catch_up_minutes if (catch_up - minute) % 60 > grace
            )
            assert lateness <= 25, (one.job, minute, lateness)
