"""Dash pages from the declarations in ``layouts/``: one ``dash.register_page`` per module.

A page's layout function builds only the static frame (headings, empty tiles, empty grids,
the scope selector); the generic callbacks fill it. So the page itself costs one catalogue
lookup and, where there is a selector, the list of teams or cost centres.

Access (issue 5): in the app a page is built from the user's ``ScopedData``, so its selector
offers only the user's own teams, services and cost centres, a scope in the query string that
is not the user's is refused (with a notice, showing their own instead), and a tier the user
may not see gets a "not available to you" page with no data. A bare ``DataLayer`` (tests)
sees everything.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.access import Access
from dashboard.model import Indicator, Scope, ScopeError
from dashboard.web import charts, components
from dashboard.web.session import may_see_page, parse_scope, scoped_data
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


def render_page(page: Page, /, scope: Any = None, **_query: Any) -> Any:
    """The layout of one page for the logged-in user; ``scope`` comes from the query string
    (``?scope=team:12``). ``page`` is positional-only, so a query string cannot replace it."""
    data = scoped_data()
    if not may_see_page(page, data.access):
        return not_available(page)
    if page.tier == "home":
        return landing([p for p in all_pages() if may_see_page(p, data.access)])
    return page_layout(page, data, scope)


def _access_of(data: Any) -> Access | None:
    """The user's access when ``data`` is a ``ScopedData``; None (everything) for a bare
    ``DataLayer``, which only tests and the benchmark pass."""
    access = getattr(data, "access", None)
    return access if isinstance(access, Access) else None


def page_layout(page: Page, data: Any, requested_scope: Any) -> Any:
    """The frame of a tier page for a requested scope (parsed, then checked against the user's
    access when ``data`` is their ``ScopedData``)."""
    access = _access_of(data)
    options = selector_options(page, data)
    default = _default_scope(page, options, access)
    notice = []
    try:
        scope = str(parse_scope(requested_scope, default))
        data.resolve(Scope.parse(scope))  # a team or cost centre the borough does not have
    except ScopeError as exc:
        scope = default
        notice.append(dbc.Alert(f"{exc}. Showing {default} instead.", color="warning"))
    if access is not None and not data.allows(Scope.parse(scope)):
        notice.append(
            dbc.Alert(
                f"{scope} is not available to you. Showing {default} instead.", color="warning"
            )
        )
        scope = default
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
                        {"type": "list", "ind": indicator_id},
                        f"Rows counted by {title}",
                        "360px",
                        blocks=True,
                    ),
                    # A digest of the list's rows: its grid asks for its blocks again only
                    # when this changes, not for every new version.
                    dcc.Store(id={"type": "list-rows", "ind": indicator_id}),
                ],
            )
        )
    return html.Div(body, className=f"page page--{page.tier}")


def _first_team(options: list[dict[str, str]]) -> str:
    """A team page opens on a single team (the first), not a whole service."""
    teams = [o["value"] for o in options if o["value"].startswith("team:")]
    return teams[0] if teams else (options[0]["value"] if options else "borough")


def _default_scope(page: Page, options: list[dict[str, str]], access: Access | None) -> str:
    """Where a page opens: the page's own default or first team for a borough user (and in
    tests); otherwise the user's own default (their team, all their teams, or their first cost
    centre), if the selector offers it, else its first option."""
    if access is None or access.borough:
        return page.default_scope or _first_team(options)
    values = [o["value"] for o in options]
    try:
        own = str(access.default_scope("budget" if page.selector == "cost_centres" else "team"))
    except LookupError:
        own = None
    if own in values:
        return own
    return values[0] if values else "borough"


def not_available(page: Page) -> html.Div:
    """What a user sees on a tier they may not open: a clear sentence, and no data."""
    return html.Div(
        [
            components.page_header(page.title, page.question),
            dbc.Alert(
                f"The {page.title} view is not available to you. Use the navigation to open "
                "your own view.",
                color="warning",
                id="not-available",
            ),
        ],
        className="page page--refused",
    )


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
    """The scopes a page's selector offers (teams and services, or cost centres): only the
    user's own when ``data`` is their ``ScopedData`` (its lists are already cut to them)."""
    access = _access_of(data)
    everything = access is None or access.borough
    if page.selector in ("teams", "teams_and_borough"):
        options = []
        if page.selector == "teams_and_borough" and everything:
            options.append({"label": "Whole borough", "value": "borough"})
        mine = _my_teams_option(access)
        if mine is not None:
            options.append(mine)
        for row in data.services().sort_values("name").itertuples(index=False):
            options.append(
                {"label": f"{row.name} (whole service)", "value": f"service:{row.org_id}"}
            )
        for row in data.teams().sort_values("name").itertuples(index=False):
            options.append({"label": str(row.name), "value": f"team:{row.org_id}"})
        return options
    if page.selector == "cost_centres":
        options = [{"label": "All cost centres", "value": "borough"}] if everything else []
        for row in data.cost_centres().itertuples(index=False):
            options.append(
                {
                    "label": f"{row.cost_centre_code} {row.description}",
                    "value": f"cost_centre:{row.cost_centre_code}",
                }
            )
        return options
    return []


def _my_teams_option(access: Access | None) -> dict[str, str] | None:
    """ "All my teams" for a user with several teams (and no borough), when the scope's text
    fits what a browser may send back (``Scope.parse`` caps it)."""
    if access is None or access.borough or len(access.team_ids) < 2:
        return None
    value = str(access.default_scope("team"))
    try:
        Scope.parse(value)
    except ScopeError:
        return None  # too many teams to name: the user picks a service or a team instead
    return {"label": f"All my teams ({len(access.team_ids)})", "value": value}


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
