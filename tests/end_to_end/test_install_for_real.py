"""The first real installation, as the README tells it: the demo and its examples on a fresh copy,
`make clean`, the "Install for real" steps on a firm's database, `jobctl install`'s refusal, and doctor."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from jobs import REGISTRY
from tests.conftest import BIN, PROJECT, cron_environment, run_script

needs_crontab = pytest.mark.skipif(shutil.which("crontab") is None, reason="needs the crontab program")


def readme_blocks(marker: str) -> list[str]:
    """Return the shell blocks of the README marked `<!-- marker -->` on the line before, in order."""
    text = (PROJECT / "README.md").read_text()
    return re.findall(rf"<!-- {marker} -->\n```sh\n(.*?)```", text, flags=re.S)


def shell(
    script: str, cwd: Path, environment: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def bare_environment(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home), "LANG": "C.UTF-8", "SHELL": "/bin/bash"}


@pytest.mark.slow
def test_every_readme_example_runs_after_make_demo(fresh_copy: Path, tmp_path: Path) -> None:
    environment = bare_environment(tmp_path)
    demo = shell("make demo", fresh_copy, environment)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "dailySync" in demo.stdout and (fresh_copy / "demo" / "casejobs.db").exists()
    assert not (fresh_copy / "var").exists()  # the demo keeps to its own folder

    blocks = readme_blocks("example")
    assert blocks, "the README marks its examples"
    for block in blocks:
        result = shell(block, fresh_copy, environment)
        assert result.returncode == 0, (block, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_make_clean_removes_the_virtualenv_and_the_demo_but_never_a_home(fresh_copy: Path, tmp_path: Path) -> None:
    environment = bare_environment(tmp_path)
    assert shell("make demo", fresh_copy, environment).returncode == 0
    real_home = fresh_copy / "var"
    (real_home / "backups").mkdir(parents=True)
    package = real_home / "backups" / "casejobs-backup-2026-11-24.zip"
    package.write_bytes(b"a firm's backup")
    ledger = real_home / "ledger" / "dailySync" / "2026-11.jsonl"
    ledger.parent.mkdir(parents=True)
    ledger.write_text('{"v": 1}\n')

    result = shell("make clean", fresh_copy, environment)

    assert result.returncode == 0, result.stderr
    assert not (fresh_copy / ".venv").exists() and not (fresh_copy / "demo").exists()
    assert package.read_bytes() == b"a firm's backup" and ledger.read_text() == '{"v": 1}\n'
    assert (PROJECT / ".venv" / "bin" / "python").exists()  # only the link went, never what it points at


def firm_database(path: Path) -> Path:
    """The firm's database as the application left it: its tables (our contract) and its data, no casejobs yet."""
    connection = sqlite3.connect(path)
    from lib.schema import MIGRATIONS

    connection.executescript(MIGRATIONS[0])
    connection.execute("INSERT INTO users (name, email, role) VALUES ('Asha Rao', 'asha@firm.example', 'LAWYER')")
    connection.execute("INSERT INTO cases (case_number, status, lawyer_id) VALUES ('CASE-2026-000001', 'OPEN', 1)")
    connection.commit()
    connection.close()
    return path


@pytest.mark.slow
@needs_crontab
def test_install_for_real_as_the_readme_says(fresh_copy: Path, tmp_path: Path, user_crontab) -> None:
    user_home = tmp_path / "user"
    user_home.mkdir()
    firm_db = firm_database(tmp_path / "CaseApp.db")
    environment = {
        **bare_environment(user_home),
        "FIRM_DB": str(firm_db),
        "ECOURTS_URL": "https://ecourts.example",
        "ECOURTS_TOKEN": "tok-firm-1234",
    }
    steps = readme_blocks("install-step")
    assert len(steps) == 4

    result = shell("\n".join(steps), fresh_copy, environment)

    assert result.returncode == 0, result.stdout + result.stderr
    home = user_home / "casejobs"
    assert (home / "before-casejobs.db").exists()
    (copy,) = (home / "backups").glob("pre-migration-*.db")
    assert oct(copy.stat().st_mode & 0o777) == "0o600"  # it holds every secret column
    assert sqlite3.connect(firm_db).execute("PRAGMA user_version").fetchone()[0] >= 3
    assert "installed the casejobs block" in result.stdout
    crontab = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=True).stdout
    assert f"CASEJOBS_HOME={home}" in crontab and f"CASEJOBS_DB={firm_db}" in crontab
    for entry in REGISTRY.entries():  # every job's settings as cron will see them: bare environment, block, config
        assert f"✓ settings of {entry.job}" in result.stdout, result.stdout
    assert "tok-firm-1234" not in result.stdout + result.stderr + crontab


