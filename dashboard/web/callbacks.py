"""The generic callbacks: one per kind of thing on a page, matched by id pattern.

Every tile on every page is drawn by ``render_tiles`` (ids ``{"type": "tile", "ind": ...}``,
its numbers in ``tile-body``) and its freshness line by ``render_tile_meta`` (``tile-meta``),
both in the page's one render callback with its charts (``render_charts``); every list's
columns and count by ``render_lists``. They run when the page's scope changes or when the
version token changes, and the token changes only when a new snapshot lands: the poll itself (``poll_version``) costs no SQL and no pandas
(issue 4). A list's rows (inline, or in the drill-down panel) never go out whole: its grid asks
for one block at a time, and ``list_block`` answers each request (``grid_rows``).

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
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import dash
import pandas as pd
from dash import ALL, MATCH, Input, Output, State, ctx, html, no_update
from dash._utils import stringify_id, to_json
from flask import abort

from dashboard.audit import AuditError
from dashboard.indicators.charts import CHARTS
from dashboard.model import Freshness, Indicator, IndicatorValue, Scope
from dashboard.scoped import AccessDenied, ScopedData
from dashboard.web import charts, components, grid_rows
from dashboard.web.session import error_response, scope_or_abort, scoped_data

log = logging.getLogger(__name__)

HISTORY_DAYS = 90
# Tells a block grid (``components.data_grid(blocks=True)``) to drop the blocks it holds and ask
# for its first block again; ``fresh`` clears its sort and filter first (each of which restarts
# it by itself). A grid not on screen yet asks for its first block when it starts.
RESTART_BLOCKS_JS = """\
    function restart(id, fresh) {
        let api = null;
        try { api = window.dash_ag_grid.getApi(id); } catch (e) { return; }
        if (!api || api.isDestroyed()) { return; }
        if (fresh) {
            const filtered = Object.keys(api.getFilterModel() || {}).length > 0;
            const sorted = api.getColumnState().some((c) => c.sort);
            if (filtered) { api.setFilterModel(null); }
            if (sorted) { api.applyColumnState({defaultState: {sort: null}}); }
            if (filtered || sorted) { return; }
        }
        api.purgeInfiniteCache();
    }
"""


# Whether an inline list's rows changed since its grid last had them: the digest each grid
# last had is kept per list id (a grid that mounts asks for its first block itself).
LIST_ROWS_JS = """\
    function rowsChanged(id, digest) {
        const seen = (window.cscListRows = window.cscListRows || {});
        const key = JSON.stringify(id);
        const was = seen[key];
        seen[key] = digest;
        return was !== undefined && was !== digest;
    }
