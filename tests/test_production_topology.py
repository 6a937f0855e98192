"""The production topology, for real: gunicorn ``-w 4`` over a PostgreSQL store, one scheduler,
and a second scheduler started by mistake (issue 6, "Exactly once").

Refresh intervals are shortened to a few seconds by a copy of ``queries/`` with rewritten
headers, so several intervals pass within a test. Nothing is timed: the tests count snapshots
per interval and compare what the workers serve.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from topology import (
    Topology,
    Web,
    fast_queries,
    latest_good_versions,
    login,
    snapshot_rows,
    wait_until,
)

from dashboard.demo import generate_borough
from dashboard.demo_users import create_demo_users

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

AS_OF = dt.date(2026, 11, 25)
POPULATION = 2_000  # a small borough: every dataset refreshes in well under a second
INTERVAL_S = 8  # every dataset's refresh interval in these tests
WINDOW_INTERVALS = 4
USER = "admin"  # the demo admin: sees the borough


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("production") / "source.sqlite"
    url = f"sqlite:///{path}"
    generate_borough(url, population=POPULATION, years=6, seed=42, as_of=AS_OF)
    return url


@pytest.fixture
def top(tmp_path: Path, demo_source: str, pg_url: str) -> Iterator[Topology]:
    queries = fast_queries(tmp_path / "queries", f"{INTERVAL_S}s")
    create_demo_users(pg_url, demo_source, AS_OF, queries_dir=queries)
    with Topology(
        tmp_path / "logs",
        source_url=demo_source,
        store_url=pg_url,
        queries_dir=str(queries),
        as_of=AS_OF.isoformat(),
        demo="true",
        child_population=str(POPULATION),
    ) as topology:
        yield topology


def browser(web: Web) -> requests.Session:
    session = requests.Session()
    login(session, web.url, USER)
    return session


def every_dataset_refreshed(store_url: str, datasets: set[str]) -> bool:
    return datasets <= set(latest_good_versions(store_url))


def dataset_ids() -> set[str]:
    return {path.stem for path in (Path(__file__).parent.parent / "queries").glob("*.sql")}


def runs_per_dataset(store_url: str, start: dt.datetime, end: dt.datetime) -> Counter[str]:
    """Refresh attempts that started in [start, end), per dataset."""
    return Counter(
        row["dataset_id"]
        for row in snapshot_rows(store_url)
        if start <= row["computed_at"].astimezone(dt.UTC) < end
    )


def count_over_window(store_url: str, intervals: int) -> Counter[str]:
    start = dt.datetime.now(dt.UTC)
    end = start + dt.timedelta(seconds=intervals * INTERVAL_S)
    wait_until(lambda: dt.datetime.now(dt.UTC) >= end, "the counting window", intervals * 60)
    time.sleep(1)  # a run that started just before ``end`` has committed
    return runs_per_dataset(store_url, start, end)


def assert_once_per_interval(counts: Counter[str], intervals: int) -> None:
    # A window of k intervals holds k scheduled runs of each dataset, one more or less at its
    # edges; two active schedulers would make about 2k.
    wrong = {d: n for d, n in counts.items() if not intervals - 1 <= n <= intervals + 1}
    assert not wrong, f"runs per dataset over {intervals} intervals: {dict(counts)}"
    assert set(counts) == dataset_ids(), f"datasets that never ran: {dataset_ids() - set(counts)}"


def burst(url: str, path: str, count: int, cookies: dict[str, str]) -> list[requests.Response]:
    """``count`` GETs at once (16 in flight), so every worker gets some."""

    def get(_: int) -> requests.Response:
        return requests.get(f"{url}{path}", cookies=cookies, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return list(pool.map(get, range(count)))


def served(response: requests.Response) -> dict[str, dt.datetime]:
    """The computed_at of each dataset's snapshot a /health answer was served from."""
    assert response.status_code == 200, response.text[:500]
    return {
        d["dataset_id"]: dt.datetime.fromisoformat(d["computed_at"])
        for d in response.json()["datasets"]
        if d.get("computed_at")
    }


def published(web: Web, since: int) -> dict[int, str]:
    """The version each of web's workers published last (its preloader's log line)."""
    latest: dict[int, str] = {}
    for record in web.proc.records(since):
        found = re.search(r"snapshots preloaded version=(.*) waited_s=", record.get("msg", ""))
        if found:
            latest[record["pid"]] = found.group(1)
    return latest


def good_in(store_url: str, token: str) -> dict[str, dt.datetime]:
    """Each dataset's latest good snapshot (its computed_at) in the store's version ``token``:
    among the snapshots up to the largest id the token names."""
    last_id = int(token.split("|")[0])
    latest: dict[str, tuple[int, dt.datetime]] = {}
    for row in snapshot_rows(store_url):
        if row["status"] != "ok" or row["snapshot_id"] > last_id:
            continue
        if row["version"] > latest.get(row["dataset_id"], (0,))[0]:
            latest[row["dataset_id"]] = (row["version"], row["computed_at"].astimezone(dt.UTC))
    return {d: at for d, (_version, at) in latest.items()}


