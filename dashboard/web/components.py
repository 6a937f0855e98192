"""How things render: tiles, comparisons, sparklines, grids and the RAG matrix.

Plain functions from records and frames to Dash components, so tests call them directly and
layouts never need to know how a tile is drawn. Colour is never the only signal: every RAG
colour comes with a word and a symbol, every arrow with "better" or "worse" (WCAG 1.4.1).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import dash_ag_grid as dag
import numpy as np
import pandas as pd
from dash import dcc, html

from dashboard.model import Freshness, Indicator, IndicatorValue, Polarity
from dashboard.web import grid_rows

LOCAL_TIME = ZoneInfo("Europe/London")
RAG_TEXT = {
    "green": ("✓", "On track"),
    "amber": ("!", "Watch"),
    "red": ("✕", "Act now"),
}
BLOCKS_KEPT = 20  # blocks of a block grid the browser keeps (20 x 200 rows)
UNIT_SUFFIX = {
    "count": "",
    "percent": "%",
    "money": "",
    "per_10k": " per 10,000",
    "days": " days",
    "ratio": "",
}


# ----------------------------------------------------------------------------- values


def format_value(value: float | int | None, unit: str) -> str:
    """A value as a person reads it: ``17``, ``85.7%``, ``£1.24m``, ``330.3 per 10,000``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no data"
    if unit == "money":
        return format_money(float(value))
    if unit == "count":
        return f"{int(round(value)):,}"
    if unit == "percent":
        return f"{value:.1f}%"
    if unit == "per_10k":
        return f"{value:,.1f}"
    if unit == "days":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def format_money(amount: float) -> str:
    sign = "−" if amount < 0 else ""
    amount = abs(amount)
    if amount >= 1_000_000:
        return f"{sign}£{amount / 1_000_000:,.2f}m"
    if amount >= 10_000:
        return f"{sign}£{amount / 1_000:,.0f}k"
    return f"{sign}£{amount:,.0f}"


def unit_label(unit: str) -> str:
    """The words after the number (the number's own symbol aside)."""
    return {"per_10k": "per 10,000", "days": "days"}.get(unit, "")


def format_time(moment: dt.datetime | None) -> str:
    """Local (UK) time for people; the store keeps UTC."""
    if moment is None:
        return "never"
    if moment.tzinfo is not None:
        moment = moment.astimezone(LOCAL_TIME)
    return moment.strftime("%d %b %Y %H:%M")


# ----------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Comparison:
    """A value set against an earlier one or a national figure."""

    label: str  # "yesterday", "England"
    other: float
    direction: str  # "up", "down", "same"
    judgement: str  # "better", "worse", "neutral"

    @property
    def arrow(self) -> str:
        return {"up": "▲", "down": "▼", "same": "▶"}[self.direction]


def compare(
    value: float | None, other: float | None, label: str, polarity: Polarity
) -> Comparison | None:
    """Direction of ``value`` against ``other`` and whether that is good, by polarity.

    Higher-better: up is better. Lower-better: up is worse. Context indicators are neutral.
    """
    if value is None or other is None or _nan(value) or _nan(other):
        return None
    if math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-9):
        return Comparison(label, other, "same", "neutral")
    direction = "up" if value > other else "down"
    if polarity == "higher_better":
        judgement = "better" if direction == "up" else "worse"
    elif polarity == "lower_better":
        judgement = "better" if direction == "down" else "worse"
    else:
        judgement = "neutral"
    return Comparison(label, other, direction, judgement)


def previous_from_history(history: pd.DataFrame | None, as_of: dt.date) -> float | None:
    """The most recent daily value before ``as_of`` (the day's own row is today's value).

    Plain Python over a few dozen rows: cheaper per tile than pandas' indexing machinery.
    """
    if history is None or history.empty or "value" not in history:
        return None
    best: tuple[dt.date, float] | None = None
    for day, number in zip(history["day"], history["value"], strict=True):
        day = day.date() if isinstance(day, dt.datetime) else day
        if number is None or _nan(number) or number is pd.NA or day >= as_of:
            continue
        if best is None or day > best[0]:
            best = (day, float(number))
    return best[1] if best else None


def choose_comparison(
    value: IndicatorValue, history: pd.DataFrame | None, as_of: dt.date
) -> Comparison | None:
    """Previous day's value where history has one, else the comparator (e.g. England)."""
    if value.value is None:
        return None
    previous = previous_from_history(history, as_of)
    if previous is not None:
        return compare(float(value.value), previous, "previous day", value.polarity)
    comparator = value.comparator or {}
    if comparator.get("value") is not None:
        return compare(
            float(value.value),
            float(comparator["value"]),
            str(comparator.get("label") or "comparator"),
            value.polarity,
        )
    return None


