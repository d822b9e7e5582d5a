"""jobctl doctor: what a real installation needs, checked one line each, with the fix in words.

Every check returns a Check: its stable name (the JSON key), a level (0 ok,
1 warning, 2 something will fail), what was found and, when it is not ok,
what to do. The settings are checked as cron will see them: each job's
script runs with `--check-config` in cron's bare environment plus the
variables of the crontab block, never the current shell's.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from jobs import REGISTRY
from lib import crontab
from lib.db import DatabaseBusy, check_database_file, connect, with_busy_retry
from lib.encryption import opens_any, read_identities
from lib.errors import CasejobsError, ConfigError
from lib.health import CRITICAL, LEVEL_NAMES, OK, WARNING, check_job, installed_at, ist_words, job_health
from lib.home import POLICY, PRIVATE_FOLDER, SHARED_FOLDER
from lib.migration import inspect
from lib.offsite import destination_problem, writing_problem
from lib.retention import packages_in
from lib.schedule import Entry
from lib.schema import SCHEMA_VERSION
from lib.settings import Settings, all_settings, resource

LOCK_FILE = resource("requirements.lock")
STATUS_WORDS = {OK: "ok", WARNING: "warning", CRITICAL: "fail"}


@dataclass
class Check:
    """One line of the checklist."""

    name: str
    level: int
    message: str
    fix: str | None = None

    @property
    def status(self) -> str:
        return STATUS_WORDS[self.level]

    def line(self) -> str:
        mark = "✓" if self.level == OK else "✗"
        fix = f"\n    fix: {self.fix}" if self.fix and self.level != OK else ""
        return f"{mark} {self.name}: {self.message}{fix}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "level": LEVEL_NAMES[self.level], "status": self.status}


def check_python() -> Check:
    """The interpreter, the virtualenv, and whether its packages are the locked versions."""
    version = ".".join(map(str, sys.version_info[:3]))
    in_venv = sys.prefix != sys.base_prefix
    if not in_venv:
        return Check(
            "python", WARNING, f"Python {version} outside a virtualenv", "run casejobs through bin/ (make venv)"
        )
    if not LOCK_FILE.exists():
        return Check("python", OK, f"Python {version} in {sys.prefix}")
    drift = _locked_versions_that_differ()
    if drift:
        return Check(
            "python",
            WARNING,
            f"Python {version} in {sys.prefix}, but {', '.join(drift)} differ from requirements.lock",
            "make venv",
        )
    return Check("python", OK, f"Python {version} in {sys.prefix}, packages as in requirements.lock")


def _locked_versions_that_differ() -> list[str]:
    if not LOCK_FILE.exists():
        return []
    drift = []
    for line in LOCK_FILE.read_text().splitlines():
        name, separator, version = line.split(" ")[0].partition("==")
        if not separator or line.startswith((" ", "#")):
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            drift.append(f"{name} (missing)")
            continue
        if installed != version:
            drift.append(f"{name} {installed} (locked {version})")
    return drift


def check_database(settings: Settings) -> Check:
    """The database: there, SQLite, the contract met at the current version, a write lock within reach."""
    path = settings.database_path
    try:
        check_database_file(path)
        inspection = inspect(path)
    except (CasejobsError, OSError) as error:
        return Check("database", CRITICAL, str(error), "point CASEJOBS_DB at the application's database")
    except Exception as error:  # sqlite3.DatabaseError and friends: not a database we can read
        return Check("database", CRITICAL, f"{path} cannot be read: {error}", "point CASEJOBS_DB at the database")
    if inspection.problems:
        return Check(
            "database",
            CRITICAL,
            f"{path} does not meet the contract: {'; '.join(inspection.problems)}",
            "this is not the case-management application's database (see docs/data-model.md)",
        )
    if inspection.version != SCHEMA_VERSION:
        return Check(
            "database",
            CRITICAL,
            f"{path} is at schema version {inspection.version}, the jobs need {SCHEMA_VERSION}",
            "back it up, then: bin/jobctl db init --dry-run; bin/jobctl db init",
        )
    if inspection.to_create:
        # A missing table fails the jobs that read it; a missing index only slows them.
        tables_missing = any(name.startswith("table ") for name in inspection.to_create)
        return Check(
            "database",
            CRITICAL if tables_missing else WARNING,
            f"{path} is at schema version {SCHEMA_VERSION} but lacks {', '.join(inspection.to_create)}",
            "bin/jobctl db init puts back what is missing (a copy of the database is made first)",
        )
    try:
        database = connect(path, min(settings.get("core.busy_timeout_ms"), 2000))
        try:
            with_busy_retry(database.conn, lambda: database.conn.execute("BEGIN IMMEDIATE"))
            database.conn.execute("ROLLBACK")
        finally:
            database.close()
    except DatabaseBusy:
        return Check(
            "database",
            WARNING,
            f"{path} meets the contract, but another program holds its write lock right now",
            "if this lasts, the application may hold the file with locking_mode=EXCLUSIVE",
        )
    return Check("database", OK, f"{path}: schema version {SCHEMA_VERSION}, contract met, write lock taken")


def check_home(settings: Settings) -> Check:
    """The home: there, writable, and private (or shared with CASEJOBS_HOME_GROUP only)."""
    home = settings.home
    if not home.is_dir():
        return Check("home", CRITICAL, f"{home} does not exist", f"bin/jobctl db init, or: mkdir -m 700 {home}")
    if not os.access(home, os.W_OK | os.X_OK):
        return Check("home", CRITICAL, f"{home} cannot be written by this user", f"chown -R $USER {home}")
    expected = SHARED_FOLDER if POLICY.group_id is not None else PRIVATE_FOLDER
    loose = [
        f"{folder.name or folder} ({oct(folder.stat().st_mode & 0o7777)})"
        for folder in (home / name for name in ("ledger", "lock", "log", "backups"))
        if folder.is_dir() and folder.stat().st_mode & 0o007
    ]
    if loose:
        return Check(
            "home", WARNING, f"{home} is writable, but readable by others: {', '.join(loose)}", f"chmod -R o-rwx {home}"
        )
    return Check("home", OK, f"{home} is writable, its folders {expected & 0o777:o} or tighter")


def check_free_space(settings: Settings) -> Check:
    """Room for the next backup: the last package (or the database) twice over, for the copy and the package."""
    folder = settings.home / "backups"
    packages = [path for _, path in packages_in(folder)]
    basis = (
        packages[0].stat().st_size
        if packages
        else (settings.database_path.stat().st_size if settings.database_path.exists() else 0)
    )
    database = settings.database_path.stat().st_size if settings.database_path.exists() else 0
    needed = database + basis + (64 << 20)
    where = folder if folder.is_dir() else settings.home
    if not where.exists():
        return Check("free space", WARNING, f"{where} does not exist yet", "bin/jobctl db init")
    free = shutil.disk_usage(where).free
    words = f"{free >> 20} MiB free in {where}; the next backup needs about {needed >> 20} MiB"
    if free < needed:
        return Check(
            "free space",
            CRITICAL,
            words,
            f"free some space on the disk of {where}, or lower CASEJOBS_BACKUP_RETENTION_DAYS",
        )
    return Check("free space", OK, words)


def check_cron(settings: Settings) -> list[Check]:
    """cron: installed, its daemon running, its flavor and zone; and our block in the crontab."""
    flavor = crontab.detect_flavor()
    if flavor == crontab.NOT_INSTALLED:
        return [
            Check(
                "cron",
                CRITICAL,
                "cron not installed (no crontab program)",
                "apt-get install cron (or use systemd timers: bin/jobctl export --format systemd)",
            )
        ]
    zone = crontab.detect_host_zone()
    method = "honours CRON_TZ" if flavor in crontab.FLAVORS_WITH_CRON_TZ else "ignores CRON_TZ: times are translated"
    running = crontab.daemon_running()
    checks = []
    if running is False:
        checks.append(
            Check(
                "cron",
                CRITICAL,
                f"{flavor} cron is installed but its daemon is not running",
                "systemctl enable --now cron",
            )
        )
    else:
        checks.append(Check("cron", OK, f"{flavor} cron, daemon running, host zone {zone}, {method}"))
    checks.append(check_block(settings))
    return checks


def check_block(settings: Settings) -> Check:
    """Our crontab block: installed, and the same as crontab.ist would give today."""
    try:
        block = crontab.installed_block(crontab.read_crontab())
        wanted = crontab.plan_block(settings.home, REGISTRY.entries(), now=settings.now()).lines
    except CasejobsError as error:
        return Check("schedule", CRITICAL, str(error), "bin/jobctl install")
    if block is None:
        return Check("schedule", WARNING, "no casejobs block in this user's crontab", "bin/jobctl install")
    elsewhere = crontab.other_home(block, settings.home)
    if elsewhere:
        return Check(
            "schedule",
            WARNING,
            f"the installed block runs the jobs with CASEJOBS_HOME={elsewhere}, not {settings.home}",
            f"set CASEJOBS_HOME={elsewhere} in this shell (or bin/jobctl uninstall, then install, to move it here)",
        )
    if block != wanted:
        return Check("schedule", WARNING, "the installed block differs from crontab.ist", "bin/jobctl install")
    return Check("schedule", OK, "the casejobs block is installed and matches crontab.ist")


def cron_environment(settings: Settings, block: list[str] | None = None) -> dict[str, str]:
    """The environment cron gives a job: its bare one plus the variables of a block (by default the
    installed one, else what install would write)."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/"),
        "SHELL": "/bin/sh",
        "LOGNAME": os.environ.get("LOGNAME", os.environ.get("USER", "")),
    }
    if block is None:
        with contextlib.suppress(CasejobsError):
            block = crontab.installed_block(crontab.read_crontab())
    if block is None:
        block = crontab.plan_block(
            settings.home, REGISTRY.entries(), flavor="debian", host_zone="UTC", now=settings.now()
        ).lines
    return {**environment, **crontab.block_environment(block)}


