"""Debian's cron daemon, for real, on a faked clock: in a private mount namespace, its clock started at a
chosen moment and running many times faster than the real one (libfaketime), with a crontab whose commands
record the daemon's simulated time.

The machine's own crontabs, /etc/crontab, /etc/cron.d and /run are hidden from the daemon by bind mounts
that exist only in its namespace (`unshare -m`), so nothing of the host is read, run or touched.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

LIBRARY_PATTERN = "/usr/lib/*/faketime/libfaketime.so.1"
SYSTEM_FOLDERS = ("/var/spool/cron/crontabs", "/etc/cron.d", "/run")


def missing_tools() -> list[str]:
    """Return what this machine lacks to run the daemon (empty when it has everything)."""
    missing = [
        tool
        for tool in ("cron", "faketime", "unshare", "mount")
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
    ]
    if not glob.glob(LIBRARY_PATTERN):
        missing.append("libfaketime")
    if os.geteuid() != 0:
        missing.append("root (for unshare -m)")
    return missing


def debian_cron_version() -> str:
    """Return the installed Debian cron package's version, e.g. 3.0pl1-162."""
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "cron"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


@dataclass(frozen=True)
class Fire:
    """One command the daemon started: when (simulated, UTC) and which line of the crontab (its number and name)."""

    at: dt.datetime
    line: int
    name: str


def recorded_crontab(block: str, recorder: Path) -> tuple[str, dict[int, str]]:
    """Given the block `jobctl install --dry-run` printed, return the same crontab with each command replaced by
    the recorder (given the line's number and its job's script name, or catch-up), and each line's schedule.
    """
    lines, schedules = [], {}
    for number, line in enumerate(block.splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#") or "=" in text.split()[0]:
            lines.append(line)
            continue
        fields = text.split()
        schedule = fields[0] if text.startswith("@") else " ".join(fields[:5])
        command = fields[1:] if text.startswith("@") else fields[5:]
        words = shlex.split(" ".join(command).replace("\\%", "%"))
        name = (
            "catch-up"
            if "catch-up" in words
            else words[words.index(next(w for w in words if w.endswith("/run-job"))) + 1]
        )
        schedules[number] = schedule
        lines.append(f"{schedule} {recorder} {number} {name}")
    return "\n".join(lines) + "\n", schedules


class FakedCron:
    """One cron daemon in its own mount namespace, on a clock starting at `start` (aware) running `speed`
    times fast, keeping time in `zone`, with the given crontab as root's.
    """

    def __init__(self, folder: Path, crontab: str, zone: str, start: dt.datetime, speed: int) -> None:
        self.folder, self.zone, self.start_at, self.speed = folder, zone, start, speed
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True)
        for name in ("spool", "cron.d", "run"):
            (folder / name).mkdir()
        (folder / "etc-crontab").write_text("")
        (folder / "fires").write_text("")
        # libfaketime reads an "@" start in the process's own zone: every process on this clock has the same TZ.
        local_start = start.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
        self.faketime = f"@{local_start} x{speed}"
        library = sorted(glob.glob(LIBRARY_PATTERN))[0]
        recorder = folder / "record"
        recorder.write_text(
            "#!/bin/sh\n"
            "# The daemon's simulated time (shared with it through libfaketime's shared memory), the line, its name.\n"
            f"now=$(TZ={shlex.quote(zone)} LD_PRELOAD={library} FAKETIME={shlex.quote(self.faketime)} "
            f'FAKETIME_SHARED="$(cat {folder}/shared)" FAKETIME_DONT_RESET=1 date +%s.%N)\n'
            f'echo "$now $1 $2" >> {folder}/fires\n'
        )
        recorder.chmod(0o755)
        text, self.schedules = recorded_crontab(crontab, recorder)
        table = folder / "spool" / "root"
        table.write_text(text)
        table.chmod(0o600)

    def start(self) -> None:
        """Start the daemon (it runs @reboot lines at once: its /run is new)."""
        folder = self.folder
        mounts = [
            (folder / "spool", "/var/spool/cron/crontabs"),
            (folder / "etc-crontab", "/etc/crontab"),
            (folder / "cron.d", "/etc/cron.d"),
            (folder / "run", "/run"),
        ]
        inner = f'printf %s "$FAKETIME_SHARED" > {folder}/shared; exec cron -f'
        script = (
            "set -e\n"
            + "".join(f"if [ -e {target} ]; then mount --bind {source} {target}; fi\n" for source, target in mounts)
            + (
                "exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "
                f"TZ={shlex.quote(self.zone)} FAKETIME_DONT_RESET=1 faketime -f {shlex.quote(self.faketime)} "
                f"sh -c {shlex.quote(inner)}\n"
            )
        )
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=(folder / "daemon.out").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def fires(self) -> list[Fire]:
        """Return what the daemon started so far, in order."""
        found = []
        for line in (self.folder / "fires").read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                moment = dt.datetime.fromtimestamp(float(parts[0]), dt.UTC)
                found.append(Fire(moment, int(parts[1]), parts[2]))
        return sorted(found, key=lambda fire: fire.at)

    def wait_until(self, moment: dt.datetime, timeout: float) -> None:
        """Wait until the daemon has started a command at or after moment (simulated); raise if it dies first."""
        deadline = time.monotonic() + timeout
        while not any(fire.at >= moment for fire in self.fires()):
            assert self.process is not None
            if self.process.poll() is not None:
                output = (self.folder / "daemon.out").read_text(errors="replace")
                raise AssertionError(f"the cron daemon ended (exit {self.process.returncode}): {output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the daemon did not reach {moment} in {timeout} s; fires: {self.fires()[-3:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the daemon and everything it started; remove libfaketime's shared memory."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shared = self.folder / "shared"
        if shared.exists():
            for name in shared.read_text().split():  # /faketime_sem_PID /faketime_shm_PID
                for path in (Path("/dev/shm") / name.lstrip("/"), Path("/dev/shm") / f"sem.{name.lstrip('/')}"):
                    path.unlink(missing_ok=True)
