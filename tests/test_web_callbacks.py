"""The generic callbacks and page layouts called as plain functions over a refreshed store."""

from __future__ import annotations

import logging
import shutil

import pandas as pd
import pytest
from dash import no_update

from dashboard.config import Settings
from dashboard.data import DataLayer
from dashboard.indicators.charts import CHARTS as DATA_CHARTS
from dashboard.model import Scope
from dashboard.web import callbacks, grid_rows, pages
from dashboard.web.grid_rows import BLOCK_ROWS
from layouts import all_pages
from tests.security_forge import block_request
from tests.test_web_components import classes_of, text_of
from tests.web_support import AS_OF, refresh, refreshed_settings


@pytest.fixture(scope="module")
def settings(small_demo_source_url, tmp_path_factory):
    return refreshed_settings(small_demo_source_url, tmp_path_factory.mktemp("cb"))


@pytest.fixture(scope="module")
def data(settings) -> DataLayer:
    return DataLayer(settings)


@pytest.fixture(scope="module")
def team(data) -> Scope:
    best = max(
        data.teams()["org_id"],
        key=lambda t: data.value("overdue_steps", Scope.team(t)).value or 0,
    )
    return Scope.team(best)


def page(page_id: str):
    return next(p for p in all_pages() if p.id == page_id)


# ----------------------------------------------------------------------------- layouts


def test_every_layout_names_known_indicators_and_charts(data):
    known = {i.id for i in data.catalogue()}
    for declared in all_pages():
        assert set(declared.indicator_ids) <= known, declared.id
        assert set(declared.charts) <= set(DATA_CHARTS), declared.id


def test_paths_and_navigation_order():
    assert [p.path for p in all_pages()] == ["/", "/team", "/budget", "/borough", "/quality"]


@pytest.mark.parametrize("page_id", ["team", "budget", "borough", "quality"])
def test_page_layout_has_a_slot_for_every_declared_tile_chart_and_list(data, page_id):
    declared = page(page_id)
    layout = pages.page_layout(declared, data, None)
    ids = _ids(layout)
    patterns = [i for i in ids if isinstance(i, dict)]
    assert {i["ind"] for i in patterns if i["type"] == "tile"} == set(declared.tiles)
    assert {i["chart"] for i in patterns if i["type"] == "chart"} == set(declared.charts)
    assert {i["ind"] for i in patterns if i["type"] == "list"} == set(declared.lists)
    assert "page-scope" in ids


def test_team_selector_offers_every_team_and_service_and_opens_on_a_team(data):
    layout = pages.page_layout(page("team"), data, None)
    select = _find(layout, "scope-select")
    values = [o["value"] for o in select.options]
    assert {f"team:{t}" for t in data.teams()["org_id"]} <= set(values)
    assert {f"service:{s}" for s in data.services()["org_id"]} <= set(values)
    assert select.value.startswith("team:")
    assert _find(layout, "page-scope").data == select.value


def test_budget_selector_offers_every_cost_centre(data):
    select = _find(pages.page_layout(page("budget"), data, None), "scope-select")
    codes = {o["value"] for o in select.options}
    assert codes == {"borough"} | {
        f"cost_centre:{c}" for c in data.cost_centres()["cost_centre_code"]
    }


def test_scope_from_the_query_string_is_used_and_a_bad_one_is_refused(data, team):
    layout = pages.page_layout(page("team"), data, str(team))
    assert _find(layout, "page-scope").data == str(team)
    bad = pages.page_layout(page("team"), data, "team:abc")
    assert _find(bad, "page-scope").data.startswith("team:")
    assert "whole numbers" in text_of(bad)


def test_landing_links_to_each_tier_in_one_click():
    landing = pages.landing(all_pages())
    hrefs = [link.href for link in _walk(landing) if hasattr(link, "href")]
    assert hrefs == ["/team", "/budget", "/borough", "/quality"]


# ----------------------------------------------------------------------------- tiles


def test_tiles_show_the_data_layers_values_and_rag(data, team, settings):
    ids = page("team").tiles
    bodies, classes = callbacks.render_tiles(data, team, ids, settings.as_of)
    values = {v.id: v for v in data.values(team, list(ids))}
    assert len(bodies) == len(classes) == len(ids)
    for indicator_id, body, cls in zip(ids, bodies, classes, strict=True):
        value = values[indicator_id]
        assert value.title in text_of(body)
        if value.value is not None:
            assert callbacks.components.format_value(value.value, value.unit) in text_of(body)
        assert (
            cls.split()[1]
            == f"tile--{value.rag or ('no_data' if value.value is None else 'neutral')}"
        )


