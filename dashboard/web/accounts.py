"""The access parts one app instance uses: accounts, the login throttle, the audit trail, and
each request's ``Access``.

All three live in the store database and share one engine. They are built on first use, not
when the app is built, so an app whose store is down still starts (``/health`` says so) and
refuses logins and child-level views until the store is back.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, Any

from dashboard.access import Access, load_access
from dashboard.access_tables import store_engine
from dashboard.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dashboard.audit import AuditLog
    from dashboard.store import SnapshotStore
    from dashboard.throttle import LoginThrottle
    from dashboard.users import UserStore


class Accounts:
    def __init__(self, settings: Settings, store: SnapshotStore) -> None:
        self.settings = settings
        self.store = store
        self._lock = threading.RLock()
        self._parts: dict[str, Any] = {}

    def _part(self, name: str, build: Any) -> Any:
        with self._lock:
            if name not in self._parts:
                self._parts[name] = build()
            return self._parts[name]

    @property
    def engine(self) -> Engine:
        return self._part("engine", lambda: store_engine(self.settings.store_url))

    @property
    def users(self) -> UserStore:
        from dashboard.users import UserStore

        engine = self.engine
        return self._part("users", lambda: UserStore(engine))

    @property
    def throttle(self) -> LoginThrottle:
        from dashboard.throttle import LoginThrottle

        engine = self.engine
        period = dt.timedelta(minutes=self.settings.login_lockout_minutes)
        return self._part(
            "throttle",
            lambda: LoginThrottle(
                engine,
                max_failures=self.settings.login_max_failures,
                window=period,
                lockout=period,
            ),
        )

    @property
    def audit(self) -> AuditLog:
        from dashboard.audit import AuditLog

        engine = self.engine
        return self._part("audit", lambda: AuditLog(engine))

    def access_for(self, username: str) -> Access | None:
        """What ``username`` may see now (roles from the latest snapshots, grants from the store);
        None if nothing or the account is disabled. Read per request, so a role change or a
        revoked grant applies on the user's next click."""
        return load_access(self.store, self.users, username, as_of=self.settings.reporting_date())
