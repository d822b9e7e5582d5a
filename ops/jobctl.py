"""bin/jobctl: operations on casejobs.

The database (db init, db seed); the schedule (install, uninstall, status,
export); running jobs by hand (run) and catching up missed runs (catch-up).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from jobs import REGISTRY
from lib import alerts, clock, crontab, export, offsite
from lib.cli import main, plural, report_errors
from lib.db import check_database_file, connect
from lib.errors import CasejobsError, ConfigError, UsageError
from lib.health import CRITICAL, LEVEL_NAMES, check_job, headlines, installed_at, job_health, mark_installed
from lib.history import latest, process_alive
from lib.home import create_home, share_with_group
from lib.jobspec import JobSpec
from lib.ledger import Damage
from lib.log import get_logger
from lib.migration import copy_before_migrating, inspect, migrate_all
from lib.scales import SCALES
from lib.schedule import LAUNCHER
from lib.schema import SCHEMA_VERSION
from lib.settings import load_settings
from lib.stats import run_summary
from ops import doctor, windows


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
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl db init")
def database_init(db: str | None, dry_run: bool, verbose: bool) -> None:
    """Create the database, or bring it to the current schema: all or nothing, safe to run again.

    The database is inspected first, read-only: one whose tables break the
    contract of data-model.md is refused and left byte for byte as it was.
    A database that holds data is copied next to the backups before it changes.
    """
    settings = load_settings({"core.db": db})
    share_with_group(settings.get("core.home_group"))
    path = settings.database_path
    if path.exists():
        check_database_file(path)
    try:
        inspection = inspect(path)
    except sqlite3.DatabaseError as error:
        raise ConfigError(f"database {path} (CASEJOBS_DB) cannot be read: {error}") from None
    if inspection.problems:
        raise ConfigError(
            f"database {path} does not meet the casejobs contract (data-model.md), so nothing was changed: "
            + "; ".join(inspection.problems)
        )
    if inspection.current:
        click.echo(f"{path} is already at schema version {inspection.version}")
        return
    backups = settings.home / "backups"
    copy_first = inspection.exists and not inspection.empty
    if dry_run:
        if copy_first:
            click.echo(f"would copy {path} into {backups} first")
        click.echo(f"would create {', '.join(inspection.to_create) or 'nothing'}")
        if inspection.version != SCHEMA_VERSION:
            click.echo(f"would set the schema version from {inspection.version} to {SCHEMA_VERSION}")
        return
    _make_database_folder(settings.home, path)
    database = connect(path, settings.get("core.busy_timeout_ms"), create=True)
    try:
        if copy_first:
            create_home(settings.home)
            copy = copy_before_migrating(database.conn, backups, settings.now())
            click.echo(f"copied {path} to {copy} first")
        version = migrate_all(database)
    finally:
        database.close()
    verb = "created" if not inspection.exists else "migrated"
    click.echo(
        f"{verb} {path} at schema version {version}: {plural(len(inspection.to_create), 'table or index', 'tables or indexes')} added"
    )


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
    from lib.seed import seed_database  # here: the seeder is demo data, never on a job's import path

    settings = load_settings({"core.db": db})
    share_with_group(settings.get("core.home_group"))
    path = settings.database_path
    _make_database_folder(settings.home, path)
    database = connect(path, settings.get("core.busy_timeout_ms"), create=True)
    try:
        migrate_all(database)
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


def _job_or_usage(job: str) -> JobSpec:
    spec = REGISTRY.find(job)
    if spec is None:
        known = ", ".join(f"{spec.name} ({spec.script})" for spec in REGISTRY)
        raise UsageError(f"unknown job {job!r}; known jobs: {known}")
    return spec


WINDOWS_OPTIONS = (
    click.option(
        "--scheduler",
        type=click.Choice(("cron", "windows")),
        default="cron",
        show_default=True,
        help="cron (your crontab) or windows (Task Scheduler, with schtasks).",
    ),
    click.option("--windows-user", default=getpass.getuser, show_default="you", help="The account the tasks run as."),
    click.option(
        "--windows-logon",
        type=click.Choice(("s4u", "password")),
        default="s4u",
        show_default=True,
        help="s4u: no password stored, no network shares; password: asks for it once, reaches shares.",
    ),
    click.option(
        "--windows-project", help="The install folder on Windows (holding .venv) [default: this one on Windows]."
    ),
)


def windows_options(command: Callable) -> Callable:
    for option in reversed(WINDOWS_OPTIONS):
        command = option(command)
    return command


@jobctl.command(name="install")
@click.option("--dry-run", is_flag=True, help="Print the exact block (or schtasks commands), change nothing.")
@click.option("--host-tz", help="The zone cron keeps time in [default: this host's].")
@click.option("--cron-flavor", type=click.Choice(crontab.FLAVORS), help="The cron daemon [default: detected].")
@click.option(
    "--write-config",
    is_flag=True,
    help="Copy the settings that reach this shell but not cron into the config file (mode 0600), then install.",
)
@windows_options
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl install")
def install_command(
    dry_run: bool,
    host_tz: str | None,
    cron_flavor: str | None,
    write_config: bool,
    scheduler: str,
    windows_user: str,
    windows_logon: str,
    windows_project: str | None,
    verbose: bool,
) -> None:
    """Put crontab.ist into your crontab, inside one managed block (installing twice changes nothing).

    It refuses (exit 78) when a job's settings reach this shell but would not
    reach cron (those it would fail without, and optional ones such as
    encryption or a ping URL it would run without), and lists them with the
    config-file lines to add; then it prints doctor's checklist.
    """
    settings = load_settings()
    share_with_group(settings.get("core.home_group"))
    if scheduler == "windows":
        windows.install_tasks(settings, dry_run, windows_project, windows_user, windows_logon, click.echo)
        if not dry_run and installed_at(settings.home) is None:
            mark_installed(settings.home, settings.now())
        return
    plan = crontab.plan_block(settings.home, REGISTRY.entries(), cron_flavor, host_tz, settings.now())
    current = crontab.read_crontab()
    # Before anything is written: a shell with the wrong home must not create that home, nor its config.
    elsewhere = crontab.other_home(crontab.installed_block(current), settings.home)
    if elsewhere:
        refusal = (
            f"the installed block runs the jobs with CASEJOBS_HOME={elsewhere}, not this shell's {settings.home}; "
            f"set CASEJOBS_HOME={elsewhere} to update that installation, or bin/jobctl uninstall first to move it here"
        )
        if not dry_run:
            raise ConfigError(refusal)
        click.echo(f"jobctl install: the real install refuses: {refusal}", err=True)
    if dry_run:
        click.echo("\n".join(plan.lines))
        shell_only = doctor.shell_only_settings(settings, plan.lines)
        if shell_only:  # on stderr: stdout stays the exact block
            click.echo(
                f"jobctl install: {', '.join(shell_only)} {'reaches' if len(shell_only) == 1 else 'reach'} "
                "this shell but not cron; the real install "
                "refuses until they are in the config file (--write-config puts them there)",
                err=True,
            )
        return
    missing = doctor.settings_missing_under_cron(settings, plan.lines)
    config_path = settings.get("core.config")
    if missing and not write_config:
        raise ConfigError(_missing_settings_message(missing, config_path))
    create_home(settings.home)
    if missing:
        doctor.write_to_config(config_path, missing)
        click.echo(f"wrote {plural(len({item.key for item in missing}), 'setting')} to {config_path} (mode 0600)")
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
    checks = doctor.run_checks(settings)
    click.echo("")
    for check in checks:
        click.echo(check.line())
    click.echo(doctor.verdict_line(checks))


def _missing_settings_message(missing: list[doctor.Missing], config_path: Path) -> str:
    """One line: which settings would not reach cron, and the config-file lines that would fix it."""
    failing = sorted({item.job for item in missing if item.fails})
    without = sorted({item.job for item in missing if not item.fails} - set(failing))
    consequences = [f"{', '.join(failing)} would fail under cron"] if failing else []
    consequences += [f"{', '.join(without)} would run under cron without them"] if without else []
    variables = sorted({item.variable for item in missing})
    by_section: dict[str, list[str]] = {}
    for item in {item.key: item for item in missing}.values():
        section = item.key.split(".", 1)[0]
        by_section.setdefault("" if section == "core" else f"[{section}] ", []).append(item.config_line())
    lines = "; ".join(f"{section}{', '.join(entries)}" for section, entries in sorted(by_section.items()))
    return (
        f"{'; '.join(consequences)}: {', '.join(variables)} reach this shell but not cron. "
        f"Add them to {config_path} ({lines}), or run: bin/jobctl install --write-config"
    )


@jobctl.command(name="doctor")
@click.option("--probe", is_flag=True, help="Also connect to SMTP (EHLO and login, no mail) and ask eCourts once.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON with stable keys instead of the checklist.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl doctor")
def doctor_command(probe: bool, as_json: bool, verbose: bool) -> None:
    """Check what a real installation needs, one line each with the fix: the interpreter, the
    database, the home, free space, cron and the schedule, each job's settings as cron will see
    them, the secret files and each job's last run. Exit 0 all good, 1 warnings, 2 something will fail.
    """
    try:
        settings = load_settings()
    except ConfigError as error:  # the checklist's first item, not the end of it: the rest needs the settings
        checks = [doctor.Check("settings", CRITICAL, str(error), "correct the setting or the config file it names")]
    else:
        share_with_group(settings.get("core.home_group"))
        checks = doctor.run_checks(settings, probe)
    level = doctor.verdict(checks)
    if as_json:
        report = {"checks": [check.as_dict() for check in checks], "verdict": LEVEL_NAMES[level], "exit_code": level}
        click.echo(json.dumps(report, indent=2))
    else:
        for check in checks:
            click.echo(check.line())
        click.echo(doctor.verdict_line(checks))
    sys.exit(level)


def _schedule_words(schedule: dict[str, Any], home: Path) -> str:
    """The status line's words for the crontab block: installed, current, for this home."""
    if not schedule["installed"]:
        return "not installed (jobctl install)"
    if schedule["other_home"]:
        return (
            f"installed for CASEJOBS_HOME={schedule['other_home']}, not this shell's {home}: "
            "set CASEJOBS_HOME to it to see that installation"
        )
    return "installed" + ("" if schedule["current"] else ", but differs from crontab.ist: run jobctl install")


