"""CNRs and the messy values of real eCourts data."""

from __future__ import annotations

import datetime as dt

import pytest

from lib.ecourts import CaseError, normalise_cnr, parse_case, parse_messy_date

TODAY = dt.date(2026, 11, 25)


@pytest.mark.parametrize(
    "written", ["MHAU010012342023", "mhau01-001234-2023", " MHAU01 001234 2023 ", "MHAU01-001234-2023"]
)
def test_a_cnr_is_normalised(written: str) -> None:
    assert normalise_cnr(written, TODAY) == ("MHAU010012342023", None)


@pytest.mark.parametrize(
    ("written", "why"),
    [
        (None, "no CNR"),
        ("  ", "no CNR"),
        ("MH12-00-2023", "not 4 letters and 12 digits"),
        ("MHAU0100123420231", "not 4 letters and 12 digits"),
        ("MHAU010000002023", "all-zero serial"),
        ("DLHC010000121949", "year 1949"),
        ("DLHC010000122028", "year 2028"),
    ],
)
def test_an_invalid_cnr_says_why(written: str | None, why: str) -> None:
    cnr, problem = normalise_cnr(written, TODAY)
    assert cnr is None and why in problem


def test_next_year_is_a_valid_cnr_year() -> None:
    assert normalise_cnr("DLHC010000122027", TODAY)[0] == "DLHC010000122027"


@pytest.mark.parametrize(
    "written", ["2024-03-15", "15-03-2024", "15/03/2024", "15th March 2024", "2024-03-15T00:00:00Z", " 15.03.2024 "]
)
def test_dates_as_the_courts_write_them(written: str) -> None:
    assert parse_messy_date(written) == dt.date(2024, 3, 15)


@pytest.mark.parametrize(
    "placeholder", ["", None, "--", "---", "0", "Next Date is not given", "Not Available", "31/02/2024", 0]
)
def test_placeholders_and_impossible_dates_are_no_date(placeholder: object) -> None:
    assert parse_messy_date(placeholder) is None


def test_day_first_wins_when_both_could_be_the_month() -> None:
    assert parse_messy_date("03/04/2024") == dt.date(2024, 4, 3)


def body(**court_case: object) -> dict:
    return {"data": {"courtCaseData": {"cnr": "MHAU010012342023", **court_case}, "entityInfo": {"dateModified": "x"}}}


def test_a_case_is_read_however_untidy() -> None:
    case = parse_case(
        body(
            caseStatus="under trial",
            nextHearingDate="18th December 2026",
            purpose="Arguments",
            judges=["Justice A", "", None],
            historyOfCaseHearings=[
                {"hearingDate": "02-03-2025", "purpose": "Evidence"},
                {"hearingDate": "2025-01-10", "purpose": "Appearance"},
                {"hearingDate": "02/03/2025", "purpose": "Evidence"},
                {"hearingDate": "--", "purpose": "Mention"},
                "not a row",
            ],
            interimOrders=[
                {"orderNumber": "1", "orderDate": "01/02/2025", "orderUrl": "u1"},
                {"orderNumber": None, "orderDate": None},
            ],
            judgmentOrders=None,
        ),
        "MHAU010012342023",
    )
    assert case.status == "UNKNOWN"
    assert case.next_hearing_date == dt.date(2026, 12, 18)
    assert [hearing.date for hearing in case.hearings] == [dt.date(2025, 1, 10), dt.date(2025, 3, 2)]
    assert [(order.kind, order.number, order.date) for order in case.orders] == [("INTERIM", "1", dt.date(2025, 2, 1))]
    assert (case.judge, case.stage) == ("Justice A", "Arguments")


def test_missing_sections_are_empty() -> None:
    case = parse_case(body(caseStatus="DISPOSED"), "MHAU010012342023")
    assert (case.status, case.hearings, case.orders, case.next_hearing_date) == ("DISPOSED", (), (), None)


def test_the_case_of_another_cnr_is_an_error() -> None:
    with pytest.raises(CaseError, match="another CNR"):
        parse_case(body(), "DLHC010000122020")


def test_a_body_without_a_case_is_an_upstream_fault() -> None:
    with pytest.raises(CaseError) as raised:
        parse_case({"data": None}, "MHAU010012342023")
    assert raised.value.upstream_fault
