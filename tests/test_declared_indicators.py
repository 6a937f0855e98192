"""Indicators declared in a dataset file's header (``-- indicators:``): one SQL file and one line
in a layout add a measure, with no Python change (STYLE.md, issue 4).

The known answers are worked by hand below from the known borough's VISITS
(``tests/fixtures/known_borough.py``) plus the few rows EXTRA_VISITS adds here, for
as_of 2026-11-25, so "the last 90 days" is 2026-08-28 .. 2026-11-25.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fixtures.known_borough import AS_OF, CHILD_POPULATION, build_known_borough
from known_store import refreshed
from pydantic import SecretStr
from sqlalchemy import create_engine, insert
from sqlalchemy.engine import make_url

from dashboard import schema
from dashboard.config import PROJECT_ROOT, Settings
from dashboard.data import DataLayer, NotApplicable
from dashboard.datasets import DatasetFileError, load_dataset, load_datasets
from dashboard.indicators.catalogue import DEFINITIONS
from dashboard.indicators.declared import declared_definitions, full_catalogue
from dashboard.model import Scope, Thresholds
from dashboard.users import UserStore
from dashboard.web.app import create_app
from layouts import all_pages

# visit_id, workflow_step_id, person_id, visit_type, worker_id, visit_date, child_seen, seen_alone
EXTRA_VISITS = (
    (6, 1130, 1001, "CP", 201, "2026-08-27", "Y", "Y"),  # ON quarter_ago: outside the 90 days
    (7, 1205, 1021, "CP", 205, "2026-11-26", "Y", "Y"),  # after as_of: outside
    (8, 1210, 1021, "CIN", 205, "2026-11-01", "Y", "Y"),  # a CIN visit, not CP
    (9, 1134, 1003, "CP", 201, "2026-11-20", "Y", "Y"),  # its step is INCOMING, not COMPLETED
    (10, 2104, 1034, "CP", 209, "2026-08-30", "Y", "Y"),  # team 21 (step team), inside
    (11, 1205, 1021, "CP", 205, "2026-09-10", "Y", "N"),  # team 12, inside, not seen alone
)

# cp_visits_seen_alone by hand. CP visits whose step is COMPLETED, dated 2026-08-28..2026-11-25:
#   1 (step 1131, team 11, seen alone), 2 (1133, team 11, not alone), 3 (2103, team 21, alone),
#   10 (2104, team 21, alone), 11 (1205, team 12, not alone). Not: 6 (ON quarter_ago), 7 (after
#   as_of), 8 (CIN), 9 (step INCOMING), 4 and 5 (CLA).
# RAG: higher is better, green >= 60, amber >= 45.
SEEN_ALONE = {
    "team:11": (1, 2, 50.0, "amber", {1, 2}),
    "team:12": (0, 1, 0.0, "red", {11}),  # 0 of 1 is 0%, not "no data"
    "team:21": (2, 2, 100.0, "green", {3, 10}),
    "team:22": (0, 0, None, None, set()),  # no CP visits: no data, not 0
    "service:10": (1, 3, 33.33, "red", {1, 2, 11}),  # teams 11 and 12
    "service:20": (2, 2, 100.0, "green", {3, 10}),  # teams 21 and 22
    "teams:11,21": (3, 4, 75.0, "green", {1, 2, 3, 10}),
    "borough": (3, 5, 60.0, "green", {1, 2, 3, 10, 11}),  # exactly 60: green
}


def add_extra_visits(url: str) -> None:
    engine = create_engine(url)
    names = ("visit_id", "workflow_step_id", "person_id", "visit_type", "worker_id")
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(schema.visits),
                [
                    {
                        **dict(zip(names, row[:5], strict=True)),
                        "visit_date": dt.date.fromisoformat(row[5]),
                        "child_seen": row[6],
                        "seen_alone": row[7],
                    }
                    for row in EXTRA_VISITS
                ],
            )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def source_url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('declared_source') / 'source.sqlite'}"
    build_known_borough(url)
    add_extra_visits(url)
    return url


@pytest.fixture(scope="module")
def settings(source_url, tmp_path_factory) -> Settings:
    """The real queries/ folder (with cp_visits_seen_alone.sql), refreshed with history."""
    folder = tmp_path_factory.mktemp("declared_store")
    return refreshed(folder, source_url, as_of=AS_OF, child_population=CHILD_POPULATION)


@pytest.fixture(scope="module")
def data(settings) -> DataLayer:
    return DataLayer(settings)


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    # Only these settings: nothing inherited from the caller's DASHBOARD_* or a .env file.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env["DASHBOARD_SOURCE_URL"] = settings.source_url
    env["DASHBOARD_STORE_URL"] = settings.store_url
    env["DASHBOARD_CHILD_POPULATION"] = str(settings.child_population)
    env["DASHBOARD_AS_OF"] = settings.as_of.isoformat()
    env["DASHBOARD_QUERIES_DIR"] = str(settings.queries_dir)
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=make_url(settings.store_url).database.rsplit("/", 1)[0],
        timeout=300,
    )


def cli_values(settings: Settings, scope: str) -> dict[str, dict]:
    result = cli(settings, "indicators", "--json", "--scope", scope)
    assert result.returncode == 0, result.stderr
    return {v["id"]: v for v in json.loads(result.stdout)}


# --- the loader: good declarations parse, bad ones name the file and the key -------------------

HEADER = """\
-- title: Test visits
-- refresh: 1h
-- scope: [team_id]
-- columns:
--   visit_id: int
--   team_id: int
--   seen_alone: int
--   child_seen: str
--   cost: float
"""
SQL = "SELECT visit_id, team_id, seen_alone, child_seen, cost FROM visits\n"

GOOD = """\
-- indicators:
--   - id: test_seen_alone
--     title: Seen alone
--     definition: The share seen alone.
--     tier: team
--     unit: percent
--     polarity: higher_better
--     measure: {ratio: [seen_alone, 1]}
--     thresholds: {green: 80, amber: 65}
--     england: 70.5
--   - id: test_visits
--     title: Visits
--     definition: How many.
--     tier: borough
--     unit: count
--     polarity: context
--     measure: count
--     drilldown: false
--   - id: test_cost
--     title: Cost
--     definition: Money.
--     tier: team
--     unit: money
--     polarity: lower_better
--     measure: {sum: cost}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_declarations_parse(tmp_path):
    spec = load_dataset(write(tmp_path, "test_visits.sql", HEADER + GOOD + SQL))
    ratio, count, money = spec.indicators
    assert (ratio.id, ratio.tier, ratio.unit, ratio.polarity) == (
        "test_seen_alone",
        "team",
        "percent",
        "higher_better",
    )
    assert (ratio.measure, ratio.column, ratio.denominator) == ("ratio", "seen_alone", None)
    assert ratio.thresholds == Thresholds(80, 65) and ratio.england == 70.5
    assert ratio.drilldown is True
    assert (count.measure, count.column, count.drilldown, count.thresholds) == (
        "count",
        None,
        False,
        None,
    )
    assert (money.measure, money.column) == ("sum", "cost")


