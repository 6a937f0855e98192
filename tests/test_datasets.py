"""The dataset-file loader: good files become typed records; bad ones name the file and the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from dashboard.datasets import (
    DatasetFileError,
    DatasetResultError,
    load_dataset,
    load_datasets,
    run_dataset,
)
from dashboard.reporting import ReportingPeriod

GOOD = """\
-- title: Things
-- refresh: 15m
-- scope: [team_id]
-- personal: true
-- columns:
--   thing_id: int
--   team_id: int
--   due: date
--   cost: float
--   label: str
SELECT thing_id, team_id, due, cost, label FROM things WHERE due <= :as_of AND due > :year_ago;
"""


def write(folder: Path, name: str, content: str) -> Path:
    path = folder / name
    path.write_text(content, encoding="utf-8")
    return path


def test_good_file_parses_into_a_typed_record(tmp_path):
    spec = load_dataset(write(tmp_path, "things.sql", GOOD))
    assert spec.id == "things"
    assert spec.refresh == dt.timedelta(minutes=15)
    assert spec.scope == ("team_id",)
    assert spec.personal is True
    assert dict(spec.columns) == {
        "thing_id": "int",
        "team_id": "int",
        "due": "date",
        "cost": "float",
        "label": "str",
    }
    assert spec.params == ("as_of", "year_ago")
    assert spec.sql.startswith("SELECT") and not spec.sql.endswith(";")
    period = ReportingPeriod.for_date(dt.date(2026, 11, 25))
    assert spec.bind(period) == {"as_of": dt.date(2026, 11, 25), "year_ago": dt.date(2025, 11, 25)}


@pytest.mark.parametrize(
    ("header_change", "key", "message"),
    [
        (("-- refresh: 15m\n", ""), "refresh", "missing"),
        (("-- title: Things\n", ""), "title", "missing"),
        (("-- refresh: 15m\n", "-- refresh: soon\n"), "refresh", "duration"),
        (("-- refresh: 15m\n", "-- refresh: 15m\n-- colour: red\n"), "colour", "unknown key"),
        (("--   due: date\n", "--   due: datetime\n"), "columns", "type"),
        (("-- scope: [team_id]\n", "-- scope: [worker_id]\n"), "scope", "not a scope column"),
        (("-- personal: true\n", "-- personal: maybe\n"), "personal", "true or false"),
    ],
)
def test_bad_header_names_the_file_and_the_key(tmp_path, header_change, key, message):
    old, new = header_change
    path = write(tmp_path, "broken_thing.sql", GOOD.replace(old, new))
    with pytest.raises(DatasetFileError) as caught:
        load_dataset(path)
    assert "broken_thing.sql" in str(caught.value)
    assert f"'{key}'" in str(caught.value) or key in str(caught.value)
    assert message in str(caught.value)


def test_unknown_parameter_and_missing_sql_are_errors(tmp_path):
    with pytest.raises(DatasetFileError, match="unknown parameter ':tomorrow'"):
        load_dataset(write(tmp_path, "a.sql", GOOD.replace(":year_ago", ":tomorrow")))
    with pytest.raises(DatasetFileError, match="no SQL"):
        load_dataset(write(tmp_path, "b.sql", GOOD.split("SELECT")[0]))
    with pytest.raises(DatasetFileError, match="not valid YAML"):
        load_dataset(write(tmp_path, "c.sql", "-- title: [unclosed\n" + GOOD))


def test_one_bad_file_does_not_stop_the_others(tmp_path):
    write(tmp_path, "good.sql", GOOD)
    write(tmp_path, "bad.sql", GOOD.replace("-- title: Things\n", ""))
    good, bad = load_datasets(tmp_path)
    assert list(good) == ["good"]
    assert list(bad) == ["bad"] and "bad.sql" in str(bad["bad"])


def test_run_gives_the_same_typed_frame_on_both_databases(any_db_url, tmp_path):
    engine = create_engine(any_db_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE things (thing_id INTEGER, team_id INTEGER, due DATE, cost NUMERIC(12,2), label VARCHAR(20))"
            )
        )
        conn.execute(
            text("INSERT INTO things VALUES (:i, :t, :d, :c, :l)"),
            [
                {"i": 1, "t": 11, "d": dt.date(2026, 11, 25), "c": 700.5, "l": "due today"},
                {"i": 2, "t": 12, "d": dt.date(2025, 11, 25), "c": 1.0, "l": "a year ago: outside"},
                {"i": 3, "t": None, "d": dt.date(2025, 11, 26), "c": None, "l": None},
            ],
        )
    spec = load_dataset(write(tmp_path, "things.sql", GOOD))
    with engine.connect() as conn:
        frame = run_dataset(spec, conn, ReportingPeriod.for_date(dt.date(2026, 11, 25)))
    frame = frame.sort_values("thing_id").reset_index(drop=True)
    assert frame["thing_id"].tolist() == [1, 3]
    assert str(frame["team_id"].dtype) == "Int64" and frame["team_id"].isna().tolist() == [
        False,
        True,
    ]
    assert frame["due"].tolist() == [pd.Timestamp("2026-11-25"), pd.Timestamp("2025-11-26")]
    assert frame["cost"].iloc[0] == pytest.approx(700.5)
    engine.dispose()


def test_run_reports_a_missing_declared_column(sqlite_url, tmp_path):
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE things (thing_id INTEGER, team_id INTEGER, due DATE)"))
    spec = load_dataset(write(tmp_path, "things.sql", GOOD.replace(", cost, label", "")))
    with engine.connect() as conn, pytest.raises(DatasetResultError, match="cost, label"):
        run_dataset(spec, conn, ReportingPeriod.for_date(dt.date(2026, 11, 25)))
