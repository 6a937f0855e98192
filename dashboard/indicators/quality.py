"""Data-quality measures: the missing fields and orphan records that make numbers untrusted.

These are extras beyond INDICATORS.md's tables, for every user's data-quality view.
"""

from __future__ import annotations

import pandas as pd

from dashboard.indicators.budget import element_rows
from dashboard.indicators.measure import MeasureInput, Measurement, counted
from dashboard.indicators.team import case_rows, open_steps, step_rows


def _children(frame: pd.DataFrame) -> pd.DataFrame:
    return case_rows(frame).drop_duplicates("child_id")


def children_missing_dob(data: MeasureInput) -> Measurement:
    frame = data.scope.filter_teams(data.frame("open_cases"))
    return counted(_children(frame[frame["date_of_birth"].isna()]))


def children_missing_ethnicity(data: MeasureInput) -> Measurement:
    frame = data.scope.filter_teams(data.frame("open_cases"))
    code = frame["ethnicity_code"].astype("string").str.strip()
    return counted(_children(frame[(code.isna() | (code == "")).fillna(True).astype(bool)]))


def steps_without_due_date(data: MeasureInput) -> Measurement:
    frame = open_steps(data)
    return counted(step_rows(frame[frame["due_date"].isna()], data))


def elements_without_cost_centre(data: MeasureInput) -> Measurement:
    """Elements in the financial year (not cancelled) whose cost centre is empty: their spend
    is on no budget holder's forecast."""
    frame = data.frame("service_elements")
    code = frame["cost_centre_code"].astype("string").str.strip()
    in_year = (frame["start_date"] <= data.day("fy_end")) & (
        frame["end_date"].isna() | (frame["end_date"] >= data.day("fy_start"))
    )
    keep = (
        (code.isna() | (code == "")).fillna(True)
        & in_year.fillna(False)
        & (frame["status"] != "CANCELLED").fillna(True)
    )
    return counted(element_rows(frame[keep.astype(bool)]))


def payments_without_element(data: MeasureInput) -> Measurement:
    frame = data.scope.filter_cost_centres(data.frame("orphan_payments"))
    return counted(frame.reset_index(drop=True), amount=round(float(frame["amount"].sum()), 2))
