"""Page-view cost as the data grows: the tile-update callback and a drill-down, 1x vs Nx.

Each request goes through the real Flask server (``POST /_dash-update-component`` on the test
client), exactly as a browser sends it, so the time includes Dash's dispatch and JSON
serialisation. "Warm" is a page view after the snapshot is in the data layer's cache (what
the 700 users of a borough see); "cold" is the first view in a fresh worker after a snapshot
lands (loads the snapshot and runs the measures once per worker and version).

    python bench/bench_pages.py                  # 1x and 10x the default population
    python bench/bench_pages.py --scales 1 100   # 100x: about 8 GB of SQLite, slow to build
    python bench/bench_pages.py --scales 1 100 --source-url 100=postgresql+psycopg://.../db100x

Demo sources and stores are cached in --work (default: <tmp>/csc-dashboard-bench).
Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from topology import render_body  # noqa: E402

from dashboard.config import Settings  # noqa: E402
from dashboard.demo_users import create_demo_users  # noqa: E402
from dashboard.model import Scope  # noqa: E402
from layouts import all_pages  # noqa: E402
from tests.web_support import logged_in  # noqa: E402

BASE_POPULATION = 60_000
BENCH_USER = "admin"  # a demo account that sees the whole borough at every scale
AS_OF = dt.date(2026, 11, 25)
DRILL_OUTPUTS = (
    ("drill-modal", "is_open"),
    ("drill-title", "children"),
    ("drill-grid", "columnDefs"),
    ("drill-links", "children"),
    ("drill-state", "data"),
    ("family-panel", "hidden"),
    ("drill-grid", "selectedRows"),
    ("drill-grid", "filterModel"),
    ("drill-grid", "columnState"),
)
# The drill-down's rows come in blocks, each its own request (components.data_grid(blocks=True)).
FIRST_BLOCK = {"startRow": 0, "endRow": 200, "sortModel": [], "filterModel": {}}


def prepare(scale: int, work: Path, source_url: str | None = None) -> Settings:
    """The demo borough at ``scale`` times the default population, refreshed into a store.

    ``source_url``: an existing demo borough of that scale (e.g. in PostgreSQL, built with
    ``csc-dashboard demo-data --population ...``); else a SQLite file in ``work`` is built."""
    from dashboard.demo import generate_borough
    from tests.web_support import refreshed_settings

    population = BASE_POPULATION * scale
    source = work / f"demo-{scale}x.sqlite"
    url = source_url or f"sqlite:///{source}"
    store = work / f"store-{scale}x"
    if source_url is None and not source.exists():
        started = time.perf_counter()
        generate_borough(
            f"sqlite:///{source}", population=population, years=6, seed=42, as_of=AS_OF
        )
        print(f"# generated {scale}x in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if not (store / "store.sqlite").exists():
        started = time.perf_counter()
        refreshed_settings(url, store, AS_OF, population)
        print(f"# refreshed {scale}x in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    settings = Settings(
        source_url=url,
        store_url=f"sqlite:///{store / 'store.sqlite'}",
        as_of=AS_OF,
        child_population=population,
        demo=True,
    )
    # Every request is made as a logged-in user, as a browser's would be: the demo accounts
    # (recreated for this borough) include `admin`, who sees the borough at every scale.
    create_demo_users(settings.store_url, settings.source_url, AS_OF)
    return settings


def tiles_request(tiles: tuple[str, ...], token: str, scope: str) -> dict[str, Any]:
    """The page's render callback for its tiles (its charts, history and matrix aside)."""
    body = render_body(token, scope, tiles=list(tiles))
    return {**body, "changedPropIds": ["page-scope.data"]}


