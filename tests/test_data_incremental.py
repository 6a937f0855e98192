"""A new snapshot of one dataset recomputes only what reads that dataset.

The data layer keys each cached result by the versions of the datasets it reads, so these tests
check (1) that every measure and chart reads no dataset outside its key, (2) that after refreshing
one dataset the others' results are served from the cache and the changed ones show the new rows,
(3) that unchanged frames keep their row positions, and (4) that superseded entries are evicted
while status and staleness still follow the latest attempts. Real SQLite stores over the small
demo borough, refreshed by the real refresher (with the daily history hook).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import make_url

from dashboard.config import Settings
from dashboard.data import HISTORY, DataLayer, NotApplicable, _rows_by_team
from dashboard.datasets import SCOPE_COLUMNS
from dashboard.indicators.catalogue import team_matrix_frame
from dashboard.indicators.charts import CHARTS
from dashboard.indicators.measure import MeasureInput
from dashboard.model import Scope
from dashboard.refresher import refresh_datasets
from dashboard.store import HistoryRow, SnapshotStore
from tests.web_support import AS_OF, copy_sqlite_source, refresh, refreshed_settings

# --- the guard: what each measure and chart reads is within its cache key ----------------------


class Reads(Mapping[str, pd.DataFrame]):
    """Frames by dataset id that remember which ids were asked for (iterating asks for all)."""

    def __init__(self, frames: Mapping[str, pd.DataFrame]) -> None:
        self.frames = frames
        self.read: set[str] = set()

    def __getitem__(self, dataset_id: str) -> pd.DataFrame:
        self.read.add(dataset_id)
        return self.frames[dataset_id]

    def __iter__(self) -> Iterator[str]:
        self.read.update(self.frames)
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)


@pytest.fixture(scope="module")
def settings(small_demo_source_url: str, tmp_path_factory) -> Settings:
    return refreshed_settings(small_demo_source_url, tmp_path_factory.mktemp("incremental"))


@pytest.fixture(scope="module")
def layer(settings: Settings) -> DataLayer:
    return DataLayer(settings)


def guard_scopes(data: DataLayer) -> list[Scope]:
    teams = data.teams()
    service = int(teams["service_id"].dropna().iloc[0])
    first, last = int(teams["org_id"].iloc[0]), int(teams["org_id"].iloc[-1])
    code = str(data.cost_centres()["cost_centre_code"].iloc[0])
    return [
        Scope.borough(),
        Scope.team(first),
        Scope.parse(f"service:{service}"),
        Scope.parse(f"teams:{first},{last}"),
        Scope.cost_centre(code),
    ]


def key_datasets(key: tuple) -> set[str]:
    return {name for name, _version in key[-1]}


def reading(data: DataLayer, scope: Scope, datasets) -> tuple[MeasureInput, Reads]:
    state = data._current()
    frames = Reads(state.frames)
    given = MeasureInput(
        frames, data.resolve(scope), data._period(state, datasets), data._population
    )
    return replace(given, thresholds=data._thresholds), frames


def test_every_measure_reads_only_the_datasets_in_its_key(layer: DataLayer):
    state = layer._current()
    checked = 0
    for scope in guard_scopes(layer):
        for indicator_id in layer.applicable(scope):
            definition = layer.definition(indicator_id)
            data, frames = reading(layer, scope, definition.indicator.datasets)
            if indicator_id == "team_matrix":
                # As the layer builds it: every team-tier column, measured team by team.
                team_matrix_frame(data, lambda d, team: d.measure(team), layer._matrix_columns)
            else:
                definition.measure(data)
            allowed = key_datasets(layer._measure_key(state, indicator_id, scope))
            assert frames.read, (indicator_id, scope)
            assert frames.read <= allowed, (indicator_id, str(scope), frames.read - allowed)
            checked += 1
    assert checked > 40


def test_every_chart_reads_only_the_datasets_in_its_key(layer: DataLayer):
    state = layer._current()
    checked = 0
    for scope in guard_scopes(layer):
        for chart_id, chart in CHARTS.items():
            try:
                layer.chart(chart_id, scope)
            except NotApplicable:
                continue
            data, frames = reading(layer, scope, chart.datasets)
            chart.build(data)
            allowed = key_datasets(layer._chart_key(state, chart_id, scope))
            assert frames.read <= allowed, (chart_id, str(scope), frames.read - allowed)
            checked += 1
    assert checked >= len(CHARTS)


# --- one dataset's new version ----------------------------------------------------------------


def page_scopes(data: DataLayer) -> list[Scope]:
    return guard_scopes(data)


def view_everything(data: DataLayer) -> None:
    """What the pages ask for: every scope's values, the borough's matrix, every chart."""
    for scope in page_scopes(data):
        data.values(scope)
        for chart_id in CHARTS:
            try:
                data.chart(chart_id, scope)
            except NotApplicable:
                continue
    data.team_matrix(Scope.borough())


def entries(data: DataLayer, kind: str) -> dict[tuple, object]:
    """The cached results of one kind, by key without its inputs."""
    return {key[:-1]: value for key, value in data._cache.items() if key[0] == kind}


def reads_workforce(data: DataLayer, key: tuple) -> bool:
    if key[0] == "measure":
        return "workforce" in data._reads[key[1]]
    if key[0] == "chart":
        return "workforce" in CHARTS[key[1]].datasets
    return key[0] == "matrix"


def halve_an_fte(source_url: str, data: DataLayer) -> int:
    """Halve the FTE of a case-holding worker in the source; return the worker's team."""
    workforce = data._current().snapshots["workforce"].frame
    holding = workforce[(workforce["allocations"] > 0) & (workforce["fte"] > 0)]
    worker = holding.iloc[0]
    with sqlite3.connect(make_url(source_url).database) as conn:
        conn.execute(
            "UPDATE workers SET fte = fte / 2 WHERE worker_id = ?", (int(worker["worker_id"]),)
        )
    return int(worker["team_id"])