def check_job_settings(entry: Entry, environment: dict[str, str]) -> dict[str, Any]:
    """Run the job's script with --check-config in the given environment; return its JSON report."""
    try:
        result = subprocess.run(
            [*entry.command, "--check-config"],
            env=environment,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"job": entry.job, "ok": False, "error": f"the script could not be run: {error}", "sources": {}}
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        reason = result.stderr.strip().splitlines()[-1:] or [f"exit {result.returncode}"]
        return {"job": entry.job, "ok": False, "error": reason[0], "sources": {}}


def check_settings_as_cron(settings: Settings, entries: list[Entry]) -> list[Check]:
    """Each job's settings, as cron will see them: bare environment, block variables, config file."""
    environment = cron_environment(settings)
    checks = []
    for entry in entries:
        report = check_job_settings(entry, environment)
        name = f"settings of {entry.job}"
        if report["ok"]:
            sources = _sources_in_words(report["sources"])
            checks.append(Check(name, OK, f"complete under cron{': ' + sources if sources else ''}"))
        else:
            checks.append(
                Check(
                    name,
                    CRITICAL,
                    f"under cron: {report['error']}",
                    f"correct the setting, or add it, in the config file {settings.get('core.config')} "
                    "(bin/jobctl install --write-config copies those this shell sets)",
                )
            )
    return checks