def test_the_real_file_declares_its_indicator():
    spec = load_dataset(PROJECT_ROOT / "queries" / "cp_visits_seen_alone.sql")
    (declared,) = spec.indicators
    assert (declared.id, declared.measure, declared.column, declared.denominator) == (
        "cp_visits_seen_alone",
        "ratio",
        "seen_alone",
        None,
    )
    assert declared.thresholds == Thresholds(60, 45)
    assert declared.england is None  # no national figure: the thresholds are local


def test_a_file_without_indicators_declares_none():
    assert load_dataset(PROJECT_ROOT / "queries" / "open_steps.sql").indicators == ()


def _one(**changes: object) -> str:
    """One team-tier ratio declaration, with keys changed (None drops a key)."""
    fields = {
        "id": "test_one",
        "title": "One",
        "definition": "One indicator.",
        "tier": "team",
        "unit": "percent",
        "polarity": "higher_better",
        "measure": "{ratio: [seen_alone, 1]}",
    }
    fields.update(changes)
    lines = [f"--     {k}: {v}" for k, v in fields.items() if v is not None]
    lines[0] = "--   - " + lines[0][len("--     ") :]
    return "-- indicators:\n" + "\n".join(lines) + "\n"


BAD = [
    (_one(colour="red"), "indicators[0].colour", "unknown key"),
    (_one(unit="percentage"), "indicators[0].unit", "'percentage' is not one of"),
    (_one(unit="count"), "indicators[0].unit", "a ratio measure gives a unit of percent or ratio"),
    (_one(tier="service"), "indicators[0].tier", "'service' is not one of"),
    (_one(tier="budget"), "indicators[0].tier", "needs the dataset to declare scope"),
    (_one(polarity="up"), "indicators[0].polarity", "not one of"),
    (_one(title=None), "indicators[0].title", "missing"),
    (_one(id="Seen-Alone"), "indicators[0].id", "lower_snake_case"),
    (_one(measure="{ratio: [seen_twice, 1]}"), "indicators[0].measure", "not among the declared"),
    (_one(measure="{sum: nothing}", unit="money"), "indicators[0].measure", "not among"),
    (_one(measure="{ratio: [seen_alone, 2]}"), "indicators[0].measure", "not among"),
    (_one(measure="{ratio: [child_seen, 1]}"), "indicators[0].measure", "needs a number"),
    (_one(measure="{ratio: seen_alone}"), "indicators[0].measure", "ratio takes"),
    (_one(measure="average"), "indicators[0].measure", "must be count"),
    (_one(thresholds="{green: 60, amber: 70}"), "indicators[0].thresholds", "green must be >="),
    (_one(thresholds="{green: 80}"), "indicators[0].thresholds", "exactly"),
    (_one(thresholds="{green: x, amber: 1}"), "indicators[0].thresholds", "must be numbers"),
    (
        _one(polarity="context", thresholds="{green: 1, amber: 2}"),
        "indicators[0].thresholds",
        "context indicator has no RAG",
    ),
    (_one(england="high"), "indicators[0].england", "must be a number"),
    (_one(drilldown="sometimes"), "indicators[0].drilldown", "true or false"),
    (_one() + _one()[len("-- indicators:\n") :], "indicators[1].id", "declared twice"),
    ("-- indicators: {id: x}\n", "indicators", "must be a list"),
]


