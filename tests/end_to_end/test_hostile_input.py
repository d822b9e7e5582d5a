"""Hostile rows, an upstream that echoes the token, hostile packages, file modes and confidential data.

One bad row is skipped, counted and named by id; every other row is served.
Secrets never land in the database; a confidential case's text never leaves
it except in the binary copy inside the backup.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.builders import Dataset
from tests.conftest import BIN, cron_environment, ecourts_environment, run_script
from tests.helpers import last_finish, ledger_lines
from tests.smtp_server import smtp_server

NOW = "2026-11-25T12:00:00Z"  # 17:30 IST
MB = 1 << 20


def cnr(number: int) -> str:
    return f"MHAU01{number:06d}2023"


def query(database_path: Path, sql: str, *parameters: object) -> list[tuple]:
    connection = sqlite3.connect(database_path)
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def named(home: Path, job: str) -> set[tuple[str, int]]:
    return {(row["table"], row["id"]) for row in last_finish(home, job)["details"].get("bad_rows", [])}


@pytest.fixture
def hostile(dataset: Dataset, database_path: Path) -> dict[str, int]:
    """A firm with one hostile row per table beside good ones: control characters, a 1 MB name, an invalid
    address, NULL where a value is expected, an impossible date, text that is not UTF-8."""
    rows: dict[str, int] = {}
    rows["good_lawyer"] = dataset.user(name="Asha Rao", email="asha@firm.example")
    rows["crlf_user"] = dataset.user(name="Evil\r\nBcc: x@example.com", email="evil@firm.example")
    rows["huge_user"] = dataset.user(name="N" * MB, email="huge@firm.example")
    rows["bad_address"] = dataset.user(name="No Mail", email="not an address\r\nBcc: y@example.com")
    rows["null_name"] = dataset.user(name="\t\x07\x00", email="null@firm.example")  # nothing printable
    connection = dataset.connection
    rows["good_case"] = dataset.case(lawyer_id=rows["good_lawyer"], expected_completion_date="2026-11-20", cnr=cnr(1))
    rows["bad_date_case"] = dataset.case(lawyer_id=rows["good_lawyer"], expected_completion_date="2026-02-30")
    rows["bad_cnr_case"] = dataset.case(lawyer_id=rows["good_lawyer"], cnr="MH\x00AU01-0000012023")
    rows["good_task"] = dataset.task(rows["good_case"], rows["good_lawyer"], due_date="2026-11-20", title=None)
    rows["impossible_task"] = dataset.task(rows["good_case"], rows["good_lawyer"], due_date="2026-13-45")
    for user in ("crlf_user", "huge_user", "bad_address", "null_name"):
        dataset.task(rows["good_case"], rows[user], due_date="2026-11-21")
    rows["not_utf8_task"] = dataset.task(rows["good_case"], rows["good_lawyer"], due_date="2026-11-24")
    connection.execute("UPDATE tasks SET title = CAST(x'66ff6f' AS TEXT) WHERE id = ?", (rows["not_utf8_task"],))
    rows["blob_task"] = dataset.task(rows["good_case"], rows["good_lawyer"], due_date="2026-11-20")
    # "2026-11-20" written by another program as a BLOB: no calendar day to SQLite's comparisons
    connection.execute("UPDATE tasks SET due_date = x'323032362d31312d3230' WHERE id = ?", (rows["blob_task"],))
    rows["impossible_subtask"] = dataset.subtask(rows["good_task"], rows["good_lawyer"], due_date="2026-04-31")
    rows["hearing"] = dataset.hearing(rows["good_case"], "2026-11-31", rows["good_lawyer"])
    connection.commit()
    return rows


def test_sla_check_serves_everyone_else_and_injects_nothing(home: Path, hostile: dict, database_path: Path) -> None:
    with smtp_server() as (controller, recorder):
        smtp = {"CASEJOBS_SMTP_HOST": "127.0.0.1", "CASEJOBS_SMTP_PORT": str(controller.port)}
        result = run_script("sla-check", home=home, CASEJOBS_NOW=NOW, CASEJOBS_SMTP_SECURITY="none", **smtp)

    assert result.returncode == 3, result.stderr
    bad = named(home, "slaCheck")
    assert ("users", hostile["bad_address"]) in bad
    assert {("cases", hostile["bad_date_case"]), ("tasks", hostile["impossible_task"])} <= bad
    notified = {user for (user,) in query(database_path, "SELECT user_id FROM notifications")}
    everyone = {hostile[name] for name in ("good_lawyer", "crlf_user", "huge_user", "bad_address", "null_name")}
    assert notified == everyone  # every person got the digest in the app, the bad address too
    recipients = sorted(address.addr_spec for message in recorder.messages for address in message["To"].addresses)
    assert len(recorder.messages) == 4  # everyone with a valid address got the mail
    for message in recorder.messages:
        assert message["Bcc"] is None and "\r" not in str(message["To"]) and "\n" not in str(message["To"])
        assert len(str(message["To"])) < 200
    assert recipients == ["asha@firm.example", "evil@firm.example", "huge@firm.example", "null@firm.example"]
    details = last_finish(home, "slaCheck")["details"]
    assert details["task_violations"] >= 1 and details["emails_sent"] == 4  # the figures are all there


def test_user_pending_refresh_leaves_bad_dates_out_of_the_periods(
    home: Path, hostile: dict, database_path: Path
) -> None:
    result = run_script("user-pending-refresh", home=home, CASEJOBS_NOW=NOW)

    assert result.returncode == 3, result.stderr
    assert {("tasks", hostile["impossible_task"]), ("subtasks", hostile["impossible_subtask"])} <= named(
        home, "userPendingRefresh"
    )
    assert ("hearings", hostile["hearing"]) in named(home, "userPendingRefresh")
    assert ("tasks", hostile["blob_task"]) in named(home, "userPendingRefresh")
    (tasks, subtasks, hearings, overdue) = query(
        database_path,
        "SELECT tasks, subtasks, hearings, overdue FROM user_pending_summaries WHERE user_id = ?",
        hostile["good_lawyer"],
    )[0]
    assert (tasks, subtasks, hearings) == (4, 1, 1)  # still pending: counted, but in no period
    # overdue: the good task (20th), the task not in UTF-8 (24th) and the good case (20th); never the bad dates
    assert overdue == 3
    assert len(query(database_path, "SELECT * FROM user_pending_summaries")) == 5


def test_daily_sync_syncs_every_other_case(home: Path, hostile: dict, ecourts, database_path: Path) -> None:
    _, server = ecourts
    result = run_script("daily-sync", home=home, **ecourts_environment(server, CASEJOBS_NOW=NOW))

    assert result.returncode == 3, result.stderr
    assert ("cases", hostile["bad_cnr_case"]) in named(home, "dailySync")
    assert query(database_path, "SELECT last_synced_at IS NOT NULL FROM cases WHERE id = ?", hostile["good_case"]) == [
        (1,)
    ]


def test_the_backup_exports_every_other_row(home: Path, hostile: dict, database_path: Path) -> None:
    result = run_script("nightly-backup", home=home, CASEJOBS_NOW=NOW)

    assert result.returncode == 3, result.stderr
    # text JSON cannot carry (not UTF-8, a BLOB) is a bad row of the export; the database keeps it
    assert named(home, "nightlyBackup") == {("tasks", hostile["not_utf8_task"]), ("tasks", hostile["blob_task"])}
    (package,) = (home / "backups").glob("casejobs-backup-*.zip")
    with zipfile.ZipFile(package) as archive:
        cases = json.loads(archive.read("cases.json"))
        users = json.loads(archive.read("users.json"))
    exported_tasks = {task["id"] for case in cases for task in case["tasks"]}
    assert hostile["not_utf8_task"] not in exported_tasks and hostile["good_task"] in exported_tasks
    assert hostile["blob_task"] not in exported_tasks
    assert len(users) == 5 and len(cases) == 3
    assert run_script("nightly-backup", "verify", home=home).returncode == 0


# --- An upstream that echoes the token ------------------------------------------------------

ECHO_STATUSES = ["400", "404", "418", "500", "503", "401", "402", "403", "429"]


@pytest.mark.parametrize("fault", ECHO_STATUSES)
def test_an_echoed_token_lands_nowhere(home: Path, dataset: Dataset, ecourts, database_path: Path, fault: str) -> None:
    from tests.conftest import ECOURTS_TOKEN

    simulator, server = ecourts
    simulator.echo_authorization = True
    lawyer = dataset.user()
    for number in (1, 2):
        dataset.case(lawyer_id=lawyer, cnr=cnr(number), expected_completion_date="2026-11-20")
    simulator.add_fault(cnr(1), fault)

    sync = run_script(
        "daily-sync", "-v", home=home, **ecourts_environment(server, CASEJOBS_NOW=NOW, CASEJOBS_ECOURTS_RETRIES="1")
    )
    backup = run_script("nightly-backup", "-v", home=home, CASEJOBS_NOW=NOW)

    assert sync.returncode in (1, 3) and backup.returncode == 0, sync.stderr + backup.stderr
    everything = sync.stdout + sync.stderr + backup.stdout + backup.stderr
    everything += json.dumps(ledger_lines(home, "dailySync")) + json.dumps(ledger_lines(home, "nightlyBackup"))
    everything += "\n".join(
        query(database_path, "SELECT quote(group_concat(x, '|')) FROM (SELECT sync_error AS x FROM cases)")[0]
    )
    connection = sqlite3.connect(database_path)
    for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        everything += json.dumps(connection.execute(f'SELECT * FROM "{table}"').fetchall(), default=str)
    connection.close()
    (package,) = (home / "backups").glob("casejobs-backup-*.zip")
    with zipfile.ZipFile(package) as archive:
        for member in archive.namelist():
            if member != "database.db":
                everything += archive.read(member).decode()
    for spelling in (ECOURTS_TOKEN, ECOURTS_TOKEN.replace("-", "%2D"), ECOURTS_TOKEN.upper()):
        assert spelling not in everything, spelling
    if fault in ("400", "404", "418"):  # answers whose message is kept: the echo was there, and was blanked
        assert "[redacted]" in everything


# --- Hostile packages -----------------------------------------------------------------------


@pytest.fixture
def package(home: Path, dataset: Dataset) -> Path:
    dataset.case(lawyer_id=dataset.user())
    assert run_script("nightly-backup", home=home, CASEJOBS_NOW=NOW).returncode == 0
    (path,) = (home / "backups").glob("casejobs-backup-*.zip")
    return path


def rewritten(source: Path, target: Path, replace: dict[str, bytes], manifest: object | None = None) -> Path:
    """Copy a package, replacing members (and the manifest, if given) without fixing anything else."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = replace.get(item.filename, old.read(item))
            if item.filename == "manifest.json" and manifest is not None:
                data = json.dumps(manifest).encode()
            new.writestr(item.filename, data)
    return target


