"""Dash pages from the declarations in ``layouts/``: one ``dash.register_page`` per module.

A page's layout function builds only the static frame (headings, empty tiles, empty grids,
the scope selector); the generic callbacks fill it. So the page itself costs one catalogue
lookup and, where there is a selector, the list of teams or cost centres.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.model import Indicator, ScopeError
from dashboard.web import charts, components, context
from dashboard.web.session import allowed_scope
from layouts import Page, all_pages

log = logging.getLogger(__name__)

# No mode bar: it covers the title and adds a dozen unlabelled tab stops per chart.
GRAPH_CONFIG = {"displayModeBar": False, "responsive": True}


def register_pages(app: dash.Dash) -> list[Page]:
    """Register every declared page with ``app`` (built with ``use_pages=True, pages_folder=""``)."""
    pages = all_pages()
    for order, page in enumerate(pages):
        dash.register_page(
            f"layouts.{page.id}",
            path=page.path,
            name=page.nav_label,
            title=f"{page.title} · Children's services dashboard",
            description=page.question,
            order=order,
            layout=functools.partial(render_page, page),
        )
    return pages


def render_page(page: Page, scope: str | None = None, **_query: Any) -> Any:
    """The layout of one page; ``scope`` comes from the query string (``?scope=team:12``)."""
    if page.tier == "home":
        return landing(all_pages())
    ctx = context.current()
    return page_layout(page, ctx.data, scope)


def page_layout(page: Page, data: Any, requested_scope: str | None) -> Any:
    """The frame of a tier page for a requested scope (checked by ``allowed_scope``)."""
    options = selector_options(page, data)
    default = page.default_scope or _first_team(options)
    notice = []
    try:
        scope = str(allowed_scope(requested_scope, default))
    except ScopeError as exc:
        scope = str(allowed_scope(None, default))
        notice.append(dbc.Alert(f"{exc}. Showing {default} instead.", color="warning"))
    if options and scope not in {o["value"] for o in options}:
        options = [{"label": scope, "value": scope}, *options]

    catalogue = {indicator.id: indicator for indicator in data.catalogue()}
    header_extra = [selector(page, options, scope)] if page.selector else []
    body: list[Any] = [
        components.page_header(page.title, page.question, header_extra),
        *notice,
        dcc.Store(id="page-scope", data=scope),
    ]
    for block in page.sections:
        body.append(
            components.section(
                block.title,
                [html.Div([_tile(catalogue, i, page) for i in block.tiles], className="tile-grid")],
            )
        )
    if page.charts:
        body.append(
            components.section(
                "Charts", [html.Div([chart_block(c) for c in page.charts], className="chart-grid")]
            )
        )
    if page.history:
        body.append(
            components.section(
                "Daily history (from the snapshot store)",
                [
                    html.Div(
                        [history_block(i, catalogue) for i in page.history], className="chart-grid"
                    )
                ],
            )
        )
    if page.team_matrix:
        body.append(
            components.section(
                "Teams at a glance",
                [
                    html.P("Each cell opens that team's view.", className="text-muted no-print"),
                    html.Div(id={"type": "matrix", "page": page.id}, className="matrix-wrap"),
                ],
            )
        )
    for indicator_id in page.lists:
        title = catalogue[indicator_id].title if indicator_id in catalogue else indicator_id
        body.append(
            components.section(
                f"List: {title}",
                [
                    html.Div(
                        id={"type": "list-links", "ind": indicator_id}, className="list-links"
                    ),
                    components.data_grid(
                        {"type": "list", "ind": indicator_id}, f"Rows counted by {title}", "360px"
                    ),
                ],
            )
        )
    return html.Div(body, className=f"page page--{page.tier}")


def _first_team(options: list[dict[str, str]]) -> str:
    """A team page opens on a single team (the first), not a whole service."""
    teams = [o["value"] for o in options if o["value"].startswith("team:")]
    return teams[0] if teams else (options[0]["value"] if options else "borough")


def _tile(catalogue: dict[str, Indicator], indicator_id: str, page: Page) -> Any:
    indicator = catalogue.get(indicator_id)
    if indicator is None:
        log.warning("layout %s names unknown indicator %s", page.id, indicator_id)
        return components.unknown_tile(indicator_id)
    return components.tile_slot(indicator, page.id)


def chart_block(chart_id: str) -> html.Figure:
    title = charts.chart_title(chart_id)
    return html.Figure(
        [
            dcc.Graph(
                id={"type": "chart", "chart": chart_id},
                figure=charts.empty_figure(title),
                config=GRAPH_CONFIG,
            ),
            html.Figcaption(title, className="visually-hidden"),
        ],
        className="chart",
    )


def history_block(indicator_id: str, catalogue: dict[str, Indicator]) -> html.Figure:
    title = catalogue[indicator_id].title if indicator_id in catalogue else indicator_id
    return html.Figure(
        [
            dcc.Graph(
                id={"type": "history", "ind": indicator_id},
                figure=charts.empty_figure(f"{title}: daily history"),
                config=GRAPH_CONFIG,
            ),
            html.Figcaption(f"{title}: daily history", className="visually-hidden"),
        ],
        className="chart",
    )


def selector_options(page: Page, data: Any) -> list[dict[str, str]]:
    """The scopes a page's selector offers (teams and services, or cost centres)."""
    if page.selector in ("teams", "teams_and_borough"):
        options = []
        if page.selector == "teams_and_borough":
            options.append({"label": "Whole borough", "value": "borough"})
        for row in data.services().sort_values("name").itertuples(index=False):
            options.append(
                {"label": f"{row.name} (whole service)", "value": f"service:{row.org_id}"}
            )
        for row in data.teams().sort_values("name").itertuples(index=False):
            options.append({"label": str(row.name), "value": f"team:{row.org_id}"})
        return options
    if page.selector == "cost_centres":
        options = [{"label": "All cost centres", "value": "borough"}]
        for row in data.cost_centres().itertuples(index=False):
            options.append(
                {
                    "label": f"{row.cost_centre_code} {row.description}",
                    "value": f"cost_centre:{row.cost_centre_code}",
                }
            )
        return options
    return []


def selector(page: Page, options: list[dict[str, str]], value: str) -> html.Div:
    label = "Cost centre" if page.selector == "cost_centres" else "Team or service"
    return html.Div(
        [
            dbc.Label(label, html_for="scope-select", className="me-2 fw-semibold"),
            dbc.Select(id="scope-select", options=options, value=value, className="scope-select"),
        ],
        className="scope-picker no-print",
    )


def landing(pages: list[Page]) -> html.Div:
    """One card per tier: one click to the tier, a second on a tile opens its list."""
    cards = []
    for page in pages:
        if page.tier == "home":
            continue
        cards.append(
            html.Li(
                dcc.Link(
                    [html.H2(page.title, className="h4"), html.P(page.question)],
                    href=page.path,
                    className="tier-card",
                ),
            )
        )
    home = pages[0]
    return html.Div(
        [
            components.page_header(home.title, home.question),
            html.Ul(cards, className="tier-cards"),
        ],
        className="page page--home",
    )
