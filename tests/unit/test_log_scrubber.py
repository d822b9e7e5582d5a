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
