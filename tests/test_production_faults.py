"""Faults the production topology survives (issue 6, "Faults survived"), each for real.

The source or the store is put behind a ``FaultProxy`` on 127.0.0.1 and cut and restored, so a
database becomes "unreachable" or "restarts" for the topology alone; the shared PostgreSQL
server itself is never stopped. The scheduler is killed with SIGKILL while PostgreSQL shows its
snapshot transaction open. Nothing is timed: the tests wait for states and check them.
"""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from faultproxy import FaultProxy
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from topology import (
    Topology,
    Web,
    fast_queries,
    latest_good,
    login,
    poll_body,
    snapshot_rows,
    store_url_via,
    tiles_body,
    wait_until,
)

from dashboard.demo import generate_borough
from dashboard.demo_users import create_demo_users
from dashboard.store import SnapshotStore
from layouts import all_pages

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

AS_OF = dt.date(2026, 11, 25)
POPULATION = 2_000
INTERVAL_S = 6
USER = "admin"
DATASETS = {path.stem for path in (Path(__file__).parent.parent / "queries").glob("*.sql")}
PAGES = ("/", "/team", "/budget", "/borough", "/quality")

# A query no source answers within a second on any database: a cross join of about 20 billion
# rows, counted. Plain SQL, so it runs unchanged on SQLite and PostgreSQL.
RUNAWAY_SQL = """\
-- title: A query that runs past its statement timeout
-- refresh: {every}
-- timeout: 1s
-- columns:
--   n: int
SELECT COUNT(*) AS n
FROM workflow_steps a CROSS JOIN workflow_steps b CROSS JOIN workflow_step_types c
"""
# About 2.4 million rows: its snapshot takes long enough to write that the scheduler can be
# killed while PostgreSQL shows the write transaction open.
BULKY_SQL = """\
-- title: A big dataset (slow to write)
-- refresh: {every}
-- columns:
--   workflow_step_id: int
--   person_id: int
--   step_status: str
--   org_name: str
--   step_type_id: int
SELECT a.workflow_step_id, a.person_id, a.step_status, b.name AS org_name,
       c.workflow_step_type_id AS step_type_id
FROM workflow_steps a CROSS JOIN organisations b CROSS JOIN workflow_step_types c
"""


@pytest.fixture
def pg_source(make_pg_database: Callable[[], str]) -> str:
    url = make_pg_database()
    generate_borough(url, population=POPULATION, years=6, seed=42, as_of=AS_OF)
    return url


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", make_url_port()) as running:
        yield running


def make_url_port() -> int:
    from tests.conftest import PG_ADMIN_URL

    return make_url(PG_ADMIN_URL).port or 5432


def topology(tmp_path: Path, source_url: str, store_url: str, **extra: str) -> Topology:
    """A topology whose datasets refresh every INTERVAL_S, plus ``extra`` dataset files."""
    queries = fast_queries(tmp_path / "queries", f"{INTERVAL_S}s", extra)
    create_demo_users(store_url, source_url, AS_OF, queries_dir=queries)
    store = SnapshotStore(store_url)
    store.create_schema()  # so the tests can read the store before the first refresh
    store.dispose()
    return Topology(
        tmp_path / "logs",
        source_url=source_url,
        store_url=store_url,
        queries_dir=str(queries),
        as_of=AS_OF.isoformat(),
        demo="true",
        child_population=str(POPULATION),
    )


def browser(web: Web) -> requests.Session:
    session = requests.Session()
    assert login(session, web.url, USER), "the app has no login form"
    session.headers["Origin"] = web.url  # a browser's POSTs name their origin
    return session


def last_attempts(store_url: str) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for row in snapshot_rows(store_url):
        latest[row["dataset_id"]] = row
    return latest


def indicator_values(web: Web, session: requests.Session) -> dict[str, dict]:
    answer = session.get(f"{web.url}/api/indicators?scope=borough", timeout=60)
    assert answer.status_code == 200, answer.text[:500]
    return {v["id"]: v for v in answer.json()}


def served_values(
    web: Web, session: requests.Session, ready: Callable[[dict[str, dict]], bool], what: str
) -> dict[str, dict]:
    """The API's values once ``ready(values)`` holds: each worker serves a new snapshot once
    its preloader has loaded it, a second or so after it lands in the store."""

    def values() -> dict[str, dict] | None:
        found = indicator_values(web, session)
        return found if ready(found) else None

    return wait_until(values, what)


