"""Dataset files: ``queries/<id>.sql`` parsed into typed, frozen records, and run into frames.

A dataset file is plain SQL that runs in any SQL client, preceded by a header of ``-- key: value``
comment lines holding YAML (the aiosql/dbt habit: the file name is the id, metadata lives in
comments)::

    -- title: Open workflow steps
    -- refresh: 15m
    -- scope: [team_id]
    -- personal: true
    -- columns:
    --   workflow_step_id: int
    --   team_id: int
    --   due_date: date
    SELECT ...

Parameters are bound (``:as_of``, ``:fy_start``, ... from ``ReportingPeriod``); nothing is ever
formatted into SQL text. A bad header raises ``DatasetFileError`` naming the file and the key.

An optional ``indicators:`` key declares indicators counted over the dataset's rows (a count, a
sum of a column, or a ratio of two sums), so an analyst adds a measure with one SQL file and one
line in a layout (STYLE.md, issue 4); ``dashboard.indicators.declared`` gives them measures::

    -- indicators:
    --   - id: cp_visits_seen_alone
    --     title: CP visits where the child was seen alone
    --     definition: Of CP visits in the last 90 days, the share where the child was seen alone.
    --     tier: team
    --     unit: percent
    --     polarity: higher_better
    --     measure: {ratio: [seen_alone, 1]}
    --     thresholds: {green: 80, amber: 65}
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, get_args

import pandas as pd
import yaml
from sqlalchemy import text
from sqlalchemy.engine import Connection

from dashboard.model import Polarity, Thresholds, Tier, Unit
from dashboard.reporting import ReportingPeriod

COLUMN_TYPES = ("int", "float", "str", "date", "bool")
SCOPE_COLUMNS = ("team_id", "cost_centre_code")
REQUIRED_KEYS = ("title", "refresh", "columns")
OPTIONAL_KEYS = ("description", "scope", "personal", "timeout", "indicators")
INDICATOR_REQUIRED_KEYS = ("id", "title", "definition", "tier", "unit", "polarity", "measure")
INDICATOR_OPTIONAL_KEYS = ("thresholds", "england", "england_label", "drilldown")
# The column a tier's scopes filter on; a borough-tier indicator is never split.
TIER_SCOPE_COLUMN: Mapping[str, str | None] = MappingProxyType(
    {"team": "team_id", "budget": "cost_centre_code", "borough": None}
)
# Which units each kind of measure can honestly produce (a ratio's value is recomputed from
# summed parts for a set of teams, which the data layer does for percent and ratio units).
MEASURE_UNITS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"count": ("count",), "sum": ("count", "money"), "ratio": ("percent", "ratio")}
)
NUMERIC_TYPES = ("int", "float", "bool")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class DatasetFileError(ValueError):
    """A dataset file that cannot be used; the message names the file and, where known, the key."""

    def __init__(self, path: Path, message: str, key: str | None = None) -> None:
        where = f"{path.name}" + (f", key '{key}'" if key else "")
        super().__init__(f"{where}: {message}")
        self.path = path
        self.key = key


@dataclass(frozen=True)
class IndicatorDeclaration:
    """An indicator declared in a dataset file's header: what it counts over the dataset's rows.

    ``measure`` is ``count`` (rows), ``sum`` (of ``column``) or ``ratio`` (sum of ``column`` over
    the sum of ``denominator``, or over the number of rows when ``denominator`` is None).
    """

    id: str
    title: str
    definition: str
    tier: Tier
    unit: Unit
    polarity: Polarity
    measure: str
    column: str | None = None
    denominator: str | None = None
    thresholds: Thresholds | None = None
    england: float | None = None
    england_label: str = ""
    drilldown: bool = True


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: what to run, how often, which scope columns and result columns it has."""

    id: str
    path: Path
    title: str
    refresh: dt.timedelta
    columns: Mapping[str, str]
    sql: str
    params: tuple[str, ...]
    scope: tuple[str, ...] = ()
    personal: bool = False
    description: str = ""
    timeout: dt.timedelta | None = None
    indicators: tuple[IndicatorDeclaration, ...] = ()
    header: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def bind(self, period: ReportingPeriod) -> dict[str, Any]:
        """The bound parameters this query uses, from the reporting period."""
        available = period.params()
        return {name: available[name] for name in self.params}


