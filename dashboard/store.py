"""The snapshot store: versioned dataset frames, their run metadata, and the daily history.

One SQLAlchemy database (a SQLite file by default, PostgreSQL in production) holds the app's own
state; the source is never written to (DESIGN.md, Data flow). Each dataset has versioned snapshots:

- a snapshot is written in ONE transaction (metadata row + Parquet frame + retention), so readers
  see the old version or the new one, never half;
- a failed run records a small failure row and leaves the last good snapshot readable;
- only the latest ``retention`` good frames per dataset are kept, because detail frames hold
  children's personal data; old metadata rows are pruned too, so the tables stay small.

Frames are stored as Parquet (pyarrow) so nullable ints, datetimes, strings and booleans come back
with exactly the dtypes they were written with. ``latest()`` caches decoded frames per store
instance, keyed by version: a warm read costs one small metadata query and no decoding.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
import sqlite3
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

if TYPE_CHECKING:
    from dashboard.config import Settings

STATUS_OK = "ok"
STATUS_FAILED = "failed"

# Metadata rows kept per dataset (good and failed attempts together), beyond the retained frames:
# enough for a health page to show recent run times, small enough never to matter.
ATTEMPTS_KEPT = 100
# Failure messages are for people; a full driver traceback does not belong in a small row.
ERROR_MAX_CHARS = 2000
# Decoded frames cached per store instance. One entry per dataset is all a reader needs (older
# versions of a dataset are evicted when a newer one is cached); this caps the pathological case.
CACHE_MAX_ENTRIES = 256
SQLITE_BUSY_TIMEOUT_S = 30
# Two writers of one dataset (a manual refresh beside the scheduler) can pick the same next
# version on PostgreSQL; the unique constraint refuses the second, which then tries again.
VERSION_RACE_RETRIES = 3
SCHEMA_LOCK_KEY = int.from_bytes(b"csc_schm", "big")  # advisory lock around create_schema

store_metadata = MetaData()

store_snapshots = Table(
    "store_snapshots",
    store_metadata,
    Column("snapshot_id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", String(100), nullable=False),
    Column("version", Integer, nullable=False),  # per dataset, every attempt, increasing
    Column("status", String(10), nullable=False),  # 'ok' | 'failed'
    Column("as_of", Date, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),  # UTC
    Column("duration_s", Float, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("error", Text),
    UniqueConstraint("dataset_id", "version", name="uq_store_snapshots_version"),
    Index("ix_store_snapshots_status", "dataset_id", "status", "version"),
    # SQLite must never reuse a deleted id: the version token is built from the largest id.
    sqlite_autoincrement=True,
)

# Frames live apart from their metadata so that status and version checks never touch the blobs.
store_frames = Table(
    "store_frames",
    store_metadata,
    Column(
        "snapshot_id",
        Integer,
        ForeignKey("store_snapshots.snapshot_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("parquet", LargeBinary, nullable=False),
)

store_history = Table(
    "store_history",
    store_metadata,
    Column("indicator_id", String(100), nullable=False),
    Column("scope", String(100), nullable=False),
    Column("day", Date, nullable=False),
    Column("value", Float),
    Column("numerator", Float),
    Column("denominator", Float),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("indicator_id", "scope", "day", name="pk_store_history"),
    Index("ix_store_history_recorded_at", "recorded_at"),  # keeps version_token's max() cheap
)


# Rendered page answers shared by the web workers (``dashboard.web.render_cache``): one worker
# renders a page for a new version and the others read its bytes. Rows only hold aggregates
# (tiles, charts, counts), never a child's row; they are pruned minutes after they are written.
store_renders = Table(
    "store_renders",
    store_metadata,
    Column("key", String(64), primary_key=True),  # sha256 of (callback, outputs, scope, version)
    Column("claimed_at", DateTime(timezone=True), nullable=False),  # UTC
    Column("claimed_by", String(100), nullable=False),
    Column("stored_at", DateTime(timezone=True)),  # UTC; None while the claimant renders it
    Column("mimetype", String(100)),
    Column("body", LargeBinary),  # zlib-compressed response bytes
    Index("ix_store_renders_claimed_at", "claimed_at"),
)


# A new version the web workers should not publish yet: the scheduler holds it while it refreshes
# a dataset whose history it records next, so the browsers get the snapshot and its day's
# history as one version (one round of re-renders, not two). A hold ends when it is released or
# at ``until`` (a scheduler that died holding it), and each worker waits at most a few seconds
# more than the history takes (``data.PUBLISH_HOLD_MAX_S``).
store_holds = Table(
    "store_holds",
    store_metadata,
    Column("name", String(50), primary_key=True),
    Column("held_by", String(100), nullable=False),
    Column("until", DateTime(timezone=True), nullable=False),  # UTC
)


@dataclass(frozen=True)
class SharedRender:
    body: bytes  # the response bytes (decompressed)
    mimetype: str
    stored_at: dt.datetime  # UTC, tz-aware


@dataclass(frozen=True)
class SnapshotMeta:
    dataset_id: str
    version: int
    as_of: dt.date
    computed_at: dt.datetime  # UTC, tz-aware
    duration_s: float
    row_count: int
    status: str  # "ok" | "failed"
    error: str | None


@dataclass(frozen=True)
class Snapshot:
    meta: SnapshotMeta
    frame: pd.DataFrame  # shared with the store's cache: treat as read-only
    # A digest of the stored frame's bytes: two versions with the same rows have the same one
    # (the Parquet encoding of a frame is deterministic), so readers can keep what they
    # computed from a refresh that changed nothing. "" if unknown.
    content: str = ""


@dataclass(frozen=True)
class DatasetStatus:
    dataset_id: str
    last_good: SnapshotMeta | None
    last_attempt: SnapshotMeta


@dataclass(frozen=True)
class StoreVersions:
    """What :meth:`SnapshotStore.versions` reads: the version token, each dataset's last good
    snapshot as (version, computed_at), and when history was last written."""

    token: str  # equal to version_token() at the same moment
    snapshots: dict[str, tuple[int, dt.datetime]]
    history: dt.datetime | None


@dataclass(frozen=True)
class HistoryRow:
    indicator_id: str
    scope: str
    value: float | None
    numerator: float | None
    denominator: float | None


def with_driver(url: str | URL) -> URL:
    """The URL with an installed driver: bare ``postgresql://`` means psycopg 3 here."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_path(url: str | URL) -> Path | None:
    """The file behind a SQLite URL, or None for any other database (or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def encode_frame(frame: pd.DataFrame) -> bytes:
    """Parquet bytes that decode to the same frame, dtypes and index included."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow")
    return buffer.getvalue()


