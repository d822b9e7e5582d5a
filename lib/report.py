"""The one-page HTML report of the jobs (`jobstats --html`): what ran, how it went, and what it did.

Everything comes from the ledger, so the page holds nothing the ledger does
not: no client data, no secret. The page is one self-contained file: the
charts are static SVG made by pygal, inline; the styles are inline; one small
inline script shows a mark's details when it has the keyboard's focus (the
mouse gets them from each mark's SVG <title>). Nothing is fetched: no CDN, no
font, no image.

A job that runs every few minutes (userPendingRefresh: 105,000 runs a year)
is grouped per hour in its timeline and per day in its other charts, and
every run of it that did not succeed is kept on its own, so a failure is
never averaged away.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib import ledger
from lib.clock import IST, format_utc, parse_utc
from lib.errors import CasejobsError
from lib.health import LEVEL_NAMES, OK, JobHealth, check_all, headlines, ist_words, job_health
from lib.history import Run, runs_since
from lib.schedule import Entry
from lib.settings import Settings

GROUPED_BELOW = dt.timedelta(hours=1)  # a job scheduled more often than this is grouped per hour
STATUS_COLOURS = {
    "success": "#2e7d32",
    "partial": "#f9a825",
    "skipped": "#90a4ae",
    "locked": "#8d6e63",
    "interrupted": "#ef6c00",
    "timeout": "#d84315",
    "failed": "#c62828",
    "crashed": "#6a1b9a",
    "config": "#ad1457",
    "running": "#1565c0",
}
STATUS_WORDS = {"config": "configuration error"}
BAD_STATUSES = ("partial", "failed", "crashed", "timeout", "interrupted", "config", "locked")
LEVEL_COLOURS = {0: "#2e7d32", 1: "#f9a825", 2: "#c62828"}
FAILURES_SHOWN = 50


def to_ist(text: str) -> dt.datetime:
    """A ledger time as a naive IST datetime, what the charts' axes show."""
    return parse_utc(text).astimezone(IST).replace(tzinfo=None)


def seconds(run: Run) -> float | None:
    return None if run.duration_ms is None else run.duration_ms / 1000


@dataclass
class Hour:
    """The runs of a frequent job that started within one hour."""

    start: dt.datetime
    counts: dict[str, int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)

    @property
    def worst(self) -> str:
        return next((status for status in reversed(STATUS_COLOURS) if self.counts.get(status)), "success")


@dataclass
class JobRuns:
    """One job's runs of the period, as the page needs them: each run (or per hour for a frequent job),
    the failures on their own, and per day the figures of the work-done chart."""

    grouped: bool
    window: tuple[dt.datetime, dt.datetime] | None = None  # the period on the charts' time axis (IST)
    runs: list[Run] = field(default_factory=list)  # every run, unless grouped
    hours: dict[dt.datetime, Hour] = field(default_factory=dict)
    failures: list[Run] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    daily_durations: dict[dt.date, list[float]] = field(default_factory=dict)
    daily_details: dict[dt.date, dict[str, Any]] = field(default_factory=dict)  # the day's last run's details

    def add(self, run: Run) -> None:
        if run.dry_run:
            return
        started = to_ist(run.started_at)
        duration = seconds(run)
        if run.status in BAD_STATUSES or run.status in ("crashed", "running"):
            self.failures.append(run)
        if duration is not None and run.did_work:
            self.durations.append(duration)
            self.daily_durations.setdefault(started.date(), []).append(duration)
        if run.did_work and run.status in ("success", "partial"):
            self.daily_details[started.date()] = run.details
        if not self.grouped:
            self.runs.append(run)
            return
        start = started.replace(minute=0, second=0, microsecond=0)
        hour = self.hours.get(start) or self.hours.setdefault(start, Hour(start))
        hour.counts[run.status] = hour.counts.get(run.status, 0) + 1
        if duration is not None:
            hour.durations.append(duration)


def collect(entry: Entry, runs: Iterable[Run], now: dt.datetime, since: dt.datetime | None) -> JobRuns:
    """Read one job's runs of the period (since None: the whole ledger) into what its charts need,
    keeping no more than that."""
    period = entry.next_run(entry.next_run(now)) - entry.next_run(now)
    naive = [moment.astimezone(IST).replace(tzinfo=None) for moment in (since, now) if moment is not None]
    collected = JobRuns(grouped=period < GROUPED_BELOW, window=(naive[0], naive[1]) if since else None)
    for run in runs:
        collected.add(run)
    return collected


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of values (not empty)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


