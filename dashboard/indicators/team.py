"""Team-tier measures: cases, caseloads, overdue work, sign-off and timeliness (INDICATORS.md).

Cases are scoped by the case team, steps by the step team, caseloads by the worker team. A
service or borough value is the same computation over more teams: sums of numerators over sums
of denominators, never an average of team percentages.
"""

from __future__ import annotations

import pandas as pd

from dashboard.indicators.measure import (
    MeasureInput,
    Measurement,
    counted,
    days_between,
    full_name,
    in_window,
    percent,
    ratio,
)

CASE_HOLDING_ROLES = ("SW", "ASYE", "SENIOR_PRACTITIONER")
OPEN_STEP_STATUSES = ("INCOMING", "STARTED", "REOPENED")


def case_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Open cases as a drill-down list."""
    return pd.DataFrame(
        {
            "referral_id": frame["referral_id"],
            "child_id": frame["person_id"],
            "child_name": full_name(frame["first_names"], frame["last_name"]),
            "date_of_birth": frame["date_of_birth"],
            "ethnicity_code": frame["ethnicity_code"],
            "family_group_id": frame["group_id"],
            "referral_date": frame["referral_date"],
            "worker_id": frame["worker_id"],
            "worker_name": full_name(frame["worker_first_names"], frame["worker_last_names"]),
            "team_id": frame["team_id"],
        }
    )


def step_rows(frame: pd.DataFrame, data: MeasureInput) -> pd.DataFrame:
    """Workflow steps as a drill-down list: child, step, worker, team, dates, days overdue."""
    as_of = data.day()
    out = pd.DataFrame(
        {
            "workflow_step_id": frame["workflow_step_id"],
            "child_id": frame["person_id"],
            "child_name": full_name(frame["first_names"], frame["last_name"]),
            "category": frame["category"],
            "step": frame["step_description"]
            if "step_description" in frame
            else frame["step_code"],
            "step_status": frame["step_status"],
            "worker_id": frame["assignee_id"],
            "worker_name": full_name(frame["worker_first_names"], frame["worker_last_names"]),
            "team_id": frame["team_id"],
        }
    )
    for column in (
        "incoming_on",
        "started_on",
        "due_date",
        "completed_on",
        "authorisation_requested_on",
    ):
        if column in frame:
            out[column] = frame[column]
    if "due_date" in frame:
        overdue = days_between(as_of, frame["due_date"])
        out["days_overdue"] = overdue.where(overdue > 0)
    return out


def open_steps(data: MeasureInput) -> pd.DataFrame:
    """Open steps of teams in scope (the dataset already applies the open-step rule)."""
    frame = data.scope.filter_teams(data.frame("open_steps"))
    is_open = frame["step_status"].isin(OPEN_STEP_STATUSES) & (frame["incoming_on"] <= data.day())
    return frame[is_open.fillna(False).astype(bool)]


def open_cases(data: MeasureInput) -> Measurement:
    return counted(case_rows(data.scope.filter_teams(data.frame("open_cases"))))


def unallocated_cases(data: MeasureInput) -> Measurement:
    frame = data.scope.filter_teams(data.frame("open_cases"))
    return counted(case_rows(frame[frame["worker_id"].isna()]))


def active_workers(data: MeasureInput) -> pd.DataFrame:
    """One row per active worker: their primary role running at as_of (the latest started if
    messy data holds several), with the worker team and their running ALLWKR allocations.

    Borough-wide (a worker who moved keeps only their latest team), so it is built once per
    version of the workforce and shared by every team's caseload."""
    return data.derived("workforce", "active_workers", _one_row_per_worker)