def decode_frame(data: bytes) -> pd.DataFrame:
    frame = pd.read_parquet(io.BytesIO(data), engine="pyarrow")
    # Arrow-backed columns (strings) come back in chunks of 128Ki rows, and taking rows from a
    # chunked column concatenates all its chunks first: one team's rows would cost the whole
    # column. One chunk per column, once per decoded version (values and dtypes unchanged).
    for column in frame.columns:
        array, dtype = frame[column].array, frame[column].dtype
        if hasattr(array, "__arrow_array__") and hasattr(dtype, "__from_arrow__"):
            arrow = array.__arrow_array__()
            if getattr(arrow, "num_chunks", 1) > 1:
                frame[column] = dtype.__from_arrow__(arrow.combine_chunks())
    return frame


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything the store writes is UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _meta(row: Any) -> SnapshotMeta:
    return SnapshotMeta(
        dataset_id=row.dataset_id,
        version=row.version,
        as_of=row.as_of,
        computed_at=_utc(row.computed_at),
        duration_s=float(row.duration_s),
        row_count=int(row.row_count),
        status=row.status,
        error=row.error,
    )


def _sqlite_engine(url: URL) -> Engine:
    path = sqlite_path(url)
    if path is None:
        raise ValueError(f"the SQLite store must be a file, not {url.render_as_string()!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from Python's sqlite3 (which skips BEGIN before SELECTs), so a
        # read of metadata then frame is one consistent snapshot (SQLAlchemy's SQLite docs recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL: the web app's readers and the scheduler's writer overlap without blocking.
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front (waiting on busy_timeout), rather than failing
        # with SQLITE_BUSY when a read transaction later tries to upgrade to a write.
        immediate = conn.get_execution_options().get("store_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _enable_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, waiting for the lock it takes. While several processes
    open a new store at once, SQLite can answer the switch with "database is locked" at once,
    without its busy handler; so it is retried here for up to the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(random.uniform(0.01, 0.05))


class SnapshotStore:
    """Versioned dataset snapshots and daily indicator history in one SQLAlchemy database."""

    def __init__(self, url: str, *, retention: int = 3) -> None:
        if retention < 1:
            raise ValueError(f"retention must keep at least one snapshot, not {retention}")
        self.url = with_driver(url)
        self.retention = retention
        if self.url.get_backend_name() == "sqlite":
            self.engine = _sqlite_engine(self.url)
        else:
            # pre_ping: a web worker's pooled connection survives a store restart.
            self.engine = create_engine(self.url, pool_pre_ping=True)
        self._schema_ready = False
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, int, dt.datetime], tuple[pd.DataFrame, str]] = (
            OrderedDict()
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> SnapshotStore:
        return cls(settings.store_url, retention=settings.snapshot_retention)

    def __repr__(self) -> str:
        return f"SnapshotStore({self.url.render_as_string(hide_password=True)!r})"

    # --- schema and connections --------------------------------------------------------------

    def create_schema(self) -> None:
        """Create the store's tables if they are missing (idempotent, safe to race)."""
        # The web workers and the scheduler may all start at once: on SQLite the write
        # transaction serialises them, on PostgreSQL a transaction-scoped advisory lock does.
        with self.engine.connect().execution_options(store_write=True) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            store_metadata.create_all(conn)
        self._schema_ready = True

    def _ready(self) -> None:
        if not self._schema_ready:
            self.create_schema()

    def _write(self) -> Any:
        """A write transaction (on SQLite: BEGIN IMMEDIATE)."""
        self._ready()
        return self.engine.connect().execution_options(store_write=True)

    def ping(self) -> bool:
        """Is the store reachable?"""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True
        except SQLAlchemyError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
        with self._lock:
            self._cache.clear()

    # --- snapshots -----------------------------------------------------------------------------

    def write_snapshot(
        self,
        dataset_id: str,
        frame: pd.DataFrame,
        *,
        as_of: dt.date,
        computed_at: dt.datetime,
        duration_s: float,
    ) -> int:
        """Store a good snapshot of ``dataset_id`` in one transaction; return its new version.

        If anything fails (the frame cannot be encoded, the database refuses), nothing is written
        and the previous version stays the latest.
        """
        for attempt in range(VERSION_RACE_RETRIES):
            try:
                with self._write() as conn, conn.begin():
                    version, snapshot_id = self._insert_meta(
                        conn,
                        dataset_id,
                        STATUS_OK,
                        as_of,
                        computed_at,
                        duration_s,
                        len(frame),
                        None,
                    )
                    # Encoded inside the transaction, after the metadata row: a frame that cannot
                    # be stored rolls the whole version back, never leaving a row without a frame.
                    conn.execute(
                        store_frames.insert().values(
                            snapshot_id=snapshot_id, parquet=encode_frame(frame)
                        )
                    )
                    self._prune(conn, dataset_id)
                return version
            except IntegrityError:
                if attempt == VERSION_RACE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def record_failure(
        self,
        dataset_id: str,
        error: str,
        *,
        as_of: dt.date,
        computed_at: dt.datetime,
        duration_s: float,
    ) -> None:
        """Record a failed run; the last good snapshot stays the one ``latest()`` returns."""
        error = error if len(error) <= ERROR_MAX_CHARS else error[: ERROR_MAX_CHARS - 1] + "…"
        for attempt in range(VERSION_RACE_RETRIES):
            try:
                with self._write() as conn, conn.begin():
                    self._insert_meta(
                        conn, dataset_id, STATUS_FAILED, as_of, computed_at, duration_s, 0, error
                    )
                    self._prune(conn, dataset_id)
                return
            except IntegrityError:
                if attempt == VERSION_RACE_RETRIES - 1:
                    raise

    def _insert_meta(
        self,
        conn: Connection,
        dataset_id: str,
        status: str,
        as_of: dt.date,
        computed_at: dt.datetime,
        duration_s: float,
        row_count: int,
        error: str | None,
    ) -> tuple[int, int]:
        if computed_at.tzinfo is None:
            raise ValueError("computed_at must be timezone-aware (UTC)")
        last = conn.scalar(
            select(func.max(store_snapshots.c.version)).where(
                store_snapshots.c.dataset_id == dataset_id
            )
        )
        version = (last or 0) + 1
        snapshot_id = conn.execute(
            store_snapshots.insert()
            .values(
                dataset_id=dataset_id,
                version=version,
                status=status,
                as_of=as_of,
                computed_at=computed_at.astimezone(dt.UTC),
                duration_s=float(duration_s),
                row_count=int(row_count),
                error=error,
            )
            .returning(store_snapshots.c.snapshot_id)
        ).scalar_one()
        return version, snapshot_id

    def _prune(self, conn: Connection, dataset_id: str) -> None:
        """Retention, inside the writer's transaction: old frames go with the new version."""
        s = store_snapshots
        keep_frames = list(
            conn.scalars(
                select(s.c.snapshot_id)
                .where(s.c.dataset_id == dataset_id, s.c.status == STATUS_OK)
                .order_by(s.c.version.desc())
                .limit(self.retention)
            )
        )
        conn.execute(
            delete(store_frames).where(
                store_frames.c.snapshot_id.in_(
                    select(s.c.snapshot_id).where(
                        s.c.dataset_id == dataset_id, s.c.snapshot_id.not_in(keep_frames)
                    )
                )
            )
        )
        oldest_kept = conn.scalar(
            select(s.c.version)
            .where(s.c.dataset_id == dataset_id)
            .order_by(s.c.version.desc())
            .offset(ATTEMPTS_KEPT - 1)
            .limit(1)
        )
        if oldest_kept is not None:
            conn.execute(
                delete(s).where(
                    s.c.dataset_id == dataset_id,
                    s.c.version < oldest_kept,
                    s.c.snapshot_id.not_in(keep_frames),
                )
            )

    def _last_good_meta(self, conn: Connection, dataset_id: str) -> tuple[int, SnapshotMeta] | None:
        s = store_snapshots
        row = conn.execute(
            select(s)
            .where(s.c.dataset_id == dataset_id, s.c.status == STATUS_OK)
            .order_by(s.c.version.desc())
            .limit(1)
        ).first()
        return None if row is None else (row.snapshot_id, _meta(row))

    def latest(self, dataset_id: str) -> Snapshot | None:
        """The last good snapshot of ``dataset_id`` (None if it never had one).

        Warm reads (the version already decoded by this store object) cost one metadata query.
        """
        self._ready()
        # The frame of the version just read can be pruned by a writer in between (PostgreSQL
        # reads at READ COMMITTED); then the newer version is read instead.
        for _attempt in range(5):
            with self.engine.connect() as conn, conn.begin():
                found = self._last_good_meta(conn, dataset_id)
                if found is None:
                    return None
                snapshot_id, meta = found
                key = (dataset_id, meta.version, meta.computed_at)
                with self._lock:
                    cached = self._cache.get(key)
                    if cached is not None:
                        self._cache.move_to_end(key)
                        return Snapshot(meta, *cached)
                data = conn.scalar(
                    select(store_frames.c.parquet).where(store_frames.c.snapshot_id == snapshot_id)
                )
            if data is None:
                continue
            frame = decode_frame(data)
            content = hashlib.blake2b(data, digest_size=16).hexdigest()
            self._remember(key, (frame, content))
            return Snapshot(meta, frame, content)
        raise RuntimeError(f"snapshot of {dataset_id!r} kept changing while being read")

    def _remember(
        self, key: tuple[str, int, dt.datetime], decoded: tuple[pd.DataFrame, str]
    ) -> None:
        with self._lock:
            for old in [k for k in self._cache if k[0] == key[0] and k != key]:
                del self._cache[old]
            self._cache[key] = decoded
            while len(self._cache) > CACHE_MAX_ENTRIES:
                self._cache.popitem(last=False)

    def status(self) -> dict[str, DatasetStatus]:
        """Every dataset's last good and last attempted run (metadata only, no frames)."""
        self._ready()
        s = store_snapshots
        last_attempt = (
            select(s.c.dataset_id, func.max(s.c.version).label("v"))
            .group_by(s.c.dataset_id)
            .subquery()
        )
        last_good = (
            select(s.c.dataset_id, func.max(s.c.version).label("v"))
            .where(s.c.status == STATUS_OK)
            .group_by(s.c.dataset_id)
            .subquery()
        )
        with self.engine.connect() as conn, conn.begin():
            attempts = {
                row.dataset_id: _meta(row)
                for row in conn.execute(
                    select(s).join(
                        last_attempt,
                        (s.c.dataset_id == last_attempt.c.dataset_id)
                        & (s.c.version == last_attempt.c.v),
                    )
                )
            }
            goods = {
                row.dataset_id: _meta(row)
                for row in conn.execute(
                    select(s).join(
                        last_good,
                        (s.c.dataset_id == last_good.c.dataset_id) & (s.c.version == last_good.c.v),
                    )
                )
            }
        return {
            dataset_id: DatasetStatus(dataset_id, goods.get(dataset_id), attempt)
            for dataset_id, attempt in sorted(attempts.items())
        }

    def version_token(self) -> str:
        """A short string that changes whenever any dataset gets a new version or failure, or
        history is written. One small query; browsers poll it to re-render only on change."""
        self._ready()
        s = store_snapshots
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    select(func.max(s.c.snapshot_id)).scalar_subquery(),
                    select(func.max(s.c.computed_at)).scalar_subquery(),
                    select(func.max(store_history.c.recorded_at)).scalar_subquery(),
                )
            ).one()
        return "|".join("" if value is None else str(value) for value in row)

    def versions(self) -> StoreVersions:
        """The version token with every dataset's last good version and the history stamp, in one
        small query (metadata only), so a reader can tell which datasets changed."""
        self._ready()
        s = store_snapshots
        stamps = select(
            select(func.max(s.c.snapshot_id)).scalar_subquery().label("last_id"),
            select(func.max(s.c.computed_at)).scalar_subquery().label("last_computed"),
            select(func.max(store_history.c.recorded_at)).scalar_subquery().label("recorded"),
        ).subquery()
        last_good = (
            select(s.c.dataset_id, func.max(s.c.version).label("v"))
            .where(s.c.status == STATUS_OK)
            .group_by(s.c.dataset_id)
            .subquery()
        )
        good = (
            select(s.c.dataset_id, s.c.version, s.c.computed_at)
            .join(
                last_good,
                (s.c.dataset_id == last_good.c.dataset_id) & (s.c.version == last_good.c.v),
            )
            .subquery()
        )
        # One row per dataset with a good snapshot, the stamps repeated; one row of stamps alone
        # for an empty store (the outer join keeps it).
        query = select(stamps, good).select_from(stamps.outerjoin(good, literal(True)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        first = rows[0]
        token = "|".join(
            "" if value is None else str(value)
            for value in (first.last_id, first.last_computed, first.recorded)
        )
        return StoreVersions(
            token=token,
            snapshots={
                row.dataset_id: (row.version, _utc(row.computed_at))
                for row in rows
                if row.dataset_id is not None
            },
            history=None if first.recorded is None else _utc(first.recorded),
        )

    # --- history -------------------------------------------------------------------------------

    def write_history(self, day: dt.date, rows: Iterable[HistoryRow]) -> None:
        """Upsert one day's headline values, keyed by (day, indicator_id, scope)."""
        recorded_at = dt.datetime.now(dt.UTC)
        values = [
            {
                "indicator_id": row.indicator_id,
                "scope": row.scope,
                "day": day,
                "value": row.value,
                "numerator": row.numerator,
                "denominator": row.denominator,
                "recorded_at": recorded_at,
            }
            for row in rows
        ]
        if not values:
            return
        insert = self._insert()
        statement = insert(store_history)
        statement = statement.on_conflict_do_update(
            index_elements=["indicator_id", "scope", "day"],
            set_={
                name: statement.excluded[name]
                for name in ("value", "numerator", "denominator", "recorded_at")
            },
        )
        with self._write() as conn, conn.begin():
            conn.execute(statement, values)

    # --- holds on publishing a new version ------------------------------------------------------

    def hold_publication(self, name: str, seconds: float, by: str) -> None:
        """Ask the web workers not to publish a new version for up to ``seconds`` (until
        ``release_publication(name)``): what is being written belongs with what follows it."""
        until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        insert = self._insert()
        statement = insert(store_holds).values(name=name[:50], held_by=by[:100], until=until)
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"held_by": statement.excluded.held_by, "until": statement.excluded.until},
        )
        with self._write() as conn, conn.begin():
            conn.execute(statement)

    def release_publication(self, name: str) -> None:
        with self._write() as conn, conn.begin():
            conn.execute(delete(store_holds).where(store_holds.c.name == name[:50]))

    def publication_held(self) -> bool:
        """Is a hold in force now (one small query)?"""
        self._ready()
        with self.engine.connect() as conn:
            found = conn.execute(
                select(store_holds.c.name)
                .where(store_holds.c.until > dt.datetime.now(dt.UTC))
                .limit(1)
            ).first()
        return found is not None

    # --- shared renders ------------------------------------------------------------------------

    def _insert(self) -> Any:
        if self.url.get_backend_name() == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert

    def claim_render(self, key: str, by: str) -> bool:
        """Take the job of rendering ``key``; False if another worker took it first."""
        insert = self._insert()
        statement = (
            insert(store_renders)
            .values(key=key, claimed_at=dt.datetime.now(dt.UTC), claimed_by=by[:100])
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(store_renders.c.key)
        )
        with self._write() as conn, conn.begin():
            return conn.execute(statement).first() is not None

    def put_render(self, key: str, body: bytes, mimetype: str, by: str) -> None:
        """Keep a rendered answer for the other workers (replacing any older one)."""
        now = dt.datetime.now(dt.UTC)
        row = {
            "key": key,
            "claimed_at": now,
            "claimed_by": by[:100],
            "stored_at": now,
            "mimetype": mimetype[:100],
            "body": zlib.compress(body, 1),
        }
        insert = self._insert()
        statement = insert(store_renders).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={name: statement.excluded[name] for name in ("stored_at", "mimetype", "body")},
        )
        with self._write() as conn, conn.begin():
            conn.execute(statement)

    def renders(self, keys: Iterable[str]) -> dict[str, SharedRender]:
        """The answers other workers kept for ``keys`` (those rendered so far)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, SharedRender] = {}
        if not wanted:
            return found
        self._ready()
        r = store_renders
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(
                    select(r.c.key, r.c.body, r.c.mimetype, r.c.stored_at).where(
                        r.c.key.in_(wanted[start : start + 500]), r.c.body.is_not(None)
                    )
                )
                for row in rows:
                    found[row.key] = SharedRender(
                        zlib.decompress(row.body), row.mimetype, _utc(row.stored_at)
                    )
        return found

    def prune_renders(self, before: dt.datetime) -> int:
        """Forget the shared renders claimed before ``before``; returns how many."""
        with self._write() as conn, conn.begin():
            return conn.execute(
                delete(store_renders).where(store_renders.c.claimed_at < before)
            ).rowcount

    def history_day(
        self, day: dt.date, indicator_ids: Iterable[str], scope_prefix: str
    ) -> tuple[pd.DataFrame, dt.datetime | None]:
        """One day's recorded values of ``indicator_ids`` for every scope starting with
        ``scope_prefix`` (e.g. ``team:``), and when the latest of them was recorded.

        Columns: ``indicator_id``, ``scope``, ``value``, ``numerator``, ``denominator``.
        """
        self._ready()
        h = store_history
        query = select(
            h.c.indicator_id, h.c.scope, h.c.value, h.c.numerator, h.c.denominator, h.c.recorded_at
        ).where(
            h.c.day == day,
            h.c.indicator_id.in_(sorted(set(indicator_ids))),
            h.c.scope.startswith(scope_prefix, autoescape=True),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame(
            {
                "indicator_id": pd.Series([r.indicator_id for r in rows], dtype="object"),
                "scope": pd.Series([r.scope for r in rows], dtype="object"),
                "value": pd.Series([r.value for r in rows], dtype="float64"),
                "numerator": pd.Series([r.numerator for r in rows], dtype="float64"),
                "denominator": pd.Series([r.denominator for r in rows], dtype="float64"),
            }
        )
        recorded = max((_utc(r.recorded_at) for r in rows), default=None)
        return frame, recorded

    def history_scopes_since(self, recorded: dt.datetime) -> set[str]:
        """The scopes with a history row written after ``recorded`` (a history stamp)."""
        self._ready()
        h = store_history
        query = select(h.c.scope).where(h.c.recorded_at > recorded).distinct()
        with self.engine.connect() as conn:
            return set(conn.scalars(query).all())

    def histories(self, indicator_ids: Iterable[str], scopes: Iterable[str]) -> pd.DataFrame:
        """Daily values of several indicators for several scopes in one query (a page's tiles),
        by indicator, scope and day. Columns: ``indicator_id``, ``scope`` and those of
        ``history``."""
        self._ready()
        h = store_history
        query = (
            select(h.c.indicator_id, h.c.scope, h.c.day, h.c.value, h.c.numerator, h.c.denominator)
            .where(
                h.c.indicator_id.in_(sorted(set(indicator_ids))),
                h.c.scope.in_(sorted(set(scopes))),
            )
            .order_by(h.c.indicator_id, h.c.scope, h.c.day)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return pd.DataFrame(
            {
                "indicator_id": pd.Series([r.indicator_id for r in rows], dtype="object"),
                "scope": pd.Series([r.scope for r in rows], dtype="object"),
                "day": pd.to_datetime([r.day for r in rows]).astype("datetime64[ns]"),
                "value": pd.Series([r.value for r in rows], dtype="float64"),
                "numerator": pd.Series([r.numerator for r in rows], dtype="float64"),
                "denominator": pd.Series([r.denominator for r in rows], dtype="float64"),
            }
        )

    def history(self, indicator_id: str, scope: str, since: dt.date | None = None) -> pd.DataFrame:
        """Daily values of one indicator for one scope, oldest first.

        Columns: ``day`` (datetime64[ns]), ``value``, ``numerator``, ``denominator`` (float64,
        NaN where unknown).
        """
        self._ready()
        h = store_history
        query = (
            select(h.c.day, h.c.value, h.c.numerator, h.c.denominator)
            .where(h.c.indicator_id == indicator_id, h.c.scope == scope)
            .order_by(h.c.day)
        )
        if since is not None:
            query = query.where(h.c.day >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return pd.DataFrame(
            {
                "day": pd.to_datetime([r.day for r in rows]).astype("datetime64[ns]"),
                "value": pd.Series([r.value for r in rows], dtype="float64"),
                "numerator": pd.Series([r.numerator for r in rows], dtype="float64"),
                "denominator": pd.Series([r.denominator for r in rows], dtype="float64"),
            }
        )
