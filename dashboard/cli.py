"""The ``csc-dashboard`` command line (also ``python -m dashboard``). Contract: DESIGN.md.

Each sub-command parses its arguments here and hands over to the module that does the work;
errors a user can cause are printed as one clear line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
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
    demo.add_argument(
        "--population",
        type=_positive_int,
        default=60_000,
        help="children aged 0-17 in the borough (default 60000)",
    )
    demo.add_argument("--years", type=_positive_int, default=6, help="years of history (default 6)")
    demo.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    demo.add_argument(
        "--as-of",
        type=_date,
        default=None,
        help="reporting date the borough is built up to (default: DASHBOARD_AS_OF or today)",
    )
    demo.add_argument(
        "--store-url",
        default=None,
        help="store to create demo users in (default: DASHBOARD_STORE_URL)",
    )
    demo.set_defaults(handler=_demo_data)

    refresh = commands.add_parser("refresh", help="run datasets now and write snapshots")
    refresh.add_argument(
        "--once",
        action="store_true",
        help="run each dataset once and exit (the default; kept for scripts)",
    )
    refresh.add_argument(
        "datasets", nargs="*", metavar="DATASET", help="dataset ids (default: all)"
    )
    refresh.set_defaults(handler=_refresh)

    scheduler = commands.add_parser("scheduler", help="run the refresher forever (one per store)")
    scheduler.add_argument(
        "--exit-if-locked",
        action="store_true",
        help="exit (status 1) if another scheduler holds the store's lock, "
        "instead of standing by to take over",
    )
    scheduler.add_argument(
        "--lock-retry",
        type=_positive_int,
        default=30,
        metavar="SECONDS",
        help="while standing by, try the lock this often (default 30)",
    )
    scheduler.set_defaults(handler=_scheduler)

    serve = commands.add_parser("serve", help="run the web app (production: gunicorn app:server)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_positive_int, default=8050)
    serve.set_defaults(handler=_serve)

    indicators = commands.add_parser(
        "indicators", help="print every indicator's current value for a scope"
    )
    indicators.add_argument("--json", action="store_true", help="print JSON (the only format)")
    indicators.add_argument(
        "--scope",
        default="borough",
        help="borough, team:<org_id> or cost_centre:<code> (default borough)",
    )
    indicators.add_argument(
        "--as-of",
        type=_date,
        default=None,
        help="reporting date (default: DASHBOARD_AS_OF or today)",
    )
    indicators.set_defaults(handler=_indicators)

    users = commands.add_parser("users", help="manage login accounts and admin grants")
    users_commands = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = users_commands.add_parser("add", help="create an account (password from a prompt)")
    add.add_argument("username")
    add.add_argument("--name", default="", help="display name (default: the username)")
    add.add_argument("--admin", action="store_true", help="may use the admin pages")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (never from argv)",
    )
    add.add_argument(
        "--no-password",
        action="store_true",
        help="no password login: single sign-on (trusted header) only",
    )
    add.set_defaults(handler=_users_add)
    passwd = users_commands.add_parser("passwd", help="set a new password")
    passwd.add_argument("username")
    passwd.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    passwd.set_defaults(handler=_users_passwd)
    for action, helptext in (
        ("disable", "stop an account logging in"),
        ("enable", "let a disabled account log in again"),
    ):
        toggle = users_commands.add_parser(action, help=helptext)
        toggle.add_argument("username")
        toggle.set_defaults(handler=_users_toggle)
    listing = users_commands.add_parser("list", help="list accounts")
    listing.set_defaults(handler=_users_list)
    for action, helptext in (("grant", "grant an extra scope"), ("revoke", "revoke a grant")):
        change = users_commands.add_parser(action, help=helptext)
        change.add_argument("username")
        change.add_argument(
            "scope",
            help="borough, team:<org_id>, service:<org_id>, teams:<id>,<id> or cost_centre:<code>",
        )
        change.add_argument("--by", default="cli", help="who is granting (kept with the grant)")
        change.set_defaults(handler=_users_grant)

    access = commands.add_parser(
        "access", help="list who can see what, and why (roles from the latest snapshots, grants)"
    )
    access.add_argument("username", nargs="?", help="one user (default: everyone)")
    access.add_argument(
        "--as-of",
        type=_date,
        default=None,
        help="roles running on this date (default: DASHBOARD_AS_OF or today)",
    )
    access.set_defaults(handler=_access)

    audit = commands.add_parser(
        "audit", help="show the audit trail: who looked at which children's records"
    )
    audit.add_argument("--user", help="only this user's views and exports")
    audit.add_argument(
        "--child",
        type=_positive_int,
        metavar="PERSON_ID",
        help="only events that showed this child (who looked at their record?)",
    )
    audit.add_argument("--since", type=_date, help="from this date (inclusive)")
    audit.add_argument("--until", type=_date, help="up to this date (inclusive)")
    audit.add_argument(
        "--limit",
        type=_positive_int,
        default=1000,
        help="at most this many events, newest first (default 1000)",
    )
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.set_defaults(handler=_audit)
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
    return _demo_accounts(args, settings)


def _demo_accounts(args: argparse.Namespace, settings: Settings) -> int:
    """One demo account per tier and scope, from the new borough's own workers (demo mode only)."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard.demo_users import create_demo_users

    store_url = args.store_url or settings.store_url
    try:
        created = create_demo_users(
            store_url, args.url or settings.source_url, args.as_of or settings.reporting_date()
        )
    except (SQLAlchemyError, ValueError) as exc:
        print(
            f"csc-dashboard demo-data: could not create the demo accounts: {exc}", file=sys.stderr
        )
        return 1
    print(f"demo accounts in {store_url} (password 'demo'; they log in only in demo mode):")
    for user in created:
        print(f"  {user.username:<12} {user.tier:<8} {user.display_name}: {user.scope}")
    return 0


