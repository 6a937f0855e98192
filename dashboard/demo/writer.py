"""Bulk writing of generated columns, never leaving a half-built database behind.

SQLite: the borough is built in ``<file>.partial`` with journalling off (nothing to protect in a
file nobody reads yet) and renamed over the target only when complete. PostgreSQL: everything
happens in one transaction; tables are built in a staging schema with psycopg 3 ``COPY``, indexes
and foreign keys are added after the load (much faster than checking row by row), and the old
tables are swapped out just before the commit. Any failure rolls back and leaves the target as
it was.

Columns arrive as numpy arrays: integers and day numbers with ``NULL`` for no value, strings as
object arrays with ``None``. Generated text never contains tabs, newlines or backslashes, so COPY's
text format needs no escaping.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

import numpy as np
from sqlalchemy import Date, DateTime, Integer, Numeric, create_engine, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable, Table

from dashboard import schema
from dashboard.demo.calendar import NULL

_COPY_BLOCK = 200_000


def _kind(table: Table, column: str) -> str:
    col_type = table.c[column].type
    if isinstance(col_type, DateTime):
        return "timestamp"
    if isinstance(col_type, Date):
        return "date"
    if isinstance(col_type, Integer):
        return "int"
    if isinstance(col_type, Numeric):
        return "money"
    return "text"


def _columns_of(table: Table, frame: dict[str, np.ndarray]) -> list[str]:
    wanted = [c.name for c in table.columns if c.name != "updated_on"]
    if set(frame) != set(wanted):
        raise ValueError(
            f"{table.name}: generated columns {sorted(frame)} differ from the schema's {sorted(wanted)}"
        )
    return wanted


def _as_python(kind: str, values: np.ndarray) -> list:
    """One column as Python values for sqlite3 (None for no value)."""
    if kind == "text":
        return values.tolist()
    if kind == "money":
        return np.round(values.astype(float), 2).tolist()
    ints = values.astype(np.int64)
    missing = ints == NULL
    if kind == "date":
        out = np.datetime_as_string(np.where(missing, 0, ints).astype("datetime64[D]")).astype(
            object
        )
    else:
        out = ints.astype(object)
    if missing.any():
        out[missing] = None
    return out.tolist()


def _as_copy_text(kind: str, values: np.ndarray) -> np.ndarray:
    """One column as COPY text fields (``\\N`` for no value)."""
    if kind == "text":
        out = values.astype(object)
        out[np.equal(out, None)] = "\\N"
        return out.astype(str)
    if kind == "money":
        return np.char.mod("%.2f", values.astype(float))
    ints = values.astype(np.int64)
    missing = ints == NULL
    if kind == "date":
        out = np.datetime_as_string(np.where(missing, 0, ints).astype("datetime64[D]"))
    else:
        out = ints.astype(str)
    out = out.astype(object)
    out[missing] = "\\N"
    return out.astype(str)


class SqliteWriter:
    def __init__(self, path: Path, updated_on: dt.datetime) -> None:
        self.target = path
        self.partial = path.with_name(path.name + ".partial")
        self.updated_on = updated_on.strftime("%Y-%m-%d %H:%M:%S.000000")
        self.rows: dict[str, int] = {}
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.partial.unlink(missing_ok=True)
        self._db = sqlite3.connect(self.partial, isolation_level=None)
        db = self._db
        # Load-time settings only: the file is private until renamed.
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -200000")
        # temp_store stays FILE: index builds at 100x would otherwise sort gigabytes in memory.
        dialect = sqlite.dialect()
        db.execute("BEGIN")
        for table in schema.metadata.sorted_tables:
            db.execute(str(CreateTable(table).compile(dialect=dialect)))

    def write(self, name: str, frame: dict[str, np.ndarray]) -> None:
        table = schema.metadata.tables[name]
        names = _columns_of(table, frame)
        n = len(frame[names[0]])
        if n == 0:
            return
        cols = [_as_python(_kind(table, c), frame[c]) for c in names]
        cols.append([self.updated_on] * n)
        marks = ", ".join("?" * (len(names) + 1))
        # Table and column names come from schema.py, never from input.
        sql = f'INSERT INTO "{name}" ({", ".join(names)}, updated_on) VALUES ({marks})'  # noqa: S608
        self._db.executemany(sql, zip(*cols, strict=True))
        self.rows[name] = self.rows.get(name, 0) + n

    def finish(self) -> None:
        db = self._db
        dialect = sqlite.dialect()
        for table in schema.metadata.sorted_tables:
            for index in sorted(table.indexes, key=lambda i: i.name):
                db.execute(str(CreateIndex(index).compile(dialect=dialect)))
        db.execute("COMMIT")
        # Sampled statistics: enough for the planner, and seconds rather than minutes at 100x.
        db.execute("PRAGMA analysis_limit = 2000")
        db.execute("ANALYZE")
        db.execute("PRAGMA journal_mode = DELETE")
        db.close()
        self._db = None
        # A stale journal beside the old file would be applied to the new one: remove it first.
        for suffix in ("-wal", "-shm", "-journal"):
            Path(str(self.target) + suffix).unlink(missing_ok=True)
        os.replace(self.partial, self.target)

    def abort(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None
        self.partial.unlink(missing_ok=True)


class PostgresWriter:
    STAGING = "csc_demo_build"

    def __init__(self, url: str, updated_on: dt.datetime) -> None:
        self.url = url
        self.updated_on = updated_on.strftime("%Y-%m-%d %H:%M:%S")
        self.rows: dict[str, int] = {}
        self._engine = None
        self._conn = None

    def open(self) -> None:
        self._engine = create_engine(self.url)
        self._conn = self._engine.connect()
        conn = self._conn
        self.target_schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.execute(text(f"DROP SCHEMA IF EXISTS {self.STAGING} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {self.STAGING}"))
        staged = conn.execution_options(schema_translate_map={None: self.STAGING})
        for table in schema.metadata.sorted_tables:
            staged.execute(CreateTable(table, include_foreign_key_constraints=[]))

    def write(self, name: str, frame: dict[str, np.ndarray]) -> None:
        table = schema.metadata.tables[name]
        names = _columns_of(table, frame)
        n = len(frame[names[0]])
        if n == 0:
            return
        cursor = self._conn.connection.driver_connection.cursor()
        statement = f'COPY {self.STAGING}."{name}" ({", ".join(names)}, updated_on) FROM STDIN'
        with cursor.copy(statement) as copy:
            for lo in range(0, n, _COPY_BLOCK):
                hi = min(n, lo + _COPY_BLOCK)
                cols = [_as_copy_text(_kind(table, c), frame[c][lo:hi]).tolist() for c in names]
                cols.append([self.updated_on] * (hi - lo))
                block = "\n".join("\t".join(row) for row in zip(*cols, strict=True)) + "\n"
                copy.write(block.encode())
        self.rows[name] = self.rows.get(name, 0) + n

    def finish(self) -> None:
        conn = self._conn
        staged = conn.execution_options(schema_translate_map={None: self.STAGING})
        for table in schema.metadata.sorted_tables:
            for index in sorted(table.indexes, key=lambda i: i.name):
                staged.execute(CreateIndex(index))
            for fk in sorted(table.foreign_key_constraints, key=lambda c: c.column_keys):
                staged.execute(AddConstraint(fk))
        # Swap: the old tables go, the new ones move in, all inside the one transaction.
        for name in reversed([t.name for t in schema.metadata.sorted_tables]):
            conn.execute(text(f'DROP TABLE IF EXISTS "{self.target_schema}"."{name}" CASCADE'))
        for name in [t.name for t in schema.metadata.sorted_tables]:
            conn.execute(
                text(f'ALTER TABLE {self.STAGING}."{name}" SET SCHEMA "{self.target_schema}"')
            )
        conn.execute(text(f"DROP SCHEMA {self.STAGING}"))
        conn.commit()
        for name in schema.metadata.tables:
            conn.execute(text(f'ANALYZE "{self.target_schema}"."{name}"'))
        conn.commit()
        self._close()

    def abort(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rollback()
            finally:
                self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def open_writer(url: str, updated_on: dt.datetime) -> SqliteWriter | PostgresWriter:
    """A writer for the URL's database: SQLite file or PostgreSQL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError("the SQLite URL must name a file, e.g. sqlite:///data/demo.sqlite")
        return SqliteWriter(Path(parsed.database), updated_on)
    if backend == "postgresql":
        return PostgresWriter(url, updated_on)
    raise ValueError(f"demo data can be written to SQLite or PostgreSQL, not {backend!r}")