def _sources_in_words(sources: dict[str, str]) -> str:
    """Where each setting came from, grouped by origin: "from the crontab block CASEJOBS_HOME; from
    /home/firm/casejobs/casejobs.toml: ecourts.base_url, ecourts.token_file"."""
    by_origin: dict[str, list[str]] = {}
    for key, source in sorted(sources.items()):
        origin, _, from_file = source.rpartition(":")
        if origin and from_file == key:
            by_origin.setdefault(origin, []).append(key)
        else:
            by_origin.setdefault("the environment", []).append(source)
    return "; ".join(f"from {origin}: {', '.join(keys)}" for origin, keys in by_origin.items())


def shell_only_settings(settings: Settings, block: list[str] | None = None) -> list[str]:
    """The CASEJOBS_* variables this shell sets that cron would not see (neither in the crontab block
    nor, as their key, in the config file), by name; a command line's own ones (SHELL_ONLY) aside."""
    cron = cron_environment(settings, block)
    return sorted(
        setting.environment_variable
        for setting in all_settings()
        if os.environ.get(setting.environment_variable, "") != ""
        and setting.key not in SHELL_ONLY
        and setting.environment_variable not in cron
        and setting.key not in settings.in_config_file
    )


def check_shell_only(settings: Settings) -> Check:
    """Settings this shell gives that cron would not: the jobs would run without them (or fail)."""
    variables = shell_only_settings(settings)
    if not variables:
        return Check("settings only in this shell", OK, "none: cron sees what this shell sees")
    return Check(
        "settings only in this shell",
        WARNING,
        f"{', '.join(variables)} {'reaches' if len(variables) == 1 else 'reach'} this shell but not cron: "
        "the jobs would run without them",
        f"add them to {settings.get('core.config')}, or run: bin/jobctl install --write-config",
    )


