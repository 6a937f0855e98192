"""The app factory: ``create_app(settings)`` builds the Dash app, its pages, callbacks and routes.

Nothing is built at import time (STYLE.md). Each app holds its own data layer on its Flask
server; no module keeps state between requests, so gunicorn workers are interchangeable.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.config import Settings
from dashboard.web import context
from dashboard.web.callbacks import register_callbacks
from dashboard.web.components import data_grid
from dashboard.web.pages import register_pages
from dashboard.web.routes import register_routes
from layouts import Page

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_POLL_SECONDS = 10.0


def create_app(settings: Settings | None = None, *, poll_seconds: float | None = None) -> dash.Dash:
    """Build the web app over the store named in ``settings`` (default: the environment).

    ``poll_seconds`` is how often browsers ask whether a new snapshot has landed (a version
    token compare: no SQL, no pandas); tests shorten it.
    """
    from dashboard.data import DataLayer  # the data layer pulls in pandas-heavy modules
    from dashboard.store import SnapshotStore

    settings = settings or Settings()
    store = SnapshotStore.from_settings(settings)
    data = DataLayer(settings, store)
    interval_ms = int(1000 * (poll_seconds or DEFAULT_POLL_SECONDS))

    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        title="Children's services dashboard",
        update_title=None,  # the title would flicker on every poll otherwise
        suppress_callback_exceptions=True,  # pages come and go; their ids are not all present
        serve_locally=True,
    )
    # WCAG 3.1.1: the page's language, so screen readers pronounce it right.
    app.index_string = app.index_string.replace("<html>", '<html lang="en-GB">', 1)
    context.attach(app.server, context.WebContext(settings, data, store, interval_ms))
    pages = register_pages(app)
    app.layout = lambda: shell(pages, _token(data), interval_ms)
    register_callbacks(app, data, lambda: data.snapshot_as_of() or settings.reporting_date())
    register_routes(app.server)
    return app


def _token(data: Any) -> str | None:
    """The version when the page loads; None if the store is down (the poll retries)."""
    try:
        return data.version_token()
    except Exception:  # the page must still load, with tiles saying what is wrong
        log.exception("store unreachable while building the page")
        return None


def shell(pages: list[Page], token: str, interval_ms: int) -> html.Div:
    """The frame around every page: skip link, navigation, live-update poll and drill-down panel."""
    return html.Div(
        [
            html.A("Skip to main content", href="#main", className="skip-link"),
            navbar(pages),
            html.Main(dbc.Container(dash.page_container, fluid=True), id="main", tabIndex="-1"),
            dcc.Interval(id="poll", interval=interval_ms, n_intervals=0),
            dcc.Store(id="data-version", data=token),
            dcc.Store(id="drill-state"),
            drilldown_panel(),
        ]
    )


def navbar(pages: list[Page]) -> html.Header:
    links = [
        dbc.NavItem(dbc.NavLink(page.nav_label, href=page.path, active="exact"))
        for page in pages
        if page.tier != "home"
    ]
    return html.Header(
        dbc.Navbar(
            dbc.Container(
                [
                    dbc.NavbarBrand("Children's services dashboard", href="/"),
                    html.Nav(dbc.Nav(links, navbar=True), **{"aria-label": "Tiers"}),
                ],
                fluid=True,
            ),
            color="primary",
            dark=True,
            className="no-print-bg",
        )
    )


def drilldown_panel() -> dbc.Modal:
    """The list behind a tile: sortable, filterable, exportable; a child's row opens the family."""
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle(id="drill-title", children="List")),
            dbc.ModalBody(
                [
                    html.Div(id="drill-links", className="list-links"),
                    html.P(
                        "Sort or filter any column. Select a child's row to see the open work "
                        "of their whole family.",
                        className="text-muted small",
                    ),
                    data_grid("drill-grid", "Rows the number counts", "50vh", selectable=True),
                    html.Section(
                        [
                            html.H2(id="family-title", className="h5 mt-3"),
                            data_grid("family-grid", "Open work of the family", "30vh"),
                        ],
                        id="family-panel",
                        hidden=True,
                    ),
                ]
            ),
        ],
        id="drill-modal",
        size="xl",
        scrollable=True,
        is_open=False,
    )


def server_for(settings: Settings | None = None, **kwargs: Any) -> Any:
    """The WSGI server of a new app (``gunicorn app:server``)."""
    return create_app(settings, **kwargs).server