@pytest.mark.parametrize(
    ("declaration", "key", "message"), BAD, ids=[f"{i}-{case[1]}" for i, case in enumerate(BAD)]
)
def test_a_bad_declaration_names_the_file_and_the_key(tmp_path, declaration, key, message):
    path = write(tmp_path, "test_visits.sql", HEADER + declaration + SQL)
    with pytest.raises(DatasetFileError, match=message) as caught:
        load_dataset(path)
    assert str(caught.value).startswith(f"test_visits.sql, key '{key}': ")
    assert caught.value.key == key


def test_team_tier_needs_a_team_id_scope(tmp_path):
    header = HEADER.replace("-- scope: [team_id]\n", "")
    path = write(tmp_path, "unscoped.sql", header + _one() + SQL)
    with pytest.raises(DatasetFileError, match=r"declare scope: \[team_id\]") as caught:
        load_dataset(path)
    assert "unscoped.sql, key 'indicators[0].tier'" in str(caught.value)


def test_a_duplicate_across_files_or_a_built_in_id_is_left_out_with_an_error(tmp_path):
    write(tmp_path, "a_visits.sql", HEADER + _one(id="test_shared") + SQL)
    write(tmp_path, "b_visits.sql", HEADER + _one(id="test_shared") + SQL)
    write(tmp_path, "c_visits.sql", HEADER + _one(id="cp_visits_on_time") + SQL)
    specs, bad = load_datasets(tmp_path)
    assert not bad
    found, errors = declared_definitions(specs)
    assert set(found) == {"test_shared"}
    assert found["test_shared"].indicator.datasets == ("a_visits",)
    messages = sorted(str(e) for e in errors)
    assert all(isinstance(e, DatasetFileError) for e in errors)
    assert messages[0].startswith("b_visits.sql, key 'indicators[0].id': ")
    assert "'test_shared' is already declared in a_visits.sql" in messages[0]
    assert messages[1].startswith("c_visits.sql, key 'indicators[0].id': ")
    assert "'cp_visits_on_time' is a built-in indicator; the built-in is kept" in messages[1]
    catalogue, _ = full_catalogue(specs)
    assert catalogue["cp_visits_on_time"] is DEFINITIONS["cp_visits_on_time"]