@pytest.fixture
def private(small_demo_source_url: str, tmp_path: Path) -> Settings:
    """A refreshed store over a private copy of the small demo borough (rows may change)."""
    source = copy_sqlite_source(small_demo_source_url, tmp_path / "source")
    return refreshed_settings(source, tmp_path / "store")


def test_a_new_workforce_version_recomputes_only_what_reads_workforce(private: Settings):
    data = DataLayer(private)
    view_everything(data)
    kinds = ("measure", "chart", "matrix", "resolve", "organisation")
    before = {kind: entries(data, kind) for kind in kinds}
    team = halve_an_fte(private.source_url, data)
    caseload = data.value("average_caseload", Scope.team(team)).value

    refresh(private, ["workforce"])  # and the history hook, as the scheduler does
    view_everything(data)

    after = {kind: entries(data, kind) for kind in kinds}
    kept = changed = 0
    for kind in kinds:
        for key, value in before[kind].items():
            if reads_workforce(data, key):
                # Recomputed under the new version (a new object), the old entry evicted.
                assert after[kind][key] is not value, key
                changed += 1
            else:
                assert after[kind][key] is value, key  # served from the cache
                kept += 1
    assert kept > 10 * changed > 0
    # The changed row shows, and everything equals a layer computing from scratch.
    assert data.value("average_caseload", Scope.team(team)).value != caseload
    fresh = DataLayer(private)
    for scope in page_scopes(data):
        assert data.values(scope) == fresh.values(scope), scope
    pd.testing.assert_frame_equal(
        data.team_matrix(Scope.borough()), fresh.team_matrix(Scope.borough())
    )


def test_unchanged_frames_keep_their_row_positions(private: Settings):
    data = DataLayer(private)
    old = data._current()
    positions = {
        (dataset_id, column): old.frames.positions(snapshot.frame, column)
        for dataset_id, snapshot in old.snapshots.items()
        for column in SCOPE_COLUMNS
        if column in snapshot.frame.columns
    }
    assert ("workforce", "team_id") in positions and ("open_steps", "team_id") in positions

    halve_an_fte(private.source_url, data)
    refresh(private, ["workforce"])
    new = data._current()
    assert new is not old
    for (dataset_id, column), found in positions.items():
        again = new.frames.positions(new.snapshots[dataset_id].frame, column)
        if dataset_id == "workforce":
            assert again is not found  # the new version's rows, grouped once
        else:
            assert again is found, dataset_id  # carried over, not grouped again
            assert new.snapshots[dataset_id] is old.snapshots[dataset_id]


def test_superseded_entries_are_evicted_and_the_cache_stays_bounded(private: Settings, monkeypatch):
    data = DataLayer(private)
    view_everything(data)
    old = data._current()
    stale = [key for key in data._cache if reads_workforce(data, key) or key[0] == "history"]
    halve_an_fte(private.source_url, data)
    refresh(private, ["workforce"])
    new = data._current()
    assert all(new.holds(key[-1]) for key in data._cache)
    assert not any(key in data._cache for key in stale if not new.holds(key[-1]))
    assert new.versions["workforce"] != old.versions["workforce"]
    assert new.versions[HISTORY] != old.versions[HISTORY]

    monkeypatch.setattr("dashboard.data.CACHE_ENTRIES", 20)
    for scope in page_scopes(data)[:2]:
        data.values(scope)
    assert len(data._cache) == 20


