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
import math
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
from lib.health import LEVEL_NAMES, JobHealth, headline_of, ist_words, job_health, overall_level, problems_by_job
from lib.history import Run, runs_since
from lib.home import refuse_unless_replaceable
from lib.jobspec import JobSpec
from lib.schedule import Entry
from lib.settings import Settings
from lib.stats import percentile

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
WORST_FIRST = ("crashed", "config", "failed", "timeout", "interrupted", "partial", "locked", "skipped", "running")
BAD_STATUSES = ("partial", "failed", "crashed", "timeout", "interrupted", "config", "locked")
FAILURES_SHOWN = 50
REASON_LENGTH = 300  # characters of a run's error shown; the ledger keeps it whole
LARGEST_FIGURE = 1e15  # a figure beyond this in a run's details is not plotted (the ledger is not trusted)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text: str | None, length: int = REASON_LENGTH) -> str:
    """Ledger text as the page shows it: without control characters, cut to length."""
    text = CONTROL_CHARACTERS.sub(" ", text or "")
    return text if len(text) <= length else text[: length - 1] + "…"


def to_ist(text: str) -> dt.datetime:
    """A ledger time as a naive IST datetime, what the charts' axes show."""
    return parse_utc(text).astimezone(IST).replace(tzinfo=None)


def seconds(run: Run) -> float | None:
    """A run's duration in seconds (None when the ledger has none)."""
    return None if run.duration_ms is None else run.duration_ms / 1000


@dataclass
class Hour:
    """The runs of a frequent job that started within one hour."""

    start: dt.datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def worst(self) -> str:
        """The status the hour's mark takes: its worst run's (a failure outranks a skipped start)."""
        return next((status for status in WORST_FIRST if self.counts.get(status)), "success")


@dataclass
class JobRuns:
    """One job's runs of the period, as the page needs them: each run (or per hour for a frequent job),
    the failures on their own, and per day the figures of the work-done chart."""

    grouped: bool
    window: tuple[dt.datetime, dt.datetime] | None = None  # the period on the charts' time axis (IST)
    runs: list[Run] = field(default_factory=list)  # every run, unless grouped
    hours: dict[dt.datetime, Hour] = field(default_factory=dict)
    failures: list[Run] = field(default_factory=list)
    durations: list[int] = field(default_factory=list)  # milliseconds, as jobstats counts them (for p50, p95)
    daily_durations: dict[dt.date, list[float]] = field(default_factory=dict)
    daily_details: dict[dt.date, dict[str, Any]] = field(default_factory=dict)  # the day's last run's details

    def add(self, run: Run) -> None:
        """Take one run of the period into the figures."""
        if run.duration_ms is not None and run.status not in ("skipped", "locked", "running"):
            self.durations.append(run.duration_ms)  # the runs jobstats times, dry runs included
        if run.dry_run:
            return
        started = to_ist(run.started_at)
        duration = seconds(run)
        if run.status in BAD_STATUSES or run.status in ("crashed", "running"):
            self.failures.append(run)
        if duration is not None and run.did_work:
            self.daily_durations.setdefault(started.date(), []).append(duration)
        if run.did_work and run.status in ("success", "partial"):
            self.daily_details[started.date()] = run.details
        if not self.grouped:
            self.runs.append(run)
            return
        start = started.replace(minute=0, second=0, microsecond=0)
        hour = self.hours.get(start) or self.hours.setdefault(start, Hour(start))
        hour.counts[run.status] = hour.counts.get(run.status, 0) + 1


