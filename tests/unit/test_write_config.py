"""`jobctl install --write-config` adds lines to the config file and changes nothing else in it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lib.errors import ConfigError
from ops.doctor import Missing, write_to_config

ANNOTATED = """# the firm's settings
busy_timeout_ms = 20000  # a slow disk

[smtp]
# our relay
host = "smtp.firm.example"
port = 587

[backup]
retention_days = 45
"""


def missing(key: str, variable: str) -> Missing:
    return Missing("nightlyBackup", key, variable, secret=False, fails=False)


def test_lines_go_under_their_table_and_the_rest_stays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "casejobs.toml"
    path.write_text(ANNOTATED)
    monkeypatch.setenv("CASEJOBS_BACKUP_KEEP_NEWEST", "9")
    monkeypatch.setenv("CASEJOBS_MAX_RUNTIME", "600")
    monkeypatch.setenv("CASEJOBS_MONITOR_NIGHTLY_BACKUP_URL", 'https://hc.example/p?a="b"')

    write_to_config(
        path,
        [
            missing("backup.keep_newest", "CASEJOBS_BACKUP_KEEP_NEWEST"),
            missing("core.max_runtime", "CASEJOBS_MAX_RUNTIME"),
            missing("monitor.nightly_backup_url", "CASEJOBS_MONITOR_NIGHTLY_BACKUP_URL"),
        ],
    )

    lines = path.read_text().splitlines()
    added = {"keep_newest = 9", "max_runtime = 600", 'nightly_backup_url = "https://hc.example/p?a=\\"b\\""'}
    # every line it held, comments and numbers included, in its order; then the new table
    assert [line for line in lines if line not in added] == [*ANNOTATED.splitlines(), "", "[monitor]"]
    assert lines.index("max_runtime = 600") < lines.index("[smtp]")  # a core setting stays above every table
    assert lines[lines.index("[backup]") + 1] == "keep_newest = 9"
    assert lines[-2:] == ["[monitor]", 'nightly_backup_url = "https://hc.example/p?a=\\"b\\""']
    document = tomllib.loads(path.read_text())
    assert document["smtp"]["port"] == 587 and document["backup"]["keep_newest"] == 9
    assert document["monitor"]["nightly_backup_url"] == 'https://hc.example/p?a="b"'
    assert (tmp_path / "casejobs.toml.bak").read_text() == ANNOTATED
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_file_it_cannot_add_to_safely_is_left_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "casejobs.toml"
    inline = "backup = { retention_days = 45 }\n"  # the table written inline: no [backup] header to add under
    path.write_text(inline)
    monkeypatch.setenv("CASEJOBS_BACKUP_KEEP_NEWEST", "9")

    with pytest.raises(ConfigError, match=r"add these lines by hand: \[backup\] keep_newest = 9"):
        write_to_config(path, [missing("backup.keep_newest", "CASEJOBS_BACKUP_KEEP_NEWEST")])

    assert path.read_text() == inline and not (tmp_path / "casejobs.toml.bak").exists()


def test_a_refusal_never_shows_a_secret_and_crlf_and_known_keys_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inline = 'ecourts = { base_url = "https://ecourts.example" }\n'
    path = tmp_path / "casejobs.toml"
    path.write_text(inline)
    monkeypatch.setenv("CASEJOBS_ECOURTS_TOKEN", "tok-secret-4321")
    token = Missing("dailySync", "ecourts.token", "CASEJOBS_ECOURTS_TOKEN", secret=True, fails=True)

    with pytest.raises(ConfigError) as refusal:
        write_to_config(path, [token])

    assert "tok-secret-4321" not in str(refusal.value) and "<the value of CASEJOBS_ECOURTS_TOKEN>" in str(refusal.value)

    crlf = tmp_path / "windows.toml"
    crlf.write_bytes(b"# from Notepad\r\n[backup]\r\nretention_days = 45\r\n")
    monkeypatch.setenv("CASEJOBS_BACKUP_RETENTION_DAYS", "60")  # the file has it: the file's value stays
    monkeypatch.setenv("CASEJOBS_BACKUP_KEEP_NEWEST", "9")

    write_to_config(
        crlf,
        [
            missing("backup.retention_days", "CASEJOBS_BACKUP_RETENTION_DAYS"),
            missing("backup.keep_newest", "CASEJOBS_BACKUP_KEEP_NEWEST"),
        ],
    )

    assert crlf.read_bytes() == b"# from Notepad\r\n[backup]\r\nkeep_newest = 9\r\nretention_days = 45\r\n"
