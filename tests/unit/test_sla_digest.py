"""slaCheck's digest: each item's line (overdue, today, left; singular and plural; confidential titles redacted),
and one person's digest in order, with its title, its text and its HTML (names and titles escaped)."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.sla_check import Digest, SlaItem

DAY = dt.date(2026, 11, 28)


def item(
    days: int,
    kind: str = "case",
    title: str = "Sharma v. Union of India",
    case_number: str = "CASE-2026-000001",
    confidential: bool = False,
    item_id: int = 1,
) -> SlaItem:
    return SlaItem(kind, item_id, case_number, title, confidential, DAY - dt.timedelta(days=days), days, 5)


@pytest.mark.parametrize(
    ("days", "ending"),
    [
        (8, "due 2026-11-20 · 8 days overdue"),
        (1, "due 2026-11-27 · 1 day overdue"),
        (0, "due 2026-11-28 · due today"),
        (-1, "due 2026-11-29 · 1 day left"),
        (-3, "due 2026-12-01 · 3 days left"),
    ],
)
def test_a_line_says_how_late_or_how_soon_in_words(days: int, ending: str) -> None:
    assert item(days).line() == f"CASE-2026-000001 · Sharma v. Union of India · {ending}"


def test_a_task_is_marked_as_one_and_an_untitled_or_caseless_item_says_so() -> None:
    assert item(2, kind="task", title="Draft affidavit").line() == (
        "CASE-2026-000001 · task: Draft affidavit · due 2026-11-26 · 2 days overdue"
    )
    assert (
        item(0, kind="task", title="", case_number="").line()
        == "(no case) · task: (untitled) · due 2026-11-28 · due today"
    )


def test_the_title_of_a_confidential_case_and_of_its_tasks_is_redacted() -> None:
    case = item(3, title="Secret merger", confidential=True)
    task = item(-2, kind="task", title="Call the CFO", confidential=True)
    assert case.line() == "CASE-2026-000001 · [redacted] · due 2026-11-25 · 3 days overdue"
    assert task.line() == "CASE-2026-000001 · task: [redacted] · due 2026-11-30 · 2 days left"
    assert item(1, title="", confidential=True).line().startswith("CASE-2026-000001 · [redacted] ·")


def test_violations_come_first_most_overdue_first_then_warnings_soonest_first() -> None:
    items = [
        item(-3, item_id=1),
        item(2, item_id=2, case_number="CASE-B"),
        item(0, item_id=3),
        item(9, item_id=4),
        item(2, item_id=5, case_number="CASE-A"),
        item(-1, item_id=6),
    ]
    ordered = Digest(5, "Asha", "asha@firm.example", items).ordered()
    assert [one.item_id for one in ordered] == [4, 5, 2, 3, 6, 1]


def test_the_title_counts_violations_and_warnings_in_singular_and_plural() -> None:
    assert (
        Digest(5, "Asha", "", [item(1), item(0), item(-2)]).title(DAY)
        == "SLA digest 2026-11-28: 1 violation, 2 warnings"
    )
    assert Digest(5, "Asha", "", [item(0)]).title(DAY) == "SLA digest 2026-11-28: 0 violations, 1 warning"
    assert Digest(5, "Asha", "", [item(4), item(5)]).title(DAY) == "SLA digest 2026-11-28: 2 violations, 0 warnings"


def test_the_text_greets_the_cleaned_name_and_leaves_out_an_empty_section() -> None:
    digest = Digest(5, "Asha\r\nBcc: evil@attacker.example", "", [item(2, kind="task", title="File reply"), item(-1)])
    assert digest.text() == (
        "Hello Asha Bcc: evil@attacker.example,\n"
        "\n"
        "Violations (past their due date):\n"
        "- CASE-2026-000001 · task: File reply · due 2026-11-26 · 2 days overdue\n"
        "\n"
        "Warnings (due soon):\n"
        "- CASE-2026-000001 · Sharma v. Union of India · due 2026-11-29 · 1 day left\n"
    )
    only_warnings = Digest(5, "\u200b\t", "", [item(0)]).text()
    assert only_warnings.startswith("Hello colleague,\n\nWarnings (due soon):\n")
    assert "Violations" not in only_warnings


def test_the_html_escapes_the_name_and_every_line() -> None:
    digest = Digest(5, "<b>Asha</b> & Co", "", [item(1, title="<script>alert(1)</script> & sons")])
    page = digest.html(DAY)
    assert "<script>" not in page and "<b>Asha" not in page
    assert "<p>Hello &lt;b&gt;Asha&lt;/b&gt; &amp; Co,</p>" in page
    assert (
        "<li>CASE-2026-000001 · &lt;script&gt;alert(1)&lt;/script&gt; &amp; sons · due 2026-11-27 · 1 day overdue</li>"
        in page
    )
    assert page.startswith("<html><body><h2>SLA digest 2026-11-28: 1 violation, 0 warnings</h2>")
    assert "<h3>Violations (past their due date)</h3>" in page and "Warnings" not in page
