"""The login form and logout (embedded mode), as plain Flask routes beside the Dash app.

``POST /login`` goes through ``dashboard.login.attempt_login`` and nothing else: the throttle
first (429 with ``Retry-After``), then the password (401 with one message that never says which
part was wrong), then a NEW session (the old cookie's contents are dropped) and a redirect to
the user's own tier. The form carries a per-session CSRF token; the cookie is ``SameSite=Lax``
and state-changing requests from another origin are refused by the guard as well.

In trusted-header mode there is no form: the single sign-on proxy identifies the user.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, redirect, render_template, request
from sqlalchemy.exc import SQLAlchemyError

from dashboard.login import attempt_login
from dashboard.web import context
from dashboard.web.session import (
    csrf_ok,
    csrf_token,
    end_session,
    login_url,
    safe_next,
    start_session,
)

log = logging.getLogger(__name__)

# Form fields longer than these are cut before anything looks at them (a username is at most
# 100 characters; passwords are checked up to dashboard.passwords.MAX_PASSWORD_LENGTH).
MAX_FIELD = 1024
FAILED = "Wrong username or password."


def register_login(server: Flask) -> None:
    server.add_url_rule("/login", "login", login_form, methods=["GET"])
    server.add_url_rule("/login", "login_submit", login_submit, methods=["POST"])
    server.add_url_rule("/logout", "logout", logout, methods=["POST"])


def login_form() -> Response:
    ctx = context.current()
    if ctx.settings.auth_mode == "header":
        return _page(
            "Your council's single sign-on identifies you; there is no password form here.",
            404,
        )
    return _page(None, 200)


def login_submit() -> Response:
    ctx = context.current()
    if ctx.settings.auth_mode == "header":
        return _page("Log in through your council's single sign-on.", 404)
    form = request.form
    if not csrf_ok(form.get("csrf_token")):
        # A stale form (the session expired) or a forged post: a fresh form, nothing checked.
        return _page("The form had expired. Please log in again.", 400)
    username = (form.get("username") or "")[:MAX_FIELD]
    password = (form.get("password") or "")[:MAX_FIELD]
    try:
        result = attempt_login(
            ctx.accounts.users,
            ctx.accounts.throttle,
            username,
            password,
            request.remote_addr,
            allow_demo=ctx.settings.demo,
        )
    except SQLAlchemyError:
        log.exception("login failed: store unreachable")
        return _page("The dashboard's store is unreachable; try again shortly.", 503)
    if result.retry_after:
        minutes = max(1, round(result.retry_after / 60))
        response = _page(
            f"Too many failed attempts. Try again in about {minutes} minute"
            f"{'s' if minutes != 1 else ''}.",
            429,
            username=username[:100],
        )
        response.headers["Retry-After"] = str(result.retry_after)
        return response
    if result.user is None:
        return _page(FAILED, 401, username=username[:100])
    ctx.accounts.forget(result.user.username)  # a fresh look at the account and its scopes
    start_session(result.user.username)
    log.info("login: %s", result.user.username)
    return redirect(_landing(ctx, result.user.username, result.user.is_admin), 303)


def _landing(ctx: context.WebContext, username: str, is_admin: bool) -> str:
    """Where a fresh login goes: the page asked for before login, else the user's own tier."""
    wanted = safe_next(request.args.get("next"))
    if wanted and wanted != "/":
        return wanted
    try:
        access = ctx.accounts.access_for(username)
        if access is not None:
            return access.home_path()
    except (SQLAlchemyError, LookupError):
        log.exception("no landing page for %s", username)
    return "/admin/access" if is_admin else "/"


def logout() -> Response:
    ctx = context.current()
    if ctx.settings.auth_mode == "embedded" and not csrf_ok(request.form.get("csrf_token")):
        return Response("The logout form had expired; reload the page.", 400)
    log.info("logout: %s", g.get("username"))
    end_session()
    return redirect("/login", 303)


def _page(message: str | None, status: int, *, username: str = "") -> Response:
    next_path = safe_next(request.args.get("next"))
    body = render_template(
        "login.html",
        message=message,
        status=status,
        username=username,
        csrf_token=csrf_token(),
        action=login_url(next_path),
        demo=context.current().settings.demo,
    )
    return Response(body, status, mimetype="text/html")
