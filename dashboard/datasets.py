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
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd
import yaml
from sqlalchemy import text
from sqlalchemy.engine import Connection

from dashboard.reporting import ReportingPeriod

COLUMN_TYPES = ("int", "float", "str", "date", "bool")
SCOPE_COLUMNS = ("team_id", "cost_centre_code")
REQUIRED_KEYS = ("title", "refresh", "columns")
OPTIONAL_KEYS = ("description", "scope", "personal", "timeout")
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