def _one_row_per_worker(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.sort_values(["worker_id", "role_start_date", "worker_role_id"])
    return frame.drop_duplicates("worker_id", keep="last")


# Frames derived from one dataset that every scope's measures share, by dataset: the data layer
# builds them when it loads a new version, before any page asks.
DERIVED_FRAMES = {"workforce": (("active_workers", _one_row_per_worker),)}


def caseload_rows(data: MeasureInput) -> pd.DataFrame:
    """Active case-holding workers of teams in scope, with children held and caseload per FTE."""
    # The scope's teams first: their rows of the shared frame are indexed (a team's caseload
    # reads its own workers, not the borough's).
    workers = data.scope.filter_teams(active_workers(data))
    workers = workers[workers["role"].isin(CASE_HOLDING_ROLES).fillna(False).astype(bool)]
    fte = workers["fte"].astype("float64")
    children = workers["allocations"].astype("Int64").fillna(0)
    return pd.DataFrame(
        {
            "worker_id": workers["worker_id"],
            "worker_name": full_name(workers["first_names"], workers["last_names"]),
            "role": workers["role"],
            "is_agency": workers["is_agency"],
            "fte": fte,
            "children": children,
            "children_per_fte": (children.astype("float64") / fte.where(fte > 0)).round(2),
            "team_id": workers["team_id"],
        }
    ).reset_index(drop=True)


def average_caseload(data: MeasureInput) -> Measurement:
    rows = caseload_rows(data)
    children = int(rows["children"].sum())
    fte = round(float(rows["fte"].sum()), 4)
    return Measurement(ratio(children, fte), children, fte, rows=rows, extra={"workers": len(rows)})


def overdue_steps(data: MeasureInput) -> Measurement:
    frame = open_steps(data)
    overdue = frame[(frame["due_date"] < data.day()).fillna(False).astype(bool)]
    rows = step_rows(overdue, data).sort_values("days_overdue", ascending=False)
    return counted(rows)


def awaiting_signoff(data: MeasureInput) -> Measurement:
    frame = data.scope.filter_teams(data.frame("signoff_queue"))
    waiting = (
        (
            (frame["authorisation_requested_on"] <= data.day())
            & (frame["step_status"] != "CANCELLED")
        )
        .fillna(False)
        .astype(bool)
    )
    frame = frame[waiting]
    rows = step_rows(frame, data)
    rows["days_waiting"] = days_between(data.day(), frame["authorisation_requested_on"])
    rows = rows.drop(columns=["days_overdue"], errors="ignore")
    rows = rows.sort_values("days_waiting", ascending=False)
    oldest = int(rows["days_waiting"].max()) if len(rows) else None
    return counted(rows, oldest_wait_days=oldest)


def on_time(data: MeasureInput, category: str, window_start: str) -> Measurement:
    """On-time rate for a step category over ``window_start < due_date <= as_of``.

    Denominator: steps of the category, neither PROPOSED nor CANCELLED, due in the window.
    Numerator: those COMPLETED with completed_on <= due_date. Not done yet counts as late.
    """
    frame = data.scope.filter_teams(data.frame("step_timeliness"))
    keep = (
        (
            (frame["category"] == category)
            & ~frame["step_status"].isin(("PROPOSED", "CANCELLED"))
            & in_window(frame["due_date"], data.day(window_start), data.day())
        )
        .fillna(False)
        .astype(bool)
    )
    frame = frame[keep]
    done = (
        ((frame["step_status"] == "COMPLETED") & (frame["completed_on"] <= frame["due_date"]))
        .fillna(False)
        .astype(bool)
    )
    rows = step_rows(frame, data).drop(columns=["days_overdue"])
    rows["on_time"] = done.to_numpy()
    rows = rows.sort_values(["on_time", "due_date"]).reset_index(drop=True)
    numerator, denominator = int(done.sum()), len(frame)
    return Measurement(
        percent(numerator, denominator),
        numerator,
        denominator,
        rows=rows,
        extra={"late": denominator - numerator},
    )


def assessments_on_time(data: MeasureInput) -> Measurement:
    return on_time(data, "ASSESSMENT", "year_ago")


def cp_visits_on_time(data: MeasureInput) -> Measurement:
    return on_time(data, "CP_VISIT", "quarter_ago")


def cla_visits_on_time(data: MeasureInput) -> Measurement:
    return on_time(data, "CLA_VISIT", "quarter_ago")


def cla_reviews_on_time(data: MeasureInput) -> Measurement:
    return on_time(data, "CLA_REVIEW", "year_ago")


def unfinished_steps(data: MeasureInput) -> Measurement:
    frame = open_steps(data)
    keep = (
        (
            frame["step_status"].isin(("STARTED", "REOPENED"))
            & (frame["due_date"] < data.day("weeks4_ago"))
        )
        .fillna(False)
        .astype(bool)
    )
    return counted(step_rows(frame[keep], data).sort_values("due_date"))


def unstarted_steps(data: MeasureInput) -> Measurement:
    frame = open_steps(data)
    keep = (
        ((frame["step_status"] == "INCOMING") & (frame["incoming_on"] < data.day("days10_ago")))
        .fillna(False)
        .astype(bool)
    )
    return counted(step_rows(frame[keep], data).sort_values("incoming_on"))


# Measures whose result for a scope depends only on the rows of the scope's teams (by
# ``team_id``) in the frames they read (their datasets', and those derived from them in
# DERIVED_FRAMES) and on the reporting period. When a new snapshot leaves those rows as they
# were, the data layer knows the result is unchanged without computing it (at regional scale a
# workforce change in one team would otherwise recompute every team's caseloads to tell).
# A measure that looks at other teams' rows (a child's earlier referral in any team, a
# borough-wide rank) must not be listed here.
TEAM_LOCAL = frozenset(
    {
        open_cases,
        unallocated_cases,
        average_caseload,
        overdue_steps,
        awaiting_signoff,
        assessments_on_time,
        cp_visits_on_time,
        cla_visits_on_time,
        cla_reviews_on_time,
        unfinished_steps,
        unstarted_steps,
    }
)