def collect(entry: Entry, runs: Iterable[Run], now: dt.datetime, since: dt.datetime | None) -> JobRuns:
    """Read one job's runs of the period (since None: the whole ledger) into what its charts need,
    keeping no more than that."""
    period = entry.next_run(entry.next_run(now)) - entry.next_run(now)
    naive = [moment.astimezone(IST).replace(tzinfo=None) for moment in (since, now) if moment is not None]
    collected = JobRuns(grouped=period < GROUPED_BELOW, window=(naive[0], naive[1]) if since else None)
    for run in runs:
        collected.add(run)
    return collected


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
    title: str,
    y_title: str,
    colours: list[str],
    window: tuple[dt.datetime, dt.datetime] | None,
    **options: Any,
) -> Any:
    """A pygal chart of time (IST) across the period: a missed run is a gap on its axis."""
    import pygal

    if window is not None:
        options["xrange"] = window
    return pygal.DateTimeLine(
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


def _svg(chart: Any, focusable: bool = True) -> str:
    """Render a pygal chart as inline SVG whose marks carry their details as <title> (what the browser
    shows on hover) and, when focusable, can take the keyboard's focus (not the hourly marks of a frequent
    job: 8,760 Tab stops a year help nobody; its failures are in the table below it); pygal's own tooltip
    data, read by a script we do not load, is left out."""
    svg = chart.render(is_unicode=True)
    svg = SVG_COMMENT.sub("", svg)  # pygal's credits, links included: nothing on the page points outside
    svg = MARK_DETAILS.sub("", svg)
    svg = MARK_LABEL.sub(r"<title>\1</title>", svg)
    if focusable:
        svg = svg.replace('<g class="dots">', '<g class="dots" tabindex="0">')
    return svg.replace("<svg ", '<svg role="img" ', 1)


def _run_words(run: Run) -> str:
    start = to_ist(run.started_at)
    end = f"–{to_ist(run.finished_at):%H:%M:%S}" if run.finished_at else ""
    duration = f", {seconds(run):.1f} s" if run.duration_ms is not None else ""
    error = f": {run.error}" if run.error else ""
    words = f"{clean(run.run_id, 64)} {status_words(run.status)} {start:%Y-%m-%d %H:%M:%S}{end} IST{duration}{error}"
    return clean(words, REASON_LENGTH + 120)


def status_words(status: str) -> str:
    """A status as people read it: `config` is a configuration error."""
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
            [f"{to_ist(run.started_at):%Y-%m-%d %H:%M:%S}", status_words(run.status), clean(run.error)]
            for run in runs.failures
        ]
    else:
        for run in runs.runs:
            point = {"value": (to_ist(run.started_at), statuses.index(run.status)), "label": _run_words(run)}
            series.setdefault(run.status, []).append(point)
            rows.append([f"{to_ist(run.started_at):%Y-%m-%d %H:%M:%S}", status_words(run.status), clean(run.error)])
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
    return _svg(chart, focusable=not runs.grouped), rows