def test_history_follows_its_own_writes(private: Settings):
    data = DataLayer(private)
    store = SnapshotStore.from_settings(private)
    first = data.history("overdue_steps", Scope.borough())
    day = AS_OF + dt.timedelta(days=1)
    store.write_history(day, [HistoryRow("overdue_steps", "borough", 5.0, None, None)])
    again = data.history("overdue_steps", Scope.borough())
    assert len(again) == len(first) + 1 and again["value"].iloc[-1] == 5.0
    store.dispose()


def test_a_failed_attempt_shows_at_once_on_cached_values(private: Settings):
    data = DataLayer(private)
    team = Scope.team(int(data.teams()["org_id"].iloc[0]))
    good = data.value("overdue_steps", team)
    assert (good.status, good.stale) == ("ok", False)
    cached = entries(data, "measure")[("measure", "overdue_steps", team)]
    store = SnapshotStore.from_settings(private)
    store.record_failure(
        "open_steps",
        "source unreachable: connection refused",
        as_of=AS_OF,
        computed_at=dt.datetime.now(dt.UTC),
        duration_s=0.0,
    )
    failed = data.value("overdue_steps", team)
    assert (failed.value, failed.stale, failed.status) == (good.value, True, "failed")
    assert "connection refused" in failed.error
    # The last good snapshot did not change, so neither did its cached measurement.
    assert entries(data, "measure")[("measure", "overdue_steps", team)] is cached
    assert data.value("open_cases", team).status == "ok"
    store.dispose()


def test_threads_reading_across_a_new_version_see_consistent_values(private: Settings):
    data = DataLayer(private)
    scopes = page_scopes(data)
    errors: list[BaseException] = []
    stop = threading.Event()
    calls = Counter()

    def reader(scope: Scope) -> None:
        try:
            while not stop.is_set():
                data.values(scope)
                data.team_matrix(Scope.borough())
                calls[str(scope)] += 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(scope,)) for scope in scopes[:4]]
    for thread in threads:
        thread.start()
    try:
        halve_an_fte(private.source_url, data)
        refresh(private, ["workforce"])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors
    assert all(calls[str(scope)] for scope in scopes[:4])
    fresh = DataLayer(private)
    for scope in scopes:
        assert data.values(scope) == fresh.values(scope), scope
    assert all(data._current().holds(key[-1]) for key in data._cache)


# --- the store's versions query ------------------------------------------------------------------


def test_store_versions_name_each_datasets_last_good_version(any_db_url: str):
    store = SnapshotStore(any_db_url)
    empty = store.versions()
    assert (empty.token, empty.snapshots, empty.history) == (store.version_token(), {}, None)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    frame = pd.DataFrame({"team_id": [1, 2]})
    for dataset_id in ("a", "a", "b"):
        store.write_snapshot(dataset_id, frame, as_of=AS_OF, computed_at=now, duration_s=0.1)
    store.record_failure("b", "refused", as_of=AS_OF, computed_at=now, duration_s=0.1)
    versions = store.versions()
    assert versions.token == store.version_token() != empty.token
    assert versions.snapshots == {"a": (2, now), "b": (1, now)}
    assert versions.snapshots["a"] == (
        store.latest("a").meta.version,
        store.latest("a").meta.computed_at,
    )
    assert versions.history is None
    store.write_history(AS_OF, [HistoryRow("x", "borough", 1.0, 1.0, 1.0)])
    written = store.versions()
    assert written.token == store.version_token() != versions.token
    assert written.snapshots == versions.snapshots and written.history is not None
    store.dispose()


# --- the preloader: a new version is loaded before any page asks --------------------------------


