"""Partitioned scope filters: a scope's rows taken by position are exactly the rows a plain
filter finds (same rows, order, index and dtypes), for every kind of scope and with empty scope
keys; and every value the data layer serves through them equals the value computed with plain
filters, for every scope of a refreshed demo borough."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from known_store import refreshed

from dashboard.config import Settings
from dashboard.data import DataLayer
from dashboard.indicators.measure import DEFAULT_POPULATION, MeasureInput
from dashboard.model import Scope, ScopeError
from dashboard.partition import PartitionedFrames, group_positions
from dashboard.reporting import ReportingPeriod
from dashboard.scopes import Organisation, resolve, team_scope
from dashboard.store import SnapshotStore, decode_frame, encode_frame
from tests.conftest import DEMO_AS_OF

# Service 10 holds teams 1 and 2, service 20 holds teams 3 and 5; team 4 has no rows.
ORGANISATION = pd.DataFrame(
    {
        "org_id": [100, 10, 20, 1, 2, 3, 4, 5],
        "parent_org_id": pd.array([None, 100, 100, 10, 10, 20, 20, 20], dtype="Int64"),
        "org_level": ["DIRECTORATE", "SERVICE", "SERVICE", "TEAM", "TEAM", "TEAM", "TEAM", "TEAM"],
        "name": ["CS", "S10", "S20", "T1", "T2", "T3", "T4", "T5"],
    }
)
CODES = {"A", "B", "C", "D"}


def work() -> pd.DataFrame:
    """Rows out of team order, empty team ids and cost centres, an index that is not 0..n-1."""
    return pd.DataFrame(
        {
            "item": [f"r{i}" for i in range(10)],
            "team_id": pd.array([3, 1, None, 2, 1, 3, 5, None, 1, 7], dtype="Int64"),
            "cost_centre_code": pd.array(
                ["A", None, "B", "A", "C", None, "B", "A", "A", "Z"], dtype="string"
            ),
            "amount": [1.5, 2.0, 3.25, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
        },
        index=[90, 81, 72, 63, 54, 45, 36, 27, 18, 9],
    )


def plain(frame: pd.DataFrame, column: str, keys: set | None) -> pd.DataFrame:
    """The straightforward filter, written out here: keep a row if its key is in the set."""
    if keys is None:
        return frame
    keep = [pd.notna(value) and value in keys for value in frame[column]]
    return frame[keep]


SCOPES = [
    "borough",
    "team:1",
    "team:4",
    "team:7",  # not in the organisation: rows only in the data
    "teams:1,3",
    "teams:5,2,3",
    "service:10",
    "service:20",
    "cost_centre:A",
    "cost_centre:D",
]


@pytest.mark.parametrize("text", SCOPES)
def test_partitioned_filters_return_exactly_the_plain_rows(text: str):
    scope = Scope.parse(text)
    frames = PartitionedFrames({"work": work(), "org": ORGANISATION})
    if text == "team:7":
        resolved = team_scope(7)
    else:
        resolved = resolve(scope, ORGANISATION, CODES)
    bound = resolved.using(frames)
    assert bound.partitions is frames and bound == resolved
    frame = frames["work"]
    teams = bound.filter_teams(frame)
    pd.testing.assert_frame_equal(teams, plain(frame, "team_id", resolved.team_ids))
    pd.testing.assert_frame_equal(teams, resolved.filter_teams(frame))
    centres = bound.filter_cost_centres(frame)
    pd.testing.assert_frame_equal(centres, plain(frame, "cost_centre_code", resolved.cost_centres))
    pd.testing.assert_frame_equal(centres, resolved.filter_cost_centres(frame))


def test_known_rows_by_position():
    frames = PartitionedFrames({"work": work()})
    frame = frames["work"]
    service = resolve(Scope.parse("service:10"), ORGANISATION, CODES).using(frames)
    # Teams 1 and 2: rows r1, r3, r4, r8, in frame order.
    assert service.filter_teams(frame)["item"].tolist() == ["r1", "r3", "r4", "r8"]
    assert service.filter_teams(frame).index.tolist() == [81, 63, 54, 18]
    centre = resolve(Scope.parse("cost_centre:A"), ORGANISATION, CODES).using(frames)
    assert centre.filter_cost_centres(frame)["item"].tolist() == ["r0", "r3", "r7", "r8"]
    assert centre.filter_teams(frame).empty  # a cost centre covers no team
    assert list(centre.filter_teams(frame).columns) == list(frame.columns)


@pytest.mark.parametrize("text", [*SCOPES, "team:10", "service:1", "team:99", "cost_centre:Q"])
def test_a_prepared_organisation_resolves_as_the_frame_does(text: str):
    scope = Scope.parse(text)
    tree = Organisation.of(ORGANISATION)
    try:
        expected = resolve(scope, ORGANISATION, CODES)
    except ScopeError as error:
        with pytest.raises(ScopeError, match=re.escape(str(error))):
            resolve(scope, tree, frozenset(CODES))
        return
    found = resolve(scope, tree, frozenset(CODES))
    assert (found, found.label) == (expected, expected.label)


def test_group_positions_leave_out_empty_keys():
    groups = group_positions(work()["team_id"])
    assert {key: list(value) for key, value in groups.items()} == {
        3: [0, 5],
        1: [1, 4, 8],
        2: [3],
        5: [6],
        7: [9],
    }
    assert group_positions(pd.Series([], dtype="Int64")) == {}
    assert group_positions(pd.Series([None, None], dtype="string")) == {}


def test_a_float_team_column_matches_integer_team_ids():
    frame = pd.DataFrame({"team_id": [1.0, float("nan"), 2.0, 1.0], "n": [1, 2, 3, 4]})
    frames = PartitionedFrames({"f": frame})
    scope = resolve(Scope.parse("teams:1,2"), ORGANISATION, CODES).using(frames)
    pd.testing.assert_frame_equal(scope.filter_teams(frame), plain(frame, "team_id", {1, 2}))
    assert scope.filter_teams(frame)["n"].tolist() == [1, 3, 4]


def test_a_derived_frame_is_filtered_plainly():
    frames = PartitionedFrames({"work": work()})
    derived = frames["work"].sort_values("amount", ascending=False)
    assert frames.rows(derived, "team_id", {1}) is None  # other rows than the held frame
    assert frames.rows(frames["work"], "missing_column", {1}) is None
    scope = resolve(Scope.team(1), ORGANISATION, CODES).using(frames)
    assert scope.filter_teams(derived)["item"].tolist() == ["r8", "r4", "r1"]


def test_a_derived_frame_is_built_once_per_version_and_filtered_by_position():
    calls = []

    def top_rows(frame: pd.DataFrame) -> pd.DataFrame:
        calls.append(id(frame))
        return frame.sort_values("amount", ascending=False).head(6)

    frames = PartitionedFrames({"work": work(), "other": work()})
    derived = frames.derived(frames["work"], "top", top_rows)
    assert frames.derived(frames["work"], "top", top_rows) is derived  # once, shared
    assert len(calls) == 1
    # Amounts 10, 9, 8, 7, 6, 5 are rows r9, r8, r7, r6, r5, r4; team 1 holds r8 and r4.
    assert frames.positions(derived, "team_id") is not None  # held and grouped like a snapshot
    scope = resolve(Scope.team(1), ORGANISATION, CODES).using(frames)
    assert scope.filter_teams(derived)["item"].tolist() == ["r8", "r4"]

    # The next version keeps it while "work" is the same frame, and builds anew once it is not.
    kept = PartitionedFrames({"work": frames["work"], "other": work()}, frames)
    assert kept.derived(kept["work"], "top", top_rows) is derived
    replaced = PartitionedFrames({"work": work(), "other": frames["other"]}, frames)
    assert replaced.derived(replaced["work"], "top", top_rows) is not derived
    assert len(calls) == 2
    # A frame that is not held is simply built from, every time.
    loose = work()
    frames.derived(loose, "top", top_rows)
    frames.derived(loose, "top", top_rows)
    assert len(calls) == 4


def test_every_caseload_shares_one_deduplicated_workforce():
    period = ReportingPeriod.for_date(pd.Timestamp(DEMO_AS_OF).date())
    workforce = pd.DataFrame(
        {
            # Worker 1 moved from team 1 to team 2: only the later role counts, in team 2.
            "worker_id": [1, 1, 2, 3],
            "worker_role_id": [10, 11, 20, 30],
            "role_start_date": pd.to_datetime(
                ["2024-01-01", "2025-06-01", "2023-01-01", "2022-01-01"]
            ),
            "team_id": pd.array([1, 2, 1, 2], dtype="Int64"),
            "role": ["SW", "SW", "SW", "SENIOR_PRACTITIONER"],
            "is_agency": [False, False, True, False],
            "fte": [1.0, 1.0, 0.5, 1.0],
            "allocations": pd.array([9, 12, 6, 15], dtype="Int64"),
            "first_names": ["A", "A", "B", "C"],
            "last_names": ["One", "One", "Two", "Three"],
        }
    )
    frames = PartitionedFrames({"workforce": workforce})
    from dashboard.indicators.team import active_workers, average_caseload

    team1 = average_caseload(MeasureInput(frames, team_scope(1), period))
    team2 = average_caseload(MeasureInput(frames, team_scope(2), period))
    assert (team1.numerator, team1.denominator, team1.value) == (6, 0.5, 12.0)
    assert (team2.numerator, team2.denominator, team2.value) == (27, 2.0, 13.5)
    first = active_workers(MeasureInput(frames, team_scope(1), period))
    assert active_workers(MeasureInput(frames, team_scope(2), period)) is first


def test_measure_inputs_from_partitioned_frames_bind_their_scope():
    frames = PartitionedFrames({"work": work()})
    period = ReportingPeriod.for_date(pd.Timestamp(DEMO_AS_OF).date())
    data = MeasureInput(frames, team_scope(1), period)
    assert data.scope.partitions is frames
    assert data.scope.scope == Scope.team(1)
    unbound = MeasureInput({"work": work()}, team_scope(1), period)
    assert unbound.scope.partitions is None


def test_decoded_string_columns_are_one_chunk():
    # Parquet decodes in 128Ki-row batches; a many-chunked Arrow column makes every take of a
    # few rows cost the whole column, so the store joins the chunks once when it decodes.
    rows = 300_000
    frame = pd.DataFrame(
        {
            "team_id": pd.array([i % 7 if i % 11 else None for i in range(rows)], dtype="Int64"),
            "name": pd.array([f"n{i % 1000}" if i % 13 else None for i in range(rows)], "string"),
        }
    )
    decoded = decode_frame(encode_frame(frame))
    pd.testing.assert_frame_equal(decoded, frame)
    assert decoded["name"].array.__arrow_array__().num_chunks == 1
    frames = PartitionedFrames({"f": decoded})
    taken = resolve(Scope.parse("teams:3,5"), ORGANISATION, CODES).using(frames)
    pd.testing.assert_frame_equal(
        taken.filter_teams(decoded), plain(decoded, "team_id", {3, 5}), check_index_type=False
    )


@pytest.fixture(scope="module")
def settings(tmp_path_factory, small_demo_source_url: str) -> Settings:
    return refreshed(tmp_path_factory.mktemp("partition"), small_demo_source_url, as_of=DEMO_AS_OF)


def every_scope(data: DataLayer) -> list[Scope]:
    teams = [int(t) for t in data.teams()["org_id"]]
    scopes = [Scope.borough(), *(Scope.team(t) for t in teams)]
    scopes += [Scope.parse(f"service:{s}") for s in data.services()["org_id"]]
    scopes.append(Scope.parse(f"teams:{teams[0]},{teams[len(teams) // 2]},{teams[-1]}"))
    scopes += [Scope.cost_centre(c) for c in data.cost_centres()["cost_centre_code"].dropna()]
    return scopes


@pytest.mark.slow
def test_every_value_equals_the_plainly_filtered_value(settings: Settings):
    data = DataLayer(settings)
    store = SnapshotStore.from_settings(settings)
    try:
        plain_frames = {}
        for dataset_id in sorted(set(data.store.status())):
            snapshot = store.latest(dataset_id)
            if snapshot is not None:
                plain_frames[dataset_id] = snapshot.frame.copy()  # other objects: no positions
    finally:
        store.dispose()
    period = ReportingPeriod.for_date(pd.Timestamp(DEMO_AS_OF).date())
    compared = 0
    for scope in every_scope(data):
        ids = [key for key in data.applicable(scope) if not data.definition(key).chart]
        ids = [key for key in ids if key != "team_matrix"]
        plain_input = MeasureInput(
            plain_frames,
            data.resolve(scope),  # the teams and cost centres alone, no partitions
            period,
            settings.child_population or DEFAULT_POPULATION,
        )
        assert plain_input.scope.partitions is None
        for value in data.values(scope, ids):
            expected = data.definition(value.id).measure(plain_input)
            assert (value.value, value.numerator, value.denominator) == (
                expected.value,
                expected.numerator,
                expected.denominator,
            ), (scope, value.id)
            if expected.rows is not None and data.definition(value.id).indicator.drilldown:
                rows = data.drilldown(value.id, scope)
                pd.testing.assert_frame_equal(
                    rows[list(expected.rows.columns)].reset_index(drop=True),
                    expected.rows.reset_index(drop=True),
                    obj=f"{scope} {value.id}",
                )
            compared += 1
    assert compared > 200
