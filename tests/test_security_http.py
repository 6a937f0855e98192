"""Issue 5 over HTTP: every route without a session, each demo user forging requests for other
scopes, injection and oversized strings in every input, and the audit trail.

Every request goes through the real Flask server (``app.server.test_client()`` is a full WSGI
round trip: the guard, Dash's dispatch, the routes). Forged ``/_dash-update-component`` bodies
have the exact shape the page sends (``tests/security_forge.py``). What each user may see is
worked out from the source tables with the test's own SQL. The number of forged and malicious
requests tried, and the number that leaked, is printed at the end of the module (and must be 0).
"""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from dashboard.audit import AuditLog
from dashboard.data import DataLayer
from dashboard.indicators.charts import CHARTS
from dashboard.model import Scope
from dashboard.web import session
from dashboard.web.app import create_app
from dashboard.web.grid_rows import BLOCK_ROWS
from layouts import all_pages
from tests.security_forge import (
    INJECTIONS,
    AttackLog,
    Forge,
    all_scopes,
    block_request,
    expected_access,
    report_attacks,
    response_part,
    teams_of_services,
    walk,
)
from tests.web_support import DemoBorough, demo_borough, logged_in, login

pytestmark = pytest.mark.slow

ROLES = ("team_manager", "service_manager", "budget_holder")
DOWNLOAD = "/download/{}.{}"


@pytest.fixture(scope="module")
def borough(small_demo_source_url, tmp_path_factory) -> DemoBorough:
    # A high failure limit: the injection tests send many bad logins from one address.
    return demo_borough(
        small_demo_source_url, tmp_path_factory.mktemp("security"), login_max_failures=10_000
    )


@pytest.fixture(scope="module")
def app(borough):
    return create_app(borough.settings)


@pytest.fixture(scope="module")
def data(borough) -> DataLayer:
    return DataLayer(borough.settings)


@pytest.fixture(scope="module")
def attacks(request):
    log = AttackLog()
    yield log
    report_attacks(request, log)


@pytest.fixture(scope="module")
def forge(app, borough) -> Forge:
    client = logged_in(app, borough.director)
    return Forge(client.get("/_dash-dependencies").get_json())


def username_of(borough: DemoBorough, role: str) -> str:
    return getattr(borough, role)


def indicators(data: DataLayer, tier: str | None = None) -> list[str]:
    return [i.id for i in data.catalogue(tier)]


def drilldown_ids(data: DataLayer) -> list[str]:
    return [i.id for i in data.catalogue() if i.drilldown]


def foreign_scopes(borough: DemoBorough, role: str) -> list[str]:
    """Every scope the user may NOT see: other teams, services, cost centres, the borough, and
    sets of teams that sneak one other team in beside their own."""
    settings = borough.settings
    mine = expected_access(settings.source_url, username_of(borough, role), settings.as_of)
    assert not mine.borough
    every = all_scopes(settings.source_url)
    below = teams_of_services(settings.source_url)
    out = ["borough"]
    out += [s for s in every["team"] if int(s.split(":")[1]) not in mine.teams]
    out += [
        s
        for s in every["service"]
        if not below.get(int(s.split(":")[1])) or not below[int(s.split(":")[1])] <= mine.teams
    ]
    out += [s for s in every["cost_centre"] if s.split(":", 1)[1] not in mine.cost_centres]
    other = next(
        int(s.split(":")[1]) for s in every["team"] if int(s.split(":")[1]) not in mine.teams
    )
    for own in sorted(mine.teams)[:2]:
        out.append(f"teams:{own},{other}")
    return out


def own_scopes(borough: DemoBorough, role: str) -> list[str]:
    settings = borough.settings
    mine = expected_access(settings.source_url, username_of(borough, role), settings.as_of)
    scopes = [f"team:{t}" for t in sorted(mine.teams)]
    below = teams_of_services(settings.source_url)
    scopes += [f"service:{s}" for s, teams in sorted(below.items()) if teams <= mine.teams]
    if len(mine.teams) > 1:
        scopes.append("teams:" + ",".join(str(t) for t in sorted(mine.teams)))
    scopes += [f"cost_centre:{c}" for c in sorted(mine.cost_centres)]
    return scopes


