"""The reporting period: every date a query or measure needs, computed from one as-of date.

Queries receive these as bound parameters (``:as_of``, ``:year_ago``, ...), so the SQL needs no
dialect-specific date functions (DESIGN.md, Queries). Windows are half-open: "the last 12 months"
is ``year_ago < date <= as_of`` (INDICATORS.md, Conventions).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass


def financial_year(day: dt.date) -> int:
    """Start year of the financial year (1 April to 31 March) that contains ``day``."""
    return day.year if day.month >= 4 else day.year - 1


def add_months(day: dt.date, months: int) -> dt.date:
    """First day of the month ``months`` after (or before, if negative) ``day``'s month."""
    index = day.year * 12 + (day.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class ReportingPeriod:
    as_of: dt.date
    year_ago: dt.date  # as_of - 365 days: start (exclusive) of "the last 12 months"
    two_years_ago: dt.date  # as_of - 730 days
    quarter_ago: dt.date  # as_of - 90 days: start (exclusive) of "the last 90 days"
    weeks4_ago: dt.date  # as_of - 28 days
    days10_ago: dt.date  # as_of - 10 days
    as_of_plus28: dt.date  # as_of + 28 days: end (inclusive) of "ending in 28 days"
    fy_start: dt.date  # 1 April of the financial year containing as_of
    fy_end: dt.date  # 31 March following
    financial_year: int  # start year, as in budgets.financial_year
    trend_start: dt.date  # first day of the month 23 months before as_of's: 24 months in all

    @classmethod
    def for_date(cls, as_of: dt.date) -> ReportingPeriod:
        fy = financial_year(as_of)
        day = dt.timedelta(days=1)
        return cls(
            as_of=as_of,
            year_ago=as_of - 365 * day,
            two_years_ago=as_of - 730 * day,
            quarter_ago=as_of - 90 * day,
            weeks4_ago=as_of - 28 * day,
            days10_ago=as_of - 10 * day,
            as_of_plus28=as_of + 28 * day,
            fy_start=dt.date(fy, 4, 1),
            fy_end=dt.date(fy + 1, 3, 31),
            financial_year=fy,
            trend_start=add_months(as_of, -23),
        )

    def params(self) -> dict[str, dt.date | int]:
        """Every bound parameter a query may use, by name."""
        return asdict(self)
