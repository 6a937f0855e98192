"""Admin pages: the audit trail ("who looked at this child's record?") and who can see what.

Plain server-rendered pages (Jinja, autoescaped), for administrators only: the guard refuses
every ``admin_*`` endpoint to anyone else with 403. Filters come from the query string and are
validated here (400 for a value that is not a username, a child id or a date).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask, Response, render_template, request

from dashboard.access import access_frames, everyone, org_names
from dashboard.users import UserError, normalise_username
from dashboard.web import context

AUDIT_LIMIT = 500
MAX_PERSON_ID = 2**63 - 1


def register_admin(server: Flask) -> None:
    server.add_url_rule("/admin/audit", "admin_audit", audit_page)
    server.add_url_rule("/admin/access", "admin_access", access_page)


class FilterError(ValueError):
    pass


def audit_page() -> Response:
    """The audit trail, newest first, filterable by user, child and dates."""
    try:
        filters = _audit_filters(request.args)
    except FilterError as exc:
        return _render("admin_audit.html", 400, error=str(exc), events=[], filters={})
    events = context.current().accounts.audit.query(limit=AUDIT_LIMIT, **filters)
    return _render(
        "admin_audit.html",
        200,
        error=None,
        events=events,
        filters={k: ("" if v is None else v) for k, v in filters.items()},
        limit=AUDIT_LIMIT,
    )


def _audit_filters(args: Any) -> dict[str, Any]:
    user = (args.get("user") or "").strip()
    child = (args.get("child") or "").strip()
    since = (args.get("since") or "").strip()
    until = (args.get("until") or "").strip()
    filters: dict[str, Any] = {"username": None, "person_id": None, "since": None, "until": None}
    if user:
        try:
            filters["username"] = normalise_username(user)
        except UserError as exc:
            raise FilterError(str(exc)) from None
    if child:
        if (
            not (child.isascii() and child.isdigit())
            or len(child) > 19
            or int(child) > MAX_PERSON_ID
        ):
            raise FilterError(f"a child's id is a whole number: {child[:40]!r}")
        filters["person_id"] = int(child)
    for key, text in (("since", since), ("until", until)):
        if text:
            try:
                filters[key] = dt.date.fromisoformat(text[:10]) if len(text) == 10 else None
            except ValueError:
                filters[key] = None
            if filters[key] is None:
                raise FilterError(f"{key} must be a date, YYYY-MM-DD: {text[:40]!r}")
    return filters


def access_page() -> Response:
    """Everyone with a role, a cost centre, a grant or an account, and what they may see."""
    ctx = context.current()
    users = ctx.accounts.users
    roles, organisations, holders = access_frames(ctx.store)
    accounts = {u.username: u for u in users.list_users()}
    listing = everyone(
        roles,
        organisations,
        holders,
        users.all_grants(),
        list(accounts),
        as_of=ctx.settings.reporting_date(),
    )
    names = org_names(organisations)
    rows = [
        {
            "username": a.username,
            "account": accounts.get(a.username),
            "tiers": ", ".join(a.tiers) or "none",
            "borough": a.borough,
            "teams": ", ".join(f"{t} {names.get(t, '')}".strip() for t in sorted(a.team_ids)),
            "cost_centres": ", ".join(sorted(a.cost_centres)),
            "reasons": a.reasons,
        }
        for a in listing
    ]
    return _render("admin_access.html", 200, rows=rows)


def _render(template: str, status: int, **values: Any) -> Response:
    return Response(render_template(template, **values), status, mimetype="text/html")
