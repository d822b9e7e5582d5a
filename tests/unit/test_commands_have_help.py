"""Every command answers --help."""

from __future__ import annotations

import pytest

from tests.conftest import run_script


@pytest.mark.parametrize(
    "command",
    [
        ["user-pending-refresh"],
        ["jobstats"],
        ["jobctl"],
        ["jobctl", "db"],
        ["jobctl", "db", "init"],
        ["jobctl", "db", "seed"],
    ],
)
def test_help(command: list[str], tmp_path) -> None:
    result = run_script(command[0], *command[1:], "--help", home=tmp_path)
    assert result.returncode == 0
    assert "Usage:" in result.stdout
