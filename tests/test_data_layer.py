"""The data layer over a real refreshed store: drill-downs match tiles, failures stay local,
staleness, thresholds, history, the family view, charts, and the indicators command."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from fixtures.known_borough import AS_OF
from known_store import refreshed
from sqlalchemy import event
from sqlalchemy.engine import make_url

from dashboard.config import PROJECT_ROOT, Settings
from dashboard.data import DataLayer
from dashboard.indicators.charts import CHARTS
from dashboard.indicators.declared import load_catalogue
from dashboard.indicators.rag import ThresholdsFileError
from dashboard.model import Scope
from dashboard.refresher import refresh_datasets
from dashboard.store import SnapshotStore
from tests.conftest import DEMO_AS_OF

# What the data layer serves: the built-ins plus the indicators declared in queries/ headers.
DEFINITIONS, _ = load_catalogue(PROJECT_ROOT / "queries")


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return refreshed(tmp_path_factory.mktemp("layer"))


@pytest.fixture(scope="module")
def data(settings: Settings) -> DataLayer:
    return DataLayer(settings)


def every_scope(data: DataLayer) -> list[Scope]:
    teams = [int(t) for t in data.teams()["org_id"]]
    scopes = [Scope.borough()] + [Scope.team(t) for t in teams]
    scopes += [Scope.parse(f"service:{s}") for s in data.services()["org_id"]]
    scopes.append(Scope.parse(f"teams:{teams[0]},{teams[-1]}"))
    scopes += [Scope.cost_centre(c) for c in data.cost_centres()["cost_centre_code"]]
    return scopes


COUNTS = [
    d.id for d in DEFINITIONS.values() if d.indicator.unit == "count" and d.indicator.drilldown
]


def test_every_count_indicator_has_a_drilldown():
    assert {"open_cases", "overdue_steps", "active_placements", "payments_without_element"} <= set(
        COUNTS
    )


@pytest.mark.parametrize("indicator_id", COUNTS)
def test_drilldown_rows_equal_the_tile_in_every_scope(data: DataLayer, indicator_id: str):
    checked = 0
    for scope in every_scope(data):
        if not DEFINITIONS[indicator_id].applies_to(scope):
            continue
        value = data.value(indicator_id, scope)
        assert value.status == "ok", (scope, value.error)
        assert value.value == len(data.drilldown(indicator_id, scope)), scope
        checked += 1
    assert checked >= 1


def test_known_answers_through_the_layer(data: DataLayer):
    # Hand-worked in tests/fixtures/KNOWN_ANSWERS.md.
    overdue = data.value("overdue_steps", Scope.team(11))
    assert (overdue.value, overdue.rag) == (10, "amber")
    caseload = data.value("average_caseload", Scope.parse("teams:11,21"))
    assert (caseload.value, caseload.numerator, caseload.denominator) == (3.5, 14, 4.0)
    variance = data.value("variance", Scope.cost_centre("CC100"))
    assert (variance.value, variance.rag) == (17_796, "red")
    assert variance.extra["percent_of_budget"] == 2.09


def test_zero_denominator_is_no_data_not_zero(data: DataLayer):
    value = data.value("assessments_on_time", Scope.team(21))
    assert (value.value, value.status, value.rag) == (None, "no_data", None)
    assert value.to_json()["value"] is None


def test_drilldowns_name_teams_and_children(data: DataLayer):
    rows = data.drilldown("overdue_steps", Scope.team(11))
    assert set(rows["team_name"]) == {"Assessment North"}
    assert rows["child_name"].str.len().min() > 0
    assert rows["days_overdue"].min() >= 1


def test_a_grid_reads_one_named_list_per_version_and_callers_get_copies(data: DataLayer):
    view = data.drilldown_view("overdue_steps", Scope.borough())
    assert data.drilldown_view("overdue_steps", Scope.borough()) is view  # named once
    assert {"Assessment North"} <= set(view["team_name"].dropna())
    assert view["team_name"].notna().all()  # every overdue step's team has a name
    copy = data.drilldown("overdue_steps", Scope.borough())
    assert copy is not view and copy.equals(view)
    copy["team_name"] = None  # a caller changing its copy leaves the cached list alone
    assert data.drilldown_view("overdue_steps", Scope.borough())["team_name"].notna().all()


def test_values_json_is_serialisable_including_charts(data: DataLayer):
    values = data.values(Scope.borough())
    assert {v.id for v in values} == set(DEFINITIONS)
    text = json.dumps([v.to_json() for v in values])
    matrix = next(v for v in values if v.id == "team_matrix").to_json()["series"]
    assert len(matrix) == 4 and "overdue_steps_rag" in matrix[0]
    assert "2026-11-01" in text  # the trend's last month, as an ISO date


def test_team_matrix_cells_equal_team_values(data: DataLayer):
    matrix = data.team_matrix(Scope.borough())
    assert sorted(matrix["team_id"]) == [11, 12, 21, 22]
    for row in matrix.itertuples():
        for indicator_id in ("overdue_steps", "average_caseload", "cp_visits_on_time"):
            value = data.value(indicator_id, Scope.team(row.team_id))
            assert getattr(row, indicator_id) == value.value or (
                value.value is None and pd.isna(getattr(row, indicator_id))
            )
            rag = getattr(row, f"{indicator_id}_rag")
            assert rag == value.rag or (value.rag is None and pd.isna(rag))
    assert sorted(data.team_matrix(Scope.parse("service:10"))["team_id"]) == [11, 12]


@pytest.mark.parametrize("chart_id", sorted(CHARTS))
def test_every_chart_builds_for_the_borough(data: DataLayer, chart_id: str):
    chart = data.chart(chart_id, Scope.borough())
    assert len(chart) > 0


def test_spend_profile_sums_to_the_tiles(data: DataLayer):
    scope = Scope.cost_centre("CC100")
    profile = data.chart("spend_by_month", scope)
    # Each month is rounded to pence, so twelve of them may differ from the total by pennies.
    incurred, committed = profile["incurred"].sum(), profile["forecast"].sum()
    assert incurred == pytest.approx(data.value("accrued_to_date", scope).value, abs=0.12)
    assert committed == pytest.approx(data.value("committed", scope).value, abs=0.12)


def test_history_was_recorded_for_the_day(data: DataLayer):
    history = data.history("overdue_steps", Scope.team(11))
    assert list(history["day"]) == [pd.Timestamp(AS_OF)]
    assert list(history["value"]) == [10.0]
    # A service's history is its teams' summed day by day: 10 + 2 overdue.
    assert list(data.history("overdue_steps", Scope.parse("service:10"))["value"]) == [12.0]
    # A rate: sums of numerators over sums of denominators, (2 + 2) / (4 + 5).
    visits = data.history("cp_visits_on_time", Scope.parse("teams:11,21"))
    assert list(visits["value"]) == [44.44]
    assert list(data.history("variance", Scope.cost_centre("CC200"))["value"]) == [0.0]


def test_a_pages_history_is_read_in_one_query_with_the_same_answers(settings: Settings):
    data = DataLayer(settings)  # its own cache: nothing read yet
    data.warm()
    queries: list[str] = []
    event.listen(
        data.store.engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_rest: queries.append(statement),
    )
    service, teams = Scope.parse("service:10"), Scope.parse("teams:11,21")
    data.prefetch_history(["overdue_steps", "cp_visits_on_time"], service)
    data.prefetch_history(["cp_visits_on_time", "overdue_steps"], teams)
    data.prefetch_history(["overdue_steps"], Scope.team(11))
    reads = [q for q in queries if "store_history.indicator_id" in q]  # not the version checks
    assert len(reads) == 3  # one per page, however many teams
    queries.clear()
    # The same known answers as test_history_was_recorded_for_the_day, with no more reads.
    assert list(data.history("overdue_steps", Scope.team(11))["value"]) == [10.0]
    assert list(data.history("overdue_steps", service)["value"]) == [12.0]
    assert list(data.history("cp_visits_on_time", teams)["value"]) == [44.44]
    assert [q for q in queries if "store_history.indicator_id" in q] == []
    # And frame for frame what a read per tile and team gives.
    fresh = DataLayer(settings)
    for indicator_id, scope in [
        ("overdue_steps", service),
        ("cp_visits_on_time", service),
        ("cp_visits_on_time", teams),
        ("overdue_steps", Scope.team(11)),
    ]:
        pd.testing.assert_frame_equal(
            data.history(indicator_id, scope), fresh.history(indicator_id, scope)
        )


def test_family_view_groups_siblings_and_their_open_work(data: DataLayer):
    # Family 1: children 1031 and 1032 (KNOWN_ANSWERS.md); 1031 has open cases in team 21/22.
    family = data.family(1031, Scope.borough())
    assert set(family["person_id"]) == {1031, 1032}
    assert "case" in set(family["kind"])
    with pytest.raises(Exception, match="no open case or open step"):
        data.family(1031, Scope.team(12))


def test_dataset_status_lists_every_dataset(data: DataLayer):
    status = {row["dataset_id"]: row for row in data.dataset_status()}
    assert {"open_steps", "service_elements", "organisation"} <= set(status)
    assert all(row["status"] == "ok" for row in status.values())
    assert status["organisation"]["rows"] == 7


def test_no_source_is_needed_to_serve_values(settings: Settings, tmp_path):
    # Page views read only the store: with the source gone, every value still computes.
    gone = settings.model_copy(update={"source_url": f"sqlite:///{tmp_path / 'missing.sqlite'}"})
    values = DataLayer(gone).values(Scope.borough())
    assert all(v.status in ("ok", "no_data") for v in values)


def test_cache_follows_the_store_version(settings: Settings, tmp_path):
    store = SnapshotStore.from_settings(settings)
    layer = DataLayer(settings, store)
    before = layer.value("open_cases", Scope.team(11))
    assert layer.value("open_cases", Scope.team(11)) == before
    frame = store.latest("open_cases").frame
    store.write_snapshot(
        "open_cases",
        frame[frame["team_id"] != 11].reset_index(drop=True),
        as_of=AS_OF,
        computed_at=dt.datetime.now(dt.UTC),
        duration_s=0.1,
    )
    assert layer.value("open_cases", Scope.team(11)).value == 0
    store.dispose()


# --- failures and staleness (each on its own store) --------------------------------------------


def test_a_failing_dataset_marks_only_its_own_indicators(tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    queries = tmp_path / "queries"
    shutil.copytree(PROJECT_ROOT / "queries", queries)
    broken = queries / "signoff_queue.sql"
    broken.write_text(broken.read_text().replace("FROM workflow_steps s", "FROM no_such_table s"))
    settings = Settings(
        source_url=refreshed(first).source_url,
        store_url=f"sqlite:///{tmp_path / 'store.sqlite'}",
        queries_dir=queries,
        as_of=AS_OF,
        child_population=10_000,
    )
    report = refresh_datasets(settings)
    assert report.failed == ["signoff_queue"]
    values = {v.id: v for v in DataLayer(settings).values(Scope.team(11))}
    failed = values["awaiting_signoff"]
    assert (failed.status, failed.value) == ("failed", None)
    assert "no_such_table" in failed.error
    assert values["overdue_steps"].status == "ok" and values["overdue_steps"].value == 10
    assert all(v.status != "failed" for k, v in values.items() if k != "awaiting_signoff")


def test_a_failed_refresh_keeps_the_last_good_value_stale_with_the_error(tmp_path):
    settings = refreshed(tmp_path)
    store = SnapshotStore.from_settings(settings)
    store.record_failure(
        "open_steps",
        "source unreachable: connection refused",
        as_of=AS_OF,
        computed_at=dt.datetime.now(dt.UTC),
        duration_s=0.0,
    )
    value = DataLayer(settings, store).value("overdue_steps", Scope.team(11))
    assert (value.value, value.stale, value.status) == (10, True, "failed")
    assert "connection refused" in value.error
    other = DataLayer(settings, store).value("open_cases", Scope.team(11))
    assert (other.stale, other.status, other.error) == (False, "ok", None)
    store.dispose()


def test_a_snapshot_older_than_twice_its_interval_is_stale(tmp_path):
    settings = refreshed(tmp_path)
    store = SnapshotStore.from_settings(settings)
    frame = store.latest("workforce").frame  # refresh: 15m, so stale after 30 minutes
    store.write_snapshot(
        "workforce",
        frame,
        as_of=AS_OF,
        computed_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31),
        duration_s=0.1,
    )
    layer = DataLayer(settings, store)
    value = layer.value("average_caseload", Scope.team(11))
    assert (value.value, value.stale, value.status) == (3.2, True, "ok")
    assert layer.value("open_cases", Scope.team(11)).stale is False
    status = {row["dataset_id"]: row for row in layer.dataset_status()}
    assert status["workforce"]["status"] == "stale"
    store.dispose()


def test_thresholds_file_overrides_rag(settings: Settings, tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text("overdue_steps: {green: 10, amber: 20}\n")
    layer = DataLayer(settings.model_copy(update={"thresholds_file": path}))
    assert layer.value("overdue_steps", Scope.team(11)).rag == "green"
    assert DataLayer(settings).value("overdue_steps", Scope.team(11)).rag == "amber"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nonsense_id: {green: 1, amber: 2}\n", "key 'nonsense_id': unknown indicator"),
        ("overdue_steps: {green: 1}\n", "key 'overdue_steps': give exactly green and amber"),
        ("overdue_steps: {green: a, amber: 2}\n", "key 'overdue_steps': green and amber must"),
        ("assessments_on_time: {green: 70, amber: 80}\n", "green must be >= amber"),
        ("open_cases: {green: 1, amber: 2}\n", "key 'open_cases': a context indicator"),
        ("overdue_steps: [\n", "not valid YAML"),
    ],
)
def test_a_bad_thresholds_file_names_the_file_and_key(settings, tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ThresholdsFileError, match=message) as caught:
        DataLayer(settings.model_copy(update={"thresholds_file": path}))
    assert "bad.yaml" in str(caught.value)


# --- the indicators command, end to end ----------------------------------------------------------


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    # Only these settings: nothing inherited from the caller's DASHBOARD_* or a .env file.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env["DASHBOARD_SOURCE_URL"] = settings.source_url
    env["DASHBOARD_STORE_URL"] = settings.store_url
    if settings.child_population:
        env["DASHBOARD_CHILD_POPULATION"] = str(settings.child_population)
    if settings.as_of:
        env["DASHBOARD_AS_OF"] = settings.as_of.isoformat()
    store_folder = make_url(settings.store_url).database.rsplit("/", 1)[0]
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=store_folder,
        timeout=300,
    )


def test_indicators_command_for_borough_team_and_cost_centre(settings: Settings):
    for scope, expected in [
        ("borough", set(DEFINITIONS)),
        ("team:11", {k for k, d in DEFINITIONS.items() if d.applies_to(Scope.team(11))}),
        (
            "cost_centre:CC100",
            {k for k, d in DEFINITIONS.items() if d.applies_to(Scope.cost_centre("CC100"))},
        ),
    ]:
        result = cli(settings, "indicators", "--json", "--scope", scope, "--as-of", "2026-11-25")
        assert result.returncode == 0, result.stderr
        values = {v["id"]: v for v in json.loads(result.stdout)}
        assert set(values) == expected, scope
        assert all(v["status"] in ("ok", "no_data") for v in values.values())
        assert all(v["scope"] == scope for v in values.values())
    assert values["variance"]["value"] == 17_796 and values["variance"]["rag"] == "red"


def test_indicators_command_errors(settings: Settings, tmp_path):
    bad_scope = cli(settings, "indicators", "--json", "--scope", "team:99")
    assert bad_scope.returncode == 2 and "unknown organisation id 99" in bad_scope.stderr
    garbled = cli(settings, "indicators", "--json", "--scope", "teams")
    assert garbled.returncode == 2 and "not a scope" in garbled.stderr
    other_day = cli(settings, "indicators", "--json", "--as-of", "2026-01-01")
    assert other_day.returncode != 0
    assert "DASHBOARD_AS_OF=2026-01-01 csc-dashboard refresh" in other_day.stderr
    empty = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'empty.sqlite'}"})
    none_yet = cli(empty, "indicators", "--json")
    assert none_yet.returncode != 0 and "run csc-dashboard refresh first" in none_yet.stderr


# --- the small demo borough, end to end through the command line -----------------------------


@pytest.fixture(scope="module")
def demo_store(small_demo_source_url: str, tmp_path_factory) -> Settings:
    """The small demo borough refreshed by ``csc-dashboard refresh`` (which records history)."""
    folder = tmp_path_factory.mktemp("demo_cli")
    settings = Settings(
        source_url=small_demo_source_url,
        store_url=f"sqlite:///{folder / 'store.sqlite'}",
        as_of=dt.date.fromisoformat(DEMO_AS_OF),
    )
    result = cli(settings, "refresh")
    assert result.returncode == 0, result.stderr
    return settings


def sensible(value: dict) -> bool:
    number = value["value"]
    if value["unit"] == "percent":
        return 0 <= number <= 100
    if value["unit"] == "count":
        return isinstance(number, int) and number >= 0
    if value["unit"] in ("per_10k", "ratio"):
        return number >= 0  # a front-door team's workers may hold no children
    return isinstance(number, int | float)  # money: a variance may be negative


@pytest.mark.slow
def test_demo_borough_indicators_command(demo_store: Settings):
    data = DataLayer(demo_store)
    team = int(data.teams()["org_id"].iloc[0])
    code = str(data.cost_centres()["cost_centre_code"].iloc[0])
    for scope in (Scope.borough(), Scope.team(team), Scope.cost_centre(code)):
        result = cli(demo_store, "indicators", "--json", "--scope", str(scope))
        assert result.returncode == 0, result.stderr
        values = {v["id"]: v for v in json.loads(result.stdout)}
        assert set(values) == {k for k, d in DEFINITIONS.items() if d.applies_to(scope)}
        for key, value in values.items():
            if DEFINITIONS[key].chart:
                assert value["series"], key
                continue
            assert value["status"] in ("ok", "no_data"), (key, value["error"])
            assert value["stale"] is False
            if value["status"] == "ok":
                assert sensible(value), (scope, key, value)
    # The borough has data for everything (the demo is calibrated to have it).
    borough = json.loads(cli(demo_store, "indicators", "--json").stdout)
    assert all(v["status"] == "ok" for v in borough), [
        v["id"] for v in borough if v["status"] != "ok"
    ]
    assert data.history("overdue_steps", Scope.borough())["value"].notna().all()


@pytest.mark.slow
@pytest.mark.parametrize("indicator_id", COUNTS)
def test_demo_drilldown_rows_equal_the_tile_in_every_scope(demo_store: Settings, indicator_id):
    data = DataLayer(demo_store)
    for scope in every_scope(data):
        if DEFINITIONS[indicator_id].applies_to(scope):
            value = data.value(indicator_id, scope)
            assert value.value == len(data.drilldown(indicator_id, scope)), scope
