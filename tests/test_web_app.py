"""The app factory and the entry points: nothing built at import, ``app:server`` on demand."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import dash
from flask import Flask

from dashboard.config import Settings
from dashboard.web import serve
from dashboard.web.app import create_app


def test_importing_app_py_builds_nothing():
    sys.modules.pop("app", None)
    module = importlib.import_module("app")
    assert "server" not in vars(module)
    assert module._server.cache_info().currsize == 0


def test_app_server_is_built_on_first_access_from_the_environment(monkeypatch, tmp_path):
    store = tmp_path / "store.sqlite"
    monkeypatch.setenv("DASHBOARD_STORE_URL", f"sqlite:///{store}")
    monkeypatch.setenv("DASHBOARD_SOURCE_URL", f"sqlite:///{tmp_path / 'source.sqlite'}")
    monkeypatch.setenv("DASHBOARD_SECRET_KEY", "k" * 48)  # required outside demo mode
    sys.modules.pop("app", None)
    module = importlib.import_module("app")
    try:
        server = module.server
        assert isinstance(server, Flask)
        assert module.server is server  # one app per process, not one per access
        assert server.extensions["csc_dashboard"].settings.store_url == f"sqlite:///{store}"
        health = server.test_client().get("/health")
        assert health.status_code == 200  # an empty store is reachable, just has no data yet
    finally:
        module._server.cache_clear()


def test_two_apps_in_one_process_keep_their_own_data(tmp_path):
    first = create_app(Settings(store_url=f"sqlite:///{tmp_path / 'a.sqlite'}", demo=True))
    second = create_app(Settings(store_url=f"sqlite:///{tmp_path / 'b.sqlite'}", demo=True))
    assert isinstance(first, dash.Dash)
    a = first.server.extensions["csc_dashboard"].store
    b = second.server.extensions["csc_dashboard"].store
    assert a is not b
    assert "a.sqlite" in str(a.engine.url) and "b.sqlite" in str(b.engine.url)


def test_demo_data_is_only_ever_generated_into_the_default_demo_file(tmp_path):
    elsewhere = tmp_path / "council.sqlite"
    assert not serve.ensure_demo_source(Settings(source_url=f"sqlite:///{elsewhere}"))
    assert not elsewhere.exists()
    assert not serve.ensure_demo_source(
        Settings(source_url="postgresql+psycopg://reader@db.example/mosaic", demo=True)
    )


def test_gunicorn_workers_read_the_snapshots_before_their_first_request(
    small_demo_source_url, tmp_path
):
    import logging
    import runpy
    from types import SimpleNamespace

    from tests.web_support import refreshed_settings

    settings = refreshed_settings(small_demo_source_url, tmp_path / "store", demo=True)
    conf = runpy.run_path(str(Path(__file__).resolve().parents[1] / "deploy/gunicorn.conf.py"))
    app = create_app(settings)
    data = app.server.extensions["csc_dashboard"].data
    assert data._state is None  # nothing read at start-up

    conf["post_worker_init"](SimpleNamespace(wsgi=app.server, log=logging.getLogger("t")))

    assert data._state is not None
    assert set(data._state.snapshots) >= {"organisation", "open_steps", "workforce"}
