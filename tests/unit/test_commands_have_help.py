"""Every command and subcommand answers -h and --help (in-process, with click's runner)."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from jobs import daily_sync, nightly_backup, sla_check, user_pending_refresh
from lib.ecourts_sim import simulator_command
from ops.jobctl import jobctl
from ops.jobstats import jobstats

PROGRAMS = [
    daily_sync.command,
    sla_check.command,
    nightly_backup.command,
    user_pending_refresh.command,
    jobctl,
    jobstats,
    simulator_command,
]


def every_command() -> Iterator[tuple[str, list[str], click.Command]]:
    for program in PROGRAMS:
        stack: list[tuple[list[str], click.Command]] = [([], program)]
        while stack:
            path, command = stack.pop()
            yield " ".join([program.name or "", *path]), path, command
            if isinstance(command, click.Group):
                stack += [([*path, name], sub) for name, sub in command.commands.items()]


COMMANDS = list(every_command())


@pytest.mark.parametrize(("name", "path", "command"), COMMANDS, ids=[name for name, _, _ in COMMANDS])
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(name: str, path: list[str], command: click.Command, flag: str) -> None:
    program = next(program for program in PROGRAMS if name.split()[0] == program.name)
    result = CliRunner().invoke(program, [*path, flag])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert (command.help or "").strip(), f"{name} has no help text"
