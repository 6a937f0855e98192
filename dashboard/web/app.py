"""The app factory: ``create_app(settings)`` builds the Dash app, its pages, callbacks and routes.

Nothing is built at import time (STYLE.md). Each app holds its own data layer on its Flask
server; no module keeps state between requests, so gunicorn workers are interchangeable.

Access (issue 5): ``session.guard`` runs before every request (Dash's endpoints included);
sessions are Flask's signed cookie (``HttpOnly``, ``SameSite=Lax``, ``Secure`` outside demo
mode unless configured otherwise), with an idle timeout and an absolute lifetime.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html
from flask import Flask, Response, g, has_request_context, request

from dashboard.config import Settings
from dashboard.web import context
from dashboard.web.accounts import Accounts
from dashboard.web.admin import register_admin
from dashboard.web.callbacks import page_unchanged, refresh_freshness, register_callbacks
from dashboard.web.components import data_grid
from dashboard.web.login import register_login
from dashboard.web.pages import register_pages
from dashboard.web.render_cache import RenderCache, aggregate_outputs, install
from dashboard.web.routes import register_routes
from dashboard.web.session import (
    callback_request_guard,
    csrf_token,
    guard,
    may_see_page,
    request_version,
    scoped_data,
)
from dashboard.web.signing_key import signing_key
from layouts import Page

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent / "assets"
# Far above any request the pages send (a callback's inputs), far below an abusive body.
MAX_REQUEST_BYTES = 1024 * 1024
# Responses that can carry data: never kept by a browser or proxy cache.
NO_STORE_PREFIXES = ("/_dash-", "/api/", "/download/", "/admin/", "/login")


def create_app(settings: Settings | None = None, *, poll_seconds: float | None = None) -> dash.Dash:
    """Build the web app over the store named in ``settings`` (default: the environment).

    ``poll_seconds`` is how often browsers ask whether a new snapshot has landed (a version
    token compare: no SQL, no pandas); default ``settings.poll_seconds``; tests shorten it.

    Raises ``SigningKeyError`` outside demo mode when no session signing key is configured.
    """
    from dashboard.data import DataLayer  # the data layer pulls in pandas-heavy modules
    from dashboard.store import SnapshotStore

    settings = settings or Settings()
    store = SnapshotStore.from_settings(settings)
    accounts = Accounts(settings, store)
    key = signing_key(settings, accounts.engine)  # before anything else: no key, no app
    data = DataLayer(settings, store)
    interval_ms = int(1000 * (poll_seconds or settings.poll_seconds))

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
    configure_sessions(app.server, settings, key)
    pages = register_pages(app)
    context.attach(
        app.server,
        context.WebContext(settings, data, store, interval_ms, accounts, tuple(pages)),
    )
    app.server.before_request(guard)  # after Dash's own set-up hooks, before any view
    app.server.before_request(callback_request_guard(app))
    app.server.after_request(_protective_headers)
    app.layout = lambda: shell(pages, _token(data), interval_ms, settings)
    register_callbacks(app, lambda: data.snapshot_as_of() or settings.reporting_date())
    # Tiles, charts, history, the matrix and the lists' columns and counts: rendered once per
    # scope and version (per worker, or shared by the workers through the store), by the
    # preloader for each new version before it is published.
    shared = settings.shared_renders
    if shared is None:
        shared = store.url.get_backend_name() == "postgresql"
    install(
        app,
        RenderCache(request_version, shared=store if shared else None),
        aggregate_outputs(app),
        data,
        same=lambda body, old, new: page_unchanged(data, body, old, new),
        refresh=lambda body, answer: refresh_freshness(scoped_data(), body, answer),
    )
    data.use_version(lambda: request_version() if has_request_context() else store.version_token())
    accounts.use_snapshots(data)  # roles from the loaded snapshots: no query per user
    data.on_follow(accounts.follow_changes)  # identities kept until an account changes
    register_routes(app.server)
    register_login(app.server)
    register_admin(app.server)
    return app


def configure_sessions(server: Flask, settings: Settings, key: str) -> None:
    """Flask's signed-cookie session: the cookie holds only who logged in and when."""
    secure = settings.session_cookie_secure
    if secure is None:
        secure = not settings.demo  # the demo runs on plain http://127.0.0.1
    server.secret_key = key
    server.config.update(
        # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only
        # and for the whole site, so a sibling subdomain cannot plant one.
        SESSION_COOKIE_NAME="__Host-csc_session" if secure else "csc_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_PATH="/",
        # Each response re-signs the cookie, so this doubles as the idle timeout: a cookie
        # older than this is not accepted at all (the guard also checks both times itself).
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=settings.session_idle_minutes),
        SESSION_REFRESH_EACH_REQUEST=True,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
    )


def _protective_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith(NO_STORE_PREFIXES):
        response.headers["Cache-Control"] = "no-store"
    return response


def _token(data: Any) -> str | None:
    """The version when the page loads; None if the store is down (the poll retries)."""
    try:
        return request_version() if has_request_context() else data.version_token()
    except Exception:  # the page must still load, with tiles saying what is wrong
        log.exception("store unreachable while building the page")
        return None


def shell(pages: list[Page], token: str, interval_ms: int, settings: Settings) -> html.Div:
    """The frame around every page: skip link, navigation, live-update poll and drill-down panel.

    Built per request (``/_dash-layout``), so the navigation shows only the logged-in user's
    tiers. (Dash also builds it once unauthenticated, to validate the layout: then no tiers.)"""
    access = g.get("access")
    visible = [page for page in pages if may_see_page(page, access)]
    return html.Div(
        [
            html.A("Skip to main content", href="#main", className="skip-link"),
            navbar(visible, account_menu(settings)),
            html.Main(dbc.Container(dash.page_container, fluid=True), id="main", tabIndex="-1"),
            dcc.Interval(id="poll", interval=interval_ms, n_intervals=0),
            dcc.Store(id="data-version", data=token),
            dcc.Store(id="drill-state"),
            drilldown_panel(),
        ]
    )


def account_menu(settings: Settings) -> list[Any]:
    """Who is logged in, the admin pages for an admin, and a logout button (embedded mode)."""
    username = g.get("username")
    if not username:
        return []
    items: list[Any] = [
        html.Span(
            g.get("display_name") or username,
            className="navbar-text text-white me-3",
            id="current-user",
        )
    ]
    if g.get("is_admin"):
        items.append(html.A("Admin", href="/admin/audit", className="nav-link me-3 text-white"))
    if settings.auth_mode == "embedded":
        items.append(
            html.Form(
                [
                    dcc.Input(
                        type="hidden", name="csrf_token", value=csrf_token(), id="logout-csrf"
                    ),
                    html.Button("Log out", type="submit", className="btn btn-outline-light btn-sm"),
                ],
                action="/logout",
                method="POST",
                className="d-inline",
                id="logout-form",
            )
        )
    return [html.Div(items, className="d-flex align-items-center ms-auto no-print")]


def navbar(pages: list[Page], extra: list[Any] | None = None) -> html.Header:
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
                    *(extra or []),
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
                    data_grid(
                        "drill-grid", "Rows the number counts", "50vh", selectable=True, blocks=True
                    ),
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