# --- charts (pygal) -------------------------------------------------------------------------------


def _style(colours: list[str]) -> Any:
    from pygal.style import Style

    return Style(
        colors=tuple(colours),
        background="white",
        plot_background="white",
        font_family="system-ui, sans-serif",
        title_font_size=16,
        label_font_size=11,
        major_label_font_size=11,
        legend_font_size=12,
    )


def _chart(
    kind: str,
    title: str,
    y_title: str,
    colours: list[str],
    window: tuple[dt.datetime, dt.datetime] | None,
    **options: Any,
) -> Any:
    """A pygal chart of time (IST) across the period: a missed run is a gap on its axis."""
    import pygal

    chart_class = {"time": pygal.DateTimeLine, "xy": pygal.XY}[kind]
    if window is not None:
        options["xrange"] = window
    return chart_class(
        title=title,
        x_title="time (IST)",
        y_title=y_title,
        style=_style(colours),
        js=[],  # nothing fetched: hover comes from each mark's <title>
        disable_xml_declaration=True,
        width=900,
        height=330,
        no_data_text="no runs in the period",
        no_data_font_size=24,
        x_label_rotation=20,
        show_x_guides=False,
        truncate_legend=-1,
        x_value_formatter=lambda moment: moment.strftime("%d %b %H:%M"),
        legend_at_bottom=True,
        legend_at_bottom_columns=6,
        **options,
    )


MARK_DETAILS = re.compile(r'<desc class="(?:value|x[^"]*|y[^"]*)">[^<]*</desc>')
MARK_LABEL = re.compile(r'<desc class="label">([^<]*)</desc>')
SVG_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _svg(chart: Any) -> str:
    """Render a pygal chart as inline SVG whose marks carry their details as <title> (what the browser
    shows on hover) and can take the keyboard's focus; pygal's own tooltip data, read by a script we do
    not load, is left out."""
    svg = chart.render(is_unicode=True)
    svg = SVG_COMMENT.sub("", svg)  # pygal's credits, links included: nothing on the page points outside
    svg = MARK_DETAILS.sub("", svg)
    svg = MARK_LABEL.sub(r"<title>\1</title>", svg)
    svg = svg.replace('<g class="dots">', '<g class="dots" tabindex="0">')
    return svg.replace("<svg ", '<svg role="img" ', 1)


def _run_words(run: Run) -> str:
    start = to_ist(run.started_at)
    end = f"–{to_ist(run.finished_at):%H:%M:%S}" if run.finished_at else ""
    duration = f", {seconds(run):.1f} s" if run.duration_ms is not None else ""
    error = f": {run.error}" if run.error else ""
    return f"{run.run_id[:12]} {status_words(run.status)} {start:%Y-%m-%d %H:%M:%S}{end} IST{duration}{error}"


def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status)


def timeline_chart(name: str, runs: JobRuns) -> tuple[str, list[list[str]]]:
    """Every run of the period as a mark, one row per status (a frequent job: per hour, in the colour of
    its worst run, and each failure on its own); return the SVG and the table fallback's rows."""
    rows: list[list[str]] = []
    series: dict[str, list[dict[str, Any]]] = {}
    statuses = list(STATUS_COLOURS)
    if runs.grouped:
        by_day: dict[dt.date, dict[str, int]] = {}
        for hour in runs.hours.values():
            counts = ", ".join(f"{count} {status_words(status)}" for status, count in sorted(hour.counts.items()))
            label = f"{hour.start:%Y-%m-%d %H:00}–{hour.start:%H}:59 IST: {sum(hour.counts.values())} runs ({counts})"
            series.setdefault(hour.worst, []).append(
                {"value": (hour.start, statuses.index(hour.worst)), "label": label}
            )
            day = by_day.setdefault(hour.start.date(), {})
            for status, count in hour.counts.items():
                day[status] = day.get(status, 0) + count
        for failure in runs.failures:
            point = {
                "value": (to_ist(failure.started_at), statuses.index(failure.status) + 0.3),
                "label": _run_words(failure),
            }
            series.setdefault(failure.status, []).append(point)
        for day, counts in sorted(by_day.items()):
            rows.append(
                [f"{day} (per day)", ", ".join(f"{count} {status_words(s)}" for s, count in sorted(counts.items())), ""]
            )
        rows += [
            [f"{to_ist(run.started_at):%Y-%m-%d %H:%M:%S}", status_words(run.status), run.error or ""]
            for run in runs.failures
        ]
    else:
        for run in runs.runs:
            point = {"value": (to_ist(run.started_at), statuses.index(run.status)), "label": _run_words(run)}
            series.setdefault(run.status, []).append(point)
            rows.append([f"{to_ist(run.started_at):%Y-%m-%d %H:%M:%S}", status_words(run.status), run.error or ""])
    used = [status for status in statuses if status in series]
    rows_named = (  # one row per status, named (pygal reads y labels only of a chart with data)
        {
            "y_labels": list(range(len(statuses))),
            "value_formatter": lambda row: status_words(statuses[min(len(statuses) - 1, max(0, round(row)))]),
        }
        if used
        else {}
    )
    chart = _chart(
        "time",
        f"{name}: every run of the period{' (per hour; each failure on its own)' if runs.grouped else ''}",
        "status",
        [STATUS_COLOURS[status] for status in used],
        runs.window,
        stroke=False,
        dots_size=4,
        range=(-0.5, len(statuses) - 0.5),
        **rows_named,
    )
    for status in used:
        chart.add(status_words(status), series[status])
    return _svg(chart), rows


