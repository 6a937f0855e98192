"""Budget-tier measures on hand-built service elements; every sum is worked out below.

Reporting date 2025-10-15, financial year 2025-04-01 .. 2026-03-31. Days are inclusive:
2025-04-01..2025-10-15 = 198 days; 2025-10-16..2026-03-31 = 167 days (198 + 167 = 365).
A weekly cost of 700 is 100 a day.
"""

from __future__ import annotations

import datetime as dt

import pytest
from indicator_frames import inputs

from dashboard.indicators import budget

AS_OF = dt.date(2025, 10, 15)


def element(
    element_id,
    status,
    weekly,
    start,
    cc,
    *,
    end=None,
    planned=None,
    element_type="PLACEMENT",
    provider_type="IFA",
):
    return {
        "service_element_id": element_id,
        "status": status,
        "weekly_cost": weekly,
        "start_date": start,
        "end_date": end,
        "planned_end_date": planned,
        "cost_centre_code": cc,
        "element_type": element_type,
        "person_id": 700 + element_id,
        "provider_type": provider_type,
        "provider_name": f"Provider {element_id}",
    }


ELEMENTS = [
    # E1: running all year: incurred 198 x 100 = 19,800; committed 167 x 100 = 16,700.
    element(1, "AUTHORISED", 700, "2025-01-01", "CC1"),
    # E2: ended in May, 10 days x 200 = 2,000 incurred; ENDED commits nothing.
    element(2, "ENDED", 1400, "2025-05-01", "CC1", end="2025-05-10", element_type="SUPPORT"),
    # E3: starts later in the FY: nothing incurred; committed 2025-12-01..2026-01-31 = 62 days
    # x 100 = 6,200.
    element(3, "AUTHORISED", 700, "2025-12-01", "CC1", planned="2026-01-31"),
    # E4: awaiting authorisation from 2025-11-01 to the FY end: 151 days x 50 = 7,550.
    element(4, "AWAITING_AUTHORISATION", 350, "2025-11-01", "CC2", element_type="SUPPORT"),
    # E5: ends ON as_of: incurred 198 days = 19,800; not running at as_of; commits nothing.
    element(5, "AUTHORISED", 700, "2024-01-01", "CC1", end="2025-10-15"),
    # E6: cancelled: never counts.
    element(6, "CANCELLED", 700, "2025-04-01", "CC1"),
    # E7: planned end 2025-10-20: incurred 198 days = 19,800; committed 10-16..10-20 = 5 days
    # = 500; ending within 28 days.
    element(
        7,
        "AUTHORISED",
        700,
        "2025-03-01",
        "CC2",
        planned="2025-10-20",
        provider_type="IN_HOUSE_FOSTERING",
    ),
    # E8: high cost, 14,000 a week = 2,000 a day, from 2025-10-01, planned end after the FY:
    # incurred 15 days = 30,000; committed 167 days = 334,000.
    element(
        8,
        "AUTHORISED",
        14000,
        "2025-10-01",
        "CC2",
        planned="2026-06-30",
        provider_type="CHILDRENS_HOME",
    ),
    # E9: no cost centre (messy data): counted for the borough only. 7 a day x 198 = 1,386
    # incurred; 167 x 7 = 1,169 committed.
    element(9, "AUTHORISED", 49, "2025-04-01", None, element_type="TRANSPORT"),
]

BUDGETS = [
    {"cost_centre_code": "CC1", "description": "One", "revised_budget": 60_000},
    {"cost_centre_code": "CC2", "description": "Two", "revised_budget": 427_000},
    {"cost_centre_code": "CC3", "description": "No budget set"},
]


def data(scope="borough"):
    return inputs({"service_elements": ELEMENTS, "budgets": BUDGETS}, AS_OF, scope)


@pytest.mark.parametrize(
    ("scope", "accrued", "committed", "awaiting"),
    [
        # CC1: 19,800 + 2,000 + 19,800 incurred; 16,700 + 6,200 committed.
        ("cost_centre:CC1", 41_600, 22_900, 0),
        # CC2: 19,800 + 30,000 incurred; 500 + 334,000 committed; 7,550 awaiting.
        ("cost_centre:CC2", 49_800, 334_500, 7_550),
        # Borough: both plus E9 (no cost centre): 91,400 + 1,386; 357,400 + 1,169.
        ("borough", 92_786, 358_569, 7_550),
    ],
)
def test_incurred_committed_and_awaiting(scope, accrued, committed, awaiting):
    assert budget.accrued_to_date(data(scope)).value == accrued
    assert budget.committed(data(scope)).value == committed
    assert budget.awaiting_authorisation(data(scope)).value == awaiting
    assert budget.forecast_outturn(data(scope)).value == accrued + committed


