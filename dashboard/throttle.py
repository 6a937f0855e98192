"""Failed-login throttle, kept in the store so it holds across every gunicorn worker.

Failures are counted twice: under the username (stops guessing one person's password) and under
the client address (stops one machine spraying guesses across many usernames). When a key's latest
failure is at least its limit-th within ``window``, that key must wait ``lockout`` from it.

The address limit is higher than the username one by default, because a council's staff often
reach the app through one proxy address, and a few people mistyping must not lock out a floor.

The login route::

    wait = throttle.check(username, ip)
    if wait: refuse with 429 and Retry-After: wait (do NOT check the password, do NOT record)
    elif users.verify(...): throttle.record_success(username, ip); log in
    else: throttle.record_failure(username, ip); refuse
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.engine import Engine

from dashboard.access_tables import as_utc, create_schema, login_failures, store_engine, utc_now

KEY_LENGTH = 200


def _user_key(username: str | None) -> str:
    # Attacker-controlled text: never rejected here (that would skip counting), just bounded.
    return (username or "").strip().lower()[:KEY_LENGTH]


def _ip_key(ip: str | None) -> str:
    return (ip or "unknown").strip()[:KEY_LENGTH]


class LoginThrottle:
    """Counts failed logins per username and per client address in the store."""

    def __init__(
        self,
        store_url: str | Engine,
        *,
        max_failures: int = 5,
        window: dt.timedelta = dt.timedelta(minutes=15),
        lockout: dt.timedelta = dt.timedelta(minutes=15),
        max_ip_failures: int | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        if max_failures < 1 or (max_ip_failures is not None and max_ip_failures < 1):
            raise ValueError("the failure limits must be at least 1")
        if window <= dt.timedelta(0) or lockout <= dt.timedelta(0):
            raise ValueError("window and lockout must be positive")
        self.engine = store_engine(store_url)
        self.max_failures = max_failures
        self.max_ip_failures = max_ip_failures or 4 * max_failures
        self.window = window
        self.lockout = lockout
        self._clock = clock
        create_schema(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def check(self, username: str | None, ip: str | None) -> int:
        """Seconds this login attempt must wait (0: go ahead and check the password).

        A key is locked for ``lockout`` after its latest failure if that failure was at least
        the limit-th within ``window``; older failures can no longer matter and are not read.
        """
        now = self._clock()
        f = login_failures
        keys = {
            "user": (_user_key(username), self.max_failures),
            "ip": (_ip_key(ip), self.max_ip_failures),
        }
        wait = 0.0
        with self.engine.connect() as conn:
            for kind, (key, limit) in keys.items():
                mine = and_(f.c.key_kind == kind, f.c.key == key)
                last = conn.scalar(
                    select(func.max(f.c.failed_at)).where(
                        mine, f.c.failed_at > now - self.window - self.lockout
                    )
                )
                if last is None:
                    continue
                last = as_utc(last)
                if last + self.lockout <= now:
                    continue
                failures = conn.scalar(
                    select(func.count()).where(
                        mine, f.c.failed_at > last - self.window, f.c.failed_at <= last
                    )
                )
                if failures >= limit:
                    wait = max(wait, (last + self.lockout - now).total_seconds())
        return math.ceil(wait) if wait > 0 else 0

    def record_failure(self, username: str | None, ip: str | None) -> None:
        """Count a failed login (wrong password, unknown user, disabled account alike)."""
        now = self._clock()
        with self.engine.begin() as conn:
            conn.execute(
                insert(login_failures),
                [
                    {"key_kind": "user", "key": _user_key(username), "failed_at": now},
                    {"key_kind": "ip", "key": _ip_key(ip), "failed_at": now},
                ],
            )
            # Rows that can no longer count towards any lockout are dead weight: drop them.
            conn.execute(
                delete(login_failures).where(
                    login_failures.c.failed_at <= now - self.window - self.lockout
                )
            )

    def record_success(self, username: str | None, ip: str | None) -> None:
        """Clear the username's failures after a good login.

        The address's failures are left to age out: otherwise one valid account would let a
        machine reset its own count while it sprays guesses at other usernames.
        """
        with self.engine.begin() as conn:
            conn.execute(
                delete(login_failures).where(
                    login_failures.c.key_kind == "user",
                    login_failures.c.key == _user_key(username),
                )
            )
