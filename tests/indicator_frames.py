"""Small typed frames for measure unit tests, shaped exactly like the datasets' declared columns.

``frame("open_steps", [{...}, ...])`` gives the frame ``run_dataset`` would return for those rows
(unlisted columns empty), so measures are tested on the same dtypes they meet in production.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from dashboard.config import PROJECT_ROOT
from dashboard.datasets import load_dataset
from dashboard.indicators.measure import MeasureInput
from dashboard.indicators.rag import effective_thresholds
from dashboard.model import Scope
from dashboard.reporting import ReportingPeriod
from dashboard.scopes import resolve

QUERIES = PROJECT_ROOT / "queries"

# Directorate 100; service 10 with teams 1 and 2; service 20 with team 3.
ORGANISATION = [
    {"org_id": 100, "name": "Directorate", "org_level": "DIRECTORATE"},
    {"org_id": 10, "name": "Service Ten", "org_level": "SERVICE", "parent_org_id": 100},
    {"org_id": 20, "name": "Service Twenty", "org_level": "SERVICE", "parent_org_id": 100},
    {"org_id": 1, "name": "Team One", "org_level": "TEAM", "parent_org_id": 10},
    {"org_id": 2, "name": "Team Two", "org_level": "TEAM", "parent_org_id": 10},
    {"org_id": 3, "name": "Team Three", "org_level": "TEAM", "parent_org_id": 20},
]


def _column(values: list[Any], kind: str) -> pd.Series:
    if kind == "int":
        return pd.Series(pd.array(values, dtype="Int64"))
    if kind == "float":
        return pd.Series([None if v is None else float(v) for v in values], dtype="float64")
    if kind == "date":
        parsed = [None if v is None else pd.Timestamp(v) for v in values]
        return pd.Series(parsed, dtype="datetime64[ns]")
    if kind == "bool":
        return pd.Series(pd.array(values, dtype="boolean"))
    return pd.Series(pd.array(values, dtype="string"))


def _every_column() -> set[str]:
    return {name for path in QUERIES.glob("*.sql") for name in load_dataset(path).columns}


def frame(dataset_id: str, rows: Sequence[Mapping[str, Any]], strict: bool = True) -> pd.DataFrame:
    """A frame of the dataset's declared columns. With ``strict``, a row's unknown key is a
    test mistake; shared row builders (one step shape for several datasets) pass False, and
    then only a key no dataset has (a typo) is."""
    columns = load_dataset(QUERIES / f"{dataset_id}.sql").columns
    known = set(columns) if strict else _every_column()
    for row in rows:
        unknown = set(row) - known
        if unknown:
            raise KeyError(f"{dataset_id} has no column(s) {sorted(unknown)}")
    return pd.DataFrame(
        {name: _column([row.get(name) for row in rows], kind) for name, kind in columns.items()}
    )


def inputs(
    frames: Mapping[str, Sequence[Mapping[str, Any]]],
    as_of: dt.date,
    scope: str = "borough",
    population: int = 10_000,
) -> MeasureInput:
    """A MeasureInput over hand-built rows, with the test organisation and any budgets given."""
    built = {key: frame(key, rows, strict=False) for key, rows in frames.items()}
    built.setdefault("organisation", frame("organisation", ORGANISATION))
    codes = set(built["budgets"]["cost_centre_code"]) if "budgets" in built else set()
    resolved = resolve(Scope.parse(scope), built["organisation"], codes)
    return MeasureInput(
        built, resolved, ReportingPeriod.for_date(as_of), population, effective_thresholds(None)
    )
