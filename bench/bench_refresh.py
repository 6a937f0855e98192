"""Benchmark: refreshing every dataset in ``queries/`` at 1x, 10x (and 100x) the demo borough.

For each target (SQLite file, PostgreSQL database) and scale, builds a source with
``csc-dashboard demo-data``, then for every dataset measures:

- raw: the dataset's SQL run directly, ``conn.execute(text(sql), params).fetchall()``;
- refresh: ``refresh_datasets(settings, [id])`` end to end (parse the queries folder, open the
  read-only source, run, type the columns, encode Parquet, write the snapshot with retention);
- overhead: refresh / raw;
- latest() cold (new store object: metadata query + Parquet decode) and warm (cached version:
  one metadata query), and the stored Parquet size.

The best of ``--repeat`` runs is kept for raw and refresh, after one unmeasured warm-up query.
Also times one ``refresh_datasets`` call over all datasets, as the ``refresh`` command runs.
The store is on the same kind of database as the source. Not a test: nothing asserts a time.

    python bench/bench_refresh.py                        # 1x and 10x, SQLite and PostgreSQL
    python bench/bench_refresh.py --scales 1 10 100      # 100x takes a long while to generate
    python bench/bench_refresh.py --targets sqlite --scales 1

Also times the history hook (`record_history`: every indicator for the borough, each team and
each cost centre) and a team's first `values()` in a new data layer after loading a version.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.config import Settings  # noqa: E402
from dashboard.data import DataLayer  # noqa: E402
from dashboard.datasets import load_datasets  # noqa: E402
from dashboard.history import record_history  # noqa: E402
from dashboard.model import Scope  # noqa: E402
from dashboard.refresher import refresh_datasets  # noqa: E402
from dashboard.reporting import ReportingPeriod  # noqa: E402
from dashboard.store import SnapshotStore, store_frames, store_snapshots, with_driver  # noqa: E402

DEFAULT_POPULATION = 60_000
AS_OF = dt.date(2026, 3, 31)
WARM_READS = 200
TEAM = 12  # "Locality 1 Child in Need and Protection Team 1" at every scale
TEAM_ROUNDS = 7


@dataclass
class Row:
    dataset_id: str
    rows: int
    raw_s: float
    refresh_s: float
    cold_ms: float
    warm_ms: float
    parquet_kb: float

    @property
    def overhead(self) -> float:
        return self.refresh_s / self.raw_s if self.raw_s else float("nan")


def generate(url: str, population: int, store_url: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable, "-m", "dashboard", "demo-data",
            "--url", url, "--population", str(population), "--as-of", AS_OF.isoformat(),
            "--store-url", store_url,
        ],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"demo-data failed for {url}: {result.stderr.strip()[-800:]}")
    return time.perf_counter() - started


def raw_seconds(engine, sql: str, params: dict) -> float:
    with engine.connect() as conn:
        started = time.perf_counter()
        conn.execute(text(sql), params).fetchall()
        return time.perf_counter() - started


def parquet_kb(store: SnapshotStore, dataset_id: str) -> float:
    s, f = store_snapshots, store_frames
    with store.engine.connect() as conn:
        size = conn.scalar(
            select(func.length(f.c.parquet))
            .join(s, s.c.snapshot_id == f.c.snapshot_id)
            .where(s.c.dataset_id == dataset_id)
            .order_by(s.c.version.desc())
            .limit(1)
        )
    return (size or 0) / 1024


def measure(source_url: str, store_url: str, repeat: int) -> tuple[list[Row], float, float]:
    settings = Settings(
        source_url=source_url,
        store_url=store_url,
        queries_dir=ROOT / "queries",
        as_of=AS_OF,
        log_level="WARNING",
    )
    period = ReportingPeriod.for_date(AS_OF)
    specs, bad = load_datasets(settings.queries_dir)
    if bad:
        print(f"  skipping bad dataset files: {', '.join(bad)}")
    raw_engine = create_engine(with_driver(source_url))
    store = SnapshotStore.from_settings(settings)
    store.create_schema()
    results = []
    for dataset_id, spec in sorted(specs.items()):
        params = spec.bind(period)
        raw_seconds(raw_engine, spec.sql, params)  # warm-up: page cache, buffers, plan
        raws, refreshes, rows = [], [], 0
        for _ in range(repeat):
            raws.append(raw_seconds(raw_engine, spec.sql, params))
            started = time.perf_counter()
            report = refresh_datasets(settings, [dataset_id], store=store)
            refreshes.append(time.perf_counter() - started)
            run = report.runs[0]
            if not run.ok:
                raise SystemExit(f"{dataset_id} failed: {run.error}")
            rows = run.rows
        reader = SnapshotStore.from_settings(settings)
        started = time.perf_counter()
        reader.latest(dataset_id)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(WARM_READS):
            reader.latest(dataset_id)
        warm = (time.perf_counter() - started) / WARM_READS
        reader.dispose()
        results.append(
            Row(dataset_id, rows, min(raws), min(refreshes), cold * 1000, warm * 1000,
                parquet_kb(store, dataset_id))
        )  # fmt: skip
    started = time.perf_counter()
    report = refresh_datasets(settings, store=store)
    all_at_once = time.perf_counter() - started
    if report.failed:
        raise SystemExit(f"failed: {report.failed}")
    started = time.perf_counter()
    record_history(store, period, settings)
    history_s = time.perf_counter() - started
    team_ms = first_team_values_ms(settings, store)
    store.dispose()
    raw_engine.dispose()
    return results, all_at_once, history_s, team_ms


def first_team_values_ms(settings: Settings, store: SnapshotStore) -> float:
    """Median ms of a team's first ``values()`` in a new data layer whose snapshots are loaded
    (what a fresh worker pays for a team page beyond decoding the version). Team 12 is the same
    team with the same rows at every scale (the first locality)."""
    times = []
    for _ in range(TEAM_ROUNDS):
        data = DataLayer(settings, store)
        data.has_snapshots()  # load the version (decode, group rows by scope): not timed
        started = time.perf_counter()
        data.values(Scope.team(TEAM))
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def print_block(
    target: str,
    scale: int,
    gen_s: float,
    rows: list[Row],
    all_s: float,
    hist_s: float,
    team_ms: float,
):
    print(
        f"\n### {target}, {scale}x ({scale * DEFAULT_POPULATION:,} children; generated in {gen_s:.0f} s)\n"
    )
    print(
        "| dataset | rows | raw s | refresh s | overhead × | latest() cold ms | latest() warm ms | Parquet KB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.dataset_id} | {r.rows:,} | {r.raw_s:.3f} | {r.refresh_s:.3f} | {r.overhead:.2f} "
            f"| {r.cold_ms:.1f} | {r.warm_ms:.2f} | {r.parquet_kb:,.0f} |"
        )
    raw_total = sum(r.raw_s for r in rows)
    refresh_total = sum(r.refresh_s for r in rows)
    print(
        f"| **sum** | {sum(r.rows for r in rows):,} | {raw_total:.2f} | {refresh_total:.2f} "
        f"| {refresh_total / raw_total:.2f} | {sum(r.cold_ms for r in rows):.0f} "
        f"| {sum(r.warm_ms for r in rows):.1f} | {sum(r.parquet_kb for r in rows):,.0f} |"
    )
    print(
        f"\nAll datasets in one `refresh_datasets` call: {all_s:.2f} s; history hook: {hist_s:.2f} s;"
        f" first values(team {TEAM}) after loading a version: {team_ms:.0f} ms"
    )
    return raw_total, refresh_total, all_s, hist_s, team_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument(
        "--targets", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs per dataset; the best is kept")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "CSC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="PostgreSQL database to create the benchmark databases from",
    )
    args = parser.parse_args()
    print(
        f"# refresh benchmark: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"command: python bench/bench_refresh.py {' '.join(sys.argv[1:])}".rstrip())
    workdir = Path(tempfile.mkdtemp(prefix="bench_refresh_"))
    admin = create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []
    summary = []
    try:
        for target in args.targets:
            for scale in args.scales:
                tag = f"{target}_{scale}x"
                if target == "sqlite":
                    source_url = f"sqlite:///{workdir / f'{tag}_source.sqlite'}"
                    store_url = f"sqlite:///{workdir / f'{tag}_store.sqlite'}"
                else:
                    names = [
                        f"bench_{tag}_{kind}_{uuid.uuid4().hex[:6]}" for kind in ("src", "store")
                    ]
                    with admin.connect() as conn:
                        for name in names:
                            conn.execute(text(f'CREATE DATABASE "{name}"'))
                            created.append(name)
                    base = make_url(args.pg_admin_url)
                    source_url, store_url = (
                        base.set(database=name).render_as_string(hide_password=False)
                        for name in names
                    )
                gen_s = generate(
                    source_url, scale * DEFAULT_POPULATION, f"sqlite:///{workdir / 'users.sqlite'}"
                )
                rows, all_s, hist_s, team_ms = measure(source_url, store_url, args.repeat)
                totals = print_block(target, scale, gen_s, rows, all_s, hist_s, team_ms)
                summary.append((target, scale, *totals))
                sys.stdout.flush()
                if target == "sqlite":
                    for path in workdir.glob(f"{tag}_*"):
                        path.unlink()
    finally:
        with admin.connect() as conn:
            for name in created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(workdir, ignore_errors=True)

    print("\n### Scaling (sum over datasets; ratio against the 1x run of the same target)\n")
    print(
        "| target | scale | raw s | refresh s | overhead × | one-call refresh s | refresh vs 1x "
        "| history hook s | history vs 1x | first values(team) ms | team vs 1x |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = {row[0]: row for row in summary if row[1] == min(args.scales)}
    for target, scale, raw, refresh, all_s, hist_s, team_ms in summary:
        _, _, _, base_refresh, _, base_hist, base_team = base[target]
        print(
            f"| {target} | {scale}x | {raw:.2f} | {refresh:.2f} | {refresh / raw:.2f} | {all_s:.2f} "
            f"| {refresh / base_refresh:.1f} | {hist_s:.2f} | {hist_s / base_hist:.1f} "
            f"| {team_ms:.0f} | {team_ms / base_team:.2f} |"
        )


if __name__ == "__main__":
    main()