def every_dataset_served(values: dict[str, dict]) -> bool:
    """Is every value computed from a snapshot (none waiting for its dataset's first one)?"""
    return values["open_cases"]["value"] is not None and not any(
        "no good snapshot" in (value.get("error") or "") for value in values.values()
    )


def page_tiles(tier: str) -> list[str]:
    return list(next(p for p in all_pages() if p.id == tier).tiles)


def every_route(web: Web, session: requests.Session) -> dict[str, int]:
    """Status of every kind of route a browser uses: pages, Dash's endpoints, API, health,
    a download, the version poll and a tile update."""
    statuses = {}
    for path in (*PAGES, "/_dash-layout", "/_dash-dependencies", "/health", "/api/indicators"):
        statuses[path] = session.get(f"{web.url}{path}", timeout=60).status_code
    download = "/download/overdue_steps.csv?scope=borough"
    statuses[download] = session.get(f"{web.url}{download}", timeout=60).status_code
    update = f"{web.url}/_dash-update-component"
    statuses["poll"] = session.post(update, json=poll_body("old"), timeout=60).status_code
    tiles = tiles_body(page_tiles("borough"), "old", "borough")
    statuses["tiles"] = session.post(update, json=tiles, timeout=60).status_code
    return statuses


def test_an_unreachable_source_keeps_last_good_values_stale_and_recovers_within_an_interval(
    tmp_path: Path, pg_source: str, pg_url: str, proxy: FaultProxy
) -> None:
    source_via_proxy = store_url_via(pg_source, proxy.port)
    with topology(tmp_path, source_via_proxy, pg_url) as top:
        web = top.web(workers=2)
        scheduler = top.scheduler()
        wait_until(lambda: DATASETS <= set(latest_good(pg_url)), "a first refresh")
        session = browser(web)
        # Every dataset's first snapshot served (a worker publishes the versions it has
        # warmed, a little after the store has them): no value still waiting for its data.
        good = served_values(web, session, every_dataset_served, "the first snapshots")
        assert good["open_cases"]["value"] > 0 and not good["open_cases"]["stale"]

        proxy.cut()
        cut_at = dt.datetime.now(dt.UTC)
        wait_until(
            lambda: all(r["status"] == "failed" for r in last_attempts(pg_url).values()),
            "every dataset's next run to fail",
        )
        errors = {d: r["error"] for d, r in last_attempts(pg_url).items()}
        assert all(e.startswith("source unreachable") for e in errors.values()), errors

        measured = [i for i, value in good.items() if value["status"] == "ok"]
        during = served_values(
            web, session, lambda v: all(v[i]["stale"] for i in measured), "the failures served"
        )
        statuses = every_route(web, session)
        assert all(status < 500 for status in statuses.values()), statuses
        assert statuses["/api/indicators"] == 200 and statuses["/health"] == 200
        for indicator_id, before in good.items():
            now = during[indicator_id]
            assert now["value"] == before["value"], indicator_id  # the last good value
            # From the last good snapshots: those read above, or one that landed between that
            # read and the cut (the source does not change here, so its values are the same).
            if before["computed_at"] is not None:
                computed = dt.datetime.fromisoformat(now["computed_at"])
                assert dt.datetime.fromisoformat(before["computed_at"]) <= computed <= cut_at
            if before["status"] == "ok":
                assert now["stale"] is True and now["status"] == "failed", now
                assert "source unreachable" in now["error"]
        health = session.get(f"{web.url}/health", timeout=60).json()
        assert {d["status"] for d in health["datasets"]} == {"failed"}
        tiles = session.post(
            f"{web.url}/_dash-update-component",
            json=tiles_body(page_tiles("borough"), "new", "borough"),
            timeout=60,
        ).text
        assert "Stale since" in tiles and "Refresh failed: last good value" in tiles

        restored = dt.datetime.now(dt.UTC)
        proxy.restore()
        wait_until(
            lambda: all(r["status"] == "ok" for r in last_attempts(pg_url).values()),
            "every dataset to refresh again",
        )
        # Recovery within one interval: each dataset's first run after the restore succeeded,
        # and it was its next scheduled run (it started within one interval of the restore).
        for dataset_id in DATASETS:
            runs = [
                r
                for r in snapshot_rows(pg_url)
                if r["dataset_id"] == dataset_id and r["computed_at"] >= restored
            ]
            assert runs[0]["status"] == "ok", runs[0]
            assert runs[0]["computed_at"] - restored <= dt.timedelta(seconds=INTERVAL_S + 1)
        after = served_values(
            web, session, lambda v: not v["open_cases"]["stale"], "the recovered runs served"
        )
        assert after["open_cases"]["status"] == "ok"
        assert after["open_cases"]["value"] == good["open_cases"]["value"]
        assert "Traceback" not in scheduler.text()


