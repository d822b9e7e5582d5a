"""Settings that would disable a protection or break at run time are refused before anything is written:
one line naming the setting and its range, exit 78, and inside the home only the `config` ledger line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_script
from tests.helpers import ledger_lines

SIM = {"CASEJOBS_ECOURTS_BASE_URL": "sim://", "CASEJOBS_ECOURTS_TOKEN": "demo-token"}
SMTP = {"CASEJOBS_SMTP_HOST": "127.0.0.1", "CASEJOBS_SMTP_SECURITY": "none"}

CASES = [
    # (script, arguments, environment, the words the one line must hold)
    ("daily-sync", (), {**SIM, "CASEJOBS_ECOURTS_RATE_PER_MINUTE": "nan"}, "from 0.1 to 60000"),
    ("daily-sync", (), {**SIM, "CASEJOBS_ECOURTS_RATE_PER_MINUTE": "inf"}, "from 0.1 to 60000"),
    ("daily-sync", (), {**SIM, "CASEJOBS_ECOURTS_RATE_PER_MINUTE": "1e300"}, "from 0.1 to 60000"),
    ("daily-sync", (), {**SIM, "CASEJOBS_ECOURTS_BASE_URL": "abc"}, "CASEJOBS_ECOURTS_BASE_URL"),
    ("daily-sync", (), {**SIM, "CASEJOBS_ECOURTS_BASE_URL": "http://ecourts.example"}, "https://"),
    ("daily-sync", (), {**SIM, "CASEJOBS_ECOURTS_TOKEN": "éx"}, "printable ASCII"),
    ("daily-sync", (), {**SIM, "CASEJOBS_SYNC_MIN_HOURS": "99999999999999999999"}, "from 0 to 8760"),
    (
        "sla-check",
        (),
        {"CASEJOBS_SMTP_TIMEOUT": "0"},
        "CASEJOBS_SMTP_TIMEOUT='0': must be a whole number from 1 to 300",
    ),
    ("sla-check", (), {"CASEJOBS_SMTP_TIMEOUT": "1e300"}, "CASEJOBS_SMTP_TIMEOUT"),
    ("sla-check", (), {"CASEJOBS_SLA_WARNING_DAYS": "99999999999"}, "from 0 to 365"),
    ("sla-check", (), {**SMTP, "CASEJOBS_SMTP_HOST": "mail.firm.example"}, "CASEJOBS_SMTP_ALLOW_PLAINTEXT=1"),
    ("sla-check", (), {"CASEJOBS_SMTP_PASSWORD": "pa\x01ss"}, "printable ASCII"),
    ("user-pending-refresh", ("--max-runtime", "9999999999"), {}, "--max-runtime='9999999999'"),
    ("user-pending-refresh", (), {"CASEJOBS_NOW": "0001-01-01T00:00:00"}, "CASEJOBS_NOW"),
    ("user-pending-refresh", (), {"CASEJOBS_NOW": "9999-12-31T23:59:59+00:00"}, "2000 to 2099"),
    ("user-pending-refresh", (), {"CASEJOBS_BUSY_TIMEOUT_MS": "-1"}, "from 0 to 600000"),
    ("user-pending-refresh", (), {"CASEJOBS_MAX_RUNTIME": "\u0663"}, "from 1 to 86400"),  # an Arabic-Indic 3
    ("user-pending-refresh", (), {"CASEJOBS_BUSY_TIMEOUT_MS": "1_0"}, "from 0 to 600000"),
    ("daily-sync", (), {**SIM, "CASEJOBS_ECOURTS_RATE_PER_MINUTE": "\u0665"}, "from 0.1 to 60000"),
    ("user-pending-refresh", (), {"CASEJOBS_MONITOR_USER_PENDING_REFRESH_URL": "http://ping.example/x"}, "https://"),
    ("jobstats", (), {"CASEJOBS_OPS_CATCH_UP_GRACE_MINUTES": "99999999999"}, "from 0 to 1440"),
    ("jobctl", ("catch-up",), {"CASEJOBS_OPS_CATCH_UP_GRACE_MINUTES": "nan"}, "from 0 to 1440"),
]
JOBS = {"daily-sync": "dailySync", "sla-check": "slaCheck", "user-pending-refresh": "userPendingRefresh"}


@pytest.mark.parametrize(("script", "arguments", "environment", "words"), CASES, ids=lambda value: str(value)[:40])
def test_a_hostile_setting_is_refused_in_one_line(
    home: Path, database_path: Path, script: str, arguments: tuple[str, ...], environment: dict, words: str
) -> None:
    before = {path.name for path in home.iterdir()}

    result = run_script(script, *arguments, home=home, **environment)

    assert result.returncode == 78, (result.returncode, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert words in result.stderr, result.stderr
    for secret in ("pa\x01ss", "éx"):
        assert secret not in result.stderr
    created = {path.name for path in home.iterdir()} - before
    if script in JOBS:
        assert created == {"ledger"}, created
        (line,) = ledger_lines(home, JOBS[script])
        assert (line["status"], line["exit_code"]) == ("config", 78)
    else:
        assert created == set(), created


def test_a_config_file_that_is_not_utf8_is_one_line(home: Path, database_path: Path) -> None:
    (home / "casejobs.toml").write_bytes(b'app_mode = "desk\xfftop"\n')
    result = run_script("user-pending-refresh", home=home)
    assert result.returncode == 78 and "not UTF-8" in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_token_file_with_other_than_printable_ascii_is_refused(
    home: Path, database_path: Path, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_bytes("tok\u00e9n\n".encode())
    token.chmod(0o600)
    result = run_script(
        "daily-sync", home=home, CASEJOBS_ECOURTS_BASE_URL="sim://", CASEJOBS_ECOURTS_TOKEN_FILE=str(token)
    )
    assert result.returncode == 78 and "printable ASCII" in result.stderr


def test_a_bad_setting_of_one_job_never_stops_another(home: Path, database_path: Path) -> None:
    result = run_script(
        "user-pending-refresh", home=home, CASEJOBS_ECOURTS_RATE_PER_MINUTE="nan", CASEJOBS_SMTP_TIMEOUT="0"
    )
    assert result.returncode == 0, result.stderr


def test_a_far_since_means_everything(home: Path) -> None:
    result = run_script("jobstats", "--since", "99999999d", home=home)
    assert result.returncode == 0 and "since the start of the ledger" in result.stdout


def test_smtp_in_clear_is_allowed_to_a_local_relay_or_on_purpose(home: Path, database_path: Path) -> None:
    local = run_script("sla-check", "--dry-run", home=home, **SMTP)
    on_purpose = run_script(
        "sla-check",
        "--dry-run",
        home=home,
        **{**SMTP, "CASEJOBS_SMTP_HOST": "mail.firm.example"},
        CASEJOBS_SMTP_ALLOW_PLAINTEXT="1",
    )
    assert (local.returncode, on_purpose.returncode) == (0, 0), local.stderr + on_purpose.stderr


def test_a_monitor_is_told_critical_of_a_bad_setting_and_doctor_lists_it(home: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[backup\nretention_days = 30\n")

    check = run_script("jobstats", "--check", home=home, CASEJOBS_OPS_CATCH_UP_GRACE_MINUTES="99999999999")
    file_check = run_script("jobstats", "--check", home=home, CASEJOBS_CONFIG=str(broken))
    doctor = run_script("jobctl", "doctor", "--json", home=home, CASEJOBS_CONFIG=str(broken))

    assert check.returncode == 2, check  # Nagios reads 0, 1 or 2: a configuration error is CRITICAL, never 78
    assert check.stdout.startswith("CRITICAL configuration error: ") and "from 0 to 1440" in check.stdout
    assert file_check.returncode == 2 and "is not valid TOML" in file_check.stdout
    report = json.loads(doctor.stdout)
    assert doctor.returncode == 2 and report["exit_code"] == 2
    (first,) = report["checks"]
    assert first["name"] == "settings" and first["status"] == "fail" and "is not valid TOML" in first["message"]


def test_a_home_that_does_not_exist_is_said(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-home"

    summary = run_script("jobstats", home=missing)
    check = run_script("jobstats", "--check", home=missing)

    assert summary.returncode == 78 and f"CASEJOBS_HOME {missing} does not exist" in summary.stderr
    assert check.returncode == 2 and check.stdout.startswith(f"CRITICAL CASEJOBS_HOME {missing} does not exist")
    assert not missing.exists()


def test_the_config_file_cannot_name_the_home_it_lives_in(home: Path, database_path: Path) -> None:
    (home / "casejobs.toml").write_text('home = "/elsewhere"\n')
    elsewhere = run_script("user-pending-refresh", home=home)
    (home / "casejobs.toml").write_text(f'home = "{home}"\n')
    same = run_script("user-pending-refresh", home=home)

    assert elsewhere.returncode == 78 and "differs from" in elsewhere.stderr, elsewhere.stderr
    assert "set CASEJOBS_HOME instead" in elsewhere.stderr
    assert same.returncode == 0, same.stderr  # naming the home it lives in is harmless


def test_since_in_the_future_is_refused(home: Path) -> None:
    result = run_script("jobstats", "--since", "3000-01-01", home=home)

    assert result.returncode == 2 and "is in the future" in result.stderr
