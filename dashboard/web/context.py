"""What one app instance carries: its settings, data layer, store, accounts and pages.

Kept on the Flask server (``server.extensions``), never in a module global, so two apps built
in one process (tests) each see their own data, and page layout functions (registered in Dash's
process-wide page registry) find the data of the app serving the current request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

from dashboard.config import Settings

if TYPE_CHECKING:
    from dashboard.data import DataLayer
    from dashboard.store import SnapshotStore
    from dashboard.web.accounts import Accounts
    from layouts import Page

EXTENSION_KEY = "csc_dashboard"


@dataclass(frozen=True)
class WebContext:
    settings: Settings
    data: DataLayer
    store: SnapshotStore
    poll_interval_ms: int
    accounts: Accounts
    pages: tuple[Page, ...]

    def page_at(self, path: str) -> Page | None:
        """The declared page served at ``path`` (None for any other path)."""
        return next((page for page in self.pages if page.path == path), None)


def attach(server: Flask, context: WebContext) -> None:
    server.extensions[EXTENSION_KEY] = context


def of(server: Flask) -> WebContext:
    return server.extensions[EXTENSION_KEY]


def current() -> WebContext:
    """The context of the app handling the current request."""
    return current_app.extensions[EXTENSION_KEY]