def test_a_query_past_its_statement_timeout_fails_alone_and_is_cancelled(
    tmp_path: Path, pg_source: str, pg_url: str
) -> None:
    runaway = RUNAWAY_SQL.format(every=f"{INTERVAL_S}s")
    with topology(tmp_path, pg_source, pg_url, runaway=runaway) as top:
        web = top.web(workers=2)
        top.scheduler()
        wait_until(
            lambda: "runaway" in last_attempts(pg_url) and DATASETS <= set(latest_good(pg_url)),
            "a first refresh",
        )
        attempts = last_attempts(pg_url)
        assert attempts["runaway"]["status"] == "failed"
        assert attempts["runaway"]["error"] == "runaway.sql: timed out after 1 s"
        assert all(attempts[d]["status"] == "ok" for d in DATASETS)
        # PostgreSQL cancelled it: no statement of the refresher is still running.
        engine = create_engine(pg_source)
        try:
            with engine.connect() as conn:
                running = conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = :db"
                        " AND state = 'active' AND query LIKE '%CROSS JOIN workflow_steps b%'"
                        " AND pid <> pg_backend_pid()"
                    ),
                    {"db": make_url(pg_source).database},
                )
        finally:
            engine.dispose()
        assert running <= 1  # at most the next interval's run, which is cancelled in turn

        session = browser(web)

        def served_health() -> dict[str, dict] | None:
            """/health once the worker serves the failed run (a second or so after it lands)."""
            found = session.get(f"{web.url}/health", timeout=60).json()["datasets"]
            health = {d["dataset_id"]: d for d in found}
            return health if health.get("runaway", {}).get("status") != "never" else None

        health = wait_until(served_health, "the runaway's failure served")
        assert health["runaway"]["status"] == "failed"  # (the public health check names no error)
        assert all(health[d]["status"] == "ok" for d in DATASETS)
        values = indicator_values(web, session)
        assert values["open_cases"]["status"] == "ok" and values["open_cases"]["value"] > 0


def _open_snapshot_write(store_url: str, conn) -> bool:  # noqa: ANN001 - a SQLAlchemy Connection
    """Does some session hold a store transaction open after inserting a snapshot row?"""
    found = conn.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = :db"
            " AND pid <> pg_backend_pid() AND state = 'idle in transaction'"
            " AND (query LIKE 'INSERT INTO store_snapshots%'"
            "      OR query LIKE 'INSERT INTO store_frames%')"
        ),
        {"db": make_url(store_url).database},
    )
    return bool(found)


def test_a_scheduler_killed_while_writing_a_snapshot_leaves_the_store_consistent(
    tmp_path: Path, pg_source: str, pg_url: str
) -> None:
    bulky = BULKY_SQL.format(every="10s")
    with topology(tmp_path, pg_source, pg_url, bulky=bulky) as top:
        first = top.scheduler("scheduler-1")
        wait_until(lambda: "bulky" in latest_good(pg_url), "the first bulky snapshot")
        good_version, _ = latest_good(pg_url)["bulky"]

        watcher = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with watcher.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                wait_until(
                    lambda: _open_snapshot_write(pg_url, conn),
                    "the next bulky snapshot's write transaction",
                    every=0.005,
                )
                first.signal(signal.SIGKILL)
                assert first.wait() == -signal.SIGKILL
        finally:
            watcher.dispose()

        # Nothing half-written: the killed version is absent, the last good one readable, and
        # every stored frame has the rows its metadata says.
        rows = [r for r in snapshot_rows(pg_url) if r["dataset_id"] == "bulky"]
        assert max(r["version"] for r in rows) == good_version
        _assert_consistent(pg_url)

        second = top.scheduler("scheduler-2")
        second.wait_for("scheduler status=running")
        wait_until(
            lambda: latest_good(pg_url)["bulky"][0] > good_version, "the next bulky snapshot"
        )
        _assert_consistent(pg_url)


