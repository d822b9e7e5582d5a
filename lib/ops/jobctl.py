"""bin/jobctl: operations on casejobs; for now the database (init, seed)."""

from __future__ import annotations

import sys

import click

from lib import clock
from lib.cli import report_errors
from lib.db import connect, migrate, schema_version
from lib.seed import SCALES, seed_database
from lib.settings import load_settings


def _verbose() -> bool:
    return any(argument in ("-v", "--verbose") for argument in sys.argv[1:])


@click.group(name="jobctl", context_settings={"help_option_names": ["-h", "--help"]})
def jobctl() -> None:
    """Operate casejobs: create and fill the database, and more to come."""


@jobctl.group(name="db")
def database_group() -> None:
    """Create, migrate and fill the case-management database."""


@database_group.command(name="init")
@click.option("--db", type=click.Path(dir_okay=False), help="The SQLite database [env CASEJOBS_DB].")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl", _verbose)
def database_init(db: str | None, verbose: bool) -> None:
    """Create the database, or migrate it to the current schema (safe to run again)."""
    settings = load_settings({"core.db": db})
    path = settings.database_path
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    database = connect(path, settings.get("core.busy_timeout_ms"), create=True)
    try:
        reached = migrate(database, path)
        version = schema_version(database)
    finally:
        database.close()
    if created:
        click.echo(f"created {path} at schema version {version}")
    elif reached:
        click.echo(f"migrated {path} to schema version {version}")
    else:
        click.echo(f"{path} is already at schema version {version}")


@database_group.command(name="seed")
@click.option("--db", type=click.Path(dir_okay=False), help="The SQLite database [env CASEJOBS_DB].")
@click.option("--scale", type=click.Choice(tuple(SCALES)), default="small", show_default=True, help="How much data.")
@click.option(
    "--seed",
    "seed_number",
    type=int,
    default=1,
    show_default=True,
    help="Random seed: the same seed and day give the same data.",
)
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@report_errors("jobctl", _verbose)
def database_seed(db: str | None, scale: str, seed_number: int, verbose: bool) -> None:
    """Fill a new, empty database with realistic demo data (creating it if needed)."""
    settings = load_settings({"core.db": db})
    path = settings.database_path
    path.parent.mkdir(parents=True, exist_ok=True)
    database = connect(path, settings.get("core.busy_timeout_ms"), create=True)
    try:
        migrate(database, path)
        now = settings.now()
        cases = SCALES[scale].cases
        if sys.stderr.isatty():
            with click.progressbar(length=cases, label=f"seeding {scale}", file=sys.stderr) as bar:
                counts = seed_database(database, scale, seed_number, now, clock.today_ist(now), bar.update)
        else:
            counts = seed_database(database, scale, seed_number, now, clock.today_ist(now))
    finally:
        database.close()
    click.echo(
        f"seeded {path} ({scale}, seed {seed_number}): "
        + ", ".join(f"{count} {table}" for table, count in counts.items())
    )


if __name__ == "__main__":
    jobctl.main(prog_name="jobctl")
