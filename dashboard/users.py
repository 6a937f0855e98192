"""User accounts and admin grants, kept in the store (embedded login mode and trusted-header mode).

What a person may SEE comes from their roles in the organisation (``dashboard.access``); this
module holds only who can log in, their password hash, the admin flag, and the extra scopes an
admin granted by hand. Usernames are the case-management system's (``workers.username``), held
in lower case.

Typical use (the web layer's login route)::

    users = UserStore(settings.store_url)
    user = users.verify(form_username, form_password, allow_demo=settings.demo)
    if user is None: ...  # wrong, unknown, disabled, or a demo account outside demo mode
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from dashboard.access_tables import (
    USERNAME_LENGTH,
    as_utc,
    count_account_change,
    create_schema,
    store_engine,
    user_grants,
    users,
    utc_now,
)
from dashboard.model import Scope
from dashboard.passwords import (
    MAX_PASSWORD_LENGTH,
    PasswordHashError,
    ScryptHasher,
    check_password_policy,
)

__all__ = ["Grant", "User", "UserError", "UserStore", "create_schema", "normalise_username"]

log = logging.getLogger(__name__)

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]*$")


class UserError(ValueError):
    """A request about accounts that cannot be done (unknown user, duplicate, bad name)."""


def normalise_username(username: str) -> str:
    """The stored form of a username (trimmed, lower case); ``UserError`` if it is not one."""
    if not isinstance(username, str):
        raise UserError("a username must be text")
    name = username.strip().lower()
    if not name or len(name) > USERNAME_LENGTH or not _USERNAME.match(name):
        raise UserError(
            f"not a username: {username[:40]!r} (letters, digits, '.', '_', '@', '-'; "
            f"at most {USERNAME_LENGTH} characters)"
        )
    return name


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    is_admin: bool
    is_demo: bool  # published demo password: refused outside demo mode
    has_password: bool  # False: trusted-header (single sign-on) login only
    created_at: dt.datetime
    disabled_at: dt.datetime | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


@dataclass(frozen=True)
class Grant:
    """An extra scope an admin granted by hand, on top of what roles give."""

    username: str
    scope: str  # canonical Scope string: borough, team:12, service:3, teams:1,2, cost_centre:CC01
    granted_by: str
    granted_at: dt.datetime


def _user(row) -> User:  # noqa: ANN001 - a SQLAlchemy Row
    return User(
        username=row.username,
        display_name=row.display_name,
        is_admin=bool(row.is_admin),
        is_demo=bool(row.is_demo),
        has_password=row.password_hash is not None,
        created_at=as_utc(row.created_at),
        disabled_at=as_utc(row.disabled_at),
    )


class UserStore:
    """Accounts and grants in the store database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        store_url: str | Engine,
        *,
        hasher: ScryptHasher | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.engine = store_engine(store_url)
        self.hasher = hasher or ScryptHasher()
        self._clock = clock
        self._dummy_hash: str | None = None
        create_schema(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # --- accounts ------------------------------------------------------------------------------

    def create_user(
        self,
        username: str,
        password: str | None,
        display_name: str,
        is_admin: bool = False,
        *,
        is_demo: bool = False,
    ) -> User:
        """Create an account. ``password=None`` makes a single-sign-on-only account.

        A demo account (``is_demo=True``) skips the password policy, because its password is
        published; ``verify`` refuses it unless the caller says the app is in demo mode.
        """
        name = normalise_username(username)
        display = (display_name or "").strip() or name
        if password is not None and not is_demo:
            check_password_policy(password)
        now = self._clock()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(users).values(
                        username=name,
                        display_name=display[:200],
                        password_hash=None if password is None else self.hasher.hash(password),
                        is_admin=bool(is_admin),
                        is_demo=bool(is_demo),
                        created_at=now,
                        password_changed_at=None if password is None else now,
                    )
                )
                count_account_change(conn)
        except IntegrityError:
            raise UserError(f"user {name!r} already exists") from None
        log.info("created user %s (admin=%s, demo=%s)", name, bool(is_admin), bool(is_demo))
        found = self.get(name)
        assert found is not None
        return found

    def get(self, username: str) -> User | None:
        try:
            name = normalise_username(username)
        except UserError:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == name)).first()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.username)).all()
        return [_user(row) for row in rows]

    def set_password(self, username: str, password: str) -> None:
        """Replace a user's password (policy-checked); the account stops being a demo account."""
        check_password_policy(password)
        self._update(
            username,
            password_hash=self.hasher.hash(password),
            password_changed_at=self._clock(),
            is_demo=False,
        )
        log.info("password changed for %s", normalise_username(username))

    def set_admin(self, username: str, is_admin: bool) -> None:
        self._update(username, is_admin=bool(is_admin))

    def disable(self, username: str) -> None:
        """Stop an account logging in (kept, with its grants, for the record)."""
        self._update(username, disabled_at=self._clock())
        log.info("disabled user %s", normalise_username(username))

    def enable(self, username: str) -> None:
        self._update(username, disabled_at=None)

    def _update(self, username: str, **values) -> None:  # noqa: ANN003
        name = normalise_username(username)
        with self.engine.begin() as conn:
            result = conn.execute(update(users).where(users.c.username == name).values(**values))
            count_account_change(conn)
        if result.rowcount == 0:
            raise UserError(f"no such user: {name!r}")

    def delete_demo_users(self) -> int:
        """Remove every demo account and its grants (re-running demo-data starts clean)."""
        with self.engine.begin() as conn:
            names = conn.scalars(select(users.c.username).where(users.c.is_demo.is_(True))).all()
            if names:
                conn.execute(user_grants.delete().where(user_grants.c.username.in_(names)))
                conn.execute(users.delete().where(users.c.username.in_(names)))
                count_account_change(conn)
        return len(names)

    # --- login ---------------------------------------------------------------------------------

    def verify(self, username: str, password: str, *, allow_demo: bool = False) -> User | None:
        """The user if ``password`` is theirs and they may log in; else None.

        Takes the same time whatever the reason for refusing (unknown user, no password, disabled,
        a demo account while ``allow_demo`` is False): a dummy hash is checked when there is no
        real one, so response times do not reveal which usernames exist.
        """
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
            password = ""
        try:
            name = normalise_username(username)
        except UserError:
            name = None
        row = None
        if name is not None:
            with self.engine.connect() as conn:
                row = conn.execute(select(users).where(users.c.username == name)).first()
        if row is None or row.password_hash is None:
            self.hasher.verify(password, self._dummy())
            return None
        try:
            matches = self.hasher.verify(password, row.password_hash)
        except PasswordHashError:
            log.warning("stored password hash of %s is malformed; login refused", name)
            self.hasher.verify(password, self._dummy())
            return None
        if not matches or row.disabled_at is not None or (row.is_demo and not allow_demo):
            return None
        if self.hasher.needs_rehash(row.password_hash):
            # The cost has been raised since this hash was made: upgrade it now we know the password.
            with self.engine.begin() as conn:
                conn.execute(
                    update(users)
                    .where(users.c.username == name)
                    .values(password_hash=self.hasher.hash(password))
                )
        return _user(row)

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    # --- grants --------------------------------------------------------------------------------

    def grant(self, username: str, scope: str, granted_by: str) -> Grant:
        """Grant an extra scope (``borough``, ``team:12``, ``service:3``, ``teams:1,2``,
        ``cost_centre:CC01``). Granting one already held returns the existing grant.

        The user need not have an account: in trusted-header mode grants attach to the name.
        """
        name = normalise_username(username)
        by = normalise_username(granted_by)
        canonical = str(Scope.parse(scope))  # ScopeError (a ValueError) names a bad scope
        with self.engine.begin() as conn:
            row = conn.execute(
                select(user_grants).where(
                    user_grants.c.username == name,
                    user_grants.c.scope == canonical,
                    user_grants.c.revoked_at.is_(None),
                )
            ).first()
            if row is None:
                now = self._clock()
                conn.execute(
                    insert(user_grants).values(
                        username=name, scope=canonical, granted_by=by, granted_at=now
                    )
                )
                count_account_change(conn)
                log.info("granted %s to %s by %s", canonical, name, by)
                return Grant(name, canonical, by, as_utc(now))
        return Grant(row.username, row.scope, row.granted_by, as_utc(row.granted_at))

    def revoke(self, username: str, scope: str, revoked_by: str) -> bool:
        """Revoke a grant (kept in the table with who revoked it and when). False if not held."""
        name = normalise_username(username)
        by = normalise_username(revoked_by)
        canonical = str(Scope.parse(scope))
        with self.engine.begin() as conn:
            result = conn.execute(
                update(user_grants)
                .where(
                    user_grants.c.username == name,
                    user_grants.c.scope == canonical,
                    user_grants.c.revoked_at.is_(None),
                )
                .values(revoked_by=by, revoked_at=self._clock())
            )
            count_account_change(conn)
        if result.rowcount:
            log.info("revoked %s from %s by %s", canonical, name, by)
        return bool(result.rowcount)

    def grants(self, username: str) -> list[Grant]:
        """The user's grants in force, oldest first."""
        try:
            name = normalise_username(username)
        except UserError:
            return []
        return self._grants(user_grants.c.username == name)

    def all_grants(self) -> list[Grant]:
        """Every grant in force, by username."""
        return self._grants(None)

    def _grants(self, condition) -> list[Grant]:  # noqa: ANN001 - a SQLAlchemy clause or None
        query = select(user_grants).where(user_grants.c.revoked_at.is_(None))
        if condition is not None:
            query = query.where(condition)
        query = query.order_by(user_grants.c.username, user_grants.c.granted_at)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Grant(r.username, r.scope, r.granted_by, as_utc(r.granted_at)) for r in rows]