def duration_chart(name: str, runs: JobRuns) -> tuple[str, list[list[str]]]:
    """Each run's duration (a frequent job: each day's median) with the period's p50 and p95 as lines."""
    rows: list[list[str]] = []
    chart = _chart(
        "time",
        f"{name}: duration, with the period's p50 and p95",
        "seconds",
        ["#1565c0", "#2e7d32", "#c62828"],
        runs.window,
    )
    points = []
    if runs.grouped:
        for day, values in sorted(runs.daily_durations.items()):
            moment = dt.datetime.combine(day, dt.time(12))
            points.append(
                {
                    "value": (moment, statistics.median(values)),
                    "label": f"{day}: median {statistics.median(values):.2f} s of {len(values)} runs",
                }
            )
            rows.append([f"{day}", f"{statistics.median(values):.2f} (median of {len(values)})"])
    else:
        for run in runs.runs:
            if run.did_work and run.duration_ms is not None:
                points.append({"value": (to_ist(run.started_at), seconds(run)), "label": _run_words(run)})
                rows.append([f"{to_ist(run.started_at):%Y-%m-%d %H:%M}", f"{seconds(run):.2f}"])
    chart.add("duration" if not runs.grouped else "daily median", points, stroke=False)
    if runs.durations and points:
        first, last = points[0]["value"][0], points[-1]["value"][0]
        for label, fraction in (("p50", 0.5), ("p95", 0.95)):
            value = percentile(runs.durations, fraction)
            chart.add(f"{label} {value:.2f} s", [(first, value), (last, value)], show_dots=False)
            rows.append([label, f"{value:.2f}"])
    return _svg(chart), rows


# What each job's work-done chart plots: (label, how to read it from a run's details).
WORK_FIGURES: dict[str, list[tuple[str, Any]]] = {
    "dailySync": [
        ("cases synced", lambda details: details.get("synced")),
        ("failed", lambda details: details.get("failed")),
        ("unchanged", lambda details: details.get("unchanged")),
    ],
    "slaCheck": [
        ("people with a digest", lambda details: details.get("notified_users")),
        ("mails sent", lambda details: details.get("emails_sent")),
        ("mails failed", lambda details: details.get("emails_failed")),
    ],
    "nightlyBackup": [
        (
            "package MB",
            lambda details: round(details["size"] / 1e6, 1) if isinstance(details.get("size"), int) else None,
        ),
        ("compression ratio", lambda details: details.get("compression_ratio")),
    ],
    "userPendingRefresh": [
        ("users", lambda details: details.get("users")),
        *[
            (f"{level} workload", lambda details, level=level: (details.get("workload_levels") or {}).get(level))
            for level in ("LOW", "MODERATE", "HIGH", "CRITICAL")
        ],
    ],
    "backupDrill": [
        ("rows restored", lambda details: details.get("rows")),
    ],
}
WORK_COLOURS = ["#1565c0", "#c62828", "#90a4ae", "#6a1b9a", "#f9a825", "#2e7d32"]


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def work_chart(name: str, runs: JobRuns) -> tuple[str, list[list[str]], list[str]] | None:
    """The job's own figures per run (a frequent job: the last run of each day); None for a job without."""
    figures = WORK_FIGURES.get(name)
    if not figures:
        return None
    if runs.grouped:
        moments = [
            (dt.datetime.combine(day, dt.time(12)), details) for day, details in sorted(runs.daily_details.items())
        ]
    else:
        moments = [
            (to_ist(run.started_at), run.details)
            for run in runs.runs
            if run.did_work and run.status in ("success", "partial")
        ]
    chart = _chart("time", f"{name}: work done", "count", WORK_COLOURS[: len(figures)], runs.window, dots_size=3)
    rows = []
    for label, read in figures:
        points = []
        for moment, details in moments:
            try:
                value = _number(read(details))
            except (TypeError, AttributeError, KeyError):
                value = None
            if value is not None:
                points.append({"value": (moment, value), "label": f"{moment:%Y-%m-%d %H:%M} IST: {value} {label}"})
        chart.add(label, points)
    for moment, details in moments:
        values = []
        for _, read in figures:
            try:
                values.append(_number(read(details)))
            except (TypeError, AttributeError, KeyError):
                values.append(None)
        rows.append([f"{moment:%Y-%m-%d %H:%M}", *["" if value is None else str(value) for value in values]])
    return _svg(chart), rows, [label for label, _ in figures]


