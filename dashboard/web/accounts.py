"""The access parts one app instance uses: accounts, the login throttle, the audit trail, and
each request's ``Access``.

A user's account row and ``Access`` are kept in memory per worker, and never past a new
snapshot (the store's version token is part of the check). How long depends on whether the
worker follows the store's account change counter (``follow_changes``, once a second from the
snapshot preloader): if it does, an identity is kept until an account or grant changes (and
at most ``IDENTITY_MAX_SECONDS``, for edits made straight in the database); if not, for
``IDENTITY_SECONDS``. Either way the browsers' polls cost a comparison, not store queries, and
a disabled account, a revoked grant or a role change applies within seconds.

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
from dashboard.access_tables import read_account_changes, store_engine
from dashboard.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dashboard.audit import AuditLog
    from dashboard.store import SnapshotStore
    from dashboard.throttle import LoginThrottle
    from dashboard.users import User, UserStore

IDENTITY_SECONDS = 5.0  # when the account change counter is not followed
IDENTITY_MAX_SECONDS = 60.0  # when it is: the limit for changes it cannot see
CHANGES_FRESH_S = 5.0  # the counter's last reading counts as current for this long
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
        # username -> (time read, account changes or None, access frames, user, access)
        self._identities: OrderedDict[str, tuple[float, int | None, tuple, Any, Any]] = (
            OrderedDict()
        )
        self._changes: tuple[int, float] | None = None  # (counter, when it was read)
        self.clock = time.monotonic  # what identities' ages are measured with (tests move it)
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

    def follow_changes(self) -> None:
        """Read the account change counter (one small query); the snapshot preloader calls
        this every second, so identities need not be read again until it moves."""
        engine = self.users.engine  # the account tables (and the counter's row) exist
        with engine.connect() as conn:
            changes = read_account_changes(conn)
        self._changes = None if changes is None else (int(changes), self.clock())

    def identity(self, username: str) -> tuple[User | None, Access | None]:
        """The user's account (None: no account, e.g. single sign-on) and access, as of the
        latest role, organisation and budget-holder snapshots and the last account change (or
        at most ``IDENTITY_SECONDS`` ago).

        Kept while those three frames are the very same objects (the data layer hands back the
        same frame while a dataset's content is unchanged), not per store version: a new
        snapshot of the workforce or a history write must not send every user's next request
        to the store at once (700 users, at the moment their pages re-render)."""
        now = self.clock()
        changes, limit = self._followed_changes(now)
        frames = access_frames(self._snapshots)
        with self._lock:
            hit = self._identities.get(username)
            if (
                hit is not None
                and now - hit[0] < limit
                and hit[1] == changes
                and all(old is new for old, new in zip(hit[2], frames, strict=True))
            ):
                return hit[3], hit[4]
        user = self.users.get(username)
        access = None if user is not None and user.disabled else self._access(username, frames)
        with self._lock:
            self._identities[username] = (now, changes, frames, user, access)
            self._identities.move_to_end(username)
            while len(self._identities) > IDENTITY_ENTRIES:
                self._identities.popitem(last=False)
        return user, access

    def _followed_changes(self, now: float) -> tuple[int | None, float]:
        """(the account change counter, how long an identity read under it is kept)."""
        followed = self._changes
        if followed is None or now - followed[1] > CHANGES_FRESH_S:
            return None, IDENTITY_SECONDS
        return followed[0], IDENTITY_MAX_SECONDS

    def _access(self, username: str, frames: tuple[Any, ...]) -> Access | None:
        """``access_for``, resolved again only when its inputs changed. The store hands back
        the very same frame objects while a dataset keeps its version, so the frames' identities
        (held in the entry, so they cannot be reused) tell an unchanged snapshot; at regional
        scale resolving reads an organisation of thousands of teams."""
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
