"""Benchmark: demo-borough generation at 1x, 10x and 100x the default population.

Each run is a fresh subprocess (so memory is measured per run) that builds the borough into a
new SQLite file or a new PostgreSQL database and reports its own peak RSS
(``resource.getrusage``). Prints seconds, rows written, rows per second and peak RSS, with
ratios against the 1x run of the same target. Not a test: nothing here asserts a time.

    python bench/bench_generate.py                         # 1x and 10x, SQLite and PostgreSQL
    python bench/bench_generate.py --scales 1 10 100       # the full table (100x takes a while)
    python bench/bench_generate.py --targets postgres --scales 100
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_POPULATION = 60_000
CHILD = r"""
import datetime as dt, json, resource, sys
from dashboard.demo import generate_borough
url, population, as_of = sys.argv[1], int(sys.argv[2]), dt.date.fromisoformat(sys.argv[3])
report = generate_borough(url, population=population, years=6, seed=42, as_of=as_of)
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
print(json.dumps({"seconds": report.seconds, "rows": report.total_rows, "peak_mb": peak_kb / 1024}))
"""


def run_one(url: str, population: int, as_of: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(population), as_of],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"generation failed for {url}: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument(
        "--targets", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    parser.add_argument(
        "--pg-admin-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="PostgreSQL database to create the benchmark databases from",
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="where SQLite files go (default: a temp dir)"
    )
    parser.add_argument("--as-of", default="2026-11-25")
    parser.add_argument("--keep", action="store_true", help="keep the generated databases")
    args = parser.parse_args()

    work = args.dir or Path(tempfile.mkdtemp(prefix="csc_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, int, dict]] = []
    header = f"{'target':<9}{'scale':>6}{'children':>11}{'seconds':>10}{'rows':>13}{'rows/s':>11}{'peak MB':>9}{'time x':>8}{'rows x':>8}"
    print(header, flush=True)
    for target in args.targets:
        base: dict | None = None
        for scale in args.scales:
            population = DEFAULT_POPULATION * scale
            cleanup = None
            if target == "sqlite":
                path = work / f"bench_{scale}x.sqlite"
                url = f"sqlite:///{path}"
                cleanup = lambda path=path: path.unlink(missing_ok=True)  # noqa: E731
            else:
                name = f"csc_bench_{scale}x_{uuid.uuid4().hex[:6]}"
                admin = create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                url = (
                    make_url(args.pg_admin_url)
                    .set(database=name)
                    .render_as_string(hide_password=False)
                )

                def cleanup(name=name, admin=admin):
                    with admin.connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    admin.dispose()

            try:
                r = run_one(url, population, args.as_of)
            finally:
                if not args.keep and cleanup is not None:
                    cleanup()
            base = base or r
            results.append((target, scale, r))
            print(
                f"{target:<9}{scale:>5}x{population:>11,}{r['seconds']:>10.1f}{r['rows']:>13,}"
                f"{r['rows'] / r['seconds']:>11,.0f}{r['peak_mb']:>9,.0f}"
                f"{r['seconds'] / base['seconds']:>8.1f}{r['rows'] / base['rows']:>8.1f}",
                flush=True,
            )
    if args.dir is None and not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