def rows_in_scope(rows: list[dict], allowed_teams, allowed_centres) -> tuple[bool, str]:
    """Every row's team (or cost centre) is one the user may see."""
    for row in rows:
        if "team_id" in row and row["team_id"] is not None:
            if int(row["team_id"]) not in allowed_teams:
                return False, f"row of team {row['team_id']}"
        if "cost_centre_code" in row and row["cost_centre_code"] is not None:
            if str(row["cost_centre_code"]) not in allowed_centres:
                return False, f"row of cost centre {row['cost_centre_code']}"
    return True, ""


# ----------------------------------------------------------------------------- no session


def concrete(rule) -> str:
    """A URL for a route, with sample values for its variables."""
    samples = {"indicator_id": "overdue_steps", "fmt": "csv", "filename": "10-dashboard.css",
               "path": "team", "package_name": "dash", "fingerprinted_path": "dash_renderer.js"}  # fmt: skip
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: samples.get(m.group(1), "x"), rule.rule)


def test_every_route_refuses_a_request_without_a_session(app, forge, attacks):
    client = app.server.test_client()
    rules = list(app.server.url_map.iter_rules())
    public = {r.endpoint for r in rules if r.endpoint in session.PUBLIC_ENDPOINTS} | {
        r.endpoint for r in rules if r.endpoint.startswith(session.PUBLIC_ENDPOINT_PREFIXES)
    }
    # Public: files with no data, the login form, the health check. Nothing else.
    assert public == {
        "static", "_dash_assets.static", "/_favicon.ico", "health", "login", "login_submit",
        "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>",
    }  # fmt: skip
    tried = 0
    for rule in rules:
        if rule.endpoint in public:
            continue
        url = concrete(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            body = forge.tiles(["overdue_steps"], "borough") if method == "POST" else None
            response = client.open(url, method=method, json=body)
            tried += 1
            if rule.endpoint in session.PAGE_ENDPOINTS:
                attacks.expect_refused("no session", response, allowed=frozenset({302}))
                assert response.status_code == 302, url
                assert response.headers["Location"].startswith("/login")
            else:
                attacks.expect_refused("no session", response, allowed=frozenset({401}))
                assert response.status_code == 401, (url, method, response.status_code)
                assert b"row" not in response.data.lower()
    assert tried >= 10  # the Dash endpoints, the API, downloads, admin pages, logout, pages


def test_health_says_only_ages_and_states(app):
    body = app.server.test_client().get("/health").get_json()
    assert body["datasets"]
    for dataset in body["datasets"]:
        assert set(dataset) <= {"dataset_id", "title", "refresh_s", "computed_at", "age_s",
                                "status", "as_of"}  # fmt: skip


# ----------------------------------------------------------------------------- forged scopes


@pytest.mark.parametrize("role", ROLES)
def test_forged_callbacks_for_other_scopes_get_nothing(app, borough, data, forge, attacks, role):
    client = logged_in(app, username_of(borough, role))
    token = data.version_token()
    team_tiles = indicators(data, "team")
    for scope in foreign_scopes(borough, role):
        tier = "budget" if scope.startswith("cost_centre") else "team"
        if scope == "borough":
            tier = "borough"
        tiles = indicators(data, tier)
        requests = [
            ("tiles", forge.tiles(tiles, scope, token)),
            ("charts", forge.charts(list(CHARTS), scope)),
            ("history", forge.history(tiles, scope)),
            ("lists", forge.lists([i for i in drilldown_ids(data)][:5], scope)),
            ("matrix", forge.matrix(scope)),
            ("scope select", forge.select(scope, None)),
        ]
        requests += [("drill-down", forge.drill(team_tiles, i, scope)) for i in drilldown_ids(data)]
        # The grids' block requests, with the scope the browser claims for the list.
        requests += [
            ("drill-down rows", forge.drill_rows(block_request(), _state(i, scope)))
            for i in drilldown_ids(data)
        ]
        requests += [
            ("list rows", forge.list_rows(i, block_request(), scope))
            for i in drilldown_ids(data)[:5]
        ]
        child = _any_child(data, Scope.borough())
        requests.append(("family", forge.family(child, scope)))
        for kind, body in requests:
            response = client.post("/_dash-update-component", json=body)
            attacks.expect_refused(f"forged {kind}", response)
            assert response.status_code == 403, (role, kind, scope, response.data[:200])
            assert b"rowData" not in response.data
        response = client.get("/api/indicators", query_string={"scope": scope})
        attacks.expect_refused("forged api", response)
        assert response.status_code == 403


@pytest.mark.parametrize("role", ROLES)
def test_forged_downloads_of_other_scopes_get_nothing(app, borough, data, attacks, role):
    client = logged_in(app, username_of(borough, role))
    scopes = foreign_scopes(borough, role)
    sample = {s.split(":")[0]: s for s in scopes}  # one of each kind, and the mixed sets
    sample = list(sample.values()) + [s for s in scopes if s.startswith("teams:")]
    for indicator_id in indicators(data):
        for fmt in ("csv", "xlsx"):
            for scope in sample:
                response = client.get(
                    DOWNLOAD.format(indicator_id, fmt), query_string={"scope": scope}
                )
                attacks.expect_refused("forged download", response)
                assert response.status_code == 403, (indicator_id, scope)
                assert not response.headers.get("Content-Disposition")


@pytest.mark.parametrize("role", ROLES)
def test_own_scope_returns_only_own_rows(app, borough, data, forge, attacks, role):
    """The same requests for the user's own scopes answer, and every row is the user's."""
    settings = borough.settings
    username = username_of(borough, role)
    mine = expected_access(settings.source_url, username, settings.as_of)
    client = logged_in(app, username)
    team_tiles = indicators(data, "team")
    for scope in own_scopes(borough, role):
        parsed = Scope.parse(scope)
        for indicator_id in drilldown_ids(data):
            if indicator_id not in data.applicable(parsed):
                continue
            response = client.post(
                "/_dash-update-component", json=forge.drill(team_tiles, indicator_id, scope)
            )
            assert response.status_code == 200, (scope, indicator_id)
            rows = _all_rows(client, forge, indicator_id, scope)
            ok, why = rows_in_scope(rows, mine.teams, mine.cost_centres)
            attacks.expect("own-scope drill-down", ok, f"{username} {scope} {indicator_id}: {why}")
            assert ok, why
            assert len(rows) == len(data.drilldown(indicator_id, parsed))
            download = client.get(
                DOWNLOAD.format(indicator_id, "csv"), query_string={"scope": scope}
            )
            assert download.status_code == 200
            frame = pd.read_csv(io.BytesIO(download.data), encoding="utf-8-sig")
            ok, why = rows_in_scope(frame.to_dict("records"), mine.teams, mine.cost_centres)
            attacks.expect("own-scope export", ok, f"{username} {scope} {indicator_id}: {why}")
            assert ok and len(frame) == len(rows)
        api = client.get("/api/indicators", query_string={"scope": scope})
        assert api.status_code == 200 and {v["scope"] for v in api.get_json()} == {scope}


@pytest.mark.parametrize("role", ROLES)
def test_pages_offer_only_own_scopes_and_refuse_other_tiers(app, borough, forge, attacks, role):
    settings = borough.settings
    username = username_of(borough, role)
    mine = expected_access(settings.source_url, username, settings.as_of)
    client = logged_in(app, username)
    own = set(own_scopes(borough, role))
    seen_pages = 0
    for page in all_pages():
        if page.tier == "home":
            continue
        visible = (
            page.tier == "team" and bool(mine.teams)
            or page.tier == "quality" and bool(mine.teams)
            or page.tier == "budget" and bool(mine.cost_centres)
        )  # fmt: skip
        full = client.get(page.path)
        layout = client.post(
            "/_dash-update-component", json=forge.router(page.path, "?scope=borough")
        ).get_json()
        content = response_part(layout, "_pages_content", "children")
        ids = [n.get("props", {}).get("id") for n in walk(content)]
        ids = {i for i in ids if isinstance(i, str)}
        if not visible:
            attacks.expect_refused("other tier page", full)
            assert full.status_code == 403 and b"not available to you" in full.data
            attacks.expect("other tier layout", "not-available" in ids, f"{username} {page.path}")
            assert "page-scope" not in ids
            continue
        seen_pages += 1
        assert full.status_code == 200
        store = next(n for n in walk(content) if n.get("props", {}).get("id") == "page-scope")
        attacks.expect("query-string scope", store["props"]["data"] in own, str(store["props"]))
        assert store["props"]["data"] in own  # ?scope=borough was refused, own scope shown
        select = next(
            (n for n in walk(content) if n.get("props", {}).get("id") == "scope-select"), None
        )
        if select is not None:
            offered = {o["value"] for o in select["props"]["options"]}
            assert offered <= own, offered - own
    assert seen_pages >= 1
    # The landing page sends the user to their own tier.
    home = client.get("/")
    assert home.status_code == 302
    assert home.headers["Location"] == ("/team" if mine.teams else "/budget")
    nav = client.get("/_dash-layout").get_json()
    links = {n["props"].get("href") for n in walk(nav) if "href" in n.get("props", {})}
    assert "/borough" not in links


# ----------------------------------------------------------------------------- injection


@pytest.mark.parametrize("who", ["director", "team_manager"])
def test_injection_and_oversized_strings_are_refused_everywhere(
    app, borough, data, forge, attacks, who
):
    username = getattr(borough, who)
    client = logged_in(app, username)
    team_tiles = indicators(data, "team")
    for bad in INJECTIONS:
        checks = [
            ("api scope", lambda b: client.get("/api/indicators", query_string={"scope": b})),
            (
                "download scope",
                lambda b: client.get(
                    DOWNLOAD.format("overdue_steps", "csv"), query_string={"scope": b}
                ),
            ),
            ("download indicator", lambda b: client.get(DOWNLOAD.format(b, "csv"))),
            ("tiles scope", lambda b: _post(client, forge.tiles(team_tiles, b))),
            ("tile id", lambda b: _post(client, forge.tiles([b], "team:10"))),
            ("chart id", lambda b: _post(client, forge.charts([b], "borough"))),
            ("scope select", lambda b: _post(client, forge.select(b, "borough"))),
            ("drill scope", lambda b: _post(client, forge.drill(team_tiles, "overdue_steps", b))),
            ("drill id", lambda b: _post(client, forge.drill([b], b, "borough"))),
            (
                "drill rows scope",
                lambda b: _post(client, forge.drill_rows(block_request(), _state("open_cases", b))),
            ),
            (
                "drill rows id",
                lambda b: _post(client, forge.drill_rows(block_request(), _state(b, "borough"))),
            ),
            (
                "list rows scope",
                lambda b: _post(client, forge.list_rows("unfinished_steps", block_request(), b)),
            ),
            (
                "list rows id",
                lambda b: _post(client, forge.list_rows(b, block_request(), "team:10")),
            ),
            (
                "block filter",
                lambda b: _post(
                    client,
                    forge.drill_rows(
                        block_request(
                            filterModel={
                                "child_name": {"filterType": "text", "type": b[:100], "filter": b}
                            }
                        ),
                        _state("open_cases", "borough"),
                    ),
                ),
            ),
            ("family scope", lambda b: _post(client, forge.family(1, b))),
            ("family child", lambda b: _post(client, forge.family(b, "borough"))),
        ]
        for kind, send in checks:
            response = send(bad)
            attacks.expect_refused(f"injection: {kind}", response)
            assert response.status_code in (400, 403, 404, 413), (
                kind,
                bad[:40],
                response.data[:200],
            )
        # A page asked for with a bad scope shows the user's own default, with a notice.
        layout = _post(client, forge.router("/team", "?scope=" + bad[:100_000]))
        assert layout.status_code in (200, 400, 413)
        if layout.status_code == 200:
            content = response_part(layout.get_json(), "_pages_content", "children")
            store = [n for n in walk(content) if n.get("props", {}).get("id") == "page-scope"]
            ok = not store or store[0]["props"]["data"] != bad
            attacks.expect("injection: page query string", ok, bad[:40])
            assert ok
        else:
            attacks.expect_refused("injection: page query string", layout)
    # Malformed callback bodies: 400, never a server error.
    for body in ({}, [], {"output": "nope"}, {"output": 1}, {"output": "page-scope.data"},
                 {"output": "page-scope.data", "inputs": "x", "state": []},
                 {**forge.tiles(["overdue_steps"], "borough"), "inputs": [1, 2]}):  # fmt: skip
        response = _post(client, body)
        attacks.expect_refused("malformed callback", response)
        assert response.status_code == 400
    still = logged_in(app, username)
    assert still.get("/api/indicators").status_code == 200  # the store survived it all


def test_injection_in_the_login_form_and_query_strings(app, borough, attacks):
    client = app.server.test_client()
    for bad in INJECTIONS:
        response = login(client, bad, bad)
        attacks.expect_refused("injection: login form", response)
        assert response.status_code in (401, 413), response.status_code
        forged = client.post("/login", data={"username": borough.director, "password": "demo",
                                             "csrf_token": bad})  # fmt: skip
        attacks.expect_refused("injection: csrf token", forged)
        assert forged.status_code in (400, 413)
    admin = logged_in(app, borough.admin)
    for bad in INJECTIONS:
        for key in ("user", "child", "since", "until"):
            response = admin.get("/admin/audit", query_string={key: bad})
            if response.status_code == 200:  # an empty filter is no filter
                attacks.expect("injection: admin filter", not bad.strip(), f"{key}={bad[:40]!r}")
            else:
                attacks.expect_refused("injection: admin filter", response)
                assert response.status_code in (400, 413)
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example", "javascript:x"):
        token_client = app.server.test_client()
        token = re.search(
            r'name="csrf_token" value="([^"]+)"',
            token_client.get("/login").get_data(as_text=True),
        ).group(1)
        response = token_client.post(
            "/login?next=" + target,
            data={"username": borough.director, "password": "demo", "csrf_token": token},
        )
        ok = response.status_code == 303 and response.headers["Location"] == "/borough"
        attacks.expect("injection: login next", ok, f"{target} -> {response.headers}")
        assert ok


def _post(client, body):
    return client.post("/_dash-update-component", json=body)


def _state(indicator_id, scope):
    """What ``drill-state`` holds once a tile's panel is open."""
    return {"ind": indicator_id, "scope": scope, "family": True}


def _first_block(client, forge, indicator_id, scope):
    """The drill-down grid's first block: (response, its rows)."""
    response = _post(client, forge.drill_rows(block_request(), _state(indicator_id, scope)))
    assert response.status_code == 200, response.data[:200]
    return response, response_part(response.get_json(), "drill-grid", "getRowsResponse")["rowData"]


def _all_rows(client, forge, indicator_id, scope):
    """Every row of a drill-down list, block by block as the grid asks for them."""
    rows = []
    while True:
        request = block_request(len(rows), len(rows) + BLOCK_ROWS)
        response = _post(client, forge.drill_rows(request, _state(indicator_id, scope)))
        assert response.status_code == 200, response.data[:200]
        block = response_part(response.get_json(), "drill-grid", "getRowsResponse")
        rows += block["rowData"]
        if len(rows) >= block["rowCount"] or not block["rowData"]:
            assert len(rows) == block["rowCount"]
            return rows


def _any_child(data: DataLayer, scope: Scope) -> int:
    frame = data.drilldown("open_cases", scope)
    return int(frame["child_id"].iloc[0])


# ----------------------------------------------------------------------------- audit


def test_audit_rows_for_every_child_level_view_and_none_for_aggregates(app, borough, data, forge):
    settings = borough.settings
    username = borough.team_manager
    mine = expected_access(settings.source_url, username, settings.as_of)
    (team,) = sorted(mine.teams)
    scope = f"team:{team}"
    audit = AuditLog(settings.store_url)
    client = logged_in(app, username)
    team_tiles = indicators(data, "team")

    def events():
        return audit.query(username=username, limit=100_000)

    before = len(events())
    # Aggregate views: tiles, charts, history, the matrix, the API. No audit rows.
    for body in (forge.tiles(team_tiles, scope), forge.charts(["caseload_by_worker"], scope),
                 forge.history(["overdue_steps"], scope), forge.matrix(scope)):  # fmt: skip
        assert _post(client, body).status_code == 200
    assert client.get("/api/indicators", query_string={"scope": scope}).status_code == 200
    # A drill-down of an indicator whose list holds no child (workers' caseloads): none either.
    assert _post(client, forge.drill(team_tiles, "average_caseload", scope)).status_code == 200
    assert len(events()) == before

    # Child-level views, each audited once, with the children shown.
    expected_people = {}
    views = 0
    for indicator_id in drilldown_ids(data):
        indicator = next(i for i in data.catalogue() if i.id == indicator_id)
        if not indicator.personal or indicator_id not in data.applicable(Scope.parse(scope)):
            continue
        # Opening the panel sends no rows (and records nothing); its grid's first block does.
        assert _post(client, forge.drill(team_tiles, indicator_id, scope)).status_code == 200
        _response, rows = _first_block(client, forge, indicator_id, scope)
        if rows:  # an empty list shows no child and is not recorded
            expected_people[indicator_id] = {
                int(r[key]) for r in rows for key in ("child_id", "person_id") if r.get(key)
            }
            views += 1
    assert views >= 5
    lists = _post(client, forge.lists(["awaiting_signoff"], scope))
    assert lists.status_code == 200 and b"rowData" not in lists.data
    block = _post(client, forge.list_rows("awaiting_signoff", block_request(), scope))
    list_rows = response_part(
        block.get_json(), {"ind": "awaiting_signoff", "type": "list"}, "getRowsResponse"
    )["rowData"]
    assert list_rows
    exports = 0
    for fmt in ("csv", "xlsx"):
        assert client.get(DOWNLOAD.format("overdue_steps", fmt), query_string={"scope": scope}).status_code == 200  # fmt: skip
        exports += 1
    child = _any_child(data, Scope.parse(scope))
    family = _post(client, forge.family(child, scope))
    family_rows = response_part(family.get_json(), "family-grid", "rowData")
    assert family_rows

    new = events()[: len(events()) - before]
    assert len(new) == views + 1 + exports + 1
    by_kind = {}
    for event in new:
        by_kind.setdefault((event.action, event.indicator_id), []).append(event)
        assert event.scope == scope and event.username == username
    for indicator_id, people in expected_people.items():
        (event,) = [e for e in by_kind[("view", indicator_id)] if "drill-down" in e.route]
        assert set(event.person_ids) == people, indicator_id
        assert len(people) <= event.row_count <= BLOCK_ROWS
    assert len(by_kind[("export", "overdue_steps")]) == 2
    overdue = data.drilldown("overdue_steps", Scope.parse(scope))
    for event in by_kind[("export", "overdue_steps")]:
        assert event.row_count == len(overdue)
        assert set(event.person_ids) == set(overdue["child_id"].dropna().astype(int))
    (family_event,) = by_kind[("view", None)]
    assert child in family_event.person_ids
    assert family_event.row_count == len(family_rows)

    # "Who looked at this child's record?" on the admin page.
    admin = logged_in(app, borough.admin)
    page = admin.get("/admin/audit", query_string={"child": child})
    assert page.status_code == 200
    assert username in page.get_data(as_text=True)
    count = int(re.search(r'data-count="(\d+)"', page.get_data(as_text=True)).group(1))
    assert count == len(audit.query(person_id=child, limit=100_000)) >= 1
    assert client.get("/admin/audit").status_code == 403  # not for a team manager
    assert client.get("/admin/access").status_code == 403
    who = admin.get("/admin/access").get_data(as_text=True)
    assert username in who and borough.director in who


def test_no_audit_row_names_a_scope_outside_the_users(app, borough):
    """After all the forging above (and whatever order tests ran in), every audit row of each
    user is of one of their own scopes: a refused request never got as far as the rows."""
    settings = borough.settings
    audit = AuditLog(settings.store_url)
    for role in ROLES:
        username = username_of(borough, role)
        own = set(own_scopes(borough, role))
        for event in audit.query(username=username, limit=100_000):
            assert event.scope in own, (username, event)


def test_family_view_never_reaches_outside_the_users_teams(app, borough, data, forge, attacks):
    settings = borough.settings
    username = borough.team_manager
    mine = expected_access(settings.source_url, username, settings.as_of)
    (team,) = sorted(mine.teams)
    client = logged_in(app, username)
    # A child whose open case is in another team: nothing, whatever scope is claimed.
    cases = data.drilldown("open_cases", Scope.borough())
    outside = cases[~cases["team_id"].isin(sorted(mine.teams))]
    inside_children = set(cases.loc[cases["team_id"].isin(sorted(mine.teams)), "child_id"])
    for child in outside["child_id"].drop_duplicates().head(25):
        if child in inside_children:
            continue
        response = _post(client, forge.family(int(child), f"team:{team}"))
        rows = response_part(response.get_json(), "family-grid", "rowData")
        attacks.expect("family of a child elsewhere", rows == [], f"child {child}: {len(rows)}")
        assert rows == []
    # A child of the team whose family has open work in other teams: only the team's rows.
    # Who has open work where, and who is in which family, from the store's snapshots.
    work: dict[int, set[int]] = {}
    for dataset in ("open_cases", "open_steps"):
        frame = data.store.latest(dataset).frame
        for person, owner in zip(frame["person_id"], frame["team_id"], strict=True):
            if pd.notna(person) and pd.notna(owner):
                work.setdefault(int(person), set()).add(int(owner))
    members = data.store.latest("family_members").frame
    groups: dict[int, set[int]] = {}
    for group, person in zip(members["group_id"], members["person_id"], strict=True):
        groups.setdefault(int(group), set()).add(int(person))
    mixed = [
        (a, b)
        for family in groups.values()
        for a in sorted(family)
        for b in sorted(family)
        if a != b and team in work.get(a, set()) and work.get(b) and team not in work[b]
    ]
    assert mixed, "the demo borough has a family split across teams"
    checked = 0
    for child, sibling in mixed[:10]:
        response = _post(client, forge.family(child, f"team:{team}"))
        rows = response_part(response.get_json(), "family-grid", "rowData")
        people = {int(r["person_id"]) for r in rows}
        ok = sibling not in people and all(int(r["team_id"]) == team for r in rows)
        attacks.expect("family member elsewhere", ok, f"{child}/{sibling}: {people}")
        assert ok and child in people
        checked += 1
    assert checked
    # The director sees the sibling.
    director = logged_in(app, borough.director)
    child, sibling = mixed[0]
    rows = response_part(
        _post(director, forge.family(child, "borough")).get_json(), "family-grid", "rowData"
    )
    assert sibling in {int(r["person_id"]) for r in rows}


def test_a_failed_audit_write_shows_no_rows(borough, data, forge, tmp_path):
    """The audit trail is written first; when it cannot be, the rows are not shown."""
    import shutil

    store = tmp_path / "store.sqlite"
    shutil.copyfile(borough.settings.store_url.removeprefix("sqlite:///"), store)
    settings = borough.settings.model_copy(update={"store_url": f"sqlite:///{store}"})
    app = create_app(settings)
    client = logged_in(app, borough.director)
    engine = create_engine(settings.store_url)
    with engine.begin() as conn:  # the audit table becomes a read-only view: writes fail
        conn.execute(text("ALTER TABLE audit_event_people RENAME TO audit_event_people_gone"))
        conn.execute(
            text("CREATE VIEW audit_event_people AS SELECT * FROM audit_event_people_gone")
        )
    team_tiles = indicators(data, "team")
    drill = _post(client, forge.drill(team_tiles, "overdue_steps", "borough"))
    assert drill.status_code == 200  # the panel opens: it holds no rows yet
    block = _post(client, forge.drill_rows(block_request(), _state("overdue_steps", "borough")))
    assert block.status_code == 200
    assert response_part(block.get_json(), "drill-grid", "getRowsResponse") == {
        "rowData": [],
        "rowCount": 0,
    }
    links = str(response_part(block.get_json(), "drill-links", "children"))
    assert "audit trail could not be written" in links
    rows = _post(client, forge.list_rows("unfinished_steps", block_request(), "borough"))
    assert response_part(
        rows.get_json(), {"ind": "unfinished_steps", "type": "list"}, "getRowsResponse"
    ) == {"rowData": [], "rowCount": 0}
    export = client.get(DOWNLOAD.format("overdue_steps", "csv"), query_string={"scope": "borough"})
    assert export.status_code == 503 and b"audit" in export.data
    child = _any_child(data, Scope.borough())
    family = _post(client, forge.family(child, "borough"))
    assert response_part(family.get_json(), "family-grid", "rowData") == []
    # Aggregates need no audit and still work.
    assert _post(client, forge.tiles(["overdue_steps"], "team:10")).status_code == 200
    engine.dispose()


def test_every_leak_count_is_zero(attacks):
    """Runs last in this module: nothing any test above tried leaked."""
    assert attacks.leaks == []
