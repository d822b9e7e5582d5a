"""Shared fixtures: real SQLite files, a CASEJOBS_HOME per test, and the bin/ scripts run as cron runs them."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib.db import connect
from lib.ecourts_sim import Simulator, SimulatorServer
from lib.migration import migrate_all
from tests.builders import Dataset

PROJECT = Path(__file__).resolve().parent.parent
BIN = PROJECT / "bin"
ECOURTS_TOKEN = "tok-test-5ecret-1234"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh CASEJOBS_HOME."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def database_path(home: Path) -> Path:
    """A migrated, empty database file at $CASEJOBS_HOME/casejobs.db."""
    path = home / "casejobs.db"
    database = connect(path, create=True)
    migrate_all(database)
    database.close()
    return path


@pytest.fixture
def dataset(database_path: Path) -> Iterator[Dataset]:
    """A builder of hand-made rows in the test database."""
    connection = sqlite3.connect(database_path)
    yield Dataset(connection)
    connection.close()


@pytest.fixture
def job_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point this process's settings at the test's home (for jobs run in-process)."""
    for name in list(os.environ):
        if name.startswith("CASEJOBS_") or name == "APP_MODE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("CASEJOBS_HOME", str(home))
    return home


def cron_environment(home: Path, **extra: str) -> dict[str, str]:
    """Return the bare environment cron gives a job (env -i plus the crontab's variables)."""
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(home.parent), "SHELL": "/bin/sh", "CASEJOBS_HOME": str(home)}
    if os.environ.get("CASEJOBS_VENV"):  # make test-lowest: the bin/ scripts use its virtualenv
        environment["CASEJOBS_VENV"] = os.environ["CASEJOBS_VENV"]
    environment.update(extra)
    return environment


def run_script(
    script: str, *arguments: str, home: Path, timeout: float = 120, **environment: str
) -> subprocess.CompletedProcess[str]:
    """Run bin/<script> as cron would: bare environment, started from another working directory."""
    return subprocess.run(
        [str(BIN / script), *arguments],
        env=cron_environment(home, **environment),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_script(script: str, *arguments: str, home: Path, **environment: str) -> subprocess.Popen[str]:
    """Start bin/<script> as cron would and return the running process (stderr piped)."""
    return subprocess.Popen(
        [str(BIN / script), *arguments],
        env=cron_environment(home, **environment),
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def ecourts() -> Iterator[tuple[Simulator, SimulatorServer]]:
    """The eCourts simulator served on 127.0.0.1 for one test (stopped at its end)."""
    simulator = Simulator(token=ECOURTS_TOKEN, today=dt.date(2026, 11, 25), timeout_seconds=5)
    server = SimulatorServer(simulator).start()
    try:
        yield simulator, server
    finally:
        server.stop()


def ecourts_environment(server: SimulatorServer, **extra: str) -> dict[str, str]:
    """Settings that point a job at the test's simulator, fast: no real waiting between requests."""
    return {
        "CASEJOBS_ECOURTS_BASE_URL": server.base_url,
        "CASEJOBS_ECOURTS_TOKEN": ECOURTS_TOKEN,
        "CASEJOBS_ECOURTS_RATE_PER_MINUTE": "60000",
        "CASEJOBS_ECOURTS_BACKOFF_MS": "20",
        "CASEJOBS_ECOURTS_READ_TIMEOUT": "1",
        **extra,
    }


TRACKED = ("bin", "jobs", "lib", "ops", "docs", "crontab.ist", "Makefile", "pyproject.toml", "requirements.lock")


@pytest.fixture
def fresh_copy(tmp_path: Path) -> Path:
    """The project as a fresh clone has it, sharing this checkout's virtualenv (a symlink)."""
    copy = tmp_path / "casejobs"
    copy.mkdir()
    for name in (*TRACKED, "config.example.toml"):
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / name)
    # The locked virtualenv (make venv's), even under make test-lowest: the copy is a clone that ran make venv.
    (copy / ".venv").symlink_to(PROJECT / ".venv")
    return copy


@pytest.fixture
def user_crontab() -> Iterator[None]:
    """This user's real crontab, put back as it was after the test."""
    saved = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    try:
        yield
    finally:
        if saved.returncode == 0:
            subprocess.run(["crontab", "-"], input=saved.stdout, text=True, check=True)
        else:
            subprocess.run(["crontab", "-r"], capture_output=True, check=False)
