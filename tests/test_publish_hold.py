"""A new snapshot and the day's history it leads to reach the browsers as one version.

The scheduler holds publication while it refreshes a dataset (``SnapshotStore.hold_publication``)
and releases it once the history is written; each web worker's preloader leaves a new version
unloaded and unpublished meanwhile, for a limited time. Without the hold every refresh made two
versions a few seconds apart, and every open page re-rendered twice."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from dashboard import data as data_module
from dashboard import refresher
from dashboard.data import DataLayer
from dashboard.history import HistoryRecorder
from dashboard.model import Scope
from dashboard.refresher import PUBLISH_HOLD_NAME, RefreshJobs
from dashboard.store import HistoryRow, SnapshotStore
from tests.web_support import AS_OF, copy_sqlite_source, refresh, refreshed_settings

DEADLINE_S = 60  # generous: nothing here is timed, only waited for


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def private(small_demo_source_url: str, tmp_path: Path):
    """A refreshed store over a private copy of the small demo borough (rows may change)."""
    source = copy_sqlite_source(small_demo_source_url, tmp_path / "source")
    return refreshed_settings(source, tmp_path / "store")


def halve_fte_in(settings, data: DataLayer) -> Scope:
    """Halve the FTE of one case-holding worker in the source; the worker's team."""
    workforce = data._current().snapshots["workforce"].frame
    worker = workforce[(workforce["allocations"] > 0) & (workforce["fte"] > 0)].iloc[0]
    with sqlite3.connect(make_url(settings.source_url).database) as conn:
        conn.execute(
            "UPDATE workers SET fte = fte / 2 WHERE worker_id = ?", (int(worker["worker_id"]),)
        )
    return Scope.team(int(worker["team_id"]))


def publishing(data: DataLayer) -> list[str]:
    """The versions ``data``'s preloader goes on to publish, in order (its warmers see each)."""
    seen: list[str] = []
    data.on_new_version(lambda token, _superseded: seen.append(token) or 0)
    return seen


def test_a_hold_is_released_by_name_or_lapses_at_its_time_limit(any_db_url):
    store = SnapshotStore(any_db_url)
    assert not store.publication_held()
    store.hold_publication("history", 60, "scheduler 1")
    store.hold_publication("history", 60, "scheduler 1")  # again: still one hold
    assert store.publication_held()
    store.release_publication("other")
    assert store.publication_held()
    store.release_publication("history")
    assert not store.publication_held()
    store.hold_publication("history", 0.3, "a scheduler that died")
    assert store.publication_held()
    time.sleep(0.5)
    assert not store.publication_held()
    store.dispose()


def test_a_held_version_is_neither_loaded_nor_published_until_its_history_is_written(private):
    store = SnapshotStore.from_settings(private)
    data = DataLayer(private)
    seen = publishing(data)
    stop = data.preload(0.05)
    try:
        first = store.version_token()
        wait_until(lambda: data.preloaded == first, "the first version published")
        team = halve_fte_in(private, data)
        caseload = data.value("average_caseload", team).value
        assert caseload is not None

        store.hold_publication(PUBLISH_HOLD_NAME, 60, "test")
        refresh_report = refresh(private, ["workforce"])
        assert not refresh_report.failed
        snapshot_only = store.version_token()
        assert snapshot_only != first
        time.sleep(1)  # 20 of the preloader's looks at the store
        assert data.preloaded == first and data._state.token == first  # not even loaded
        assert data.value("average_caseload", team).value == caseload  # the old numbers

        store.write_history(AS_OF, [HistoryRow("open_cases", "borough", 1.0, 1.0, None)])
        store.release_publication(PUBLISH_HOLD_NAME)
        final = store.version_token()
        wait_until(lambda: data.preloaded == final, "the snapshot and its history published")
        assert seen[-1] == final and snapshot_only not in seen  # one version, not two
        assert data.value("average_caseload", team).value > caseload  # half the FTE
    finally:
        stop()
        store.dispose()


def test_a_hold_nobody_releases_delays_a_version_only_so_long(private, monkeypatch, caplog):
    monkeypatch.setattr(data_module, "PUBLISH_HOLD_MAX_S", 0.5)
    store = SnapshotStore.from_settings(private)
    data = DataLayer(private)
    stop = data.preload(0.05)
    try:
        wait_until(lambda: data.preloaded == store.version_token(), "the first version")
        store.hold_publication(PUBLISH_HOLD_NAME, 600, "a scheduler that hangs")
        with caplog.at_level("INFO", logger="dashboard.data"):
            store.write_history(AS_OF, [HistoryRow("open_cases", "borough", 2.0, 2.0, None)])
            token = store.version_token()
            wait_until(lambda: data.preloaded == token, "the held version published anyway")
        waited = [
            float(r.getMessage().split("waited_s=")[1].split()[0])
            for r in caplog.records
            if "snapshots preloaded" in r.getMessage()
        ]
        assert waited and waited[-1] >= 0.5
        assert store.publication_held()  # still held in the store: only this worker gave up
    finally:
        stop()
        store.dispose()


def test_a_worker_that_has_published_nothing_does_not_wait(private):
    store = SnapshotStore.from_settings(private)
    store.hold_publication(PUBLISH_HOLD_NAME, 600, "a scheduler")
    data = DataLayer(private)
    stop = data.preload(0.05)
    try:
        token = store.version_token()
        wait_until(lambda: data.preloaded == token, "a first version despite the hold")
    finally:
        stop()
        store.dispose()


def test_the_scheduler_publishes_a_refresh_and_its_history_as_one_version(private, monkeypatch):
    """The real jobs: every dataset's first refresh and history, then a workforce refresh
    whose caseloads changed. The preloader, looking every 50 ms, publishes one new version
    holding both the workforce snapshot and the day's history it led to."""
    monkeypatch.setattr(refresher, "HISTORY_DELAY", dt.timedelta(seconds=0.5))
    store = SnapshotStore.from_settings(private)
    recorder = HistoryRecorder(private)
    runs = []
    done = threading.Event()

    def record(store_, period):
        result = recorder(store_, period)
        runs.append(result)
        done.set()
        return result

    jobs = RefreshJobs(private, store, after_refresh=record)
    jobs.start()
    data = DataLayer(private)
    try:
        wait_until(lambda: runs, "every dataset's first refresh and its history")
        assert not store.publication_held()
        stop = data.preload(0.05)
        try:
            settled = store.version_token()
            wait_until(lambda: data.preloaded == settled, "the settled version published")
            seen = publishing(data)
            team = halve_fte_in(private, data)
            caseload = data.value("average_caseload", team).value
            done.clear()
            before = store.versions()
            jobs.scheduler.modify_job("dataset:workforce", next_run_time=dt.datetime.now(dt.UTC))
            wait_until(done.is_set, "the workforce refresh's history")
            after = store.versions()
            assert after.snapshots["workforce"] != before.snapshots["workforce"]
            assert after.history != before.history and runs[-1].written > 0
            wait_until(lambda: data.preloaded == after.token, "the new version published")
            assert seen == [after.token]  # the snapshot alone was never published
            assert data.value("average_caseload", team).value > caseload
            assert not store.publication_held()
        finally:
            stop()
    finally:
        jobs.shutdown()
        store.dispose()
