"""The generic callbacks: one per kind of thing on a page, matched by id pattern.

Every tile on every page is drawn by ``render_tiles`` (ids ``{"type": "tile", "ind": ...}``),
every chart by ``render_charts``, every list by ``render_lists``. They run when the page's
scope changes or when the version token changes, and the token changes only when a new
snapshot lands: the poll itself (``poll_version``) costs no SQL and no pandas (issue 4).

Each callback body is a plain function of the data layer and plain values, so tests and the
benchmark call them directly; ``register_callbacks`` only wires them to an app.

Access (issue 5): the wired callbacks never touch the data layer itself. Each takes the logged-in
user's ``ScopedData`` (``session.scoped_data()``), parses and checks the scope the browser sent
(400 if it does not parse, 403 if it is not the user's), and validates every id it was asked to
draw (400 for an unknown one), so a forged ``/_dash-update-component`` request gets nothing more
than the user's own page would show. Child-level rows are audited by ``ScopedData``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import dash
import pandas as pd
from dash import ALL, Input, Output, State, ctx, html, no_update
from flask import abort

from dashboard.audit import AuditError
from dashboard.indicators.charts import CHARTS
from dashboard.model import Indicator, IndicatorValue, Scope
from dashboard.web import charts, components
from dashboard.web.session import error_response, scope_or_abort, scoped_data

log = logging.getLogger(__name__)

HISTORY_DAYS = 90


# ----------------------------------------------------------------------------- plain functions


def poll_version(data: Any, known: str | None) -> str | Any:
    """The new version token, or ``no_update`` when nothing new has landed."""
    try:
        token = data.version_token()
    except Exception:  # store down: keep what the page shows; tiles carry their own state
        log.exception("version check failed")
        return no_update
    return no_update if token == known else token


def render_tiles(
    data: Any, scope: Scope, ids: Sequence[str], as_of: dt.date
) -> tuple[list[Any], list[str]]:
    """Children and class of each tile, in the order of ``ids``."""
    if not ids:
        return [], []
    applicable = set(data.applicable(scope))
    wanted = [i for i in ids if i in applicable]
    try:
        values = {v.id: v for v in data.values(scope, wanted)} if wanted else {}
    except Exception as exc:  # the store is unreachable: every tile says so, the page stays up
        log.exception("values failed for %s", scope)
        values = {}
        error = f"{exc.__class__.__name__}: {exc}"
    else:
        error = "no value returned"
    bodies, classes = [], []
    for indicator_id in ids:
        value = values.get(indicator_id)
        if value is None and indicator_id not in applicable:
            value = _placeholder(data, indicator_id, scope, "no_data", f"Not measured for {scope}")
        elif value is None:
            value = _placeholder(data, indicator_id, scope, "failed", error)
        measured = value.status != "failed" and indicator_id in applicable
        history = _history(data, indicator_id, scope) if measured else None
        bodies.append(components.tile_body(value, history, as_of))
        classes.append(components.tile_class(value))
    return bodies, classes


def render_charts(data: Any, scope: Scope, chart_ids: Sequence[str]) -> list[Any]:
    figures = []
    thresholds = _caseload_threshold(data)
    for chart_id in chart_ids:
        try:
            frame = data.chart(chart_id, scope)
        except Exception:  # one failed chart must not blank the others
            log.exception("chart %s failed for %s", chart_id, scope)
            frame = pd.DataFrame()
        threshold = thresholds if chart_id == "caseload_by_worker" else None
        figures.append(charts.figure_for(chart_id, frame, threshold))
    return figures


def render_history(data: Any, scope: Scope, indicator_ids: Sequence[str]) -> list[Any]:
    titles = _titles(data)
    return [
        charts.history_figure(titles.get(i, i), _history(data, i, scope)) for i in indicator_ids
    ]


def render_lists(
    data: Any, scope: Scope, indicator_ids: Sequence[str]
) -> tuple[list[Any], list[Any], list[Any]]:
    rows, columns, links = [], [], []
    for indicator_id in indicator_ids:
        frame, error = _drilldown(data, indicator_id, scope)
        rows.append(components.grid_records(frame))
        columns.append(components.column_defs(frame))
        links.append(
            [html.P(error, className="tile__error")]
            if error
            else list_links(indicator_id, str(scope), len(frame))
        )
    return rows, columns, links


def render_matrix(data: Any, scope: Scope) -> Any:
    try:
        matrix = data.team_matrix(scope)
    except Exception as exc:
        log.exception("team matrix failed")
        return html.P(f"The team matrix could not be computed: {exc}", className="tile__error")
    team_tier = [i for i in data.catalogue("team")]
    return components.team_matrix_table(matrix, team_tier)


def open_drilldown(data: Any, indicator_id: str, scope: Scope) -> dict[str, Any]:
    """Everything the drill-down panel shows for one tile: the rows its number counts."""
    indicator = _indicator(data, indicator_id)
    title = indicator.title if indicator else indicator_id
    frame, error = _drilldown(data, indicator_id, scope)
    return {
        "title": f"{title} · {scope}",
        "rows": components.grid_records(frame),
        "columns": components.column_defs(frame),
        "count": len(frame),
        "links": (
            [html.P(error, className="tile__error")]
            if error
            else list_links(indicator_id, str(scope), len(frame))
        ),
        "family": bool({"child_id", "person_id"} & set(frame.columns)),
    }


def render_family(data: Any, person_id: int, scope: Scope) -> dict[str, Any]:
    """The open work of a child's whole family, grouped by child."""
    frame = data.family(int(person_id), scope)
    return {
        "rows": components.grid_records(frame),
        "columns": components.column_defs(frame),
        "count": len(frame),
    }