# ----------------------------------------------------------------------------- sparkline


def sparkline_svg(values: Sequence[float], width: int = 120, height: int = 28) -> str | None:
    """A sparkline as a ``data:`` SVG image; None when there are fewer than two points.

    An image (not a plotly graph) because a page may carry a dozen of them: a few hundred
    bytes each, no JavaScript.
    """
    points = [float(v) for v in values if v is not None and not _nan(v)]
    if len(points) < 2:
        return None
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    step = (width - 4) / (len(points) - 1)
    coords = " ".join(
        f"{2 + i * step:.1f},{height - 3 - (p - low) / span * (height - 6):.1f}"
        for i, p in enumerate(points)
    )
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'><polyline fill='none' stroke='#1d4f91' "
        f"stroke-width='2' points='{coords}'/></svg>"
    )
    return "data:image/svg+xml;charset=utf-8," + quote(svg)


# ----------------------------------------------------------------------------- tiles


def tile_state(value: IndicatorValue) -> str:
    """One word for the tile's look: failed, no_data, green, amber, red or neutral."""
    if value.status == "failed" and value.value is None:
        return "failed"
    if value.value is None or value.status == "no_data":
        return "no_data"
    return value.rag or "neutral"


def tile_class(value: IndicatorValue) -> str:
    return f"tile tile--{tile_state(value)}"


def tile_body(value: IndicatorValue, history: pd.DataFrame | None, as_of: dt.date) -> list[Any]:
    """The inside of a tile: title, RAG, value, comparison and sparkline. Its freshness line
    (computed time, badges) is ``tile_meta``, a part of its own: a new snapshot whose rows did
    not change this page's numbers changes only that line (``callbacks.refresh_freshness``)."""
    state = tile_state(value)
    head = [html.Span(value.title, className="tile__title")]
    if state in RAG_TEXT:
        symbol, word = RAG_TEXT[state]
        head.append(
            html.Span(
                [html.Span(symbol, **{"aria-hidden": "true"}), f" {word}"],
                className=f"rag rag--{state}",
            )
        )
    parts: list[Any] = [html.Span(head, className="tile__head")]

    if state == "failed":
        parts.append(
            html.Span(
                [html.Span("⚠", **{"aria-hidden": "true"}), " Could not compute"],
                className="tile__error",
            )
        )
        if value.error:
            parts.append(html.Span(_short(value.error), className="tile__error-detail"))
    else:
        number = format_value(value.value, value.unit)
        suffix = "" if value.value is None else unit_label(value.unit)
        parts.append(
            html.Span(
                [number] + ([html.Span(f" {suffix}", className="tile__unit")] if suffix else []),
                className="tile__value" + (" tile__value--none" if value.value is None else ""),
            )
        )
        if value.value is None and value.error:
            parts.append(html.Span(_short(value.error), className="tile__error-detail"))
        parts.extend(_extras(value))
        comparison = choose_comparison(value, history, as_of)
        if comparison is not None:
            parts.append(comparison_line(comparison, value.unit))
        spark = _spark(value, history)
        if spark is not None:
            parts.append(spark)

    return parts


def tile_meta(fresh: Freshness) -> list[Any]:
    """A tile's freshness line: when its value was computed, and whether that is stale or the
    last good value after a failed refresh."""
    meta: list[Any] = [f"Computed {format_time(fresh.computed_at)}"]
    if fresh.stale:
        meta.append(
            html.Span(f"Stale since {format_time(fresh.computed_at)}", className="badge-stale")
        )
    if fresh.refresh_failed:
        meta.append(html.Span("Refresh failed: last good value", className="badge-stale"))
    return meta


def tile_meta_class(fresh: Freshness) -> str:
    return "tile__meta tile__meta--stale" if fresh.stale else "tile__meta"


def comparison_line(comparison: Comparison, unit: str) -> html.Span:
    words = {"better": " (better)", "worse": " (worse)", "neutral": ""}[comparison.judgement]
    return html.Span(
        [
            html.Span(comparison.arrow, **{"aria-hidden": "true"}),
            f" vs {comparison.label} {format_value(comparison.other, unit)}{words}",
        ],
        className=f"tile__compare compare--{comparison.judgement}",
    )