def duration_chart(name: str, runs: JobRuns) -> tuple[str, list[list[str]]]:
    """Each run's duration (a frequent job: each day's median) with the period's p50 and p95 as lines."""
    rows: list[list[str]] = []
    chart = _chart(
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
        ordered = sorted(runs.durations)
        for label, fraction in (("p50", 0.5), ("p95", 0.95)):
            value = percentile(ordered, fraction) / 1000  # as jobstats computes them
            chart.add(f"{label} {value:.2f} s", [(first, value), (last, value)], show_dots=False)
            rows.append([label, f"{value:.3f}"])
    return _svg(chart), rows


WORK_COLOURS = ["#1565c0", "#c62828", "#90a4ae", "#6a1b9a", "#f9a825", "#2e7d32"]


def _number(value: Any) -> float | None:
    """A figure from a run's details if it is a number the chart can draw (finite, not absurd), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) and abs(value) < LARGEST_FIGURE else None


def figure_of(details: dict[str, Any], key: str, part: str | None) -> float | None:
    """One figure a job declares (JobSpec.work_figures) read from a run's details: details[key], or
    details[key][part]; None when it is missing or not a number the chart can draw."""
    value = details.get(key)
    if part is not None:
        value = value.get(part) if isinstance(value, dict) else None
    return _number(value)


def work_chart(spec: JobSpec, runs: JobRuns) -> tuple[str, list[list[str]], list[str]] | None:
    """The figures the job declares (JobSpec.work_figures) per run (a frequent job: the last run of each
    day); None for a job that declares none."""
    figures = spec.work_figures
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
    table = [(moment, [figure_of(details, key, part) for _, key, part in figures]) for moment, details in moments]
    chart = _chart(f"{spec.name}: work done", "count", WORK_COLOURS[: len(figures)], runs.window, dots_size=3)
    for column, (label, _, _) in enumerate(figures):
        chart.add(
            label,
            [
                {"value": (moment, values[column]), "label": f"{moment:%Y-%m-%d %H:%M} IST: {values[column]} {label}"}
                for moment, values in table
                if values[column] is not None
            ],
        )
    rows = [
        [f"{moment:%Y-%m-%d %H:%M}", *["" if value is None else str(value) for value in values]]
        for moment, values in table
    ]
    return _svg(chart), rows, [label for label, _, _ in figures]


# --- the page -------------------------------------------------------------------------------------


@dataclass
class JobSection:
    """One job's part of the page: its schedule, health, problems as --check judges them, and runs."""

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


def tile(section: JobSection, now: dt.datetime) -> str:
    """One job at a glance: its state in words and colour, its last and next run."""
    level = overall_level(section.problems)
    reasons = "".join(f"<li>{html.escape(clean(line))}</li>" for _, line in section.problems) or "<li>on schedule</li>"
    last = section.health.state.last_worked
    last_text = f"{status_words(last.status)}, {ist_words(last.started_at, now)}" if last is not None else "never"
    next_run = section.entry.next_run(now)
    headline = headline_of(section.health, now)
    drill = f"<p>{html.escape(clean(headline))}</p>" if headline else ""
    job = html.escape(section.entry.job)
    return (
        f'<section class="tile level-{LEVEL_NAMES[level].lower()}" id="tile-{job}" aria-label="{job}">'
        f"<h3>{job} <span class=state>{LEVEL_NAMES[level]}</span></h3><ul>{reasons}</ul>"
        f"<p>last run: {html.escape(last_text)}</p><p>next run: {next_run:%Y-%m-%d %H:%M} IST</p>{drill}</section>"
    )


def reason_of(run: Run) -> str:
    """Why a run did not succeed, in words: its error, or for a start that did no work its reason."""
    reason = run.error or (run.details.get("reason") if isinstance(run.details.get("reason"), str) else None)
    return clean(reason) if reason else "(no reason recorded)"


def failures_table(sections: list[JobSection]) -> str:
    """The newest runs of the period that did not succeed, every job together, each reason in words."""
    failures = [
        (run, section.entry.job) for section in sections for run in section.runs.failures if run.status != "running"
    ]
    failures.sort(key=lambda pair: pair[0].started_at, reverse=True)
    rows = [
        [
            f"{to_ist(run.started_at):%Y-%m-%d %H:%M:%S}",
            job,
            status_words(run.status),
            reason_of(run),
            clean(run.run_id, 64),
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
    worst = overall_level([problem for section in sections for problem in section.problems])
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
    parts += [tile(section, now) for section in sections]
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
        work = work_chart(section.entry.spec, section.runs)
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
    healths = [job_health(settings, entry, now) for entry in entries]  # damage: counted once, below
    problems = problems_by_job(healths, settings.home, now)
    since_text = format_utc(since) if since else None
    sections = [
        JobSection(
            entry,
            health,
            problems[entry.job],
            collect(entry, runs_since(settings.home, entry.job, since_text, damage), now, since),
        )
        for entry, health in zip(entries, healths, strict=True)
    ]
    return render_page(sections, now, since, damage.describe())


def write_report(
    path: Path, settings: Settings, entries: list[Entry], now: dt.datetime, since: dt.datetime | None
) -> Path:
    """Write the page to path under a temporary name beside it, then rename it into place; return path."""
    path = path.absolute()
    if not path.parent.is_dir():
        raise CasejobsError(f"{path.parent} does not exist")
    refuse_unless_replaceable(path)
    page = build_page(settings, entries, now, since)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