def list_links(indicator_id: str, scope: str, count: int) -> list[Any]:
    noun = "row" if count == 1 else "rows"
    return [
        html.Span(f"{count:,} {noun}", className="row-count", **{"data-count": str(count)}),
        html.A(
            "Download CSV",
            href=components.download_href(indicator_id, scope, "csv"),
            className="btn btn-outline-primary btn-sm ms-3",
            **{"data-format": "csv"},
        ),
        html.A(
            "Download Excel",
            href=components.download_href(indicator_id, scope, "xlsx"),
            className="btn btn-outline-primary btn-sm ms-2",
            **{"data-format": "xlsx"},
        ),
    ]


def _placeholder(
    data: Any, indicator_id: str, scope: Scope, status: str, error: str
) -> IndicatorValue:
    indicator = _indicator(data, indicator_id)
    return IndicatorValue(
        id=indicator_id,
        title=indicator.title if indicator else indicator_id,
        scope=str(scope),
        value=None,
        unit=indicator.unit if indicator else "count",
        polarity=indicator.polarity if indicator else "context",
        status=status,  # type: ignore[arg-type]
        error=error,
    )


def _history(data: Any, indicator_id: str, scope: Scope) -> pd.DataFrame | None:
    try:
        frame = data.history(indicator_id, scope)
    except Exception:  # history is decoration on a tile; its absence must not fail the tile
        log.exception("history %s failed for %s", indicator_id, scope)
        return None
    if frame is None or frame.empty:
        return frame
    return frame.sort_values("day").tail(HISTORY_DAYS)


def _drilldown(data: Any, indicator_id: str, scope: Scope) -> tuple[pd.DataFrame, str | None]:
    """The rows, or no rows and why: the audit trail could not be written (so the rows must
    not be shown), or the list could not be built."""
    try:
        return data.drilldown(indicator_id, scope), None
    except AuditError as exc:
        return pd.DataFrame(), str(exc)
    except Exception:
        log.exception("drill-down %s failed for %s", indicator_id, scope)
        return pd.DataFrame(), None


def _titles(data: Any) -> dict[str, str]:
    return {i.id: i.title for i in data.catalogue()}


