"""Putting crontab.ist into the user's crontab, inside one managed block, on any cron.

cronie and systemd-cron 2.1.3 and later honour CRON_TZ; Debian and Ubuntu
cron, busybox, bcron and macOS cron ignore it without a word. Where it is
ignored, each IST time is translated into the host's zone: exact while that
zone has no daylight saving (IST is fixed at +05:30). Where the host's zone
has daylight saving, a daily job is installed at every local time its IST
time can fall on; the harness lets one start per IST slot run and records
the others `skipped`.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lib.clock import IST
from lib.errors import CasejobsError, ConfigError
from lib.home import umask_for_cron
from lib.schedule import LAUNCHER, Entry
from lib.settings import launcher

BEGIN = "# BEGIN casejobs"
END = "# END casejobs"
FLAVORS_WITH_CRON_TZ = ("cronie", "systemd-cron")
FLAVORS = (*FLAVORS_WITH_CRON_TZ, "debian", "busybox", "bcron", "macos", "unknown")
# `jobctl catch-up` every 15 minutes, 2 minutes past each quarter hour: after the jobs' own :00 and :30
# starts, between the */5 runs. A missed slot runs at most the grace (10 minutes) + 15 minutes late. Its hour
# is a wildcard, which every cron runs even in the hour a clock change repeats or skips (Debian cron and
# cronie run only such lines then); and since every zone's offset from IST is a multiple of 15 minutes, the
# same four minutes are the catch-up's minutes in IST whatever zone cron keeps time in.
CATCH_UP_EVERY, CATCH_UP_OFFSET = 15, 2
CATCH_UP_EXPRESSION = ",".join(str(minute) for minute in range(CATCH_UP_OFFSET, 60, CATCH_UP_EVERY)) + " * * * *"
PASSED_ENVIRONMENT = ("CASEJOBS_HOME", "CASEJOBS_DB", "CASEJOBS_CONFIG")


NOT_INSTALLED = "none"


def detect_flavor() -> str:
    """Return which cron this host runs (see FLAVORS), by looking at what is installed;
    NOT_INSTALLED when there is no crontab program at all."""
    if platform.system() == "Darwin":
        return "macos"
    crontab = shutil.which("crontab")
    if crontab is None:
        return NOT_INSTALLED
    if crontab and os.path.realpath(crontab).endswith("busybox"):
        return "busybox"
    if shutil.which("bcron-start"):
        return "bcron"
    if _debian_version("systemd-cron"):
        return "systemd-cron" if _version_at_least(_debian_version("systemd-cron"), (2, 1, 3)) else "debian"
    if shutil.which("crond") and "cronie" in _output(["crond", "-V"]):
        return "cronie"
    if _debian_version("cron") or Path("/etc/debian_version").exists():
        return "debian"
    return "unknown"


def _output(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    return result.stdout + result.stderr


def _debian_version(package: str) -> str | None:
    if not shutil.which("dpkg-query"):
        return None
    text = _output(["dpkg-query", "-W", "-f", "${Status} ${Version}", package])
    return text.split()[-1] if "install ok installed" in text else None


def _version_at_least(version: str | None, minimum: tuple[int, ...]) -> bool:
    numbers = tuple(int(part) for part in re.findall(r"\d+", version or "")[: len(minimum)])
    return numbers >= minimum


def detect_host_zone() -> str:
    """Return the zone the cron daemon keeps time in: /etc/localtime's, else /etc/timezone, else UTC."""
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = os.path.realpath(localtime)
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    timezone_file = Path("/etc/timezone")
    if timezone_file.exists():
        return timezone_file.read_text().strip() or "UTC"
    return "UTC"


def has_daylight_saving(zone: ZoneInfo, year: int) -> bool:
    """Return True if the zone's UTC offset changes during the year."""
    offsets = {dt.datetime(year, month, 15, 12, tzinfo=zone).utcoffset() for month in range(1, 13)}
    return len(offsets) > 1


@dataclass(frozen=True)
class Plan:
    """What install writes: the block's lines, and how it dealt with time zones."""

    lines: list[str]
    flavor: str
    host_zone: str
    method: str  # "CRON_TZ", "translated" or "translated, both daylight-saving times"


def _daily_time(entry: Entry) -> tuple[int, int] | None:
    minute, hour, day, month, weekday = entry.expression.split()
    if minute.isdigit() and hour.isdigit() and (day, month, weekday) == ("*", "*", "*"):
        return int(hour), int(minute)
    return None


