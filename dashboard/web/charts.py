"""Plotly figures for the data layer's chart frames, each with an accessible title.

A chart id (named in a layout) maps to how its frame is drawn. An id without a spec still
draws: its first text-or-date column on the x axis, its numeric columns as series.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

# Colours with at least 3:1 contrast against white, told apart by dash pattern as well as hue.
SERIES_COLOURS = ("#1d4f91", "#b35900", "#00703c", "#6f2c91", "#4c2c92")
THRESHOLD_COLOUR = "#b3261e"
# The look of every chart, built once: setting ``template="plotly_white"`` on each figure made
# plotly validate and deep-copy the whole template every time (20 of a chart's 25 ms).
TEMPLATE = pio.templates["plotly_white"].to_plotly_json()


@dataclass(frozen=True)
class ChartSpec:
    title: str
    kind: str  # "bar", "line" or "spend"
    x: str | None = None
    y: tuple[str, ...] = ()
    x_title: str = ""
    y_title: str = ""
    horizontal: bool = False


CHARTS: dict[str, ChartSpec] = {
    "caseload_by_worker": ChartSpec(
        "Children per worker (FTE-weighted), with the caseload threshold",
        "bar",
        x="worker_name",
        y=("children_per_fte",),
        y_title="children per FTE",
    ),
    "overdue_by_category": ChartSpec(
        "Overdue work by step category", "bar", x="category", y=("overdue",), y_title="steps"
    ),
    "spend_by_month": ChartSpec(
        "Spend profile: incurred by month against budget ÷ 12, with forecast",
        "spend",
        x="month",
        y_title="£",
    ),
    "placements_by_provider_type": ChartSpec(
        "Active placements and average weekly cost by provider type",
        "placements",
        x="provider_type",
        y=("placements", "average_weekly_cost"),
        y_title="placements",
    ),
    "trend_referrals": ChartSpec("Referrals by month, 24 months", "line", x="month", y=("value",)),
    "trend_assessments": ChartSpec(
        "Assessments completed by month, 24 months", "line", x="month", y=("value",)
    ),
    "trend_cp_starts": ChartSpec(
        "Child protection plans started by month, 24 months", "line", x="month", y=("value",)
    ),
    "trend_care_starts": ChartSpec(
        "Periods of care started by month, 24 months", "line", x="month", y=("value",)
    ),
    "trend_spend": ChartSpec(
        "Spend incurred by month, 24 months", "line", x="month", y=("value",), y_title="£"
    ),
}


def chart_title(chart_id: str) -> str:
    spec = CHARTS.get(chart_id)
    return spec.title if spec else chart_id.replace("_", " ").capitalize()


def figure_for(
    chart_id: str, frame: pd.DataFrame, threshold: float | None = None
) -> dict[str, Any]:
    """The figure for one chart frame; an empty frame gives a titled "no data" figure."""
    spec = CHARTS.get(chart_id) or ChartSpec(chart_title(chart_id), "bar")
    if frame is None or frame.empty:
        return empty_figure(spec.title)
    if spec.kind == "spend":
        figure = _spend(frame, spec)
    elif spec.kind == "placements" and set(spec.y) <= set(frame.columns):
        figure = _placements(frame, spec)
    else:
        x = spec.x if spec.x in frame.columns else _x_column(frame)
        ys = [y for y in spec.y if y in frame.columns] or _numeric_columns(frame, exclude=x)
        figure = _new_figure()
        for index, y in enumerate(ys):
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            label = y.replace("_", " ")
            if spec.kind == "line":
                figure.add_scatter(
                    x=frame[x],
                    y=frame[y],
                    name=label,
                    mode="lines+markers",
                    line={"color": colour, "dash": ("solid", "dash", "dot")[index % 3]},
                )
            else:
                figure.add_bar(x=frame[x], y=frame[y], name=label, marker_color=colour)
    if threshold is not None:
        figure.add_hline(
            y=threshold,
            line_dash="dash",
            line_color=THRESHOLD_COLOUR,
            annotation_text=f"threshold {threshold:g}",
            annotation_position="top left",
        )
    return _style(figure, spec.title, spec.x_title, spec.y_title)


def history_figure(title: str, history: pd.DataFrame) -> dict[str, Any]:
    """Daily history of one indicator, from the store."""
    full = f"{title}: daily history"
    if history is None or history.empty:
        return empty_figure(full)
    frame = history.sort_values("day")
    days = pd.to_datetime(frame["day"])
    figure = _new_figure(
        go.Scatter(
            x=days,
            y=frame["value"],
            mode="lines+markers",
            name=title,
            line={"color": SERIES_COLOURS[0]},
        )
    )
    # Whole days on the axis; a lone first day gets a week either side instead of hours.
    start, end = days.min(), days.max()
    if (end - start).days < 7:
        start, end = start - pd.Timedelta(days=7), end + pd.Timedelta(days=7)
    figure.update_xaxes(type="date", tickformat="%d %b %Y", range=[start, end])
    return _style(figure, full, "", "")


def empty_figure(title: str) -> dict[str, Any]:
    """A chart's placeholder ("No data yet"). Every page's layout has one per chart, so each
    title's is built once by plotly (milliseconds) and copied (the shared template is not)."""
    built = _empty_figure(title)
    layout = {key: value for key, value in built["layout"].items() if key != "template"}
    copied = copy.deepcopy({**built, "layout": layout})
    copied["layout"]["template"] = TEMPLATE
    return copied


