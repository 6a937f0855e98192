"""The access parts one app instance uses: accounts, the login throttle, the audit trail, and
each request's ``Access``.

A user's account row and ``Access`` are kept for a few seconds (``IDENTITY_SECONDS``) per
worker, and never past a new snapshot (the store's version token is part of the check): the
browsers' polls then cost a token compare instead of five store queries, and a disabled account,
a revoked grant or a role change still applies within seconds.

All three live in the store database and share one engine. They are built on first use, not
when the app is built, so an app whose store is down still starts (``/health`` says so) and
refuses logins and child-level views until the store is back.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from dashboard.access import (
    Access,
    SnapshotSource,
    access_frames,
    load_access,
    resolve_access,
)
from dashboard.access_tables import store_engine
from dashboard.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dashboard.audit import AuditLog
    from dashboard.store import SnapshotStore
    from dashboard.throttle import LoginThrottle
    from dashboard.users import User, UserStore

IDENTITY_SECONDS = 5.0
IDENTITY_ENTRIES = 10_000
RESOLVED_ENTRIES = 2_000


class Accounts:
    def __init__(self, settings: Settings, store: SnapshotStore) -> None:
        self.settings = settings
        self.store = store
        # Where role, organisation and budget-holder snapshots are read: the store (a query
        # each), or the web worker's data layer, which holds the latest already.
        self._snapshots: SnapshotSource = store
        self._lock = threading.RLock()
        self._parts: dict[str, Any] = {}
        self._identities: OrderedDict[str, tuple[float, str, Any, Any]] = OrderedDict()
        # Access resolved from the role snapshots, by (user, grants, day, frames): re-read every
        # few seconds, it is recomputed only when a role, organisation or grant changed.
        self._resolved: OrderedDict[tuple[Any, ...], tuple[Any, Access | None]] = OrderedDict()

    def use_snapshots(self, source: SnapshotSource) -> None:
        """Read the role snapshots from ``source`` (e.g. the data layer, which has the latest
        loaded: no query per user after each new version)."""
        self._snapshots = source

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
        None if nothing or the account is disabled. Uncached: see ``identity`` for requests."""
        return load_access(self.store, self.users, username, as_of=self.settings.reporting_date())

    def identity(
        self, username: str, token: str | None = None
    ) -> tuple[User | None, Access | None]:
        """The user's account (None: no account, e.g. single sign-on) and access, as of at most
        ``IDENTITY_SECONDS`` ago and the current snapshots (``token``: the store's version token,
        if the caller has just read it)."""
        token = self.store.version_token() if token is None else token
        now = time.monotonic()
        with self._lock:
            hit = self._identities.get(username)
            if hit is not None and hit[0] > now and hit[1] == token:
                return hit[2], hit[3]
        user = self.users.get(username)
        access = None if user is not None and user.disabled else self._access(username)
        with self._lock:
            self._identities[username] = (now + IDENTITY_SECONDS, token, user, access)
            self._identities.move_to_end(username)
            while len(self._identities) > IDENTITY_ENTRIES:
                self._identities.popitem(last=False)
        return user, access

    def _access(self, username: str) -> Access | None:
        """``access_for``, resolved again only when its inputs changed. The store hands back
        the very same frame objects while a dataset keeps its version, so the frames' identities
        (held in the entry, so they cannot be reused) tell an unchanged snapshot; at regional
        scale resolving reads an organisation of thousands of teams."""
        frames = access_frames(self._snapshots)
        grants = tuple(self.users.grants(username))
        key = (username, grants, self.settings.reporting_date(), *(id(f) for f in frames))
        with self._lock:
            hit = self._resolved.get(key)
            if hit is not None:
                self._resolved.move_to_end(key)
                return hit[1]
        roles, organisations, holders = frames
        resolved = resolve_access(
            username, roles, organisations, holders, grants, as_of=self.settings.reporting_date()
        )
        access = None if resolved.is_empty else resolved
        with self._lock:
            self._resolved[key] = (frames, access)
            while len(self._resolved) > RESOLVED_ENTRIES:
                self._resolved.popitem(last=False)
        return access

    def forget(self, username: str) -> None:
        """Drop a user's cached identity (at login and logout, so they start fresh)."""
        with self._lock:
            self._identities.pop(username, None)
