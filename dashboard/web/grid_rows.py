"""One block of a list's rows, as AG Grid's infinite row model asks for it.

A drill-down or an inline list can hold a hundred thousand rows at borough level; sending them
all to the browser costs tens of megabytes per click. So the grids use AG Grid's infinite row
model: the browser asks for one block at a time (``getRowsRequest``: ``startRow``, ``endRow``,
the grid's ``sortModel`` and ``filterModel``), and the server, which keeps the whole list in
the data layer's cache, filters, sorts and slices it here and answers with that block and the
number of rows the filter leaves (``rowCount``, so the grid's scroll bar is the right size).

Plain functions of a frame and the request the browser sent, so tests call them directly:

    request = parse_request(raw)             # GridRequestError (the web layer answers 400)
    rows, total = block(frame, request)      # the slice, and the rows after filtering

The filters are the grid's default column filters (``agTextColumnFilter``,
``agNumberColumnFilter``, ``agDateColumnFilter``), one or two conditions joined by AND or OR,
with the grid's own meaning: text matching ignores case; "not equal" and "does not contain" let
empty text through; number and date comparisons leave empty cells out; "in range" excludes both
ends; a date filter compares whole days. Anything else (another filter type, a column the list
does not have) is refused, never ignored: a list filtered differently from what the user asked
would show a wrong count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# Rows per block: what the grid asks for at a time (its ``cacheBlockSize``). A block of the
# widest list is well under 100 KB of JSON; a request for more is refused.
BLOCK_ROWS = 200
# Sort keys and filtered columns one request may name: far above any list's columns.
MAX_COLUMNS = 50
MAX_TEXT = 200  # characters of one filter's text

TEXT_TYPES = frozenset(
    {"contains", "notContains", "equals", "notEqual", "startsWith", "endsWith", "blank", "notBlank"}
)
SCALAR_TYPES = frozenset(
    {
        "equals",
        "notEqual",
        "lessThan",
        "lessThanOrEqual",
        "greaterThan",
        "greaterThanOrEqual",
        "inRange",
        "blank",
        "notBlank",
    }
)
FILTER_TYPES = {"text": TEXT_TYPES, "number": SCALAR_TYPES, "date": SCALAR_TYPES}
# Conditions whose meaning needs no value.
NO_VALUE = frozenset({"blank", "notBlank"})
EPOCH, ONE_DAY = pd.Timestamp("1970-01-01"), pd.Timedelta(days=1)


class GridRequestError(ValueError):
    """The browser's block request is not one the grid sends (the web layer answers 400)."""


@dataclass(frozen=True)
class Condition:
    """One condition of a column filter: ``kind`` is text, number or date."""

    kind: str
    type: str
    value: Any = None  # text, a number, or a date
    value_to: Any = None  # the other end of "inRange"


@dataclass(frozen=True)
class ColumnFilter:
    conditions: tuple[Condition, ...]
    operator: str = "AND"  # how two conditions combine


@dataclass(frozen=True)
class BlockRequest:
    start: int
    end: int
    sort: tuple[tuple[str, bool], ...] = ()  # (column, ascending), most significant first
    filters: Mapping[str, ColumnFilter] | None = None


# ----------------------------------------------------------------------------- parsing


def parse_request(raw: Any, max_rows: int = BLOCK_ROWS) -> BlockRequest:
    """The block the browser asked for, checked for shape (not yet against a frame's columns)."""
    if not isinstance(raw, dict):
        raise GridRequestError("a block request must be an object")
    start, end = raw.get("startRow"), raw.get("endRow")
    if not _whole(start) or not _whole(end) or not 0 <= start < end:
        raise GridRequestError("startRow and endRow must be whole numbers, 0 <= start < end")
    if end - start > max_rows:
        raise GridRequestError(f"at most {max_rows} rows per block")
    return BlockRequest(
        start=int(start),
        end=int(end),
        sort=_parse_sort(raw.get("sortModel")),
        filters=_parse_filters(raw.get("filterModel")),
    )


def _parse_sort(model: Any) -> tuple[tuple[str, bool], ...]:
    if model is None:
        return ()
    if not isinstance(model, list) or len(model) > MAX_COLUMNS:
        raise GridRequestError("sortModel must be a list")
    keys = []
    for item in model:
        if not isinstance(item, dict) or not isinstance(item.get("colId"), str):
            raise GridRequestError("each sort needs a colId")
        if item.get("sort") not in ("asc", "desc"):
            raise GridRequestError("sort must be asc or desc")
        keys.append((item["colId"], item["sort"] == "asc"))
    return tuple(keys)


def _parse_filters(model: Any) -> dict[str, ColumnFilter]:
    if model is None:
        return {}
    if not isinstance(model, dict) or len(model) > MAX_COLUMNS:
        raise GridRequestError("filterModel must be an object of column filters")
    filters = {}
    for column, spec in model.items():
        if not isinstance(spec, dict):
            raise GridRequestError(f"the filter of {column[:40]!r} must be an object")
        kind = spec.get("filterType")
        if kind not in FILTER_TYPES:
            raise GridRequestError(f"unsupported filter type {str(kind)[:40]!r}")
        if "conditions" in spec:
            parts = spec["conditions"]
            operator = spec.get("operator", "AND")
            if not isinstance(parts, list) or not 1 <= len(parts) <= 2:
                raise GridRequestError("a filter has one or two conditions")
            if operator not in ("AND", "OR"):
                raise GridRequestError("conditions join with AND or OR")
            conditions = tuple(_condition(kind, p) for p in parts)
        else:
            operator, conditions = "AND", (_condition(kind, spec),)
        filters[column] = ColumnFilter(conditions, operator)
    return filters