def tile_slot(indicator: Indicator, page_id: str) -> Any:
    """The static shell of a tile; the tile callback fills it.

    A tile with a drill-down is a button (keyboard reachable, opens the list); others are a
    plain region.
    """
    placeholder = [
        html.Span(html.Span(indicator.title, className="tile__title"), className="tile__head"),
        html.Span("Loading…", className="tile__value tile__value--none"),
    ]
    ident = {"type": "tile", "ind": indicator.id}
    # Two parts, each filled by its own callback: the numbers, and the freshness line.
    inside = [
        html.Span(
            placeholder, id={"type": "tile-body", "ind": indicator.id}, className="tile__body"
        ),
        html.Span(id={"type": "tile-meta", "ind": indicator.id}, className="tile__meta"),
    ]
    if indicator.drilldown:
        return html.Button(
            inside,
            id=ident,
            n_clicks=0,
            className="tile tile--loading",
            title=f"Open the list behind {indicator.title}",
        )
    return html.Div(inside, id=ident, className="tile tile--loading tile--static")


def unknown_tile(indicator_id: str) -> html.Div:
    """A layout named an indicator the catalogue does not have: say so on the page."""
    return html.Div(
        [
            html.Span(indicator_id, className="tile__title"),
            html.Span(" Unknown indicator", className="tile__error"),
        ],
        className="tile tile--failed tile--static",
    )


def _extras(value: IndicatorValue) -> list[Any]:
    """Up to two numeric extras of a value (e.g. "Oldest wait days: 12"), readably formatted."""
    shown = []
    for key, extra in list(value.extra.items())[:2]:
        if isinstance(extra, bool) or not isinstance(extra, int | float) or _nan(extra):
            continue
        label = key.replace("_", " ").capitalize()
        if "percent" in key:
            text = f"{extra:.1f}%"
        elif isinstance(extra, float) and value.unit == "money":
            text = format_money(extra)
        else:
            text = f"{extra:,.1f}".removesuffix(".0")
        shown.append(html.Span(f"{label}: {text}", className="tile__extra"))
    return shown


def _spark(value: IndicatorValue, history: pd.DataFrame | None) -> html.Img | None:
    if history is None or history.empty or "value" not in history:
        return None
    series = history.sort_values("day")["value"].tolist()[-90:]
    src = sparkline_svg(series)
    if src is None:
        return None
    first, last = series[0], series[-1]
    alt = (
        f"Daily history of {value.title}, {len(series)} days: "
        f"from {format_value(first, value.unit)} to {format_value(last, value.unit)}"
    )
    return html.Img(src=src, alt=alt, className="tile__spark", width=120, height=28)


def _short(text: str, limit: int = 140) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


# ----------------------------------------------------------------------------- grids


def grid_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for AG Grid: dates as ISO strings (the day only), missing values as None, plain
    Python numbers (valid JSON). Column by column in plain Python: a block of a few hundred
    rows costs a millisecond or two, where pandas' own conversions cost ten times that."""
    if frame.empty:
        return []
    names = [str(c) for c in frame.columns]
    columns = [map(_json_cell, frame[c].tolist()) for c in frame.columns]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _json_cell(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dt.datetime):  # pandas' Timestamp too
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):  # a numpy scalar from an object column
        return _json_cell(value.item())
    return value


