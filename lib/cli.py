"""The click layer every command shares: the common job options and one-line errors.

Commands stay thin: they parse words, call into lib/ or jobs/, and turn a
CasejobsError into one line on standard error and its exit code. A Python
traceback reaches the user only with -v.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from lib.errors import EXIT_FAILED, CasejobsError

if TYPE_CHECKING:
    from lib.jobspec import JobSpec

TRIGGERS = ("cron", "manual", "catchup")
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}  # every command takes -h as well as --help
BROKEN_OUTPUT = (errno.EPIPE, errno.EINVAL, errno.EBADF)  # a reader that left, a closed descriptor


class _ForgivingOutput(io.RawIOBase):
    """A standard output descriptor whose reader may go away: writes after that are dropped, never raised."""

    def __init__(self, descriptor: int) -> None:
        super().__init__()
        self.descriptor = descriptor
        self.broken = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.descriptor

    def isatty(self) -> bool:
        return not self.broken and os.isatty(self.descriptor)

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        if self.broken:
            return size
        try:
            return os.write(self.descriptor, data)
        except OSError as error:
            if error.errno not in BROKEN_OUTPUT:
                raise
            self.broken = True  # `| head` has read enough: the run goes on and is recorded as it ends
            return size


def guard_standard_streams() -> None:
    """Make closed or broken standard streams harmless for the rest of the process.

    A closed descriptor 0, 1 or 2 is reopened on the null device (otherwise
    the next file opened, a ledger say, would take its number and receive
    output). stdout and stderr are rewrapped so that a reader that exits
    (`| head -1`) makes further output vanish instead of failing the command.
    """
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != descriptor:
                os.dup2(null, descriptor)
                os.close(null)
    for name, descriptor in (("stdout", 1), ("stderr", 2)):
        current = getattr(sys, name)
        if isinstance(getattr(current, "buffer", None), io.BufferedWriter) and isinstance(
            current.buffer.raw, _ForgivingOutput
        ):
            continue
        with contextlib.suppress(Exception):
            current.flush()
        encoding = getattr(current, "encoding", None) or "utf-8"
        errors = getattr(current, "errors", None) or "backslashreplace"
        line_buffering = bool(getattr(current, "line_buffering", False)) or name == "stderr"
        stream = io.TextIOWrapper(
            io.BufferedWriter(_ForgivingOutput(descriptor)),
            encoding=encoding,
            errors=errors,
            line_buffering=line_buffering,
        )
        setattr(sys, name, stream)


def main(command: click.Command) -> None:
    """Run a click command as a program: standard streams guarded first (even --help may meet `| head`)."""
    guard_standard_streams()
    command.main(prog_name=command.name)


class _Bar:
    """A click progress bar on standard error, as a job's Progress."""

    shown = True

    def __init__(self, label: str, total: int) -> None:
        self._bar = click.progressbar(length=total, label=label, file=sys.stderr)

    def __enter__(self) -> _Bar:
        self._bar.__enter__()
        return self

    def __exit__(self, *exception: Any) -> None:
        self._bar.__exit__(*exception)

    def update(self, steps: int) -> None:
        self._bar.update(steps)


def terminal_progress(label: str, total: int) -> Any:
    """Return a progress bar on a terminal, and progress nobody sees elsewhere (cron, a pipe)."""
    if sys.stderr.isatty():
        return _Bar(label, total)
    from lib.harness import NoProgress

    return NoProgress()


def plural(count: int, word: str, words: str | None = None) -> str:
    """Return `1 run`, `2 runs`: the count with its word, plural when it is not one (words, when the
    plural is not the word with an s: `plural(2, "index", "indexes")`)."""
    return f"{count} {word if count == 1 else words or word + 's'}"


def os_error_words(error: OSError) -> str:
    """An OSError in words: "/proc/x.html: No such file or directory" (its text when it has no path)."""
    if error.strerror is None:
        return f"{type(error).__name__}: {error}"
    if error.filename is None:
        return error.strerror
    where = f"{error.filename} -> {error.filename2}" if error.filename2 is not None else error.filename
    return f"{where}: {error.strerror}"


