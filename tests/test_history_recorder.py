"""The scheduler's history hook records incrementally: a value whose inputs did not change is
not computed again, a row equal to the one already written for the day is not written again, and
what the store holds for the day is always what a from-scratch recording writes.

Real SQLite stores over private copies of the small demo borough, refreshed by the real
refresher; the from-scratch answer is ``record_history`` into a second store of the same
snapshots.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from dashboard.config import Settings
from dashboard.data import DataLayer
from dashboard.history import HistoryRecorder, history_rows, record_history
from dashboard.model import Scope
from dashboard.refresher import refresh_datasets
from dashboard.reporting import ReportingPeriod
from dashboard.store import HistoryRow, SnapshotStore, store_history
from tests.web_support import AS_OF, copy_sqlite_source

PERIOD = ReportingPeriod.for_date(AS_OF)


@pytest.fixture
def private(small_demo_source_url: str, tmp_path: Path) -> Settings:
    """A store over a private copy of the small demo borough, refreshed without history."""
    source = copy_sqlite_source(small_demo_source_url, tmp_path / "source")
    settings = Settings(
        source_url=source,
        store_url=f"sqlite:///{tmp_path / 'store.sqlite'}",
        as_of=AS_OF,
        child_population=6_000,
    )
    assert not refresh_datasets(settings).failed
    return settings


def day_rows(store: SnapshotStore, day: dt.date) -> dict[tuple[str, str], tuple]:
    """Everything the store holds for ``day``: (indicator, scope) -> (value, num, den)."""
    h = store_history
    with store.engine.connect() as conn:
        found = conn.execute(
            select(h.c.indicator_id, h.c.scope, h.c.value, h.c.numerator, h.c.denominator).where(
                h.c.day == day
            )
        ).all()
    return {(r.indicator_id, r.scope): (r.value, r.numerator, r.denominator) for r in found}


def from_scratch(settings: Settings) -> dict[tuple[str, str], tuple]:
    """The day's rows as a new data layer computes every one of them."""
    rows = history_rows(DataLayer(settings))
    return {(r.indicator_id, r.scope): (r.value, r.numerator, r.denominator) for r in rows}


def halve_fte_of_a_case_holder(settings: Settings) -> tuple[int, int]:
    """Halve a case-holding worker's FTE in the source; their (worker id, team id)."""
    frame = DataLayer(settings)._current().snapshots["workforce"].frame
    holder = frame[(frame["allocations"] > 0) & (frame["fte"] > 0)].iloc[0]
    with sqlite3.connect(make_url(settings.source_url).database) as conn:
        conn.execute(
            "UPDATE workers SET fte = fte / 2 WHERE worker_id = ?", (int(holder["worker_id"]),)
        )
    return int(holder["worker_id"]), int(holder["team_id"])


def test_the_first_run_records_every_value_and_a_rerun_nothing(private: Settings):
    store = SnapshotStore.from_settings(private)
    recorder = HistoryRecorder(private)
    first = recorder(store, PERIOD)
    expected = from_scratch(private)
    assert first.rows == first.computed == first.written == len(expected) > 100
    assert day_rows(store, AS_OF) == expected
    stamp = store.versions().history

    asked: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # the store's version queries
        if "max(store_snapshots.snapshot_id)" in statement.lower():
            asked.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    again = recorder(store, PERIOD)
    event.remove(store.engine, "before_cursor_execute", count)
    assert (again.rows, again.computed, again.written) == (len(expected), 0, 0)
    # A few version reads for the run, not one per value (20 s of queries at regional scale).
    assert 1 <= len(asked) <= 5 < len(expected)
    assert store.versions().history == stamp  # nothing written: the pages need not re-render
    store.dispose()


def test_a_workforce_refresh_recomputes_only_values_that_read_the_workforce(private: Settings):
    store = SnapshotStore.from_settings(private)
    recorder = HistoryRecorder(private)
    recorder(store, PERIOD)
    data = DataLayer(private)
    reading = {
        (key, str(scope))
        for scope in [Scope.borough()]
        + [Scope.team(int(t)) for t in data.teams()["org_id"]]
        + [Scope.cost_centre(str(c)) for c in data.cost_centres()["cost_centre_code"]]
        for key in data.applicable(scope)
        if not data.definition(key).chart and "workforce" in data.definition(key).indicator.datasets
    }
    assert {key for key, _ in reading} == {"average_caseload"}  # the team page's caseload tile
    _worker, team = halve_fte_of_a_case_holder(private)
    before = day_rows(store, AS_OF)

    assert not refresh_datasets(private, ["workforce"]).failed
    run = recorder(store, PERIOD)

    assert run.computed == len(reading)  # every caseload once, nothing else
    after = day_rows(store, AS_OF)
    assert after == from_scratch(private)  # the same as recording everything again
    changed = {key for key in after if after[key] != before[key]}
    # The worker's team, and the borough (and any service sum) whose FTE includes theirs.
    assert changed == {("average_caseload", f"team:{team}"), ("average_caseload", "borough")}
    assert run.written == len(changed)
    store.dispose()


def test_a_write_by_someone_else_makes_the_next_run_write_the_whole_day(private: Settings):
    store = SnapshotStore.from_settings(private)
    recorder = HistoryRecorder(private)
    first = recorder(store, PERIOD)
    # csc-dashboard refresh (or a second scheduler that took over) writes one row differently.
    store.write_history(AS_OF, [HistoryRow("open_cases", "borough", 1.0, None, None)])
    assert day_rows(store, AS_OF)[("open_cases", "borough")] == (1.0, None, None)

    run = recorder(store, PERIOD)
    assert (run.computed, run.written) == (0, first.rows)
    assert day_rows(store, AS_OF) == from_scratch(private)
    store.dispose()


def test_a_new_day_writes_every_row_again(private: Settings):
    store = SnapshotStore.from_settings(private)
    recorder = HistoryRecorder(private)
    first = recorder(store, PERIOD)
    tomorrow = ReportingPeriod.for_date(AS_OF + dt.timedelta(days=1))
    run = recorder(store, tomorrow)
    assert (run.computed, run.written) == (0, first.rows)  # same snapshots, a new day's rows
    assert day_rows(store, tomorrow.as_of) == day_rows(store, AS_OF)
    store.dispose()


def test_one_off_recording_equals_the_recorder(private: Settings, tmp_path: Path):
    store = SnapshotStore.from_settings(private)
    record_history(store, PERIOD, private)
    recorded = day_rows(store, AS_OF)
    assert recorded == from_scratch(private)
    frame = store.history("open_cases", "borough")
    assert frame["day"].tolist() == [pd.Timestamp(AS_OF)]
    store.dispose()