@jobctl.command(name="uninstall")
@click.option("--wait", "wait_for_jobs", is_flag=True, help="Then wait for running jobs to finish.")
@click.option("--stop", "stop_jobs", is_flag=True, help="Then send running jobs SIGTERM (they finish their item).")
@click.option(
    "--scheduler",
    type=click.Choice(("cron", "windows")),
    default="cron",
    show_default=True,
    help="Where to remove from.",
)
@click.option(
    "--dry-run", is_flag=True, help="Print what would be removed (the block, or the schtasks commands); change nothing."
)
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl uninstall")
def uninstall_command(wait_for_jobs: bool, stop_jobs: bool, scheduler: str, dry_run: bool, verbose: bool) -> None:
    """Remove the casejobs block from your crontab (every other line stays as it was), or the Windows tasks."""
    if wait_for_jobs and stop_jobs:
        raise UsageError("give --wait or --stop, not both")
    settings = load_settings()
    share_with_group(settings.get("core.home_group"))
    if scheduler == "windows":
        windows.uninstall_tasks(dry_run, click.echo)
        return
    current = crontab.read_crontab()
    block = crontab.installed_block(current)
    if block is None:
        click.echo("no casejobs block in the crontab")
    elif dry_run:
        click.echo("would remove the casejobs block (nothing changed):")
        click.echo("\n".join(block))
    else:
        crontab.write_crontab(crontab.without_block(current))
        click.echo("removed the casejobs block")
    if dry_run or not (wait_for_jobs or stop_jobs):
        return
    running = {}
    for entry in REGISTRY.entries():
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
        current = crontab.plan_block(settings.home, REGISTRY.entries(), now=now).lines
        schedule: dict[str, Any] = {
            "installed": block is not None,
            "current": block == current,
            "other_home": crontab.other_home(block, settings.home),
            "error": None,
        }
    except CasejobsError as error:
        schedule = {"installed": None, "current": None, "other_home": None, "error": str(error)}
    damage = Damage()
    installed_time = installed_at(settings.home)
    jobs = {}
    healths = []
    for entry in REGISTRY.entries():
        health = job_health(settings, entry, now, damage)
        healths.append(health)
        problems = check_job(health, now, installed_time is not None, installed_time)
        jobs[entry.job] = {
            "running": health.running_pid is not None,
            "running_pid": health.running_pid,
            "last_run": run_summary(health.state.last_worked),
            "next_run": entry.next_run(now).isoformat(timespec="seconds"),
            **health.as_dict(),
            "problems": [f"{LEVEL_NAMES[level]} {line}" for level, line in problems],
        }
    report = {
        "generated_at": clock.to_ist(now).isoformat(timespec="seconds"),
        "schedule": schedule,
        "jobs": jobs,
        "headlines": headlines(healths, now),
        "damaged_lines": damage.lines,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    state = schedule["error"] or _schedule_words(schedule, settings.home)
    click.echo(f"schedule: {state}")
    for line in report["headlines"]:
        click.echo(line)
    for name, job in jobs.items():
        last = job["last_run"]
        flags = [f"running (pid {job['running_pid']})"] if job["running"] else []
        flags += [f"OVERDUE: {plural(job['missed_slots'], 'slot')} missed"] if job["overdue"] else []
        last_text = f"{last['started_at']} {last['status']}" if last else "never"
        next_text = job["next_run"][:16]
        click.echo(f"{name:<20} last {last_text:<34} next {next_text}  {'  '.join(flags)}".rstrip())
        for problem in job["problems"]:
            if "missed" not in problem:
                click.echo(f"{'':<20} {problem}")
    if damage.describe():
        click.echo(f"jobctl status: warning: {damage.describe()}", err=True)


@jobctl.group(name="offsite")
def offsite_group() -> None:
    """The off-site backup folder (CASEJOBS_BACKUP_OFFSITE_DIR)."""


@offsite_group.command(name="init")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl offsite init")
def offsite_init(folder: str, verbose: bool) -> None:
    """Mark FOLDER (a mounted share, USB disk or synced folder) as the off-site destination: a folder
    without this marker is taken for an unmounted share, and nothing is copied there."""
    if not folder.strip():
        raise CasejobsError("name the folder: jobctl offsite init /mnt/nas/casejobs")
    path = Path(folder).absolute()
    settings = load_settings()
    if offsite.init_folder(path, settings.home, settings.now()):
        click.echo(f"{path} is now an off-site destination ({offsite.MARKER} written)")
    else:
        click.echo(f"{path} is already an off-site destination ({offsite.MARKER} is there)")
    configured = None if "backup.offsite_dir" in settings.errors else settings.get("backup.offsite_dir")
    if configured is None or configured.absolute() != path:
        click.echo(f"nightlyBackup copies there once CASEJOBS_BACKUP_OFFSITE_DIR={path} (or offsite_dir in [backup])")


# Its own help is taken by hand: `jobctl run daily-sync -h` is the job's help, `jobctl run -h` this one's.
@jobctl.command(
    name="run",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.argument("job")
@click.argument("job_arguments", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run_command(context: click.Context, job: str, job_arguments: tuple[str, ...]) -> None:
    """Run JOB now (dailySync or daily-sync), with trigger manual; any further options go to the job
    (`jobctl run daily-sync -h` shows the job's own)."""
    if job in ("-h", "--help"):
        click.echo(context.get_help())
        return
    try:
        spec = _job_or_usage(job)
    except UsageError as error:
        click.echo(f"jobctl run: error: {error}", err=True)
        sys.exit(error.exit_code)
    os.execv(LAUNCHER, [str(LAUNCHER), spec.script, *job_arguments])


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
    overdue = 0
    for entry in REGISTRY.entries():
        health = job_health(settings, entry, now)
        if not health.overdue:
            continue
        overdue += 1
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
            code = subprocess.run([*entry.command, "--trigger", "catchup"], check=False).returncode
            worst = max(worst, code)
    if dry_run and not overdue:
        click.echo("nothing to catch up: no job has missed its latest slot")
    if not dry_run:
        # Every job, every 15 minutes: one that stopped running turns CRITICAL without a run of its own.
        try:
            for change in alerts.look(settings, REGISTRY.entries(), get_logger()):
                click.echo(f"alert mailed: {change}")
        except Exception as error:  # the jobs it ran say how catch-up ends, not an alert
            click.echo(f"jobctl catch-up: warning: alerts not looked at: {type(error).__name__}: {error}", err=True)
    sys.exit(worst)


@jobctl.command(name="export")
@click.option(
    "--format", "export_format", type=click.Choice(("systemd", "windows", "k8s")), required=True, help="The scheduler."
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Folder to write to [default: $CASEJOBS_HOME/export/FORMAT]."
)
@click.option(
    "--windows-project", help="The install folder on the Windows host (holding .venv) [default: C:\\casejobs]."
)
@click.option(
    "--windows-logon", type=click.Choice(("s4u", "password")), default="s4u", show_default=True, help="Task logon."
)
@click.option("--image", default="casejobs:latest", show_default=True, help="The container image (k8s).")
@click.option(
    "--user", default=getpass.getuser, show_default="you", help="The account the jobs run as (systemd, Windows)."
)
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl export")
def export_command(
    export_format: str,
    out: str | None,
    windows_project: str | None,
    windows_logon: str,
    image: str,
    user: str,
    verbose: bool,
) -> None:
    """Write the schedule for systemd timers, Windows Task Scheduler or Kubernetes, from crontab.ist."""
    settings = load_settings()
    share_with_group(settings.get("core.home_group"))
    folder = Path(out) if out else settings.home / "export" / export_format
    entries = REGISTRY.entries()
    files: dict[str, bytes] = {}
    limits = windows.job_limits(settings)
    if export_format == "systemd":
        passed = {name: os.environ[name] for name in ("CASEJOBS_DB", "CASEJOBS_CONFIG") if os.environ.get(name)}
        units = export.systemd_units(entries, LAUNCHER, settings.home, user, passed, limits)
        files = {name: text.encode() for name, text in units.items()}
    elif export_format == "windows":
        files = windows.task_xml(settings, windows_project, user, windows_logon)
    else:
        files = {
            f"casejobs-{entry.script}.yaml": export.kubernetes_cronjob(entry, image, limits[entry.job]).encode()
            for entry in entries
        }
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        temporary = folder / f".{name}.tmp"
        temporary.write_bytes(data)
        temporary.replace(folder / name)
    click.echo(f"wrote {len(files)} files to {folder}")


def run() -> None:
    """The console script casejobs-jobctl (pyproject.toml): the same as bin/jobctl."""
    main(jobctl)


if __name__ == "__main__":
    run()