def _condition(kind: str, spec: Any) -> Condition:
    if not isinstance(spec, dict):
        raise GridRequestError("a filter condition must be an object")
    if spec.get("filterType", kind) != kind:
        raise GridRequestError("a filter's conditions must be of its own type")
    kind_type = spec.get("type")
    if kind_type not in FILTER_TYPES[kind]:
        raise GridRequestError(f"unsupported {kind} filter {str(kind_type)[:40]!r}")
    if kind_type in NO_VALUE:
        return Condition(kind, kind_type)
    if kind == "text":
        value = spec.get("filter")
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise GridRequestError(f"a text filter needs text (at most {MAX_TEXT} characters)")
        return Condition(kind, kind_type, value.lower())
    if kind == "number":
        value, value_to = spec.get("filter"), spec.get("filterTo")
        parse = _number
    else:
        value, value_to = spec.get("dateFrom"), spec.get("dateTo")
        parse = _date
    return Condition(
        kind, kind_type, parse(value), parse(value_to) if kind_type == "inRange" else None
    )


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise GridRequestError("a number filter needs a number")
    return float(value)


def _date(value: Any) -> dt.date:
    """The grid sends dates as ``YYYY-MM-DD hh:mm:ss``; only the day counts."""
    if not isinstance(value, str) or len(value) > 40:
        raise GridRequestError("a date filter needs a date")
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise GridRequestError("a date filter needs a date (YYYY-MM-DD)") from None


# ----------------------------------------------------------------------------- rows


def block(frame: pd.DataFrame, request: BlockRequest) -> tuple[pd.DataFrame, int]:
    """The rows ``request`` asks for, and how many rows the filter leaves in all."""
    shown = sort_rows(filter_rows(frame, request.filters or {}), request.sort)
    return shown.iloc[request.start : request.end], len(shown)


def filter_rows(frame: pd.DataFrame, filters: Mapping[str, ColumnFilter]) -> pd.DataFrame:
    """The rows that pass every column's filter, in their order."""
    if not filters:
        return frame
    _known(frame, filters)
    keep = pd.Series(True, index=frame.index)
    for column, spec in filters.items():
        masks = [_mask(frame[column], c) for c in spec.conditions]
        combined = masks[0]
        for mask in masks[1:]:
            combined = combined & mask if spec.operator == "AND" else combined | mask
        keep &= combined
    return frame[keep.to_numpy()]


def sort_rows(frame: pd.DataFrame, keys: tuple[tuple[str, bool], ...]) -> pd.DataFrame:
    """Rows ordered by ``keys``; ties keep the list's own order, so blocks never overlap."""
    if not keys or frame.empty:
        return frame
    _known(frame, dict(keys))
    columns = [c for c, _ in keys]
    try:
        return frame.sort_values(
            columns, ascending=[a for _, a in keys], kind="stable", na_position="last"
        )
    except TypeError:  # a column mixing numbers and text: order it as text
        return frame.sort_values(
            columns,
            ascending=[a for _, a in keys],
            kind="stable",
            na_position="last",
            key=lambda s: s.map(lambda v: v if v is None or v is pd.NA else str(v)),
        )


def _known(frame: pd.DataFrame, columns: Mapping[str, Any]) -> None:
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise GridRequestError(f"the list has no column {str(unknown[0])[:40]!r}")


def _mask(series: pd.Series, condition: Condition) -> pd.Series:
    if condition.kind == "text":
        return _text_mask(series, condition)
    if condition.kind == "number":
        values = pd.to_numeric(series, errors="coerce").astype("float64")
    else:
        values = _days(series)
    return _scalar_mask(values, condition)


def _text_mask(series: pd.Series, condition: Condition) -> pd.Series:
    missing = series.isna()
    text = series.astype("string").str.lower().fillna("")
    empty = missing | (text.str.strip() == "")
    kind, value = condition.type, condition.value
    if kind == "blank":
        return empty
    if kind == "notBlank":
        return ~empty
    matched = {
        "contains": lambda: text.str.contains(value, regex=False),
        "notContains": lambda: ~text.str.contains(value, regex=False),
        "equals": lambda: text == value,
        "notEqual": lambda: text != value,
        "startsWith": lambda: text.str.startswith(value),
        "endsWith": lambda: text.str.endswith(value),
    }[kind]()
    matched = matched.fillna(False).astype(bool)
    # As the grid does: a missing value passes "not equal" and "does not contain" only.
    if kind in ("notEqual", "notContains"):
        return matched | missing
    return matched & ~missing


def _days(series: pd.Series) -> pd.Series:
    """Each cell as a day number (NaN where empty or not a date), comparable with a filter's."""
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = series
    else:  # ISO text or ``datetime.date`` objects, as the lists hold them
        stamps = pd.to_datetime(series.astype("string"), errors="coerce", format="ISO8601")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    return ((stamps.dt.normalize() - EPOCH) / ONE_DAY).astype("float64")


def _scalar_mask(values: pd.Series, condition: Condition) -> pd.Series:
    missing = values.isna()
    kind = condition.type
    if kind == "blank":
        return missing
    if kind == "notBlank":
        return ~missing
    value, value_to = _comparable(condition.value), _comparable(condition.value_to)
    result = {
        "equals": lambda: values == value,
        "notEqual": lambda: values != value,
        "lessThan": lambda: values < value,
        "lessThanOrEqual": lambda: values <= value,
        "greaterThan": lambda: values > value,
        "greaterThanOrEqual": lambda: values >= value,
        "inRange": lambda: (values > min(value, value_to)) & (values < max(value, value_to)),
    }[kind]()
    return result & ~missing  # the grid leaves empty cells out of every comparison


def _comparable(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return float((pd.Timestamp(value) - EPOCH) / ONE_DAY)
    return float(value)