def report_errors(program: str) -> Callable:
    """Decorate a command body so that errors end as one plain line and the right exit code.

    The command's own -v/--verbose option (its `verbose` parameter) adds the traceback.
    """

    def decorate(body: Callable) -> Callable:
        @functools.wraps(body)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            verbose = bool(kwargs.get("verbose"))
            try:
                return body(*args, **kwargs)
            except CasejobsError as error:
                if verbose:
                    traceback.print_exc()
                click.echo(f"{program}: error: {error}", err=True)
                sys.exit(error.exit_code)
            except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
                raise
            except OSError as error:  # a path the system refused: say which and why, not the class name
                if verbose:
                    traceback.print_exc()
                click.echo(f"{program}: error: {os_error_words(error)}", err=True)
                sys.exit(EXIT_FAILED)
            except Exception as error:
                if verbose:
                    traceback.print_exc()
                click.echo(f"{program}: error: {type(error).__name__}: {error} (run with -v for details)", err=True)
                sys.exit(EXIT_FAILED)

        return wrapper

    return decorate


def common_job_options(command: Callable) -> Callable:
    """Add the options every job takes (design.md) to a click command."""
    options = [
        click.option("--db", type=click.Path(dir_okay=False), help="The SQLite database [env CASEJOBS_DB]."),
        click.option("--dry-run", is_flag=True, help="Compute and report, write nothing but the ledger lines."),
        click.option("--force", is_flag=True, help="Do the work even if this period's work is already done."),
        click.option(
            "--max-runtime",
            metavar="SECONDS",
            help="Stop after this long, 1 to 86400 [env CASEJOBS_MAX_RUNTIME].",
        ),
        click.option(
            "--trigger",
            type=click.Choice(TRIGGERS),
            default="manual",
            show_default=True,
            help="What started this run (recorded in the ledger).",
        ),
        click.option(
            "--log-format",
            type=click.Choice(("auto", "json", "console")),
            help="Log lines as JSON or for people [default: auto].",
        ),
        click.option("-v", "--verbose", is_flag=True, help="Debug logging, and tracebacks on errors."),
        click.option(
            "--log-file",
            is_flag=True,
            help="Write log lines to $CASEJOBS_HOME/log/<job>.log, rotated by size, not to standard error "
            "(what Windows tasks use: Task Scheduler keeps no output).",
        ),
        click.option(
            "--check-config",
            is_flag=True,
            help="Check the settings this job needs, as this environment gives them; print JSON; "
            "exit 0 or 78; write nothing (jobctl doctor and install use it).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def job_command(
    spec: JobSpec, extra_options: tuple[Callable, ...] = (), subcommands: tuple[click.Command, ...] = ()
) -> click.Command:
    """Given a job's spec, return its click command: the common options plus the job's own.

    With subcommands (nightly-backup verify, restore), the command is a group
    that runs the job when called without one.
    """

    program = spec.script

    @report_errors(program)
    def body(
        db: str | None,
        dry_run: bool,
        force: bool,
        max_runtime: int | None,
        trigger: str,
        log_format: str | None,
        verbose: bool,
        check_config: bool,
        log_file: bool,
        **job_options: Any,
    ) -> None:
        if click.get_current_context().invoked_subcommand:
            return
        from lib.harness import RunOptions, check_job_config, run_job  # here, so that jobstats and jobctl start fast

        options = RunOptions(
            db=db,
            dry_run=dry_run,
            force=force,
            max_runtime=max_runtime,
            trigger=trigger,
            log_format=log_format,
            verbose=verbose,
            job_options=job_options,
            show=click.echo,
            progress=terminal_progress,
            log_file=log_file,
        )
        sys.exit(check_job_config(spec, options) if check_config else run_job(spec, options))

    for option in reversed(extra_options):
        body = option(body)
    body = common_job_options(body)
    help_text = (
        f"{spec.summary}\n\nJob name in the ledger: {spec.name}. Exit codes: 0 success or skipped, 1 failed, "
        "2 usage, 3 partial, 75 locked, 78 configuration, 124 time limit, 130/143 stopped by SIGINT/SIGTERM."
    )
    if not subcommands:
        return click.command(name=program, help=help_text, context_settings=HELP_OPTIONS)(body)
    group = click.group(name=program, help=help_text, invoke_without_command=True, context_settings=HELP_OPTIONS)(body)
    for subcommand in subcommands:
        group.add_command(subcommand)
    return group
