"""Who is asking and what they may see, decided in one place on the server.

``guard`` runs before EVERY request (it is the server's ``before_request`` hook, so Dash's own
``/_dash-*`` endpoints, downloads, the API, the admin pages and any route added later pass it).
It is default-deny: only the endpoints in ``PUBLIC_ENDPOINTS`` (static files with no data, the
login form, ``/health``) are open; everything else needs a logged-in user, and every route that
shows data needs that user's ``Access`` (``flask.g.access``), read from the store (kept a few
seconds per worker, never past a new snapshot: ``Accounts.identity``), so a role change, a
revoked grant or a disabled account applies within seconds.

Scopes come from the browser only as a request: ``allowed_scope`` parses them (``ScopeError``:
400) and checks them against the user's access (``AccessDenied``: 403). Data is read only
through ``scoped_data()``, a ``dashboard.scoped.ScopedData`` that checks again and writes the
audit trail for child-level rows (DESIGN.md, Access: "No callback trusts a value from the
browser for access").

The session is Flask's signed cookie: it holds only the username, the login time, the time of
the last request and a CSRF token. No roles or scopes are kept in it.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Response, abort, g, redirect, render_template, request
from flask import session as cookie
from sqlalchemy.exc import SQLAlchemyError

from dashboard.model import Scope, ScopeError
from dashboard.scoped import AccessDenied, ScopedData
from dashboard.users import UserError, normalise_username
from dashboard.web import context

if TYPE_CHECKING:
    import dash

    from dashboard.access import Access
    from layouts import Page

log = logging.getLogger(__name__)

# Open to anyone: files with no data in them, the login form, and the health check (which
# reports dataset ages and states only). Everything else needs a login.
PUBLIC_ENDPOINTS = frozenset(
    {"static", "_dash_assets.static", "/_favicon.ico", "health", "login", "login_submit"}
)
# Dash's JavaScript bundles (the same for everyone; no data).
PUBLIC_ENDPOINT_PREFIXES = ("/_dash-component-suites/",)
# The Dash index page: a full page load, so an anonymous visitor is sent to the login form.
PAGE_ENDPOINTS = frozenset({"/", "/<path:path>"})
ADMIN_ENDPOINT_PREFIX = "admin_"
# May be used by a logged-in user who sees no data at all.
NO_ACCESS_ENDPOINTS = frozenset({"logout"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

USER_KEY, LOGIN_AT_KEY, SEEN_KEY, CSRF_KEY = "user", "login_at", "seen", "csrf"
# Callback triggers a page fires by itself: the poll, and the new version it brings.
AUTOMATIC_TRIGGERS = frozenset({"poll.n_intervals", "data-version.data"})
# Seconds a cookie's login time may lie ahead of the server clock (workers' clocks differ).
CLOCK_SLACK_S = 60
# Pattern-matching outputs one callback may be asked for: far above any page, far below abuse.
MAX_OUTPUTS = 200

__all__ = [
    "AccessDenied",
    "ScopeError",
    "allowed_scope",
    "callback_request_guard",
    "csrf_token",
    "guard",
    "may_see_page",
    "scoped_data",
]


# ----------------------------------------------------------------------------- the guard


def guard() -> Response | None:
    """``before_request`` hook for every route. Returns a response to refuse the request."""
    endpoint = request.endpoint
    if endpoint is None:
        return None  # no route matched: Flask answers 404 or 405 itself, with no data
    if request.method not in SAFE_METHODS and not same_origin():
        return refuse(403, "Cross-site request refused.")  # the login form's post included
    if endpoint in PUBLIC_ENDPOINTS or endpoint.startswith(PUBLIC_ENDPOINT_PREFIXES):
        return None
    ctx = context.current()
    try:
        return _admit(ctx, endpoint)
    except SQLAlchemyError:
        log.exception("store unreachable while checking access")
        return refuse(503, "The dashboard's store is unreachable; try again shortly.")


def _admit(ctx: context.WebContext, endpoint: str) -> Response | None:
    username = _identify(ctx)
    if username is None:
        return _unauthenticated(endpoint)
    request_version()  # pinned first: what the identity's snapshots and the answer are of
    user, access = ctx.accounts.identity(username)
    if ctx.settings.auth_mode == "embedded" and (user is None or user.disabled):
        cookie.clear()  # the account was removed or disabled since login
        return _unauthenticated(endpoint)
    if user is not None and user.disabled:
        return refuse(403, "This account is disabled.")
    g.username = username
    g.is_admin = bool(user is not None and user.is_admin)
    g.display_name = user.display_name if user is not None else username
    if endpoint.startswith(ADMIN_ENDPOINT_PREFIX):
        if not g.is_admin:
            return refuse(403, "The admin pages are for administrators only.")
        g.access = access
        return None
    g.access = access
    if endpoint in NO_ACCESS_ENDPOINTS:
        return None
    if g.access is None and ctx.store.latest("user_roles") is None:
        # Roles come from a snapshot: before the first refresh nobody's are known yet.
        return refuse(503, "The dashboard is still loading its first data; try again shortly.")
    if g.access is None:
        return refuse(
            403,
            "Your account has no access to any data. Ask an administrator to check your role "
            "in the case-management system or to grant you a scope.",
        )
    if endpoint in PAGE_ENDPOINTS and request.method in ("GET", "HEAD"):
        return _page_gate(ctx, g.access)
    return None


def _identify(ctx: context.WebContext) -> str | None:
    """The username of this request: the trusted proxy's header, or the session cookie."""
    if ctx.settings.auth_mode == "header":
        # The reverse proxy authenticates and sets this header; it MUST strip any copy a
        # client sends (README, single sign-on), or anyone could claim any name.
        raw = request.headers.get(ctx.settings.auth_header)
        try:
            return normalise_username(raw) if raw else None
        except UserError:
            return None
    name, login_at, seen = cookie.get(USER_KEY), cookie.get(LOGIN_AT_KEY), cookie.get(SEEN_KEY)
    if not (isinstance(name, str) and _is_time(login_at) and _is_time(seen)):
        if name is not None:
            cookie.clear()
        return None
    now = clock()
    idle = 60 * ctx.settings.session_idle_minutes
    lifetime = 3600 * ctx.settings.session_max_hours
    if now - seen > idle or now - login_at > lifetime or login_at > now + CLOCK_SLACK_S:
        cookie.clear()
        return None
    if not automatic_request():
        cookie[SEEN_KEY] = int(now)  # the idle timeout counts what the user does, not polls
    return name


