"""Flask routes beside the pages: the JSON API, the health check and drill-down downloads.

Every route sits behind ``session.guard`` (registered as ``before_request`` for the whole
server, Dash's own endpoints included), takes its scope from ``session.scope_or_abort`` (400 for
a scope that does not parse, 403 for one the user may not see) and reads data only through
``session.scoped_data()``, which checks the scope again and audits child-level rows.

``/health`` is public (monitoring probes carry no login) and so says only whether the store is
reachable and each dataset's age and state: no values, no row counts, no error texts (a database
error can quote a row).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from typing import Any

import pandas as pd
from flask import Flask, Response, abort, request

from dashboard.audit import AuditError
from dashboard.model import ScopeError
from dashboard.scoped import AccessDenied
from dashboard.web import context
from dashboard.web.session import error_response, scope_or_abort, scoped_data

log = logging.getLogger(__name__)

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


# What /health may say about a dataset: ages and states, nothing drawn from the data.
HEALTH_FIELDS = ("dataset_id", "title", "refresh_s", "computed_at", "age_s", "status", "as_of")


def register_routes(server: Flask) -> None:
    server.add_url_rule("/api/indicators", "api_indicators", api_indicators)
    server.add_url_rule("/health", "health", health)
    server.add_url_rule("/download/<indicator_id>.<fmt>", "download", download)


def _bad_request(exc: Exception) -> Response:
    return error_response(400, str(exc))


def api_indicators() -> Response:
    """``[v.to_json() for v in values(scope)]``: the JSON of ``csc-dashboard indicators --json``.

    Without ``?scope=`` the user's own default scope (the borough for a borough user)."""
    scope = scope_or_abort(request.args.get("scope"))
    try:
        values = scoped_data().values(scope)
    except ScopeError as exc:  # e.g. a team id the organisation does not have
        return _bad_request(exc)
    except AccessDenied:
        return error_response(403, "That scope is not available to you.")
    # The same serialisation as ``csc-dashboard indicators --json``.
    body = json.dumps([v.to_json() for v in values], indent=2, default=str)
    return Response(body, mimetype="application/json")


def health() -> Response:
    """Store reachability and every dataset's age and status; 503 when the store is down."""
    ctx = context.current()
    now = dt.datetime.now(dt.UTC)
    try:
        reachable = bool(ctx.store.ping())
    except Exception:  # ping should not raise, but health must answer whatever happens
        log.exception("store ping failed")
        reachable = False
    datasets: list[dict[str, Any]] = []
    if reachable:
        try:
            datasets = [_jsonable(status) for status in ctx.data.dataset_status()]
        except Exception:
            log.exception("dataset status failed")
            reachable = False
            datasets = []
    body = {
        "status": "ok" if reachable else "unavailable",
        "store": {"reachable": reachable},
        "checked_at": now.isoformat(),
        "datasets": datasets,
    }
    return Response(
        json.dumps(body, indent=2, default=str),
        200 if reachable else 503,
        mimetype="application/json",
    )


def download(indicator_id: str, fmt: str) -> Response:
    """The drill-down rows of one indicator for a scope, as CSV or Excel, built on the server."""
    if fmt not in FORMATS:
        abort(404)
    data = context.current().data
    if indicator_id not in {i.id for i in data.catalogue()}:
        abort(404)
    scope = scope_or_abort(request.args.get("scope"))
    try:
        # Audited (an export) before the rows are turned into a file.
        frame = scoped_data().drilldown(indicator_id, scope, action="export")
    except ScopeError as exc:  # unknown team, or an indicator that does not apply to the scope
        return _bad_request(exc)
    except AccessDenied:
        return error_response(403, "That scope is not available to you.")
    except AuditError as exc:
        return error_response(503, str(exc))
    name = f"{indicator_id}-{str(scope).replace(':', '-').replace(',', '_')}.{fmt}"
    payload = to_csv(frame) if fmt == "csv" else to_xlsx(frame, indicator_id)
    return Response(
        payload,
        mimetype=FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def to_csv(frame: pd.DataFrame) -> bytes:
    # A byte-order mark so Excel opens UTF-8 names correctly.
    return frame.to_csv(index=False).encode("utf-8-sig")


def to_xlsx(frame: pd.DataFrame, sheet: str) -> bytes:
    buffer = io.BytesIO()
    out = frame.copy()
    for column in out.columns:  # Excel cannot hold time zones
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_localize(None)
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        out.to_excel(writer, index=False, sheet_name=sheet[:31])
    return buffer.getvalue()


def _jsonable(status: dict[str, Any]) -> dict[str, Any]:
    """A dataset's age and state (from the data layer) with ISO dates; nothing else."""
    return {
        key: item.isoformat() if isinstance(item, dt.datetime | dt.date) else item
        for key, item in status.items()
        if key in HEALTH_FIELDS
    }