def test_a_tile_that_does_not_apply_says_so_without_failing_the_others(
    data, team, settings, caplog
):
    with caplog.at_level(logging.WARNING):
        bodies, classes = callbacks.render_tiles(
            data, team, ["overdue_steps", "elements_without_cost_centre"], settings.as_of
        )
    # Not measured is an answer, not a fault: no history look-up, nothing logged as an error.
    assert [r.getMessage() for r in caplog.records] == []
    assert "tile--failed" not in classes[0]
    assert classes[1] == "tile tile--no_data"
    assert f"Not measured for {team}" in text_of(bodies[1])


def all_blocks(data, indicator_id: str, scope: Scope, **models) -> tuple[list[dict], set[int]]:
    """Every row of a list, block by block as its grid asks for them, and the row counts the
    blocks reported."""
    rows: list[dict] = []
    counts = set()
    while True:
        request = grid_rows.parse_request(
            block_request(len(rows), len(rows) + BLOCK_ROWS, **models)
        )
        response, error = callbacks.list_block(data, indicator_id, scope, request)
        assert error is None
        counts.add(response["rowCount"])
        rows += response["rowData"]
        if len(response["rowData"]) < BLOCK_ROWS:
            return rows, counts


def test_count_tiles_open_lists_of_exactly_their_value(data, team):
    for indicator in data.catalogue("team"):
        if not indicator.drilldown or indicator.unit != "count":
            continue
        shown = callbacks.open_drilldown(data, indicator.id, team)
        assert "rows" not in shown  # the rows come in blocks, not with the panel
        assert shown["count"] == data.value(indicator.id, team).value
        assert shown["links"][0].children.startswith(f"{shown['count']:,} row")
        rows, counts = all_blocks(data, indicator.id, team)
        assert len(rows) == shown["count"] and counts == {shown["count"]}
        if rows:
            assert [c["field"] for c in shown["columns"]] == list(rows[0])


def test_borough_drill_down_comes_in_blocks_of_its_whole_list(data):
    borough = Scope.borough()
    expected = data.drilldown("overdue_steps", borough)
    assert len(expected) > 2 * BLOCK_ROWS
    shown = callbacks.open_drilldown(data, "overdue_steps", borough)
    assert shown["count"] == len(expected)
    first, _ = callbacks.list_block(
        data, "overdue_steps", borough, grid_rows.parse_request(block_request())
    )
    assert first["rowCount"] == len(expected) and len(first["rowData"]) == BLOCK_ROWS
    rows, _ = all_blocks(data, "overdue_steps", borough)
    assert [r["workflow_step_id"] for r in rows] == list(expected["workflow_step_id"])
    # Sorted on the server, across blocks: the most overdue first, every row once.
    rows, _ = all_blocks(
        data, "overdue_steps", borough, sortModel=[{"colId": "days_overdue", "sort": "desc"}]
    )
    days = [r["days_overdue"] for r in rows]
    assert days == sorted(expected["days_overdue"], reverse=True)
    assert sorted(r["workflow_step_id"] for r in rows) == sorted(expected["workflow_step_id"])


def test_lists_carry_columns_counts_and_download_links(data, team):
    columns, links, digests = callbacks.render_lists(data, team, ["awaiting_signoff"])
    expected = data.drilldown("awaiting_signoff", team)
    assert [c["field"] for c in columns[0]] == list(expected.columns)
    assert links[0][0].children.startswith(f"{len(expected):,} row")
    hrefs = [a.href for a in links[0] if hasattr(a, "href")]
    assert hrefs == [
        f"/download/awaiting_signoff.csv?scope=team%3A{team.keys[0]}",
        f"/download/awaiting_signoff.xlsx?scope=team%3A{team.keys[0]}",
    ]
    rows, counts = all_blocks(data, "awaiting_signoff", team)
    assert len(rows) == len(expected) and counts == {len(expected)}


def test_family_view_from_a_child_shows_their_whole_familys_open_work(data, team):
    shown = callbacks.open_drilldown(data, "overdue_steps", team)
    assert shown["family"]
    block, _ = callbacks.list_block(
        data, "overdue_steps", team, grid_rows.parse_request(block_request())
    )
    child = callbacks.child_of(block["rowData"][0])
    family = callbacks.render_family(data, child, team)
    assert family["count"] == len(data.family(child, team)) >= 1
    assert child in {r["person_id"] for r in family["rows"]}


# ----------------------------------------------------------------------------- charts, matrix


@pytest.mark.parametrize("page_id", ["team", "budget", "borough"])
def test_every_chart_has_an_accessible_title_and_data(data, page_id):
    declared = page(page_id)
    scope = Scope.borough()
    figures = callbacks.render_charts(data, scope, declared.charts)
    assert len(figures) == len(declared.charts)
    for chart_id, figure in zip(declared.charts, figures, strict=True):
        assert figure["layout"]["title"]["text"], chart_id
        assert figure["data"], chart_id
        # The shared plotly_white look, as dcc.Graph receives it.
        assert figure["layout"]["template"]["layout"]["plot_bgcolor"] == "white", chart_id