def clock() -> float:
    """Seconds since the epoch: what session times are measured in (tests move it)."""
    return time.time()


def automatic_request() -> bool:
    """Is this a request an open page makes by itself, not something its user did? The
    version poll, the re-renders after a new snapshot lands, and a list reloading its first
    block unsorted and unfiltered (what a list does after a new snapshot). These do not count
    as activity for the idle timeout, so a page left open logs out like any other.

    Only Dash callback requests can be automatic; a page load, a click, a scope choice, a
    scroll, a sort or a filter is the user's."""
    if request.method != "POST" or request.path != "/_dash-update-component":
        return False
    body = request.get_json(silent=True)  # parsed once; Dash reads the same parsed body
    changed = body.get("changedPropIds") if isinstance(body, dict) else None
    if not isinstance(changed, list) or not changed:
        return False  # a callback's first call, when a page or a panel opens
    for prop in changed:
        if prop in AUTOMATIC_TRIGGERS:
            continue
        if isinstance(prop, str) and prop.endswith(".getRowsRequest") and _first_block(body):
            continue
        return False
    return True


def _first_block(body: dict[str, Any]) -> bool:
    """Does the callback ask for a list's first block with no sort and no filter?"""
    for item in body.get("inputs") or []:
        if isinstance(item, dict) and item.get("property") == "getRowsRequest":
            block = item.get("value")
            return (
                isinstance(block, dict)
                and block.get("startRow") == 0
                and not block.get("sortModel")
                and not block.get("filterModel")
            )
    return False


