"""What a measure receives and returns, and the small arithmetic every measure shares.

A measure is a plain function ``(MeasureInput) -> Measurement``: frames from one set of
snapshots, a resolved scope and a reporting period in; a value with its numerator, denominator,
extras and the drill-down rows out. The tile's number and its drill-down come from the same rows,
so "17 overdue" always opens a list of 17 (DESIGN.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dashboard.model import Thresholds
from dashboard.partition import PartitionedFrames
from dashboard.reporting import ReportingPeriod
from dashboard.scopes import ResolvedScope

DEFAULT_POPULATION = 60_000  # the demo borough's children aged 0-17 (demo-data default)


class MissingDataset(LookupError):
    """A measure needs a dataset that has no snapshot."""


@dataclass(frozen=True)
class MeasureInput:
    frames: Mapping[str, pd.DataFrame]
    scope: ResolvedScope
    period: ReportingPeriod
    population: int = DEFAULT_POPULATION
    thresholds: Mapping[str, Thresholds | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Frames from the data layer carry their rows grouped by team and cost centre: the
        # scope's filters take its rows by position, also for inputs built from these frames
        # later (the team matrix's one per team), so per-scope work follows the scope's rows.
        if isinstance(self.frames, PartitionedFrames):
            object.__setattr__(self, "scope", self.scope.using(self.frames))

    def frame(self, dataset_id: str) -> pd.DataFrame:
        try:
            return self.frames[dataset_id]
        except KeyError:
            raise MissingDataset(dataset_id) from None

    def derived(
        self, dataset_id: str, name: str, build: Callable[[pd.DataFrame], pd.DataFrame]
    ) -> pd.DataFrame:
        """``build`` applied to a dataset's frame: once per version of the dataset when the
        frames come from the data layer (shared by every scope), else every call. ``build`` must
        depend on the frame alone, and its result must not be changed."""
        frame = self.frame(dataset_id)
        if isinstance(self.frames, PartitionedFrames):
            return self.frames.derived(frame, name, build)
        return build(frame)

    def day(self, name: str = "as_of") -> pd.Timestamp:
        """A date of the reporting period as a Timestamp, to compare with date columns."""
        return pd.Timestamp(getattr(self.period, name))


@dataclass(frozen=True)
class Measurement:
    value: float | int | None
    numerator: float | int | None = None
    denominator: float | int | None = None
    rows: pd.DataFrame | None = None  # the drill-down: the rows the number counts
    extra: Mapping[str, Any] = field(default_factory=dict)


def percent(numerator: float, denominator: float) -> float | None:
    """A share from 0 to 100, two decimals; no value when the denominator is zero."""
    if not denominator:
        return None
    return round(100.0 * numerator / denominator, 2)


def ratio(numerator: float, denominator: float) -> float | None:
    if not denominator:
        return None
    return round(numerator / denominator, 2)


def per_10k(count: float, population: int) -> float | None:
    if not population:
        return None
    return round(10_000.0 * count / population, 2)


def counted(rows: pd.DataFrame, **extra: Any) -> Measurement:
    """A count indicator: its value is the number of drill-down rows, by construction."""
    rows = rows.reset_index(drop=True)
    return Measurement(len(rows), rows=rows, extra=extra)


def running_at(
    frame: pd.DataFrame, at: pd.Timestamp, start: str = "start_date", end: str = "end_date"
) -> pd.Series:
    """Started on or before ``at`` and not ended (no end, or an end after ``at``)."""
    return (
        ((frame[start] <= at) & (frame[end].isna() | (frame[end] > at))).fillna(False).astype(bool)
    )


def in_window(series: pd.Series, after: pd.Timestamp, upto: pd.Timestamp) -> pd.Series:
    """Half-open window ``after < date <= upto`` (INDICATORS.md conventions)."""
    return ((series > after) & (series <= upto)).fillna(False).astype(bool)


def full_name(first: pd.Series, last: pd.Series) -> pd.Series:
    """'First Last' from two name columns; either may be empty."""
    first = first.astype("string").fillna("")
    last = last.astype("string").fillna("")
    return (first + " " + last).str.strip()


def days_between(later: pd.Series | pd.Timestamp, earlier: pd.Series | pd.Timestamp) -> pd.Series:
    return (later - earlier).dt.days.astype("Int64")


def month_starts(first: dt.date, last: dt.date) -> list[pd.Timestamp]:
    """First days of every month from ``first``'s month to ``last``'s, inclusive."""
    return list(
        pd.date_range(
            pd.Timestamp(first).to_period("M").to_timestamp(),
            pd.Timestamp(last).to_period("M").to_timestamp(),
            freq="MS",
        )
    )
