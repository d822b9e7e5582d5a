"""bin/jobctl: operations on casejobs.

The database (db init, db seed); the schedule (install, uninstall, status,
export); running jobs by hand (run) and catching up missed runs (catch-up).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from lib import clock, crontab, export
from lib.cli import main, plural, report_errors
from lib.db import connect, migrate, schema_version
from lib.errors import CasejobsError, ConfigError, UsageError
from lib.health import LEVEL_NAMES, check_job, installed_at, job_health, mark_installed
from lib.history import latest, process_alive
from lib.home import create_home, share_with_group
from lib.ledger import Damage
from lib.schedule import Entry, find_entry, read_schedule
from lib.seed import SCALES, seed_database
from lib.settings import PROJECT_ROOT, load_settings
from lib.stats import run_summary


@click.group(name="jobctl", context_settings={"help_option_names": ["-h", "--help"]})
def jobctl() -> None:
    """Operate casejobs: the database, the schedule, and running jobs by hand."""


@jobctl.group(name="db")
def database_group() -> None:
    """Create, migrate and fill the case-management database."""


def _make_database_folder(home: Path, path: Path) -> None:
    """Create the home when the database lives in it; another folder must exist already."""
    if path.parent == home:
        create_home(home)
    elif not path.parent.is_dir():
        raise ConfigError(f"database {path} (CASEJOBS_DB): its folder {path.parent} does not exist")


@database_group.command(name="init")
@click.option("--db", type=click.Path(dir_okay=False), help="The SQLite database [env CASEJOBS_DB].")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl")
def database_init(db: str | None, verbose: bool) -> None:
    """Create the database, or migrate it to the current schema (safe to run again)."""
    settings = load_settings({"core.db": db})
    share_with_group(settings.get("core.home_group"))
    path = settings.database_path
    _make_database_folder(settings.home, path)
    created = not path.exists()
    database = connect(path, settings.get("core.busy_timeout_ms"), create=True)
    try:
        reached = migrate(database, path)
        version = schema_version(database)
    finally:
        database.close()
    if created:
        click.echo(f"created {path} at schema version {version}")
    elif reached:
        click.echo(f"migrated {path} to schema version {version}")
    else:
        click.echo(f"{path} is already at schema version {version}")


@database_group.command(name="seed")
@click.option("--db", type=click.Path(dir_okay=False), help="The SQLite database [env CASEJOBS_DB].")
@click.option("--scale", type=click.Choice(tuple(SCALES)), default="small", show_default=True, help="How much data.")
@click.option(
    "--seed",
    "seed_number",
    type=int,
    default=1,
    show_default=True,
    help="Random seed: the same seed and day give the same data.",
)
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl")
def database_seed(db: str | None, scale: str, seed_number: int, verbose: bool) -> None:
    """Fill a new, empty database with realistic demo data (creating it if needed)."""
    settings = load_settings({"core.db": db})
    share_with_group(settings.get("core.home_group"))
    path = settings.database_path
    _make_database_folder(settings.home, path)
    database = connect(path, settings.get("core.busy_timeout_ms"), create=True)
    try:
        migrate(database, path)
        now = settings.now()
        cases = SCALES[scale].cases
        if sys.stderr.isatty():
            with click.progressbar(length=cases, label=f"seeding {scale}", file=sys.stderr) as bar:
                counts = seed_database(database, scale, seed_number, now, clock.today_ist(now), bar.update)
        else:
            counts = seed_database(database, scale, seed_number, now, clock.today_ist(now))
    finally:
        database.close()
    click.echo(
        f"seeded {path} ({scale}, seed {seed_number}): "
        + ", ".join(f"{count} {table}" for table, count in counts.items())
    )


def _entry_or_usage(job: str) -> Entry:
    entry = find_entry(job)
    if entry is None:
        known = ", ".join(f"{entry.job} ({entry.script})" for entry in read_schedule())
        raise UsageError(f"unknown job {job!r}; known jobs: {known}")
    if not entry.script_path.exists():
        raise UsageError(f"{entry.job} has no script yet ({entry.script_path})")
    return entry


@jobctl.command(name="install")
@click.option("--dry-run", is_flag=True, help="Print the exact block, change nothing.")
@click.option("--host-tz", help="The zone cron keeps time in [default: this host's].")
@click.option("--cron-flavor", type=click.Choice(crontab.FLAVORS), help="The cron daemon [default: detected].")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl install")
def install_command(dry_run: bool, host_tz: str | None, cron_flavor: str | None, verbose: bool) -> None:
    """Put crontab.ist into your crontab, inside one managed block (installing twice changes nothing)."""
    settings = load_settings()
    share_with_group(settings.get("core.home_group"))
    plan = crontab.plan_block(settings.home, cron_flavor, host_tz, settings.now())
    if dry_run:
        click.echo("\n".join(plan.lines))
        return
    create_home(settings.home)
    current = crontab.read_crontab()
    wanted = crontab.with_block(current, plan.lines)
    if wanted == current:
        click.echo(
            f"the casejobs block is already installed and current ({plan.flavor}, {plan.host_zone}: {plan.method})"
        )
    else:
        crontab.write_crontab(wanted)
        click.echo(f"installed the casejobs block ({plan.flavor}, host zone {plan.host_zone}: times {plan.method})")
    if installed_at(settings.home) is None:
        mark_installed(settings.home, settings.now())


@jobctl.command(name="uninstall")
@click.option("--wait", "wait_for_jobs", is_flag=True, help="Then wait for running jobs to finish.")
@click.option("--stop", "stop_jobs", is_flag=True, help="Then send running jobs SIGTERM (they finish their item).")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl uninstall")
def uninstall_command(wait_for_jobs: bool, stop_jobs: bool, verbose: bool) -> None:
    """Remove the casejobs block from your crontab; every other line stays as it was."""
    if wait_for_jobs and stop_jobs:
        raise UsageError("give --wait or --stop, not both")
    settings = load_settings()
    share_with_group(settings.get("core.home_group"))
    current = crontab.read_crontab()
    if crontab.installed_block(current) is None:
        click.echo("no casejobs block in the crontab")
    else:
        crontab.write_crontab(crontab.without_block(current))
        click.echo("removed the casejobs block")
    if not (wait_for_jobs or stop_jobs):
        return
    running = {}
    for entry in read_schedule():
        run = latest(settings.home, entry.job).running
        if run is not None and run.pid:
            running[entry.job] = run.pid
    if stop_jobs:
        for job, pid in running.items():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            click.echo(f"sent SIGTERM to {job} (pid {pid})")
    for job, pid in running.items():
        if _still_running(settings.home, job, pid):
            click.echo(f"waiting for {job} to finish...")
        while _still_running(settings.home, job, pid):
            time.sleep(0.2)
    if running:
        click.echo("no job is running")


def _still_running(home: Path, job: str, pid: int) -> bool:
    """True while the run of pid has not written its finish line and its process lives."""
    run = latest(home, job).running
    return run is not None and run.pid == pid and process_alive(pid)


@jobctl.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl status")
def status_command(as_json: bool, verbose: bool) -> None:
    """Whether the schedule is installed and current; per job: running, last run, next run, overdue."""
    settings = load_settings()
    share_with_group(settings.get("core.home_group"))
    now = settings.now()
    try:
        block = crontab.installed_block(crontab.read_crontab())
        current = crontab.plan_block(settings.home, now=now).lines
        schedule: dict[str, Any] = {"installed": block is not None, "current": block == current, "error": None}
    except CasejobsError as error:
        schedule = {"installed": None, "current": None, "error": str(error)}
    damage = Damage()
    installed = installed_at(settings.home) is not None
    jobs = {}
    for entry in read_schedule():
        health = job_health(settings, entry, now, damage)
        problems = check_job(health, now, installed)
        jobs[entry.job] = {
            "running": health.running_pid is not None,
            "running_pid": health.running_pid,
            "last_run": run_summary(health.state.last_worked),
            "next_run": entry.next_run(now).isoformat(timespec="minutes"),
            **health.as_dict(),
            "problems": [f"{LEVEL_NAMES[level]} {line}" for level, line in problems],
        }
    report = {"schedule": schedule, "jobs": jobs, "damaged_lines": damage.lines}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    state = schedule["error"] or (
        "installed" + ("" if schedule["current"] else ", but differs from crontab.ist: run jobctl install")
        if schedule["installed"]
        else "not installed (jobctl install)"
    )
    click.echo(f"schedule: {state}")
    for name, job in jobs.items():
        last = job["last_run"]
        flags = [f"running (pid {job['running_pid']})"] if job["running"] else []
        flags += [f"OVERDUE: {plural(job['missed_slots'], 'slot')} missed"] if job["overdue"] else []
        last_text = f"{last['started_at']} {last['status']}" if last else "never"
        click.echo(f"{name:<20} last {last_text:<34} next {job['next_run']}  {'  '.join(flags)}".rstrip())
        for problem in job["problems"]:
            if "missed" not in problem:
                click.echo(f"{'':<20} {problem}")
    if damage.describe():
        click.echo(f"jobctl status: warning: {damage.describe()}", err=True)


@jobctl.command(name="run", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("job")
@click.argument("job_arguments", nargs=-1, type=click.UNPROCESSED)
def run_command(job: str, job_arguments: tuple[str, ...]) -> None:
    """Run JOB now (dailySync or daily-sync), with trigger manual; any further options go to the job."""
    try:
        entry = _entry_or_usage(job)
    except UsageError as error:
        click.echo(f"jobctl run: error: {error}", err=True)
        sys.exit(error.exit_code)
    os.execv(entry.script_path, [str(entry.script_path), *job_arguments])


@jobctl.command(name="catch-up")
@click.option("--dry-run", is_flag=True, help="Say which jobs would run, run none.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl catch-up")
def catch_up_command(dry_run: bool, verbose: bool) -> None:
    """Run, once, each job whose latest IST slot passed (beyond the grace) with no good run since."""
    settings = load_settings()
    share_with_group(settings.get("core.home_group"))
    now = settings.now()
    worst = 0
    for entry in read_schedule():
        if not entry.script_path.exists():
            continue
        health = job_health(settings, entry, now)
        if not health.overdue:
            continue
        if health.running_pid:
            click.echo(
                f"{entry.job}: {plural(health.missed_slots, 'slot')} missed, but a run is going on "
                f"(pid {health.running_pid})"
            )
            continue
        click.echo(
            f"{entry.job}: {plural(health.missed_slots, 'slot')} missed; {'would run' if dry_run else 'running'} it once"
        )
        if not dry_run:
            code = subprocess.run([str(entry.script_path), "--trigger", "catchup"], check=False).returncode
            worst = max(worst, code)
    sys.exit(worst)


@jobctl.command(name="export")
@click.option(
    "--format", "export_format", type=click.Choice(("systemd", "windows", "k8s")), required=True, help="The scheduler."
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Folder to write to [default: $CASEJOBS_HOME/export/FORMAT]."
)
@click.option(
    "--windows-project", default="C:\\casejobs", show_default=True, help="The project folder on the Windows host."
)
@click.option("--image", default="casejobs:latest", show_default=True, help="The container image (k8s).")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl export")
def export_command(export_format: str, out: str | None, windows_project: str, image: str, verbose: bool) -> None:
    """Write the schedule for systemd timers, Windows Task Scheduler or Kubernetes, from crontab.ist."""
    settings = load_settings()
    share_with_group(settings.get("core.home_group"))
    folder = Path(out) if out else settings.home / "export" / export_format
    entries = [entry for entry in read_schedule() if entry.script_path.exists()]
    files: dict[str, bytes] = {}
    if export_format == "systemd":
        files = {
            name: text.encode() for name, text in export.systemd_units(entries, PROJECT_ROOT, settings.home).items()
        }
    elif export_format == "windows":
        files = {f"casejobs-{entry.script}.xml": export.windows_task(entry, windows_project) for entry in entries}
    else:
        files = {f"casejobs-{entry.script}.yaml": export.kubernetes_cronjob(entry, image).encode() for entry in entries}
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        temporary = folder / f".{name}.tmp"
        temporary.write_bytes(data)
        temporary.replace(folder / name)
    click.echo(f"wrote {len(files)} files to {folder}")


if __name__ == "__main__":
    main(jobctl)