def _is_time(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unauthenticated(endpoint: str) -> Response:
    header_mode = context.current().settings.auth_mode == "header"
    if endpoint in PAGE_ENDPOINTS and request.method in ("GET", "HEAD") and not header_mode:
        return redirect(login_url(request.full_path.rstrip("?")), 302)
    return refuse(401, "Log in to see this.")


def login_url(next_path: str | None = None) -> str:
    from urllib.parse import urlencode

    if next_path and safe_next(next_path) and next_path != "/":
        return "/login?" + urlencode({"next": next_path})
    return "/login"


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site (never another host), else None."""
    if not target or not isinstance(target, str) or len(target) > 2000:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    return target


def _page_gate(ctx: context.WebContext, access: Access) -> Response | None:
    """A full page load: the landing page sends each user to their tier; a tier they may not
    see gets a clear refusal page, not the app; any other path is 404."""
    if request.path == "/":
        return redirect(access.home_path(), 302)
    page = ctx.page_at(request.path)
    if page is None:  # Dash would serve its app shell for any path; only pages exist here
        return refuse(404, "There is no page at this address.")
    if not may_see_page(page, access):
        return refuse(403, f"The {page.title} view is not available to you.", page_title=page.title)
    return None


def may_see_page(page: Page, access: Access | None) -> bool:
    """May a user with ``access`` open ``page``? Tier pages follow the user's tiers; the
    data-quality page needs teams (or the borough); the landing page is everyone's."""
    if access is None:
        return False
    if page.tier == "home":
        return True
    if page.tier == "quality":
        return access.borough or bool(access.team_ids)
    return page.tier in access.tiers


def same_origin() -> bool:
    """Does a state-changing request come from this site? (CSRF defence beside the SameSite
    cookie and the form tokens.) Browsers send Origin on every POST; a request without
    Origin or Referer is not from a browser form on another site."""
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return False
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return True
    if source == "null":
        return False
    return urlsplit(source).netloc.lower() == request.host.lower()


def refuse(status: int, message: str, *, page_title: str | None = None) -> Response:
    """A refusal with no data: an HTML page for a page load, JSON for everything else."""
    wants_page = (
        request.method in ("GET", "HEAD")
        and request.endpoint in PAGE_ENDPOINTS | {"logout"}
        or request.endpoint is not None
        and request.endpoint.startswith(ADMIN_ENDPOINT_PREFIX)
    )
    if wants_page:
        body = render_template(
            "refused.html",
            status=status,
            message=message,
            page_title=page_title,
            home=_home_or_none(),
        )
        return Response(body, status, mimetype="text/html")
    return Response(json.dumps({"error": message}), status, mimetype="application/json")


def _home_or_none() -> str | None:
    access = g.get("access")
    try:
        return access.home_path() if access is not None else None
    except LookupError:
        return None


# ----------------------------------------------------------------------------- sessions


def start_session(username: str) -> None:
    """A new session for ``username`` after a good login: everything the old cookie held
    (a pre-login CSRF token, anything planted) is dropped, and a new CSRF token is made."""
    cookie.clear()
    now = int(clock())
    cookie[USER_KEY] = username
    cookie[LOGIN_AT_KEY] = now
    cookie[SEEN_KEY] = now
    cookie[CSRF_KEY] = secrets.token_urlsafe(32)
    cookie.permanent = True


def end_session() -> None:
    cookie.clear()


def csrf_token() -> str:
    """This session's form token (made on first use)."""
    token = cookie.get(CSRF_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        cookie[CSRF_KEY] = token
        cookie.permanent = True
    return token


def csrf_ok(sent: Any) -> bool:
    token = cookie.get(CSRF_KEY)
    if not isinstance(sent, str) or not isinstance(token, str) or len(sent) > 200:
        return False
    return hmac.compare_digest(sent.encode(), token.encode())


# ----------------------------------------------------------------------------- scopes and data


def parse_scope(requested: Any, default: Scope | str | None = None) -> Scope:
    """The scope asked for (``default`` if none). ``ScopeError`` if it does not parse."""
    if requested is not None and not isinstance(requested, str):
        raise ScopeError(f"a scope must be text, not {type(requested).__name__}")
    text = (requested or "").strip()
    if not text.isascii():
        # Python reads full-width and other Unicode digits as numbers; a scope never has them.
        raise ScopeError(f"not a scope: {text[:40]!r} (letters, digits and ':' ',' '-' only)")
    if not text:
        if isinstance(default, Scope):
            return default
        text = default or ""
    return Scope.parse(text)


def allowed_scope(requested: Any, default: Scope | str | None = None) -> Scope:
    """The scope this request may use. ``ScopeError`` if it does not parse (400);
    ``AccessDenied`` if the logged-in user may not see it (403)."""
    access = current_access()
    scope = parse_scope(requested, default if default is not None else access.default_scope())
    return scoped_data().check(scope)


def scope_or_abort(requested: Any, default: Scope | str | None = None) -> Scope:
    """``allowed_scope``, answering 400 or 403 (with no data) when it fails, and 400 for a
    scope the organisation does not have (a borough user may ask for any team by number)."""
    try:
        scope = allowed_scope(requested, default)
        scoped_data().resolve(scope)
        return scope
    except ScopeError as exc:
        abort(error_response(400, str(exc)))
    except AccessDenied:
        abort(error_response(403, "That scope is not available to you."))


def current_access() -> Access:
    """The logged-in user's access (set by ``guard``); 403 if there is none."""
    access = g.get("access")
    if access is None:
        abort(error_response(403, "No access."))
    return access


def scoped_data(label: str | None = None) -> ScopedData:
    """The data layer as the logged-in user may see it; ``label`` says, for the audit trail,
    what part of the route shows the rows (e.g. ``drill-down``)."""
    ctx = context.current()
    route = request.path + (f" ({label})" if label else "")
    return ScopedData(
        ctx.data, current_access(), audit=ctx.accounts.audit, route=route, version=request_version
    )


def request_version() -> str:
    """The version this request serves, read once per request: the guard (whose cached
    identity follows the snapshots), the version poll and the render cache share it. It is
    what the worker's preloader last published (no query), or, with no preloader following
    the store, the store's own version token (one small query)."""
    if "version_token" not in g:
        data = context.current().data
        g.version_token = data.served_token() or data.version_token()
    return g.version_token


def error_response(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status, mimetype="application/json")


# ----------------------------------------------------------------------------- Dash requests


def callback_request_guard(app: dash.Dash) -> Callable[[], Response | None]:
    """A ``before_request`` hook that answers 400 to a ``/_dash-update-component`` body that
    is not a well-formed call of one of the app's callbacks (Dash itself would fail with a
    500 on many of those)."""
    endpoint = app.config.routes_pathname_prefix + "_dash-update-component"

    def check() -> Response | None:
        if request.endpoint != endpoint:
            return None
        problem = _callback_body_problem(app, request.get_json(silent=True))
        if problem:
            return error_response(400, f"not a callback request: {problem}")
        return None

    return check


def _callback_body_problem(app: dash.Dash, body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or output not in app.callback_map:
        return "unknown output"
    spec = app.callback_map[output]
    inputs, state = body.get("inputs", []), body.get("state", [])
    if not isinstance(inputs, list) or not isinstance(state, list):
        return "inputs and state must be lists"
    if len(inputs) != len(spec.get("inputs", [])) or len(state) != len(spec.get("state", [])):
        return "wrong number of inputs or state"
    outputs = body.get("outputs", [])
    groups = outputs if isinstance(outputs, list) else [outputs]
    for group in [*inputs, *state, *groups]:
        items = group if isinstance(group, list) else [group]
        if len(items) > MAX_OUTPUTS:
            return "too many items"
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("property"), str):
                return "each item needs an id and a property"
            if not isinstance(item.get("id"), str | dict):
                return "each item needs an id and a property"
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "changedPropIds must be a list of strings"
    if spec.get("hidden") or output.startswith(".._pages_content"):
        # Dash's page router: its inputs are the location's pathname and search strings.
        for item in inputs:
            if not isinstance(item, dict) or not isinstance(item.get("value"), str | None):
                return "the page location must be text"
    return None