def _history_hook(settings: Settings):
    """The after-refresh hook that records the daily indicator history (incrementally, for
    the scheduler: see ``dashboard.history.HistoryRecorder``)."""
    from dashboard.history import HistoryRecorder

    return HistoryRecorder(settings)


def _refresh(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.refresher import UnknownDatasetError, refresh_datasets

    try:
        report = refresh_datasets(
            settings, args.datasets or None, after_refresh=_history_hook(settings)
        )
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

    if settings.scheduler_nice and hasattr(os, "nice"):
        os.nice(settings.scheduler_nice)  # batch work: the web workers answer people first
    try:
        run_scheduler(
            settings,
            after_refresh=_history_hook(settings),
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


def _read_password(args: argparse.Namespace) -> str:
    """The new password: first line of stdin, or typed twice at a prompt. Never from argv."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageError("no terminal to prompt for the password: use --password-stdin")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise UsageError("the two passwords differ")
    return first


def _user_store(settings: Settings):  # noqa: ANN202 - imported lazily, like every handler's work
    from dashboard.users import UserStore

    return UserStore(settings.store_url)


def _users_add(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.passwords import PasswordPolicyError
    from dashboard.users import UserError

    password = None if args.no_password else _read_password(args)
    try:
        user = _user_store(settings).create_user(args.username, password, args.name, args.admin)
    except (UserError, PasswordPolicyError) as exc:
        raise UsageError(str(exc)) from None
    kind = "admin account" if user.is_admin else "account"
    sso = "" if user.has_password else " (single sign-on only)"
    print(f"created {kind} {user.username}{sso}")
    return 0


def _users_passwd(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.passwords import PasswordPolicyError
    from dashboard.users import UserError

    try:
        _user_store(settings).set_password(args.username, _read_password(args))
    except (UserError, PasswordPolicyError) as exc:
        raise UsageError(str(exc)) from None
    print(f"password changed for {args.username.strip().lower()}")
    return 0


def _users_toggle(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.users import UserError

    store = _user_store(settings)
    try:
        (store.disable if args.users_command == "disable" else store.enable)(args.username)
    except UserError as exc:
        raise UsageError(str(exc)) from None
    print(f"{args.users_command}d {args.username.strip().lower()}")
    return 0


def _users_list(args: argparse.Namespace, settings: Settings) -> int:
    store = _user_store(settings)
    accounts = store.list_users()
    if not accounts:
        print("no accounts yet: csc-dashboard users add USERNAME")
    for user in accounts:
        flags = [
            flag
            for flag, on in (
                ("admin", user.is_admin),
                ("demo-only", user.is_demo),
                ("single sign-on only", not user.has_password),
                ("disabled", user.disabled),
            )
            if on
        ]
        grants = ", ".join(g.scope for g in store.grants(user.username))
        print(
            f"{user.username:<24} {user.display_name:<30} {', '.join(flags) or '-':<22} "
            f"grants: {grants or '-'}"
        )
    return 0


def _users_grant(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.model import ScopeError
    from dashboard.users import UserError

    store = _user_store(settings)
    try:
        if args.users_command == "grant":
            grant = store.grant(args.username, args.scope, granted_by=args.by)
            print(f"granted {grant.scope} to {grant.username} (by {grant.granted_by})")
        elif store.revoke(args.username, args.scope, revoked_by=args.by):
            print(f"revoked {args.scope} from {args.username.strip().lower()}")
        else:
            raise UsageError(f"{args.username} holds no grant of {args.scope}")
    except (UserError, ScopeError) as exc:
        raise UsageError(str(exc)) from None
    return 0


def _access(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.access import access_frames, everyone, org_names
    from dashboard.store import SnapshotStore
    from dashboard.users import UserError, normalise_username

    users = _user_store(settings)
    snapshots = SnapshotStore.from_settings(settings)
    roles, organisations, holders = access_frames(snapshots)
    accounts = {u.username: u for u in users.list_users()}
    wanted = None
    if args.username:
        try:
            wanted = normalise_username(args.username)
        except UserError as exc:
            raise UsageError(str(exc)) from None
    listing = everyone(
        roles,
        organisations,
        holders,
        users.all_grants(),
        [*accounts, *([wanted] if wanted else [])],
        as_of=args.as_of or settings.reporting_date(),
    )
    names = org_names(organisations)
    for access in listing:
        if wanted and access.username != wanted:
            continue
        account = accounts.get(access.username)
        notes = ["no account (single sign-on or none)"] if account is None else [
            note for note, on in (("account", True), ("admin", account.is_admin),
                                  ("demo-only", account.is_demo), ("DISABLED", account.disabled))
            if on
        ]  # fmt: skip
        print(f"{access.username} ({'; '.join(notes)})")
        if access.is_empty:
            print("  sees no data")
        else:
            teams = ", ".join(f"{t} {names.get(t, '')}".strip() for t in sorted(access.team_ids))
            print(f"  tiers: {', '.join(access.tiers)}")
            print(f"  borough: {'yes' if access.borough else 'no'}")
            print(f"  teams: {teams or '-'}")
            print(f"  cost centres: {', '.join(sorted(access.cost_centres)) or '-'}")
        for reason in access.reasons:
            print(f"  because: {reason}")
    return 0


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from dashboard.audit import AuditLog

    events = AuditLog(settings.store_url).query(
        username=args.user, person_id=args.child, since=args.since, until=args.until,
        limit=args.limit,
    )  # fmt: skip
    if args.json:
        print(json.dumps([
            {
                "event_id": e.event_id, "occurred_at": e.occurred_at.isoformat(),
                "username": e.username, "action": e.action, "route": e.route,
                "indicator_id": e.indicator_id, "scope": e.scope, "row_count": e.row_count,
                "person_ids": list(e.person_ids),
            }
            for e in events
        ], indent=2))  # fmt: skip
        return 0
    if args.child is not None:
        print(f"who looked at child {args.child}'s record: {len(events)} event(s)")
    if not events:
        print("no audit events match")
    for e in events:
        children = ",".join(str(p) for p in e.person_ids[:20])
        more = f" (+{len(e.person_ids) - 20} more)" if len(e.person_ids) > 20 else ""
        print(
            f"{e.occurred_at:%Y-%m-%d %H:%M:%S}Z  {e.username:<16} {e.action:<6} {e.route}  "
            f"indicator={e.indicator_id or '-'} scope={e.scope} rows={e.row_count} "
            f"children={children or '-'}{more}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError: a bad DASHBOARD_* variable
        print(f"csc-dashboard: bad configuration: {exc}", file=sys.stderr)
        return 2
    from dashboard.logging_setup import configure_logging

    configure_logging(settings.log_level)  # JSON lines on stderr (stdout is the command's output)
    try:
        return int(args.handler(args, settings) or 0)
    except UsageError as exc:
        print(f"csc-dashboard {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
