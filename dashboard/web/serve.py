"""Serve the app in one process: the demo borough, the in-process refresher and the web server.

Used by ``python app.py`` and ``csc-dashboard serve``. A second refresher elsewhere (the
``scheduler`` process) is kept out by the refresher's own lock, so this stays safe next to a
production scheduler.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.engine import make_url

from dashboard.config import Settings

log = logging.getLogger(__name__)

DEMO_POPULATION = 60_000
DEMO_YEARS = 6
DEMO_SEED = 42


def ensure_demo_source(settings: Settings) -> bool:
    """Build the default demo borough if the source is the demo SQLite file and it is missing.

    Only the default source URL (or any SQLite source in demo mode) is ever generated into;
    a council's own source is never written to. Returns True when it built one.
    """
    url = make_url(settings.source_url)
    if not is_demo_source(settings) or url.get_backend_name() != "sqlite" or not url.database:
        return False
    path = Path(url.database)  # relative to the working directory, as SQLAlchemy opens it
    if path.exists():
        return False
    from dashboard.demo import generate_borough

    path.parent.mkdir(parents=True, exist_ok=True)
    log.info("building the demo borough into %s (first run only)", path)
    generate_borough(
        settings.source_url,
        population=DEMO_POPULATION,
        years=DEMO_YEARS,
        seed=DEMO_SEED,
        as_of=settings.reporting_date(),
    )
    return True


def is_demo_source(settings: Settings) -> bool:
    """Is this the demo: demo mode, or the default demo SQLite source?"""
    return settings.demo or settings.source_url == Settings.model_fields["source_url"].default


def ensure_demo_users(settings: Settings) -> list[str]:
    """(Re)create the demo accounts (password ``demo``) from the demo borough's own workers;
    return their usernames.

    Done on every demo start, so the accounts always match the borough being served (a store
    left over from another borough would otherwise keep accounts nobody can use). They are
    marked demo accounts, which log in only in demo mode; real accounts are never touched.
    """
    from dashboard.demo_users import create_demo_users

    created = create_demo_users(settings.store_url, settings.source_url, settings.reporting_date())
    for user in created:
        log.info("demo account %s (%s): sees %s", user.username, user.tier, user.scope)
    return [user.username for user in created]


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8050) -> int:
    """Serve in one process. On the demo borough this is demo mode (demo accounts, a generated
    signing key kept in the store, plain-http cookies); anywhere else the settings rule."""
    from dashboard.history import HistoryRecorder
    from dashboard.refresher import start_background_scheduler
    from dashboard.web import context
    from dashboard.web.app import create_app

    ensure_demo_source(settings)
    if is_demo_source(settings):
        settings = settings.model_copy(update={"demo": True})
        ensure_demo_users(settings)
    handle = start_background_scheduler(settings, after_refresh=HistoryRecorder(settings))
    try:
        app = create_app(settings)
        stop_preload = (
            context.of(app.server).data.preload(settings.preload_seconds)
            if settings.preload_seconds > 0
            else lambda: None
        )
        log.info("serving on http://%s:%s", host, port)
        try:
            app.run(host=host, port=port, debug=False)
        finally:
            stop_preload()
    finally:
        handle.stop()
    return 0