def check_secret_files(settings: Settings) -> list[Check]:
    """The files holding the token, the SMTP password and the drill's private key: readable by their
    owner only."""
    checks = []
    for key in ("ecourts.token_file", "smtp.password_file", "backup.drill_identity"):
        try:
            path = settings.get(key)
        except CasejobsError:
            continue
        if path is None:
            continue
        if not path.exists():
            checks.append(Check(key, CRITICAL, f"{path} does not exist", f"create it: install -m 600 /dev/null {path}"))
        elif os.name == "posix" and path.stat().st_mode & 0o077:
            checks.append(Check(key, CRITICAL, f"{path} is readable by others", f"chmod 600 {path}"))
        elif key == "backup.drill_identity":
            checks.append(check_drill_identity(settings, path))
        else:
            checks.append(Check(key, OK, f"{path} is private"))
    return checks


def check_drill_identity(settings: Settings, path: Path) -> Check:
    """The drill's key file: private, holding an age identity, and one that opens what the nightly
    backup encrypts (its public key among CASEJOBS_BACKUP_ENCRYPT_TO's recipients)."""
    key = "backup.drill_identity"
    try:
        identities = read_identities(path, "drill identity")
    except CasejobsError as error:
        return Check(key, CRITICAL, str(error), "give it the private key file age-keygen wrote (AGE-SECRET-KEY-1…)")
    try:
        recipients = settings.get("backup.encrypt_to") or ()
    except CasejobsError as error:
        return Check(key, WARNING, f"{path} is private, but the backup's recipients cannot be read: {error}")
    if not recipients:
        return Check(key, OK, f"{path} is private (the packages are not encrypted: the drill needs no key)")
    if not opens_any(identities, recipients):
        return Check(
            key,
            CRITICAL,
            f"{path} holds no key for the recipients the backup encrypts to: the drill could open no package",
            "give it the private key of one of CASEJOBS_BACKUP_ENCRYPT_TO's recipients",
        )
    return Check(key, OK, f"{path} is private and opens the packages")


def check_last_runs(settings: Settings, entries: list[Entry]) -> list[Check]:
    """Each job's last run, as jobstats --check judges it."""
    now = settings.now()
    installed = installed_at(settings.home)
    checks = []
    for entry in entries:
        health = job_health(settings, entry, now)
        problems = check_job(health, now, installed is not None, installed)
        name = f"last run of {entry.job}"
        if problems:
            level = max(level for level, _ in problems)
            words = "; ".join(text.removeprefix(f"{entry.job}: ") for _, text in problems)
            checks.append(Check(name, level, words, "bin/jobstats --check"))
        else:
            last = health.state.last_worked
            checks.append(
                Check(name, OK, f"{last.status}, started {ist_words(last.started_at, now)}" if last else "running")
            )
    return checks


def probe_smtp(settings: Settings) -> Check:
    """Connect to the SMTP server, say EHLO, start TLS and log in as configured; send nothing."""
    from lib.mailer import Mailer, MailError, SmtpConfig

    try:
        config = SmtpConfig.from_settings(settings)
    except CasejobsError as error:
        return Check("smtp", CRITICAL, str(error), "fix the SMTP settings")
    if config is None:
        return Check("smtp", OK, "not configured: digests stay in the application")
    mailer = Mailer(config)
    try:
        mailer.connect_only()
    except MailError as error:
        return Check(
            "smtp", CRITICAL, f"{config.host}:{config.port}: {error}", "check CASEJOBS_SMTP_* and the password"
        )
    finally:
        mailer.close()
    login = f", logged in as {config.user}" if config.user else ""
    return Check("smtp", OK, f"{config.host}:{config.port} answered ({config.security}){login}")