def _weekly_time(entry: Entry) -> tuple[int, int, int] | None:
    """(cron weekday 0-6 with 0 Sunday, hour, minute) of a once-a-week entry such as 0 3 * * 0, else None."""
    minute, hour, day, month, weekday = entry.expression.split()
    if minute.isdigit() and hour.isdigit() and weekday.isdigit() and (day, month) == ("*", "*"):
        return int(weekday) % 7, int(hour), int(minute)
    return None


def _zone_independent(entry: Entry) -> bool:
    """True for entries like */5 * * * *: every zone's offset is a multiple of 15 minutes."""
    minute, hour, day, month, weekday = entry.expression.split()
    step = re.fullmatch(r"\*/(\d+)", minute)
    return (
        hour == "*"
        and (day, month, weekday) == ("*", "*", "*")
        and (minute == "*" or bool(step and 15 % int(step.group(1)) == 0))
    )


def local_times(hour: int, minute: int, zone: ZoneInfo, year: int) -> list[tuple[int, int]]:
    """Return every host-local (hour, minute) that hour:minute IST falls on during the year, sorted."""
    found = set()
    day = dt.date(year, 1, 1)
    while day.year == year:
        moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=IST).astimezone(zone)
        found.add((moment.hour, moment.minute))
        day += dt.timedelta(days=7)
    return sorted(found)


def local_weekly_times(weekday: int, hour: int, minute: int, zone: ZoneInfo, year: int) -> list[tuple[int, int, int]]:
    """Return every host-local (cron weekday, hour, minute) that weekday hour:minute IST falls on during
    the year, sorted: 03:00 IST on Sunday is 21:30 on Saturday in UTC."""
    found = set()
    day = dt.date(year, 1, 1)
    day += dt.timedelta(days=(weekday - (day.weekday() + 1) % 7) % 7)  # the year's first such weekday
    while day.year == year:
        moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=IST).astimezone(zone)
        found.add(((moment.weekday() + 1) % 7, moment.hour, moment.minute))
        day += dt.timedelta(days=7)
    return sorted(found)


def cron_lines_for(entry: Entry, zone: ZoneInfo | None, year: int) -> list[str]:
    """Return the crontab expressions of one entry: as written (zone None: CRON_TZ), or translated to
    the host's zone (each local time the IST time falls on during the year: a second start of the same
    IST slot skips itself)."""
    if zone is None or _zone_independent(entry):
        return [entry.expression]
    daily = _daily_time(entry)
    if daily is not None:
        return [f"{minute} {hour} * * *" for hour, minute in local_times(*daily, zone, year)]
    weekly = _weekly_time(entry)
    if weekly is not None:
        return [f"{minute} {hour} * * {weekday}" for weekday, hour, minute in local_weekly_times(*weekly, zone, year)]
    raise CasejobsError(
        f"{entry.script}: only daily, weekly and every-N-minutes schedules can be translated ({entry.expression})"
    )


def _command(script: Path, home_environment: dict[str, str], log_folder: Path, name: str, *arguments: str) -> str:
    prefix = "".join(f"{key}={shlex.quote(value)} " for key, value in home_environment.items())
    log = shlex.quote(str(log_folder / f"{name}.log"))
    # The umask first: the shell creates the log file before the job runs, with the home's modes.
    command = f"umask {umask_for_cron()}; {prefix}{shlex.quote(str(script))} {' '.join(arguments)} >> {log} 2>&1"
    return command.replace("%", "\\%")  # cron turns a bare % into a newline


