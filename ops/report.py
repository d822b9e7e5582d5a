"""The one-page HTML report (`jobstats --html`): every scheduled job's ledger read into lib/report.py's page."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from jobs import REGISTRY
from lib import ledger
from lib.clock import format_utc
from lib.errors import CasejobsError
from lib.health import check_all, job_health
from lib.history import runs_since
from lib.report import JobSection, collect, render_page
from lib.settings import Settings


def build_page(settings: Settings, now: dt.datetime, since: dt.datetime | None) -> str:
    """Read the ledger of every scheduled job and return the page. Damaged ledger lines are skipped and
    said in a note at the top, as jobstats says them."""
    entries = REGISTRY.entries()
    damage = ledger.Damage()
    healths = {entry.job: job_health(settings, entry, now, damage) for entry in entries}
    problems = check_all(list(healths.values()), settings.home, now)
    since_text = format_utc(since) if since else None
    sections = []
    for entry in entries:
        own = [(level, line) for level, line in problems if line.startswith(f"{entry.job}:")]
        overall = [(level, line) for level, line in problems if ":" not in line.split(" ")[0]]
        runs = collect(entry, runs_since(settings.home, entry.job, since_text, damage), now, since)
        sections.append(JobSection(entry, healths[entry.job], own or overall, runs))
    return render_page(sections, now, since, damage.describe())


def write_report(path: Path, settings: Settings, now: dt.datetime, since: dt.datetime | None) -> Path:
    """Write the page to path under a temporary name beside it, then rename it into place; return path."""
    page = build_page(settings, now, since)
    path = path.absolute()
    if not path.parent.is_dir():
        raise CasejobsError(f"{path.parent} does not exist")
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
