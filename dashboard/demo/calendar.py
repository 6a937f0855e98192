"""Day arithmetic for the generator: dates as integer day numbers, working days as in England.

Every date inside the generator is an ``int64`` day number (days since 1970-01-01), so whole
columns move with numpy arithmetic. Statutory timescales count working days, which exclude
weekends and England's bank holidays (CALIBRATION.md); ``numpy.busday_offset`` does the counting
against a calendar built from the ``holidays`` package.
"""

from __future__ import annotations

import datetime as dt

import holidays
import numpy as np

NULL = np.int64(-(10**9))  # "no value" in integer and day-number columns
_EPOCH = dt.date(1970, 1, 1)


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01."""
    return (day - _EPOCH).days


def to_date(number: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(number))


class WorkingCalendar:
    """England's working days between two years (inclusive), for vectorised offsets."""

    def __init__(self, first_year: int, last_year: int) -> None:
        bank_holidays = holidays.country_holidays(
            "GB", subdiv="ENG", years=range(first_year, last_year + 1)
        )
        days = np.array(sorted(bank_holidays), dtype="datetime64[D]")
        self._calendar = np.busdaycalendar(weekmask="1111100", holidays=days)

    def add(self, days: np.ndarray, working_days: np.ndarray | int) -> np.ndarray:
        """The working day ``working_days`` after each day (a non-working day rolls forward first)."""
        dates = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
        moved = np.busday_offset(dates, working_days, roll="forward", busdaycal=self._calendar)
        return moved.astype(np.int64)

    def count(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Working days in ``[start, end)`` for each pair."""
        first = np.asarray(start, dtype=np.int64).astype("datetime64[D]")
        last = np.asarray(end, dtype=np.int64).astype("datetime64[D]")
        return np.busday_count(first, np.maximum(first, last), busdaycal=self._calendar)


def add_years(days: np.ndarray, years: int | np.ndarray) -> np.ndarray:
    """The same calendar day ``years`` later (29 February becomes 28 February)."""
    dates = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    month = dates.astype("datetime64[M]")
    day_in_month = dates - month.astype("datetime64[D]")
    target = month + (np.asarray(years, dtype=np.int64) * 12).astype("timedelta64[M]")
    last_day = (target + np.timedelta64(1, "M")).astype("datetime64[D]") - np.timedelta64(1, "D")
    return np.minimum(target.astype("datetime64[D]") + day_in_month, last_day).astype(np.int64)


def financial_year_of(days: np.ndarray) -> np.ndarray:
    """Start year of the financial year (1 April - 31 March) holding each day."""
    dates = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return np.where(months >= 4, years, years - 1)


def fy_start_day(year: int) -> int:
    return day_number(dt.date(year, 4, 1))