@functools.lru_cache(maxsize=512)
def _empty_figure(title: str) -> dict[str, Any]:
    figure = _new_figure()
    figure.add_annotation(text="No data yet", showarrow=False, font={"size": 16})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return _style(figure, title, "", "")


def _spend(frame: pd.DataFrame, spec: ChartSpec) -> go.Figure:
    x = spec.x if spec.x in frame.columns else _x_column(frame)
    figure = _new_figure()
    if "incurred" in frame:
        figure.add_bar(
            x=frame[x], y=frame["incurred"], name="incurred", marker_color=SERIES_COLOURS[0]
        )
    if "forecast" in frame:
        figure.add_bar(
            x=frame[x],
            y=frame["forecast"],
            name="forecast",
            marker_color=SERIES_COLOURS[1],
            marker_pattern_shape="/",
        )
    if "budget" in frame:
        figure.add_scatter(
            x=frame[x],
            y=frame["budget"],
            name="budget ÷ 12",
            mode="lines",
            line={"color": THRESHOLD_COLOUR, "dash": "dash"},
        )
    if not figure.data:
        for index, y in enumerate(_numeric_columns(frame, exclude=x)):
            figure.add_bar(x=frame[x], y=frame[y], name=y, marker_color=SERIES_COLOURS[index % 5])
    figure.update_layout(barmode="stack")
    return figure


def _placements(frame: pd.DataFrame, spec: ChartSpec) -> go.Figure:
    """Count as bars, average weekly cost as markers on a second axis (different units)."""
    count, cost = spec.y
    figure = _new_figure()
    figure.add_bar(
        x=frame[spec.x], y=frame[count], name="placements", marker_color=SERIES_COLOURS[0]
    )
    figure.add_scatter(
        x=frame[spec.x],
        y=frame[cost],
        name="average weekly cost (£)",
        mode="markers",
        marker={"color": SERIES_COLOURS[1], "symbol": "diamond", "size": 11},
        yaxis="y2",
    )
    figure.update_layout(
        yaxis2={"title": {"text": "£ per week"}, "overlaying": "y", "side": "right"}
    )
    return figure


def _new_figure(*traces: Any) -> go.Figure:
    """A figure with no template of its own (``_style`` adds the shared one): plotly would
    otherwise copy its default template into every figure."""
    return go.Figure(data=list(traces), layout={"template": {}})


def _style(figure: go.Figure, title: str, x_title: str, y_title: str) -> dict[str, Any]:
    """The figure as ``dcc.Graph`` takes it, with the shared look (``TEMPLATE``)."""
    figure.update_layout(
        title={"text": title, "font": {"size": 15}},
        margin={"l": 48, "r": 16, "t": 48, "b": 48},
        height=320,
        legend={"orientation": "h", "y": -0.2},
        font={
            "family": "system-ui, -apple-system, 'Segoe UI', Arial, sans-serif",
            "color": "#0b0c0c",
        },
        meta={"title": title},
    )
    if x_title:
        figure.update_xaxes(title_text=x_title)
    if y_title:
        figure.update_yaxes(title_text=y_title)
    styled = figure.to_plotly_json()
    styled["layout"]["template"] = TEMPLATE  # shared, never changed: serialised as it is
    return styled


def _x_column(frame: pd.DataFrame) -> str:
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            return str(column)
    return str(frame.columns[0])


def _numeric_columns(frame: pd.DataFrame, exclude: str | None) -> list[str]:
    return [
        str(c)
        for c in frame.columns
        if c != exclude
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
        and not str(c).endswith("_id")
    ]