def probe_ecourts(settings: Settings) -> Check:
    """Ask eCourts for one known CNR with the token; a 200 or 404 proves the address and the token."""
    import httpx

    from lib.ecourts import ClientConfig

    try:
        base = settings.get("ecourts.base_url")
        token = settings.secret("ecourts.token")
    except CasejobsError as error:
        return Check("ecourts", CRITICAL, str(error), "fix the eCourts settings")
    if not base or not token:
        return Check(
            "ecourts", CRITICAL, "CASEJOBS_ECOURTS_BASE_URL or the token is not set", "set both in the config file"
        )
    if base.startswith("sim:"):
        return Check("ecourts", OK, "the built-in simulator (sim://)")
    config = ClientConfig.from_settings(settings)
    try:
        answer = httpx.get(
            f"{config.base_url}/api/partner/case/MHAU010000012023",
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
        )
    except httpx.HTTPError as error:
        return Check(
            "ecourts",
            CRITICAL,
            f"{config.base_url} cannot be reached: {type(error).__name__}",
            "check the URL and the network",
        )
    if answer.status_code in (200, 404):
        return Check("ecourts", OK, f"{config.base_url} answered {answer.status_code}: the token is accepted")
    return Check(
        "ecourts", CRITICAL, f"{config.base_url} answered {answer.status_code}", "check the token and the account"
    )


def check_offsite(settings: Settings) -> Check:
    """Where the backups go besides this disk: the off-site folder, mounted (its marker there) or not."""
    if "backup.offsite_dir" in settings.errors:
        return Check("off-site copy", CRITICAL, settings.errors["backup.offsite_dir"])
    folder = settings.get("backup.offsite_dir")
    if folder is None:
        return Check(
            "off-site copy", OK, "none: the backups stay on this disk (README: Backups that survive the office)"
        )
    problem = destination_problem(folder, settings.home)
    if problem:
        return Check("off-site copy", WARNING, problem, f"mount it, then once: bin/jobctl offsite init {folder}")
    newest = packages_in(settings.home / "backups")
    problem = writing_problem(folder, newest[0][1].stat().st_size if newest else 0)
    if problem:
        return Check("off-site copy", WARNING, problem, "give the share room and write access (the copy waits)")
    encrypted = (
        "encrypted" if settings.get("backup.encrypt_to") else "NOT encrypted (CASEJOBS_BACKUP_OFFSITE_PLAINTEXT=1)"
    )
    return Check(
        "off-site copy", OK, f"{folder}: mounted, {shutil.disk_usage(folder).free >> 20} MiB free; {encrypted}"
    )


def run_checks(settings: Settings, probe: bool = False) -> list[Check]:
    """Return every check, in the order a person fixes things."""
    entries = REGISTRY.entries()
    steps: list[Callable[[], Check | list[Check]]] = [
        check_python,
        lambda: check_database(settings),
        lambda: check_home(settings),
        lambda: check_free_space(settings),
        lambda: check_offsite(settings),
        lambda: check_cron(settings),
        lambda: check_settings_as_cron(settings, entries),
        lambda: check_shell_only(settings),
        lambda: check_secret_files(settings),
        lambda: check_last_runs(settings, entries),
    ]
    if probe:
        steps += [lambda: probe_smtp(settings), lambda: probe_ecourts(settings)]
    checks: list[Check] = []
    for step in steps:
        found = step()
        checks += found if isinstance(found, list) else [found]
    return checks


def verdict(checks: list[Check]) -> int:
    """0 all good, 1 warnings, 2 something will fail (the convention of jobstats --check)."""
    return max((check.level for check in checks), default=OK)


def verdict_line(checks: list[Check]) -> str:
    level = verdict(checks)
    failing = sum(check.level == CRITICAL for check in checks)
    warning = sum(check.level == WARNING for check in checks)
    if level == OK:
        return "doctor: all good"
    return f"doctor: {failing} will fail, {warning} to look at"


@dataclass(frozen=True)
class Missing:
    """A setting that reaches this shell but would not reach cron."""

    job: str
    key: str
    variable: str
    secret: bool
    fails: bool  # the job would fail under cron without it (else it would run without it)

    def config_line(self) -> str:
        """The line to add to the config file, under its [section] (a secret's value is not shown)."""
        name = self.key.split(".", 1)[1]
        if self.secret:
            return f"{name} = {json.dumps(f'<the value of {self.variable}>')}"
        return f"{name} = {_toml_value(os.environ.get(self.variable, ''))}"


# Settings for one command line, never for cron: a frozen clock, the log format of a terminal, a testing delay.
SHELL_ONLY = frozenset({"core.now", "core.log_format", "core.debug_item_delay_ms"})


