"""Scopes: resolution against the organisation tree, clear errors, and scope arithmetic (a
service or the borough is the sum of its teams' numerators and denominators, never an average)."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest
from indicator_frames import ORGANISATION, frame
from known_store import refreshed

from dashboard.config import PROJECT_ROOT
from dashboard.data import DataLayer, NotApplicable
from dashboard.indicators.declared import DeclaredMeasure, load_catalogue
from dashboard.model import Scope, ScopeError
from dashboard.scopes import resolve, teams_below
from tests.conftest import DEMO_AS_OF

# What the data layer serves: the built-ins plus the indicators declared in queries/ headers.
DEFINITIONS, _ = load_catalogue(PROJECT_ROOT / "queries")


def org() -> pd.DataFrame:
    return frame("organisation", ORGANISATION)


def test_service_scope_is_every_team_below_it():
    assert resolve(Scope.parse("service:10"), org(), ()).team_ids == {1, 2}
    assert resolve(Scope.parse("service:100"), org(), ()).team_ids == {1, 2, 3}
    assert teams_below(org(), 3) == {3}


def test_teams_scope_and_labels():
    resolved = resolve(Scope.parse("teams:1,3"), org(), ())
    assert resolved.team_ids == {1, 3}
    assert resolved.label == "Team One, Team Three"
    assert resolve(Scope.borough(), org(), ()).team_ids is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("team:99", "unknown organisation id 99"),
        ("team:10", "is a SERVICE, not a team; use service:10"),
        ("teams:1,99", "unknown organisation id 99"),
        ("service:77", "unknown organisation id 77"),
        ("cost_centre:NOPE", "unknown cost centre: 'NOPE'"),
    ],
)
def test_unknown_or_wrong_ids_are_clear_scope_errors(text, message):
    with pytest.raises(ScopeError, match=message):
        resolve(Scope.parse(text), org(), {"CC1"})


def test_a_cycle_in_the_tree_does_not_hang():
    looped = frame(
        "organisation",
        [
            {"org_id": 1, "name": "A", "org_level": "SERVICE", "parent_org_id": 2},
            {"org_id": 2, "name": "B", "org_level": "SERVICE", "parent_org_id": 1},
            {"org_id": 3, "name": "T", "org_level": "TEAM", "parent_org_id": 2},
        ],
    )
    assert teams_below(looped, 1) == {3}


# --- arithmetic over a refreshed store -------------------------------------------------------


@pytest.fixture(scope="module", params=["known_borough", "small_demo"])
def data(request, tmp_path_factory) -> DataLayer:
    """The hand-built known borough and the small demo borough, each refreshed into a store."""
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "known_borough":
        return DataLayer(refreshed(folder))
    source = request.getfixturevalue("small_demo_source_url")
    return DataLayer(refreshed(folder, source, as_of=dt.date.fromisoformat(DEMO_AS_OF)))


def team_ids(data: DataLayer) -> list[int]:
    return [int(t) for t in data.teams()["org_id"]]


TEAM_VALUES = [d.id for d in DEFINITIONS.values() if d.indicator.tier == "team" and not d.chart]


def parts(data: DataLayer, indicator_id: str, scope: Scope) -> tuple[float, float]:
    """(numerator, denominator) of a ratio, or (value, 1) of a count."""
    value = data.value(indicator_id, scope)
    assert value.status in ("ok", "no_data"), (indicator_id, scope, value.error)
    if value.unit == "count":
        return float(value.value), 1.0
    return float(value.numerator), float(value.denominator)


def remainder(data: DataLayer, indicator_id: str, teams: list[int]) -> tuple[float, float]:
    """What the borough holds outside every team (rows whose team is empty or not a team)."""
    rows = data.drilldown(indicator_id, Scope.borough())
    outside = rows[~rows["team_id"].isin(teams).fillna(False).astype(bool)]
    unit = DEFINITIONS[indicator_id].indicator.unit
    if unit == "count":
        return float(len(outside)), 0.0
    if indicator_id == "average_caseload":
        return float(outside["children"].sum()), float(outside["fte"].sum())
    measure = DEFINITIONS[indicator_id].measure
    if isinstance(measure, DeclaredMeasure):  # a ratio declared in a dataset file's header
        denominator = measure.denominator
        return float(outside[measure.column].sum()), float(
            len(outside) if denominator is None else outside[denominator].sum()
        )
    return float(outside["on_time"].sum()), float(len(outside))


@pytest.mark.parametrize("indicator_id", TEAM_VALUES)
def test_borough_is_the_sum_of_its_teams(data: DataLayer, indicator_id: str):
    teams = team_ids(data)
    numerator = sum(parts(data, indicator_id, Scope.team(t))[0] for t in teams)
    denominator = sum(parts(data, indicator_id, Scope.team(t))[1] for t in teams)
    rest_num, rest_den = remainder(data, indicator_id, teams)
    borough_num, borough_den = parts(data, indicator_id, Scope.borough())
    assert math.isclose(borough_num, numerator + rest_num, abs_tol=1e-6)
    if DEFINITIONS[indicator_id].indicator.unit != "count":
        assert math.isclose(borough_den, denominator + rest_den, abs_tol=1e-6)


@pytest.mark.parametrize("indicator_id", TEAM_VALUES)
def test_a_service_is_the_sum_of_its_teams(data: DataLayer, indicator_id: str):
    services = data.services()
    teams = data.teams()
    assert len(services) >= 2
    for service_id in services["org_id"]:
        members = [int(t) for t in teams.loc[teams["service_id"] == service_id, "org_id"]]
        service = parts(data, indicator_id, Scope.parse(f"service:{service_id}"))
        summed = [parts(data, indicator_id, Scope.team(t)) for t in members]
        assert math.isclose(service[0], sum(p[0] for p in summed), abs_tol=1e-6)
        if DEFINITIONS[indicator_id].indicator.unit != "count":
            assert math.isclose(service[1], sum(p[1] for p in summed), abs_tol=1e-6)
        value = data.value(indicator_id, Scope.parse(f"service:{service_id}"))
        if value.unit == "percent" and value.denominator:
            # Sums of numerators over sums of denominators, never a mean of team rates.
            assert value.value == round(100 * service[0] / service[1], 2)


BUDGET_MONEY = ["budget", "accrued_to_date", "committed", "awaiting_authorisation"]


@pytest.mark.parametrize("indicator_id", BUDGET_MONEY)
def test_borough_money_is_the_sum_of_cost_centres(data: DataLayer, indicator_id: str):
    codes = list(data.cost_centres()["cost_centre_code"])
    total = sum(data.value(indicator_id, Scope.cost_centre(c)).value or 0 for c in codes)
    rest = 0.0
    if indicator_id != "budget":
        rows = data.drilldown(indicator_id, Scope.borough())
        outside = rows[~rows["cost_centre_code"].isin(codes).fillna(False).astype(bool)]
        rest = float(outside.iloc[:, -1].sum())
    borough = data.value(indicator_id, Scope.borough()).value
    assert borough == pytest.approx(total + rest, abs=0.01 * (len(codes) + 1))


def test_indicators_apply_to_their_tiers_scopes(data: DataLayer):
    team = set(data.applicable(Scope.team(team_ids(data)[0])))
    code = str(data.cost_centres()["cost_centre_code"].iloc[0])
    cost_centre = set(data.applicable(Scope.cost_centre(code)))
    borough = set(data.applicable(Scope.borough()))
    assert "overdue_steps" in team and "overdue_steps" not in cost_centre
    assert "variance" in cost_centre and "variance" not in team
    assert "cin_rate" in borough and not {"cin_rate", "trends"} & (team | cost_centre)
    assert borough == set(DEFINITIONS)
    with pytest.raises(NotApplicable):
        data.value("cin_rate", Scope.team(team_ids(data)[0]))