def column_defs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Sortable, filterable columns with readable headers; numbers filter as numbers, dates as
    dates (the filters ``grid_rows`` applies on the server for a block grid)."""
    defs = []
    for column in frame.columns:
        series = frame[column]
        is_number = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        is_date = pd.api.types.is_datetime64_any_dtype(series)
        spec: dict[str, Any] = {
            "field": str(column),
            "headerName": str(column).replace("_", " ").capitalize(),
            "filter": "agNumberColumnFilter" if is_number else "agTextColumnFilter",
        }
        if is_number:
            spec["type"] = "rightAligned"
        if is_date:  # ``grid_records`` sends dates as YYYY-MM-DD
            spec.update(filter="agDateColumnFilter", cellDataType="dateString")
        defs.append(spec)
    return defs


def data_grid(
    ident: Any,
    label: str,
    height: str = "420px",
    selectable: bool = False,
    blocks: bool = False,
) -> Any:
    """An empty AG Grid (sortable and filterable); callbacks fill its rows and columns.

    ``blocks``: the grid holds no rows of its own but asks the server for one block at a time
    (AG Grid's infinite row model: ``getRowsRequest`` in, ``getRowsResponse`` out), and the
    server sorts and filters (``grid_rows``). For lists that can run to many thousand rows: the
    browser only ever gets the rows on screen and the block around them.
    """
    options: dict[str, Any] = {
        "animateRows": False,
        "pagination": False,
        "enableCellTextSelection": True,
        "ensureDomOrder": True,  # screen readers and keyboard follow the visual order
    }
    if selectable:
        options["rowSelection"] = {"mode": "singleRow", "enableClickSelection": True}
    rows: dict[str, Any] = {"rowData": []}
    if blocks:
        rows = {"rowModelType": "infinite"}
        options.update(
            cacheBlockSize=grid_rows.BLOCK_ROWS,
            # Blocks kept in the browser: scrolling far down a long list drops the first ones.
            maxBlocksInCache=BLOCKS_KEPT,
            # Requests for several blocks at once (a fast scroll) go one or two at a time.
            maxConcurrentDatasourceRequests=2,
        )
    return html.Section(
        dag.AgGrid(
            id=ident,
            **rows,
            columnDefs=[],
            defaultColDef={"sortable": True, "filter": True, "resizable": True, "minWidth": 110},
            dashGridOptions=options,
            columnSize="responsiveSizeToFit",
            style={"height": height, "width": "100%"},
            className="ag-theme-quartz",
        ),
        **{"aria-label": label},
        className="grid-region",
    )


def download_href(indicator_id: str, scope: str, fmt: str) -> str:
    return f"/download/{quote(indicator_id)}.{fmt}?" + urlencode({"scope": scope})


# ----------------------------------------------------------------------------- RAG matrix


MATRIX_TEAMS = 40  # rows a matrix shows at most: a region's borough view has over 1,000 teams


def matrix_teams_first(
    matrix: pd.DataFrame, indicator_ids: Sequence[str], limit: int = MATRIX_TEAMS
) -> pd.DataFrame:
    """The ``limit`` teams needing attention most: the most red ratings, then the most amber,
    then by name. All of them, by name, when there are no more than ``limit``."""
    if len(matrix) <= limit:
        return matrix.sort_values("team_name")
    rags = matrix[[f"{i}_rag" for i in indicator_ids if f"{i}_rag" in matrix.columns]]
    ranked = matrix.assign(
        _red=(rags == "red").sum(axis=1), _amber=(rags == "amber").sum(axis=1)
    ).sort_values(["_red", "_amber", "team_name"], ascending=[False, False, True])
    return ranked.head(limit).drop(columns=["_red", "_amber"])


def team_matrix_table(
    matrix: pd.DataFrame, indicators: Sequence[Indicator], team_path: str = "/team"
) -> html.Table | html.P:
    """Team × indicator table; each cell shows value and RAG word and links to that team's view.

    ``matrix`` has one row per team: ``team_id``, ``team_name`` and, per indicator id, its
    value in ``<id>`` and its RAG in ``<id>_rag`` (the data layer's ``team_matrix``).
    """
    if matrix is None or matrix.empty:
        return html.P("No teams to show.", className="text-muted")
    shown = [i for i in indicators if i.id in matrix.columns]
    header = html.Thead(
        html.Tr([html.Th("Team", scope="col")] + [html.Th(i.title, scope="col") for i in shown])
    )
    rows = []
    for record in matrix.to_dict("records"):  # in the caller's order
        href = f"{team_path}?" + urlencode({"scope": f"team:{record['team_id']}"})
        row = [html.Th(dcc.Link(str(record["team_name"]), href=href), scope="row")]
        for indicator in shown:
            value = record.get(indicator.id)
            value = None if value is None or _nan(value) or value is pd.NA else value
            rag = record.get(f"{indicator.id}_rag")
            rag = rag if isinstance(rag, str) and rag in RAG_TEXT else None
            text = format_value(value, indicator.unit)
            label: list[Any] = [text]
            if rag:
                symbol, word = RAG_TEXT[rag]
                label.append(
                    html.Span(
                        [html.Span(f" {symbol}", **{"aria-hidden": "true"}), f" {word}"],
                        className="matrix-rag",
                    )
                )
            row.append(
                html.Td(
                    dcc.Link(
                        label,
                        href=href,
                        title=f"{record['team_name']}: {indicator.title} {text}",
                    ),
                    className=f"matrix-cell rag-cell--{rag or 'none'}",
                )
            )
        rows.append(html.Tr(row))
    return html.Table(
        [
            html.Caption("Teams by indicator, coloured and labelled by RAG rating"),
            header,
            html.Tbody(rows),
        ],
        className="table table-sm team-matrix",
    )


# ----------------------------------------------------------------------------- page parts


def section(title: str, children: Iterable[Any], level: int = 2) -> html.Section:
    heading = html.H2 if level == 2 else html.H3
    return html.Section(
        [heading(title, className="section-title"), *children], className="page-section"
    )


def page_header(title: str, question: str, extra: Sequence[Any] = ()) -> html.Header:
    return html.Header(
        [html.H1(title), html.P(question, className="lead"), *extra], className="page-header"
    )
