"""Borough-tier measures: referrals, rates per 10,000, conferences, plans, stability, trends."""

from __future__ import annotations

import pandas as pd

from dashboard.indicators.budget import incurred_by_month
from dashboard.indicators.measure import (
    MeasureInput,
    Measurement,
    counted,
    full_name,
    in_window,
    month_starts,
    per_10k,
    percent,
    running_at,
)
from dashboard.indicators.team import on_time

YEAR = pd.Timedelta(days=365)
TWO_YEARS_DAYS = 730


def referral_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "referral_id": frame["referral_id"],
            "child_id": frame["person_id"],
            "child_name": full_name(frame["first_names"], frame["last_name"]),
            "referral_date": frame["referral_date"],
            "source_code": frame["source_code"],
            "primary_need_code": frame["primary_need_code"],
            "team_id": frame["team_id"],
        }
    )


def referrals_in_year(data: MeasureInput) -> pd.DataFrame:
    frame = data.scope.filter_teams(data.frame("referrals"))
    return frame[in_window(frame["referral_date"], data.day("year_ago"), data.day())]


def referrals_12m(data: MeasureInput) -> Measurement:
    rows = referral_rows(referrals_in_year(data)).sort_values("referral_date")
    result = counted(rows)
    return Measurement(
        result.value,
        rows=result.rows,
        extra={"per_10k": per_10k(len(rows), data.population), "population": data.population},
    )


def rereferral_flags(data: MeasureInput) -> pd.DataFrame:
    """The last 12 months' referrals, each flagged when the same child had another referral
    dated on or after 365 days before it and strictly before it."""
    recent = referrals_in_year(data)
    everything = data.frame("referrals")[["referral_id", "person_id", "referral_date"]]
    pairs = recent[["referral_id", "person_id", "referral_date"]].merge(
        everything, on="person_id", suffixes=("", "_earlier")
    )
    earlier = (
        (
            (pairs["referral_id_earlier"] != pairs["referral_id"])
            & (pairs["referral_date_earlier"] < pairs["referral_date"])
            & (pairs["referral_date_earlier"] >= pairs["referral_date"] - YEAR)
        )
        .fillna(False)
        .astype(bool)
    )
    flagged = set(pairs.loc[earlier, "referral_id"].astype(int))
    rows = referral_rows(recent)
    rows["rereferral"] = rows["referral_id"].astype(int).isin(flagged)
    return rows


def rereferral_rate(data: MeasureInput) -> Measurement:
    rows = rereferral_flags(data).sort_values(
        ["rereferral", "referral_date"], ascending=[False, True]
    )
    numerator, denominator = int(rows["rereferral"].sum()), len(rows)
    return Measurement(
        percent(numerator, denominator), numerator, denominator, rows=rows.reset_index(drop=True)
    )


def _children_rate(frame: pd.DataFrame, rows: pd.DataFrame, data: MeasureInput) -> Measurement:
    children = int(frame["person_id"].dropna().nunique())
    return Measurement(
        per_10k(children, data.population),
        children,
        data.population,
        rows=rows.reset_index(drop=True),
        extra={"children": children},
    )


def cin_rate(data: MeasureInput) -> Measurement:
    # The dataset holds exactly the cases open at as_of; a child with two open cases counts once.
    frame = data.scope.filter_teams(data.frame("open_cases"))
    rows = pd.DataFrame(
        {
            "child_id": frame["person_id"],
            "child_name": full_name(frame["first_names"], frame["last_name"]),
            "referral_id": frame["referral_id"],
            "referral_date": frame["referral_date"],
            "team_id": frame["team_id"],
        }
    ).drop_duplicates("child_id")
    return _children_rate(frame, rows, data)


def _open_plans(data: MeasureInput) -> pd.DataFrame:
    frame = data.frame("cp_plans")
    return frame[running_at(frame, data.day())]


def plan_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cp_plan_id": frame["cp_plan_id"],
            "child_id": frame["person_id"],
            "child_name": full_name(frame["first_names"], frame["last_name"]),
            "start_date": frame["start_date"],
            "end_date": frame["end_date"],
            "initial_category": frame["initial_category"],
            "latest_category": frame["latest_category"],
        }
    )


def cp_rate(data: MeasureInput) -> Measurement:
    frame = _open_plans(data)
    return _children_rate(frame, plan_rows(frame).drop_duplicates("child_id"), data)


def care_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "period_of_care_id": frame["period_of_care_id"],
            "child_id": frame["person_id"],
            "child_name": full_name(frame["first_names"], frame["last_name"]),
            "uasc": frame["uasc_flag"],
            "start_date": frame["start_date"],
            "end_date": frame["end_date"],
            "legal_status": frame["legal_status"],
            "placements_12m": frame["placements_12m"],
        }
    )


