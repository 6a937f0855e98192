"""The audit trail on SQLite and PostgreSQL: record, query by user and by child, fail closed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dashboard.audit import AuditError, AuditLog
from dashboard.model import Scope


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, 0, tzinfo=dt.UTC)


def fill(log: AuditLog) -> list[int]:
    return [
        log.record("ateam", "/team", "overdue_steps", Scope.team(10), 3, [501, 502, 503], when=at(20)),
        log.record("bsm", "/team", "unallocated", "service:2", 2, [502, 777], when=at(21)),
        log.record(
            "ateam", "/export/overdue_steps", "overdue_steps", "team:10", 4, [503, 504, 503, 504],
            action="export", when=at(22),
        ),
        log.record("ddir", "/borough", "rag_matrix", "borough", 12, [], when=at(23)),
    ]  # fmt: skip


def test_who_looked_at_this_child(any_db_url):
    log = AuditLog(any_db_url)
    ids = fill(log)
    seen_503 = log.query(person_id=503)
    # Newest first: the export on the 22nd, then the view on the 20th. Nobody else saw 503.
    assert [(e.username, e.action, e.occurred_at) for e in seen_503] == [
        ("ateam", "export", at(22)),
        ("ateam", "view", at(20)),
    ]
    assert [e.event_id for e in log.query(person_id=502)] == [ids[1], ids[0]]
    assert {e.username for e in log.query(person_id=502)} == {"ateam", "bsm"}
    assert log.query(person_id=999) == []
    log.dispose()


def test_events_keep_what_where_how_many_and_which_children(any_db_url):
    log = AuditLog(any_db_url)
    ids = fill(log)
    export = log.query(username="ateam", limit=1)[0]
    assert export.event_id == ids[2]
    assert export.route == "/export/overdue_steps"
    assert export.indicator_id == "overdue_steps"
    assert export.scope == "team:10"
    assert export.row_count == 4
    assert export.person_ids == (503, 504)  # each child once
    aggregate = log.query(username="ddir")[0]
    assert aggregate.person_ids == () and aggregate.row_count == 12
    log.dispose()


def test_query_filters_by_user_and_time(any_db_url):
    log = AuditLog(any_db_url)
    fill(log)
    assert [e.username for e in log.query()] == ["ddir", "ateam", "bsm", "ateam"]
    assert [e.occurred_at for e in log.query(username="ATeam")] == [at(22), at(20)]
    assert [e.username for e in log.query(since=dt.date(2026, 11, 21))] == ["ddir", "ateam", "bsm"]
    # A bare date for `until` includes that whole day.
    assert [e.username for e in log.query(until=dt.date(2026, 11, 21))] == ["bsm", "ateam"]
    assert [e.username for e in log.query(since=at(21), until=at(22))] == ["bsm"]
    assert [e.username for e in log.query(username="ateam", person_id=502)] == ["ateam"]
    assert len(log.query(limit=2)) == 2
    with pytest.raises(ValueError):
        log.query(limit=0)
    log.dispose()


def test_the_default_clock_and_numpy_person_ids(any_db_url):
    moments = iter([at(24, 15)])
    log = AuditLog(any_db_url, clock=lambda: next(moments))
    log.record("ateam", "/team", None, "team:10", 2, np.array([7, 8], dtype=np.int64))
    (event,) = log.query(person_id=8)
    assert event.occurred_at == at(24, 15) and event.person_ids == (7, 8)
    assert event.indicator_id is None
    log.dispose()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"action": "print"}, "action"),
        ({"row_count": -1}, "row_count"),
        ({"person_ids": [1, "2; DROP TABLE audit_events"]}, "person id"),
        ({"person_ids": [1.5]}, "person id"),
        ({"person_ids": [None]}, "person id"),
        ({"username": ""}, "username"),
    ],
)
def test_nonsense_is_refused_before_anything_is_written(any_db_url, changes, message):
    log = AuditLog(any_db_url)
    args = {
        "username": "ateam",
        "route": "/team",
        "indicator_id": "x",
        "scope": "team:10",
        "row_count": 1,
        "person_ids": [1],
        "action": "view",
    } | changes
    with pytest.raises(ValueError, match=message):
        log.record(**args)
    assert log.query() == []
    log.dispose()


def test_audit_fails_closed_when_the_sqlite_store_is_broken(tmp_path: Path):
    path = tmp_path / "store.sqlite"
    log = AuditLog(f"sqlite:///{path}")
    log.record("ateam", "/team", "x", "team:10", 1, [1])
    log.dispose()
    path.write_bytes(b"this is not a database" * 100)  # the store file is corrupted
    with pytest.raises(AuditError, match="cannot be shown"):
        log.record("ateam", "/team", "x", "team:10", 1, [1])


@pytest.mark.postgres
def test_audit_fails_closed_when_the_postgres_store_goes_away(make_pg_database, pg_admin_url):
    url = make_pg_database()
    log = AuditLog(url)
    log.record("ateam", "/team", "x", "team:10", 1, [1])
    log.dispose()
    name = make_url(url).database
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
    with pytest.raises(AuditError):
        log.record("ateam", "/team", "x", "team:10", 1, [1])


def test_audit_fails_closed_when_the_store_is_unreachable_from_the_start():
    log = AuditLog("postgresql+psycopg://nobody@127.0.0.1:1/nowhere?connect_timeout=2")
    with pytest.raises(AuditError):
        log.record("ateam", "/team", "x", "team:10", 1, [1])
