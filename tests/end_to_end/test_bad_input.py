"""Bad input: a one-line error, a non-zero exit, nothing written, no traceback (unless -v)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_script


def assert_one_line_error(result, exit_code: int, *words: str) -> None:
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def ledger_is_empty(home: Path) -> bool:
    folder = home / "ledger"
    return not folder.exists() or not any(folder.glob("*.jsonl"))


def test_unknown_job_name(home: Path) -> None:
    assert_one_line_error(run_script("jobstats", "--job", "nightlySink", home=home), 2, "unknown job", "nightlySink")


def test_bad_since(home: Path) -> None:
    assert_one_line_error(run_script("jobstats", "--since", "last tuesday", home=home), 2, "--since")


def test_unknown_option(home: Path) -> None:
    result = run_script("user-pending-refresh", "--frobnicate", home=home)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_missing_database(home: Path) -> None:
    result = run_script("user-pending-refresh", home=home, CASEJOBS_DB=str(home / "nowhere.db"))
    assert_one_line_error(result, 78, "CASEJOBS_DB", "does not exist", "jobctl db init")
    assert ledger_is_empty(home)
    assert not (home / "nowhere.db").exists()


def test_a_file_that_is_not_sqlite(home: Path) -> None:
    (home / "casejobs.db").write_text("these are my notes, not a database\n" * 20)
    assert_one_line_error(run_script("user-pending-refresh", home=home), 78, "not an SQLite database")
    assert ledger_is_empty(home)


def test_an_unreadable_database(home: Path, database_path: Path) -> None:
    database_path.unlink()
    database_path.mkdir()
    assert_one_line_error(run_script("user-pending-refresh", home=home), 78, "CASEJOBS_DB")


def test_a_schema_newer_than_the_code(home: Path, database_path: Path) -> None:
    connection = sqlite3.connect(database_path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    assert_one_line_error(run_script("user-pending-refresh", home=home), 78, "schema version 99", "newer")
    assert_one_line_error(run_script("jobctl", "db", "init", home=home), 78, "newer")
    assert ledger_is_empty(home)


def test_a_schema_older_than_the_code_asks_for_init(home: Path, database_path: Path) -> None:
    connection = sqlite3.connect(database_path)
    connection.execute("PRAGMA user_version = 1")
    connection.close()
    assert_one_line_error(run_script("user-pending-refresh", home=home), 78, "jobctl db init")
    assert run_script("jobctl", "db", "init", home=home).returncode == 0
    assert run_script("user-pending-refresh", home=home).returncode == 0


@pytest.mark.parametrize("script", ["user-pending-refresh", "jobstats"])
def test_a_bad_frozen_clock(home: Path, database_path: Path, script: str) -> None:
    result = run_script(script, home=home, CASEJOBS_NOW="half past six")
    assert_one_line_error(result, 78, "CASEJOBS_NOW")
    assert ledger_is_empty(home)


def test_an_unwritable_home(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    home = blocker / "home"  # a folder cannot be made inside a file, even by root
    result = run_script("user-pending-refresh", home=home)
    assert_one_line_error(result, 78, "CASEJOBS_HOME", "not writable")


def test_a_broken_config_file(home: Path, database_path: Path) -> None:
    (home / "casejobs.toml").write_text("[core\nlog_format = json\n")
    assert_one_line_error(run_script("user-pending-refresh", home=home), 78, "casejobs.toml", "not valid TOML")
    assert ledger_is_empty(home)


def test_an_unknown_setting_in_the_config_file(home: Path, database_path: Path) -> None:
    (home / "casejobs.toml").write_text('log_formt = "json"\n')
    assert_one_line_error(run_script("user-pending-refresh", home=home), 78, "unknown setting core.log_formt")


def test_a_bad_setting_value_names_the_variable(home: Path, database_path: Path) -> None:
    result = run_script("user-pending-refresh", home=home, CASEJOBS_LOG_FORMAT="xml")
    assert_one_line_error(result, 78, "CASEJOBS_LOG_FORMAT")


def test_verbose_shows_the_traceback(home: Path) -> None:
    result = run_script("user-pending-refresh", "-v", home=home, CASEJOBS_DB=str(home / "nowhere.db"))
    assert result.returncode == 78
    assert "Traceback" in result.stderr


def test_a_missing_virtualenv_is_one_line(tmp_path: Path) -> None:
    import shutil
    import subprocess

    copy = tmp_path / "copy"
    shutil.copytree(Path(__file__).resolve().parents[2] / "bin", copy / "bin")
    result = subprocess.run([str(copy / "bin" / "jobstats")], capture_output=True, text=True, check=False)
    assert_one_line_error(result, 78, "no virtualenv", "make venv")