def test_the_preloader_loads_a_new_version_and_its_derived_frames_unasked(private: Settings):
    data = DataLayer(private)
    data.warm()
    old = data._current()
    team = Scope.team(int(data.teams()["org_id"].iloc[-1]))
    data.values(team, ["average_caseload", "open_cases"])  # a page viewed lately
    stop = data.preload(0.05)
    try:
        halve_an_fte(private.source_url, data)
        refresh(private, ["workforce"])
        token = SnapshotStore.from_settings(private).version_token()
        deadline = time.monotonic() + 30
        while (data._state is old or data._state.token != token) and time.monotonic() < deadline:
            time.sleep(0.05)
        state = data._state  # read without asking the layer for anything
        assert state.token == token
        assert state.versions["workforce"] != old.versions["workforce"]
        workforce = state.snapshots["workforce"].frame
        derived = state.frames._derived[(id(workforce), "active_workers")]
        assert derived["worker_id"].is_unique  # one row per worker, built at load
        assert state.frames.positions(derived, "team_id")  # and grouped by team already
        # The page viewed lately has its new caseload computed already, unasked.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            key[:3] == ("measure", "average_caseload", team) and state.holds(key[-1])
            for key in list(data._cache)
        ):
            time.sleep(0.05)
        fresh = [k for k in data._cache if k[:3] == ("measure", "average_caseload", team)]
        assert len(fresh) == 1 and dict(fresh[0][-1])["workforce"] == state.versions["workforce"]
        # A page view now uses that state as it is: no load on the request's path.
        data.values(Scope.borough())
        assert data._state is state
    finally:
        stop()


def test_the_preloader_survives_a_store_outage(private: Settings, caplog):
    data = DataLayer(private)
    data.warm()
    store_file = Path(make_url(private.store_url).database)
    hidden = store_file.with_suffix(".away")
    stop = data.preload(0.05)
    try:
        with caplog.at_level("INFO", logger="dashboard.data"):
            data.store.dispose()
            store_file.rename(hidden)  # the store is gone: version queries fail
            store_file.mkdir()  # and cannot be recreated as a database in its place
            deadline = time.monotonic() + 30
            while "preload failed" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
            assert caplog.text.count("preload failed") == 1  # said once, not every 50 ms
            time.sleep(0.3)
            assert caplog.text.count("preload failed") == 1
            store_file.rmdir()
            hidden.rename(store_file)
            deadline = time.monotonic() + 30
            while "preload recovered" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "preload recovered" in caplog.text
    finally:
        stop()
    assert data.values(Scope.borough())


def test_a_refresh_that_changed_no_row_recomputes_nothing_but_shows_its_new_time(
    private: Settings,
):
    """Most refreshes of a quiet dataset bring the same rows: the very frame (with its row
    positions) and every result computed from it are kept; only the computed time is new."""
    data = DataLayer(private)
    view_everything(data)
    kinds = ("measure", "chart", "matrix", "resolve", "organisation")
    before = {kind: entries(data, kind) for kind in kinds}
    old = data._current()
    team = Scope.team(int(data.teams()["org_id"].iloc[0]))
    old_value = data.value("average_caseload", team)
    positions = old.frames.positions(old.snapshots["workforce"].frame, "team_id")

    refresh(private, ["workforce"])  # the source is as it was
    new = data._current()

    assert new.snapshots["workforce"].meta.version == old.snapshots["workforce"].meta.version + 1
    assert new.snapshots["workforce"].frame is old.snapshots["workforce"].frame
    assert new.frames.positions(new.snapshots["workforce"].frame, "team_id") is positions
    view_everything(data)
    after = {kind: entries(data, kind) for kind in kinds}
    for kind in kinds:
        for key, value in before[kind].items():
            if kind == "matrix" or (kind == "measure" and HISTORY in data._reads[key[1]]):
                continue  # the refresh's history hook wrote the day's rows again
            assert after[kind][key] is value, key  # served from the cache, not recomputed
    new_value = data.value("average_caseload", team)
    assert new_value.value == old_value.value
    assert new_value.computed_at == new.snapshots["workforce"].meta.computed_at
    assert new_value.computed_at > old_value.computed_at


def test_a_chart_is_drawn_again_only_when_its_data_changes(private: Settings):
    data = DataLayer(private)
    changed = halve_an_fte(private.source_url, data)  # in the source, not yet refreshed
    team = Scope.team(changed)
    drawn: list[str] = []

    def draw(chart_id: str):
        def figure(frame: pd.DataFrame) -> dict:
            drawn.append(chart_id)
            return {"chart": chart_id, "frame": frame}

        return figure

    ids = ("caseload_by_worker", "overdue_by_category")
    other = Scope.team(next(t for t in sorted(map(int, data.teams()["org_id"])) if t != changed))
    first = {c: data.chart_figure(c, team, draw(c)) for c in ids}
    again = {c: data.chart_figure(c, team, draw(c)) for c in ids}
    assert drawn == list(ids) and all(again[c] is first[c] for c in ids)
    pd.testing.assert_frame_equal(first["caseload_by_worker"]["frame"], data.chart(ids[0], team))
    theirs = data.chart_figure("caseload_by_worker", other, draw("other team"))
    assert drawn == [*ids, "other team"]

    refresh(private, ["workforce"])
    after = {c: data.chart_figure(c, team, draw(c)) for c in ids}

    assert drawn == [*ids, "other team", "caseload_by_worker"]  # the workforce chart only
    assert after["overdue_by_category"] is first["overdue_by_category"]
    # Another team's caseloads read the new workforce too, but their rows are unchanged: not
    # drawn again.
    assert data.chart_figure("caseload_by_worker", other, draw("other team")) is theirs
    assert drawn == [*ids, "other team", "caseload_by_worker"]
    caseloads = after["caseload_by_worker"]["frame"]
    pd.testing.assert_frame_equal(caseloads, data.chart("caseload_by_worker", team))
    assert not caseloads.equals(first["caseload_by_worker"]["frame"])  # the halved FTE shows
    with pytest.raises(NotApplicable):
        data.chart_figure("caseload_by_worker", Scope.cost_centre("X"), draw("x"))


