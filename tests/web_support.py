"""Building a real web app for tests: a refreshed snapshot store over a real source.

Shared by ``tests/test_web_*.py``, ``tests/browser/`` and ``bench/bench_pages.py``: the source
is a generated demo borough (or a copy of one, when a test changes rows), the store a fresh
SQLite file filled by the real refresher, with the daily history hook.
"""

from __future__ import annotations

import datetime as dt
import functools
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from dashboard.config import Settings
from dashboard.history import record_history
from dashboard.refresher import refresh_datasets
from tests.conftest import DEMO_AS_OF

AS_OF = dt.date.fromisoformat(DEMO_AS_OF)  # the demo fixtures' reporting date
SMALL_DEMO_POPULATION = 6_000  # children aged 0-17 in ``small_demo_source_url``


def refreshed_settings(
    source_url: str,
    folder: Path,
    as_of: dt.date = AS_OF,
    population: int = SMALL_DEMO_POPULATION,
    **overrides: Any,
) -> Settings:
    """Settings over ``source_url`` with a new store in ``folder``, refreshed once."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        source_url=source_url,
        store_url=f"sqlite:///{folder / 'store.sqlite'}",
        as_of=as_of,
        child_population=population,
        **overrides,
    )
    refresh(settings)
    return settings


def refresh(settings: Settings, dataset_ids: list[str] | None = None) -> Any:
    """Run the refresher as the scheduler would (history included); fail loudly on errors."""
    report = refresh_datasets(
        settings, dataset_ids, after_refresh=functools.partial(record_history, settings=settings)
    )
    if report.after_refresh_error:
        raise AssertionError(f"history failed: {report.after_refresh_error}")
    return report


def copy_sqlite_source(source_url: str, folder: Path) -> str:
    """A private copy of a SQLite source, for a test that changes rows."""
    path = Path(make_url(source_url).database or "")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "source.sqlite"
    shutil.copyfile(path, target)
    return f"sqlite:///{target}"
