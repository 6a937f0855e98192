"""Issue 5 against the REAL server on 127.0.0.1 with ``requests``: sessions, tampered and
expired cookies, login throttling, forged callbacks and oversized bodies, over real HTTP.

The app runs in werkzeug's threaded WSGI server in a background thread of this process
(started and stopped by the module fixture). Cookies are crafted with Flask's own serializer
(itsdangerous) so a tampered, wrongly signed or expired cookie is exactly what an attacker
could send. Counts of forged or malicious requests and leaks are printed at the end.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from flask.json.tag import TaggedJSONSerializer
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from werkzeug.serving import make_server

from dashboard.web.app import create_app
from tests.security_forge import (
    AttackLog,
    Forge,
    block_request,
    expected_access,
    report_attacks,
)
from tests.web_support import DemoBorough, csrf_of, demo_borough

pytestmark = pytest.mark.slow
COOKIE = "csc_session"
TIMEOUT_S = 60  # an upper bound for one request, never an assertion about speed


@pytest.fixture(scope="module")
def borough(small_demo_source_url, tmp_path_factory) -> DemoBorough:
    return demo_borough(
        small_demo_source_url,
        tmp_path_factory.mktemp("server"),
        login_max_failures=3,
        session_idle_minutes=30,
        session_max_hours=12,
    )


@pytest.fixture(scope="module")
def app(borough):
    return create_app(borough.settings)


@pytest.fixture(scope="module")
def base_url(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def attacks(request) -> Iterator[AttackLog]:
    log = AttackLog()
    yield log
    report_attacks(request, log)


def session_for(base_url: str, username: str, password: str = "demo") -> requests.Session:
    web = requests.Session()
    token = csrf_of(web.get(f"{base_url}/login", timeout=TIMEOUT_S).text)
    response = web.post(
        f"{base_url}/login",
        data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=TIMEOUT_S,
    )
    assert response.status_code == 303, response.status_code
    return web


def serializer(key: str, *, age_s: float = 0) -> URLSafeTimedSerializer:
    """Flask's session serializer, signing as if ``age_s`` seconds ago."""

    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age_s)

    return URLSafeTimedSerializer(
        key,
        salt="cookie-session",
        serializer=TaggedJSONSerializer(),
        signer=Signer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )


def cookie_for(key: str, username: str, *, login_ago: float = 0, seen_ago: float = 0,
               signed_ago: float = 0) -> str:  # fmt: skip
    now = int(time.time())
    payload = {"user": username, "login_at": now - int(login_ago), "seen": now - int(seen_ago)}
    return serializer(key, age_s=signed_ago).dumps(payload)


def api(base_url: str, cookie: str | None) -> requests.Response:
    cookies = {COOKIE: cookie} if cookie is not None else {}
    return requests.get(f"{base_url}/api/indicators", cookies=cookies, timeout=TIMEOUT_S)


def test_a_good_session_works_over_real_http(base_url, borough):
    web = session_for(base_url, borough.director)
    set_cookie = web.cookies.get(COOKIE)
    assert set_cookie
    assert web.get(f"{base_url}/api/indicators", timeout=TIMEOUT_S).status_code == 200
    assert web.get(f"{base_url}/borough", timeout=TIMEOUT_S).status_code == 200


def test_tampered_wrongly_signed_and_expired_cookies_get_401(app, base_url, borough, attacks):
    key = app.server.secret_key
    director = borough.director
    genuine = cookie_for(key, director)
    assert api(base_url, genuine).status_code == 200  # the crafting itself is right
    payload, _, signature = genuine.rpartition(".")
    # The first character: all six of its bits are the signature's (the last character's low
    # bits are base64 padding, so changing only those leaves the same signature).
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    bad_cookies = {
        "modified signature": f"{payload}.{flipped}",
        "modified payload": cookie_for(key, director).replace(".", "x.", 1),
        "re-signed with a wrong key": cookie_for("w" * 48, director),
        "another user's name, wrong key": cookie_for("w" * 48, borough.admin),
        "idle too long": cookie_for(key, director, seen_ago=31 * 60),
        "past the absolute lifetime": cookie_for(key, director, login_ago=13 * 3600),
        "signed longer ago than the idle limit": cookie_for(key, director, signed_ago=31 * 60),
        "login time in the future": cookie_for(key, director, login_ago=-3600),
        "no user": serializer(key).dumps({"login_at": int(time.time()), "seen": 0}),
        "user not text": serializer(key).dumps({"user": ["tmorris"], "login_at": 1, "seen": 1}),
        "times not numbers": serializer(key).dumps(
            {"user": director, "login_at": "now", "seen": "now"}
        ),  # fmt: skip
        "unknown user": cookie_for(key, "nobody-here"),
        "garbage": "not-a-cookie",
        "empty": "",
        "huge": "x" * 8000,
    }
    for what, cookie in bad_cookies.items():
        response = api(base_url, cookie)
        attacks.expect_refused(f"cookie: {what}", response, allowed=frozenset({401, 400, 431}))
        assert response.status_code in (401, 400, 431), (what, response.status_code)
        page = requests.get(
            f"{base_url}/team", cookies={COOKIE: cookie}, allow_redirects=False, timeout=TIMEOUT_S
        )
        attacks.expect_refused(f"cookie page: {what}", page, allowed=frozenset({302, 400, 431}))
        assert page.status_code in (302, 400, 431)


