"""Budget-tier measures: budget, paid, incurred, committed, forecast, variance and placements.

For a service element with daily rate ``weekly_cost / 7``, its span in the financial year runs
from ``s = max(start_date, fy_start)`` to ``t = min(end_date, else planned_end_date, else
fy_end; never after fy_end)``, days counted inclusively (INDICATORS.md, budget tier).
"""

from __future__ import annotations

import pandas as pd

from dashboard.indicators.measure import (
    MeasureInput,
    Measurement,
    counted,
    full_name,
    month_starts,
    running_at,
)

HIGH_COST_WEEKLY = 10_000.0
ONE_DAY = pd.Timedelta(days=1)


def elements(data: MeasureInput) -> pd.DataFrame:
    """Service elements of the cost centres in scope (all of them for the borough)."""
    return data.scope.filter_cost_centres(data.frame("service_elements"))


def fy_span(frame: pd.DataFrame, data: MeasureInput) -> tuple[pd.Series, pd.Series]:
    """(s, t): each element's span within the financial year."""
    fy_start, fy_end = data.day("fy_start"), data.day("fy_end")
    start = frame["start_date"].where(frame["start_date"] > fy_start, fy_start)
    end = frame["end_date"].fillna(frame["planned_end_date"]).fillna(fy_end)
    end = end.where(end < fy_end, fy_end)
    return start, end


def cost_between(frame: pd.DataFrame, first: pd.Series, last: pd.Series) -> pd.Series:
    """Daily rate x days from ``first`` to ``last`` inclusive (nothing when last < first)."""
    days = ((last - first) / ONE_DAY + 1).clip(lower=0).fillna(0)
    return frame["weekly_cost"].astype("float64").fillna(0.0) / 7.0 * days.astype("float64")


def incurred(frame: pd.DataFrame, data: MeasureInput) -> pd.Series:
    """Per element: incurred in the FY up to as_of (AUTHORISED or ENDED elements only)."""
    s, t = fy_span(frame, data)
    as_of = data.day()
    upto = t.where(t < as_of, as_of)
    cost = cost_between(frame, s, upto)
    return cost.where(frame["status"].isin(("AUTHORISED", "ENDED")).fillna(False), 0.0)


def still_to_come(frame: pd.DataFrame, data: MeasureInput, status: str) -> pd.Series:
    """Per element of ``status`` whose span runs after as_of: cost from max(as_of + 1, s) to t."""
    s, t = fy_span(frame, data)
    tomorrow = data.day() + ONE_DAY
    first = s.where(s > tomorrow, tomorrow)
    cost = cost_between(frame, first, t)
    keep = ((frame["status"] == status) & (t > data.day())).fillna(False).astype(bool)
    return cost.where(keep, 0.0)


def element_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "service_element_id": frame["service_element_id"],
            "child_id": frame["person_id"],
            "child_name": full_name(frame["first_names"], frame["last_name"]),
            "element_type": frame["element_type"],
            "provider": frame["provider_name"],
            "provider_type": frame["provider_type"],
            "cost_centre_code": frame["cost_centre_code"],
            "weekly_cost": frame["weekly_cost"],
            "start_date": frame["start_date"],
            "planned_end_date": frame["planned_end_date"],
            "end_date": frame["end_date"],
            "status": frame["status"],
        }
    )


def _money_rows(frame: pd.DataFrame, amounts: pd.Series, column: str) -> pd.DataFrame:
    rows = element_rows(frame)
    rows[column] = amounts.round(2)
    return rows[amounts > 0].sort_values(column, ascending=False).reset_index(drop=True)


def money(value: float) -> float:
    return round(float(value), 2)


def budget(data: MeasureInput) -> Measurement:
    frame = data.scope.filter_cost_centres(data.frame("budgets"))
    total = frame["revised_budget"].sum(min_count=1)
    value = None if pd.isna(total) else money(total)
    return Measurement(value, extra={"cost_centres": len(frame)})


def paid_to_date(data: MeasureInput) -> Measurement:
    frame = data.scope.filter_cost_centres(data.frame("payments_fy"))
    return Measurement(
        money(frame["amount"].sum()), extra={"payments": int(frame["payments"].sum())}
    )


def accrued_to_date(data: MeasureInput) -> Measurement:
    frame = elements(data)
    amounts = incurred(frame, data)
    return Measurement(money(amounts.sum()), rows=_money_rows(frame, amounts, "incurred"))


def committed(data: MeasureInput) -> Measurement:
    frame = elements(data)
    amounts = still_to_come(frame, data, "AUTHORISED")
    return Measurement(money(amounts.sum()), rows=_money_rows(frame, amounts, "committed"))


def awaiting_authorisation(data: MeasureInput) -> Measurement:
    frame = elements(data)
    amounts = still_to_come(frame, data, "AWAITING_AUTHORISATION")
    rows = _money_rows(frame, amounts, "awaiting")
    return Measurement(money(amounts.sum()), rows=rows, extra={"elements": len(rows)})


