"""Block requests of the drill-down panel and the inline lists, over HTTP.

The grids ask for their rows a block at a time (``getRowsRequest``), each block its own
``POST /_dash-update-component``. Each one checks the scope again (403 and no rows for another
user's), refuses what the grid never sends (400 and no rows), audits exactly the children in the
block it sends (and opening a list, which sends no rows, audits nothing), and stays one block
in size however long the list is. What each user may see is worked out from the source tables
with the test's own SQL (``tests/security_forge.expected_access``).
"""

from __future__ import annotations

import json

import pytest

from dashboard.audit import AuditLog
from dashboard.data import DataLayer
from dashboard.model import Scope
from dashboard.web.app import create_app
from dashboard.web.grid_rows import BLOCK_ROWS
from layouts import all_pages
from tests.security_forge import (
    AttackLog,
    Forge,
    all_scopes,
    block_request,
    expected_access,
    report_attacks,
    response_part,
    teams_of_services,
)
from tests.web_support import DemoBorough, demo_borough, logged_in

UPDATE = "/_dash-update-component"
TEAM_TILES = next(p for p in all_pages() if p.id == "team").tiles
LIST_KEY = lambda indicator_id: {"ind": indicator_id, "type": "list"}  # noqa: E731


@pytest.fixture(scope="module")
def borough(small_demo_source_url, tmp_path_factory) -> DemoBorough:
    return demo_borough(small_demo_source_url, tmp_path_factory.mktemp("blocks"))


@pytest.fixture(scope="module")
def app(borough):
    return create_app(borough.settings)


@pytest.fixture(scope="module")
def data(borough) -> DataLayer:
    return DataLayer(borough.settings)


@pytest.fixture(scope="module")
def forge(app, borough) -> Forge:
    client = logged_in(app, borough.director)
    return Forge(client.get("/_dash-dependencies").get_json())


@pytest.fixture(scope="module")
def attacks(request):
    log = AttackLog()
    yield log
    report_attacks(request, log)


@pytest.fixture(scope="module")
def own_team(borough) -> int:
    settings = borough.settings
    mine = expected_access(settings.source_url, borough.team_manager, settings.as_of)
    (team,) = sorted(mine.teams)
    return team


def state(indicator_id: str, scope: str) -> dict:
    return {"ind": indicator_id, "scope": scope, "family": True}


FIRST = object()  # the grid's first block


def drill_block(client, forge, indicator_id: str, scope: str, request=FIRST):
    body = forge.drill_rows(
        block_request() if request is FIRST else request, state(indicator_id, scope)
    )
    return client.post(UPDATE, json=body)


def block_of(response) -> dict:
    return response_part(response.get_json(), "drill-grid", "getRowsResponse")


def no_rows(response) -> bool:
    return b"rowData" not in response.data


# ----------------------------------------------------------------------------- scope


def test_forged_block_requests_for_other_scopes_get_403_and_no_rows(
    app, borough, data, forge, attacks, own_team
):
    client = logged_in(app, borough.team_manager)
    every = all_scopes(borough.settings.source_url)
    others = [
        "borough",
        f"teams:{own_team},{next(int(s[5:]) for s in every['team'] if int(s[5:]) != own_team)}",
    ]
    others += [s for s in every["team"] if s != f"team:{own_team}"]
    below = teams_of_services(borough.settings.source_url)
    others += [f"service:{s}" for s, teams in sorted(below.items()) if teams != {own_team}]
    others += every["cost_centre"][:3]
    for scope in others:
        for indicator_id in ("overdue_steps", "open_cases", "average_caseload"):
            response = drill_block(client, forge, indicator_id, scope)
            attacks.expect_refused("forged drill block", response)
            assert response.status_code == 403 and no_rows(response), (scope, indicator_id)
        for indicator_id in ("unfinished_steps", "unallocated_cases"):
            response = client.post(
                UPDATE, json=forge.list_rows(indicator_id, block_request(), scope)
            )
            attacks.expect_refused("forged list block", response)
            assert response.status_code == 403 and no_rows(response), (scope, indicator_id)
    # The same requests for the user's own team answer.
    assert drill_block(client, forge, "overdue_steps", f"team:{own_team}").status_code == 200


