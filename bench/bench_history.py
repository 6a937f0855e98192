"""Benchmark: the daily history hook and a team's first values() on sources already built.

``bench_refresh.py`` builds its sources each run; at 100x that alone takes 10-15 minutes. This
script takes existing source and store URLs (one pair per scale, built with
``csc-dashboard demo-data``), refreshes the store if asked, then times:

- the history hook, ``record_history``: every indicator for the borough, each team and each
  cost centre, in wall-clock and CPU seconds (CPU time is steadier on a shared machine);
- a team's first ``values()`` in a new data layer whose snapshots are loaded, the median of
  ``--rounds`` (team 12 has the same rows at every scale: the first locality's first team).

Ratios are against the first pair given. Not a test: nothing asserts a time.

    python bench/bench_history.py \\
        1x=postgresql+psycopg://postgres@127.0.0.1:5432/src_1x,postgresql+psycopg://postgres@127.0.0.1:5432/store_1x \\
        100x=postgresql+psycopg://postgres@127.0.0.1:5432/src_100x,postgresql+psycopg://postgres@127.0.0.1:5432/store_100x \\
        --refresh
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.config import Settings  # noqa: E402
from dashboard.data import DataLayer  # noqa: E402
from dashboard.history import record_history  # noqa: E402
from dashboard.model import Scope  # noqa: E402
from dashboard.refresher import refresh_datasets  # noqa: E402
from dashboard.reporting import ReportingPeriod  # noqa: E402
from dashboard.store import SnapshotStore  # noqa: E402

AS_OF = dt.date(2026, 3, 31)  # as bench_refresh.py builds its sources
TEAM = 12


def measure(source_url: str, store_url: str, refresh: bool, rounds: int) -> dict[str, float]:
    settings = Settings(
        source_url=source_url,
        store_url=store_url,
        queries_dir=ROOT / "queries",
        as_of=AS_OF,
        log_level="WARNING",
    )
    store = SnapshotStore.from_settings(settings)
    store.create_schema()
    out: dict[str, float] = {}
    try:
        if refresh:
            started = time.perf_counter()
            report = refresh_datasets(settings, store=store)
            out["refresh_s"] = time.perf_counter() - started
            if report.failed:
                raise SystemExit(f"refresh failed: {report.failed}")
        data = DataLayer(settings, store)
        out["teams"] = len(data.teams())
        out["cost_centres"] = len(data.cost_centres())
        wall, cpu = time.perf_counter(), time.process_time()
        record_history(store, ReportingPeriod.for_date(AS_OF), settings)
        out["history_s"] = time.perf_counter() - wall
        out["history_cpu_s"] = time.process_time() - cpu
        times = []
        for _ in range(rounds):
            data = DataLayer(settings, store)
            data.has_snapshots()  # load the version (decode, group rows by scope): not timed
            started = time.perf_counter()
            data.values(Scope.team(TEAM))
            times.append(time.perf_counter() - started)
        out["team_ms"] = statistics.median(times) * 1000
    finally:
        store.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", help="LABEL=SOURCE_URL,STORE_URL")
    parser.add_argument("--refresh", action="store_true", help="refresh every dataset first")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"command: python bench/bench_history.py {' '.join(sys.argv[1:])}")
    print(
        "\n| scale | teams | cost centres | history hook s | CPU s | CPU vs first "
        "| first values(team) ms | team vs first |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    first: dict[str, float] | None = None
    for pair in args.pairs:
        label, _, urls = pair.partition("=")
        source_url, _, store_url = urls.partition(",")
        if not (label and source_url and store_url):
            raise SystemExit(f"expected LABEL=SOURCE_URL,STORE_URL, got {pair!r}")
        row = measure(source_url, store_url, args.refresh, args.rounds)
        first = first or row
        print(
            f"| {label} | {row['teams']:.0f} | {row['cost_centres']:.0f} | {row['history_s']:.2f} "
            f"| {row['history_cpu_s']:.2f} | {row['history_cpu_s'] / first['history_cpu_s']:.1f} "
            f"| {row['team_ms']:.0f} | {row['team_ms'] / first['team_ms']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