"""


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
    """Body and class of each tile, in the order of ``ids`` (its freshness line aside:
    ``render_tile_meta``)."""
    if not ids:
        return [], []
    values = _tile_values(data, scope, ids)
    applicable = set(data.applicable(scope))
    measured_ids = [v.id for v in values if v.status != "failed" and v.id in applicable]
    _prefetch_history(data, measured_ids, scope)
    bodies, classes = [], []
    for value in values:
        measured = value.status != "failed" and value.id in applicable
        history = _history(data, value.id, scope) if measured else None
        bodies.append(components.tile_body(value, history, as_of))
        classes.append(components.tile_class(value))
    return bodies, classes


def render_tile_meta(data: Any, scope: Scope, ids: Sequence[str]) -> tuple[list[Any], list[str]]:
    """Freshness line and its class of each tile, in the order of ``ids``: when each value was
    computed, stale or not. Rendered for every new version, unlike the tiles' bodies, which a
    page keeps while its numbers do not change; from the snapshots' metadata (no measure runs),
    so it costs the same for a team at any scale."""
    try:
        found = data.freshness(scope, ids) if ids else []
    except AccessDenied:
        raise
    except Exception:  # the store is unreachable: the tiles' bodies say so
        log.exception("freshness failed for %s", scope)
        found = [Freshness() for _ in ids]
    return [components.tile_meta(f) for f in found], [components.tile_meta_class(f) for f in found]


def _tile_values(data: Any, scope: Scope, ids: Sequence[str]) -> list[IndicatorValue]:
    """The value of each of ``ids`` for ``scope``, or a placeholder saying why there is none."""
    applicable = set(data.applicable(scope))
    wanted = [i for i in ids if i in applicable]
    try:
        # Not remembered for the preloader: the render cache warms the whole tile answer.
        values = {v.id: v for v in data.values(scope, wanted, remember=False)} if wanted else {}
    except Exception as exc:  # the store is unreachable: every tile says so, the page stays up
        log.exception("values failed for %s", scope)
        values = {}
        error = f"{exc.__class__.__name__}: {exc}"
    else:
        error = "no value returned"
    shown = []
    for indicator_id in ids:
        value = values.get(indicator_id)
        if value is None and indicator_id not in applicable:
            value = _placeholder(data, indicator_id, scope, "no_data", f"Not measured for {scope}")
        elif value is None:
            value = _placeholder(data, indicator_id, scope, "failed", error)
        shown.append(value)
    return shown


def render_charts(data: Any, scope: Scope, chart_ids: Sequence[str]) -> list[Any]:
    figures = []
    thresholds = _caseload_threshold(data)
    for chart_id in chart_ids:
        threshold = thresholds if chart_id == "caseload_by_worker" else None

        def draw(frame: pd.DataFrame, chart_id: str = chart_id, threshold: Any = threshold) -> Any:
            return charts.figure_for(chart_id, frame, threshold)

        try:  # drawn again only when the chart's data changes (kept with its frame)
            figures.append(data.chart_figure(chart_id, scope, draw, threshold))
        except Exception:  # one failed chart must not blank the others
            log.exception("chart %s failed for %s", chart_id, scope)
            figures.append(draw(pd.DataFrame()))
    return figures


def render_history(data: Any, scope: Scope, indicator_ids: Sequence[str]) -> list[Any]:
    titles = _titles(data)
    _prefetch_history(data, indicator_ids, scope)
    return [
        charts.history_figure(titles.get(i, i), _history(data, i, scope)) for i in indicator_ids
    ]


def render_lists(
    data: Any, scope: Scope, indicator_ids: Sequence[str]
) -> tuple[list[Any], list[Any], list[str]]:
    """Columns, "N rows / Download" links and a digest of the rows of each inline list; its
    rows come in blocks (``list_block``), so no row goes out here. The browser asks for the
    blocks again only when the digest changes (``LIST_ROWS_JS``)."""
    columns, links, digests = [], [], []
    for indicator_id in indicator_ids:
        shown = _list_frame(data, indicator_id, scope, digest=True)
        columns.append(shown["columns"])
        links.append(shown["links"])
        digests.append(shown["digest"])
    return columns, links, digests


def render_matrix(data: Any, scope: Scope) -> Any:
    try:
        matrix = data.team_matrix(scope)
    except Exception as exc:
        log.exception("team matrix failed")
        return html.P(f"The team matrix could not be computed: {exc}", className="tile__error")
    pending = matrix.attrs.get("pending_teams") if matrix is not None else None
    if pending:
        return html.P(
            f"The matrix of {pending:,} teams appears once the scheduler has recorded today's "
            "values, a few minutes after it starts. Each team's own view is up to date now.",
            className="text-muted matrix-pending",
        )
    team_tier = [i for i in data.catalogue("team")]
    notes = []
    recorded = matrix.attrs.get("recorded_at") if matrix is not None else None
    if recorded is not None:
        notes.append(
            html.P(
                f"Values as recorded on {components.format_time(recorded)}, after the latest "
                "refresh; each team's own view shows its latest values.",
                className="text-muted small matrix-recorded",
            )
        )
    unrecorded = matrix.attrs.get("unrecorded_cells") if matrix is not None else None
    if unrecorded:
        notes.append(
            html.P(
                f"{unrecorded:,} cells are blank until the scheduler records today's values for "
                "them; each team's own view is up to date now.",
                className="text-muted small matrix-unrecorded",
            )
        )
    total = 0 if matrix is None else len(matrix)
    if total:
        matrix = components.matrix_teams_first(
            matrix, [i.id for i in team_tier], components.MATRIX_TEAMS
        )
    if total > len(matrix):
        notes.append(
            html.P(
                f"Showing the {len(matrix)} teams of {total:,} with the most red, then amber, "
                "ratings. Every team is in the Team view's selector.",
                className="small matrix-limited",
            )
        )
    table = components.team_matrix_table(matrix, team_tier)
    return html.Div([*notes, table]) if notes else table


def open_drilldown(data: Any, indicator_id: str, scope: Scope) -> dict[str, Any]:
    """Everything the drill-down panel shows for one tile but the rows: its title, columns,
    the number of rows its number counts, export links, and whether rows name a child (the
    family view). The grid then asks for the rows block by block (``list_block``)."""
    indicator = _indicator(data, indicator_id)
    title = indicator.title if indicator else indicator_id
    return {"title": f"{title} · {scope}", **_list_frame(data, indicator_id, scope)}


def list_block(
    data: Any, indicator_id: str, scope: Scope, request: grid_rows.BlockRequest
) -> tuple[dict[str, Any], str | None]:
    """One block of a list (``getRowsResponse``: its rows and the row count after the grid's
    filter), and why there are no rows when the audit trail could not be written.
    ``GridRequestError`` for a sort or filter on a column the list does not have."""
    try:
        rows, total = _drilldown_block(
            data, indicator_id, scope, lambda frame: grid_rows.block(frame, request)
        )
    except AuditError as exc:  # the rows must not be shown
        return {"rowData": [], "rowCount": 0}, str(exc)
    except (grid_rows.GridRequestError, AccessDenied):
        raise
    except Exception:  # e.g. the store is down: an empty list, the tile says what is wrong
        log.exception("drill-down block %s failed for %s", indicator_id, scope)
        return {"rowData": [], "rowCount": 0}, None
    return {"rowData": components.grid_records(rows), "rowCount": int(total)}, None


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


def page_unchanged(data: Any, body: Any, old_version: Any, new_version: Any) -> bool:
    """Would a render request (tiles, charts, history, matrix, or lists' columns and counts)
    show the same numbers at ``new_version`` as at ``old_version``? (The render cache then
    carries its answer over, with its tiles' freshness lines drawn again: ``refresh_freshness``.)
    A team matrix reads every team: always rendered again."""
    try:
        scope = next(
            i["value"] for i in body["inputs"] if isinstance(i, dict) and i["id"] == "page-scope"
        )
        indicator_ids, chart_ids, rows = set(), set(), False
        pending = list(body["outputs"]) if isinstance(body["outputs"], list) else [body["outputs"]]
        while pending:
            item = pending.pop()
            if isinstance(item, list):
                pending.extend(item)
                continue
            ident = item["id"]
            if ident.get("type") == "matrix":
                return False
            if ident.get("type") == "tile-meta":
                continue  # drawn again for every version (``refresh_freshness``)
            rows = rows or ident.get("type") == "list-rows"  # a digest of the lists' rows
            if ident.get("type") == "chart":
                chart_ids.add(ident["chart"])
            else:
                indicator_ids.add(ident["ind"])
        return data.unchanged_between(
            old_version, new_version, Scope.parse(scope), indicator_ids, chart_ids, rows=rows
        )
    except (KeyError, TypeError, AttributeError, StopIteration, ValueError):
        return False  # not a body this knows: render it


def refresh_freshness(data: Any, body: Any, answer: bytes) -> bytes:
    """``answer`` (a render's response to ``body``, for an earlier version) with its tiles'
    freshness lines drawn again for the data layer's current version: what a page whose numbers
    did not change shows now. Costs the snapshots' metadata and one JSON round trip, not a
    render. Answers with no freshness line come back as they were."""
    wanted = _output_ids(body.get("outputs"), "tile-meta")
    if not wanted:
        return answer
    scope = next(
        i.get("value") for i in body["inputs"] if isinstance(i, dict) and i["id"] == "page-scope"
    )
    ids = [ident["ind"] for ident in wanted]
    unknown = set(ids) - _indicator_ids(data)
    if unknown:
        abort(error_response(400, f"unknown ind id(s): {str(sorted(unknown)[:3])[:200]}"))
    metas, classes = render_tile_meta(data, scope_or_abort(scope), ids)
    reply = json.loads(answer)
    shown = reply["response"]
    for ident, meta, meta_class in zip(wanted, metas, classes, strict=True):
        shown[stringify_id(ident)] = {"children": meta, "className": meta_class}
    return to_json(reply).encode()


def _output_ids(outputs: Any, kind: str) -> list[dict[str, Any]]:
    """The distinct ids of type ``kind`` among a request's ``outputs``, in page order."""
    found: list[dict[str, Any]] = []
    pending = [outputs]
    while pending:
        item = pending.pop(0)
        if isinstance(item, list):
            pending[:0] = item
        elif isinstance(item, dict) and isinstance(item.get("id"), dict):
            ident = item["id"]
            if ident.get("type") == kind and ident not in found:
                found.append(ident)
    return found


def _prefetch_history(data: Any, indicator_ids: Sequence[str], scope: Scope) -> None:
    """Read the history behind a page's tiles in one store query (``_history`` then finds
    each in the data layer's cache)."""
    if not indicator_ids:
        return
    try:
        data.prefetch_history(indicator_ids, scope)
    except AccessDenied:
        raise
    except Exception:  # history is decoration: each tile's own read says what went wrong
        log.exception("history prefetch failed for %s", scope)


def _history(data: Any, indicator_id: str, scope: Scope) -> pd.DataFrame | None:
    try:
        frame = data.history(indicator_id, scope)
    except Exception:  # history is decoration on a tile; its absence must not fail the tile
        log.exception("history %s failed for %s", indicator_id, scope)
        return None
    if frame is None or frame.empty:
        return frame
    return frame.sort_values("day").tail(HISTORY_DAYS)


def _list_frame(
    data: Any, indicator_id: str, scope: Scope, *, digest: bool = False
) -> dict[str, Any]:
    """A list's columns, row count, links and whether it names children, and with ``digest``
    a digest of its rows; no rows (so nothing is audited: no child's row leaves the server)."""
    digests: list[str] = []

    def pick(whole: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        if digest:
            digests.append(rows_digest(whole))
        return whole.head(0), len(whole)

    try:
        frame, count = _drilldown_block(data, indicator_id, scope, pick)
    except AccessDenied:
        raise
    except Exception:
        log.exception("drill-down %s failed for %s", indicator_id, scope)
        frame, count, digests = pd.DataFrame(), 0, ["failed"]
    return {
        "digest": digests[0] if digests else None,
        "columns": components.column_defs(frame),
        "count": count,
        "links": list_links(indicator_id, str(scope), count),
        "family": bool({"child_id", "person_id"} & set(frame.columns)),
    }


def rows_digest(frame: pd.DataFrame) -> str:
    """A short digest of a list's rows, columns and order: equal only for the same rows."""
    hashed = hashlib.blake2b(digest_size=12)
    hashed.update(json.dumps([str(c) for c in frame.columns]).encode())
    hashed.update(json.dumps([str(t) for t in frame.dtypes]).encode())
    if len(frame):
        try:
            hashed.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        except TypeError:  # a cell pandas cannot hash (a list, say): its text instead
            hashed.update(frame.to_csv(index=False).encode())
    return hashed.hexdigest()


def _drilldown_block(
    data: Any,
    indicator_id: str,
    scope: Scope,
    pick: Callable[[pd.DataFrame], tuple[pd.DataFrame, int]],
) -> tuple[pd.DataFrame, int]:
    """``pick`` of a list: through ``ScopedData`` (checked, the picked rows audited) in the
    app; a bare ``DataLayer`` (tests, the benchmark) sees everything and audits nothing."""
    if isinstance(data, ScopedData):
        return data.drilldown_block(indicator_id, scope, pick)
    return pick(data.drilldown_view(indicator_id, scope))


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


def _block_response(data: Any, indicator_id: str, scope: Scope, raw: Any) -> tuple[Any, Any]:
    """The wired block callbacks' answer: the block, and the list's links replaced by the
    reason when there are no rows to show; 400 (no rows) for a request the grid never sends."""
    try:
        response, error = list_block(data, indicator_id, scope, grid_rows.parse_request(raw))
    except grid_rows.GridRequestError as exc:
        abort(error_response(400, f"bad block request: {exc}"))
    return response, [html.P(error, className="tile__error")] if error else no_update


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

    # One request renders every aggregate on a page (tiles, charts, daily history, the team
    # matrix): after a new snapshot each open page sends it once, not once per kind, and the
    # render cache keeps its answer per scope and version. Lists are separate: never cached.
    # A page whose numbers did not change is carried over to the new version with only its
    # tiles' freshness lines drawn again (``page_unchanged``, ``refresh_freshness``).
    @app.callback(
        Output({"type": "tile-body", "ind": ALL}, "children"),
        Output({"type": "tile", "ind": ALL}, "className"),
        Output({"type": "tile-meta", "ind": ALL}, "children"),
        Output({"type": "tile-meta", "ind": ALL}, "className"),
        Output({"type": "chart", "chart": ALL}, "figure"),
        Output({"type": "history", "ind": ALL}, "figure"),
        Output({"type": "matrix", "page": ALL}, "children"),
        Input("data-version", "data"),
        Input("page-scope", "data"),
    )
    def _render(_token: str, scope: str) -> Any:
        data = scoped_data()
        outputs = ctx.outputs_list
        if not isinstance(outputs, list) or len(outputs) != 7:
            abort(error_response(400, "a render request names the page's seven outputs"))
        known = _indicator_ids(data)
        tile_ids = _known_ids(outputs[0], "ind", known)
        if any(_known_ids(outputs[i], "ind", known) != tile_ids for i in (1, 2, 3)):
            abort(error_response(400, "a render request names each tile's four parts"))
        chart_ids = _known_ids(outputs[4], "chart", CHARTS)
        history_ids = _known_ids(outputs[5], "ind", known)
        matrices = len(_ids(outputs[6], "page"))
        allowed = scope_or_abort(scope)
        bodies, classes = render_tiles(data, allowed, tile_ids, as_of())
        metas, meta_classes = render_tile_meta(data, allowed, tile_ids)
        figures = render_charts(data, allowed, chart_ids) if chart_ids else []
        histories = render_history(data, allowed, history_ids) if history_ids else []
        matrix = [render_matrix(data, allowed)] * matrices if matrices else []
        return bodies, classes, metas, meta_classes, figures, histories, matrix

    @app.callback(
        Output({"type": "list", "ind": ALL}, "columnDefs"),
        Output({"type": "list-links", "ind": ALL}, "children"),
        Output({"type": "list-rows", "ind": ALL}, "data"),
        Input("data-version", "data"),
        Input("page-scope", "data"),
    )
    def _lists(_token: str, scope: str) -> Any:
        data = scoped_data("list")
        outputs = ctx.outputs_list
        if not isinstance(outputs, list) or len(outputs) != 3:
            abort(error_response(400, "a lists request names the lists' three outputs"))
        known = _indicator_ids(data)
        ids = _known_ids(outputs[0], "ind", known)
        if any(_known_ids(outputs[i], "ind", known) != ids for i in (1, 2)):
            abort(error_response(400, "a lists request names each list's three parts"))
        return render_lists(data, scope_or_abort(scope), ids)

    @app.callback(
        Output({"type": "list", "ind": MATCH}, "getRowsResponse"),
        Output({"type": "list-links", "ind": MATCH}, "children", allow_duplicate=True),
        Input({"type": "list", "ind": MATCH}, "getRowsRequest"),
        State("page-scope", "data"),
        prevent_initial_call=True,
    )
    def _list_rows(request: Any, scope: str) -> Any:
        # A separate HTTP request per block: the scope and the list are checked every time.
        data = scoped_data("list")
        ids = _known_ids(ctx.outputs_list[:1], "ind", _indicator_ids(data))
        if len(ids) != 1:
            abort(error_response(400, "a block request is for one list"))
        return _block_response(data, ids[0], scope_or_abort(scope), request)

    # A list's grid keeps the blocks it has: when its rows change (a new digest, after a new
    # version or another scope), it is told to start again from its first block. A new
    # version that left its rows as they were sends no block request (and audits no view).
    app.clientside_callback(
        "function (digests, ids) {\n"
        f"{RESTART_BLOCKS_JS}"
        f"{LIST_ROWS_JS}"
        "    (ids || []).forEach((id, i) => {\n"
        "        if (rowsChanged(id, (digests || [])[i])) { restart(id, false); }\n"
        "    });\n}",
        Input({"type": "list-rows", "ind": ALL}, "data"),
        State({"type": "list", "ind": ALL}, "id"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("drill-modal", "is_open"),
        Output("drill-title", "children"),
        Output("drill-grid", "columnDefs"),
        Output("drill-links", "children"),
        Output("drill-state", "data"),
        Output("family-panel", "hidden"),
        Output("drill-grid", "selectedRows"),
        Output("drill-grid", "filterModel"),
        Output("drill-grid", "columnState"),
        Input({"type": "tile", "ind": ALL}, "n_clicks"),
        State("page-scope", "data"),
        prevent_initial_call=True,
    )
    def _drill(clicks: list[int | None], scope: str) -> Any:
        trigger = ctx.triggered_id
        if not trigger or not any(c for c in clicks or []) or not ctx.triggered[0]["value"]:
            return (no_update,) * 9
        data = scoped_data("drill-down")
        indicator_id = trigger.get("ind") if isinstance(trigger, dict) else None
        if indicator_id not in _indicator_ids(data):
            abort(error_response(400, "unknown indicator"))
        allowed = scope_or_abort(scope)
        shown = open_drilldown(data, indicator_id, allowed)
        state = {"ind": indicator_id, "scope": str(allowed), "family": shown["family"]}
        # The grid keeps its filter and sort in these two props and puts them back when the
        # panel opens again: a new list starts unfiltered and in its own order.
        fresh = ({}, None)
        return (True, shown["title"], shown["columns"], shown["links"], state, True, [], *fresh)

    @app.callback(
        Output("drill-grid", "getRowsResponse"),
        Output("drill-links", "children", allow_duplicate=True),
        Input("drill-grid", "getRowsRequest"),
        State("drill-state", "data"),
        prevent_initial_call=True,
    )
    def _drill_rows(request: Any, state: Any) -> Any:
        if state is None:
            return no_update, no_update  # the panel has not been opened: nothing to show
        data = scoped_data("drill-down")
        if (
            not isinstance(state, dict)
            or state.get("ind") not in _indicator_ids(data)
            or not isinstance(state.get("scope"), str)
        ):
            abort(error_response(400, "malformed drill-down state"))
        # The scope the panel was opened for, from the browser: checked again, never trusted.
        allowed = scope_or_abort(state["scope"])
        return _block_response(data, state["ind"], allowed, request)

    # A new drill-down starts from its first block, unsorted and unfiltered.
    app.clientside_callback(
        f"function (_state) {{\n{RESTART_BLOCKS_JS}    restart('drill-grid', true);\n}}",
        Input("drill-state", "data"),
        prevent_initial_call=True,
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
