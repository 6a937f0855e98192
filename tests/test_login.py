"""Logging in and out over HTTP: the form, the throttle, the cookie, demo accounts, the signing
key, and trusted-header (single sign-on) mode. Each test drives the real Flask server."""

from __future__ import annotations

import re
import time

import pytest

from dashboard.config import Settings
from dashboard.users import UserStore
from dashboard.web.app import create_app
from dashboard.web.signing_key import SigningKeyError
from tests.security_forge import expected_access
from tests.web_support import DemoBorough, csrf_of, demo_borough, logged_in, login

KEY = "a-test-signing-key-that-is-long-enough-0123456789"


@pytest.fixture(scope="module")
def borough(small_demo_source_url, tmp_path_factory) -> DemoBorough:
    return demo_borough(
        small_demo_source_url, tmp_path_factory.mktemp("login"), login_max_failures=3
    )


@pytest.fixture(scope="module")
def app(borough):
    return create_app(borough.settings)


def test_the_form_has_labelled_fields_and_a_token(app):
    page = app.server.test_client().get("/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="en-GB">' in html
    for field in ("username", "password"):
        assert f'<label class="form-label" for="{field}">' in html
        assert f'id="{field}" name="{field}"' in html
    assert 'autocomplete="current-password"' in html
    assert len(csrf_of(html)) >= 32
    assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("role", ["team_manager", "service_manager", "budget_holder", "director"])
def test_a_good_login_lands_on_the_users_own_tier(app, borough, role):
    settings = borough.settings
    username = getattr(borough, role)
    mine = expected_access(settings.source_url, username, settings.as_of)
    home = "/borough" if mine.borough else "/team" if mine.teams else "/budget"
    client = app.server.test_client()
    response = login(client, username)
    assert response.status_code == 303
    assert response.headers["Location"] == home
    assert client.get("/api/indicators").status_code == 200


def test_wrong_password_and_unknown_user_get_the_same_answer(app, borough):
    client = app.server.test_client()
    wrong = login(client, borough.director, "not-the-password")
    unknown = login(client, "nobody-at-all", "demo")
    assert wrong.status_code == unknown.status_code == 401
    message = re.compile(r'id="login-message">([^<]+)<')
    assert message.search(wrong.get_data(as_text=True)).group(1) == "Wrong username or password."
    assert message.search(unknown.get_data(as_text=True)).group(1) == "Wrong username or password."
    assert client.get("/api/indicators").status_code == 401


def test_the_throttle_answers_429_with_retry_after_even_for_the_right_password(app, borough):
    client = app.server.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.9.8.7"
    username = borough.service_manager
    for _ in range(3):  # the module's limit: 3 failures
        assert login(client, username, "wrong").status_code == 401
    locked = login(client, username, "demo")
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in locked.get_data(as_text=True)
    assert client.get("/api/indicators").status_code == 401  # no session came of it
    # Another user from another address is not affected.
    other = app.server.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.9.8.8"
    assert login(other, borough.team_manager).status_code == 303


def test_a_post_without_the_forms_token_or_from_another_site_is_refused(app, borough):
    client = app.server.test_client()
    client.get("/login")
    no_token = client.post("/login", data={"username": borough.director, "password": "demo"})
    assert no_token.status_code == 400
    token = csrf_of(client.get("/login").get_data(as_text=True))
    cross = client.post(
        "/login",
        data={"username": borough.director, "password": "demo", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    site = client.post(
        "/login",
        data={"username": borough.director, "password": "demo", "csrf_token": token},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert site.status_code == 403
    assert client.get("/api/indicators").status_code == 401


def test_login_makes_a_new_session_and_logout_ends_it(app, borough):
    client = app.server.test_client()
    before = csrf_of(client.get("/login").get_data(as_text=True))
    planted = client.get_cookie("csc_session").value
    assert login(client, borough.director).status_code == 303
    after = client.get_cookie("csc_session").value
    assert after != planted
    page = client.get("/_dash-layout").get_data(as_text=True)
    token = re.search(r'"name":\s*"csrf_token".*?"value":\s*"([^"]+)"', page) or re.search(
        r'"value":\s*"([^"]+)"[^}]*"name":\s*"csrf_token"', page
    )
    assert token and token.group(1) != before  # the pre-login token died with the old session
    assert client.get("/logout").status_code in (404, 405)  # logging out is a POST only
    assert client.get("/api/indicators").status_code == 200
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    out = client.post("/logout", data={"csrf_token": token.group(1)})
    assert out.status_code == 303 and out.headers["Location"] == "/login"
    assert client.get("/api/indicators").status_code == 401
    assert client.get("/team").status_code == 302


def test_the_cookie_is_httponly_samesite_and_secure_when_configured(borough, tmp_path):
    demo_app = create_app(borough.settings)
    response = login(demo_app.server.test_client(), borough.director)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("csc_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "Expires=" in cookie  # idle timeout: the cookie lapses with the session

    secure = create_app(borough.settings.model_copy(update={"session_cookie_secure": True}))
    client = secure.server.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    response = login(client, borough.director)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-csc_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie


def test_demo_accounts_do_not_log_in_outside_demo_mode(borough):
    production = create_app(
        borough.settings.model_copy(
            update={"demo": False, "secret_key": KEY, "session_cookie_secure": False}
        )
    )
    client = production.server.test_client()
    assert login(client, borough.director).status_code == 401
    assert "Demo mode" not in client.get("/login").get_data(as_text=True)


def test_a_real_account_logs_in_outside_demo_mode(borough):
    settings = borough.settings.model_copy(
        update={"demo": False, "secret_key": KEY, "session_cookie_secure": False}
    )
    users = UserStore(settings.store_url)
    if users.get("real.manager") is None:
        users.create_user("real.manager", "a long and real passphrase", "Real Manager")
    users.grant("real.manager", f"team:{sorted(_teams(borough))[0]}", granted_by="admin")
    users.dispose()
    client = create_app(settings).server.test_client()
    response = login(client, "real.manager", "a long and real passphrase")
    assert response.status_code == 303 and response.headers["Location"] == "/team"
    assert client.get("/api/indicators").status_code == 200
    assert client.get("/api/indicators?scope=borough").status_code == 403


def _teams(borough: DemoBorough) -> set[int]:
    from dashboard.data import DataLayer

    return set(DataLayer(borough.settings).teams()["org_id"].astype(int))


def test_the_app_refuses_to_start_without_a_signing_key_outside_demo_mode(tmp_path):
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    with pytest.raises(SigningKeyError, match="DASHBOARD_SECRET_KEY is not set"):
        create_app(Settings(store_url=store))
    with pytest.raises(SigningKeyError, match="at least 32"):
        create_app(Settings(store_url=store, secret_key="short"))
    assert create_app(Settings(store_url=store, secret_key=KEY)).server.secret_key == KEY


def test_demo_mode_keeps_one_generated_key_per_store_for_every_worker(borough, tmp_path):
    first = create_app(borough.settings)
    second = create_app(borough.settings)  # another gunicorn worker on the same store
    assert first.server.secret_key == second.server.secret_key
    assert len(first.server.secret_key) >= 32
    other = create_app(Settings(store_url=f"sqlite:///{tmp_path / 'other.sqlite'}", demo=True))
    assert other.server.secret_key != first.server.secret_key
    # A login made on one worker holds on the other.
    client = logged_in(first, borough.director)
    cookie = client.get_cookie("csc_session").value
    elsewhere = second.server.test_client()
    elsewhere.set_cookie("csc_session", cookie)
    assert elsewhere.get("/api/indicators").status_code == 200


def test_header_mode_takes_the_user_from_the_proxys_header_and_has_no_form(borough):
    settings = borough.settings.model_copy(
        update={"auth_mode": "header", "auth_header": "X-Remote-User", "secret_key": KEY}
    )
    client = create_app(settings).server.test_client()
    assert client.get("/login").status_code == 404
    assert client.get("/api/indicators").status_code == 401
    assert client.get("/team").status_code == 401  # no login form to send anyone to
    manager = {"X-Remote-User": borough.team_manager}
    assert client.get("/api/indicators", headers=manager).status_code == 200
    assert client.get("/api/indicators?scope=borough", headers=manager).status_code == 403
    assert client.get("/", headers=manager).headers["Location"] == "/team"
    assert client.get("/admin/audit", headers=manager).status_code == 403
    assert client.get("/admin/audit", headers={"X-Remote-User": borough.admin}).status_code == 200
    bad = {"X-Remote-User": "'; DROP TABLE users; --"}
    assert client.get("/api/indicators", headers=bad).status_code == 401


def test_demo_data_creates_and_prints_the_demo_accounts(tmp_path, capsys):
    from dashboard.cli import main

    source = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    small = ["--population", "1500", "--years", "2", "--seed", "3", "--as-of", "2026-11-25"]
    assert main(["demo-data", "--url", source, "--store-url", store, *small]) == 0
    out = capsys.readouterr().out
    users = UserStore(store)
    accounts = [u for u in users.list_users() if u.is_demo]
    users.dispose()
    assert {u.username for u in accounts} >= {"admin"} and len(accounts) >= 3
    for account in accounts:
        assert f"  {account.username} " in out
    assert "password 'demo'" in out


def test_serving_the_demo_makes_the_demo_accounts_of_the_borough_served(borough, tmp_path):
    from dashboard.web.serve import ensure_demo_users

    settings = borough.settings.model_copy(
        update={"store_url": f"sqlite:///{tmp_path / 'fresh.sqlite'}"}
    )
    users = UserStore(settings.store_url)
    users.create_user("stale", "demo", "From another borough", is_demo=True)
    first = ensure_demo_users(settings)
    assert "admin" in first and set(first) == {u.username for u in borough.users}
    assert users.get("stale") is None  # accounts of another borough are replaced
    assert ensure_demo_users(settings) == first  # the same accounts on every start
    assert users.get("admin").is_demo
    users.dispose()


def test_before_the_first_refresh_a_login_is_told_to_wait(tmp_path):
    settings = Settings(store_url=f"sqlite:///{tmp_path / 'store.sqlite'}", secret_key=KEY,
                        session_cookie_secure=False)  # fmt: skip
    users = UserStore(settings.store_url)
    users.create_user("early.bird", "a long and real passphrase", "Early Bird")
    users.dispose()
    client = create_app(settings).server.test_client()
    assert login(client, "early.bird", "a long and real passphrase").status_code == 303
    response = client.get("/api/indicators")
    assert response.status_code == 503 and b"still loading" in response.data


def test_a_disabled_account_is_logged_out_within_seconds(borough):
    import time

    from dashboard.web.accounts import IDENTITY_SECONDS

    settings = borough.settings.model_copy(
        update={"demo": False, "secret_key": KEY, "session_cookie_secure": False}
    )
    users = UserStore(settings.store_url)
    if users.get("leaver") is None:
        users.create_user("leaver", "a long and real passphrase", "Leaver")
        users.grant("leaver", "borough", granted_by="admin")
    users.enable("leaver")
    client = create_app(settings).server.test_client()
    assert login(client, "leaver", "a long and real passphrase").status_code == 303
    assert client.get("/api/indicators").status_code == 200
    users.disable("leaver")
    users.dispose()
    time.sleep(IDENTITY_SECONDS + 0.5)  # the per-worker cache of who is who lapses
    assert client.get("/api/indicators").status_code == 401


def test_a_revoked_grant_applies_within_seconds_and_unchanged_access_is_not_resolved_again(
    borough,
):
    import time

    from dashboard.web import accounts as accounts_module

    settings = borough.settings.model_copy(
        update={"demo": False, "secret_key": KEY, "session_cookie_secure": False}
    )
    users = UserStore(settings.store_url)
    if users.get("visitor") is None:
        users.create_user("visitor", "a long and real passphrase", "Visitor")
    users.grant("visitor", "borough", granted_by="admin")
    app = create_app(settings)
    client = app.server.test_client()
    assert login(client, "visitor", "a long and real passphrase").status_code == 303
    accounts = app.server.extensions["csc_dashboard"].accounts
    assert client.get("/api/indicators", query_string={"scope": "borough"}).status_code == 200
    resolved = dict(accounts._resolved)

    time.sleep(accounts_module.IDENTITY_SECONDS + 0.5)  # the identity is read again...
    assert client.get("/api/indicators", query_string={"scope": "borough"}).status_code == 200
    assert dict(accounts._resolved) == resolved  # ...but nothing changed: not resolved again

    users.revoke("visitor", "borough", revoked_by="admin")
    users.dispose()
    time.sleep(accounts_module.IDENTITY_SECONDS + 0.5)
    refused = client.get("/api/indicators", query_string={"scope": "borough"})
    assert refused.status_code == 403
    assert b'"value"' not in refused.data


def _poll(client, token="0"):
    return client.post(
        "/_dash-update-component",
        json={
            "output": "data-version.data",
            "outputs": {"id": "data-version", "property": "data"},
            "inputs": [{"id": "poll", "property": "n_intervals", "value": 7}],
            "changedPropIds": ["poll.n_intervals"],
            "state": [{"id": "data-version", "property": "data", "value": token}],
        },
    )


def _rows(client, start: int, sort: list | None = None):
    """The drill-down grid asking for a block of rows (its scope is not checked here: a
    malformed state still proves whether the request counted as the user's)."""
    return client.post(
        "/_dash-update-component",
        json={
            "output": "drill-grid.getRowsResponse",
            "outputs": {"id": "drill-grid", "property": "getRowsResponse"},
            "inputs": [
                {
                    "id": "drill-grid",
                    "property": "getRowsRequest",
                    "value": {
                        "startRow": start,
                        "endRow": start + 200,
                        "sortModel": sort or [],
                        "filterModel": {},
                    },
                }
            ],
            "changedPropIds": ["drill-grid.getRowsRequest"],
            "state": [],
        },
    )


def test_an_open_pages_polls_do_not_keep_its_session_alive(app, borough, monkeypatch):
    client = logged_in(app, borough.director)
    start = time.time()
    now = [start]
    monkeypatch.setattr("dashboard.web.session.clock", lambda: now[0])
    for minutes in (10, 20, 29):  # the page polls on its own, and re-renders, unattended
        now[0] = start + 60 * minutes
        assert _poll(client).status_code == 200
        _rows(client, 0)  # a list reloading its first block after a new snapshot
    now[0] = start + 60 * 31  # 31 minutes after the last thing the user did: logged out
    assert _poll(client).status_code == 401
    assert client.get("/api/indicators").status_code == 401


@pytest.mark.parametrize(
    "action",
    [
        lambda client: client.get("/api/indicators"),  # any request that is not a callback
        lambda client: _rows(client, 200),  # scrolling a list
        lambda client: _rows(client, 0, [{"colId": "due_date", "sort": "asc"}]),  # sorting it
    ],
    ids=["request", "scroll", "sort"],
)
def test_what_the_user_does_keeps_the_session_alive(app, borough, monkeypatch, action):
    client = logged_in(app, borough.director)
    start = time.time()
    now = [start + 60 * 20]
    monkeypatch.setattr("dashboard.web.session.clock", lambda: now[0])
    action(client)  # 20 minutes in
    now[0] = start + 60 * 45  # 25 minutes after that action, 45 after login
    assert _poll(client).status_code == 200
    now[0] = start + 60 * 51  # 31 minutes after it
    assert _poll(client).status_code == 401
