"""The ``csc-dashboard`` command line (also ``python -m dashboard``). Contract: DESIGN.md.

Each sub-command parses its arguments here and hands over to the module that does the work;
errors a user can cause are printed as one clear line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Sequence

from dashboard.config import Settings


class UsageError(Exception):
    """A mistake in what the user asked for: printed as one line, exit status 2."""


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than zero: {value}")
    return number


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csc-dashboard",
        description="Real-time management dashboard for children's social care.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo-data", help="build a synthetic demo borough into a source database"
    )
    demo.add_argument("--url", help="SQLAlchemy URL to write to (default: DASHBOARD_SOURCE_URL)")
    demo.add_argument("--population", type=_positive_int, default=60_000,
                      help="children aged 0-17 in the borough (default 60000)")
    demo.add_argument("--years", type=_positive_int, default=6,
                      help="years of history (default 6)")
    demo.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    demo.add_argument("--as-of", type=_date, default=None,
                      help="reporting date the borough is built up to (default: DASHBOARD_AS_OF or today)")
    demo.add_argument("--store-url", default=None,
                      help="store to create demo users in (default: DASHBOARD_STORE_URL)")
    demo.set_defaults(handler=_demo_data)

    refresh = commands.add_parser("refresh", help="run datasets now and write snapshots")
    refresh.add_argument("--once", action="store_true",
                         help="run each dataset once and exit (the default; kept for scripts)")
    refresh.add_argument("datasets", nargs="*", metavar="DATASET",
                         help="dataset ids (default: all)")
    refresh.set_defaults(handler=_refresh)

    scheduler = commands.add_parser("scheduler", help="run the refresher forever (one per store)")
    scheduler.add_argument("--exit-if-locked", action="store_true",
                           help="exit (status 1) if another scheduler holds the store's lock, "
                                "instead of standing by to take over")
    scheduler.add_argument("--lock-retry", type=_positive_int, default=30, metavar="SECONDS",
                           help="while standing by, try the lock this often (default 30)")
    scheduler.set_defaults(handler=_scheduler)

    serve = commands.add_parser("serve", help="run the web app (production: gunicorn app:server)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_positive_int, default=8050)
    serve.set_defaults(handler=_serve)

    indicators = commands.add_parser(
        "indicators", help="print every indicator's current value for a scope"
    )
    indicators.add_argument("--json", action="store_true", help="print JSON (the only format)")
    indicators.add_argument("--scope", default="borough",
                            help="borough, team:<org_id> or cost_centre:<code> (default borough)")
    indicators.add_argument("--as-of", type=_date, default=None,
                            help="reporting date (default: DASHBOARD_AS_OF or today)")
    indicators.set_defaults(handler=_indicators)
    return parser


def _demo_data(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.demo import DemoDataError, generate_borough

    try:
        report = generate_borough(
            args.url or settings.source_url,
            population=args.population,
            years=args.years,
            seed=args.seed,
            as_of=args.as_of or settings.reporting_date(),
        )
    except DemoDataError as exc:
        # The target is untouched (generate_borough guarantees it); say why in one line.
        print(f"csc-dashboard demo-data: {exc}", file=sys.stderr)
        return 1
    print(report)
    return 0


def _history_hook():
    """The after-refresh hook that records the daily indicator history, once it exists.

    HOOK: ``dashboard.history.record_history(store, period)`` (the indicators work) writes the
    history; until that module is there, refreshes simply record no history.
    """
    try:
        from dashboard.history import record_history
    except ModuleNotFoundError as exc:
        if exc.name != "dashboard.history":
            raise  # the module exists but something it imports is missing: say so
        return None
    return record_history


def _refresh(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.refresher import UnknownDatasetError, refresh_datasets

    try:
        report = refresh_datasets(settings, args.datasets or None, after_refresh=_history_hook())
    except UnknownDatasetError as exc:
        raise UsageError(str(exc)) from None
    if not report.runs:
        raise UsageError(f"no dataset files (*.sql) in {settings.queries_dir}")
    print(report)
    failed = report.failed + (["history"] if report.after_refresh_error else [])
    if failed:
        print(f"csc-dashboard refresh: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.refresher import SchedulerLockedError, run_scheduler

    try:
        run_scheduler(
            settings,
            after_refresh=_history_hook(),
            exit_if_locked=args.exit_if_locked,
            lock_retry_s=args.lock_retry,
        )
    except SchedulerLockedError as exc:
        print(f"csc-dashboard scheduler: {exc}", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.web.serve import serve

    return serve(settings, host=args.host, port=args.port)


def _indicators(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from dashboard.data import DataLayer
    from dashboard.indicators.rag import ThresholdsFileError
    from dashboard.model import Scope, ScopeError

    try:
        scope = Scope.parse(args.scope)
        data = DataLayer(settings)
    except (ScopeError, ThresholdsFileError) as exc:
        raise UsageError(str(exc)) from None
    snapshots_as_of = data.snapshot_as_of()
    if snapshots_as_of is None:
        print(
            "csc-dashboard indicators: the store has no snapshots yet; "
            "run csc-dashboard refresh first",
            file=sys.stderr,
        )
        return 1
    if args.as_of is not None and args.as_of != snapshots_as_of:
        print(
            f"csc-dashboard indicators: the snapshots were computed as of {snapshots_as_of}, "
            f"not {args.as_of}; refresh for that date first: "
            f"DASHBOARD_AS_OF={args.as_of} csc-dashboard refresh",
            file=sys.stderr,
        )
        return 1
    try:
        values = data.values(scope)
    except ScopeError as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps([value.to_json() for value in values], indent=2, default=str))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError: a bad DASHBOARD_* variable
        print(f"csc-dashboard: bad configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        return int(args.handler(args, settings) or 0)
    except UsageError as exc:
        print(f"csc-dashboard {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
