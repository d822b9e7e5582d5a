"""Bad input: a one-line error, a non-zero exit, nothing written, no traceback (unless -v)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from tests.conftest import run_script
from tests.helpers import ledger_lines


def assert_one_line_error(result, exit_code: int, *words: str) -> None:
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def ledger_is_empty(home: Path) -> bool:
    folder = home / "ledger"
    return not folder.exists() or not any(folder.rglob("*.jsonl"))


def only_a_config_line(home: Path, *words: str, job: str = "userPendingRefresh") -> bool:
    """True when the run left one `config` finish line naming the words, and created nothing else."""
    (line,) = ledger_lines(home, job)
    assert (line["event"], line["status"], line["exit_code"]) == ("finish", "config", 78)
    assert all(word in line["error"] for word in words), line["error"]
    created = {path.name for path in home.iterdir()} - {"casejobs.db", "casejobs.db-wal", "casejobs.db-shm"}
    assert created <= {"ledger", "casejobs.toml"}, created
    return True


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
    assert only_a_config_line(home, "CASEJOBS_DB", "does not exist")
    assert not (home / "nowhere.db").exists()


def test_a_file_that_is_not_sqlite(home: Path) -> None:
    (home / "casejobs.db").write_text("these are my notes, not a database\n" * 20)
    assert_one_line_error(run_script("user-pending-refresh", home=home), 78, "not an SQLite database")
    assert only_a_config_line(home, "not an SQLite database")


def test_an_unreadable_database(home: Path, database_path: Path) -> None:
    database_path.unlink()
    database_path.mkdir()
    assert_one_line_error(run_script("user-pending-refresh", home=home), 78, "CASEJOBS_DB")


def test_a_schema_newer_than_the_code(home: Path, database_path: Path) -> None:
    connection = sqlite3.connect(database_path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    assert_one_line_error(run_script("user-pending-refresh", home=home), 78, "schema version 99", "newer")
    assert only_a_config_line(home, "schema version 99")
    assert_one_line_error(run_script("jobctl", "db", "init", home=home), 78, "newer")


def test_a_table_or_index_dropped_at_the_current_version_is_named_and_put_back(home: Path, database_path: Path) -> None:
    connection = sqlite3.connect(database_path)
    connection.execute("INSERT INTO users (name, email, role) VALUES ('Asha Rao', 'asha@firm.example', 'LAWYER')")
    connection.execute("DROP TABLE user_pending_summaries")
    connection.execute("DROP INDEX tasks_by_case")
    connection.commit()
    connection.close()

    refused = run_script("user-pending-refresh", home=home)
    doctor = run_script("jobctl", "doctor", home=home)
    dry = run_script("jobctl", "db", "init", "--dry-run", home=home)
    repaired = run_script("jobctl", "db", "init", home=home)
    again = run_script("jobctl", "db", "init", home=home)
    refreshed = run_script("user-pending-refresh", home=home)

    assert refused.returncode == 1 and "no such table: user_pending_summaries" in refused.stderr
    assert "✗ database:" in doctor.stdout and "lacks table user_pending_summaries, index tasks_by_case" in doctor.stdout
    assert dry.stdout.splitlines()[-1] == "would create table user_pending_summaries, index tasks_by_case"
    assert repaired.returncode == 0 and "2 tables or indexes added" in repaired.stdout
    assert "is already at schema version" in again.stdout
    assert refreshed.returncode == 0, refreshed.stderr
    names = {name for (name,) in sqlite3.connect(database_path).execute("SELECT name FROM sqlite_master")}
    assert {"user_pending_summaries", "tasks_by_case"} <= names
    assert sqlite3.connect(database_path).execute("SELECT count(*) FROM users").fetchone() == (1,)  # data kept


def test_a_schema_older_than_the_code_asks_for_init(home: Path, database_path: Path) -> None:
    connection = sqlite3.connect(database_path)
    connection.execute("PRAGMA user_version = 1")
    connection.close()
    assert_one_line_error(run_script("user-pending-refresh", home=home), 78, "jobctl db init")
    assert run_script("jobctl", "db", "init", home=home).returncode == 0
    assert run_script("user-pending-refresh", home=home).returncode == 0


def test_a_bad_frozen_clock_is_recorded_at_the_real_time(home: Path, database_path: Path) -> None:
    result = run_script("user-pending-refresh", home=home, CASEJOBS_NOW="half past six")
    assert_one_line_error(result, 78, "CASEJOBS_NOW")
    assert only_a_config_line(home, "CASEJOBS_NOW")
    assert ledger_lines(home, "userPendingRefresh")[0]["ts"][:4] == str(dt.datetime.now(dt.UTC).year)


def test_a_bad_frozen_clock_in_jobstats_writes_nothing(home: Path) -> None:
    assert_one_line_error(run_script("jobstats", home=home, CASEJOBS_NOW="half past six"), 78, "CASEJOBS_NOW")
    assert list(home.iterdir()) == []


def test_a_home_that_is_not_a_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_script("user-pending-refresh", home=blocker, CASEJOBS_DB=str(tmp_path / "x.db"))
    assert_one_line_error(result, 78, "CASEJOBS_DB")
    result = run_script("user-pending-refresh", home=blocker / "home")
    assert_one_line_error(result, 78, "does not exist")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]


def test_a_mistyped_home_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "casejbos"
    result = run_script("user-pending-refresh", home=home, CASEJOBS_DB=str(tmp_path / "x.db"))
    assert result.returncode == 78 and not home.exists()


def test_a_broken_config_file(home: Path, database_path: Path) -> None:
    (home / "casejobs.toml").write_text("[core\nlog_format = json\n")
    assert_one_line_error(run_script("user-pending-refresh", home=home), 78, "casejobs.toml", "not valid TOML")
    assert only_a_config_line(home, "not valid TOML")


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
    result = subprocess.run(
        [str(copy / "bin" / "jobstats")], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=False
    )
    assert_one_line_error(result, 78, "no virtualenv", "make venv")


def test_a_lib_folder_where_cron_starts_us_is_never_imported(home: Path, database_path: Path, tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import BIN, cron_environment

    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "__init__.py").write_text("raise SystemExit('the wrong lib was imported')\n")
    result = subprocess.run(
        [str(BIN / "user-pending-refresh")], env=cron_environment(home), cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