def test_variance_against_budget_with_rag_basis_in_percent():
    # CC1: 64,500 - 60,000 = 4,500 overspend = 7.50% of budget.
    cc1 = budget.variance(data("cost_centre:CC1"))
    assert (cc1.value, cc1.extra["percent_of_budget"]) == (4_500, 7.5)
    # CC2: 384,300 - 427,000 = -42,700 = -10.00%.
    cc2 = budget.variance(data("cost_centre:CC2"))
    assert (cc2.value, cc2.extra["percent_of_budget"]) == (-42_700, -10.0)
    # Borough: 451,355 - 487,000 = -35,645 = -7.3193...% -> -7.32.
    borough = budget.variance(data())
    assert (borough.value, borough.extra["percent_of_budget"]) == (-35_645, -7.32)


def test_a_cost_centre_without_a_budget_has_no_budget_or_variance():
    assert budget.budget(data("cost_centre:CC3")).value is None
    assert budget.variance(data("cost_centre:CC3")).value is None


def test_running_placements_high_cost_and_ending_soon():
    # Running at as_of, AUTHORISED, PLACEMENT: E1, E7, E8 (E3 starts later, E5 ended ON as_of).
    active = budget.active_placements(data())
    assert sorted(active.rows["service_element_id"]) == [1, 7, 8]
    assert active.value == 3
    assert budget.active_placements(data("cost_centre:CC1")).value == 1
    assert list(budget.high_cost_placements(data()).rows["service_element_id"]) == [8]
    # Planned end in (2025-10-15, 2025-11-12]: E7 (2025-10-20) only.
    assert list(budget.ending_soon(data()).rows["service_element_id"]) == [7]


def test_ending_soon_boundaries():
    rows = [
        element(1, "AUTHORISED", 700, "2025-01-01", "CC1", planned="2025-10-15"),  # not after
        element(2, "AUTHORISED", 700, "2025-01-01", "CC1", planned="2025-11-12"),  # last day in
        element(3, "AUTHORISED", 700, "2025-01-01", "CC1", planned="2025-11-13"),  # a day out
    ]
    result = budget.ending_soon(inputs({"service_elements": rows, "budgets": BUDGETS}, AS_OF))
    assert list(result.rows["service_element_id"]) == [2]


def test_spend_profile_sums_to_incurred_and_committed():
    profile = budget.spend_by_month(data())
    assert len(profile) == 12
    assert profile["month"].iloc[0] == dt.datetime(2025, 4, 1)
    assert round(profile["incurred"].sum(), 2) == 92_786
    assert round(profile["forecast"].sum(), 2) == 358_569
    # April: E1, E5, E7 at 100 a day and E9 at 7 a day for 30 days = 9,210. Nothing is
    # forecast for a month before as_of.
    april = profile.iloc[0]
    assert (april["incurred"], april["forecast"], april["budget"]) == (
        9_210,
        0,
        40_583.33,
    )  # 487,000 / 12


def test_paid_to_date_per_cost_centre_and_borough():
    payments = [
        {"cost_centre_code": "CC1", "payments": 2, "amount": 100.5},
        {"cost_centre_code": "CC2", "payments": 1, "amount": 50},
        {"cost_centre_code": None, "payments": 1, "amount": 10},
    ]
    frames = {"payments_fy": payments, "budgets": BUDGETS}
    assert budget.paid_to_date(inputs(frames, AS_OF, "cost_centre:CC1")).value == 100.5
    assert budget.paid_to_date(inputs(frames, AS_OF)).value == 160.5


def test_placements_by_provider_type():
    chart = budget.placements_by_provider_type(data())
    by_type = dict(zip(chart["provider_type"], chart["placements"], strict=True))
    assert by_type == {"IFA": 1, "IN_HOUSE_FOSTERING": 1, "CHILDRENS_HOME": 1}