def drill_request(tiles: tuple[str, ...], target: str, scope: str) -> dict[str, Any]:
    return {
        "output": ".." + "...".join(f"{c}.{p}" for c, p in DRILL_OUTPUTS) + "..",
        "outputs": [{"id": c, "property": p} for c, p in DRILL_OUTPUTS],
        "inputs": [
            [
                {"id": {"ind": i, "type": "tile"}, "property": "n_clicks", "value": int(i == target)}
                for i in tiles
            ]
        ],
        "changedPropIds": [json.dumps({"ind": target, "type": "tile"}, separators=(",", ":"))
                           + ".n_clicks"],
        "state": [{"id": "page-scope", "property": "data", "value": scope}],
    }  # fmt: skip


def drill_rows_request(output: str, target: str, scope: str) -> dict[str, Any]:
    """The drill-down grid asking for its first block (``output``: the callback's key, from
    ``/_dash-dependencies``: it ends in a hash)."""
    return {
        "output": output,
        "outputs": [
            {"id": "drill-grid", "property": "getRowsResponse"},
            {"id": "drill-links", "property": "children"},
        ],
        "inputs": [{"id": "drill-grid", "property": "getRowsRequest", "value": FIRST_BLOCK}],
        "changedPropIds": ["drill-grid.getRowsRequest"],
        "state": [
            {
                "id": "drill-state",
                "property": "data",
                "value": {"ind": target, "scope": scope, "family": True},
            }
        ],
    }


def post(client: Any, body: dict[str, Any] | list[dict[str, Any]]) -> tuple[float, int]:
    """Time ``body`` (or each of a list of bodies, one after the other, as a page sends them):
    seconds and response bytes in all."""
    if isinstance(body, list):
        results = [post(client, one) for one in body]
        return sum(t for t, _ in results), sum(n for _, n in results)
    started = time.perf_counter()
    response = client.post("/_dash-update-component", json=body)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {response.data[:300]!r}")
    return elapsed, len(response.data)


CASES = (
    "team tiles",
    "borough tiles",
    "team drill-down",
    "borough drill-down",
    "team tiles, after a refresh",
    "borough tiles, after a refresh",
    "team tiles, after a refresh, before the preload",
    "borough tiles, after a refresh, before the preload",
    "team tiles, cold",
    "poll (version check)",
)
REFRESHED = "workforce"  # refreshed (untimed) before each "after a refresh" case
PRELOAD_S = 1.0  # DASHBOARD_PRELOAD_SECONDS's default, as gunicorn's workers run it


