"""Chart data for the pages: each chart is a plain function (MeasureInput) -> DataFrame.

Chart ids (DataLayer.chart):

========================== ============================================ =====================
id                         rows                                         datasets
========================== ============================================ =====================
caseload_by_worker         one per case-holding worker: children, FTE   workforce
overdue_by_category        step category, overdue count                 open_steps
signoff_queue              steps waiting for sign-off, oldest first     signoff_queue
timeliness_by_category     category, on time, due, rate (%)             step_timeliness
spend_by_month             FY month: incurred, forecast, budget / 12    service_elements, budgets
placements_by_provider_type provider type: placements, avg weekly cost  service_elements
trend_referrals            month, value (24 months)                     referrals
trend_assessments          month, value                                 assessments_completed
trend_cp_starts            month, value                                 cp_plans
trend_care_starts          month, value                                 looked_after
trend_spend                month, value (incurred, pounds)              service_elements
trends                     month + all five series                      the five above
========================== ============================================ =====================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from dashboard.indicators import borough, budget, team
from dashboard.indicators.measure import MeasureInput, percent
from dashboard.model import Tier

TIMED_CATEGORIES = {
    "ASSESSMENT": "year_ago",
    "ICPC": "year_ago",
    "CP_VISIT": "quarter_ago",
    "CLA_VISIT": "quarter_ago",
    "CLA_REVIEW": "year_ago",
}


def caseload_by_worker(data: MeasureInput) -> pd.DataFrame:
    return team.caseload_rows(data).sort_values("children", ascending=False).reset_index(drop=True)


def overdue_by_category(data: MeasureInput) -> pd.DataFrame:
    rows = team.overdue_steps(data).rows
    assert rows is not None
    counts = rows["category"].fillna("UNKNOWN").value_counts()
    return pd.DataFrame({"category": counts.index.astype(str), "overdue": counts.to_numpy()})


def signoff_queue(data: MeasureInput) -> pd.DataFrame:
    rows = team.awaiting_signoff(data).rows
    assert rows is not None
    return rows


def timeliness_by_category(data: MeasureInput) -> pd.DataFrame:
    out = []
    for category, window in TIMED_CATEGORIES.items():
        result = team.on_time(data, category, window)
        out.append(
            {
                "category": category,
                "on_time": result.numerator,
                "due": result.denominator,
                "rate": percent(result.numerator or 0, result.denominator or 0),
            }
        )
    return pd.DataFrame(out)


def trends(data: MeasureInput) -> pd.DataFrame:
    rows = borough.trends(data).rows
    assert rows is not None
    return rows


@dataclass(frozen=True)
class Chart:
    id: str
    tier: Tier
    datasets: tuple[str, ...]
    build: Callable[[MeasureInput], pd.DataFrame]
    borough_only: bool = False


CHARTS: dict[str, Chart] = {
    chart.id: chart
    for chart in (
        Chart("caseload_by_worker", "team", ("workforce",), caseload_by_worker),
        Chart("overdue_by_category", "team", ("open_steps",), overdue_by_category),
        Chart("signoff_queue", "team", ("signoff_queue",), signoff_queue),
        Chart("timeliness_by_category", "team", ("step_timeliness",), timeliness_by_category),
        Chart("spend_by_month", "budget", ("service_elements", "budgets"), budget.spend_by_month),
        Chart(
            "placements_by_provider_type",
            "budget",
            ("service_elements",),
            budget.placements_by_provider_type,
        ),
        Chart("trend_referrals", "team", ("referrals",), borough.trend_referrals),
        Chart("trend_assessments", "team", ("assessments_completed",), borough.trend_assessments),
        Chart("trend_cp_starts", "borough", ("cp_plans",), borough.trend_cp_starts),
        Chart("trend_care_starts", "borough", ("looked_after",), borough.trend_care_starts),
        Chart("trend_spend", "budget", ("service_elements",), borough.trend_spend),
        Chart(
            "trends",
            "borough",
            ("referrals", "assessments_completed", "cp_plans", "looked_after", "service_elements"),
            trends,
        ),
    )
}

# Charts whose rows for a scope depend only on its teams' rows (as ``team.TEAM_LOCAL``).
TEAM_LOCAL_CHARTS = frozenset({"caseload_by_worker", "overdue_by_category", "signoff_queue"})