def forecast_outturn(data: MeasureInput) -> Measurement:
    frame = elements(data)
    accrued = incurred(frame, data).sum()
    to_come = still_to_come(frame, data, "AUTHORISED").sum()
    return Measurement(
        money(accrued + to_come), extra={"accrued": money(accrued), "committed": money(to_come)}
    )


def variance(data: MeasureInput) -> Measurement:
    """Forecast outturn minus budget (positive = overspend); RAG on the % of budget."""
    planned = budget(data).value
    forecast = forecast_outturn(data).value
    if planned is None or forecast is None:
        return Measurement(None, extra={"percent_of_budget": None})
    difference = money(forecast - planned)
    share = round(100.0 * difference / planned, 2) if planned else None
    return Measurement(difference, difference, planned, extra={"percent_of_budget": share})


def _running_authorised(data: MeasureInput) -> pd.DataFrame:
    frame = elements(data)
    keep = (frame["status"] == "AUTHORISED").fillna(False).astype(bool) & running_at(
        frame, data.day()
    )
    return frame[keep]


def active_placements(data: MeasureInput) -> Measurement:
    frame = _running_authorised(data)
    frame = frame[(frame["element_type"] == "PLACEMENT").fillna(False).astype(bool)]
    return counted(element_rows(frame).sort_values("weekly_cost", ascending=False))


def high_cost_placements(data: MeasureInput) -> Measurement:
    frame = _running_authorised(data)
    frame = frame[(frame["weekly_cost"] >= HIGH_COST_WEEKLY).fillna(False).astype(bool)]
    return counted(element_rows(frame).sort_values("weekly_cost", ascending=False))


def ending_soon(data: MeasureInput) -> Measurement:
    frame = _running_authorised(data)
    planned = frame["planned_end_date"]
    keep = ((planned > data.day()) & (planned <= data.day("as_of_plus28"))).fillna(False)
    return counted(element_rows(frame[keep.astype(bool)]).sort_values("planned_end_date"))


def spend_by_month(data: MeasureInput) -> pd.DataFrame:
    """Per month of the FY: incurred (to as_of), forecast (committed after as_of), budget / 12.

    The incurred column sums to accrued_to_date and the forecast column to committed.
    """
    frame = elements(data)
    s, t = fy_span(frame, data)
    as_of = data.day()
    tomorrow = as_of + ONE_DAY
    spent = frame["status"].isin(("AUTHORISED", "ENDED")).fillna(False).astype(bool)
    coming = ((frame["status"] == "AUTHORISED") & (t > as_of)).fillna(False).astype(bool)
    planned = budget(data).value
    months = []
    for month in month_starts(data.period.fy_start, data.period.fy_end):
        month_end = month + pd.offsets.MonthEnd(0)
        first = s.where(s > month, month)
        last = t.where(t < month_end, month_end)
        upto = last.where(last < as_of, as_of)
        incurred_month = cost_between(frame, first, upto).where(spent, 0.0).sum()
        from_day = first.where(first > tomorrow, tomorrow)
        forecast_month = cost_between(frame, from_day, last).where(coming, 0.0).sum()
        months.append(
            {
                "month": month,
                "incurred": money(incurred_month),
                "forecast": money(forecast_month),
                "budget": None if planned is None else money(planned / 12.0),
            }
        )
    out = pd.DataFrame(months)
    out["cumulative"] = (out["incurred"] + out["forecast"]).cumsum().round(2)
    return out


def placements_by_provider_type(data: MeasureInput) -> pd.DataFrame:
    """Active placements by provider type: count and average weekly cost."""
    rows = active_placements(data).rows
    if rows is None or rows.empty:
        return pd.DataFrame({"provider_type": [], "placements": [], "average_weekly_cost": []})
    grouped = rows.assign(provider_type=rows["provider_type"].fillna("UNKNOWN")).groupby(
        "provider_type", as_index=False
    )
    out = grouped.agg(
        placements=("service_element_id", "size"), average_weekly_cost=("weekly_cost", "mean")
    )
    out["average_weekly_cost"] = out["average_weekly_cost"].astype("float64").round(2)
    return out.sort_values("placements", ascending=False).reset_index(drop=True)


def incurred_by_month(
    frame: pd.DataFrame, data: MeasureInput, months: list[pd.Timestamp]
) -> list[float]:
    """Spend incurred per calendar month (not limited to the FY) up to as_of, for trends.

    An element runs from start_date to end_date, else planned_end_date, else as_of.
    """
    spent = frame[frame["status"].isin(("AUTHORISED", "ENDED")).fillna(False).astype(bool)]
    as_of = data.day()
    end = spent["end_date"].fillna(spent["planned_end_date"]).fillna(as_of)
    end = end.where(end < as_of, as_of)
    out = []
    for month in months:
        month_end = month + pd.offsets.MonthEnd(0)
        first = spent["start_date"].where(spent["start_date"] > month, month)
        last = end.where(end < month_end, month_end)
        out.append(money(cost_between(spent, first, last).sum()))
    return out