def _indicator(data: Any, indicator_id: str) -> Indicator | None:
    return next((i for i in data.catalogue() if i.id == indicator_id), None)


def _caseload_threshold(data: Any) -> float | None:
    indicator = _indicator(data, "average_caseload")
    return indicator.thresholds.green if indicator and indicator.thresholds else None


def _ids(outputs: Any, key: str) -> list[str]:
    """The pattern ids' ``key`` values of an ``ALL`` output, in page order."""
    if outputs and isinstance(outputs[0], list):
        outputs = outputs[0]
    return [o["id"][key] for o in outputs]


def _known_ids(outputs: Any, key: str, known: Any) -> list[str]:
    """``_ids``, answering 400 (with no data) if the browser asked for an id that is not
    ``known``: a page only ever asks for ids its layout declared."""
    try:
        ids = _ids(outputs, key)
    except (KeyError, TypeError, IndexError):
        abort(error_response(400, f"malformed {key} ids"))
    unknown = [i for i in ids if not isinstance(i, str) or i not in known]
    if unknown:
        abort(error_response(400, f"unknown {key} id(s): {str(unknown[:3])[:200]}"))
    return ids


def _indicator_ids(data: Any) -> set[str]:
    return {i.id for i in data.catalogue()}


def _person_id(value: Any) -> int:
    """A child's id from the browser (a selected row): a whole number, else 400."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        abort(error_response(400, "a child's id must be a whole number"))
    text = str(value).strip()
    if not text.isdigit() or len(text) > 19:
        abort(error_response(400, "a child's id must be a whole number"))
    return int(text)


# ----------------------------------------------------------------------------- wiring


def register_callbacks(app: dash.Dash, as_of: Any) -> None:
    """Wire the plain functions above to ``app``. ``as_of`` returns the reporting date.

    Every callback reads data through ``scoped_data()`` (the logged-in user's view) and takes
    its scope through ``scope_or_abort`` (400 / 403 with no data)."""

    @app.callback(
        Output("data-version", "data"),
        Input("poll", "n_intervals"),
        State("data-version", "data"),
        prevent_initial_call=True,
    )
    def _poll(_n: int, known: str | None) -> Any:
        return poll_version(scoped_data(), known if isinstance(known, str) else None)

    @app.callback(
        Output("page-scope", "data"),
        Input("scope-select", "value"),
        State("page-scope", "data"),
        prevent_initial_call=True,
    )
    def _select(requested: str | None, current: str | None) -> Any:
        scope = str(scope_or_abort(requested, current if isinstance(current, str) else None))
        return no_update if scope == current else scope

    @app.callback(
        Output({"type": "tile", "ind": ALL}, "children"),
        Output({"type": "tile", "ind": ALL}, "className"),
        Input("data-version", "data"),
        Input("page-scope", "data"),
    )
    def _tiles(_token: str, scope: str) -> Any:
        data = scoped_data()
        ids = _known_ids(ctx.outputs_list, "ind", _indicator_ids(data))
        return render_tiles(data, scope_or_abort(scope), ids, as_of())

    @app.callback(
        Output({"type": "chart", "chart": ALL}, "figure"),
        Input("data-version", "data"),
        Input("page-scope", "data"),
    )
    def _charts(_token: str, scope: str) -> Any:
        chart_ids = _known_ids(ctx.outputs_list, "chart", CHARTS)
        return render_charts(scoped_data(), scope_or_abort(scope), chart_ids)

    @app.callback(
        Output({"type": "history", "ind": ALL}, "figure"),
        Input("data-version", "data"),
        Input("page-scope", "data"),
    )
    def _history_charts(_token: str, scope: str) -> Any:
        data = scoped_data()
        ids = _known_ids(ctx.outputs_list, "ind", _indicator_ids(data))
        return render_history(data, scope_or_abort(scope), ids)

    @app.callback(
        Output({"type": "list", "ind": ALL}, "rowData"),
        Output({"type": "list", "ind": ALL}, "columnDefs"),
        Output({"type": "list-links", "ind": ALL}, "children"),
        Input("data-version", "data"),
        Input("page-scope", "data"),
    )
    def _lists(_token: str, scope: str) -> Any:
        data = scoped_data("list")
        ids = _known_ids(ctx.outputs_list, "ind", _indicator_ids(data))
        return render_lists(data, scope_or_abort(scope), ids)

    @app.callback(
        Output({"type": "matrix", "page": ALL}, "children"),
        Input("data-version", "data"),
        Input("page-scope", "data"),
    )
    def _matrix(_token: str, scope: str) -> Any:
        count = len(_ids(ctx.outputs_list, "page"))
        allowed = scope_or_abort(scope)
        return [render_matrix(scoped_data(), allowed) for _ in range(count)]

    @app.callback(
        Output("drill-modal", "is_open"),
        Output("drill-title", "children"),
        Output("drill-grid", "rowData"),
        Output("drill-grid", "columnDefs"),
        Output("drill-links", "children"),
        Output("drill-state", "data"),
        Output("family-panel", "hidden"),
        Output("drill-grid", "selectedRows"),
        Input({"type": "tile", "ind": ALL}, "n_clicks"),
        State("page-scope", "data"),
        prevent_initial_call=True,
    )
    def _drill(clicks: list[int | None], scope: str) -> Any:
        trigger = ctx.triggered_id
        if not trigger or not any(c for c in clicks or []) or not ctx.triggered[0]["value"]:
            return (no_update,) * 8
        data = scoped_data("drill-down")
        indicator_id = trigger.get("ind") if isinstance(trigger, dict) else None
        if indicator_id not in _indicator_ids(data):
            abort(error_response(400, "unknown indicator"))
        allowed = scope_or_abort(scope)
        shown = open_drilldown(data, indicator_id, allowed)
        state = {"ind": indicator_id, "scope": str(allowed), "family": shown["family"]}
        return (
            True,
            shown["title"],
            shown["rows"],
            shown["columns"],
            shown["links"],
            state,
            True,
            [],
        )

    @app.callback(
        Output("family-panel", "hidden", allow_duplicate=True),
        Output("family-title", "children"),
        Output("family-grid", "rowData"),
        Output("family-grid", "columnDefs"),
        Input("drill-grid", "selectedRows"),
        State("drill-state", "data"),
        prevent_initial_call=True,
    )
    def _family(selected: list[dict] | None, state: dict | None) -> Any:
        if selected is not None and not (
            isinstance(selected, list) and all(isinstance(r, dict) for r in selected)
        ):
            abort(error_response(400, "selected rows must be a list of rows"))
        row = (selected or [{}])[0]
        raw = next((row[k] for k in ("child_id", "person_id") if row.get(k) is not None), None)
        if raw is None or not state:
            return True, no_update, no_update, no_update
        if not isinstance(state, dict):
            abort(error_response(400, "malformed drill-down state"))
        person_id = _person_id(raw)
        # The scope the list was opened for, from the browser: checked again, never trusted.
        allowed = scope_or_abort(state.get("scope"))
        try:
            shown = render_family(scoped_data("family"), person_id, allowed)
        except AuditError as exc:
            return False, str(exc), [], []
        except Exception as exc:  # e.g. the child has no open work in this scope
            log.info("family view for %s: %s", person_id, exc)
            return False, f"No family view: {exc}", [], []
        name = row.get("child_name") if isinstance(row.get("child_name"), str) else None
        title = f"Open work of the family of {name or f'child {person_id}'}: {shown['count']} items"
        return False, title, shown["rows"], shown["columns"]


def child_of(row: dict[str, Any]) -> int | None:
    """The child's id in a drill-down row (``child_id`` in lists, ``person_id`` in raw frames)."""
    for key in ("child_id", "person_id"):
        if row.get(key) is not None:
            return int(row[key])
    return None
