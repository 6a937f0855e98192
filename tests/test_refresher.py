"""The refresher: real tiny sources (SQLite file and PostgreSQL), real dataset files, real store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from tiny_source import (
    AS_OF,
    BAD_HEADER,
    BAD_SQL,
    TEAMS_SQL,
    WORKERS_SQL,
    WRONG_COLUMNS,
    build_source,
    write_queries,
)

from dashboard.config import Settings
from dashboard.refresher import (
    SourceUnavailableError,
    UnknownDatasetError,
    refresh_datasets,
    source_engine,
)
from dashboard.reporting import ReportingPeriod
from dashboard.store import SnapshotStore

SLOW_SQL = """\
-- title: Counts to a billion (stands for a runaway query)
-- refresh: 15m
-- timeout: 1s
-- columns:
--   n: int
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000)
SELECT count(*) AS n FROM c
"""


@pytest.fixture
def source_url(any_db_url: str) -> str:
    build_source(any_db_url)
    return any_db_url


def make_settings(tmp_path: Path, source_url: str, **files: str) -> Settings:
    queries = write_queries(
        tmp_path / "queries", **(files or {"teams": TEAMS_SQL, "workers": WORKERS_SQL})
    )
    return Settings(
        source_url=source_url,
        store_url=f"sqlite:///{tmp_path / 'store.sqlite'}",
        queries_dir=queries,
        as_of=AS_OF,
    )


def test_refresh_stores_the_known_answers(tmp_path: Path, source_url: str) -> None:
    settings = make_settings(tmp_path, source_url)
    report = refresh_datasets(settings)

    assert report.failed == []
    assert [(r.dataset_id, r.ok, r.rows, r.version) for r in report.runs] == [
        ("teams", True, 2, 1),
        ("workers", True, 2, 1),
    ]
    store = SnapshotStore.from_settings(settings)
    teams = store.latest("teams")
    assert list(teams.frame["team_id"]) == [20, 21]
    assert list(teams.frame["name"]) == ["Assessment Team 1", "CLA Team 2"]
    assert teams.meta.as_of == AS_OF
    workers = store.latest("workers").frame
    assert list(workers["worker_id"]) == [1, 2]  # worker 3 starts after the as-of date
    assert list(workers["is_agency"]) == [True, False]
    assert list(workers["fte"]) == [0.5, 1.0]
    assert list(workers["start_date"]) == [pd.Timestamp("2020-01-06"), pd.Timestamp("2026-03-31")]
    assert dict(workers.dtypes.astype(str)) == {
        "worker_id": "Int64",
        "username": "string",
        "start_date": "datetime64[ns]",
        "fte": "float64",
        "is_agency": "boolean",
    }

    again = refresh_datasets(settings, ["teams"], store=store)
    assert [(r.dataset_id, r.version) for r in again.runs] == [("teams", 2)]
    assert "ok" in str(again) and "teams" in str(again)
    store.dispose()


def test_a_broken_file_fails_alone_with_a_clear_error(tmp_path: Path, source_url: str) -> None:
    settings = make_settings(
        tmp_path,
        source_url,
        teams=TEAMS_SQL,
        workers=WORKERS_SQL,
        bad_sql=BAD_SQL,
        bad_header=BAD_HEADER,
        wrong_columns=WRONG_COLUMNS,
    )
    report = refresh_datasets(settings)

    assert report.failed == ["bad_header", "bad_sql", "wrong_columns"]
    errors = {run.dataset_id: run.error for run in report.runs}
    assert "bad_header.sql" in errors["bad_header"] and "'refresh'" in errors["bad_header"]
    assert "bad_sql.sql" in errors["bad_sql"] and "no_such_table" in errors["bad_sql"]
    assert "wrong_columns.sql" in errors["wrong_columns"] and "n" in errors["wrong_columns"]
    assert {run.dataset_id for run in report.runs if run.ok} == {"teams", "workers"}

    store = SnapshotStore.from_settings(settings)
    status = store.status()
    assert status["bad_sql"].last_good is None
    assert status["bad_sql"].last_attempt.error == errors["bad_sql"]
    assert status["teams"].last_good.row_count == 2
    text_report = str(report).splitlines()
    assert len(text_report) == 5 and any(line.startswith("FAILED  bad_sql") for line in text_report)
    store.dispose()


def test_a_query_over_its_timeout_fails_alone(tmp_path: Path, source_url: str) -> None:
    settings = make_settings(tmp_path, source_url, teams=TEAMS_SQL, runaway=SLOW_SQL)
    report = refresh_datasets(settings)
    assert report.failed == ["runaway"]
    assert report.runs[0].error == "runaway.sql: timed out after 1 s"
    assert report.runs[1].ok


def test_an_unreachable_sqlite_source_fails_everything_and_keeps_last_good(
    tmp_path: Path, sqlite_url: str
) -> None:
    build_source(sqlite_url)
    settings = make_settings(tmp_path, sqlite_url)
    assert refresh_datasets(settings).failed == []

    missing = tmp_path / "moved" / "demo.sqlite"
    gone = settings.model_copy(update={"source_url": f"sqlite:///{missing}"})
    report = refresh_datasets(gone)

    assert report.failed == ["teams", "workers"]
    assert all(f"source database file not found: {missing}" in run.error for run in report.runs)
    assert not missing.exists() and not missing.parent.exists()  # never created
    store = SnapshotStore.from_settings(settings)
    assert store.latest("teams").meta.version == 1
    assert len(store.latest("workers").frame) == 2
    assert store.status()["teams"].last_attempt.status == "failed"
    store.dispose()


@pytest.mark.postgres
def test_an_unreachable_postgres_source_fails_everything_and_keeps_last_good(
    tmp_path: Path, pg_url: str
) -> None:
    build_source(pg_url)
    settings = make_settings(tmp_path, pg_url)
    assert refresh_datasets(settings).failed == []

    closed_port = settings.model_copy(
        update={"source_url": "postgresql+psycopg://postgres@127.0.0.1:9/test"}
    )
    report = refresh_datasets(closed_port)

    assert report.failed == ["teams", "workers"]
    assert all(run.error.startswith("source unreachable: OperationalError") for run in report.runs)
    store = SnapshotStore.from_settings(settings)
    assert store.latest("teams").meta.version == 1
    assert list(store.latest("teams").frame["team_id"]) == [20, 21]
    store.dispose()


def test_the_source_connection_refuses_writes(tmp_path: Path, source_url: str) -> None:
    engine = source_engine(make_settings(tmp_path, source_url))
    with engine.connect() as conn:
        with pytest.raises(Exception, match="(?i)read-only|readonly"):
            conn.execute(text("UPDATE workers SET fte = 0"))
    with engine.connect() as conn:
        with pytest.raises(Exception, match="(?i)read-only|readonly"):
            conn.execute(text("CREATE TABLE intruder (x INTEGER)"))
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT sum(fte) FROM workers")) == 2.5
    engine.dispose()


def test_a_missing_sqlite_source_is_an_error_not_a_new_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.sqlite"
    with pytest.raises(SourceUnavailableError, match="not found"):
        source_engine(Settings(source_url=f"sqlite:///{missing}"))
    assert not missing.exists()


def test_unknown_dataset_ids_are_a_clear_error(tmp_path: Path, sqlite_url: str) -> None:
    build_source(sqlite_url)
    settings = make_settings(tmp_path, sqlite_url)
    with pytest.raises(
        UnknownDatasetError, match="no dataset file for nope, nada .* known: teams, workers"
    ):
        refresh_datasets(settings, ["teams", "nope", "nada"])
    assert SnapshotStore.from_settings(settings).status() == {}  # nothing ran


def test_after_refresh_gets_the_store_and_period_and_its_failure_is_contained(
    tmp_path: Path, sqlite_url: str
) -> None:
    build_source(sqlite_url)
    settings = make_settings(tmp_path, sqlite_url)
    calls = []

    def record(store: SnapshotStore, period: ReportingPeriod) -> None:
        calls.append((store.latest("teams").meta.version, period))

    assert refresh_datasets(settings, after_refresh=record).after_refresh_error is None
    assert calls == [(1, ReportingPeriod.for_date(AS_OF))]

    def broken(store: SnapshotStore, period: ReportingPeriod) -> None:
        raise KeyError("indicator 'overdue_steps' has no measure")

    report = refresh_datasets(settings, after_refresh=broken)
    assert report.failed == []
    assert "overdue_steps" in report.after_refresh_error
    assert "FAILED  (history)" in str(report)


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DASHBOARD_SOURCE_URL": settings.source_url,
        "DASHBOARD_STORE_URL": settings.store_url,
        "DASHBOARD_QUERIES_DIR": str(settings.queries_dir),
        "DASHBOARD_AS_OF": AS_OF.isoformat(),
    }
    return subprocess.run(
        [sys.executable, "-m", "dashboard", "refresh", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_refresh_exit_status_names_the_failures(tmp_path: Path, sqlite_url: str) -> None:
    build_source(sqlite_url)
    settings = make_settings(
        tmp_path, sqlite_url, teams=TEAMS_SQL, workers=WORKERS_SQL, bad_sql=BAD_SQL
    )

    everything = _cli(settings, "--once")
    assert everything.returncode == 1
    assert "csc-dashboard refresh: failed: bad_sql" in everything.stderr
    assert "FAILED  bad_sql" in everything.stdout and "ok      teams" in everything.stdout

    good_only = _cli(settings, "teams", "workers")
    assert good_only.returncode == 0, good_only.stderr
    assert "version 2" in good_only.stdout

    unknown = _cli(settings, "nope")
    assert unknown.returncode == 2
    assert "no dataset file for nope" in unknown.stderr
