"""Borough-tier measures on hand-built frames. Reporting date 2025-10-15, so "the last 12
months" is 2024-10-16 .. 2025-10-15 (year_ago = 2024-10-15). Population 10,000: a rate per
10,000 children equals the count."""

from __future__ import annotations

import datetime as dt

from indicator_frames import inputs

from dashboard.indicators import borough

AS_OF = dt.date(2025, 10, 15)


def referral(referral_id, person_id, day, team_id=1):
    return {
        "referral_id": referral_id,
        "person_id": person_id,
        "referral_date": day,
        "team_id": team_id,
    }


REFERRALS = [
    referral(1, 1, "2024-10-15"),  # ON year_ago: outside the window, but in the look-back
    referral(2, 1, "2025-10-15"),  # ON as_of: in; R1 is exactly 365 days before -> re-referral
    referral(3, 2, "2025-01-10"),  # in; child 2's earlier referral is 366 days before -> not
    referral(4, 2, "2024-01-10"),  # outside the window
    referral(5, 3, "2025-03-01"),  # in; same day as R6: neither is strictly before the other
    referral(6, 3, "2025-03-01"),  # in
    referral(7, 4, "2025-06-01"),  # in; first
    referral(8, 4, "2025-08-01", team_id=2),  # in; R7 is 61 days before -> re-referral
]


def test_referrals_in_the_last_12_months_and_per_10k():
    result = borough.referrals_12m(inputs({"referrals": REFERRALS}, AS_OF))
    assert sorted(result.rows["referral_id"]) == [2, 3, 5, 6, 7, 8]
    assert (result.value, result.extra["per_10k"]) == (6, 6.0)
    # Per 10,000 follows the configured population: 6 / 60,000 x 10,000 = 1.0.
    assert (
        borough.referrals_12m(inputs({"referrals": REFERRALS}, AS_OF, population=60_000)).extra[
            "per_10k"
        ]
        == 1.0
    )


def test_rereferral_rate_looks_back_365_days_strictly_before():
    result = borough.rereferral_rate(inputs({"referrals": REFERRALS}, AS_OF))
    flagged = sorted(result.rows.loc[result.rows["rereferral"], "referral_id"])
    assert flagged == [2, 8]
    assert (result.value, result.numerator, result.denominator) == (33.33, 2, 6)


def test_rates_count_distinct_children():
    cases = [
        {"referral_id": 1, "person_id": 1, "referral_date": "2025-01-01", "team_id": 1},
        {"referral_id": 2, "person_id": 1, "referral_date": "2025-02-01", "team_id": 2},
        {"referral_id": 3, "person_id": 2, "referral_date": "2025-03-01", "team_id": 1},
    ]
    result = borough.cin_rate(inputs({"open_cases": cases}, AS_OF))
    assert (result.value, result.numerator, result.denominator) == (2.0, 2, 10_000)
    assert len(result.rows) == 2


def plan(plan_id, person_id, start, end=None, earlier=False):
    return {
        "cp_plan_id": plan_id,
        "person_id": person_id,
        "start_date": start,
        "end_date": end,
        "has_earlier_plan": earlier,
    }


PLANS = [
    plan(1, 10, "2023-01-01"),  # open
    plan(2, 11, "2025-10-15"),  # starts ON as_of: open; started in the window, a first plan
    plan(3, 12, "2023-10-15", end="2025-10-14"),  # ended in window after exactly 730 days
    plan(4, 13, "2025-10-16"),  # starts after as_of: not open
    plan(5, 10, "2024-01-01", earlier=True),  # the same child again: counted once
    plan(6, 14, "2024-06-02", end="2025-06-01"),  # ended in window after 364 days
    plan(7, 15, "2022-01-01", end="2024-10-15"),  # ended ON year_ago: outside
    plan(8, 16, "2025-01-01", end="2025-10-15", earlier=True),  # started in window; ends ON as_of
    plan(9, 17, "2024-10-15", earlier=True),  # started ON year_ago: outside
]


def test_cp_rate_counts_children_with_a_plan_open_at_as_of():
    # Open at as_of: plans 1, 2, 5, 9 (plan 8 ends ON as_of, plan 4 starts after): children
    # 10, 11, 17 -> 3.
    result = borough.cp_rate(inputs({"cp_plans": PLANS}, AS_OF))
    assert (result.value, result.numerator) == (3.0, 3)


def test_cp_plans_lasting_two_years():
    # Ended in the window: plans 3 (730 days: counts), 6 (364), 8 (287) -> 1 of 3 = 33.33%.
    result = borough.cp_plans_2yrs(inputs({"cp_plans": PLANS}, AS_OF))
    assert (result.value, result.numerator, result.denominator) == (33.33, 1, 3)


def test_second_cp_plans():
    # Started in the window: plans 2 (first) and 8 (second) -> 50.00%.
    result = borough.second_cp_plans(inputs({"cp_plans": PLANS}, AS_OF))
    assert (result.value, result.numerator, result.denominator) == (50.0, 1, 2)


def period(period_id, person_id, start, end=None, placements=0):
    return {
        "period_of_care_id": period_id,
        "person_id": person_id,
        "start_date": start,
        "end_date": end,
        "placements_12m": placements,
    }


def test_looked_after_rate_and_placement_moves():
    periods = [
        period(1, 20, "2024-01-01", placements=3),  # in care; 3 placements this year
        period(2, 21, "2025-10-15", placements=1),  # comes into care ON as_of
        period(3, 22, "2020-01-01", end="2025-10-15", placements=4),  # left ON as_of: out
        period(4, 23, "2025-02-01", placements=2),
    ]
    data = inputs({"looked_after": periods}, AS_OF)
    assert borough.cla_rate(data).value == 3.0
    moves = borough.placement_moves(data)
    assert (moves.value, moves.numerator, moves.denominator) == (33.33, 1, 3)


def test_zero_denominators_have_no_value():
    data = inputs({"referrals": [], "cp_plans": [], "looked_after": []}, AS_OF)
    for measure in (
        borough.rereferral_rate,
        borough.cp_plans_2yrs,
        borough.second_cp_plans,
        borough.placement_moves,
    ):
        result = measure(data)
        assert (result.value, result.denominator) == (None, 0)
    assert borough.referrals_12m(data).value == 0


def test_trends_are_24_months_counted_by_month():
    data = inputs({"referrals": REFERRALS}, AS_OF)
    trend = borough.trend_referrals(data)
    # trend_start is 2023-11-01; 24 months to October 2025.
    assert len(trend) == 24
    assert trend["month"].iloc[0] == dt.datetime(2023, 11, 1)
    by_month = dict(zip(trend["month"].dt.strftime("%Y-%m"), trend["value"], strict=True))
    assert by_month["2024-01"] == 1  # R4
    assert by_month["2024-10"] == 1  # R1
    assert by_month["2025-03"] == 2  # R5, R6
    assert by_month["2025-10"] == 1  # R2
    assert sum(by_month.values()) == 8