def test_the_data_layer_keeps_the_built_in_on_a_clash(settings, tmp_path):
    queries = tmp_path / "queries"
    shutil.copytree(PROJECT_ROOT / "queries", queries)
    write(queries, "zz_clash.sql", HEADER + _one(id="overdue_steps") + SQL)
    data = DataLayer(settings.model_copy(update={"queries_dir": queries}))
    assert data.definition("overdue_steps") is DEFINITIONS["overdue_steps"]
    (error,) = data.declaration_errors
    assert str(error).startswith("zz_clash.sql, key 'indicators[0].id': ")
    assert data.definition("cp_visits_seen_alone").indicator.datasets == ("cp_visits_seen_alone",)


# --- known answers for cp_visits_seen_alone, worked by hand above ------------------------------


@pytest.mark.parametrize("scope", list(SEEN_ALONE))
def test_seen_alone_known_answers_through_the_data_layer(data, scope):
    numerator, denominator, value, rag, visits = SEEN_ALONE[scope]
    got = data.value("cp_visits_seen_alone", Scope.parse(scope))
    assert (got.value, got.rag) == (value, rag)
    assert (got.numerator, got.denominator) == (numerator, denominator)
    assert got.status == ("ok" if denominator else "no_data")
    rows = data.drilldown("cp_visits_seen_alone", Scope.parse(scope))
    assert set(rows["visit_id"]) == visits and len(rows) == denominator
    assert int(rows["seen_alone"].sum()) == numerator


def test_seen_alone_through_the_json_command(settings):
    for scope in ("team:11", "team:22", "service:10", "borough"):
        numerator, denominator, value, rag, _ = SEEN_ALONE[scope]
        item = cli_values(settings, scope)["cp_visits_seen_alone"]
        assert (item["value"], item["rag"]) == (value, rag), scope
        assert (item["numerator"], item["denominator"]) == (numerator, denominator), scope
        assert item["unit"] == "percent" and item["polarity"] == "higher_better"
        assert item["status"] == ("ok" if denominator else "no_data")
    assert cli_values(settings, "team:22")["cp_visits_seen_alone"]["value"] is None


def test_seen_alone_drilldown_rows_are_the_visits_with_team_names(data):
    rows = data.drilldown("cp_visits_seen_alone", Scope.team(11))
    assert list(rows["visit_id"]) == [1, 2]
    assert set(rows["team_name"]) == {"Assessment North"}
    assert list(rows["seen_alone"]) == [1, 0]
    indicator = data.definition("cp_visits_seen_alone").indicator
    assert indicator.drilldown and indicator.personal  # child-level rows: audited


def test_seen_alone_is_in_the_catalogue_and_the_team_layout(data):
    assert "cp_visits_seen_alone" in {i.id for i in data.catalogue("team")}
    assert "cp_visits_seen_alone" in data.applicable(Scope.team(11))
    assert "cp_visits_seen_alone" not in data.applicable(Scope.cost_centre("CC100"))
    team_page = next(p for p in all_pages() if p.id == "team")
    assert "cp_visits_seen_alone" in team_page.tiles
    with pytest.raises(NotApplicable):
        data.value("cp_visits_seen_alone", Scope.cost_centre("CC100"))


def test_seen_alone_in_the_team_matrix(data):
    matrix = data.team_matrix(Scope.borough()).set_index("team_id")
    assert matrix.loc[11, "cp_visits_seen_alone"] == 50.0
    assert matrix.loc[11, "cp_visits_seen_alone_rag"] == "amber"
    assert (matrix.loc[12, "cp_visits_seen_alone"], matrix.loc[12, "cp_visits_seen_alone_rag"]) == (
        0.0,
        "red",
    )
    assert matrix.loc[21, "cp_visits_seen_alone"] == 100.0
    assert matrix.loc[21, "cp_visits_seen_alone_rag"] == "green"
    assert pd.isna(matrix.loc[22, "cp_visits_seen_alone"])  # no CP visits: no value
    assert pd.isna(matrix.loc[22, "cp_visits_seen_alone_rag"])


def test_seen_alone_daily_history(data):
    team = data.history("cp_visits_seen_alone", Scope.team(11))
    assert list(team["value"]) == [50.0]
    assert (team["numerator"].iloc[0], team["denominator"].iloc[0]) == (1, 2)
    # A set of teams: sums of numerators over sums of denominators, not a mean of 50 and 100.
    both = data.history("cp_visits_seen_alone", Scope.parse("teams:11,21"))
    assert list(both["value"]) == [75.0]


