"""`pip install` of the project makes one launcher per command (an .exe on Windows, a script here), and an
installed copy finds its crontab.ist and its home without the project folder."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from jobs import REGISTRY
from tests.conftest import PROJECT

SCRIPTS = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the project installed from a copy of its files (as `pip install .` would)."""
    work = tmp_path_factory.mktemp("install")
    source = work / "casejobs"
    subprocess.run(
        [
            "git",
            "-C",
            str(PROJECT),
            "archive",
            "--format=tar",
            "--prefix=casejobs/",
            "-o",
            str(work / "src.tar"),
            "HEAD",
        ],
        check=True,
    )
    subprocess.run(["tar", "-xf", str(work / "src.tar"), "-C", str(work)], check=True)
    for name in ("pyproject.toml", "crontab.ist", "requirements.lock"):  # the working tree's, under test
        (source / name).write_bytes((PROJECT / name).read_bytes())
    for folder in ("jobs", "lib", "ops"):
        subprocess.run(["cp", "-r", str(PROJECT / folder), str(source)], check=True)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--require-hashes", "--no-deps", "-r", str(PROJECT / "requirements.lock")], check=True)
    subprocess.run([*pip, "--no-deps", str(source)], check=True, cwd=work)
    return venv


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_console_script_answers_help(installed: Path, script: str) -> None:
    result = subprocess.run(
        [str(installed / "bin" / script), "--help"], capture_output=True, text=True, cwd="/", check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_an_installed_copy_finds_its_schedule_and_runs_a_job(installed: Path, tmp_path: Path) -> None:
    assert (installed / "share" / "casejobs" / "crontab.ist").exists()
    home = tmp_path / "home"
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CASEJOBS_HOME": str(home)}
    assert subprocess.run([str(installed / "bin" / "casejobs-jobctl"), "db", "init"], env=environment).returncode == 0
    ran = subprocess.run(
        [str(installed / "bin" / "casejobs-run-job"), "user-pending-refresh"], env=environment, capture_output=True
    )
    stats = subprocess.run(
        [str(installed / "bin" / "casejobs-jobstats"), "--json"], env=environment, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    report = json.loads(stats.stdout)
    assert list(report["jobs"]) == [spec.name for spec in REGISTRY]  # crontab.ist found under share/casejobs
    assert report["jobs"]["userPendingRefresh"]["status_counts"]["success"] == 1
