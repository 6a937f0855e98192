"""The lock that keeps the refresher to ONE scheduler per store (DESIGN.md, Scheduling).

Production runs the scheduler as its own process, but nothing stops someone starting a second one,
or ``python app.py`` beside it; every job would then run twice. So a scheduler must hold this lock
while it runs; a second one stands by and takes over when the first dies.

- PostgreSQL store: a session-level advisory lock (``pg_try_advisory_lock``) held on a dedicated
  connection for the scheduler's life. The server frees it when that session ends, however the
  process died.
- SQLite store: an OS file lock (``filelock``) on a file next to the store. The kernel frees it
  when the process dies. It only excludes schedulers on the same host, which is all a SQLite
  store can serve anyway.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from abc import ABC, abstractmethod
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from dashboard.store import sqlite_path, with_driver

# Fixed advisory-lock key: the bytes of "csc_schd". Any process using the same key on the same
# database contends for the same lock.
SCHEDULER_LOCK_KEY = int.from_bytes(b"csc_schd", "big")
# How long a dead network path to the store may go unnoticed by either end of the lock's
# session. Without these, a connection dropped silently (a firewall forgetting an idle flow, a
# network partition) leaves the server holding the lock for its default 2-hour keepalive, and
# the scheduler blocked in its liveness check for ~15 minutes of TCP retries: no scheduler,
# not even this one, could refresh until then.
LOCK_KEEPALIVE_IDLE_S = 30
LOCK_KEEPALIVE_INTERVAL_S = 10
LOCK_KEEPALIVE_COUNT = 3
LOCK_TCP_USER_TIMEOUT_MS = 60_000
_ADVISORY_HOLDER = text(
    "SELECT a.pid, a.application_name, a.client_addr, a.backend_start"
    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted"
    # Advisory locks belong to one database: without this, another store on the same server
    # (another council, a test database) would be named as this store's holder.
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid::bigint = :high AND l.objid::bigint = :low AND l.objsubid = 1"
)


def _whoami() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


class SchedulerLock(ABC):
    """A non-blocking lock on one store. Not re-entrant; one object per scheduler."""

    description: str

    @abstractmethod
    def acquire(self) -> bool:
        """Take the lock if it is free; True if this object now holds it."""

    @abstractmethod
    def still_held(self) -> bool:
        """Whether the lock taken by ``acquire`` is still ours (its connection may have died)."""

    @abstractmethod
    def holder(self) -> str:
        """Who holds the lock, as far as can be told, for the standby's log line."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock up (no error if not held)."""

    def close(self) -> None:
        self.release()


class FileSchedulerLock(SchedulerLock):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.owner_path = self.path.with_name(self.path.name + ".owner")
        self.description = f"file lock {self.path}"
        self._lock = FileLock(self.path, thread_local=False)

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        # Tells a standby who it is waiting for; the lock itself is the flock, not this file.
        self.owner_path.write_text(
            f"{_whoami()}, since {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC\n",
            encoding="utf-8",
        )
        return True

    def still_held(self) -> bool:
        return self._lock.is_locked

    def holder(self) -> str:
        try:
            return self.owner_path.read_text(encoding="utf-8").strip() or "unknown process"
        except OSError:
            return "unknown process"

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)


class PostgresSchedulerLock(SchedulerLock):
    def __init__(self, url: str) -> None:
        parsed = with_driver(url)
        self.description = (
            f"PostgreSQL advisory lock {SCHEDULER_LOCK_KEY} on "
            f"{parsed.render_as_string(hide_password=True)}"
        )
        # NullPool: the lock connection is never shared or returned to a pool, so closing it
        # really ends the session (and frees the lock).
        self._engine = create_engine(
            parsed,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "application_name": f"csc-dashboard scheduler {_whoami()}"[:63],
                "connect_timeout": 10,
                # This end (libpq) ...
                "keepalives": 1,
                "keepalives_idle": LOCK_KEEPALIVE_IDLE_S,
                "keepalives_interval": LOCK_KEEPALIVE_INTERVAL_S,
                "keepalives_count": LOCK_KEEPALIVE_COUNT,
                "tcp_user_timeout": LOCK_TCP_USER_TIMEOUT_MS,
                # ... and the server's end of the session, which holds the lock.
                "options": (
                    f"-c tcp_keepalives_idle={LOCK_KEEPALIVE_IDLE_S}"
                    f" -c tcp_keepalives_interval={LOCK_KEEPALIVE_INTERVAL_S}"
                    f" -c tcp_keepalives_count={LOCK_KEEPALIVE_COUNT}"
                    f" -c tcp_user_timeout={LOCK_TCP_USER_TIMEOUT_MS}"
                ),
            },
        )
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        if self._conn is not None:
            return True
        try:
            conn = self._engine.connect()
            got = conn.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": SCHEDULER_LOCK_KEY}
            )
        except SQLAlchemyError:
            return False  # store unreachable: nobody can schedule against it; try again later
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            # The session is gone (store restarted, connection cut): so is the lock.
            self._conn.invalidate()
            self._conn = None
            return False

    def holder(self) -> str:
        try:
            with self._engine.connect() as conn:
                row = conn.execute(
                    _ADVISORY_HOLDER,
                    {"high": SCHEDULER_LOCK_KEY >> 32, "low": SCHEDULER_LOCK_KEY & 0xFFFFFFFF},
                ).first()
        except SQLAlchemyError as exc:
            return f"unknown (store unreachable: {exc.__class__.__name__})"
        if row is None:
            return "nobody now (it was just freed)"
        name = row.application_name or "a session"
        return f"{name} (server pid {row.pid}, from {row.client_addr or 'local socket'})"

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEDULER_LOCK_KEY})
            self._conn.close()
        except SQLAlchemyError:
            self._conn.invalidate()
        self._conn = None

    def close(self) -> None:
        self.release()
        self._engine.dispose()


def scheduler_lock(store_url: str) -> SchedulerLock:
    """The scheduler lock for a store: an advisory lock on PostgreSQL, a file lock on SQLite."""
    parsed = with_driver(store_url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return PostgresSchedulerLock(store_url)
    path = sqlite_path(parsed)
    if backend == "sqlite" and path is not None:
        return FileSchedulerLock(path.with_name(path.name + ".scheduler.lock"))
    raise ValueError(
        f"no scheduler lock for store {parsed.render_as_string(hide_password=True)!r}: "
        "use a SQLite file or PostgreSQL"
    )
