"""The render cache: one render per scope and store version per worker, never a scope the user
may not see, never an old version, never a list of children."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import threading
import time

import pytest
from flask import Flask, Response
from sqlalchemy import update
from sqlalchemy.engine import make_url

from dashboard.history import HistoryRecorder
from dashboard.model import Scope
from dashboard.refresher import refresh_datasets
from dashboard.store import SnapshotStore, store_renders
from dashboard.web import callbacks, components, render_cache
from dashboard.web import context as web_context
from dashboard.web.app import create_app
from dashboard.web.render_cache import RenderCache, aggregate_outputs
from layouts import all_pages
from tests.topology import (
    FIRST_BLOCK,
    poll_body,
    render_body,
    tiles_body,
    wait_until,
)
from tests.web_support import (
    change_source,
    copy_sqlite_source,
    demo_borough,
    halve_team_fte,
    logged_in,
    refresh,
    shown,
)

TEAM_PAGE = next(p for p in all_pages() if p.id == "team")
TEAM_TILES = list(TEAM_PAGE.tiles)
LISTS_OUTPUT = (
    '..{"ind":["ALL"],"type":"list"}.columnDefs...{"ind":["ALL"],"type":"list-links"}.children'
    '...{"ind":["ALL"],"type":"list-rows"}.data..'
)


@pytest.fixture(scope="module")
def borough(small_demo_source_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("render-cache")
    # A private copy of the source: one test changes a row and refreshes.
    source = copy_sqlite_source(small_demo_source_url, folder / "source")
    return demo_borough(source, folder / "store")


@pytest.fixture
def app(borough):
    return create_app(borough.settings)  # a fresh worker per test: an empty cache


def post(client, body):
    return client.post("/_dash-update-component", json=body)


def own_team(borough) -> str:
    user = next(u for u in borough.users if u.username == borough.team_manager)
    return "team:" + user.scope.split("team ")[1].split()[0].strip("(),")


# ----------------------------------------------------------------------------- through the app


def test_two_users_of_one_scope_get_one_render_and_the_same_bytes(app, borough):
    scope = own_team(borough)
    manager = logged_in(app, borough.team_manager)
    director = logged_in(app, borough.director)
    cache = render_cache.of(app.server)

    first = post(manager, tiles_body(TEAM_TILES, "token-the-browser-had", scope))
    second = post(director, tiles_body(TEAM_TILES, "another-browser-token", scope))

    assert first.status_code == second.status_code == 200
    assert (cache.misses, cache.hits) == (1, 1)
    assert second.data == first.data
    assert b"tile--" in first.data


def test_a_cached_scope_is_still_refused_to_a_user_who_may_not_see_it(app, borough):
    manager_team = own_team(borough)
    other = next(
        f"team:{int(t)}"
        for t in app.server.extensions["csc_dashboard"].data.teams()["org_id"]
        if f"team:{int(t)}" != manager_team
    )
    director = logged_in(app, borough.director)
    assert post(director, tiles_body(TEAM_TILES, None, other)).status_code == 200

    refused = post(logged_in(app, borough.team_manager), tiles_body(TEAM_TILES, None, other))

    assert refused.status_code == 403
    assert b"tile--" not in refused.data and b"Computed" not in refused.data
    anonymous = post(app.server.test_client(), tiles_body(TEAM_TILES, None, other))
    assert anonymous.status_code == 401
    assert b"tile--" not in anonymous.data


def test_a_new_snapshot_is_rendered_again_not_served_from_the_cache(app, borough):
    """The tiles after a refresh are exactly what a worker with no cache renders."""
    scope = own_team(borough)
    director = logged_in(app, borough.director)
    before = post(director, tiles_body(TEAM_TILES, None, scope))
    # Every open step of the team falls due long ago: its overdue tile changes.
    path = make_url(borough.settings.source_url).database
    with sqlite3.connect(path) as conn:
        changed = conn.execute(
            "UPDATE workflow_steps SET due_date = '2026-01-05' WHERE responsible_team_id = ? "
            "AND step_status IN ('INCOMING', 'STARTED', 'REOPENED')",
            (int(scope.split(":")[1]),),
        ).rowcount
    assert changed > 0
    refresh(borough.settings)

    after = post(director, tiles_body(TEAM_TILES, None, scope))
    uncached = post(
        logged_in(create_app(borough.settings), borough.director),
        tiles_body(TEAM_TILES, None, scope),
    )

    assert after.status_code == 200
    assert after.data != before.data
    assert after.data == uncached.data


def test_only_aggregate_render_callbacks_are_cached(app):
    outputs = aggregate_outputs(app)
    # One callback renders a page's tiles (with their freshness lines), charts, daily history
    # and team matrix; another its lists' columns and "N rows / Download" links (no row of
    # any list).
    kinds = [
        sorted({part.split('"type":"')[1].split('"')[0] for part in output.split("...")})
        for output in outputs
    ]
    assert sorted(kinds) == [
        ["chart", "history", "matrix", "tile", "tile-body", "tile-meta"],
        ["list", "list-links", "list-rows"],
    ]
    assert [o for o in outputs if "list" in o] == [LISTS_OUTPUT]
    # Rows of children (list blocks, drill-downs, the family) are audited per user: never cached.
    assert not [o for o in outputs if "Rows" in o or "drill" in o or "family" in o]


def lists_body(ids: list[str], token: str | None, scope: str) -> dict:
    """The page's lists' columns and counts, as the page asks for them after a new version."""
    return {
        "output": LISTS_OUTPUT,
        "outputs": [
            [{"id": {"ind": i, "type": "list"}, "property": "columnDefs"} for i in ids],
            [{"id": {"ind": i, "type": "list-links"}, "property": "children"} for i in ids],
            [{"id": {"ind": i, "type": "list-rows"}, "property": "data"} for i in ids],
        ],
        "inputs": [
            {"id": "data-version", "property": "data", "value": token},
            {"id": "page-scope", "property": "data", "value": scope},
        ],
        "changedPropIds": ["data-version.data"],
        "state": [],
    }


def list_block_body(app, indicator_id: str, scope: str) -> dict:
    """An inline list's grid asking for its first block of rows."""
    (output,) = [o for o in app.callback_map if o.startswith('..{"ind":["MATCH"],"type":"list"}')]
    grid = {"ind": indicator_id, "type": "list"}
    return {
        "output": output,
        "outputs": [
            {"id": grid, "property": "getRowsResponse"},
            {"id": {"ind": indicator_id, "type": "list-links"}, "property": "children"},
        ],
        "inputs": [{"id": grid, "property": "getRowsRequest", "value": FIRST_BLOCK}],
        "changedPropIds": [f'{{"ind":"{indicator_id}","type":"list"}}.getRowsRequest'],
        "state": [{"id": "page-scope", "property": "data", "value": scope}],
    }


