"""No secret ever reaches a log line."""

from __future__ import annotations

import json

from lib.log import SecretScrubber, configure_logging, get_logger


def test_secret_keys_and_values_are_blanked() -> None:
    scrubber = SecretScrubber(["s3cr3t-token"])
    event = scrubber(None, "info", {"event": "calling with s3cr3t-token", "password": "hunter2", "case": "CASE-1"})
    assert event == {"event": "calling with [redacted]", "password": "[redacted]", "case": "CASE-1"}


def test_json_lines_carry_the_bound_run(capsys) -> None:
    from lib.log import bind_run

    configure_logging("json", secret_values=["tok_live_123"])
    bind_run("slaCheck", "run-1")
    get_logger().info("sent", token="tok_live_123", note="used tok_live_123")

    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (record["job"], record["run_id"], record["event"]) == ("slaCheck", "run-1", "sent")
    assert "tok_live_123" not in json.dumps(record)


def test_a_log_file_is_rotated_by_size_and_kept_private(tmp_path) -> None:
    from lib.log import RotatingLogFile

    path = tmp_path / "daily-sync.log"
    log = RotatingLogFile(path, max_bytes=200, keep=2)
    for number in range(30):
        log.write(f'{{"event": "line {number:02d}", "padding": "{"x" * 40}"}}\n')
    log.flush()

    files = sorted(item.name for item in tmp_path.iterdir())
    assert files == ["daily-sync.log", "daily-sync.log.1", "daily-sync.log.2"]  # two older ones kept, no more
    assert '"line 29"' in path.read_text() and '"line 00"' not in "".join(p.read_text() for p in tmp_path.iterdir())
    assert all(oct(item.stat().st_mode & 0o777) == "0o600" for item in tmp_path.iterdir())