def test_restore_refuses_a_database_that_is_not_a_casejobs_one(home: Path, package: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    connection = sqlite3.connect(foreign)
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    connection.execute("PRAGMA user_version = 99")
    connection.commit()
    connection.close()
    data = foreign.read_bytes()
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    import hashlib

    manifest["members"]["database.db"] |= {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    evil = rewritten(package, tmp_path / "evil.zip", {"database.db": data}, manifest)
    target = tmp_path / "restored.db"

    result = run_script("nightly-backup", "restore", str(evil), "--to", str(target), home=home)

    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "does not hold a casejobs database" in result.stderr and "schema version 99" in result.stderr
    assert "table users is missing" in result.stderr
    assert not target.exists() and [path.name for path in tmp_path.iterdir() if ".restore-" in path.name] == []


@pytest.mark.parametrize("manifest", [[], ["a", "b"], {"members": {"database.db": "big"}}, {"members": []}])
def test_a_malformed_manifest_is_one_line(home: Path, package: Path, tmp_path: Path, manifest: object) -> None:
    evil = rewritten(package, tmp_path / "evil.zip", {}, manifest)
    for arguments in (["verify", str(evil)], ["restore", str(evil), "--to", str(tmp_path / "x.db")]):
        result = run_script("nightly-backup", *arguments, home=home)
        output = result.stdout + result.stderr
        assert result.returncode == 1 and "manifest.json is not a valid manifest" in output, output
        assert "Traceback" not in output and "Error:" not in output


def test_a_member_that_declares_two_gigabytes_is_refused_before_inflating(
    home: Path, package: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    manifest["members"]["database.db"]["size"] = 2 << 30
    evil = rewritten(package, tmp_path / "evil.zip", {}, manifest)

    result = run_script("nightly-backup", "verify", str(evil), home=home)

    assert result.returncode == 1
    assert "database.db: its size in the ZIP differs from the manifest's" in result.stdout
    assert [path.name for path in (home / "backups").iterdir() if "verify" in path.name] == []


def test_a_bomb_whose_headers_agree_is_refused_for_want_of_space(home: Path, package: Path, tmp_path: Path) -> None:
    """A member truly 2 GB inflated (zeros compress to 2 MB), on a home with less room than that."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=False).returncode:
        pytest.skip("needs to mount a small tmpfs (root)")
    try:
        small_home = mount / "home"
        small_home.mkdir()
        huge = tmp_path / "huge.zip"
        import hashlib

        digest, size = hashlib.sha256(), 2 << 30
        with zipfile.ZipFile(huge, "w", zipfile.ZIP_DEFLATED) as archive:
            with archive.open("database.db", "w", force_zip64=True) as member:
                block = bytes(MB)
                for _ in range(size // MB):
                    member.write(block)
                    digest.update(block)
            manifest = {"members": {"database.db": {"size": size, "sha256": digest.hexdigest(), "rows": None}}}
            archive.writestr("manifest.json", json.dumps(manifest))

        result = run_script("nightly-backup", "verify", str(huge), home=small_home)

        assert result.returncode == 1 and "not checked: needs 2048 MiB" in result.stdout, result.stdout
        assert sorted(path.name for path in (small_home / "backups").iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_killed_restore_leaves_nothing_after_the_next_verify(home: Path, package: Path, tmp_path: Path) -> None:
    target_folder = tmp_path / "target"
    target_folder.mkdir()
    process = subprocess.Popen(
        [str(BIN / "nightly-backup"), "restore", str(package), "--to", str(target_folder / "live.db")],
        env=cron_environment(home),
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process.kill()
    process.wait()
    # Whatever a killed run leaves under its pid (the names it writes) goes with the next run.
    (home / "backups" / ".casejobs-verify-999999.db").write_bytes(b"a dead run's copy")
    (target_folder / ".live.db.restore-999999").write_bytes(b"a dead restore's file")

    assert run_script("nightly-backup", "verify", home=home).returncode == 0
    assert (
        run_script(
            "nightly-backup", "restore", str(package), "--to", str(target_folder / "live.db"), home=home
        ).returncode
        == 0
    )
    assert sorted(path.name for path in (home / "backups").iterdir() if path.name.startswith(".")) == []
    assert sorted(path.name for path in target_folder.iterdir()) == ["live.db"]


def test_restore_keeps_the_replaced_files_mode(home: Path, package: Path, tmp_path: Path) -> None:
    target = tmp_path / "live.db"
    target.write_bytes(b"old")
    target.chmod(0o640)
    result = run_script("nightly-backup", "restore", str(package), "--to", str(target), "--force", home=home)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


# --- Modes ----------------------------------------------------------------------------------


def modes(home: Path) -> dict[str, int]:
    found = {}
    for path in [home, *home.rglob("*")]:
        if path.name.startswith(("casejobs.db", ".casejobs-probe")):
            continue
        found[str(path.relative_to(home))] = stat.S_IMODE(path.stat().st_mode)
    return found


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_the_home_is_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    home = tmp_path / "home"

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / arguments[0]), *arguments[1:]],
            env=cron_environment(home, CASEJOBS_NOW=NOW),
            cwd="/",
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.umask(umask),
            check=False,
        )

    assert run("jobctl", "db", "init").returncode == 0
    assert run("user-pending-refresh").returncode == 0
    assert run("nightly-backup").returncode == 0

    found = modes(home)
    folders = {name: mode for name, mode in found.items() if (home / name).is_dir() and name != "."}
    files = {name: mode for name, mode in found.items() if (home / name).is_file()}
    assert set(folders.values()) == {0o700}, folders
    assert set(files.values()) == {0o600}, files
    assert "ledger/userPendingRefresh" in folders and "lock/userPendingRefresh.lock" in files


def test_a_home_group_may_read_the_ledger_but_never_the_backups(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid() if os.getgid() else 1)  # a real group other than root's where we can
    home = tmp_path / "home"
    environment = cron_environment(home, CASEJOBS_NOW=NOW, CASEJOBS_HOME_GROUP=group.gr_name)
    for arguments in (["jobctl", "db", "init"], ["user-pending-refresh"], ["nightly-backup"]):
        result = subprocess.run(
            [str(BIN / arguments[0]), *arguments[1:]], env=environment, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr

    ledger = home / "ledger" / "userPendingRefresh"
    (month,) = ledger.iterdir()
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o2750 and ledger.stat().st_gid == group.gr_gid
    assert stat.S_IMODE(month.stat().st_mode) == 0o640 and month.stat().st_gid == group.gr_gid
    assert stat.S_IMODE((home / "backups").stat().st_mode) == 0o700
    (package,) = (home / "backups").glob("*.zip")
    assert stat.S_IMODE(package.stat().st_mode) == 0o600
    bad = run_script("user-pending-refresh", home=home, CASEJOBS_HOME_GROUP="no-such-group-here")
    assert bad.returncode == 78 and "CASEJOBS_HOME_GROUP" in bad.stderr


# --- Confidential markers -------------------------------------------------------------------

MARKER = "SECRETPARTY"


def test_a_confidential_case_leaves_no_text_anywhere(home: Path, dataset: Dataset, database_path: Path) -> None:
    lawyer = dataset.user(email="lawyer@firm.example")
    case = dataset.case(
        lawyer_id=lawyer,
        is_confidential=1,
        expected_completion_date="2026-11-20",
        title=f"{MARKER} v. State",
        client_name=f"{MARKER} Ltd",
        description=f"about {MARKER}",
    )
    task = dataset.task(case, lawyer, title=f"Call {MARKER}", due_date="2026-11-21")
    dataset.subtask(task, lawyer, title=f"Draft for {MARKER}", due_date="2026-11-22")
    dataset.hearing(case, "2026-12-01", lawyer)
    dataset.order(case, lawyer, summary=f"Order about {MARKER}", document_url=f"https://x.example/{MARKER}.pdf")
    dataset.document(case, "DRAFT", owner_id=lawyer, title=f"{MARKER} affidavit")
    connection = dataset.connection
    connection.execute("UPDATE hearings SET purpose = ?, outcome = ?", (f"{MARKER} evidence", f"{MARKER} won"))
    connection.commit()

    with smtp_server() as (controller, recorder):
        smtp = {"CASEJOBS_SMTP_HOST": "127.0.0.1", "CASEJOBS_SMTP_PORT": str(controller.port)}
        sla = run_script("sla-check", "-v", home=home, CASEJOBS_NOW=NOW, CASEJOBS_SMTP_SECURITY="none", **smtp)
    backup = run_script("nightly-backup", "-v", home=home, CASEJOBS_NOW=NOW)
    refresh = run_script("user-pending-refresh", "-v", home=home, CASEJOBS_NOW=NOW)

    assert (sla.returncode, backup.returncode, refresh.returncode) == (0, 0, 0), sla.stderr + backup.stderr
    assert len(recorder.messages) == 1
    outside = [sla.stderr, sla.stdout, backup.stderr, refresh.stderr]
    outside += [message.as_string() for message in recorder.messages]
    outside += [row[0] + row[1] for row in query(database_path, "SELECT title, body FROM notifications")]
    (package,) = (home / "backups").glob("casejobs-backup-*.zip")
    with zipfile.ZipFile(package) as archive:
        outside += [archive.read(name).decode() for name in archive.namelist() if name != "database.db"]
        with archive.open("database.db") as inside:
            assert MARKER.encode() in inside.read()  # the binary copy is the one exception
    for text in outside:
        assert MARKER not in text


def test_restore_never_moves_a_folder_a_device_or_a_link_aside(home: Path, package: Path, tmp_path: Path) -> None:
    working = tmp_path / "working"
    working.mkdir()
    (working / "notes.txt").write_text("the firm's notes")
    real = tmp_path / "real.db"
    real.write_bytes(b"old")
    link = tmp_path / "link.db"
    link.symlink_to(real)
    empty = subprocess.run(
        [str(BIN / "nightly-backup"), "restore", str(package), "--to", "", "--force"],
        env=cron_environment(home),
        cwd=working,  # an empty --to once meant this folder, which was moved aside
        capture_output=True,
        text=True,
        check=False,
    )
    folder = run_script("nightly-backup", "restore", str(package), "--to", str(working), "--force", home=home)
    linked = run_script("nightly-backup", "restore", str(package), "--to", str(link), "--force", home=home)

    assert empty.returncode == 2 and "--to was given an empty path" in empty.stderr, empty.stderr
    assert folder.returncode != 0 and linked.returncode == 2
    assert "is not a regular file" in linked.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["home", "link.db", "real.db", "working"]
    assert (working / "notes.txt").read_text() == "the firm's notes" and real.read_bytes() == b"old"
    assert link.is_symlink()


def test_the_html_report_never_replaces_a_pipe_or_a_link(home: Path, tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    target = tmp_path / "target.html"
    target.write_text("kept")
    link = tmp_path / "link.html"
    link.symlink_to(target)

    into_pipe = run_script("jobstats", "--html", str(pipe), home=home)
    into_link = run_script("jobstats", "--html", str(link), home=home)
    empty = run_script("jobstats", "--html", "", home=home)

    assert into_pipe.returncode == 2 and "is not a regular file" in into_pipe.stderr, into_pipe.stderr
    assert into_link.returncode == 2 and "is not a regular file" in into_link.stderr
    assert empty.returncode == 2 and "--html was given an empty value" in empty.stderr
    assert stat.S_ISFIFO(pipe.lstat().st_mode) and link.is_symlink() and target.read_text() == "kept"


# --- Files read whole: pipes, devices, giants, JSON nested beyond reason ---------------------

NESTED = "[" * 100_000  # json.loads gives up with a RecursionError long before the end


def test_a_pipe_or_a_giant_where_a_settings_file_belongs_is_refused(home: Path, tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    pipe.chmod(0o600)
    giant = tmp_path / "giant.toml"
    giant.write_text("# padding\n" * 300_000)  # 3 MB of comments: no config file is that large

    piped_config = run_script("user-pending-refresh", home=home, CASEJOBS_CONFIG=str(pipe), timeout=60)
    giant_config = run_script("user-pending-refresh", home=home, CASEJOBS_CONFIG=str(giant), timeout=60)
    piped_token = run_script(
        "daily-sync", home=home, CASEJOBS_ECOURTS_BASE_URL="sim://", CASEJOBS_ECOURTS_TOKEN_FILE=str(pipe), timeout=60
    )

    for result in (piped_config, giant_config, piped_token):  # a pipe once blocked the run, SIGTERM or not
        assert result.returncode == 78, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "not a regular file" in piped_config.stderr and "not a regular file" in piped_token.stderr
    assert "larger than 1024 KiB" in giant_config.stderr


def test_json_nested_beyond_reason_is_a_damaged_file_not_a_crash(home: Path, package: Path, tmp_path: Path) -> None:
    from lib.alerts import read_state

    (home / "alerts.json").write_text(NESTED)
    package.with_name(package.name + ".json").write_text(NESTED)
    nested_manifest = tmp_path / "casejobs-backup-2026-11-01.zip"
    giant_manifest = tmp_path / "casejobs-backup-2026-11-02.zip"
    for path, manifest in ((nested_manifest, NESTED), (giant_manifest, " " * (5 << 20))):
        with zipfile.ZipFile(package) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
            for info in source.infolist():
                data = manifest.encode() if info.filename == "manifest.json" else source.read(info)
                target.writestr(info.filename, data)

    everything = run_script("nightly-backup", "verify", "--all", home=home)
    nested = run_script("nightly-backup", "verify", str(nested_manifest), home=home)
    giant = run_script("nightly-backup", "verify", str(giant_manifest), home=home)

    assert read_state(home) == {}  # a damaged state: every job's state unknown, alerts still looked at
    assert "Traceback" not in everything.stderr and "RecursionError" not in everything.stdout + everything.stderr
    assert everything.stdout == f"{package}: ok\n", everything.stdout + everything.stderr  # its ledger record vouches
    assert nested.returncode == 1 and "manifest.json: missing or unreadable (nested beyond reason)" in nested.stdout
    assert giant.returncode == 1 and "manifest.json: missing or unreadable (larger than 4 MiB)" in giant.stdout


def test_a_ledger_that_cannot_be_read_is_critical_not_never_ran(home: Path, package: Path) -> None:
    (month,) = (home / "ledger" / "nightlyBackup").glob("*.jsonl")
    month.rename(month.with_name("aside"))
    month.mkdir()  # the month's file is now a folder: the backup's runs cannot be read

    month_check = run_script("jobstats", "--check", home=home)
    month.rmdir()
    month.with_name("aside").rename(month)
    shutil.move(home / "ledger", home / "ledger-aside")
    (home / "ledger").write_text("not a folder")
    root_check = run_script("jobstats", "--check", home=home)

    assert month_check.returncode == 2, month_check.stdout
    assert month_check.stdout.startswith(f"CRITICAL the ledger cannot be read: {month} is not a file")
    assert root_check.returncode == 2 and f"{home / 'ledger'} is not a folder" in root_check.stdout


def test_a_path_the_system_refuses_is_said_in_words(home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "k8s"
    missing.parent.write_text("a file where a folder belongs")

    result = run_script("jobctl", "export", "--format", "k8s", "--out", str(missing), home=home)

    assert result.returncode == 1
    assert result.stderr == f"jobctl export: error: {missing}: Not a directory\n", result.stderr
    assert "Error" not in result.stderr  # no exception class name