def parse_duration(value: Any) -> dt.timedelta:
    """'30s', '15m', '1h', '1d' (or a number of seconds) as a timedelta."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float) and value > 0:
        return dt.timedelta(seconds=value)
    match = _DURATION.match(str(value).strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"not a duration like '15m', '1h' or '1d': {value!r}")
    return dt.timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _split_header(path: Path, content: str) -> tuple[str, str]:
    header_lines: list[str] = []
    lines = content.splitlines()
    index = 0
    for index, line in enumerate(lines):  # noqa: B007 - index used after the loop
        stripped = line.strip()
        if stripped.startswith("--"):
            body = stripped[2:]
            header_lines.append(body[1:] if body.startswith(" ") else body)
        elif stripped == "" and not header_lines:
            continue
        else:
            break
    else:
        index = len(lines)
    sql = "\n".join(lines[index:]).strip().rstrip(";").strip()
    if not header_lines:
        raise DatasetFileError(path, "no '-- key: value' header at the top of the file")
    if not sql:
        raise DatasetFileError(path, "no SQL after the header")
    return "\n".join(header_lines), sql


def _columns(path: Path, raw: Any) -> Mapping[str, str]:
    if not isinstance(raw, dict) or not raw:
        raise DatasetFileError(path, "must map each column name to a type", "columns")
    columns: dict[str, str] = {}
    for name, kind in raw.items():
        if not isinstance(name, str) or not _ID.match(name):
            raise DatasetFileError(path, f"bad column name {name!r}", "columns")
        if kind not in COLUMN_TYPES:
            raise DatasetFileError(
                path, f"column {name!r} has type {kind!r}; use one of {COLUMN_TYPES}", "columns"
            )
        columns[name] = kind
    return MappingProxyType(columns)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _measure(
    path: Path, key: str, raw: Any, columns: Mapping[str, str]
) -> tuple[str, str | None, str | None]:
    """``count``, ``{sum: column}`` or ``{ratio: [numerator, denominator or 1]}``."""
    if raw == "count":
        return "count", None, None
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ("sum", "ratio"):
        raise DatasetFileError(
            path,
            f"must be count, {{sum: column}} or {{ratio: [numerator, denominator or 1]}}, "
            f"not {raw!r}",
            key,
        )
    kind, argument = next(iter(raw.items()))
    if kind == "sum":
        wanted: list[Any] = [argument]
    elif not isinstance(argument, list) or len(argument) != 2:
        raise DatasetFileError(path, "ratio takes [numerator_column, denominator_column or 1]", key)
    else:
        wanted = list(argument) if argument[1] != 1 else [argument[0]]
    for column in wanted:
        if not isinstance(column, str) or column not in columns:
            raise DatasetFileError(
                path, f"{column!r} is not among the declared columns {tuple(columns)}", key
            )
        if columns[column] not in NUMERIC_TYPES:
            raise DatasetFileError(
                path, f"column {column!r} is {columns[column]}; a measure needs a number", key
            )
    if kind == "sum":
        return "sum", wanted[0], None
    return "ratio", wanted[0], wanted[1] if len(wanted) == 2 else None


def _thresholds(path: Path, key: str, raw: Any, polarity: str) -> Thresholds:
    if not isinstance(raw, dict) or set(raw) != {"green", "amber"}:
        raise DatasetFileError(path, "give exactly {green: x, amber: y}", key)
    green, amber = _number(raw["green"]), _number(raw["amber"])
    if green is None or amber is None:
        raise DatasetFileError(path, "green and amber must be numbers", key)
    if polarity == "context":
        raise DatasetFileError(path, "a context indicator has no RAG (no better direction)", key)
    if polarity == "higher_better" and green < amber:
        raise DatasetFileError(path, "higher is better, so green must be >= amber", key)
    if polarity == "lower_better" and green > amber:
        raise DatasetFileError(path, "lower is better, so green must be <= amber", key)
    return Thresholds(green, amber)


def _declaration(
    path: Path, index: int, raw: Any, columns: Mapping[str, str], scope: tuple[str, ...]
) -> IndicatorDeclaration:
    where = f"indicators[{index}]"
    if not isinstance(raw, dict):
        raise DatasetFileError(path, "each indicator must be 'key: value' lines", where)
    for key in raw:
        if key not in INDICATOR_REQUIRED_KEYS + INDICATOR_OPTIONAL_KEYS:
            raise DatasetFileError(path, "unknown key", f"{where}.{key}")
    for key in INDICATOR_REQUIRED_KEYS:
        if key not in raw or raw[key] in (None, ""):
            raise DatasetFileError(path, "missing", f"{where}.{key}")
    for key in ("id", "title", "definition", "england_label"):
        if key in raw and not isinstance(raw[key], str):
            raise DatasetFileError(path, "must be text", f"{where}.{key}")
    if not _ID.match(raw["id"]):
        raise DatasetFileError(path, "must be a lower_snake_case id", f"{where}.id")
    for key, allowed in (
        ("tier", get_args(Tier)),
        ("unit", get_args(Unit)),
        ("polarity", get_args(Polarity)),
    ):
        if raw[key] not in allowed:
            raise DatasetFileError(
                path, f"{raw[key]!r} is not one of {', '.join(allowed)}", f"{where}.{key}"
            )
    scope_column = TIER_SCOPE_COLUMN[raw["tier"]]
    if scope_column is not None and scope_column not in scope:
        raise DatasetFileError(
            path,
            f"a {raw['tier']}-tier indicator needs the dataset to declare scope: [{scope_column}]",
            f"{where}.tier",
        )
    kind, column, denominator = _measure(path, f"{where}.measure", raw["measure"], columns)
    if raw["unit"] not in MEASURE_UNITS[kind]:
        raise DatasetFileError(
            path,
            f"a {kind} measure gives a unit of {' or '.join(MEASURE_UNITS[kind])}, "
            f"not {raw['unit']!r}",
            f"{where}.unit",
        )
    thresholds = None
    if raw.get("thresholds") is not None:
        thresholds = _thresholds(path, f"{where}.thresholds", raw["thresholds"], raw["polarity"])
    england = None
    if raw.get("england") is not None:
        england = _number(raw["england"])
        if england is None:
            raise DatasetFileError(path, "must be a number", f"{where}.england")
    drilldown = raw.get("drilldown", True)
    if not isinstance(drilldown, bool):
        raise DatasetFileError(path, "must be true or false", f"{where}.drilldown")
    return IndicatorDeclaration(
        id=raw["id"],
        title=raw["title"].strip(),
        definition=raw["definition"].strip(),
        tier=raw["tier"],
        unit=raw["unit"],
        polarity=raw["polarity"],
        measure=kind,
        column=column,
        denominator=denominator,
        thresholds=thresholds,
        england=england,
        england_label=raw.get("england_label") or "",
        drilldown=drilldown,
    )


def _indicators(
    path: Path, raw: Any, columns: Mapping[str, str], scope: tuple[str, ...]
) -> tuple[IndicatorDeclaration, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DatasetFileError(path, "must be a list of indicators ('- id: ...')", "indicators")
    declared = [_declaration(path, i, item, columns, scope) for i, item in enumerate(raw)]
    seen: set[str] = set()
    for index, declaration in enumerate(declared):
        if declaration.id in seen:
            raise DatasetFileError(
                path, f"{declaration.id!r} is declared twice", f"indicators[{index}].id"
            )
        seen.add(declaration.id)
    return tuple(declared)


def load_dataset(path: Path) -> DatasetSpec:
    """Parse one dataset file. Raises ``DatasetFileError`` naming the file and the key."""
    path = Path(path)
    dataset_id = path.stem
    if not _ID.match(dataset_id):
        raise DatasetFileError(path, "file name must be a lower_snake_case id")
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetFileError(path, f"cannot be read: {exc}") from exc
    header_text, sql = _split_header(path, content)
    try:
        header = yaml.safe_load(header_text)
    except yaml.YAMLError as exc:
        raise DatasetFileError(path, f"header is not valid YAML: {exc}") from exc
    if not isinstance(header, dict):
        raise DatasetFileError(path, "header must be 'key: value' lines")
    for key in header:
        if key not in REQUIRED_KEYS + OPTIONAL_KEYS:
            raise DatasetFileError(path, "unknown key", str(key))
    for key in REQUIRED_KEYS:
        if key not in header or header[key] in (None, ""):
            raise DatasetFileError(path, "missing", key)

    title = header["title"]
    if not isinstance(title, str):
        raise DatasetFileError(path, "must be text", "title")
    try:
        refresh = parse_duration(header["refresh"])
    except ValueError as exc:
        raise DatasetFileError(path, str(exc), "refresh") from exc
    timeout = None
    if header.get("timeout") is not None:
        try:
            timeout = parse_duration(header["timeout"])
        except ValueError as exc:
            raise DatasetFileError(path, str(exc), "timeout") from exc
    columns = _columns(path, header["columns"])

    scope_raw = header.get("scope") or []
    if isinstance(scope_raw, str):
        scope_raw = [scope_raw]
    if not isinstance(scope_raw, list):
        raise DatasetFileError(path, "must be a list of scope columns", "scope")
    for column in scope_raw:
        if column not in SCOPE_COLUMNS:
            raise DatasetFileError(
                path, f"{column!r} is not a scope column {SCOPE_COLUMNS}", "scope"
            )
        if column not in columns:
            raise DatasetFileError(path, f"{column!r} is not among the declared columns", "scope")
    personal = header.get("personal", False)
    if not isinstance(personal, bool):
        raise DatasetFileError(path, "must be true or false", "personal")

    indicators = _indicators(path, header.get("indicators"), columns, tuple(scope_raw))

    params = tuple(dict.fromkeys(_PARAM.findall(sql)))
    known = ReportingPeriod.__dataclass_fields__
    for name in params:
        if name not in known:
            raise DatasetFileError(
                path, f"SQL uses unknown parameter ':{name}'; known: {', '.join(known)}"
            )
    return DatasetSpec(
        id=dataset_id,
        path=path,
        title=title,
        refresh=refresh,
        columns=columns,
        sql=sql,
        params=params,
        scope=tuple(scope_raw),
        personal=personal,
        description=str(header.get("description") or ""),
        timeout=timeout,
        indicators=indicators,
        header=MappingProxyType(dict(header)),
    )


def load_datasets(folder: Path) -> tuple[dict[str, DatasetSpec], dict[str, DatasetFileError]]:
    """Every ``*.sql`` in ``folder``: the good ones by id, and the bad ones' errors by id.

    A bad file never stops the others loading (one broken query marks only its own tiles).
    """
    good: dict[str, DatasetSpec] = {}
    bad: dict[str, DatasetFileError] = {}
    for path in sorted(Path(folder).glob("*.sql")):
        try:
            good[path.stem] = load_dataset(path)
        except DatasetFileError as exc:
            bad[path.stem] = exc
    return good, bad


class DatasetResultError(ValueError):
    """A query ran but its result does not match the columns its header declares."""


def _coerce(frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """Give every declared column the same dtype whichever database produced it."""
    out = {}
    for name, kind in columns.items():
        series = frame[name]
        if kind == "int":
            out[name] = pd.to_numeric(series, errors="raise").astype("Int64")
        elif kind == "float":
            out[name] = pd.to_numeric(series, errors="raise").astype("float64")
        elif kind == "date":
            out[name] = pd.to_datetime(series, errors="raise").astype("datetime64[ns]")
        elif kind == "bool":
            out[name] = series.map(
                lambda v: (
                    pd.NA if v is None or v is pd.NA else str(v).upper() in ("1", "Y", "TRUE", "T")
                )
            ).astype("boolean")
        else:
            out[name] = series.astype("string")
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def run_dataset(spec: DatasetSpec, connection: Connection, period: ReportingPeriod) -> pd.DataFrame:
    """Run a dataset's SQL with its bound parameters and return a frame of its declared columns.

    Raises ``DatasetResultError`` if a declared column is missing from the result.
    """
    result = connection.execute(text(spec.sql), spec.bind(period))
    # Plain tuples: pandas probes each SQLAlchemy Row for attributes, about 4x slower to build.
    frame = pd.DataFrame([tuple(row) for row in result], columns=list(result.keys()))
    frame.columns = [str(c).lower() for c in frame.columns]
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise DatasetResultError(
            f"{spec.path.name}: result lacks declared column(s) {', '.join(missing)}"
        )
    try:
        return _coerce(frame, spec.columns)
    except (ValueError, TypeError) as exc:
        raise DatasetResultError(f"{spec.path.name}: a column has the wrong type: {exc}") from exc