def _in_care(data: MeasureInput) -> pd.DataFrame:
    frame = data.frame("looked_after")
    return frame[running_at(frame, data.day())]


def cla_rate(data: MeasureInput) -> Measurement:
    frame = _in_care(data)
    return _children_rate(frame, care_rows(frame).drop_duplicates("child_id"), data)


def icpc_on_time(data: MeasureInput) -> Measurement:
    return on_time(data, "ICPC", "year_ago")


def cp_plans_2yrs(data: MeasureInput) -> Measurement:
    frame = data.frame("cp_plans")
    frame = frame[in_window(frame["end_date"], data.day("year_ago"), data.day())]
    rows = plan_rows(frame)
    rows["days"] = (frame["end_date"] - frame["start_date"]).dt.days.astype("Int64")
    rows["two_years_or_more"] = (rows["days"] >= TWO_YEARS_DAYS).fillna(False).astype(bool)
    numerator, denominator = int(rows["two_years_or_more"].sum()), len(rows)
    return Measurement(
        percent(numerator, denominator),
        numerator,
        denominator,
        rows=rows.sort_values("days", ascending=False).reset_index(drop=True),
    )


def second_cp_plans(data: MeasureInput) -> Measurement:
    frame = data.frame("cp_plans")
    frame = frame[in_window(frame["start_date"], data.day("year_ago"), data.day())]
    rows = plan_rows(frame)
    rows["second_or_later"] = frame["has_earlier_plan"].fillna(False).astype(bool)
    numerator, denominator = int(rows["second_or_later"].sum()), len(rows)
    return Measurement(
        percent(numerator, denominator),
        numerator,
        denominator,
        rows=rows.sort_values("second_or_later", ascending=False).reset_index(drop=True),
    )


def placement_moves(data: MeasureInput) -> Measurement:
    """Children in care at as_of with 3 or more placements starting in the last 12 months."""
    rows = care_rows(_in_care(data))
    rows["placements_12m"] = rows["placements_12m"].astype("Int64").fillna(0)
    rows = rows.sort_values("placements_12m", ascending=False).drop_duplicates("child_id")
    rows["three_or_more"] = (rows["placements_12m"] >= 3).astype(bool)
    numerator, denominator = int(rows["three_or_more"].sum()), len(rows)
    return Measurement(
        percent(numerator, denominator), numerator, denominator, rows=rows.reset_index(drop=True)
    )


# --- trends: 24 months by month ------------------------------------------------------------

TREND_DATASETS = {
    "trend_referrals": ("referrals",),
    "trend_assessments": ("assessments_completed",),
    "trend_cp_starts": ("cp_plans",),
    "trend_care_starts": ("looked_after",),
    "trend_spend": ("service_elements",),
}


def trend_months(data: MeasureInput) -> list[pd.Timestamp]:
    return month_starts(data.period.trend_start, data.period.as_of)


def _monthly_count(dates: pd.Series, data: MeasureInput) -> pd.DataFrame:
    months = trend_months(data)
    dates = dates[((dates >= months[0]) & (dates <= data.day())).fillna(False).astype(bool)]
    counts = dates.dt.to_period("M").dt.to_timestamp().value_counts()
    return pd.DataFrame({"month": months, "value": [int(counts.get(month, 0)) for month in months]})


def trend_referrals(data: MeasureInput) -> pd.DataFrame:
    frame = data.scope.filter_teams(data.frame("referrals"))
    return _monthly_count(frame["referral_date"], data)


def trend_assessments(data: MeasureInput) -> pd.DataFrame:
    frame = data.scope.filter_teams(data.frame("assessments_completed"))
    return _monthly_count(frame["completed_on"], data)


def trend_cp_starts(data: MeasureInput) -> pd.DataFrame:
    return _monthly_count(data.frame("cp_plans")["start_date"], data)


def trend_care_starts(data: MeasureInput) -> pd.DataFrame:
    return _monthly_count(data.frame("looked_after")["start_date"], data)


def trend_spend(data: MeasureInput) -> pd.DataFrame:
    frame = data.scope.filter_cost_centres(data.frame("service_elements"))
    months = trend_months(data)
    return pd.DataFrame({"month": months, "value": incurred_by_month(frame, data, months)})


TREND_CHARTS = {
    "trend_referrals": trend_referrals,
    "trend_assessments": trend_assessments,
    "trend_cp_starts": trend_cp_starts,
    "trend_care_starts": trend_care_starts,
    "trend_spend": trend_spend,
}


def trends(data: MeasureInput) -> Measurement:
    """All five monthly series side by side (month, referrals, assessments, ...)."""
    table = pd.DataFrame({"month": trend_months(data)})
    for chart_id, chart in TREND_CHARTS.items():
        table[chart_id.removeprefix("trend_")] = chart(data)["value"].to_numpy()
    return Measurement(None, rows=table, extra={"months": len(table)})