def test_malformed_block_requests_get_400_and_no_rows(app, borough, forge, attacks, own_team):
    client = logged_in(app, borough.director)
    scope = f"team:{own_team}"
    bad_requests = [
        None,
        "rows please",
        [],
        {},
        {"startRow": 0, "endRow": 10**9},  # the whole list in one go: never
        {"startRow": 0, "endRow": BLOCK_ROWS + 1},
        {"startRow": -200, "endRow": 0},
        {"startRow": "0", "endRow": "200"},
        block_request(sortModel=[{"colId": "no_such_column", "sort": "asc"}]),
        block_request(sortModel=[{"colId": "days_overdue", "sort": "sideways"}]),
        block_request(filterModel={"child_name": {"filterType": "set", "values": ["x"]}}),
        block_request(
            filterModel={
                "no_such_column": {"filterType": "text", "type": "contains", "filter": "a"}
            }
        ),
        block_request(
            filterModel={"child_name": {"filterType": "text", "type": "regex", "filter": ".*"}}
        ),
        block_request(
            filterModel={
                "days_overdue": {"filterType": "number", "type": "equals", "filter": "1 OR 1=1"}
            }
        ),
        block_request(filterModel="x" * 1000),
    ]
    for request in bad_requests:
        response = drill_block(client, forge, "overdue_steps", scope, request)
        attacks.expect_refused("malformed drill block", response)
        assert response.status_code == 400 and no_rows(response), (request, response.data[:200])
        body = forge.list_rows("unfinished_steps", request, scope)
        response = client.post(UPDATE, json=body)
        attacks.expect_refused("malformed list block", response)
        assert response.status_code == 400 and no_rows(response), (request, response.data[:200])
    # The panel's state as the browser keeps it: a list that does not exist, or no state shape.
    for bad_state in (
        "overdue_steps",
        ["overdue_steps"],
        state("no_such_list", scope),
        state("<script>", scope),
        {"scope": scope},
    ):
        body = forge.drill_rows(block_request(), bad_state)
        response = client.post(UPDATE, json=body)
        attacks.expect_refused("malformed drill state", response)
        assert response.status_code == 400 and no_rows(response), bad_state
    # A list id the page never had.
    response = client.post(UPDATE, json=forge.list_rows("no_such_list", block_request(), scope))
    attacks.expect_refused("unknown list block", response)
    assert response.status_code == 400 and no_rows(response)
    # A bad scope in the state: 400, not a server error.
    for bad_scope in ("team:1 OR 1=1", "team:x", 7, None, "😀"):
        response = drill_block(client, forge, "overdue_steps", bad_scope)
        attacks.expect_refused("bad scope in drill state", response)
        assert response.status_code in (400, 403) and no_rows(response), bad_scope


# ----------------------------------------------------------------------------- audit


def test_each_block_is_audited_with_exactly_its_children_and_opening_audits_nothing(
    app, borough, data, forge, own_team
):
    username = borough.team_manager
    scope = f"team:{own_team}"
    client = logged_in(app, username)
    audit = AuditLog(borough.settings.store_url)

    def events():
        return audit.query(username=username, limit=100_000)

    before = len(events())
    opened = client.post(UPDATE, json=forge.drill(list(TEAM_TILES), "open_cases", scope))
    assert opened.status_code == 200 and no_rows(opened)
    lists = client.post(UPDATE, json=forge.lists(["unfinished_steps", "unallocated_cases"], scope))
    assert lists.status_code == 200 and no_rows(lists)
    # A list of workers (no child in it) is not audited either.
    workers = drill_block(client, forge, "average_caseload", scope)
    assert workers.status_code == 200 and block_of(workers)["rowData"]
    assert len(events()) == before

    whole = data.drilldown("open_cases", Scope.parse(scope))
    assert len(whole) > 2, "the team has open cases to page through"
    seen = 0
    for start in range(0, len(whole), 2):  # small blocks, as if the grid's blocks were small
        response = drill_block(client, forge, "open_cases", scope, block_request(start, start + 2))
        block = block_of(response)
        assert block["rowCount"] == len(whole)
        (event,) = events()[: len(events()) - before - seen]  # one event per block
        seen += 1
        assert event.scope == scope and event.indicator_id == "open_cases"
        assert "drill-down" in event.route
        assert event.row_count == len(block["rowData"])
        assert set(event.person_ids) == {int(r["child_id"]) for r in block["rowData"]}
    # Every child of the list was recorded once it was shown, and no child outside it.
    shown = {p for e in events()[: len(events()) - before] for p in e.person_ids}
    assert shown == {int(c) for c in whole["child_id"]}

    # An inline list's block: the same, under the list's route.
    response = client.post(UPDATE, json=forge.list_rows("unfinished_steps", block_request(), scope))
    block = response_part(response.get_json(), LIST_KEY("unfinished_steps"), "getRowsResponse")
    newest = events()[0]
    if block["rowData"]:
        assert "(list)" in newest.route and newest.indicator_id == "unfinished_steps"
        assert set(newest.person_ids) == {int(r["child_id"]) for r in block["rowData"]}


# ----------------------------------------------------------------------------- size


def test_the_borough_drill_down_sends_one_block_not_the_whole_list(app, borough, data, forge):
    """The borough's overdue work, many blocks long: opening it sends no rows, its first block
    is BLOCK_ROWS rows and well under 200 KB, and the count is of the whole list."""
    client = logged_in(app, borough.director)
    whole = data.drilldown("overdue_steps", Scope.borough())
    assert len(whole) > 5 * BLOCK_ROWS
    every_row_as_json = len(json.dumps(whole.astype(str).to_dict("records")))
    assert every_row_as_json > 200_000  # what it used to send: this test would catch it

    opened = client.post(UPDATE, json=forge.drill(list(TEAM_TILES), "overdue_steps", "borough"))
    assert opened.status_code == 200 and no_rows(opened)
    assert len(opened.data) < 20_000
    links = str(response_part(opened.get_json(), "drill-links", "children"))
    assert f"'data-count': '{len(whole)}'" in links

    first = drill_block(client, forge, "overdue_steps", "borough")
    assert first.status_code == 200
    block = block_of(first)
    assert block["rowCount"] == len(whole) and len(block["rowData"]) == BLOCK_ROWS
    assert len(first.data) < 200_000

    # The last block, sorted and filtered on the server: still one block at most.
    last = drill_block(
        client,
        forge,
        "overdue_steps",
        "borough",
        block_request(
            len(whole) - 10,
            len(whole) - 10 + BLOCK_ROWS,
            sortModel=[{"colId": "days_overdue", "sort": "desc"}],
        ),
    )
    rows = block_of(last)["rowData"]
    assert [r["days_overdue"] for r in rows] == sorted(whole["days_overdue"], reverse=True)[-10:]