def test_config_example_holds_every_setting(tmp_path: Path) -> None:
    import tomllib

    from jobs import REGISTRY  # noqa: F401 - declares every job's settings
    from lib.settings import all_settings, load_settings

    SETTINGS = all_settings()

    text = (PROJECT / "config.example.toml").read_text()
    tomllib.loads(text)
    section = "core"
    seen = set()
    for line in text.splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            section = header.group(1)
        key = re.fullmatch(r"#? ?(\w+) = .*", line)
        if key:
            seen.add(f"{section}.{key.group(1)}")
    assert seen == {setting.key for setting in SETTINGS}
    for setting in SETTINGS:
        assert setting.allowed in text, setting.key
    scopes = sorted({setting.section for setting in SETTINGS})
    load_settings({}, {"CASEJOBS_CONFIG": str(PROJECT / "config.example.toml")}, scopes=scopes)


# --- install's refusal, --write-config, and doctor ------------------------------------------


@needs_crontab
def test_install_refuses_settings_that_would_not_reach_cron(home: Path, database_path: Path, user_crontab) -> None:
    shell_only = {"CASEJOBS_ECOURTS_BASE_URL": "https://ecourts.example", "CASEJOBS_ECOURTS_TOKEN": "tok-shell-9876"}

    refused = run_script("jobctl", "install", "--cron-flavor", "debian", home=home, **shell_only)

    assert refused.returncode == 78, refused.stdout + refused.stderr
    assert "dailySync would fail under cron" in refused.stderr
    assert "CASEJOBS_ECOURTS_BASE_URL" in refused.stderr and "CASEJOBS_ECOURTS_TOKEN" in refused.stderr
    assert '[ecourts] base_url = "https://ecourts.example"' in refused.stderr
    assert "tok-shell-9876" not in refused.stderr  # a secret's value is never shown
    assert "# BEGIN casejobs" not in subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout

    written = run_script("jobctl", "install", "--cron-flavor", "debian", "--write-config", home=home, **shell_only)

    assert written.returncode == 0, written.stdout + written.stderr
    config = home / "casejobs.toml"
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    assert 'token = "tok-shell-9876"' in config.read_text()
    doctor = subprocess.run(
        ["env", "-i", f"CASEJOBS_HOME={home}", "PATH=/usr/bin:/bin", str(BIN / "jobctl"), "doctor", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    checks = {check["name"]: check for check in json.loads(doctor.stdout)["checks"]}
    assert all(
        checks[f"settings of {job}"]["status"] == "ok" for job in ("dailySync", "slaCheck", "userPendingRefresh")
    )


@needs_crontab
def test_install_refuses_optional_settings_cron_would_run_without_and_writes_them_into_the_annotated_file(
    home: Path, database_path: Path, user_crontab
) -> None:
    from pyrage import x25519

    config = home / "casejobs.toml"
    shutil.copy(PROJECT / "config.example.toml", config)
    config.chmod(0o600)
    original = config.read_text()
    recipient = str(x25519.Identity.generate().to_public())
    shell_only = {
        "CASEJOBS_BACKUP_ENCRYPT_TO": recipient,
        "CASEJOBS_MONITOR_NIGHTLY_BACKUP_URL": "https://hc.example/ping/abc",
        "CASEJOBS_NOW": "2026-11-30T10:00:00Z",  # a command line's own clock: never a setting for cron
    }

    dry = run_script("jobctl", "install", "--dry-run", "--cron-flavor", "debian", home=home, **shell_only)
    before = doctor(home, **shell_only)["settings only in this shell"]
    refused = run_script("jobctl", "install", "--cron-flavor", "debian", home=home, **shell_only)

    assert dry.returncode == 0 and "reach this shell but not cron" in dry.stderr
    assert before["status"] == "warning" and "CASEJOBS_NOW" not in before["message"]
    assert "CASEJOBS_BACKUP_ENCRYPT_TO, CASEJOBS_MONITOR_NIGHTLY_BACKUP_URL reach this shell" in before["message"]
    assert refused.returncode == 78, refused.stdout + refused.stderr
    assert "nightlyBackup would run under cron without them" in refused.stderr
    assert "CASEJOBS_BACKUP_ENCRYPT_TO" in refused.stderr and "CASEJOBS_MONITOR_NIGHTLY_BACKUP_URL" in refused.stderr
    assert "CASEJOBS_NOW" not in refused.stderr
    assert "# BEGIN casejobs" not in subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout

    written = run_script("jobctl", "install", "--cron-flavor", "debian", "--write-config", home=home, **shell_only)

    assert written.returncode == 0, written.stdout + written.stderr
    text = config.read_text()
    assert (home / "casejobs.toml.bak").read_text() == original
    lines = text.splitlines()
    added = {f'encrypt_to = "{recipient}"', 'nightly_backup_url = "https://hc.example/ping/abc"'}
    assert [line for line in lines if line not in added] == original.splitlines()  # every comment, in order
    assert lines[lines.index("[monitor]") + 1] == 'nightly_backup_url = "https://hc.example/ping/abc"'
    assert lines[lines.index("[backup]") + 1] == f'encrypt_to = "{recipient}"'
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    cron_sees = subprocess.run(
        ["env", "-i", f"CASEJOBS_HOME={home}", "PATH=/usr/bin:/bin", str(BIN / "nightly-backup"), "--check-config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert doctor(home, **shell_only)["settings only in this shell"]["status"] == "ok"  # the file has them now
    sources = json.loads(cron_sees.stdout)["sources"]
    assert sources["backup.encrypt_to"] == f"{config}:backup.encrypt_to"
    assert sources["monitor.nightly_backup_url"] == f"{config}:monitor.nightly_backup_url"


DOCTOR_KEYS = {"name", "level", "status", "message", "fix"}


def doctor(home: Path, *arguments: str, **environment: str) -> dict[str, dict]:
    result = run_script("jobctl", "doctor", "--json", *arguments, home=home, **environment)
    report = json.loads(result.stdout)
    assert set(report) == {"checks", "verdict", "exit_code"} and report["exit_code"] == result.returncode
    assert all(set(check) == DOCTOR_KEYS for check in report["checks"])
    return {check["name"]: check for check in report["checks"]}


def test_doctor_database_check(home: Path, tmp_path: Path) -> None:
    assert doctor(home)["database"]["status"] == "fail"  # no database yet
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).executescript("CREATE TABLE users (id INTEGER PRIMARY KEY, mail TEXT);")
    check = doctor(home, CASEJOBS_DB=str(foreign))["database"]
    assert check["status"] == "fail" and "table users lacks name" in check["message"]
    assert run_script("jobctl", "db", "init", home=home).returncode == 0
    assert doctor(home)["database"]["status"] == "ok"


def test_doctor_home_check(home: Path, database_path: Path) -> None:
    assert doctor(home)["home"]["status"] == "ok"
    (home / "ledger").mkdir(exist_ok=True)
    (home / "ledger").chmod(0o755)
    check = doctor(home)["home"]
    assert check["status"] == "warning" and "chmod" in check["fix"]


def test_doctor_free_space_check(home: Path, database_path: Path, tmp_path: Path) -> None:
    assert doctor(home)["free space"]["status"] == "ok"
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=False).returncode:
        pytest.skip("needs to mount a small tmpfs (root)")
    try:
        (mount / "backups").mkdir()
        check = doctor(mount, CASEJOBS_DB=str(database_path))["free space"]
        assert check["status"] == "fail" and "MiB free" in check["message"]
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_doctor_cron_checks(home: Path, database_path: Path, tmp_path: Path) -> None:
    no_cron = tmp_path / "no-cron-bin"  # every program of /usr/bin and /bin but crontab
    no_cron.mkdir()
    for folder in (Path("/usr/bin"), Path("/bin")):
        for program in folder.iterdir():
            if program.name != "crontab" and not (no_cron / program.name).exists():
                (no_cron / program.name).symlink_to(program)
    checks = doctor(home, PATH=str(no_cron))
    assert checks["cron"]["status"] == "fail" and "cron not installed" in checks["cron"]["message"]
    if shutil.which("crontab"):
        checks = doctor(home)
        assert checks["cron"]["status"] in ("ok", "fail")  # its daemon may or may not run here
        assert "host zone" in checks["cron"]["message"] or "daemon" in checks["cron"]["message"]


@needs_crontab
def test_doctor_schedule_check(home: Path, database_path: Path, user_crontab) -> None:
    subprocess.run(["crontab", "-r"], capture_output=True, check=False)
    assert doctor(home)["schedule"]["status"] == "warning"
    assert run_script("jobctl", "install", "--cron-flavor", "debian", home=home).returncode == 0
    assert doctor(home)["schedule"]["status"] == "ok"


def test_doctor_settings_are_checked_as_cron_sees_them(home: Path, database_path: Path) -> None:
    shell_only = {"CASEJOBS_ECOURTS_BASE_URL": "sim://", "CASEJOBS_ECOURTS_TOKEN": "demo-token"}
    checks = doctor(home, **shell_only)
    assert checks["settings of dailySync"]["status"] == "fail"  # the shell has them; cron would not
    assert "CASEJOBS_ECOURTS_BASE_URL is not set" in checks["settings of dailySync"]["message"]
    (home / "casejobs.toml").write_text('[ecourts]\nbase_url = "sim://"\ntoken = "demo-token"\n')
    check = doctor(home)["settings of dailySync"]
    assert check["status"] == "ok"
    assert f"from {home / 'casejobs.toml'}: ecourts.base_url, ecourts.token" in check["message"]


def test_doctor_secret_file_check(home: Path, database_path: Path, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok\n")
    token.chmod(0o644)
    (home / "casejobs.toml").write_text(f'[ecourts]\nbase_url = "sim://"\ntoken_file = "{token}"\n')
    assert doctor(home)["ecourts.token_file"]["status"] == "fail"
    token.chmod(0o600)
    assert doctor(home)["ecourts.token_file"]["status"] == "ok"


def test_doctor_last_run_check(home: Path, database_path: Path) -> None:
    assert doctor(home)["last run of userPendingRefresh"]["status"] == "warning"  # never ran
    assert run_script("user-pending-refresh", home=home).returncode == 0
    assert doctor(home)["last run of userPendingRefresh"]["status"] == "ok"


def test_doctor_probe_reaches_smtp_and_ecourts(home: Path, database_path: Path, ecourts) -> None:
    from tests.conftest import ECOURTS_TOKEN
    from tests.smtp_server import free_port, smtp_server

    _, server = ecourts
    settings = {"CASEJOBS_ECOURTS_BASE_URL": server.base_url, "CASEJOBS_ECOURTS_TOKEN": ECOURTS_TOKEN}
    with smtp_server() as (controller, recorder):
        smtp = {"CASEJOBS_SMTP_HOST": "127.0.0.1", "CASEJOBS_SMTP_PORT": str(controller.port)}
        checks = doctor(home, "--probe", CASEJOBS_SMTP_SECURITY="none", **smtp, **settings)
        assert recorder.messages == []  # EHLO only, no mail
    assert checks["smtp"]["status"] == "ok" and checks["ecourts"]["status"] == "ok"
    down = doctor(
        home,
        "--probe",
        CASEJOBS_SMTP_HOST="127.0.0.1",
        CASEJOBS_SMTP_PORT=str(free_port()),
        CASEJOBS_SMTP_SECURITY="none",
        CASEJOBS_ECOURTS_BASE_URL=server.base_url,
        CASEJOBS_ECOURTS_TOKEN="wrong",
    )
    assert down["smtp"]["status"] == "fail" and down["ecourts"]["status"] == "fail"


def test_a_fresh_environment_under_cron_finds_nothing_but_its_home(home: Path, database_path: Path) -> None:
    environment = cron_environment(home)
    result = subprocess.run(
        [str(BIN / "user-pending-refresh"), "--check-config"], env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0 and json.loads(result.stdout)["ok"] is True


def test_doctor_python_check(fresh_copy: Path, home: Path) -> None:
    environment = {key: value for key, value in cron_environment(home).items() if key != "CASEJOBS_VENV"}

    def python_check() -> dict:
        result = subprocess.run(
            [str(fresh_copy / "bin" / "jobctl"), "doctor", "--json"],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        return next(check for check in json.loads(result.stdout)["checks"] if check["name"] == "python")

    assert python_check()["status"] == "ok"
    lock = fresh_copy / "requirements.lock"
    lock.write_text(re.sub(r"^click==\S+", "click==0.0.1", lock.read_text(), flags=re.M))
    check = python_check()
    assert check["status"] == "warning" and "click" in check["message"] and check["fix"] == "make venv"