def test_a_thresholds_file_overrides_a_declared_indicator(settings, tmp_path):
    path = write(tmp_path, "thresholds.yaml", "cp_visits_seen_alone: {green: 50, amber: 40}\n")
    data = DataLayer(settings.model_copy(update={"thresholds_file": path}))
    assert data.value("cp_visits_seen_alone", Scope.team(11)).rag == "green"  # 50 >= 50
    assert data.value("cp_visits_seen_alone", Scope.parse("service:10")).rag == "red"  # 33.33


# --- the web: the JSON API and the drill-down export serve it like a built-in -------------------

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "declared indicators test password"


def test_the_api_and_the_export_serve_the_declared_indicator(settings):
    users = UserStore(settings.store_url)
    try:
        users.create_user("declared.viewer", PASSWORD, "Declared Viewer")
        users.grant("declared.viewer", "borough", "test")
    finally:
        users.dispose()
    app = create_app(settings.model_copy(update={"secret_key": SecretStr("k" * 48)}))
    client = app.server.test_client()
    token = CSRF_FIELD.search(client.get("/login").get_data(as_text=True)).group(1)
    form = {"username": "declared.viewer", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=form).status_code == 303

    response = client.get("/api/indicators", query_string={"scope": "team:21"})
    assert response.status_code == 200
    item = next(v for v in response.get_json() if v["id"] == "cp_visits_seen_alone")
    assert (item["value"], item["numerator"], item["denominator"], item["rag"]) == (
        100.0,
        2,
        2,
        "green",
    )
    export = client.get("/download/cp_visits_seen_alone.csv", query_string={"scope": "team:21"})
    assert export.status_code == 200
    lines = export.data.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 1 + 2  # the header and the two visits counted


# --- the analyst: a brand-new SQL file, refreshed, seen everywhere without a Python change ------

NOT_SEEN = """\
-- title: Visits where the child was not seen
-- refresh: 1h
-- scope: [team_id]
-- personal: true
-- columns:
--   visit_id: int
--   person_id: int
--   visit_type: str
--   visit_date: date
--   team_id: int
-- indicators:
--   - id: visits_child_not_seen
--     title: Visits where the child was not seen
--     definition: Completed visits of any type in the last 90 days where the child was not seen.
--     tier: team
--     unit: count
--     polarity: lower_better
--     measure: count
--     thresholds: {green: 0, amber: 2}
SELECT v.visit_id, v.person_id, v.visit_type, v.visit_date, s.responsible_team_id AS team_id
FROM visits v
JOIN workflow_steps s ON s.workflow_step_id = v.workflow_step_id
WHERE v.child_seen = 'N'
  AND v.visit_date > :quarter_ago
  AND v.visit_date <= :as_of
ORDER BY v.visit_id
"""

AWAITING_COST = """\
-- title: Weekly cost of elements awaiting authorisation
-- refresh: 1h
-- scope: [cost_centre_code]
-- columns:
--   service_element_id: int
--   cost_centre_code: str
--   weekly_cost: float
-- indicators:
--   - id: weekly_cost_awaiting
--     title: Weekly cost awaiting authorisation
--     definition: Sum of weekly_cost over elements AWAITING_AUTHORISATION.
--     tier: budget
--     unit: money
--     polarity: lower_better
--     measure: {sum: weekly_cost}
--     thresholds: {green: 0, amber: 500}
SELECT service_element_id, cost_centre_code, weekly_cost
FROM service_elements
WHERE status = 'AWAITING_AUTHORISATION'
ORDER BY service_element_id
"""

SEEN_ALONE_OF_SEEN = """\
-- title: Visits in the last 90 days
-- refresh: 1h
-- columns:
--   visit_id: int
--   seen: int
--   seen_alone: int
-- indicators:
--   - id: seen_alone_of_seen
--     title: Seen alone, of children seen
--     definition: Of visits in the last 90 days where the child was seen, the share seen alone.
--     tier: borough
--     unit: percent
--     polarity: higher_better
--     measure: {ratio: [seen_alone, seen]}
SELECT visit_id,
       CASE WHEN child_seen = 'Y' THEN 1 ELSE 0 END AS seen,
       CASE WHEN seen_alone = 'Y' THEN 1 ELSE 0 END AS seen_alone
FROM visits
WHERE visit_date > :quarter_ago
  AND visit_date <= :as_of
ORDER BY visit_id
"""


