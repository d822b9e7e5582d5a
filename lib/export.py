"""The schedule for other schedulers, generated from crontab.ist: systemd, Windows Task Scheduler, Kubernetes.

Each keeps India's time by itself, whatever the host's zone: systemd with
`Asia/Kolkata` in OnCalendar=, Windows with a +05:30 StartBoundary, and
Kubernetes with `timeZone: Asia/Kolkata`.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from xml.sax.saxutils import escape

from lib.errors import CasejobsError, UsageError
from lib.platforms import LOGON_TYPES, kill_limit, task_name, windows_launcher
from lib.schedule import Entry

WEEKDAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")  # cron's 0 to 6


def _fields(entry: Entry) -> tuple[str, str, int | None]:
    """(minute, hour, cron weekday or None for every day) of an entry the exports can express."""
    minute, hour, day, month, weekday = entry.expression.split()
    if (day, month) != ("*", "*") or not (weekday == "*" or (weekday.isdigit() and hour.isdigit())):
        raise CasejobsError(f"{entry.script}: only daily, weekly and every-N-minutes schedules can be exported")
    return minute, hour, None if weekday == "*" else int(weekday) % 7


def _calendar_part(field: str) -> str:
    if field == "*":
        return "*"
    step = re.fullmatch(r"\*/(\d+)", field)
    if step:
        return f"00/{int(step.group(1))}"
    if field.isdigit():
        return f"{int(field):02d}"
    raise CasejobsError(f"cron field {field!r} cannot be exported")


def on_calendar(entry: Entry) -> str:
    """Return the systemd OnCalendar= value of an entry, in India's zone."""
    minute, hour, weekday = _fields(entry)
    days = "" if weekday is None else f"{WEEKDAY_NAMES[weekday][:3]} "
    return f"{days}*-*-* {_calendar_part(hour)}:{_calendar_part(minute)}:00 Asia/Kolkata"


# An account name as User= takes it (directory accounts such as asha@firm.example included): no space,
# control character, quote, backslash, slash, colon or %, which would break or extend the unit.
SYSTEMD_USER = re.compile(r"[^\s\x00-\x1f\x7f\"'\\/:%]{1,256}")


