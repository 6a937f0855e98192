"""Renders shared between web workers through the store: each page of a version rendered by one
worker, read by the others, and still only served to users who may see its scope."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import func, select, update

from dashboard.history import HistoryRecorder
from dashboard.refresher import refresh_datasets
from dashboard.store import SnapshotStore, store_renders
from dashboard.web import context as web_context
from dashboard.web import render_cache
from dashboard.web.app import create_app
from dashboard.web.render_cache import RenderCache, request_key, shared_key
from layouts import all_pages
from tests.topology import tiles_body, wait_until
from tests.web_support import (
    change_source,
    copy_sqlite_source,
    demo_borough,
    halve_team_fte,
    logged_in,
    shown,
)

TEAM_TILES = list(next(p for p in all_pages() if p.id == "team").tiles)


@pytest.fixture(scope="module")
def borough(small_demo_source_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("render-shared")
    source = copy_sqlite_source(small_demo_source_url, folder / "source")
    # Shared renders are on by default with PostgreSQL; this store is SQLite, so say so.
    return demo_borough(source, folder / "store", shared_renders=True)


@pytest.fixture
def store(borough):
    store = SnapshotStore.from_settings(borough.settings)
    store.prune_renders(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))  # an empty table
    yield store
    store.dispose()


def post(client, body):
    return client.post("/_dash-update-component", json=body)


def own_team(borough) -> str:
    user = next(u for u in borough.users if u.username == borough.team_manager)
    return "team:" + user.scope.split("team ")[1].split()[0].strip("(),")


def shared_rows(store) -> int:
    with store.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(store_renders))


def test_a_page_one_worker_rendered_is_served_by_another_without_rendering(borough, store):
    first, second = create_app(borough.settings), create_app(borough.settings)
    scope = own_team(borough)

    one = post(logged_in(first, borough.director), tiles_body(TEAM_TILES, None, scope))
    other = post(logged_in(second, borough.director), tiles_body(TEAM_TILES, None, scope))

    assert one.status_code == other.status_code == 200
    assert b"tile--" in one.data
    assert render_cache.of(first.server).misses == 1
    cache = render_cache.of(second.server)
    assert (cache.misses, cache.fetched) == (0, 1)  # read from the store, not rendered
    assert other.data == one.data
    assert shared_rows(store) == 1


def test_a_shared_answer_is_still_refused_to_a_user_who_may_not_see_its_scope(borough, store):
    first, second = create_app(borough.settings), create_app(borough.settings)
    other_team = next(
        f"team:{int(t)}"
        for t in web_context.of(first.server).data.teams()["org_id"]
        if f"team:{int(t)}" != own_team(borough)
    )
    assert post(logged_in(first, borough.director), tiles_body(TEAM_TILES, None, other_team))
    assert shared_rows(store) == 1

    refused = post(
        logged_in(second, borough.team_manager), tiles_body(TEAM_TILES, None, other_team)
    )
    anonymous = post(second.server.test_client(), tiles_body(TEAM_TILES, None, other_team))

    assert refused.status_code == 403 and anonymous.status_code == 401
    for answer in (refused, anonymous):
        assert b"tile--" not in answer.data and b"Computed" not in answer.data
    assert render_cache.of(second.server).fetched == 0


def test_each_page_of_a_new_version_is_rendered_by_one_worker(borough, store):
    """Two workers following the store, both with the page open: for each new version the
    page is rendered once in all (one claim per version), and both serve the same bytes, what
    a fresh worker renders."""
    workers = [create_app(borough.settings) for _ in range(2)]
    datas = [web_context.of(app.server).data for app in workers]
    stops = [data.preload(0.05, stale_after_s=30) for data in datas]
    try:
        for data in datas:
            wait_until(lambda d=data: d.served_token() is not None, "a version published")
        scope = own_team(borough)
        clients = [logged_in(app, borough.director) for app in workers]
        for client in clients:
            assert post(client, tiles_body(TEAM_TILES, None, scope)).status_code == 200
        caches = [render_cache.of(app.server) for app in workers]
        misses = sum(c.misses for c in caches)
        store.prune_renders(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        assert halve_team_fte(borough.settings, scope) > 0  # the team now works half time
        recorder = HistoryRecorder(borough.settings)
        report = refresh_datasets(
            borough.settings, ["workforce"], store=store, after_refresh=recorder
        )
        assert report.after_refresh_error is None
        final = store.version_token()
        for data in datas:
            wait_until(lambda d=data: d.served_token() == final, "the new version published")

        rendered = sum(c.misses for c in caches) - misses
        assert rendered >= 1
        assert rendered == shared_rows(store)  # one render per claimed (page, version)
        assert sum(c.fetched for c in caches) >= 1  # the other worker read it
        key, _scope = request_key(tiles_body(TEAM_TILES, None, scope), final)
        assert all(c.holds(key) for c in caches)
        answers = [post(client, tiles_body(TEAM_TILES, final, scope)) for client in clients]
        fresh = create_app(borough.settings.model_copy(update={"shared_renders": False}))
        expected = post(logged_in(fresh, borough.director), tiles_body(TEAM_TILES, None, scope))
        assert answers[0].data == answers[1].data == expected.data
        assert sum(c.misses for c in caches) - misses == rendered  # served, not made
    finally:
        for stop in stops:
            stop()


def test_a_claimed_render_that_never_comes_is_rendered_after_the_wait(
    borough, store, monkeypatch, caplog
):
    monkeypatch.setattr(render_cache, "SHARED_WAIT_S", 0.3)
    app = create_app(borough.settings)
    data = web_context.of(app.server).data
    scope = own_team(borough)
    token = data.version_token()
    assert post(logged_in(app, borough.director), tiles_body(TEAM_TILES, None, scope))
    store.prune_renders(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    refresh_datasets(borough.settings, ["workforce"], store=store)
    new = store.version_token()
    assert new != token
    key, _scope = request_key(tiles_body(TEAM_TILES, None, scope), new)
    assert store.claim_render(shared_key(key), "a worker that died")
    cache = render_cache.of(app.server)
    warm = data._warmers[0]

    with caplog.at_level(logging.WARNING, logger="dashboard.web.render_cache"):
        rendered = warm(new, lambda: False)

    assert rendered == 1 and cache.holds(key)
    assert "claimed renders never came" in caplog.text


# ----------------------------------------------------------------------------- the store's table


def test_the_store_gives_each_render_to_one_claimant_and_keeps_its_bytes(any_db_url):
    store = SnapshotStore(any_db_url)
    body = b'{"response": "' + b"x" * 5000 + b'"}'

    assert store.claim_render("k1", "worker-a") is True
    assert store.claim_render("k1", "worker-b") is False
    assert store.renders(["k1"]) == {}  # claimed, not rendered yet
    store.put_render("k1", body, "application/json", "worker-a")
    store.put_render("k2", b"{}", "application/json", "worker-b")  # unclaimed: kept too
    found = store.renders(["k1", "k2", "k3"])

    assert set(found) == {"k1", "k2"}
    assert found["k1"].body == body and found["k1"].mimetype == "application/json"
    assert abs((dt.datetime.now(dt.UTC) - found["k1"].stored_at).total_seconds()) < 60
    with store.engine.connect() as conn:  # compressed in the table
        stored = conn.scalar(select(store_renders.c.body).where(store_renders.c.key == "k1"))
    assert len(stored) < len(body) / 10
    store.put_render("k1", b"{}", "application/json", "worker-b")
    assert store.renders(["k1"])["k1"].body == b"{}"
    with store.engine.begin() as conn:
        conn.execute(
            update(store_renders)
            .where(store_renders.c.key == "k1")
            .values(claimed_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        )
    assert store.prune_renders(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)) == 1
    assert set(store.renders(["k1", "k2"])) == {"k2"}
    store.dispose()


def test_a_shared_answer_older_than_the_time_limit_is_not_used(tmp_path):
    store = SnapshotStore(f"sqlite:///{tmp_path / 'store.sqlite'}")
    cache = RenderCache(lambda: "v1", shared=store, ttl_s=60)
    key = ("output", "[]", '"borough"', "v1")
    store.put_render(shared_key(key), b'{"a": 1}', "application/json", "another worker")
    assert set(cache.fetch([key])) == {key}
    cache.clear()
    with store.engine.begin() as conn:
        conn.execute(
            update(store_renders).values(
                stored_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
            )
        )

    assert cache.fetch([key]) == {}
    assert not cache.holds(key)
    store.dispose()


def rename_a_worker(settings, team_scope: str) -> int:
    """Add a letter to the first names of one current worker of ``team_scope``: the workforce
    snapshot changes, and no number shown does (a name is only in the drill-down's rows)."""
    return change_source(
        settings,
        "UPDATE workers SET first_names = first_names || 'e' WHERE worker_id = (SELECT "
        "worker_id FROM worker_roles WHERE org_id = ? AND end_date IS NULL LIMIT 1)",
        int(team_scope.split(":")[1]),
    )


def test_a_page_another_worker_rendered_is_carried_over_when_its_numbers_did_not_change(
    borough, store
):
    """Worker 1 rendered team A's page; worker 2 the borough's tiles (worker 1 read them from
    the store). A worker of team A is renamed: the workforce changed, no number did. Worker 1,
    warming the new version, carries both pages over: A's by comparing what its measures give
    with what they gave when it rendered A; the borough's (which it never computed) by computing
    what it showed from the state the new one replaced. Both answers are what a fresh worker
    renders, byte for byte; worker 2, which does not follow the store here, renders the same
    bytes itself. Against the old version's answers only the numbers are compared: a freshness
    line says when its snapshot was computed, and the new one may be a minute later."""
    first, second = create_app(borough.settings), create_app(borough.settings)
    data = web_context.of(first.server).data
    team = own_team(borough)
    stop = data.preload(0.05, stale_after_s=30)
    try:
        wait_until(lambda: data.served_token() is not None, "a version published")
        one, two = logged_in(first, borough.director), logged_in(second, borough.director)
        old = data.served_token()
        pages = {
            team: tiles_body(TEAM_TILES, old, team),
            "borough": tiles_body(TEAM_TILES, old, "borough"),
        }
        before = {}
        for client, scope in ((one, team), (two, "borough"), (one, "borough")):
            answer = post(client, pages[scope])
            assert answer.status_code == 200
            before[scope] = answer.data
        cache = render_cache.of(first.server)
        assert (cache.misses, cache.fetched) == (1, 1)  # A rendered here, the borough read
        rendered, carried = cache.warmed, cache.carried
        assert rename_a_worker(borough.settings, team) == 1
        assert not refresh_datasets(borough.settings, ["workforce"], store=store).failed
        final = store.version_token()
        wait_until(lambda: data.served_token() == final, "the new version published")

        assert (cache.warmed - rendered, cache.carried - carried) == (0, 2)
        fresh = create_app(borough.settings.model_copy(update={"shared_renders": False}))
        viewer = logged_in(fresh, borough.director)
        for scope in before:
            body = tiles_body(TEAM_TILES, final, scope)
            carried, rendered = post(one, body).data, post(viewer, body).data
            assert carried == rendered and shown(carried) == shown(before[scope]), scope
        team_now = tiles_body(TEAM_TILES, final, team)
        assert post(two, team_now).data == post(viewer, team_now).data
    finally:
        stop()