def test_a_lists_columns_and_count_are_cached_but_its_rows_are_audited_per_user(app, borough):
    scope = own_team(borough)
    (listed,) = TEAM_PAGE.lists
    manager = logged_in(app, borough.team_manager)
    director = logged_in(app, borough.director)
    cache = render_cache.of(app.server)
    data = web_context.of(app.server).data
    rows = data.drilldown_view(listed, Scope.parse(scope))
    assert len(rows) > 0  # the team has work waiting for sign-off

    first = post(manager, lists_body([listed], None, scope))
    second = post(director, lists_body([listed], None, scope))

    assert first.status_code == second.status_code == 200
    assert (cache.misses, cache.hits) == (1, 1) and second.data == first.data
    assert f'"data-count":"{len(rows)}"'.encode() in first.data
    assert b"rowData" not in first.data  # columns and a count: no child's row
    audit = web_context.of(app.server).accounts.audit
    before = len(audit.query(limit=1000))
    for client in (manager, director):
        block = client.post("/_dash-update-component", json=list_block_body(app, listed, scope))
        assert block.status_code == 200 and b"rowData" in block.data
    after = audit.query(limit=1000)
    assert len(after) == before + 2  # each block is the user's own, audited, never cached
    assert {e.username for e in after[:2]} == {borough.team_manager, borough.director}
    assert (cache.misses, cache.hits) == (1, 1)