def plan_block(
    home: Path,
    entries: list[Entry],
    flavor: str | None = None,
    host_zone: str | None = None,
    now: dt.datetime | None = None,
) -> Plan:
    """Return the managed block for this host: absolute paths, --trigger cron, logs appended under home/log."""
    flavor = flavor or detect_flavor()
    if flavor == NOT_INSTALLED:
        raise ConfigError(
            "cron is not installed on this host (no crontab program): install it (apt-get install cron), "
            "or write the schedule for another scheduler with: bin/jobctl export"
        )
    if flavor not in FLAVORS:
        raise ConfigError(f"--cron-flavor {flavor!r}: expected one of {', '.join(FLAVORS)}")
    host_zone = host_zone or detect_host_zone()
    try:
        zone = ZoneInfo(host_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--host-tz {host_zone!r} is not a time zone") from None
    year = (now or dt.datetime.now(IST)).year
    use_cron_tz = flavor in FLAVORS_WITH_CRON_TZ
    if use_cron_tz:
        method = "CRON_TZ"
    elif has_daylight_saving(zone, year):
        method = "translated, both daylight-saving times"
    else:
        method = "translated"
    environment = {name: os.environ[name] for name in PASSED_ENVIRONMENT if os.environ.get(name)}
    environment.setdefault("CASEJOBS_HOME", str(home))
    log_folder = home / "log"
    lines = [f"{BEGIN} (written by bin/jobctl install from crontab.ist; edits inside are lost)"]
    lines.append(f"# cron flavor {flavor}, host zone {host_zone}: times {method}")
    if use_cron_tz:
        lines.append("CRON_TZ=Asia/Kolkata")
    for entry in entries:
        command = _command(LAUNCHER, environment, log_folder, entry.script, entry.script, "--trigger", "cron")
        for expression in cron_lines_for(entry, None if use_cron_tz else zone, year):
            lines.append(f"{expression} {command}")
    catch_up = _command(launcher("jobctl"), environment, log_folder, "catch-up", "catch-up")
    lines.append(f"@reboot {catch_up}")
    lines.append(f"{CATCH_UP_EXPRESSION} {catch_up}")
    lines.append(END)
    return Plan(lines, flavor, host_zone, method)


def read_crontab() -> str:
    """Return the user's crontab ("" when there is none); raise CasejobsError if `crontab -l` fails otherwise."""
    if not shutil.which("crontab"):
        raise CasejobsError("no crontab program on this host; install cron, or use: jobctl export")
    result = subprocess.run(["crontab", "-l"], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode == 0:
        return result.stdout
    message = result.stderr.strip()
    if "no crontab" in message.lower() or ("can't open" in message and "No such file" in message):
        return ""
    raise CasejobsError(f"crontab -l failed, so nothing was touched: {message or f'exit {result.returncode}'}")


def write_crontab(text: str) -> None:
    """Replace the user's crontab with text; raise CasejobsError if crontab refuses it."""
    result = subprocess.run(["crontab", "-"], input=text, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise CasejobsError(f"crontab refused the new table: {result.stderr.strip()}")


def split_block(text: str) -> tuple[list[str], list[str] | None, list[str]]:
    """Given a crontab, return (lines before our block, the block or None, lines after it)."""
    # Split on newlines only: str.splitlines() would also break a foreign line at a form feed or U+2028.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    starts = [number for number, line in enumerate(lines) if line.startswith(BEGIN)]
    if not starts:
        return lines, None, []
    start = starts[0]
    end = next((number for number in range(start, len(lines)) if lines[number].strip() == END), None)
    if end is None:
        raise CasejobsError(f"the crontab has '{BEGIN}' without '{END}'; mend it by hand (crontab -e)")
    return lines[:start], lines[start : end + 1], lines[end + 1 :]


def with_block(text: str, block: list[str]) -> str:
    """Return the crontab text with our block put in (in place of the old one, else at the end)."""
    before, _, after = split_block(text)
    return "\n".join([*before, *block, *after]) + "\n"


def without_block(text: str) -> str:
    """Return the crontab text without our block; every other line as it was."""
    before, old, after = split_block(text)
    if old is None:
        return text
    lines = [*before, *after]
    return "\n".join(lines) + "\n" if lines else ""


def installed_block(text: str) -> list[str] | None:
    """Return our block as installed, or None."""
    return split_block(text)[1]


def other_home(block: list[str] | None, home: Path) -> str | None:
    """Given the installed block, return the CASEJOBS_HOME its jobs run with when it is not home (the
    block belongs to another installation, or this shell names the wrong home), else None."""
    if block is None:
        return None
    installed = block_environment(block).get("CASEJOBS_HOME")
    if not installed or Path(installed) == Path(home):
        return None
    try:
        same = os.path.samefile(installed, home)  # the same folder spelled through a link
    except OSError:
        same = False
    return None if same else installed


def daemon_running() -> bool | None:
    """Return whether a cron daemon process runs on this host (None where that cannot be seen)."""
    processes = Path("/proc")
    if not processes.is_dir():
        return None
    for entry in processes.iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if name in ("cron", "crond", "busybox-crond", "bcron-sched"):
                return True
    return False


def block_environment(block: list[str]) -> dict[str, str]:
    """Given our installed block, return the variables its job lines set (CASEJOBS_HOME and friends)."""
    for line in block:
        text = line.strip()
        if not text or text.startswith("#") or "=" in text.split()[0]:
            continue
        command = text.split(None, 1)[1] if text.startswith("@") else text.split(None, 5)[5]
        words = shlex.split(command.replace("\\%", "%"))
        variables: dict[str, str] = {}
        for word in words:
            if word in ("umask",) or re.fullmatch(r"0?[0-7]{3};?", word):
                continue
            if re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", word):
                name, _, value = word.partition("=")
                variables[name] = value
                continue
            break
        return variables
    return {}