def _assert_consistent(store_url: str) -> None:
    store = SnapshotStore(store_url)
    try:
        for dataset_id, status in store.status().items():
            if status.last_good is None:
                continue
            snapshot = store.latest(dataset_id)
            assert snapshot is not None, dataset_id
            assert snapshot.meta.row_count == len(snapshot.frame), dataset_id
        engine = store.engine
        with engine.connect() as conn:
            orphans = conn.scalar(
                text(
                    "SELECT count(*) FROM store_frames f LEFT JOIN store_snapshots s"
                    " ON s.snapshot_id = f.snapshot_id WHERE s.snapshot_id IS NULL"
                    " OR s.status <> 'ok'"
                )
            )
        assert orphans == 0
    finally:
        store.dispose()


def test_the_web_workers_and_the_scheduler_ride_out_a_store_restart(
    tmp_path: Path, demo_sqlite_source: str, pg_url: str, proxy: FaultProxy
) -> None:
    store_via_proxy = store_url_via(pg_url, proxy.port)
    with topology(tmp_path, demo_sqlite_source, store_via_proxy) as top:
        web = top.web(workers=2)
        scheduler = top.scheduler()
        wait_until(lambda: DATASETS <= set(latest_good(pg_url)), "a first refresh")
        session = browser(web)
        before = served_values(web, session, every_dataset_served, "the first snapshots")
        workers = web.worker_pids()

        proxy.cut()
        down = every_route(web, session)
        # A worker may answer from the snapshots it holds until its preloader's next look at
        # the store (every second) fails; then it answers 503. Never another error.
        assert all(status in (200, 204, 503) for status in down.values()), down
        assert down["/health"] == 503, down
        api = f"{web.url}/api/indicators"
        wait_until(
            lambda: all(session.get(api, timeout=60).status_code == 503 for _ in range(4)),
            "the workers to see that the store is down",
        )
        down = every_route(web, session)
        assert all(status in (200, 204, 503) for status in down.values()), down
        assert down["/api/indicators"] == 503, down
        scheduler.wait_for("scheduler status=lock_lost")

        mark = scheduler.mark()
        restored = dt.datetime.now(dt.UTC)
        proxy.restore()
        # The same workers answer again on their own, with the same numbers.
        wait_until(
            lambda: session.get(f"{web.url}/health", timeout=60).status_code == 200,
            "the web workers to reach the store again",
        )
        up = every_route(web, session)
        assert all(status in (200, 204) for status in up.values()), up
        assert (
            indicator_values(web, session)["open_cases"]["value"] == (before["open_cases"]["value"])
        )
        assert web.worker_pids() == workers  # no worker was restarted
        assert web.proc.alive
        # The scheduler takes its lock again and carries on refreshing.
        scheduler.wait_for("scheduler status=running", after=mark)
        wait_until(
            lambda: all(at >= restored for _v, at in latest_good(pg_url).values()),
            "every dataset refreshed after the restore",
        )


@pytest.fixture
def demo_sqlite_source(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    generate_borough(url, population=POPULATION, years=6, seed=42, as_of=AS_OF)
    return url


def test_the_lock_session_notices_a_dead_network_path_at_both_ends(pg_url: str) -> None:
    """A silently dropped lock connection must end within about a minute on the server (which
    frees the lock) and on the scheduler (which stops its jobs), not after TCP's defaults of
    two hours and fifteen minutes; a cut proxy cannot drop packets silently, so this checks the
    lock session's settings as the server sees them."""
    from dashboard.locks import PostgresSchedulerLock

    lock = PostgresSchedulerLock(pg_url)
    try:
        assert lock.acquire()
        shown = {
            name: lock._conn.scalar(text(f"SHOW {name}"))
            for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
        }
        assert shown == {
            "tcp_keepalives_idle": "30",
            "tcp_keepalives_interval": "10",
            "tcp_keepalives_count": "3",
        }
        assert lock._conn.scalar(text("SHOW tcp_user_timeout")) == "60000"  # ms
    finally:
        lock.close()
