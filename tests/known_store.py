"""A snapshot store refreshed from a source, for data-layer, scope and CLI tests.

The refresh is the real one (dashboard.refresher) into a real SQLite store file, so the data
layer is tested on exactly what production reads.
"""

from __future__ import annotations

from pathlib import Path

from fixtures.known_borough import AS_OF, CHILD_POPULATION, build_known_borough

from dashboard.config import Settings
from dashboard.history import history_hook
from dashboard.refresher import refresh_datasets
from dashboard.store import SnapshotStore


def refreshed(folder: Path, source_url: str | None = None, **overrides) -> Settings:
    """Build the known borough (unless a source is given), refresh every dataset into a store
    in ``folder`` and record the day's history. Returns the settings that point at both."""
    if source_url is None:
        source_url = f"sqlite:///{folder / 'source.sqlite'}"
        build_known_borough(source_url)
        overrides.setdefault("as_of", AS_OF)
        overrides.setdefault("child_population", CHILD_POPULATION)
    settings = Settings(
        source_url=source_url, store_url=f"sqlite:///{folder / 'store.sqlite'}", **overrides
    )
    store = SnapshotStore.from_settings(settings)
    try:
        report = refresh_datasets(settings, store=store, after_refresh=history_hook(settings))
    finally:
        store.dispose()
    assert not report.failed, str(report)
    assert report.after_refresh_error is None, report.after_refresh_error
    return settings
