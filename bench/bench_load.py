"""Load: simulated browsers against the real production topology, and end-to-end freshness.

Starts what production runs (``tests/topology.py``): gunicorn ``-c deploy/gunicorn.conf.py -w 4``
and one ``csc-dashboard scheduler`` over a new PostgreSQL store, on 127.0.0.1 only. Then each
simulated user, as a browser does:

- logs in through the form (users arrive spread over ``--ramp`` seconds);
- opens their tier page: the HTML, ``/_dash-layout``, ``/_dash-dependencies``, the page-content
  callback, then every render callback of the page (tiles, charts, history, lists, matrix), then
  the first block of rows of each inline list (its grid's ``getRowsRequest``);
- polls the version check every ``--poll`` seconds; when the version changes, fires the page's
  render callbacks again, and each inline list whose rows' digest changed asks for its first
  block again (its grid is told to start again);
- now and then (exponentially, mean ``--drill-every`` seconds) opens a tile's drill-down.

Each simulated user has an account of their own (``--accounts distinct``, the default):
``bench-0000`` on, each with one scope grant drawn from the borough's own teams, services and
budget holders' cost centres, so the server's per-user and per-scope caches see as many people
and scopes as a council's 500-700 users. ``--accounts demo`` shares the few demo accounts
round-robin instead.

The users are split over ``--processes`` generator processes (user i in process i % N), each
with its own event loop, so the generator's own queueing stays out of the client-side times as
far as two shared cores allow. All processes time from the parent's one origin.

Versions change during the run because the scheduler refreshes ``--changing`` datasets every
``--change-every`` seconds (the others keep their own 15-minute or hourly intervals).
Freshness: a change committed in the source (a worker's FTE), timed until ``/api/indicators``
shows it, a few rounds during the load.

    python bench/bench_load.py --scales 1                   # the default borough (60,000 children)
    python bench/bench_load.py --scales 1 100 --source-url 100=postgresql+psycopg://.../db100x

Prints Markdown tables for bench/RESULTS.md; nothing asserts a time. ``--samples-out PATH``
also writes every request as CSV (``t_s,kind,elapsed_ms,status``), one file per scale.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import multiprocessing
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
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
GRACE_S = REQUEST_TIMEOUT_S + 30  # past the end: a user still busy after this is cancelled
AG_GRID_BLOCK_ROWS = 100  # AG Grid's own cacheBlockSize, for a grid that does not set one
WINDOW_S = 10  # the width of the windows in the worst-windows table
FRESHNESS_LIMIT_S = 900  # a change not shown after this is reported as this
# --accounts distinct: the kinds of simulated user and their shares, rarest first (account_kinds).
ACCOUNT_MIX = (("borough", 0.05), ("service", 0.10), ("budget", 0.15), ("team", 0.70))
ACCOUNT_SEED = 42  # the order each kind's scopes are handed out in
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


def with_token(body: dict[str, Any], token: str | None) -> dict[str, Any]:
    """A render request built once per page, for the version ``token`` (all that changes)."""
    inputs = [{**i, "value": token} if i["id"] == "data-version" else i for i in body["inputs"]]
    return {**body, "inputs": inputs}


def list_rows_dep(deps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The callback answering an inline list's block requests (input ``{"type": "list", "ind":
    MATCH}.getRowsRequest``), if the app has one."""
    for dep in deps:
        inputs = dep["inputs"]
        if (
            len(inputs) == 1
            and inputs[0]["property"] == "getRowsRequest"
            and inputs[0]["id"].startswith("{")
            and json.loads(inputs[0]["id"]) == {"ind": ["MATCH"], "type": "list"}
        ):
            return dep
    return None