def test_login_throttling_over_http(base_url, borough, attacks):
    web = requests.Session()
    username = borough.team_manager
    statuses = []
    for password in ("wrong-1", "wrong-2", "wrong-3", "demo", "demo"):
        token = csrf_of(web.get(f"{base_url}/login", timeout=TIMEOUT_S).text)
        response = web.post(
            f"{base_url}/login",
            data={"username": username, "password": password, "csrf_token": token},
            allow_redirects=False,
            timeout=TIMEOUT_S,
        )
        statuses.append(response.status_code)
        attacks.expect_refused("login guess", response, allowed=frozenset({401, 429}))
    assert statuses == [401, 401, 401, 429, 429]
    assert int(response.headers["Retry-After"]) > 0
    assert web.get(f"{base_url}/api/indicators", timeout=TIMEOUT_S).status_code == 401


def test_forged_requests_and_oversized_bodies_over_real_http(base_url, borough, attacks):
    settings = borough.settings
    username = borough.service_manager
    mine = expected_access(settings.source_url, username, settings.as_of)
    web = session_for(base_url, username)
    forge = Forge(web.get(f"{base_url}/_dash-dependencies", timeout=TIMEOUT_S).json())
    url = f"{base_url}/_dash-update-component"
    others = [f"team:{t}" for t in range(1, 40) if t not in mine.teams] + ["borough"]
    for scope in others:
        for body in (forge.tiles(["overdue_steps"], scope), forge.drill(["open_cases"],
                     "open_cases", scope), forge.lists(["awaiting_signoff"], scope),
                     forge.drill_rows(block_request(), {"ind": "open_cases", "scope": scope}),
                     forge.list_rows("unfinished_steps", block_request(), scope)):  # fmt: skip
            response = web.post(url, json=body, timeout=TIMEOUT_S)
            attacks.expect_refused("forged callback (http)", response)
            assert response.status_code in (400, 403)
            assert "rowData" not in response.text
        download = web.get(
            f"{base_url}/download/overdue_steps.csv", params={"scope": scope}, timeout=TIMEOUT_S
        )
        attacks.expect_refused("forged download (http)", download)
        assert download.status_code in (400, 403)
    huge = forge.tiles(["overdue_steps"], "x" * 10_000_000)
    response = web.post(url, json=huge, timeout=TIMEOUT_S)
    attacks.expect_refused("10 MB callback body", response)
    assert response.status_code == 413
    token = csrf_of(requests.get(f"{base_url}/login", timeout=TIMEOUT_S).text)
    response = requests.post(
        f"{base_url}/login",
        data={"username": "x" * 10_000_000, "password": "demo", "csrf_token": token},
        timeout=TIMEOUT_S,
    )
    attacks.expect_refused("10 MB login form", response)
    assert response.status_code == 413
    response = web.get(f"{base_url}/api/indicators", params={"scope": "x" * 20_000},
                       timeout=TIMEOUT_S)  # fmt: skip
    attacks.expect_refused("long query string", response, allowed=frozenset({400, 414, 431}))
    assert response.status_code in (400, 414, 431)
    cross = web.post(url, json=forge.tiles(["overdue_steps"], "team:1"),
                     headers={"Origin": "https://evil.example"}, timeout=TIMEOUT_S)  # fmt: skip
    attacks.expect_refused("cross-site callback", cross)
    assert cross.status_code == 403
    assert web.get(f"{base_url}/api/indicators", timeout=TIMEOUT_S).status_code == 200


def test_nothing_leaked_over_real_http(attacks):
    assert attacks.leaks == []
