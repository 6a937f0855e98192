"""Load: simulated browsers against the real production topology, and end-to-end freshness.

Starts what production runs (``tests/topology.py``): gunicorn ``-c deploy/gunicorn.conf.py -w 4``
and one ``csc-dashboard scheduler`` over a new PostgreSQL store, on 127.0.0.1 only. Then each
simulated user, as a browser does:

- logs in through the form (users arrive spread over ``--ramp`` seconds);
- opens their tier page: the HTML, ``/_dash-layout``, ``/_dash-dependencies``, the page-content
  callback, then every render callback of the page (tiles, charts, history, lists, matrix);
- polls the version check every ``--poll`` seconds; when the version changes, fires the page's
  render callbacks again;
- now and then (exponentially, mean ``--drill-every`` seconds) opens a tile's drill-down.

Versions change during the run because the scheduler refreshes ``--changing`` datasets every
``--change-every`` seconds (the others keep their own 15-minute or hourly intervals).
Freshness: a change committed in the source (a worker's FTE), timed until ``/api/indicators``
shows it, a few rounds during the load.

    python bench/bench_load.py --scales 1                   # the default borough (60,000 children)
    python bench/bench_load.py --scales 1 100 --source-url 100=postgresql+psycopg://.../db100x

Prints a Markdown table for bench/RESULTS.md; nothing asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from topology import (  # noqa: E402
    Topology,
    drill_body,
    drill_rows_body,
    poll_body,
    wait_until,
)

BASE_POPULATION = 60_000
AS_OF = dt.date(2026, 11, 25)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
RENDER_INPUTS = {("data-version", "data"), ("page-scope", "data")}
REQUEST_TIMEOUT_S = 60
FRESHNESS_LIMIT_S = 900  # a change not shown after this is reported as this
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
_REFRESH_LINE = re.compile(r"^--\s*refresh:.*$", re.MULTILINE)


# --- the Dash protocol, as the browser speaks it ----------------------------------------------


def components(tree: Any) -> dict[Any, dict[str, Any]]:
    """Every component with an id in a layout tree: id (dicts as JSON) -> props, page order."""
    found: dict[Any, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            props = node.get("props")
            if isinstance(props, dict):
                if "id" in props:
                    ident = props["id"]
                    key = json.dumps(ident, sort_keys=True) if isinstance(ident, dict) else ident
                    found[key] = props
                for value in props.values():
                    walk(value)

    walk(tree)
    return found


def _matches(pattern: dict[str, Any], key: Any) -> list[dict[str, Any]]:
    out = []
    for candidate in [key] if not isinstance(key, list) else key:
        if not (isinstance(candidate, str) and candidate.startswith("{")):
            continue
        ident = json.loads(candidate)
        if ident.keys() == pattern.keys() and all(
            value == ["ALL"] or ident[name] == value for name, value in pattern.items()
        ):
            out.append(ident)
    return out


def _parts(output: str) -> list[tuple[str, str]]:
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [tuple(part.rsplit(".", 1)) for part in parts]  # type: ignore[misc]


def callback_body(dep: dict[str, Any], found: dict[Any, dict[str, Any]], values: dict) -> dict:
    """The request the renderer sends for ``dep`` over the components in ``found``."""
    keys = list(found)

    def spec(ident: str, prop: str, with_value: bool) -> Any:
        if ident.startswith("{"):
            items = []
            for match in _matches(json.loads(ident), keys):
                item: dict[str, Any] = {"id": match, "property": prop}
                if with_value:
                    item["value"] = found[json.dumps(match, sort_keys=True)].get(prop)
                items.append(item)
            return items
        item = {"id": ident, "property": prop}
        if with_value:
            item["value"] = values.get((ident, prop), found.get(ident, {}).get(prop))
        return item

    outputs = [spec(ident, prop, False) for ident, prop in _parts(dep["output"])]
    inputs = [spec(i["id"], i["property"], True) for i in dep["inputs"]]
    return {
        "output": dep["output"],
        "outputs": outputs if dep["output"].startswith("..") else outputs[0],
        "inputs": inputs,
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in dep["inputs"]],
        "state": [spec(s["id"], s["property"], True) for s in dep.get("state", [])],
    }


def wanted(dep: dict[str, Any], found: dict[Any, dict[str, Any]]) -> bool:
    """Does the page fire this render callback (some output component is on it)?"""
    if dep.get("clientside_function"):
        return False  # runs in the browser (e.g. telling the list grids to start again)
    if {(i["id"], i["property"]) for i in dep["inputs"]} != RENDER_INPUTS:
        return False
    keys = list(found)
    return any(
        _matches(json.loads(ident), keys) if ident.startswith("{") else ident in found
        for ident, _prop in _parts(dep["output"])
    )


# --- measurements ------------------------------------------------------------------------------


@dataclass
class Recorder:
    started: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)  # the same moment on the wall clock
    # How late the load generator's event loop wakes a 100 ms sleep: its own queueing, which
    # is in every client-side time (the generator shares the server's two cores).
    lags: list[tuple[float, float]] = field(default_factory=list)
    samples: list[tuple[float, str, float, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def call(
        self, session: aiohttp.ClientSession, kind: str, method: str, url: str, **kwargs: Any
    ) -> tuple[int, bytes, str]:
        begun = time.monotonic()
        try:
            async with session.request(method, url, allow_redirects=False, **kwargs) as answer:
                body = await answer.read()
                status, location = answer.status, answer.headers.get("Location", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, body, location = 599, b"", ""
            self.errors.append(f"{kind}: {exc.__class__.__name__}: {exc}")
        elapsed = time.monotonic() - begun
        self.samples.append((begun - self.started, kind, elapsed, status))
        if status >= 400 and status != 599:
            self.errors.append(f"{kind}: HTTP {status}: {body[:200]!r}")
        return status, body, location


@dataclass
class Account:
    username: str
    tier: str


class User:
    def __init__(self, number: int, account: Account, url: str, rec: Recorder, args: Any) -> None:
        self.number = number
        self.account = account
        self.url = url
        self.rec = rec
        self.args = args
        self.rng = random.Random(number)
        self.token: str | None = None
        self.found: dict[Any, dict[str, Any]] = {}
        self.deps: list[dict[str, Any]] = []

    async def post(self, session: aiohttp.ClientSession, kind: str, body: dict) -> dict | None:
        status, data, _ = await self.rec.call(
            session, kind, "POST", f"{self.url}/_dash-update-component", json=body
        )
        return json.loads(data) if status == 200 and data else None

    async def run(self, end: float) -> None:
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        headers = {"Origin": self.url}
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(cookie_jar=jar, headers=headers, timeout=timeout) as s:
            await asyncio.sleep(self.rng.uniform(0, self.args.ramp))
            if not await self.login(s):
                return
            await self.open_page(s)
            n = 0
            next_poll = time.monotonic() + self.args.poll
            next_drill = time.monotonic() + self.rng.expovariate(1 / self.args.drill_every)
            while True:
                wake = min(next_poll, next_drill)
                if wake >= end:
                    return
                await asyncio.sleep(max(0.0, wake - time.monotonic()))
                if next_poll <= next_drill:
                    n += 1
                    next_poll += self.args.poll
                    answer = await self.post(s, "poll", poll_body(self.token, n))
                    token = ((answer or {}).get("response") or {}).get("data-version", {})
                    if token.get("data") and token["data"] != self.token:
                        self.token = token["data"]
                        await self.render(s, "update")
                else:
                    next_drill += self.rng.expovariate(1 / self.args.drill_every)
                    tiles = [json.loads(k)["ind"] for k in self.found if '"tile"' in str(k)]
                    if tiles:
                        scope = self.found.get("page-scope", {}).get("data")
                        target = self.rng.choice(tiles)
                        await self.post(s, "drill-down", drill_body(tiles, target, scope))
                        # The panel's grid then asks for its first block of rows.
                        await self.post(
                            s, "drill-down rows", drill_rows_body(self.deps, target, scope)
                        )

    async def login(self, s: aiohttp.ClientSession) -> bool:
        status, body, _ = await self.rec.call(s, "login form", "GET", f"{self.url}/login")
        if status == 404:
            return True  # no login form: nothing to do
        token = _CSRF.search(body.decode("utf-8", "replace"))
        form = {
            "username": self.account.username,
            "password": "demo",
            "csrf_token": token.group(1) if token else "",
        }
        status, _, _ = await self.rec.call(s, "login", "POST", f"{self.url}/login", data=form)
        return status in (200, 302, 303)

    async def open_page(self, s: aiohttp.ClientSession) -> None:
        path = f"/{self.account.tier}"
        await self.rec.call(s, "page html", "GET", f"{self.url}{path}")
        status, layout, _ = await self.rec.call(s, "layout", "GET", f"{self.url}/_dash-layout")
        status2, deps, _ = await self.rec.call(
            s, "dependencies", "GET", f"{self.url}/_dash-dependencies"
        )
        if status != 200 or status2 != 200:
            return
        self.deps = json.loads(deps)
        shell = components(json.loads(layout))
        self.token = shell.get("data-version", {}).get("data")
        pages_dep = next(d for d in self.deps if "_pages_content.children" in d["output"])
        values = {("_pages_location", "pathname"): path, ("_pages_location", "search"): ""}
        answer = await self.post(s, "page content", callback_body(pages_dep, shell, values))
        content = ((answer or {}).get("response") or {}).get("_pages_content", {}).get("children")
        self.found = {**shell, **components(content)}
        await self.render(s, "open")

    async def render(self, s: aiohttp.ClientSession, why: str) -> None:
        values = {("data-version", "data"): self.token}
        for dep in self.deps:
            if wanted(dep, self.found):
                kinds = [part.split('"')[0] for part in dep["output"].split('"type":"')[1:]]
                name = (
                    "page"  # the one callback for tiles, charts, history and the matrix
                    if len(set(kinds)) > 1 and "tile" in kinds
                    else kinds[-1]
                    if kinds
                    else dep["output"]
                )
                await self.post(s, f"render {name}", callback_body(dep, self.found, values))


# --- freshness ---------------------------------------------------------------------------------


async def freshness(
    url: str,
    source_url: str,
    account: Account,
    rounds: int,
    gap: float,
    results: list[tuple[float, float]],
) -> list[tuple[float, float]]:
    """(committed, shown): wall-clock times of a change committed in the source and of
    /api/indicators first showing it, appended to ``results`` as each round completes (so a
    watcher stopped at the end of the run keeps the rounds it finished)."""
    engine = create_engine(source_url)
    jar = aiohttp.CookieJar(unsafe=True)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(cookie_jar=jar, headers={"Origin": url}, timeout=timeout) as s:
        form = await (await s.get(f"{url}/login")).text()
        token = _CSRF.search(form)
        await s.post(
            f"{url}/login",
            data={
                "username": account.username,
                "password": "demo",
                "csrf_token": token.group(1) if token else "",
            },
        )

        async def caseload() -> Any:
            async with s.get(f"{url}/api/indicators?scope=borough") as answer:
                values = await answer.json()
            return next(v["value"] for v in values if v["id"] == "average_caseload")

        with engine.connect() as conn:
            worker = conn.scalar(
                text(
                    "SELECT MIN(w.worker_id) FROM workers w JOIN worker_roles r"
                    " ON r.worker_id = w.worker_id AND r.primary_job = 'Y' AND r.role = 'SW'"
                    " WHERE w.end_date IS NULL AND r.end_date IS NULL AND w.fte = 1"
                )
            )
        try:
            for round_ in range(rounds):
                await asyncio.sleep(gap)
                before = None
                while before is None:
                    try:
                        before = await caseload()
                    except (aiohttp.ClientError, TimeoutError):
                        await asyncio.sleep(1.0)  # a slow answer under load: ask again
                with engine.begin() as conn:
                    conn.execute(
                        text("UPDATE workers SET fte = :fte WHERE worker_id = :id"),
                        {"fte": 0.5 if round_ % 2 == 0 else 1.0, "id": worker},
                    )
                committed = time.time()
                while time.time() - committed < FRESHNESS_LIMIT_S:
                    try:
                        if await caseload() != before:
                            break
                    except (aiohttp.ClientError, TimeoutError):
                        pass  # a slow answer under load: ask again
                    await asyncio.sleep(1.0)  # a watcher, not a load: once a second
                results.append((committed, time.time()))
        finally:
            with engine.begin() as conn:  # leave the source as it was
                conn.execute(
                    text("UPDATE workers SET fte = 1 WHERE worker_id = :id"), {"id": worker}
                )
    engine.dispose()
    return results


# --- the run -----------------------------------------------------------------------------------


def prepare_source(scale: int, work: Path, source_url: str | None) -> str:
    if source_url:
        return source_url
    path = work / f"demo-{scale}x.sqlite"
    if not path.exists():
        from dashboard.demo import generate_borough

        generate_borough(
            f"sqlite:///{path}", population=BASE_POPULATION * scale, years=6, seed=42, as_of=AS_OF
        )
    return f"sqlite:///{path}"


def queries_with(folder: Path, changing: list[str], every: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "queries").glob("*.sql")):
        content = path.read_text(encoding="utf-8")
        if path.stem in changing:
            content = _REFRESH_LINE.sub(f"-- refresh: {every}s", content, count=1)
        (folder / path.name).write_text(content, encoding="utf-8")
    return folder


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return (values[0] * 1000,) * 3 if values else (float("nan"),) * 3
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


def report(rec: Recorder, steady_from: float, steady_to: float, label: str) -> list[str]:
    lines = [
        f"| {label} | kind | requests | req/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_kind: dict[str, list[tuple[float, int]]] = defaultdict(list)
    steady: list[tuple[float, int]] = []
    for started, kind, elapsed, status in rec.samples:
        if steady_from <= started < steady_to:
            steady.append((elapsed, status))
            by_kind[kind].append((elapsed, status))
    span = steady_to - steady_from
    rows = [("steady state (all requests after the ramp)", steady, span)]
    rows += [(f"steady: {kind}", found, span) for kind, found in sorted(by_kind.items())]
    for kind, found, seconds in rows:
        times = [e for e, _ in found]
        p50, p95, p99 = percentiles(times)
        errors = sum(1 for _, s in found if s >= 400)
        rate = f"{len(found) / seconds:.1f}" if seconds else "-"
        lines.append(
            f"| {label} | {kind} | {len(found):,} | {rate} | {p50:.1f} | {p95:.1f} | {p99:.1f} | {errors} |"
        )
    return lines


async def watch_lag(rec: Recorder, end: float) -> None:
    while time.monotonic() < end:
        asked = time.monotonic()
        await asyncio.sleep(0.1)
        rec.lags.append((asked - rec.started, time.monotonic() - asked - 0.1))


async def drive(
    url: str, accounts: list[Account], args: Any, source_url: str
) -> tuple[Recorder, list[float], float, float]:
    rec = Recorder()
    end = time.monotonic() + args.ramp + args.settle + args.duration
    lag_task = asyncio.create_task(watch_lag(rec, end))
    users = [User(i, accounts[i % len(accounts)], url, rec, args) for i in range(args.users)]
    borough = next(a for a in accounts if a.tier == "borough")
    tasks = [asyncio.create_task(u.run(end)) for u in users]
    fresh: list[tuple[float, float]] = []
    fresh_task = asyncio.create_task(
        freshness(
            url,
            source_url,
            borough,
            args.freshness_rounds,
            (args.ramp + args.settle) / max(1, args.freshness_rounds),
            fresh,
        )
    )
    # Users stop at ``end``; one still waiting on an answer gets its client timeout. Anything
    # left after that (and a freshness round still waiting) is cancelled, never waited for.
    grace = REQUEST_TIMEOUT_S + 30
    _done, late = await asyncio.wait(tasks, timeout=max(0.0, end - time.monotonic()) + grace)
    for task in late:
        task.cancel()
    if late:
        rec.errors.append(f"{len(late)} simulated users still busy at the end: cancelled")
    try:
        await asyncio.wait_for(fresh_task, timeout=grace)
    except (TimeoutError, aiohttp.ClientError) as exc:
        rec.errors.append(
            f"freshness watcher stopped after {len(fresh)} round(s): "
            f"{exc.__class__.__name__}: {exc}"
        )
    lag_task.cancel()
    steady_from = args.ramp + args.settle
    return rec, fresh, steady_from, steady_from + args.duration


def _wall(ts: str) -> float:
    return dt.datetime.fromisoformat(ts).timestamp()


def run_scale(scale: int, source_url: str, args: Any) -> dict[str, Any]:
    """One scale: a new store, the topology, the simulated browsers. Returns what to print."""
    from dashboard.demo_users import create_demo_users

    store_db = f"bench_load_{scale}x_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{store_db}"'))
    store_url = make_url(PG_ADMIN).set(database=store_db).render_as_string(hide_password=False)
    run = args.work / f"load-{scale}x-{store_db}"
    queries = queries_with(run / "queries", args.changing, args.change_every)
    try:
        created = create_demo_users(store_url, source_url, AS_OF, queries_dir=queries)
        accounts = [Account(u.username, u.tier) for u in created if not u.is_admin]
        with Topology(
            run / "logs",
            source_url=source_url,
            store_url=store_url,
            queries_dir=str(queries),
            as_of=AS_OF.isoformat(),
            demo="true",
            child_population=str(BASE_POPULATION * scale),
        ) as top:
            scheduler = top.scheduler(lock_retry_s=5)
            clock = time.monotonic()
            n_datasets = len(list(queries.glob("*.sql")))
            first_runs = re.compile(r"refresh dataset=\S+ status=(ok|failed)")
            wait_until(
                lambda: len(first_runs.findall(scheduler.text())) >= n_datasets,
                "the first refresh of every dataset",
                deadline_s=3600,
                every=2,
            )
            first_refresh = time.monotonic() - clock
            web = top.web(workers=args.workers)
            print(
                f"# {scale}x: first refresh {first_refresh:.0f} s; {args.users} users on {web.url}",
                file=sys.stderr,
            )
            rec, fresh, steady_from, steady_to = asyncio.run(
                drive(web.url, accounts, args, source_url)
            )
            refreshes = [
                r
                for r in scheduler.records()
                if r.get("msg", "").startswith("refresh dataset=")
                and "status=ok" in r["msg"]
                and any(f"dataset={d} " in r["msg"] for d in args.changing)
            ]
            server = web.access()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{store_db}" WITH (FORCE)'))
        admin.dispose()
    return {
        "scale": scale,
        "rec": rec,
        "fresh": fresh,
        "steady": (steady_from, steady_to),
        "refreshes": refreshes,
        "first_refresh": first_refresh,
        "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        "server_5xx": sum(1 for r in server if int(r.get("status", 0)) >= 500),
        "server_requests": len(server),
        # Gunicorn's own duration (parsing the request to the response: no time waiting for a
        # free worker thread) of the requests it finished in the steady-state window.
        "server_steady_ms": [
            float(r["duration_ms"])
            for r in server
            if "duration_ms" in r
            and rec.wall + steady_from <= _wall(r["ts"]) < rec.wall + steady_to
        ],
    }


def steady_figures(result: dict[str, Any]) -> dict[str, float]:
    steady_from, steady_to = result["steady"]
    found = [(e, s) for t, _k, e, s in result["rec"].samples if steady_from <= t < steady_to]
    p50, p95, p99 = percentiles([e for e, _ in found])
    return {
        "req/s": len(found) / (steady_to - steady_from),
        "p50 ms": p50,
        "p95 ms": p95,
        "p99 ms": p99,
        "errors": float(sum(1 for _, s in found if s >= 400)),
    }


def freshness_lines(result: dict[str, Any]) -> list[str]:
    label = f"{result['scale']}x"
    lines = []
    for committed, shown in result["fresh"]:
        run = next((r for r in result["refreshes"] if _wall(r["ts"]) > committed), None)
        if run is None:
            lines.append(f"| {label} | {shown - committed:.1f} | ? | ? | ? |")
            continue
        duration = float(re.search(r"duration_s=([\d.]+)", run["msg"]).group(1))
        landed = _wall(run["ts"])
        lines.append(
            f"| {label} | {shown - committed:.1f} | {landed - duration - committed:.1f} "
            f"| {duration:.2f} | {shown - landed:.1f} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales", type=int, nargs="+", default=[1], help="times the default population"
    )
    parser.add_argument(
        "--source-url",
        action="append",
        default=[],
        metavar="SCALE=URL",
        help="an existing source for a scale (else a demo SQLite file is built)",
    )
    parser.add_argument("--users", type=int, default=700)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--ramp", type=float, default=120, help="seconds over which users log in")
    parser.add_argument(
        "--settle", type=float, default=30, help="seconds after the ramp before counting"
    )
    parser.add_argument("--duration", type=float, default=300, help="steady-state seconds measured")
    parser.add_argument("--poll", type=float, default=10, help="browser poll interval (the app's)")
    parser.add_argument(
        "--drill-every", type=float, default=300, help="mean seconds between drill-downs"
    )
    parser.add_argument(
        "--changing", nargs="+", default=["workforce"], help="datasets refreshed often"
    )
    parser.add_argument(
        "--change-every", type=int, default=120, help="their refresh interval, seconds"
    )
    parser.add_argument("--freshness-rounds", type=int, default=3)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "csc-dashboard-bench"
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    given = dict(item.split("=", 1) for item in args.source_url)

    results = []
    for scale in args.scales:
        source_url = prepare_source(scale, args.work, given.get(str(scale)))
        results.append(run_scale(scale, source_url, args))

    print(f"\nCommand: python bench/bench_load.py {' '.join(sys.argv[1:])}")
    print(
        f"\n{args.users} users, {args.workers} gunicorn workers (gthread x4), poll {args.poll:g} s, "
        f"drill-down every {args.drill_every:g} s on average, {', '.join(args.changing)} refreshed "
        f"every {args.change_every} s (2 shared cores; the load generator runs on them too)\n"
    )
    for result in results:
        print(
            f"- {result['scale']}x: first refresh {result['first_refresh']:.0f} s; "
            f"{len(result['refreshes'])} refreshes of the changing datasets during the run; "
            f"server: {result['server_requests']:,} requests, {result['server_5xx']} answered 5xx; "
            f"load average at the end {result['load']}"
        )
    figures = {r["scale"]: steady_figures(r) for r in results}
    base = results[0]["scale"]
    names = list(figures[base])
    print("\nSteady state (every request started after the ramp and the settling time):\n")
    print(
        "| figure | "
        + " | ".join(f"{s}x" for s in figures)
        + " | "
        + " | ".join(f"{s}x / {base}x" for s in list(figures)[1:])
        + " |"
    )
    print("|---|" + "---|" * (2 * len(figures) - 1))
    for name in names:
        cells = [f"{figures[s][name]:,.1f}" for s in figures]
        ratios = [
            f"{figures[s][name] / figures[base][name]:.2f}" if figures[base][name] else "-"
            for s in list(figures)[1:]
        ]
        print(f"| {name} | " + " | ".join(cells + ratios) + " |")
    print("\nServer side (gunicorn's duration, steady state) and the load generator's own lag:\n")
    print(
        "| scale | server requests | server p50 ms | p95 ms | p99 ms | generator lag p50 ms | p99 ms | max ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        steady_from, steady_to = result["steady"]
        s50, s95, s99 = percentiles([ms / 1000 for ms in result["server_steady_ms"]])
        lags = [lag for at, lag in result["rec"].lags if steady_from <= at < steady_to]
        l50, _l95, l99 = percentiles(lags)
        print(
            f"| {result['scale']}x | {len(result['server_steady_ms']):,} | {s50:.1f} | {s95:.1f} "
            f"| {s99:.1f} | {l50:.1f} | {l99:.1f} | {1000 * max(lags, default=0):.1f} |"
        )
    for result in results:
        steady_from, steady_to = result["steady"]
        print()
        print("\n".join(report(result["rec"], steady_from, steady_to, f"{result['scale']}x")))
    print("\nFreshness, seconds: commit in the source -> /api/indicators shows it, split into")
    print("waiting for the next scheduled refresh, the refresh itself, and the web tier picking")
    print("up the new snapshot (a browser sees it at its next poll, up to one poll later):\n")
    print("| scale | commit -> API | wait for schedule | refresh | snapshot -> API |")
    print("|---|---|---|---|---|")
    for result in results:
        print("\n".join(freshness_lines(result)))
    for result in results:
        errors = result["rec"].errors
        print(f"\n{result['scale']}x client errors: {len(errors)}")
        for error in errors[:20]:
            print(f"  {error}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
