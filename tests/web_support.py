"""Building a real web app for tests: a refreshed snapshot store over a real source.

Shared by ``tests/test_web_*.py``, ``tests/test_security_*.py``, ``tests/browser/`` and
``bench/bench_pages.py``: the source is a generated demo borough (or a copy of one, when a test
changes rows), the store a fresh SQLite file filled by the real refresher, with the daily history
hook. ``demo_borough`` adds the demo accounts; ``login`` / ``logged_in`` log a test client in
through the real login form.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from dashboard.config import Settings
from dashboard.demo_users import DemoUser, create_demo_users
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


# ----------------------------------------------------------------------------- logging in

DEMO_PASSWORD = "demo"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class DemoBorough:
    """A refreshed demo store with its demo accounts (password ``demo``, demo mode only)."""

    settings: Settings
    users: tuple[DemoUser, ...]

    def _one(self, match: Callable[[DemoUser], bool], what: str) -> str:
        found = [u.username for u in self.users if match(u)]
        if not found:
            raise AssertionError(f"the demo borough has no {what} account")
        return found[0]

    @property
    def team_manager(self) -> str:
        return self._one(lambda u: u.tier == "team" and u.scope.startswith("team "), "team")

    @property
    def service_manager(self) -> str:
        return self._one(lambda u: u.tier == "team" and " teams: " in u.scope, "service")

    @property
    def budget_holder(self) -> str:
        return self._one(lambda u: u.tier == "budget", "budget")

    @property
    def director(self) -> str:
        return self._one(lambda u: u.tier == "borough" and not u.is_admin, "director")

    @property
    def admin(self) -> str:
        return self._one(lambda u: u.is_admin, "admin")


def demo_borough(source_url: str, folder: Path, **overrides: Any) -> DemoBorough:
    """``refreshed_settings`` in demo mode, with the demo accounts created in the store."""
    overrides.setdefault("demo", True)
    settings = refreshed_settings(source_url, folder, **overrides)
    users = create_demo_users(settings.store_url, settings.source_url, settings.as_of)
    return DemoBorough(settings, tuple(users))


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    if not found:
        raise AssertionError("no CSRF token in the page")
    return found.group(1)


def login(client: Any, username: str, password: str = DEMO_PASSWORD, **form: str) -> Any:
    """Log a Flask test client in through the real form (GET for the token, then POST)."""
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token, **form}
    )


def logged_in(app: Any, username: str, password: str = DEMO_PASSWORD) -> Any:
    """A new test client of ``app`` with a session for ``username``."""
    client = app.server.test_client()
    response = login(client, username, password)
    if response.status_code != 303:
        raise AssertionError(f"login as {username} failed: {response.status_code}")
    return client


def shown(answer: bytes) -> dict[str, Any]:
    """A render's answer as the browser reads it, without the tiles' freshness lines ("Computed
    HH:MM", drawn again for every version): what must stay the same when no number changed."""
    parts = json.loads(answer)["response"]
    return {k: v for k, v in parts.items() if json.loads(k).get("type") != "tile-meta"}


def change_source(settings: Settings, statement: str, *params: Any) -> int:
    """Run one parameterised statement on the SQLite source (a test's copy); returns how many
    rows it changed."""
    with sqlite3.connect(make_url(settings.source_url).database) as conn:
        return conn.execute(statement, params).rowcount


def halve_team_fte(settings: Settings, team_scope: str) -> int:
    """Halve the FTE of every current worker of ``team_scope`` (``team:<id>``) in the SQLite
    source; returns how many workers changed."""
    return change_source(
        settings,
        "UPDATE workers SET fte = fte / 2 WHERE worker_id IN (SELECT worker_id FROM"
        " worker_roles WHERE org_id = ? AND end_date IS NULL) AND fte > 0",
        int(team_scope.split(":")[1]),
    )
