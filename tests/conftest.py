"""Shared fixtures: real SQLite files and a real PostgreSQL database per test.

Locally a PostgreSQL or Chromium test skips when the server or browser is absent; with CI=true
it fails instead, so no skipped test can hide a missing feature in CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get(
    "CSC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> None:
    """Skip locally; fail in CI, where every group must run."""
    if IN_CI:
        pytest.fail(f"CI must run this test but cannot: {reason}")
    pytest.skip(reason)


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any connection failure means "no server here"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    problem = _pg_available()
    if problem:
        skip_or_fail(problem)
    return PG_ADMIN_URL


@pytest.fixture
def make_pg_database(pg_admin_url: str) -> Iterator[Callable[[], str]]:
    """Factory: a fresh, empty PostgreSQL database; returns its URL. Dropped after the test."""
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def make() -> str:
        name = f"csc_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url(make_pg_database: Callable[[], str]) -> str:
    """A fresh, empty PostgreSQL database for this test."""
    return make_pg_database()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A fresh SQLite file for this test."""
    return f"sqlite:///{tmp_path / 'source.sqlite'}"


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_url(request, tmp_path) -> str:
    """Run the test on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    request.applymarker(pytest.mark.postgres)
    return request.getfixturevalue("make_pg_database")()


# --- The demo borough (dashboard.demo), built once per test session ------------------------
DEMO_AS_OF = "2026-11-25"


def _build_demo(tmp_path_factory, name: str, population: int) -> str:
    import datetime as dt

    from dashboard.demo import generate_borough

    path = tmp_path_factory.mktemp("demo") / f"{name}.sqlite"
    url = f"sqlite:///{path}"
    generate_borough(
        url, population=population, years=6, seed=42, as_of=dt.date.fromisoformat(DEMO_AS_OF)
    )
    return url


@pytest.fixture(scope="session")
def demo_source_url(tmp_path_factory) -> str:
    """The DEFAULT demo borough (population 60000, 6 years, seed 42, as of 2026-11-25) in a
    SQLite file; read it, never write to it."""
    return _build_demo(tmp_path_factory, "demo", 60_000)


@pytest.fixture(scope="session")
def small_demo_source_url(tmp_path_factory) -> str:
    """A small demo borough (population 6000, otherwise as ``demo_source_url``) for fast tests."""
    return _build_demo(tmp_path_factory, "small_demo", 6_000)


@pytest.fixture(scope="session", autouse=True)
def _no_test_touches_the_working_copy_data(tmp_path_factory):
    """Point the default source and store at a throwaway folder: a test that forgets to pass a
    URL (or a subprocess it starts) must never write into the developer's ./data. Session-wide
    and set first, so a module's or a test's own settings override it."""
    folder = tmp_path_factory.mktemp("default-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DASHBOARD_SOURCE_URL", f"sqlite:///{folder / 'demo.sqlite'}")
        patch.setenv("DASHBOARD_STORE_URL", f"sqlite:///{folder / 'store.sqlite'}")
        yield