def settings_missing_under_cron(settings: Settings, block: list[str]) -> list[Missing]:
    """Return the settings each job takes from this shell's environment that cron would not give it:
    those without which it would fail, and the optional ones (encryption, the off-site folder, SMTP, a
    ping URL) without which it would run differently."""
    secret_keys = {setting.key for setting in all_settings() if setting.secret}
    variables = {setting.key: setting.environment_variable for setting in all_settings()}
    cron = cron_environment(settings, block)
    missing: list[Missing] = []
    for entry in REGISTRY.entries():
        here = check_job_settings(entry, dict(os.environ))
        if not here["ok"]:
            continue  # its settings are wrong in this shell too: doctor's checklist says how
        under_cron = check_job_settings(entry, cron)
        fails = not under_cron["ok"]
        for key, source in sorted(here["sources"].items()):
            if key in SHELL_ONLY or source != variables.get(key) or source in cron or key in settings.in_config_file:
                continue  # a key the file has reaches cron (a value that differs from the shell's is the file's)
            if fails or key not in under_cron["sources"]:
                missing.append(Missing(entry.job, key, source, key in secret_keys, fails))
    return missing


def write_to_config(path: Path, missing: list[Missing]) -> None:
    """Add the missing settings, with their values from this shell, to the TOML config file (0600).

    Each line goes under its [section] (core settings above the first table),
    and everything the file held stays as it was: comments, order, types,
    line endings; a key the file already has is left to it. The result must
    read back as the old document plus the new keys before it replaces the
    file; the old file is kept beside it as <name>.bak.
    """
    original = path.read_bytes().decode("utf-8") if path.exists() else ""
    try:
        before = tomllib.loads(original)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML ({error}); mend it first") from None
    added = [item for item in {item.key: item for item in missing}.values() if not _has_key(before, item.key)]
    if not added:
        return
    by_section: dict[str, list[str]] = {}
    for item in added:
        section, name = item.key.split(".", 1)
        by_section.setdefault(section, []).append(f"{name} = {_toml_value(os.environ[item.variable])}")
    lines = original.splitlines()
    for section, entries in by_section.items():
        lines = _with_lines_in_section(lines, section, entries)
    newline = "\r\n" if "\r\n" in original else "\n"
    text = newline.join(lines) + newline
    if not _reads_as(text, before, added):
        shown = "; ".join(f"[{item.key.split('.', 1)[0]}] {item.config_line()}" for item in added)  # no secret
        raise ConfigError(
            f"could not add the settings to {path} without changing what it says; add these lines by hand: {shown}"
        )
    if path.exists():
        shutil.copy2(path, path.with_name(path.name + ".bak"))
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(text.encode("utf-8"))
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def _has_key(document: dict[str, Any], key: str) -> bool:
    """True when a TOML document sets the dotted setting key (core ones at its top level)."""
    section, name = key.split(".", 1)
    table = document if section == "core" else document.get(section)
    return isinstance(table, dict) and name in table


def _reads_as(text: str, before: dict[str, Any], added: list[Missing]) -> bool:
    """True when the TOML text reads as the document before plus each added setting with this shell's
    value, and nothing else changed."""
    try:
        after = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    expected = copy.deepcopy(before)
    for item in added:
        section, name = item.key.split(".", 1)
        table = expected if section == "core" else expected.setdefault(section, {})
        table[name] = tomllib.loads(f"value = {_toml_value(os.environ[item.variable])}")["value"]
    return after == expected


_TABLE_HEADER = re.compile(r"\s*\[\s*([A-Za-z0-9_-]+)\s*\]\s*(#.*)?")


def _with_lines_in_section(lines: list[str], section: str, entries: list[str]) -> list[str]:
    """Return the file's lines with entries placed under [section]: core ones above the first table,
    others right after their table's header, or in a new table at the end."""
    if section == "core":
        first_table = next((index for index, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
        at = first_table
        while at > 0 and not lines[at - 1].strip():
            at -= 1  # after the last top-level line, before the blank lines that set the first table apart
        spacer = [""] if at == first_table < len(lines) else []
        return [*lines[:at], *entries, *spacer, *lines[at:]]
    for index, line in enumerate(lines):
        header = _TABLE_HEADER.fullmatch(line)
        if header and header.group(1) == section:
            return [*lines[: index + 1], *entries, *lines[index + 1 :]]
    return [*lines, *([""] if lines else []), f"[{section}]", *entries]


def _toml_value(value: str) -> str:
    """A shell value as TOML: a whole number bare, anything else a quoted string."""
    return value if re.fullmatch(r"0|-?[1-9][0-9]{0,17}", value) else json.dumps(value)