def test_caseload_chart_draws_the_threshold_line(data, team):
    (figure,) = callbacks.render_charts(data, team, ["caseload_by_worker"])
    threshold = next(i for i in data.catalogue() if i.id == "average_caseload").thresholds
    assert [s["y0"] for s in figure["layout"]["shapes"]] == [threshold.green]


def test_team_matrix_has_a_row_per_team_linking_to_its_view(data):
    shown = callbacks.render_matrix(data, Scope.borough())
    # Read from the history recorded after the refresh, and says when.
    note, table = shown.children
    assert note.children.startswith("Values as recorded on ")
    rows = table.children[2].children
    assert len(rows) == len(data.teams())
    links = {r.children[0].children.href for r in rows}
    assert links == {f"/team?scope=team%3A{t}" for t in data.teams()["org_id"]}


def test_a_matrix_of_more_teams_than_fit_says_how_many_it_shows(data, monkeypatch):
    monkeypatch.setattr(callbacks.components, "MATRIX_TEAMS", 3)
    shown = callbacks.render_matrix(data, Scope.borough())
    recorded, limited, table = shown.children
    total = len(data.teams())
    assert total > 3
    assert limited.children.startswith(f"Showing the 3 teams of {total:,} with the most red")
    assert len(table.children[2].children) == 3


# ----------------------------------------------------------------------------- live updates


def test_poll_returns_no_update_until_a_refresh_lands(settings, tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    shutil.copyfile(settings.store_url.removeprefix("sqlite:///"), folder / "store.sqlite")
    private = settings.model_copy(update={"store_url": f"sqlite:///{folder / 'store.sqlite'}"})
    data = DataLayer(private)
    token = data.version_token()
    assert callbacks.poll_version(data, token) is no_update
    refresh(private, ["open_steps"])
    new = callbacks.poll_version(data, token)
    assert new is not no_update and new != token
    assert callbacks.poll_version(data, new) is no_update


def test_a_failed_dataset_fails_only_its_own_tiles(small_demo_source_url, tmp_path):
    queries = tmp_path / "queries"
    shutil.copytree(Settings.model_fields["queries_dir"].default, queries)
    broken = queries / "open_steps.sql"
    text = broken.read_text()
    header, _, _ = text.partition("\nSELECT")
    broken.write_text(header + "\nSELECT * FROM no_such_table\n")
    settings = refreshed_settings(small_demo_source_url, tmp_path / "store", queries_dir=queries)
    data = DataLayer(settings)
    team = Scope.team(int(data.teams()["org_id"].iloc[0]))
    ids = page("team").tiles
    bodies, classes = callbacks.render_tiles(data, team, ids, AS_OF)
    failed = {i for i, c in zip(ids, classes, strict=True) if "tile--failed" in c}
    uses_open_steps = {i.id for i in data.catalogue() if "open_steps" in i.datasets and i.id in ids}
    assert failed == uses_open_steps and failed
    body = bodies[ids.index("overdue_steps")]
    assert "Could not compute" in text_of(body) and "open_steps" in text_of(body)
    assert "tile__error" in classes_of(body)


# ----------------------------------------------------------------------------- helpers


def _walk(node):
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, list | tuple):
        for child in children:
            yield from _walk(child)
    elif children is not None and hasattr(children, "_prop_names"):
        yield from _walk(children)


def _ids(layout) -> list:
    return [getattr(n, "id", None) for n in _walk(layout) if getattr(n, "id", None) is not None]


def _find(layout, ident):
    return next(n for n in _walk(layout) if getattr(n, "id", None) == ident)


def test_a_lists_rows_digest_changes_with_its_rows_and_only_with_them():
    """The browser asks for a list's blocks again only when this digest changes: the same
    rows give the same digest; one changed cell, one row fewer, another order or another
    column name give another."""
    rows = pd.DataFrame(
        {
            "child_id": [11, 12, 13],
            "due": pd.to_datetime(["2026-11-01", "2026-11-02", None]),
            "worker": ["A. Smith", "B. Jones", None],
        }
    )
    same = callbacks.rows_digest(rows.copy())
    assert callbacks.rows_digest(rows) == same
    changed = rows.copy()
    changed.loc[1, "worker"] = "C. Brown"
    others = [
        changed,
        rows.iloc[:2],
        rows.iloc[::-1].reset_index(drop=True),
        rows.rename(columns={"worker": "allocated_worker"}),
        rows.head(0),
    ]
    digests = {callbacks.rows_digest(frame) for frame in others}
    assert same not in digests and len(digests) == len(others)
    assert callbacks.rows_digest(rows.head(0)) != callbacks.rows_digest(pd.DataFrame())