class Scale:
    """One scale's app, test client and requests, ready to time."""

    def __init__(self, settings: Settings) -> None:
        from dashboard.data import DataLayer
        from dashboard.web.app import create_app

        self.settings = settings
        data = DataLayer(settings)
        team = f"team:{int(data.teams()['org_id'].min())}"  # the same first team at every scale
        pages = {p.id: p for p in all_pages()}
        team_tiles, borough_tiles = pages["team"].tiles, pages["borough"].tiles
        self.facts = {
            "borough_rows": len(data.drilldown("overdue_steps", Scope.borough())),
            "team_rows": len(data.drilldown("overdue_steps", Scope.parse(team))),
        }
        self.app = create_app(settings)
        self.client = logged_in(self.app, BENCH_USER)
        self.client.get("/team")
        self.data = self.app.server.extensions["csc_dashboard"].data
        token = self.data.version_token()
        (rows_output,) = [
            d["output"]
            for d in self.client.get("/_dash-dependencies").get_json()
            if d["output"].startswith("..drill-grid.getRowsResponse")
        ]
        self.requests: dict[str, Any] = {
            "team tiles": tiles_request(team_tiles, token, team),
            "borough tiles": tiles_request(borough_tiles, token, "borough"),
            # Opening the panel, then its grid's first block of rows.
            "team drill-down": [
                drill_request(team_tiles, "overdue_steps", team),
                drill_rows_request(rows_output, "overdue_steps", team),
            ],
            "borough drill-down": [
                drill_request(team_tiles, "overdue_steps", "borough"),
                drill_rows_request(rows_output, "overdue_steps", "borough"),
            ],
        }
        for body in self.requests.values():
            post(self.client, body)  # the first view fills the data layer's cache
        self.stop_preload = self.data.preload(PRELOAD_S)

    def wait_for_preload(self) -> None:
        token = self.data.store.version_token()
        deadline = time.monotonic() + 30
        while self.data.preloaded != token:  # read, indexed, recent views computed
            if time.monotonic() > deadline:
                raise RuntimeError("the preloader did not load the new version within 30 s")
            time.sleep(0.01)

    def time(self, case: str) -> tuple[float, int | None]:
        if case in self.requests:
            post(self.client, self.requests[case])  # a repeated view: what most requests are
            return post(self.client, self.requests[case])
        if ", after a refresh" in case:
            # The first view after a new snapshot of one dataset lands (as the scheduler's
            # refresh makes, without the daily history): the render cache misses, the data
            # layer recomputes only what reads the refreshed dataset. As production runs, the
            # worker's preloader has read the snapshot within a second of its landing (a
            # browser's poll comes up to 10 s after); "before the preload" is a view that
            # arrives first, and reads it itself.
            from dashboard.refresher import refresh_datasets

            before = case.endswith(", before the preload")
            if before:
                self.stop_preload()
            try:
                report = refresh_datasets(self.settings, [REFRESHED])
                if report.failed:
                    raise RuntimeError(f"refresh of {REFRESHED} failed: {report}")
                if not before:
                    self.wait_for_preload()
                return post(self.client, self.requests[case.split(", after a refresh")[0]])
            finally:
                if before:
                    self.stop_preload = self.data.preload(PRELOAD_S)
        if case == "team tiles, cold":  # a fresh worker: loads snapshots, runs the measures
            from dashboard.web.app import create_app

            fresh = logged_in(create_app(self.settings), BENCH_USER)
            return post(fresh, self.requests["team tiles"])[0], None
        started = time.perf_counter()
        for _ in range(100):
            self.data.version_token()
        return (time.perf_counter() - started) / 100, None


def measure(scales: dict[int, Scale], repeat: int) -> dict[int, dict[str, Any]]:
    """Medians per scale and case. Rounds alternate between scales so that load from other
    processes on a shared machine falls on every scale alike."""
    runs: dict[int, dict[str, list[tuple[float, int | None]]]] = {
        s: {c: [] for c in CASES} for s in scales
    }
    for round_ in range(repeat):
        for case in CASES:
            if case == "team tiles, cold" and round_ % 3:
                continue  # cold starts are slow; a third as many
            for scale, bench in scales.items():
                runs[scale][case].append(bench.time(case))
    return {
        scale: {
            case: (statistics.median(t for t, _ in found), found[0][1])
            for case, found in cases.items()
        }
        for scale, cases in runs.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "csc-dashboard-bench"
    )
    parser.add_argument(
        "--source-url",
        action="append",
        default=[],
        metavar="SCALE=URL",
        help="an existing demo borough for a scale (else a SQLite file is built in --work)",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    given = {int(k): v for k, v in (item.split("=", 1) for item in args.source_url)}

    scales = {s: Scale(prepare(s, args.work, given.get(s))) for s in args.scales}
    results = measure(scales, args.repeat)
    base, top = args.scales[0], args.scales[-1]
    print(f"| request | {' | '.join(f'{s}x ms (bytes)' for s in args.scales)} | {top}x / {base}x |")
    print("|---|" + "---|" * (len(args.scales) + 1))
    for name in CASES:
        cells = []
        for scale in args.scales:
            seconds, size = results[scale][name]
            cells.append(f"{seconds * 1000:.2f}" + (f" ({size:,})" if size else ""))
        ratio = results[top][name][0] / results[base][name][0]
        print(f"| {name} | {' | '.join(cells)} | {ratio:.2f} |")
    for scale in args.scales:
        print(
            f"\n{scale}x: {scales[scale].facts['borough_rows']:,} overdue steps in the borough, "
            f"{scales[scale].facts['team_rows']:,} in the first team's list"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