# ----------------------------------------------------------------------------- warming


def polled(client, known: str | None) -> str | None:
    """The new version a poll brings (None: nothing new)."""
    answer = client.post("/_dash-update-component", json=poll_body(known))
    if answer.status_code == 204:
        return None
    assert answer.status_code == 200, answer.data
    return answer.get_json()["response"].get("data-version", {}).get("data")


@pytest.fixture
def following(borough):
    """A worker whose preloader follows the store, as each gunicorn worker's does."""
    app = create_app(borough.settings)
    data = web_context.of(app.server).data
    stop = data.preload(0.05, stale_after_s=30)
    wait_until(lambda: data.served_token() is not None, "the first version published")
    yield app, data
    stop()


def test_a_new_snapshot_is_rendered_before_the_browsers_hear_of_it(following, borough):
    app, data = following
    scope = own_team(borough)
    director = logged_in(app, borough.director)
    cache = render_cache.of(app.server)
    old = polled(director, None)
    before = post(director, tiles_body(TEAM_TILES, old, scope))
    assert before.status_code == 200 and cache.misses == 1
    gate, held, refreshed = threading.Event(), threading.Event(), threading.Event()
    final: list[str] = []

    def hold(token, _superseded):  # runs after the render cache's warmer
        refreshed.wait(30)  # each dataset the refresh writes is a version: wait for the last
        if token == final[0]:
            held.set()
            gate.wait(30)
        return 0

    data.on_new_version(hold)
    path = make_url(borough.settings.source_url).database
    with sqlite3.connect(path) as conn:  # none of the team's open work is overdue any more
        changed = conn.execute(
            "UPDATE workflow_steps SET due_date = '2027-06-01' WHERE responsible_team_id = ? "
            "AND step_status IN ('INCOMING', 'STARTED', 'REOPENED')",
            (int(scope.split(":")[1]),),
        ).rowcount
    assert changed > 0
    refresh(borough.settings)
    final.append(data.version_token())  # the store's own, after the refresh and its history
    refreshed.set()

    try:
        assert held.wait(30)
        # The last version is loaded and the page rendered for it, but not yet published: a
        # poll hears only of what was published before it.
        key, _scope = render_cache.request_key(tiles_body(TEAM_TILES, None, scope), final[0])
        assert cache.holds(key)
        published = data.served_token()
        assert published != final[0]
        assert polled(director, published) is None
        assert polled(director, "an older token") == published
    finally:
        gate.set()
    wait_until(lambda: data.served_token() == final[0], "the new version published")
    new = polled(director, old)
    assert new == final[0]
    misses = cache.misses
    after = post(director, tiles_body(TEAM_TILES, new, scope))

    assert cache.misses == misses  # the warmed answer: nothing rendered on the request
    assert after.data != before.data
    fresh_worker = logged_in(create_app(borough.settings), borough.director)
    assert after.data == post(fresh_worker, tiles_body(TEAM_TILES, None, scope)).data


BUDGET_PAGE = next(p for p in all_pages() if p.id == "budget")