# --- the page -------------------------------------------------------------------------------------


@dataclass
class JobSection:
    entry: Entry
    health: JobHealth
    problems: list[tuple[int, str]]
    runs: JobRuns


def _table(headers: list[str], rows: list[list[str]], caption: str) -> str:
    head = "".join(f"<th scope=col>{html.escape(text)}</th>" for text in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return (
        f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _figure(svg: str, title: str, headers: list[str], rows: list[list[str]]) -> str:
    fallback = _table(headers, rows, f"{title}: the chart's figures") if rows else "<p>No runs in the period.</p>"
    return (
        f'<figure class="chart" aria-label="{html.escape(title)}">{svg}'
        f"<details><summary>Table: {html.escape(title)}</summary>{fallback}</details></figure>"
    )


def tile(section: JobSection, now: dt.datetime, drill_line: str | None) -> str:
    """One job at a glance: its state in words and colour, its last and next run."""
    level = max((level for level, _ in section.problems), default=OK)
    reasons = "".join(f"<li>{html.escape(line)}</li>" for _, line in section.problems) or "<li>on schedule</li>"
    last = section.health.state.last_worked
    last_text = f"{status_words(last.status)}, {ist_words(last.started_at, now)}" if last is not None else "never"
    next_run = section.entry.next_run(now)
    drill = f"<p>{html.escape(drill_line)}</p>" if drill_line else ""
    job = html.escape(section.entry.job)
    return (
        f'<section class="tile level-{LEVEL_NAMES[level].lower()}" id="tile-{job}" aria-label="{job}">'
        f"<h3>{job} <span class=state>{LEVEL_NAMES[level]}</span></h3><ul>{reasons}</ul>"
        f"<p>last run: {html.escape(last_text)}</p><p>next run: {next_run:%Y-%m-%d %H:%M} IST</p>{drill}</section>"
    )


def failures_table(sections: list[JobSection]) -> str:
    failures = [
        (run, section.entry.job) for section in sections for run in section.runs.failures if run.status != "running"
    ]
    failures.sort(key=lambda pair: pair[0].started_at, reverse=True)
    rows = [
        [
            f"{to_ist(run.started_at):%Y-%m-%d %H:%M:%S}",
            job,
            status_words(run.status),
            run.error or "(no reason recorded)",
            run.run_id,
        ]
        for run, job in failures[:FAILURES_SHOWN]
    ]
    if not rows:
        return "<p>No failure in the period.</p>"
    more = (
        f"<p>and {len(failures) - FAILURES_SHOWN} older ones (jobstats --json).</p>"
        if len(failures) > FAILURES_SHOWN
        else ""
    )
    return (
        _table(["started (IST)", "job", "status", "reason", "run id"], rows, "The last runs that did not succeed")
        + more
    )


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#212121;max-width:1000px}
h1{font-size:1.5rem}h2{margin-top:2rem;border-bottom:1px solid #ccc}
.tiles{display:flex;flex-wrap:wrap;gap:.8rem}
.tile{border:1px solid #ccc;border-left:.6rem solid;padding:.4rem .8rem;width:17rem}
.tile h3{margin:.2rem 0;font-size:1.05rem}.tile ul{padding-left:1.1rem;margin:.3rem 0}.tile p{margin:.2rem 0}
.level-ok{border-left-color:#2e7d32}.level-warning{border-left-color:#f9a825}.level-critical{border-left-color:#c62828}
.level-ok .state{color:#2e7d32}.level-warning .state{color:#8d6e00}.level-critical .state{color:#c62828}
figure.chart{margin:1rem 0}figure.chart svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:.85rem}td,th{border:1px solid #ddd;padding:.2rem .4rem;text-align:left}
caption{text-align:left;font-weight:bold}
g.dots:focus{outline:2px solid #1565c0}
#focus-details{position:fixed;bottom:1rem;left:1rem;background:#fffde7;border:1px solid #999;padding:.3rem .6rem;display:none}
.note{background:#fff3e0;padding:.4rem .8rem}
"""

# The keyboard's share of the marks' details: the mouse has <title>, a focused mark shows its own here.
SCRIPT = """
document.addEventListener('focusin',function(e){var t=e.target.querySelector&&e.target.querySelector('title');
var d=document.getElementById('focus-details');if(t&&e.target.classList.contains('dots')){d.textContent=t.textContent;
d.style.display='block';}else{d.style.display='none';}});
"""


def render_page(
    sections: list[JobSection], now: dt.datetime, since: dt.datetime | None, damage_note: str | None
) -> str:
    """The whole page, as one self-contained HTML document."""
    healths = [section.health for section in sections]
    drill_lines = dict(
        zip(
            [health.job for health in healths if health.spec and health.spec.headline],
            headlines(healths, now),
            strict=False,
        )
    )
    worst = max((level for section in sections for level, _ in section.problems), default=OK)
    period = f"since {since.astimezone(IST):%Y-%m-%d %H:%M} IST" if since else "the whole ledger"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
        f"<title>casejobs: {LEVEL_NAMES[worst]} ({now.astimezone(IST):%Y-%m-%d %H:%M} IST)</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>casejobs: {LEVEL_NAMES[worst]}</h1>",
        f"<p>Made {now.astimezone(IST):%Y-%m-%d %H:%M} IST from the ledger; runs {period}. Times are India Standard Time.</p>",
    ]
    if damage_note:
        parts.append(f'<p class="note" id="damage-note">{html.escape(damage_note)}</p>')
    parts.append('<h2 id="at-a-glance">At a glance</h2><div class="tiles">')
    parts += [tile(section, now, drill_lines.get(section.entry.job)) for section in sections]
    parts.append("</div>")
    for section in sections:
        job = section.entry.job
        parts.append(
            f'<h2 id="job-{html.escape(job)}">{html.escape(job)} ({html.escape(section.entry.expression)} IST)</h2>'
        )
        svg, rows = timeline_chart(job, section.runs)
        parts.append(_figure(svg, f"{job}: timeline", ["started (IST)", "status", "reason"], rows))
        svg, rows = duration_chart(job, section.runs)
        parts.append(_figure(svg, f"{job}: duration", ["when (IST)", "seconds"], rows))
        work = work_chart(job, section.runs)
        if work:
            svg, rows, labels = work
            parts.append(_figure(svg, f"{job}: work done", ["when (IST)", *labels], rows))
    parts.append('<h2 id="failures">Last failures</h2>')
    parts.append(failures_table(sections))
    parts.append('<div id="focus-details" role="status"></div>')
    parts.append(f"<script>{SCRIPT}</script></body></html>\n")
    return "\n".join(parts)


def build_page(settings: Settings, entries: list[Entry], now: dt.datetime, since: dt.datetime | None) -> str:
    """Read the ledger of every scheduled job (entries) and return the page. Damaged ledger lines are
    skipped and said in a note at the top, as jobstats says them."""
    damage = ledger.Damage()
    healths = {entry.job: job_health(settings, entry, now) for entry in entries}  # damage: counted once, below
    problems = check_all(list(healths.values()), settings.home, now)
    since_text = format_utc(since) if since else None
    sections = []
    for entry in entries:
        own = [(level, line) for level, line in problems if line.startswith(f"{entry.job}:")]
        overall = [(level, line) for level, line in problems if ":" not in line.split(" ")[0]]
        runs = collect(entry, runs_since(settings.home, entry.job, since_text, damage), now, since)
        sections.append(JobSection(entry, healths[entry.job], own or overall, runs))
    return render_page(sections, now, since, damage.describe())


def write_report(
    path: Path, settings: Settings, entries: list[Entry], now: dt.datetime, since: dt.datetime | None
) -> Path:
    """Write the page to path under a temporary name beside it, then rename it into place; return path."""
    page = build_page(settings, entries, now, since)
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