def systemd_quoted(value: str) -> str:
    """A value as one double-quoted word of a unit file: a space, a quote or a backslash stays in the
    word, and a % is not read as a specifier (%h, %o...)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def systemd_units(
    entries: list[Entry],
    launcher: Path,
    home: Path,
    user: str,
    environment: dict[str, str] | None = None,
    limits: dict[str, int] | None = None,
) -> dict[str, str]:
    """Return a .service and a .timer per job, by file name; the services run as user.

    TimeoutStartSec (the limit a Type=oneshot service has) is the job's own
    time limit plus a margin, so the job stops itself and records `timeout`
    before systemd kills it.
    """
    if not SYSTEMD_USER.fullmatch(user):
        raise UsageError(f"--user {user!r} is not an account name systemd takes")
    units = {}
    variables = {"CASEJOBS_HOME": str(home), **(environment or {})}
    lines = "".join(f"Environment={systemd_quoted(f'{key}={value}')}\n" for key, value in variables.items())
    # In ExecStart= a $ would expand a variable too.
    launcher_word = systemd_quoted(str(launcher)).replace("$", "$$")
    for entry in entries:
        name = f"casejobs-{entry.script}"
        limit = (limits or {}).get(entry.job, entry.spec.time_limit)
        units[f"{name}.service"] = (
            f"[Unit]\nDescription=casejobs {entry.job}\n\n"
            f"[Service]\nType=oneshot\nUser={user}\nUMask=0077\n{lines}"
            f"ExecStart={launcher_word} {entry.script} --trigger cron\n"
            f"TimeoutStartSec={kill_limit(limit)}\n"
            # The harness turns SIGTERM into a stop within a second: give it time to record it.
            "KillMode=mixed\nTimeoutStopSec=120\n"
        )
        units[f"{name}.timer"] = (
            f"[Unit]\nDescription=casejobs {entry.job} ({entry.expression} IST)\n\n"
            f"[Timer]\nOnCalendar={on_calendar(entry)}\nPersistent=true\nUnit={name}.service\n\n"
            "[Install]\nWantedBy=timers.target\n"
        )
    return units


def _windows_trigger(entry: Entry) -> str:
    minute, hour, weekday = _fields(entry)
    step = re.fullmatch(r"\*/(\d+)", minute)
    if hour == "*" and step:
        start, repetition = (
            "00:00",
            (
                f"<Repetition><Interval>PT{int(step.group(1))}M</Interval><Duration>P1D</Duration>"
                "<StopAtDurationEnd>false</StopAtDurationEnd></Repetition>"
            ),
        )
    elif hour.isdigit() and minute.isdigit():
        start, repetition = f"{int(hour):02d}:{int(minute):02d}", ""
    else:
        raise CasejobsError(f"{entry.script}: {entry.expression} cannot be a Windows trigger")
    if weekday is None:
        schedule = "<ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay>"
    else:
        schedule = (
            f"<ScheduleByWeek><DaysOfWeek><{WEEKDAY_NAMES[weekday]} /></DaysOfWeek>"
            "<WeeksInterval>1</WeeksInterval></ScheduleByWeek>"
        )
    # +05:30 pins the time to India: the host's own daylight saving cannot move it. The first boundary
    # of a weekly trigger is a day of its own (2026-01-04 was a Sunday, and days follow from it).
    first = dt.date(2026, 1, 1) if weekday is None else dt.date(2026, 1, 4) + dt.timedelta(days=weekday)
    return (
        f"<CalendarTrigger>{repetition}<StartBoundary>{first.isoformat()}T{start}:00+05:30</StartBoundary>"
        f"<Enabled>true</Enabled>{schedule}</CalendarTrigger>"
    )


def windows_task(entry: Entry, install: str, user: str, logon: str = "s4u", limit: int | None = None) -> bytes:
    """Return the Task Scheduler XML of one job, UTF-16 with a byte-order mark.

    The task starts the console script casejobs-run-job.exe of the install
    (with --log-file: Task Scheduler keeps no output), as user, whether or not
    anyone is logged on (logon S4U: no password stored, no window, no access
    to network shares; or Password, for an off-site folder on a share), with
    the least privilege, hidden; it is killed only a margin after the job's
    own time limit.
    """
    launcher = windows_launcher(install)
    kill = kill_limit(limit or entry.spec.time_limit)
    xml = f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>casejobs {escape(entry.job)}: {escape(entry.expression)} in India Standard Time</Description>
    <URI>{escape(task_name(entry.job))}</URI>
  </RegistrationInfo>
  <Triggers>
    {_windows_trigger(entry)}
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>{escape(user)}</UserId>
      <LogonType>{LOGON_TYPES[logon]}</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <StartWhenAvailable>true</StartWhenAvailable>
    <ExecutionTimeLimit>PT{kill}S</ExecutionTimeLimit>
    <Hidden>true</Hidden>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(str(launcher))}</Command>
      <Arguments>{escape(entry.script)} --trigger cron --log-file</Arguments>
      <WorkingDirectory>{escape(str(launcher.parent))}</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
"""
    return "\ufeff".encode("utf-16-le") + xml.encode("utf-16-le")


def kubernetes_cronjob(entry: Entry, image: str, limit: int | None = None) -> str:
    """Return a CronJob manifest of one job (YAML); activeDeadlineSeconds kills it only a margin after
    the job's own time limit."""
    _, hour, _ = _fields(entry)
    deadline = 240 if hour == "*" else 3600  # a late start is still worth it within this many seconds
    name = f"casejobs-{entry.script}"
    return f"""apiVersion: batch/v1
kind: CronJob
metadata:
  name: {name}
  labels:
    app.kubernetes.io/part-of: casejobs
spec:
  schedule: "{entry.expression}"
  timeZone: Asia/Kolkata
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {deadline}
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 3
  jobTemplate:
    spec:
      backoffLimit: 0
      activeDeadlineSeconds: {kill_limit(limit or entry.spec.time_limit)}
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: {entry.script}
              image: {image}
              command: ["/app/bin/run-job", "{entry.script}", "--trigger", "cron"]
              env:
                - name: CASEJOBS_HOME
                  value: /data
              volumeMounts:
                - name: casejobs-data
                  mountPath: /data
          volumes:
            - name: casejobs-data
              persistentVolumeClaim:
                claimName: casejobs-data
"""