def list_rows_body(
    dep: dict[str, Any], ind: str, block: dict[str, Any], found: dict[Any, dict[str, Any]]
) -> dict[str, Any]:
    """The request list ``ind``'s grid sends for ``block`` (``dep``: ``list_rows_dep``), its
    ``MATCH`` filled in with the list's id as the renderer does."""
    outputs = [
        {"id": {**json.loads(ident), "ind": ind}, "property": prop.split("@")[0]}
        for ident, prop in _parts(dep["output"])
    ]
    grid = {**json.loads(dep["inputs"][0]["id"]), "ind": ind}
    return {
        "output": dep["output"],
        "outputs": outputs,
        "inputs": [{"id": grid, "property": "getRowsRequest", "value": block}],
        "changedPropIds": [
            json.dumps(grid, separators=(",", ":"), sort_keys=True) + ".getRowsRequest"
        ],
        "state": [
            {
                "id": s["id"],
                "property": s["property"],
                "value": found.get(s["id"], {}).get(s["property"]),
            }
            for s in dep.get("state", [])
        ],
    }


# --- measurements ------------------------------------------------------------------------------


@dataclass
class Recorder:
    started: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)  # the same moment on the wall clock
    # How late a load generator process's event loop wakes a 100 ms sleep: its own queueing,
    # which is in every client-side time (the generator shares the server's two cores).
    lags: list[tuple[float, float]] = field(default_factory=list)
    samples: list[tuple[float, str, float, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # What is not a failed request: e.g. a freshness round the end of the run cut short.
    notes: list[str] = field(default_factory=list)

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
    tier: str  # the page it opens: team, budget or borough
    kind: str = "demo"  # a kind of ACCOUNT_MIX for a bench account
    grant: str = ""  # a bench account's one scope grant (a demo account's roles give its scope)


class User:
    def __init__(self, number: int, account: Account, url: str, rec: Recorder, args: Any) -> None:
        self.number = number
        self.account = account
        self.url = url
        self.rec = rec
        self.args = args
        self.rng = random.Random(number)
        self.token: str | None = None
        self.deps: list[dict[str, Any]] = []
        # What the open page sends, built once when it opens (the generator's CPU is the
        # server's too): its tiles and scope (for drill-downs), its render requests (by kind;
        # only the version token changes) and its inline lists' first-block requests.
        self.tiles: list[str] = []
        self.scope: str | None = None
        self.renders: list[tuple[str, dict[str, Any]]] = []
        self.list_blocks: list[tuple[str, dict[str, Any]]] = []
        self.list_digests: dict[str, Any] = {}  # by grid id: the rows' digest it last had

    async def post(
        self, session: aiohttp.ClientSession, kind: str, body: dict
    ) -> tuple[int, bytes]:
        """A callback request; its answer unparsed (most answers only count by their status).
        The body is serialised before the clock starts."""
        status, data, _ = await self.rec.call(
            session,
            kind,
            "POST",
            f"{self.url}/_dash-update-component",
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        return status, data

    async def ask(self, session: aiohttp.ClientSession, kind: str, body: dict) -> dict | None:
        """A callback request whose answer the page acts on: parsed."""
        status, data = await self.post(session, kind, body)
        return json.loads(data) if status == 200 and data else None

    async def run(self, end: float) -> None:
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        headers = {"Origin": self.url}
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(cookie_jar=jar, headers=headers, timeout=timeout) as s:
            # Arrival is timed from the run's origin, whenever this process started.
            arrival = self.rec.started + self.rng.uniform(0, self.args.ramp)
            await asyncio.sleep(max(0.0, arrival - time.monotonic()))
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
                    answer = await self.ask(s, "poll", poll_body(self.token, n))
                    token = ((answer or {}).get("response") or {}).get("data-version", {})
                    if token.get("data") and token["data"] != self.token:
                        self.token = token["data"]
                        await self.render(s)
                else:
                    next_drill += self.rng.expovariate(1 / self.args.drill_every)
                    if self.tiles:
                        target = self.rng.choice(self.tiles)
                        await self.post(s, "drill-down", drill_body(self.tiles, target, self.scope))
                        # The panel's grid then asks for its first block of rows.
                        await self.post(
                            s, "drill-down rows", drill_rows_body(self.deps, target, self.scope)
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
        answer = await self.ask(s, "page content", callback_body(pages_dep, shell, values))
        content = ((answer or {}).get("response") or {}).get("_pages_content", {}).get("children")
        self.plan({**shell, **components(content)})
        await self.render(s)

    def plan(self, found: dict[Any, dict[str, Any]]) -> None:
        """Build the open page's requests from its components (``found``)."""
        self.scope = found.get("page-scope", {}).get("data")
        values = {("data-version", "data"): self.token}
        for dep in self.deps:
            if wanted(dep, found):
                kinds = [part.split('"')[0] for part in dep["output"].split('"type":"')[1:]]
                name = (
                    "page"  # the one callback for tiles, charts, history and the matrix
                    if len(set(kinds)) > 1 and "tile" in kinds
                    else "list-links"  # the lists' columns, links and rows' digests
                    if "list-links" in kinds
                    else kinds[-1]
                    if kinds
                    else dep["output"]
                )
                self.renders.append((f"render {name}", callback_body(dep, found, values)))
        rows_dep = list_rows_dep(self.deps)
        for key, props in found.items():
            ident = json.loads(key) if isinstance(key, str) and key.startswith("{") else {}
            if ident.get("type") == "tile":
                self.tiles.append(ident["ind"])
            elif ident.get("type") == "list" and rows_dep is not None:
                rows = (props.get("dashGridOptions") or {}).get("cacheBlockSize")
                block = {
                    "startRow": 0,
                    "endRow": rows or AG_GRID_BLOCK_ROWS,
                    "sortModel": [],
                    "filterModel": {},
                }
                grid = json.dumps({"ind": ident["ind"], "type": "list"}, separators=(",", ":"))
                self.list_blocks.append(
                    (grid, list_rows_body(rows_dep, ident["ind"], block, found))
                )

    async def render(self, s: aiohttp.ClientSession) -> None:
        """What the page sends for a version (opening, or a new one): its render callbacks,
        then the first block of each inline list: on opening (the grid asks for it when it
        mounts), and then only when the digest of the list's rows changed (the grid is told
        to start again)."""
        digests = {}
        for kind, body in self.renders:
            status, data = await self.post(s, kind, with_token(body, self.token))
            if status == 200 and b"list-rows" in data:
                for key, props in json.loads(data).get("response", {}).items():
                    if '"list-rows"' in key:
                        digests[key.replace('"list-rows"', '"list"')] = props.get("data")
        for grid, body in self.list_blocks:
            opening = grid not in self.list_digests
            changed = digests.get(grid) != self.list_digests.get(grid)
            self.list_digests[grid] = digests.get(grid)
            if not opening and not changed:
                continue
            status, data = await self.post(s, "list rows", body)
            if status >= 400:
                continue  # the recorder has it
            try:
                block = json.loads(data)["response"][grid]["getRowsResponse"]
                has_rows = isinstance(block["rowData"], list)
            except (ValueError, KeyError, TypeError):
                has_rows = False
            if not has_rows:
                self.rec.errors.append(f"list rows: HTTP {status} without rowData: {data[:200]!r}")


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
        while True:  # the ramp's first renders and password checks may time a login out
            try:
                form = await (await s.get(f"{url}/login")).text()
                token = _CSRF.search(form)
                async with s.post(
                    f"{url}/login",
                    data={
                        "username": account.username,
                        "password": "demo",
                        "csrf_token": token.group(1) if token else "",
                    },
                ) as answer:
                    if answer.status < 400:
                        break
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(1.0)

        with engine.connect() as conn:
            worker, team = conn.execute(
                text(
                    "SELECT w.worker_id, r.org_id FROM workers w JOIN worker_roles r"
                    " ON r.worker_id = w.worker_id AND r.primary_job = 'Y' AND r.role = 'SW'"
                    " WHERE w.end_date IS NULL AND r.end_date IS NULL AND w.fte = 1"
                    " ORDER BY w.worker_id LIMIT 1"
                )
            ).one()

        async def caseload() -> Any:
            # The worker's team's caseload: at 100x one worker's FTE does not move the
            # borough's average at two decimals.
            async with s.get(f"{url}/api/indicators?scope=team:{team}") as answer:
                values = await answer.json()
            return next(v["value"] for v in values if v["id"] == "average_caseload")

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


def account_kinds(users: int) -> list[str]:
    """The kind of each simulated user, in user order: each takes the kind furthest behind its
    share of ``ACCOUNT_MIX``, so the mix holds for any number of users. Ties go to the rarest
    kind, so user 0 is a borough user and even a handful of users has one for the freshness
    watcher."""
    taken = dict.fromkeys((kind for kind, _share in ACCOUNT_MIX), 0)
    kinds = []
    for n in range(users):
        kind = max(ACCOUNT_MIX, key=lambda mix: mix[1] * n - taken[mix[0]])[0]
        taken[kind] += 1
        kinds.append(kind)
    return kinds


def bench_grants(kinds: list[str], frames: dict[str, Any]) -> list[str]:
    """One scope grant per user of ``kinds``, from the access datasets' ``frames``: each kind
    cycles over its scopes in a seeded shuffled order, so the users spread over as many teams,
    services (the org units teams sit in) and budget holders' cost centres as there are."""
    from dashboard.access import BUDGET_HOLDERS_DATASET, ORGANISATION_DATASET
    from dashboard.scopes import TEAM_LEVEL

    organisation = frames[ORGANISATION_DATASET]
    teams = organisation[organisation["org_level"] == TEAM_LEVEL]
    codes = frames[BUDGET_HOLDERS_DATASET]["cost_centre_code"].dropna()
    scopes = {
        "borough": ["borough"],
        "service": [f"service:{int(s)}" for s in sorted(teams["parent_org_id"].dropna().unique())],
        "budget": [f"cost_centre:{c}" for c in sorted(codes.unique())],
        "team": [f"team:{int(t)}" for t in sorted(teams["org_id"])],
    }
    rng = random.Random(ACCOUNT_SEED)
    for kind, found in scopes.items():
        if not found:
            raise ValueError(f"the borough has no {kind} scope to grant")
        rng.shuffle(found)
    given = dict.fromkeys(scopes, 0)
    grants = []
    for kind in kinds:
        grants.append(scopes[kind][given[kind] % len(scopes[kind])])
        given[kind] += 1
    return grants


def create_bench_accounts(
    store_url: str, source_url: str, users: int, queries: Path
) -> list[Account]:
    """One demo-mode account per simulated user (``bench-0000`` on), each with the scope grant
    ``bench_grants`` gives it; its tier is the page the server sends it to.

    scrypt costs ~0.3 s a password, so only the first account is made by ``create_user``; the
    others get its hash in one insert, and the grants another, written as ``create_user`` and
    ``grant`` write them (counting the change, as they do)."""
    from sqlalchemy import insert, select

    from dashboard.access import (
        BUDGET_HOLDERS_DATASET,
        ORGANISATION_DATASET,
        ROLES_DATASET,
        everyone,
    )
    from dashboard.access_tables import count_account_change, user_grants, utc_now
    from dashboard.access_tables import users as users_table
    from dashboard.demo_users import DEMO_PASSWORD, read_access_datasets
    from dashboard.model import Scope
    from dashboard.users import UserStore

    frames = read_access_datasets(source_url, AS_OF, queries)
    kinds = account_kinds(users)
    grants = [str(Scope.parse(g)) for g in bench_grants(kinds, frames)]
    digits = max(4, len(str(users - 1)))
    names = [f"bench-{n:0{digits}d}" for n in range(users)]
    store = UserStore(store_url)
    try:
        store.create_user(names[0], DEMO_PASSWORD, names[0], is_demo=True)
        now = utc_now()
        with store.engine.begin() as conn:
            password_hash = conn.scalar(
                select(users_table.c.password_hash).where(users_table.c.username == names[0])
            )
            if users > 1:
                conn.execute(
                    insert(users_table),
                    [
                        {
                            "username": name,
                            "display_name": name,
                            "password_hash": password_hash,
                            "is_admin": False,
                            "is_demo": True,
                            "created_at": now,
                            "password_changed_at": now,
                        }
                        for name in names[1:]
                    ],
                )
            conn.execute(
                insert(user_grants),
                [
                    {"username": name, "scope": grant, "granted_by": "bench", "granted_at": now}
                    for name, grant in zip(names, grants, strict=True)
                ],
            )
            count_account_change(conn)
        # Tiers as the server finds them: from the grants as stored, the way it resolves access.
        access = {
            a.username: a
            for a in everyone(
                frames[ROLES_DATASET],
                frames[ORGANISATION_DATASET],
                frames[BUDGET_HOLDERS_DATASET],
                store.all_grants(),
                as_of=AS_OF,
            )
        }
    finally:
        store.dispose()
    return [
        Account(name, access[name].home_path().lstrip("/"), kind, grant)
        for name, kind, grant in zip(names, kinds, grants, strict=True)
    ]


def describe_accounts(accounts: list[Account], users: int) -> str:
    """How many accounts, of which kind over how many distinct scopes, and the pages the
    ``users`` open (user i has account i modulo the accounts, as ``simulate`` gives them)."""
    pages: dict[str, int] = defaultdict(int)
    for n in range(users):
        pages[f"/{accounts[n % len(accounts)].tier}"] += 1
    opened = ", ".join(f"{count} {page}" for page, count in sorted(pages.items()))
    if accounts[0].kind == "demo":
        names = ", ".join(a.username for a in accounts)
        return f"{users} users share {len(accounts)} demo accounts ({names}); pages: {opened}"
    kinds = []
    for kind, _share in reversed(ACCOUNT_MIX):
        mine = [a for a in accounts if a.kind == kind]
        kinds.append(f"{len(mine)} {kind} ({len({a.grant for a in mine})} distinct)")
    return f"{len(accounts)} accounts: {', '.join(kinds)}; pages: {opened}"


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


def generate(
    url: str,
    accounts: list[Account],
    args: Any,
    numbers: list[int],
    origin: tuple[float, float],
    end: float,
) -> tuple[list[tuple[float, str, float, int]], list[tuple[float, float]], list[str]]:
    """One generator process: users ``numbers`` on its own event loop, timed from the parent's
    ``origin`` (monotonic, wall: CLOCK_MONOTONIC is the same in every process). Returns the
    samples, the loop's lags and the errors, for the parent to merge."""
    rec = Recorder(started=origin[0], wall=origin[1])
    asyncio.run(simulate(rec, url, accounts, args, numbers, end))
    return rec.samples, rec.lags, rec.errors


async def simulate(
    rec: Recorder, url: str, accounts: list[Account], args: Any, numbers: list[int], end: float
) -> None:
    """Users ``numbers`` until ``end`` (plus the grace), and this loop's lag meanwhile."""
    lag_task = asyncio.create_task(watch_lag(rec, end))
    users = [User(i, accounts[i % len(accounts)], url, rec, args) for i in numbers]
    tasks = [asyncio.create_task(u.run(end)) for u in users]
    # Users stop at ``end``; one still waiting on an answer gets its client timeout. Anything
    # left after that is cancelled, never waited for.
    done, late = await asyncio.wait(tasks, timeout=max(0.0, end - time.monotonic()) + GRACE_S)
    for task in late:
        task.cancel()
    if late:
        rec.errors.append(f"{len(late)} simulated users still busy at the end: cancelled")
    for task in done:
        if not task.cancelled() and task.exception() is not None:  # a bug here: say so
            rec.errors.append(f"simulated user failed: {task.exception()!r}")
    lag_task.cancel()


async def drive(
    url: str, accounts: list[Account], args: Any, source_url: str
) -> tuple[Recorder, list[tuple[float, float]], float, float]:
    """The users, over ``args.processes`` generator processes, and the freshness watcher on
    this process's loop meanwhile; every process's samples merged into one ``Recorder``."""
    rec = Recorder()
    end = rec.started + args.ramp + args.settle + args.duration
    borough = next(a for a in accounts if a.tier == "borough")
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
    loop = asyncio.get_running_loop()
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited loop
    with ProcessPoolExecutor(max_workers=args.processes, mp_context=spawn) as pool:
        shares = [
            loop.run_in_executor(
                pool,
                generate,
                url,
                accounts,
                args,
                list(range(k, args.users, args.processes)),
                (rec.started, rec.wall),
                end,
            )
            for k in range(args.processes)
        ]
        for samples, lags, errors in await asyncio.gather(*shares):
            rec.samples.extend(samples)
            rec.lags.extend(lags)
            rec.errors.extend(errors)
    # A freshness round still waiting after the users' grace is cancelled, never waited for:
    # the run ended before the next scheduled refresh (not a failed request). A request of the
    # watcher's that failed is an error.
    try:
        await asyncio.wait_for(fresh_task, timeout=GRACE_S)
    except TimeoutError:
        rec.notes.append(
            f"freshness watcher: {len(fresh)} of {args.freshness_rounds} round(s) finished "
            "before the run ended (the last one was still waiting for its refresh)"
        )
    except aiohttp.ClientError as exc:
        rec.errors.append(
            f"freshness watcher stopped after {len(fresh)} round(s): "
            f"{exc.__class__.__name__}: {exc}"
        )
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
        if args.accounts == "demo":
            created = create_demo_users(store_url, source_url, AS_OF, queries_dir=queries)
            accounts = [Account(u.username, u.tier) for u in created if not u.is_admin]
        else:
            accounts = create_bench_accounts(store_url, source_url, args.users, queries)
        described = describe_accounts(accounts, args.users)
        print(f"# {scale}x: {described}", file=sys.stderr)
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
        "accounts": described,
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


def worst_windows(result: dict[str, Any], shown: int = 5) -> list[str]:
    """The steady state's ``WINDOW_S`` windows (by request start) with the highest p99: whether
    the tail comes from the bursts after a new version (renders and list rows)."""
    steady_from, steady_to = result["steady"]
    windows: dict[int, list[float]] = defaultdict(list)
    bursts: dict[int, int] = defaultdict(int)
    for started, kind, elapsed, _status in result["rec"].samples:
        if steady_from <= started < steady_to:
            n = int((started - steady_from) // WINDOW_S)
            windows[n].append(elapsed)
            if kind.startswith("render ") or kind == "list rows":
                bursts[n] += 1
    figures = sorted(
        ((percentiles(times), n, len(times)) for n, times in windows.items()),
        key=lambda row: row[0][2],
        reverse=True,
    )
    label = f"{result['scale']}x"
    lines = []
    for (p50, _p95, p99), n, count in figures[:shown]:
        begin = steady_from + n * WINDOW_S
        lines.append(
            f"| {label} | {begin:.0f}-{begin + WINDOW_S:.0f} | {count:,} | {bursts[n]:,} "
            f"| {p50:.1f} | {p99:.1f} |"
        )
    return lines


def write_samples(path: Path, rec: Recorder) -> None:
    """Every request as CSV, for time series: seconds since the run's start, kind, ms, status."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["t_s", "kind", "elapsed_ms", "status"])
        for started, kind, elapsed, status in sorted(rec.samples):
            writer.writerow([f"{started:.3f}", kind, f"{elapsed * 1000:.1f}", status])


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
    parser.add_argument(
        "--accounts",
        choices=("distinct", "demo"),
        default="distinct",
        help="an account and scope grant per user, or the few demo accounts shared round-robin",
    )
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
        "--processes", type=int, default=2, help="load generator processes sharing the users"
    )
    parser.add_argument(
        "--samples-out",
        type=Path,
        help="write every request as CSV here, the scale before the suffix (samples-1x.csv)",
    )
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
        if args.samples_out:
            out = args.samples_out.with_name(
                f"{args.samples_out.stem}-{scale}x{args.samples_out.suffix}"
            )
            write_samples(out, results[-1]["rec"])
            print(f"# {scale}x: samples in {out}", file=sys.stderr)

    print(f"\nCommand: python bench/bench_load.py {' '.join(sys.argv[1:])}")
    print(
        f"\n{args.users} users from {args.processes} generator processes, "
        f"{args.workers} gunicorn workers (gthread x4), poll {args.poll:g} s, "
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
        print(f"- {result['scale']}x accounts: {result['accounts']}")
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
    print(
        "\nServer side (gunicorn's duration, steady state) and the load generator's own lag "
        f"(over all {args.processes} processes' event loops):\n"
    )
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
    print(
        f"\nWorst {WINDOW_S}-second windows of the steady state (by p99; the window by request "
        "start, seconds since the run's start; renders: the requests a new version sets off, "
        "render callbacks and list rows):\n"
    )
    print("| scale | window s | requests | renders | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for result in results:
        print("\n".join(worst_windows(result)))
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
        for note in result["rec"].notes:
            print(f"  (not an error) {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
