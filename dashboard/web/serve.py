"""Serve the app in one process: the demo borough, the in-process refresher and the web server.

Used by ``python app.py`` and ``csc-dashboard serve``. A second refresher elsewhere (the
``scheduler`` process) is kept out by the refresher's own lock, so this stays safe next to a
production scheduler.
"""

from __future__ import annotations

import functools
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
    is_demo = settings.demo or settings.source_url == Settings.model_fields["source_url"].default
    if not is_demo or url.get_backend_name() != "sqlite" or not url.database:
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


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8050) -> int:
    from dashboard.history import record_history
    from dashboard.refresher import start_background_scheduler
    from dashboard.web.app import create_app

    ensure_demo_source(settings)
    handle = start_background_scheduler(
        settings, after_refresh=functools.partial(record_history, settings=settings)
    )
    try:
        app = create_app(settings)
        log.info("serving on http://%s:%s", host, port)
        app.run(host=host, port=port, debug=False)
    finally:
        handle.stop()
    return 0