def _nice_of(native_id: int) -> int:
    """The nice value the kernel schedules a thread of this process at."""
    with open(f"/proc/self/task/{native_id}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[16])


def test_the_preloader_runs_nicer_than_the_requests(layer: DataLayer):
    """A new version's warming is background work: it takes the CPU the requests leave."""
    import threading

    from dashboard.data import PRELOAD_THREAD_NICE

    mine = _nice_of(threading.get_native_id())
    stop = layer.preload(0.05)
    try:
        deadline = time.monotonic() + 30
        found: list[int] = []
        while not found and time.monotonic() < deadline:
            found = [
                t.native_id
                for t in threading.enumerate()
                if t.name == "snapshot-preload" and t.native_id is not None
            ]
            time.sleep(0.05)
        time.sleep(0.2)  # it lowers itself first thing
        assert found
        assert {_nice_of(tid) for tid in found} == {min(19, mine + PRELOAD_THREAD_NICE)}
        assert _nice_of(threading.get_native_id()) == mine  # the caller's own is untouched
    finally:
        stop()


def test_rows_by_team_tell_a_teams_rows_apart_from_the_others():
    """Worked by hand: team 1's rows are the same in both frames (other rows around them
    moved), team 2 lost a row, team 3 kept its rows but swapped their order, and a row without
    a team counts under None."""
    before = pd.DataFrame(
        {
            "team_id": pd.array([1, 2, 1, 3, 3, 2, None], dtype="Int64"),
            "fte": [1.0, 0.5, 0.8, 1.0, 0.6, 1.0, 0.3],
        }
    )
    after = pd.DataFrame(
        {
            "team_id": pd.array([2, 1, 1, 3, 3, None], dtype="Int64"),
            "fte": [0.5, 1.0, 0.8, 0.6, 1.0, 0.3],
        }
    )
    was, now = _rows_by_team(before), _rows_by_team(after)
    assert set(was) == set(now) == {1, 2, 3, None}
    assert was[1] == now[1] and was[None] == now[None]
    assert (was[2][0], now[2][0]) == (2, 1) and was[2] != now[2]
    assert was[3][0] == now[3][0] == 2 and was[3] != now[3]  # the same rows, in another order
    assert _rows_by_team(before.iloc[:0]) == {}


def test_a_change_in_one_team_is_told_apart_without_computing_the_others(private: Settings):
    """A workforce change in one team: the preloader's question "does this page show the same?"
    is answered for every other team from the digests of their rows, without computing their
    caseloads again; for the changed team it is No, and its caseload is computed."""
    data = DataLayer(private)
    scopes = [Scope.team(int(t)) for t in data.teams()["org_id"]]
    for scope in scopes:
        data.values(scope, ["average_caseload", "open_cases"])
        data.chart("caseload_by_worker", scope)
    old = data._check(keep_previous=True)
    data._remember_published(old)
    team = halve_an_fte(private.source_url, data)
    assert not refresh_datasets(private, ["workforce"]).failed
    new = data._check(keep_previous=True)
    data._remember_published(new)
    assert new.versions["workforce"] != old.versions["workforce"]

    def computed(scope: Scope) -> bool:
        return any(
            key[:3] == ("measure", "average_caseload", scope) and new.holds(key[-1])
            for key in list(data._cache)
        )

    page = (["average_caseload", "open_cases"], ["caseload_by_worker"])
    for scope in scopes:
        same = data.unchanged_between(old.token, new.token, scope, *page)
        assert same is (scope != Scope.team(team)), scope
        assert computed(scope) is (scope == Scope.team(team)), scope
    # The answer for the others is right: computing from scratch gives what they showed.
    fresh = DataLayer(private)
    for scope in scopes[:5]:
        assert fresh.values(scope, ["average_caseload"]) == data.values(scope, ["average_caseload"])
