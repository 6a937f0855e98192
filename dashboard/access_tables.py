"""The access tables in the store: accounts, admin grants, failed logins and the audit trail.

They live in the STORE database (never the source, which is read-only), beside the snapshot
tables but in their own ``MetaData``, so each part of the app creates only what it owns. Every
timestamp is UTC. ``create_schema`` is idempotent and safe when several gunicorn workers start
at once.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

USERNAME_LENGTH = 100
SCOPE_LENGTH = 250
SQLITE_BUSY_TIMEOUT_S = 30

access_metadata = MetaData()

users = Table(
    "users",
    access_metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(USERNAME_LENGTH), nullable=False, unique=True),  # lower case
    Column("display_name", String(200), nullable=False),
    # NULL: no password login (an account for trusted-header single sign-on only).
    Column("password_hash", String(255)),
    Column("is_admin", Boolean, nullable=False, default=False),
    # Demo accounts have the published password 'demo'; the web app refuses them outside demo mode.
    Column("is_demo", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("password_changed_at", DateTime(timezone=True)),
    Column("disabled_at", DateTime(timezone=True)),
)

# Grants are keyed by username, not by users.user_id: in trusted-header mode a person may have
# grants without a password account. Revoked grants are kept (revoked_at), so nothing is lost.
user_grants = Table(
    "user_grants",
    access_metadata,
    Column("grant_id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(USERNAME_LENGTH), nullable=False),
    Column("scope", String(SCOPE_LENGTH), nullable=False),
    Column("granted_by", String(USERNAME_LENGTH), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("revoked_by", String(USERNAME_LENGTH)),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_user_grants_username", "username", "revoked_at"),
)

# One row, counting every change to accounts and grants made through ``UserStore`` (the admin
# pages and the CLI): each web worker reads it once a second, so it can keep users' identities
# in memory until something changes instead of reading them again every few seconds.
account_changes = Table(
    "account_changes",
    access_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("changes", BigInteger, nullable=False),
)
ACCOUNT_CHANGES_ROW = 1

# One row per failed login, once under the username and once under the client address. Stored
# here (not in process memory) so the throttle holds across gunicorn workers.
login_failures = Table(
    "login_failures",
    access_metadata,
    Column("failure_id", Integer, primary_key=True, autoincrement=True),
    Column("key_kind", String(4), nullable=False),  # 'user' | 'ip'
    Column("key", String(200), nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
    Index("ix_login_failures_key", "key_kind", "key", "failed_at"),
    Index("ix_login_failures_failed_at", "failed_at"),
)

audit_events = Table(
    "audit_events",
    access_metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("username", String(USERNAME_LENGTH), nullable=False),
    Column("action", String(10), nullable=False),  # 'view' | 'export'
    Column("route", String(500), nullable=False),
    Column("indicator_id", String(100)),
    Column("scope", String(SCOPE_LENGTH), nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("person_count", Integer, nullable=False),
    Index("ix_audit_events_username", "username", "occurred_at"),
    Index("ix_audit_events_occurred_at", "occurred_at"),
)

# Which children an event showed. The primary key leads with person_id, so "who looked at this
# child's record?" is an index range scan, however long the trail grows.
audit_event_people = Table(
    "audit_event_people",
    access_metadata,
    Column(
        "event_id",
        Integer,
        ForeignKey("audit_events.event_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("person_id", Integer, nullable=False),
    PrimaryKeyConstraint("person_id", "event_id", name="pk_audit_event_people"),
    Index("ix_audit_event_people_event", "event_id"),
)


def store_engine(url: str | Engine) -> Engine:
    """An engine on the store: ``url`` may already be an engine (shared with the snapshot store).

    A bare ``postgresql://`` URL means psycopg 3; a SQLite file waits for the write lock rather
    than failing at once when another worker is writing.
    """
    if isinstance(url, Engine):
        return url
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("the store must be a SQLite file, not an in-memory database")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    # pre_ping: a web worker's pooled connection survives a store restart.
    return create_engine(parsed, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    """Create the access tables if they are missing (idempotent)."""
    try:
        access_metadata.create_all(engine, checkfirst=True)
    except SQLAlchemyError:
        # Two workers starting together can both see a table missing and race to create it; the
        # loser's second look finds everything there. A real fault fails again and is raised.
        access_metadata.create_all(engine, checkfirst=True)
    with engine.connect() as conn:
        if read_account_changes(conn) is not None:
            return
    try:
        with engine.begin() as conn:
            conn.execute(insert(account_changes).values(id=ACCOUNT_CHANGES_ROW, changes=0))
    except IntegrityError:
        pass  # another worker made the row first


def read_account_changes(conn: Connection) -> int | None:
    """The account change counter (None before ``create_schema`` made its row)."""
    return conn.scalar(
        select(account_changes.c.changes).where(account_changes.c.id == ACCOUNT_CHANGES_ROW)
    )


def count_account_change(conn: Connection) -> None:
    """Count a change to accounts or grants, in the transaction (``conn``) that makes it."""
    conn.execute(
        update(account_changes)
        .where(account_changes.c.id == ACCOUNT_CHANGES_ROW)
        .values(changes=account_changes.c.changes + 1)
    )


def utc_now() -> dt.datetime:
    """The default clock of the access modules (tests inject their own)."""
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive ones)."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
