"""The reporting period's dates, worked by hand (INDICATORS.md conventions)."""

import datetime as dt

from dashboard.reporting import ReportingPeriod, add_months, financial_year


def test_period_for_a_november_date():
    p = ReportingPeriod.for_date(dt.date(2026, 11, 25))
    assert p.year_ago == dt.date(2025, 11, 25)
    assert p.quarter_ago == dt.date(2026, 8, 27)
    assert p.weeks4_ago == dt.date(2026, 10, 28)
    assert p.days10_ago == dt.date(2026, 11, 15)
    assert p.as_of_plus28 == dt.date(2026, 12, 23)
    assert (p.fy_start, p.fy_end, p.financial_year) == (
        dt.date(2026, 4, 1),
        dt.date(2027, 3, 31),
        2026,
    )
    assert p.trend_start == dt.date(2024, 12, 1)


def test_financial_year_turns_on_1_april():
    assert financial_year(dt.date(2027, 3, 31)) == 2026
    assert financial_year(dt.date(2027, 4, 1)) == 2027
    assert add_months(dt.date(2026, 1, 31), -1) == dt.date(2025, 12, 1)
