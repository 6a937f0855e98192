"""One login attempt in embedded mode: throttle first, then the password, then count the result.

The web layer's login route calls ``attempt_login`` and nothing else, so the order (a locked-out
attempt never reaches the password check, and every failure is counted whatever its cause)
cannot be got wrong in a route::

    result = attempt_login(users, throttle, form["username"], form["password"],
                           client_ip, allow_demo=settings.demo)
    if result.retry_after: answer 429 with Retry-After: result.retry_after
    elif result.user is None: answer 401 "wrong username or password" (never say which)
    else: new session for result.user.username
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.throttle import LoginThrottle
from dashboard.users import User, UserStore


@dataclass(frozen=True)
class LoginResult:
    user: User | None  # None: refused
    retry_after: int = 0  # seconds; > 0: throttled, the password was not checked

    @property
    def ok(self) -> bool:
        return self.user is not None


def attempt_login(
    users: UserStore,
    throttle: LoginThrottle,
    username: str,
    password: str,
    client_ip: str | None,
    *,
    allow_demo: bool,
) -> LoginResult:
    """Check one login attempt. ``allow_demo`` is True only when the app runs in demo mode."""
    wait = throttle.check(username, client_ip)
    if wait:
        return LoginResult(None, wait)
    user = users.verify(username, password, allow_demo=allow_demo)
    if user is None:
        throttle.record_failure(username, client_ip)
        return LoginResult(None)
    throttle.record_success(username, client_ip)
    return LoginResult(user)
