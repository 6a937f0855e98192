"""The team matrix read from the daily history the scheduler records after each refresh, so a
borough-wide view does not run every team's measures in every web worker."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from sqlalchemy import delete

from dashboard.config import Settings
from dashboard.data import DataLayer
from dashboard.model import Scope
from dashboard.refresher import refresh_datasets
from dashboard.store import HistoryRow, SnapshotStore, store_history
from tests.web_support import AS_OF, refreshed_settings


@pytest.fixture(scope="module")
def with_history(small_demo_source_url, tmp_path_factory) -> Settings:
    return refreshed_settings(small_demo_source_url, tmp_path_factory.mktemp("recorded"))


@pytest.fixture(scope="module")
def without_history(small_demo_source_url, tmp_path_factory) -> Settings:
    folder = tmp_path_factory.mktemp("computed")
    settings = Settings(
        source_url=small_demo_source_url,
        store_url=f"sqlite:///{folder / 'store.sqlite'}",
        as_of=AS_OF,
        child_population=6_000,
    )
    assert not refresh_datasets(settings).failed  # no history hook: nothing recorded
    return settings


def _cells(matrix: pd.DataFrame) -> dict[tuple[int, str], object]:
    out = {}
    for record in matrix.to_dict("records"):
        for key, value in record.items():
            if key not in ("team_id", "team_name", "service_id", "service_name"):
                out[(record["team_id"], key)] = value
    return out


def _same(a: object, b: object) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


@pytest.mark.parametrize("kind", ["borough", "service", "teams"])
def test_the_recorded_matrix_equals_the_computed_one(with_history, without_history, kind):
    data = DataLayer(with_history)
    teams = sorted(int(t) for t in data.teams()["org_id"])
    scope = {
        "borough": Scope.borough(),
        "service": Scope.parse(f"service:{int(data.services()['org_id'].min())}"),
        "teams": Scope.parse("teams:" + ",".join(str(t) for t in teams[1:4])),
    }[kind]
    recorded = data.team_matrix(scope)
    computed = DataLayer(without_history).team_matrix(scope)
    assert len(recorded) >= 1

    assert recorded.attrs.get("recorded_at") is not None  # read from the history
    assert computed.attrs.get("recorded_at") is None  # no history: computed
    assert list(recorded.columns) == list(computed.columns)
    assert recorded["team_id"].tolist() == computed["team_id"].tolist()
    mine, theirs = _cells(recorded), _cells(computed)
    assert mine.keys() == theirs.keys()
    assert [k for k in mine if not _same(mine[k], theirs[k])] == []


def test_cells_come_from_the_history_and_follow_its_writes(with_history):
    data = DataLayer(with_history)
    team = int(data.teams()["org_id"].min())
    before = data.team_matrix(Scope.borough())
    assert before.loc[before["team_id"] == team, "overdue_steps"].item() != 98_765

    store = SnapshotStore.from_settings(with_history)
    store.write_history(AS_OF, [HistoryRow("overdue_steps", f"team:{team}", 98_765, None, None)])

    after = data.team_matrix(Scope.borough())
    cell = after.loc[after["team_id"] == team]
    assert cell["overdue_steps"].item() == 98_765
    assert isinstance(cell["overdue_steps"].item(), int)  # a count, as the tile shows it
    assert cell["overdue_steps_rag"].item() == "red"
    assert after.attrs["recorded_at"] > before.attrs["recorded_at"]


def test_a_cell_the_history_lacks_is_computed_alone(
    small_demo_source_url, tmp_path, without_history
):
    settings = refreshed_settings(small_demo_source_url, tmp_path / "gap")
    data = DataLayer(settings)
    team = int(data.teams()["org_id"].max())
    store = SnapshotStore.from_settings(settings)
    with store.engine.begin() as conn:  # e.g. a value that failed when it was recorded
        gone = conn.execute(
            delete(store_history).where(
                store_history.c.scope == f"team:{team}",
                store_history.c.indicator_id == "average_caseload",
            )
        ).rowcount
    assert gone == 1
    store.dispose()

    recorded = DataLayer(settings).team_matrix(Scope.borough())
    computed = DataLayer(without_history).team_matrix(Scope.borough())
    assert recorded.attrs.get("recorded_at") is not None  # still read from the history
    mine, theirs = _cells(recorded), _cells(computed)
    assert mine[(team, "average_caseload")] is not None
    assert [k for k in mine if not _same(mine[k], theirs[k])] == []


def test_many_cells_the_history_lacks_are_left_blank_not_computed(
    small_demo_source_url, tmp_path, without_history, monkeypatch
):
    """Half a day's cells missing (a history run while datasets were still refreshing) would
    have each web worker compute thousands of cells at regional scale: past the limit they stay
    blank, and the matrix says so; the recorded cells are still shown."""
    from dashboard.web import callbacks

    monkeypatch.setattr("dashboard.data.MATRIX_COMPUTED_CELLS", 2)
    settings = refreshed_settings(small_demo_source_url, tmp_path / "gaps")
    teams = sorted(int(t) for t in DataLayer(settings).teams()["org_id"])[:3]
    store = SnapshotStore.from_settings(settings)
    with store.engine.begin() as conn:
        gone = conn.execute(
            delete(store_history).where(
                store_history.c.scope.in_([f"team:{team}" for team in teams]),
                store_history.c.indicator_id == "average_caseload",
            )
        ).rowcount
    assert gone == 3
    store.dispose()

    data = DataLayer(settings)
    matrix = data.team_matrix(Scope.borough())
    computed = DataLayer(without_history).team_matrix(Scope.borough())
    assert matrix.attrs["unrecorded_cells"] == 3
    mine, theirs = _cells(matrix), _cells(computed)
    blank = {(team, "average_caseload") for team in teams}
    blank |= {(team, "average_caseload_rag") for team in teams}
    assert all(mine[key] is None or pd.isna(mine[key]) for key in blank)
    assert any(theirs[key] is not None and not pd.isna(theirs[key]) for key in blank)
    assert [k for k in mine if k not in blank and not _same(mine[k], theirs[k])] == []
    shown = callbacks.render_matrix(data, Scope.borough())
    notes = [
        p.children for p in shown.children if getattr(p, "className", "").endswith("unrecorded")
    ]
    assert notes == [
        "3 cells are blank until the scheduler records today's values for them; "
        "each team's own view is up to date now."
    ]
    two = data.team_matrix(Scope.parse(f"teams:{teams[0]},{teams[1]}"))
    assert "unrecorded_cells" not in two.attrs  # two missing cells: computed
    assert _same(
        _cells(two)[(teams[0], "average_caseload")], theirs[(teams[0], "average_caseload")]
    )


def test_a_large_matrix_waits_for_the_history_instead_of_computing(
    with_history, without_history, monkeypatch
):
    from dashboard.web import callbacks

    monkeypatch.setattr("dashboard.data.MATRIX_COMPUTED_TEAMS", 2)
    data = DataLayer(without_history)
    teams = len(data.teams())
    assert teams > 2
    pending = data.team_matrix(Scope.borough())
    assert pending.empty and pending.attrs["pending_teams"] == teams
    shown = callbacks.render_matrix(data, Scope.borough())
    assert shown.children.startswith(f"The matrix of {teams:,} teams appears once")
    two = sorted(int(t) for t in data.teams()["org_id"])[:2]
    small = data.team_matrix(Scope.parse(f"teams:{two[0]},{two[1]}"))
    assert small["team_id"].tolist() == two  # few teams: computed at once
    recorded = DataLayer(with_history).team_matrix(Scope.borough())
    assert len(recorded) == teams  # recorded: read whatever its size


def test_the_matrix_indicator_in_a_scopes_values_is_the_recorded_one_too(with_history):
    """``values(borough)`` (the JSON API, ``csc-dashboard indicators``) holds the matrix as the
    page has it: from the history, following its writes, never every team's measures."""
    data = DataLayer(with_history)
    team = int(data.teams()["org_id"].min())
    store = SnapshotStore.from_settings(with_history)
    store.write_history(AS_OF, [HistoryRow("overdue_steps", f"team:{team}", 54_321, None, None)])
    store.dispose()

    (value,) = [v for v in data.values(Scope.borough()) if v.id == "team_matrix"]
    rows = data.drilldown("team_matrix", Scope.borough())

    assert value.status != "failed"
    assert rows.loc[rows["team_id"] == team, "overdue_steps"].item() == 54_321


def test_a_large_matrix_indicator_waits_for_the_history_too(without_history, monkeypatch):
    monkeypatch.setattr("dashboard.data.MATRIX_COMPUTED_TEAMS", 2)
    data = DataLayer(without_history)
    computed = []
    monkeypatch.setattr(data, "_matrix_frame", lambda *a: computed.append(a) or pd.DataFrame())
    (value,) = [v for v in data.values(Scope.borough()) if v.id == "team_matrix"]
    assert value.status != "failed" and computed == []