def test_a_page_that_reads_nothing_new_is_carried_over_not_rendered(following, borough):
    """A workforce refresh: the team page shows caseloads (rendered again); the budget page
    reads no workforce and its cost centre's history is not rewritten (carried over)."""
    app, data = following
    cache = render_cache.of(app.server)
    # The scheduler's recorder: after its first run it writes only the rows that changed.
    recorder, store = (
        HistoryRecorder(borough.settings),
        SnapshotStore.from_settings(borough.settings),
    )
    refresh_datasets(borough.settings, [], store=store, after_refresh=recorder)
    wait_until(lambda: data.served_token() == data.version_token(), "the day's history published")
    director = logged_in(app, borough.director)
    holder = next(u for u in borough.users if u.username == borough.budget_holder)
    centre = "cost_centre:" + holder.scope.split(": ")[1].split(",")[0].strip()
    budget = render_body(None, centre, tiles=list(BUDGET_PAGE.tiles))
    team_scope = own_team(borough)
    old = data.served_token()
    assert post(director, with_token(budget, old)).status_code == 200
    assert post(director, tiles_body(TEAM_TILES, old, team_scope)).status_code == 200
    before = post(director, with_token(budget, old)).data
    assert halve_team_fte(borough.settings, team_scope) > 0  # the team now works half time
    rendered, carried = cache.warmed, cache.carried
    report = refresh_datasets(borough.settings, ["workforce"], store=store, after_refresh=recorder)
    assert report.after_refresh_error is None
    store.dispose()
    final = data.version_token()
    wait_until(lambda: data.served_token() == final, "the refreshed workforce published")

    # The team page was rendered again for the new caseloads, the budget page carried over.
    assert cache.warmed > rendered and cache.carried > carried
    misses = cache.misses
    after = post(director, with_token(budget, final))
    assert cache.misses == misses and after.data == before
    fresh_worker = logged_in(create_app(borough.settings), borough.director)
    assert after.data == post(fresh_worker, with_token(budget, final)).data
    team_now = post(director, tiles_body(TEAM_TILES, final, team_scope))
    assert cache.misses == misses
    assert team_now.data == post(fresh_worker, tiles_body(TEAM_TILES, final, team_scope)).data


def with_token(body: dict, token: str | None) -> dict:
    inputs = [dict(i, value=token) if i["id"] == "data-version" else i for i in body["inputs"]]
    return {**body, "inputs": inputs}


def test_requests_ask_the_store_again_when_the_preloader_stops_following(borough):
    app = create_app(borough.settings)
    data = web_context.of(app.server).data
    stop = data.preload(0.05, stale_after_s=0.5)
    wait_until(lambda: data.served_token() is not None, "the first version published")
    assert data.served_token() == data.version_token()
    stop()
    wait_until(lambda: data.served_token() is None, "the published version going stale")
    director = logged_in(app, borough.director)
    assert polled(director, "an old token") == data.version_token()  # the store's own


# ----------------------------------------------------------------------------- the cache itself


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def context():
    with Flask(__name__).app_context():
        yield


def answer(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="application/json")


def test_entries_expire_after_their_time_limit(context):
    clock = Clock()
    cache = RenderCache(lambda: "v1", ttl_s=60, clock=clock)
    calls = []

    def compute():
        calls.append(1)
        return answer(b"%d" % len(calls))

    assert cache.serve("k", compute).get_data() == b"1"
    clock.now = 59
    assert cache.serve("k", compute).get_data() == b"1"
    clock.now = 121
    assert cache.serve("k", compute).get_data() == b"2"
    assert len(calls) == 2


def test_refusals_and_errors_are_never_kept(context):
    cache = RenderCache(lambda: "v1")
    statuses = iter([403, 500, 200, 200])
    for expected in (403, 500, 200, 200):
        got = cache.serve("k", lambda: answer(b"x", next(statuses)))
        assert got.status_code == expected
    assert (cache.misses, cache.hits) == (3, 1)


def test_the_cache_holds_no_more_than_its_byte_budget(context):
    cache = RenderCache(lambda: "v1", max_bytes=8_000)
    for key in range(10):
        cache.serve(key, lambda: answer(b"x" * 900))
    assert cache._bytes <= 8_000
    assert cache.serve(9, lambda: answer(b"new")).get_data() == b"x" * 900  # newest kept
    assert cache.serve(0, lambda: answer(b"new")).get_data() == b"new"  # oldest evicted


def test_concurrent_requests_for_one_key_render_once(context):
    cache = RenderCache(lambda: "v1")
    started = threading.Event()
    calls = []

    def slow():
        calls.append(1)
        started.set()
        time.sleep(0.3)
        return answer(b"rendered")

    app = Flask(__name__)
    results = []

    def request_it():
        with app.app_context():
            results.append(cache.serve("k", slow).get_data())

    threads = [threading.Thread(target=request_it) for _ in range(8)]
    threads[0].start()
    started.wait(5)
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert calls == [1]
    assert results == [b"rendered"] * 8