@pytest.fixture(scope="module")
def analyst(source_url, tmp_path_factory) -> Settings:
    """A copy of queries/ plus three new files, refreshed: no Python touched."""
    folder = tmp_path_factory.mktemp("analyst")
    queries = folder / "queries"
    shutil.copytree(PROJECT_ROOT / "queries", queries)
    write(queries, "visits_not_seen.sql", NOT_SEEN)
    write(queries, "awaiting_cost.sql", AWAITING_COST)
    write(queries, "visits_90_days.sql", SEEN_ALONE_OF_SEEN)
    return refreshed(
        folder, source_url, as_of=AS_OF, child_population=CHILD_POPULATION, queries_dir=queries
    )


def test_the_analysts_count_indicator_everywhere(analyst):
    # By hand: visits in the 90 days with child_seen N: only visit 5 (CLA, step 2205, team 22).
    # Lower is better, green <= 0, amber <= 2.
    data = DataLayer(analyst)
    assert not data.declaration_errors
    expected = {11: (0, "green"), 12: (0, "green"), 21: (0, "green"), 22: (1, "amber")}
    for team, (count, rag) in expected.items():
        value = data.value("visits_child_not_seen", Scope.team(team))
        assert (value.value, value.rag, value.status) == (count, rag, "ok"), team
        assert len(data.drilldown("visits_child_not_seen", Scope.team(team))) == count
    assert list(data.drilldown("visits_child_not_seen", Scope.borough())["visit_id"]) == [5]

    item = cli_values(analyst, "team:22")["visits_child_not_seen"]
    assert (item["value"], item["rag"], item["unit"]) == (1, "amber", "count")

    matrix = data.team_matrix(Scope.borough()).set_index("team_id")
    assert matrix.loc[22, "visits_child_not_seen"] == 1
    assert matrix.loc[22, "visits_child_not_seen_rag"] == "amber"
    assert matrix.loc[11, "visits_child_not_seen_rag"] == "green"
    assert list(data.history("visits_child_not_seen", Scope.team(22))["value"]) == [1]


def test_the_analysts_sum_indicator(analyst):
    # By hand: AWAITING_AUTHORISATION elements: 708 (CC100, 700.00), 715 (CC200, 140.00).
    # Lower is better, green <= 0, amber <= 500.
    data = DataLayer(analyst)
    for scope, (total, rag, rows) in {
        "cost_centre:CC100": (700.0, "red", {708}),
        "cost_centre:CC200": (140.0, "amber", {715}),
        "borough": (840.0, "red", {708, 715}),
    }.items():
        value = data.value("weekly_cost_awaiting", Scope.parse(scope))
        assert (value.value, value.rag, value.unit) == (total, rag, "money"), scope
        drilldown = data.drilldown("weekly_cost_awaiting", Scope.parse(scope))
        assert set(drilldown["service_element_id"]) == rows
    assert "weekly_cost_awaiting" not in data.applicable(Scope.team(11))
    item = cli_values(analyst, "cost_centre:CC100")["weekly_cost_awaiting"]
    assert (item["value"], item["rag"]) == (700.0, "red")


def test_the_analysts_ratio_over_a_denominator_column(analyst):
    # By hand: visits dated 2026-08-28..2026-11-25: 1, 2, 3, 4, 5, 8, 9, 10, 11 (6 is ON
    # quarter_ago, 7 after as_of). Child seen in all but 5, so 8 denominator rows; seen alone:
    # 1, 3, 4, 8, 9, 10 = 6. 6 / 8 = 75%. Visit 5 (not seen) is not among the rows.
    data = DataLayer(analyst)
    value = data.value("seen_alone_of_seen", Scope.borough())
    assert (value.value, value.numerator, value.denominator) == (75.0, 6, 8)
    assert value.rag is None  # no thresholds declared
    rows = data.drilldown("seen_alone_of_seen", Scope.borough())
    assert set(rows["visit_id"]) == {1, 2, 3, 4, 8, 9, 10, 11}
    assert not data.definition("seen_alone_of_seen").indicator.personal  # dataset not personal
    with pytest.raises(NotApplicable):
        data.value("seen_alone_of_seen", Scope.team(11))
