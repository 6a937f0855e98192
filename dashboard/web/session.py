"""Who may see what, decided in one place on the server.

Every page, callback, download and API route takes its scope from ``allowed_scope``, and every
HTTP request (Dash's ``/_dash-*`` endpoints included) passes ``guard`` first, so the access
control of the next issue is enforced here and cannot be forgotten on a new route (DESIGN.md,
Access: "No callback trusts a value from the browser for access").

Today, in demo mode, everybody may see everything.
"""

from __future__ import annotations

from flask import Response

from dashboard.model import Scope, ScopeError


def allowed_scope(requested: str | None, default: str = "borough") -> Scope:
    """The scope this request may use: the requested one if allowed, else an error.

    Raises ``ScopeError`` for a scope string that does not parse; callers answer 400.
    """
    text = (requested or "").strip() or default
    return Scope.parse(text)


def guard() -> Response | None:
    """``before_request`` hook for every route. Returns a response to refuse the request.

    Demo mode lets every request through; login and per-user scopes hang off this hook.
    """
    return None


__all__ = ["ScopeError", "allowed_scope", "guard"]