def test_answers_of_the_version_being_warmed_do_not_expire_before_it_is_published(context):
    """A long warm (hundreds of pages at regional scale) must not lose its first renders to
    the time limit before the browsers are even told of the version."""
    now = [0.0]
    cache = RenderCache(lambda: "v1", ttl_s=60, clock=lambda: now[0])
    cache.serve(("page", "v1"), lambda: answer(b"old"))
    cache.begin_warming("v2")
    cache.serve(("page", "v2"), lambda: answer(b"new"))

    now[0] = 200.0  # the warm took minutes
    assert not cache.holds(("page", "v1"))  # the served version's answers expire as before
    assert cache.holds(("page", "v2"))
    cache.restamp("v2")  # published now: its time limit starts
    now[0] = 259.0
    assert cache.holds(("page", "v2"))
    now[0] = 261.0
    assert not cache.holds(("page", "v2"))


def test_a_shared_answer_of_the_version_being_warmed_is_used_whatever_its_age(tmp_path):
    store = SnapshotStore(f"sqlite:///{tmp_path / 'store.sqlite'}")
    cache = RenderCache(lambda: "v1", shared=store, ttl_s=60)
    key = ("output", "[]", '"borough"', "v2")
    store.put_render(render_cache.shared_key(key), b'{"a": 1}', "application/json", "other")
    with store.engine.begin() as conn:  # rendered by another worker early in a long warm
        conn.execute(
            update(store_renders).values(
                stored_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)
            )
        )
    assert cache.fetch([key]) == {}  # too old for the version being served
    cache.begin_warming("v2")
    assert set(cache.fetch([key])) == {key}
    store.dispose()


TEAM_CHARTS = list(TEAM_PAGE.charts)


def team_page(token: str | None, scope: str) -> dict:
    return render_body(token, scope, tiles=TEAM_TILES, charts=TEAM_CHARTS)


def plant_old_freshness(cache: RenderCache, body: dict, version: str) -> None:
    """Make the answer ``cache`` keeps for ``body`` at ``version`` say its tiles were computed
    in 2000: a carried-over answer must not keep that line."""
    key, _scope = render_cache.request_key(body, version)
    found = cache.last_rendered(key[:-1])
    assert found is not None and found[0] == version
    planted = re.sub(
        rb"Computed \d\d \w+ \d{4} \d\d:\d\d", b"Computed 01 Jan 2000 00:00", found[1].body
    )
    assert planted != found[1].body
    cache.carry(key, found[1], planted)


def test_a_change_in_one_team_renders_that_teams_page_not_the_others(following, borough):
    """A workforce change in one team: that team's page is rendered again; another team's
    numbers and charts did not change, so its page is carried over with its tiles' freshness
    lines drawn for the new version: byte for byte what a fresh worker renders."""
    app, data = following
    cache = render_cache.of(app.server)
    director = logged_in(app, borough.director)
    changed_team = own_team(borough)
    other_team = next(
        f"team:{t}" for t in sorted(data.teams()["org_id"]) if f"team:{t}" != changed_team
    )
    old = data.served_token()
    before = {t: post(director, team_page(old, t)).data for t in (changed_team, other_team)}
    assert b"Computed" in before[other_team]
    plant_old_freshness(cache, team_page(old, other_team), old)
    assert halve_team_fte(borough.settings, changed_team) > 0
    rendered, carried = cache.warmed, cache.carried
    assert not refresh_datasets(borough.settings, ["workforce"]).failed
    final = data.version_token()
    wait_until(lambda: data.served_token() == final, "the refreshed workforce published")

    # Rendered: the changed team's page; carried over: the other's.
    assert (cache.warmed - rendered, cache.carried - carried) == (1, 1)
    assert callbacks.page_unchanged(data, team_page(None, other_team), old, final)
    assert not callbacks.page_unchanged(data, team_page(None, changed_team), old, final)
    misses = cache.misses
    after = {t: post(director, team_page(final, t)).data for t in (changed_team, other_team)}
    assert cache.misses == misses  # both answered from the warm
    assert shown(after[other_team]) == shown(before[other_team])
    assert shown(after[changed_team]) != shown(before[changed_team])  # caseloads per FTE doubled
    assert b"2000" not in after[other_team]
    workforce = data.store.latest("workforce").meta.computed_at
    assert f"Computed {components.format_time(workforce)}".encode() in after[other_team]
    fresh_worker = logged_in(create_app(borough.settings), borough.director)
    for team in (changed_team, other_team):
        assert after[team] == post(fresh_worker, team_page(final, team)).data, team


