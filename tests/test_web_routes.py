"""HTTP routes against the real Flask server of a real app over a refreshed demo borough,
logged in through the real login form as the demo director (who sees the borough)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from dashboard import cli
from dashboard.config import Settings
from dashboard.data import DataLayer
from dashboard.model import Scope
from dashboard.web import session
from dashboard.web.app import create_app
from tests.web_support import DemoBorough, demo_borough, logged_in


@pytest.fixture(scope="module")
def borough(small_demo_source_url, tmp_path_factory) -> DemoBorough:
    return demo_borough(small_demo_source_url, tmp_path_factory.mktemp("routes"))


@pytest.fixture(scope="module")
def settings(borough) -> Settings:
    return borough.settings


@pytest.fixture(scope="module")
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app, borough):
    return logged_in(app, borough.director)


@pytest.fixture(scope="module")
def data(settings) -> DataLayer:
    return DataLayer(settings)


@pytest.fixture(scope="module")
def team_scope(data) -> str:
    """The team with the most overdue steps, so lists are not empty."""
    best = max(
        data.teams()["org_id"],
        key=lambda t: data.value("overdue_steps", Scope.team(t)).value or 0,
    )
    return f"team:{best}"


@pytest.fixture(scope="module")
def cost_centre_scope(data) -> str:
    return f"cost_centre:{data.cost_centres()['cost_centre_code'].iloc[0]}"


def cli_json(settings: Settings, scope: str, monkeypatch, capsys) -> list[dict]:
    monkeypatch.setenv("DASHBOARD_SOURCE_URL", settings.source_url)
    monkeypatch.setenv("DASHBOARD_STORE_URL", settings.store_url)
    monkeypatch.setenv("DASHBOARD_AS_OF", settings.as_of.isoformat())
    monkeypatch.setenv("DASHBOARD_CHILD_POPULATION", str(settings.child_population))
    capsys.readouterr()
    assert cli.main(["indicators", "--json", "--scope", scope]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("which", ["borough", "team", "cost_centre"])
def test_api_indicators_equals_the_cli_json(
    which, client, settings, team_scope, cost_centre_scope, monkeypatch, capsys
):
    scope = {"borough": "borough", "team": team_scope, "cost_centre": cost_centre_scope}[which]
    response = client.get("/api/indicators", query_string={"scope": scope})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    api = response.get_json()
    expected = cli_json(settings, scope, monkeypatch, capsys)
    assert api == expected
    assert {v["scope"] for v in api} == {scope}
    assert len(api) > 5


def test_api_indicators_defaults_to_the_borough(client):
    body = client.get("/api/indicators").get_json()
    assert {v["scope"] for v in body} == {"borough"}


@pytest.mark.parametrize("scope", ["nowhere", "team:abc", "team:999999"])
def test_api_indicators_rejects_a_bad_scope_with_400(client, scope):
    response = client.get("/api/indicators", query_string={"scope": scope})
    assert response.status_code == 400
    assert scope.split(":")[-1] in response.get_json()["error"]


def test_health_reports_store_and_every_dataset(client, data):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["store"] == {"reachable": True}
    names = {d["dataset_id"] for d in body["datasets"]}
    assert names == {d["dataset_id"] for d in data.dataset_status()}
    assert "open_steps" in names
    for dataset in body["datasets"]:
        assert dataset["status"] == "ok", dataset
        assert dataset["age_s"] >= 0
        assert dataset["computed_at"]


def test_health_is_503_when_the_store_is_unreachable(settings):
    down = Settings(
        source_url=settings.source_url,
        store_url="postgresql+psycopg://nobody@127.0.0.1:1/nothing?connect_timeout=2",
        as_of=settings.as_of,
        secret_key="k" * 48,
    )
    response = create_app(down).server.test_client().get("/health")
    assert response.status_code == 503
    assert response.get_json()["store"] == {"reachable": False}


@pytest.mark.parametrize("indicator_id", ["overdue_steps", "unallocated_cases", "awaiting_signoff"])
def test_csv_download_holds_exactly_the_drill_down_rows(client, data, team_scope, indicator_id):
    scope = Scope.parse(team_scope)
    tile = data.value(indicator_id, scope).value
    response = client.get(f"/download/{indicator_id}.csv", query_string={"scope": team_scope})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = pd.read_csv(io.BytesIO(response.data), encoding="utf-8-sig")
    expected = data.drilldown(indicator_id, scope)
    assert len(rows) == tile == len(expected)
    assert list(rows.columns) == list(expected.columns)
    key = expected.columns[0]
    assert sorted(rows[key].tolist()) == sorted(expected[key].astype(int).tolist())


def test_excel_download_holds_exactly_the_drill_down_rows(client, data, team_scope):
    scope = Scope.parse(team_scope)
    response = client.get("/download/overdue_steps.xlsx", query_string={"scope": team_scope})
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    rows = pd.read_excel(io.BytesIO(response.data), engine="openpyxl")
    expected = data.drilldown("overdue_steps", scope)
    assert len(rows) == data.value("overdue_steps", scope).value == len(expected)
    assert sorted(rows["workflow_step_id"]) == sorted(expected["workflow_step_id"].astype(int))


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/download/no_such_indicator.csv", 404),
        ("/download/overdue_steps.pdf", 404),
        ("/download/overdue_steps.csv?scope=team:x", 400),
        ("/download/cp_rate.csv?scope=team:1", 400),  # borough-only indicator
    ],
)
def test_bad_downloads_are_refused_with_the_reason(client, path, status):
    assert client.get(path).status_code == status


def test_every_route_passes_the_one_guard(app):
    hooks = app.server.before_request_funcs.get(None, [])
    assert session.guard in hooks
    rules = {r.rule for r in app.server.url_map.iter_rules()}
    assert {"/api/indicators", "/health", "/download/<indicator_id>.<fmt>"} <= rules


@pytest.mark.parametrize("path", ["/", "/team", "/budget", "/borough", "/quality"])
def test_each_page_is_served(client, path):
    response = client.get(path, follow_redirects=True)  # "/" sends the user to their tier
    assert response.status_code == 200
    assert b"_dash-app-content" in response.data or b"react-entry-point" in response.data


def test_assets_are_served_locally(client):
    html = client.get("/team").data.decode()
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
    assert "00-bootstrap.min.css" in html and "20-print.css" in html