def agreeing_burst(web: Web, store_url: str, cookies: dict[str, str]) -> dict[str, dt.datetime]:
    """A burst of /health, answered by all of web's workers, while every worker has published
    the same version and none publishes another meanwhile; every answer must show exactly that
    version's snapshots. Returns their computed_at. (Between a refresh and the last worker's
    publishing, answers may differ legitimately: each worker loads a new version in its own
    time, and holds it back until the scheduler has written the history that goes with it.)"""

    def attempt() -> dict[str, dt.datetime] | None:
        mark = web.proc.mark()
        shown = published(web, 0)
        if set(shown) != web.worker_pids() or len(set(shown.values())) != 1:
            return None  # a new version being published: again
        answers = burst(web.url, "/health", 64, cookies)
        time.sleep(2)  # a worker that loaded a newer version mid-burst has published it by now
        if published(web, 0) != shown:
            return None  # so its answers may be of either version: again
        expected = good_in(store_url, next(iter(shown.values())))
        wrong = [s for s in map(served, answers) if s != expected]
        assert not wrong, f"a worker served other snapshots: {wrong[0]} vs {expected}"
        workers = {r["pid"] for r in web.access(mark) if r.get("path") == "/health"}
        return expected if workers == web.worker_pids() else None

    return wait_until(attempt, f"a burst answered by all {web.workers} workers", every=0)


def indicators(web: Web, session: requests.Session) -> list[tuple]:
    response = session.get(f"{web.url}/api/indicators?scope=borough", timeout=60)
    assert response.status_code == 200, response.text[:500]
    return [(v["id"], v["value"], v["computed_at"], v["status"]) for v in response.json()]


def test_each_dataset_refreshes_once_per_interval_and_every_worker_serves_the_same_version(
    top: Topology,
) -> None:
    store_url = top.settings["store_url"]
    web = top.web("web-a", workers=4)
    active = top.scheduler("scheduler-a")
    active.wait_for("scheduler status=running")
    standby = top.scheduler("scheduler-b")  # started by mistake
    standby.wait_for("scheduler status=standby")
    wait_until(lambda: every_dataset_refreshed(store_url, dataset_ids()), "a first refresh")

    assert_once_per_interval(count_over_window(store_url, WINDOW_INTERVALS), WINDOW_INTERVALS)
    assert "refresh dataset=" not in standby.text()  # the standby ran nothing
    assert "status=running" not in standby.text()

    session = browser(web)
    versions = agreeing_burst(web, store_url, session.cookies.get_dict())
    assert set(versions) == dataset_ids()

    # With the schedulers stopped (a quiet store), every worker of this server and a second
    # app server on another port over the same store give the same numbers, computed_at too.
    for scheduler in (standby, active):
        scheduler.signal(signal.SIGTERM)
        assert scheduler.wait() == 0
    other = top.web("web-b", workers=2)
    other_session = browser(other)
    answers = {tuple(indicators(web, session)) for _ in range(8)}
    answers |= {tuple(indicators(other, other_session)) for _ in range(4)}
    assert len(answers) == 1, "app servers or workers disagree on the numbers"
    values = {i: v for i, v, _computed_at, _status in answers.pop()}
    assert values["open_cases"] is not None and values["open_cases"] > 0


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_the_standby_takes_over_when_the_active_scheduler_dies(
    top: Topology, kill: signal.Signals
) -> None:
    store_url = top.settings["store_url"]
    active = top.scheduler("scheduler-a")
    active.wait_for("scheduler status=running")
    standby = top.scheduler("scheduler-b")
    standby.wait_for("scheduler status=standby")
    wait_until(lambda: every_dataset_refreshed(store_url, dataset_ids()), "a first refresh")

    active.signal(kill)
    assert active.wait() == (0 if kill == signal.SIGTERM else -signal.SIGKILL)
    died = dt.datetime.now(dt.UTC)
    standby.wait_for("scheduler status=running")
    wait_until(
        lambda: set(runs_per_dataset(store_url, died, dt.datetime.now(dt.UTC))) == dataset_ids(),
        "every dataset refreshed by the new active scheduler",
    )
    # Once per interval under the new scheduler, as under the old one.
    assert_once_per_interval(count_over_window(store_url, WINDOW_INTERVALS), WINDOW_INTERVALS)


def test_every_worker_loads_a_new_snapshot_before_any_request_asks(top: Topology) -> None:
    """The first page view after a refresh must not pay for reading the new snapshot: each
    gunicorn worker's preloader (``post_worker_init``) loads it within a second or so of it
    landing, with no request sent to that worker."""
    from dashboard.store import SnapshotStore

    store_url = top.settings["store_url"]
    web = top.web("web", workers=3)  # over an empty store: nothing to load yet
    mark = web.proc.mark()
    scheduler = top.scheduler("scheduler")
    wait_until(lambda: every_dataset_refreshed(store_url, dataset_ids()), "a first refresh")
    scheduler.wait_for("history recorded")
    scheduler.signal(signal.SIGTERM)  # a quiet store: one version to load
    assert scheduler.wait() == 0
    store = SnapshotStore(store_url)
    token = store.version_token()
    store.dispose()

    def loaded() -> dict[int, str] | None:
        latest = published(web, mark)
        done = set(latest) == web.worker_pids() and set(latest.values()) == {token}
        return latest if done else None

    # The test sends no request after the start-up check (made before any snapshot existed).
    wait_until(loaded, "every worker to preload the store's latest version")
