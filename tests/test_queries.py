"""Every dataset file in queries/, tested the day it is added (STYLE.md): it parses; it runs on
SQLite and PostgreSQL over the hand-built known borough and returns exactly its declared columns,
the same frame on both; it transpiles to SQL Server's dialect; it stays portable; something uses
it."""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlglot
from fixtures.known_borough import AS_OF, build_known_borough
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlglot.errors import ErrorLevel

from dashboard.config import PROJECT_ROOT
from dashboard.datasets import DatasetSpec, load_dataset, run_dataset
from dashboard.demo import generate_borough
from dashboard.indicators.catalogue import DEFINITIONS, VIEW_DATASETS
from dashboard.indicators.charts import CHARTS
from dashboard.indicators.declared import load_catalogue
from dashboard.reporting import ReportingPeriod
from tests.conftest import DEMO_AS_OF

QUERY_FILES = sorted((PROJECT_ROOT / "queries").glob("*.sql"))
PERIOD = ReportingPeriod.for_date(AS_OF)

# What cannot be said portably is computed in pandas: no date arithmetic or date functions,
# no string concatenation operator, no row limits, no boolean literals.
NOT_PORTABLE = re.compile(
    r"\|\||\bLIMIT\b|\bTOP\b|\bTRUE\b|\bFALSE\b|\bINTERVAL\b|\bDATEADD\b|\bDATEDIFF\b"
    r"|\bDATE_TRUNC\b|\bEXTRACT\s*\(|\bSTRFTIME\b|\bJULIANDAY\b|\bNOW\s*\(|\bCURRENT_DATE\b"
    r"|\bGETDATE\b|\bCONCAT\s*\(|\bILIKE\b|::",
    re.IGNORECASE,
)


def ids(paths: list[Path]) -> list[str]:
    return [path.stem for path in paths]


@pytest.fixture(scope="module")
def sqlite_source(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('queries') / 'known.sqlite'}"
    build_known_borough(url)
    return url


@pytest.fixture(scope="module")
def postgres_source(pg_admin_url: str) -> Iterator[str]:
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    name = f"csc_test_q_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        build_known_borough(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(spec: DatasetSpec, url: str) -> tuple[list[str], pd.DataFrame]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            keys = [str(k).lower() for k in conn.execute(text(spec.sql), spec.bind(PERIOD)).keys()]
            frame = run_dataset(spec, conn, PERIOD)
    finally:
        engine.dispose()
    return keys, frame


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Row order only differs where the SQL orders by a nullable column (NULLS FIRST/LAST)."""
    return frame.sort_values(list(frame.columns), na_position="first").reset_index(drop=True)


def test_there_are_dataset_files():
    assert len(QUERY_FILES) >= 10


@pytest.mark.parametrize("path", QUERY_FILES, ids=ids(QUERY_FILES))
def test_parses_with_a_complete_header(path: Path):
    spec = load_dataset(path)
    assert spec.title and spec.columns
    assert spec.refresh >= dt.timedelta(minutes=1)
    for column in spec.scope:
        assert column in spec.columns


@pytest.mark.parametrize("path", QUERY_FILES, ids=ids(QUERY_FILES))
def test_runs_on_sqlite_with_exactly_its_declared_columns(path: Path, sqlite_source: str):
    spec = load_dataset(path)
    keys, frame = run(spec, sqlite_source)
    assert keys == list(spec.columns)
    assert len(frame) > 0, "the known borough has rows for every dataset"


@pytest.mark.postgres
@pytest.mark.parametrize("path", QUERY_FILES, ids=ids(QUERY_FILES))
def test_same_frame_on_postgresql_as_on_sqlite(
    path: Path, sqlite_source: str, postgres_source: str
):
    spec = load_dataset(path)
    keys, on_postgres = run(spec, postgres_source)
    assert keys == list(spec.columns)
    _, on_sqlite = run(spec, sqlite_source)
    pd.testing.assert_frame_equal(canonical(on_postgres), canonical(on_sqlite))


@pytest.mark.parametrize("path", QUERY_FILES, ids=ids(QUERY_FILES))
def test_transpiles_to_sql_server(path: Path, caplog):
    spec = load_dataset(path)
    with caplog.at_level(logging.WARNING, logger="sqlglot"):
        (tsql,) = sqlglot.transpile(spec.sql, write="tsql", unsupported_level=ErrorLevel.RAISE)
    assert not [r for r in caplog.records if r.name.startswith("sqlglot")], caplog.text
    assert "SELECT" in tsql.upper()


@pytest.mark.parametrize("path", QUERY_FILES, ids=ids(QUERY_FILES))
def test_uses_only_portable_sql(path: Path):
    spec = load_dataset(path)
    found = NOT_PORTABLE.findall(spec.sql)
    assert not found, f"{path.name}: not portable: {found}"


@pytest.mark.parametrize("path", QUERY_FILES, ids=ids(QUERY_FILES))
def test_is_used(path: Path):
    # Built-in indicators and those declared in dataset headers (a file may serve its own).
    catalogue, errors = load_catalogue(PROJECT_ROOT / "queries")
    assert not errors, errors
    used = {d for definition in catalogue.values() for d in definition.indicator.datasets}
    used |= {d for chart in CHARTS.values() for d in chart.datasets}
    used |= set(VIEW_DATASETS)
    assert path.stem in used, f"{path.name} is used by no indicator, chart or view"


def test_every_dataset_an_indicator_names_has_a_file():
    files = {path.stem for path in QUERY_FILES}
    for definition in DEFINITIONS.values():
        assert set(definition.indicator.datasets) <= files, definition.id


@pytest.fixture(scope="module")
def postgres_demo(pg_admin_url: str) -> Iterator[str]:
    """The small demo borough generated into PostgreSQL (same seed and date as the SQLite one)."""
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    name = f"csc_test_qd_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        generate_borough(
            url, population=6_000, years=6, seed=42, as_of=dt.date.fromisoformat(DEMO_AS_OF)
        )
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("path", QUERY_FILES, ids=ids(QUERY_FILES))
def test_same_frame_on_the_demo_borough_in_both_databases(
    path: Path, small_demo_source_url: str, postgres_demo: str
):
    spec = load_dataset(path)
    period = ReportingPeriod.for_date(dt.date.fromisoformat(DEMO_AS_OF))
    frames = []
    for url in (small_demo_source_url, postgres_demo):
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                frames.append(canonical(run_dataset(spec, conn, period)))
        finally:
            engine.dispose()
    pd.testing.assert_frame_equal(frames[0], frames[1])