def test_a_refresh_that_changed_no_row_carries_every_page_over(following, borough):
    """The scheduler refreshes a dataset and no row changed: no page's numbers change, so
    none is rendered again; only the freshness lines are drawn again, in the same answer."""
    app, data = following
    cache = render_cache.of(app.server)
    director = logged_in(app, borough.director)
    team = own_team(borough)
    old = data.served_token()
    before = post(director, team_page(old, team)).data
    plant_old_freshness(cache, team_page(old, team), old)
    carried, rendered = cache.carried, cache.warmed
    report = refresh_datasets(borough.settings, ["workforce"])
    assert not report.failed
    final = data.version_token()
    assert final != old
    wait_until(lambda: data.served_token() == final, "the refreshed workforce published")
    assert cache.carried > carried and cache.warmed == rendered
    misses = cache.misses
    after = post(director, team_page(final, team)).data
    assert cache.misses == misses
    assert shown(after) == shown(before)
    assert b"2000" not in after
    fresh_worker = logged_in(create_app(borough.settings), borough.director)
    assert after == post(fresh_worker, team_page(final, team)).data
    assert callbacks.page_unchanged(data, team_page(None, team), old, final)


def list_digests(answer: bytes) -> dict:
    parts = json.loads(answer)["response"]
    return {k: v["data"] for k, v in parts.items() if json.loads(k).get("type") == "list-rows"}


def test_a_lists_answer_is_carried_over_only_when_its_rows_are(following, borough):
    """A child in one team's list is renamed: the team's count (and its tile) is the same, but
    its list's rows are not, so its lists' answer is rendered again with a new digest (the
    browser then asks for the rows); another team's list kept its rows: carried over."""
    app, data = following
    director = logged_in(app, borough.director)
    (listed,) = TEAM_PAGE.lists
    rows = {t: data.drilldown(listed, Scope.team(t)) for t in sorted(data.teams()["org_id"])}
    changed = next(t for t, frame in rows.items() if len(frame))
    person = int(rows[changed]["child_id"].iloc[0])
    other = next(
        t
        for t, frame in rows.items()
        if t != changed and len(frame) and person not in set(frame["child_id"])
    )
    scopes = {t: f"team:{t}" for t in (changed, other)}
    old = data.served_token()
    before = {t: post(director, lists_body([listed], old, s)).data for t, s in scopes.items()}
    renamed = change_source(
        borough.settings,
        "UPDATE people SET first_names = first_names || ' Renamed' WHERE person_id = ?",
        person,
    )
    assert renamed == 1
    assert not refresh_datasets(borough.settings, ["signoff_queue"]).failed
    final = data.version_token()
    wait_until(lambda: data.served_token() == final, "the refreshed sign-off queue published")

    tile = render_body(None, scopes[changed], tiles=[listed])
    assert callbacks.page_unchanged(data, tile, old, final)  # the same count: the same tile
    assert not callbacks.page_unchanged(
        data, lists_body([listed], None, scopes[changed]), old, final
    )
    assert callbacks.page_unchanged(data, lists_body([listed], None, scopes[other]), old, final)
    after = {t: post(director, lists_body([listed], final, s)).data for t, s in scopes.items()}
    assert list_digests(after[changed]) != list_digests(before[changed])
    assert list_digests(after[other]) == list_digests(before[other])
    fresh_worker = logged_in(create_app(borough.settings), borough.director)
    for t, s in scopes.items():
        assert after[t] == post(fresh_worker, lists_body([listed], final, s)).data, s
