"""What access control costs per request and per login, on the demo borough. Prints figures.

    python bench/access_costs.py [--population 60000]

Figures: one password check at the default scrypt cost (the price of a login, paid on purpose);
resolve_access for one user over the demo borough's access frames (paid per request, or per
snapshot version if cached); Access.allows; one audit record of a 50-child drill-down; one
throttle check.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from dashboard.access import everyone, resolve_access, teams_of_service
from dashboard.audit import AuditLog
from dashboard.config import PROJECT_ROOT
from dashboard.demo import generate_borough
from dashboard.demo_users import read_access_datasets
from dashboard.model import Scope
from dashboard.passwords import ScryptHasher
from dashboard.throttle import LoginThrottle

AS_OF = dt.date(2026, 11, 25)


def per_call(fn, repeat: int) -> float:  # noqa: ANN001
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--population", type=int, default=60_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_access_"))
    source = f"sqlite:///{folder / 'source.sqlite'}"
    store = f"sqlite:///{folder / 'store.sqlite'}"
    generate_borough(source, population=args.population, years=6, seed=42, as_of=AS_OF)
    frames = read_access_datasets(source, AS_OF, PROJECT_ROOT / "queries")
    roles, orgs, holders = frames["user_roles"], frames["organisation"], frames["budget_holders"]
    listing = everyone(roles, orgs, holders, (), as_of=AS_OF)
    manager = next(a for a in listing if len(a.team_ids) > 1 and not a.borough)
    hasher = ScryptHasher()
    encoded = hasher.hash("a long enough passphrase")
    tree = teams_of_service(orgs)
    audit = AuditLog(store)
    throttle = LoginThrottle(store)
    rows = [
        ("password check, default scrypt cost (per login)",
         per_call(lambda: hasher.verify("a long enough passphrase", encoded), 5)),
        (f"resolve_access, one user ({len(roles)} role rows, {len(orgs)} org nodes)",
         per_call(lambda: resolve_access(manager.username, roles, orgs, holders, (), as_of=AS_OF), 50)),
        ("Access.allows(service scope)",
         per_call(lambda: manager.allows(Scope.parse("service:1"), tree), 200)),
        ("audit record, 50 children (SQLite store)",
         per_call(lambda: audit.record("bench", "/team", "x", "team:1", 50, range(1000, 1050)), 50)),
        ("throttle check (SQLite store)", per_call(lambda: throttle.check("bench", "10.0.0.1"), 200)),
    ]  # fmt: skip
    print(f"access costs, demo borough of {args.population} children, as of {AS_OF}")
    print("| operation | ms per call |")
    print("|---|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1000:.2f} |")


if __name__ == "__main__":
    main()
