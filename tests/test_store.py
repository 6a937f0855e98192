"""SnapshotStore on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import threading

import pandas as pd
import pytest
from sqlalchemy import create_engine, func, inspect, select, text

from dashboard.store import (
    ATTEMPTS_KEPT,
    ERROR_MAX_CHARS,
    HistoryRow,
    SnapshotStore,
    store_frames,
    store_snapshots,
)

AS_OF = dt.date(2026, 3, 31)
T0 = dt.datetime(2026, 3, 31, 6, 0, tzinfo=dt.UTC)


def typed_frame(rows: int = 3) -> pd.DataFrame:
    """Every dtype run_dataset produces, plus pandas 3's default str, each with a missing value."""
    base = pd.DataFrame(
        {
            "child_id": pd.array([101, None, 103], dtype="Int64"),
            "weekly_cost": [1250.5, float("nan"), 0.0],
            "due_date": pd.to_datetime(["2026-03-01", None, "2026-04-15"]).astype("datetime64[ns]"),
            "team": pd.array(["Assessment 1", None, "CLA 2"], dtype="string"),
            "label": pd.Series(["a", None, "c"], dtype="str"),
            "seen_alone": pd.array([True, None, False], dtype="boolean"),
        }
    )
    return base.head(rows).reset_index(drop=True)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@pytest.fixture
def store(any_db_url: str):
    store = SnapshotStore(any_db_url, retention=2)
    yield store
    store.dispose()


def test_round_trip_keeps_every_dtype_and_the_metadata(store: SnapshotStore) -> None:
    frame = typed_frame()
    version = store.write_snapshot(
        "open_steps", frame, as_of=AS_OF, computed_at=at(0), duration_s=1.25
    )
    snapshot = SnapshotStore(store.url.render_as_string(hide_password=False)).latest("open_steps")

    assert version == 1
    pd.testing.assert_frame_equal(snapshot.frame, frame, check_dtype=True, check_index_type=True)
    assert list(snapshot.frame.dtypes.astype(str)) == [
        "Int64",
        "float64",
        "datetime64[ns]",
        "string",
        "str",
        "boolean",
    ]
    meta = snapshot.meta
    assert (meta.dataset_id, meta.version, meta.as_of, meta.status, meta.error) == (
        "open_steps",
        1,
        AS_OF,
        "ok",
        None,
    )
    assert meta.computed_at == at(0) and meta.computed_at.tzinfo is not None
    assert (meta.duration_s, meta.row_count) == (1.25, 3)


def test_an_empty_frame_round_trips(store: SnapshotStore) -> None:
    frame = typed_frame().iloc[0:0].reset_index(drop=True)
    store.write_snapshot("empty", frame, as_of=AS_OF, computed_at=at(0), duration_s=0.0)
    snapshot = store.latest("empty")
    pd.testing.assert_frame_equal(snapshot.frame, frame)
    assert snapshot.meta.row_count == 0


def test_versions_increase_and_a_failure_keeps_the_last_good(store: SnapshotStore) -> None:
    assert store.latest("open_steps") is None
    assert (
        store.write_snapshot(
            "open_steps", typed_frame(1), as_of=AS_OF, computed_at=at(0), duration_s=1
        )
        == 1
    )
    assert (
        store.write_snapshot(
            "open_steps", typed_frame(2), as_of=AS_OF, computed_at=at(15), duration_s=1
        )
        == 2
    )
    store.record_failure(
        "open_steps",
        "no such table: workflow_steps",
        as_of=AS_OF,
        computed_at=at(30),
        duration_s=0.5,
    )
    assert (
        store.write_snapshot("other", typed_frame(3), as_of=AS_OF, computed_at=at(31), duration_s=1)
        == 1
    )

    latest = store.latest("open_steps")
    assert latest.meta.version == 2 and len(latest.frame) == 2

    status = store.status()
    assert set(status) == {"open_steps", "other"}
    steps = status["open_steps"]
    assert steps.last_good.version == 2 and steps.last_good.status == "ok"
    assert steps.last_attempt.version == 3
    assert steps.last_attempt.status == "failed"
    assert steps.last_attempt.error == "no such table: workflow_steps"
    assert steps.last_attempt.computed_at == at(30)
    assert status["other"].last_good == status["other"].last_attempt

    # The next good run follows the failure's version: versions never repeat.
    assert (
        store.write_snapshot(
            "open_steps", typed_frame(3), as_of=AS_OF, computed_at=at(45), duration_s=1
        )
        == 4
    )


def test_a_dataset_that_only_ever_failed_has_no_good_snapshot(store: SnapshotStore) -> None:
    store.record_failure("broken", "bad SQL", as_of=AS_OF, computed_at=at(0), duration_s=0)
    assert store.latest("broken") is None
    assert store.status()["broken"].last_good is None
    assert store.status()["broken"].last_attempt.error == "bad SQL"


def _frame_versions(store: SnapshotStore, dataset_id: str) -> list[int]:
    with store.engine.connect() as conn:
        return list(
            conn.scalars(
                select(store_snapshots.c.version)
                .join(store_frames, store_frames.c.snapshot_id == store_snapshots.c.snapshot_id)
                .where(store_snapshots.c.dataset_id == dataset_id)
                .order_by(store_snapshots.c.version)
            )
        )


def test_retention_deletes_old_frames_and_keeps_metadata_small(store: SnapshotStore) -> None:
    for minute in range(4):
        store.write_snapshot(
            "open_steps", typed_frame(), as_of=AS_OF, computed_at=at(minute), duration_s=1
        )
    store.write_snapshot("other", typed_frame(), as_of=AS_OF, computed_at=at(9), duration_s=1)
    assert _frame_versions(store, "open_steps") == [3, 4]  # retention=2
    assert _frame_versions(store, "other") == [1]

    # A long outage: many failures. The last good frames stay; metadata rows stay bounded.
    for minute in range(ATTEMPTS_KEPT + 5):
        store.record_failure(
            "open_steps", "source down", as_of=AS_OF, computed_at=at(10 + minute), duration_s=0
        )
    assert _frame_versions(store, "open_steps") == [3, 4]
    assert store.latest("open_steps").meta.version == 4
    with store.engine.connect() as conn:
        rows = conn.scalar(select(func.count()).where(store_snapshots.c.dataset_id == "open_steps"))
    assert rows == ATTEMPTS_KEPT + 2  # the newest attempts plus the two retained good versions


def test_long_errors_are_truncated(store: SnapshotStore) -> None:
    store.record_failure("x", "e" * 10_000, as_of=AS_OF, computed_at=at(0), duration_s=0)
    error = store.status()["x"].last_attempt.error
    assert len(error) == ERROR_MAX_CHARS and error.endswith("…")


def test_version_token_changes_on_new_versions_failures_and_history(store: SnapshotStore) -> None:
    tokens = [store.version_token()]
    store.write_snapshot("a", typed_frame(), as_of=AS_OF, computed_at=at(0), duration_s=1)
    tokens.append(store.version_token())
    store.latest("a")
    store.status()
    assert store.version_token() == tokens[-1]  # reads change nothing
    store.record_failure("a", "boom", as_of=AS_OF, computed_at=at(1), duration_s=1)
    tokens.append(store.version_token())
    store.write_snapshot("b", typed_frame(), as_of=AS_OF, computed_at=at(1), duration_s=1)
    tokens.append(store.version_token())
    store.write_history(AS_OF, [HistoryRow("overdue_steps", "borough", 17.0, None, None)])
    tokens.append(store.version_token())
    assert len(set(tokens)) == len(tokens)


def test_a_warm_read_reuses_the_decoded_frame(store: SnapshotStore) -> None:
    store.write_snapshot("a", typed_frame(), as_of=AS_OF, computed_at=at(0), duration_s=1)
    first = store.latest("a")
    second = store.latest("a")
    assert second.frame is first.frame  # no second Parquet decode

    other_process_view = SnapshotStore(store.url.render_as_string(hide_password=False))
    assert other_process_view.latest("a").frame is not first.frame  # the cache is per instance

    store.write_snapshot("a", typed_frame(1), as_of=AS_OF, computed_at=at(1), duration_s=1)
    third = store.latest("a")
    assert third.meta.version == 2 and len(third.frame) == 1
    other_process_view.dispose()


def test_a_write_that_fails_halfway_leaves_the_previous_version(store: SnapshotStore) -> None:
    store.write_snapshot("a", typed_frame(), as_of=AS_OF, computed_at=at(0), duration_s=1)
    token = store.version_token()
    # A real frame Parquet cannot hold: the error comes after the metadata row is inserted.
    unstorable = pd.DataFrame({"mixed": pd.Series([1, "two", b"\x03"], dtype=object)})
    with pytest.raises(Exception, match="mixed"):
        store.write_snapshot("a", unstorable, as_of=AS_OF, computed_at=at(1), duration_s=1)

    latest = store.latest("a")
    assert latest.meta.version == 1
    pd.testing.assert_frame_equal(latest.frame, typed_frame())
    assert store.status()["a"].last_attempt.version == 1  # the metadata row was rolled back
    assert store.version_token() == token
    assert (
        store.write_snapshot("a", typed_frame(2), as_of=AS_OF, computed_at=at(2), duration_s=1) == 2
    )


def test_naive_computed_at_is_refused(store: SnapshotStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.write_snapshot(
            "a", typed_frame(), as_of=AS_OF, computed_at=dt.datetime(2026, 1, 1), duration_s=1
        )
    assert store.latest("a") is None


READER = textwrap.dedent(
    """
    import json, sys
    from dashboard.store import SnapshotStore
    store = SnapshotStore(sys.argv[1])
    final = int(sys.argv[2])
    seen, bad, reads = set(), [], 0
    while True:
        snapshot = store.latest("growing")
        if snapshot is None:
            continue
        reads += 1
        meta, frame = snapshot.meta, snapshot.frame
        seen.add(meta.version)
        if len(frame) != meta.row_count or not (frame["v"] == meta.version).all():
            bad.append([meta.version, meta.row_count, len(frame)])
        if reads == 1:
            print("ready", flush=True)  # reading: the writer may start (on a loaded machine
            # the writer could otherwise finish before the reader's first look)
        if meta.version == final:
            break
    print(json.dumps({"seen": sorted(seen), "bad": bad, "reads": reads}), flush=True)
    """
)


def test_a_reader_in_another_process_never_sees_half_a_version(any_db_url: str) -> None:
    final = 60
    writer = SnapshotStore(any_db_url, retention=1)  # retention 1: pruning races the reader too
    writer.create_schema()
    writer.write_snapshot(
        "growing",
        pd.DataFrame({"v": pd.array([1], dtype="Int64")}),
        as_of=AS_OF,
        computed_at=at(0),
        duration_s=0,
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, any_db_url, str(final)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "ready"
        for version in range(2, final + 1):
            frame = pd.DataFrame(
                {
                    "v": pd.array([version] * version, dtype="Int64"),
                    "note": pd.array([f"row {i}" for i in range(version)], dtype="string"),
                }
            )
            assert (
                writer.write_snapshot(
                    "growing", frame, as_of=AS_OF, computed_at=at(version), duration_s=0
                )
                == version
            )
        out, _ = reader.communicate(timeout=120)
    finally:
        reader.kill()
        writer.dispose()
    result = json.loads(out)
    assert result["bad"] == []
    assert result["seen"][-1] == final and len(result["seen"]) >= 2


@pytest.mark.postgres
def test_postgres_store_reconnects_after_its_connections_are_killed(
    make_pg_database, pg_admin_url: str
) -> None:
    url = make_pg_database()
    store = SnapshotStore(url)
    store.write_snapshot("a", typed_frame(), as_of=AS_OF, computed_at=at(0), duration_s=1)
    assert store.latest("a").meta.version == 1
    database = url.rsplit("/", 1)[1]
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        )
    admin.dispose()
    assert killed >= 1  # the store's pooled connection was really cut
    assert store.ping()
    assert store.latest("a").meta.version == 1
    store.dispose()


def test_ping_says_whether_the_store_is_reachable(tmp_path) -> None:
    assert SnapshotStore(f"sqlite:///{tmp_path / 'store.sqlite'}").ping()
    closed_port = SnapshotStore("postgresql://postgres@127.0.0.1:9/nowhere")
    assert closed_port.ping() is False
    closed_port.dispose()


def test_sqlite_store_uses_wal_and_creates_its_folder(tmp_path) -> None:
    store = SnapshotStore(f"sqlite:///{tmp_path / 'data' / 'store.sqlite'}")
    store.create_schema()
    store.create_schema()  # idempotent
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    assert {"store_snapshots", "store_frames", "store_history"} <= set(
        inspect(store.engine).get_table_names()
    )
    store.dispose()


def test_history_upserts_by_day_indicator_and_scope(store: SnapshotStore) -> None:
    d1, d2, d3 = dt.date(2026, 3, 29), dt.date(2026, 3, 30), dt.date(2026, 3, 31)
    store.write_history(d2, [HistoryRow("overdue_steps", "borough", 12.0, None, None)])
    store.write_history(d1, [HistoryRow("overdue_steps", "borough", 10.0, None, None)])
    store.write_history(
        d3,
        [
            HistoryRow("overdue_steps", "borough", 17.0, None, None),
            HistoryRow("overdue_steps", "team:12", 4.0, None, None),
            HistoryRow("visits_in_time", "borough", 0.75, 30.0, 40.0),
        ],
    )
    # A second refresh on the same day replaces that day's value.
    store.write_history(d3, [HistoryRow("overdue_steps", "borough", 15.0, None, None)])

    borough = store.history("overdue_steps", "borough")
    assert list(borough["day"]) == [pd.Timestamp(d1), pd.Timestamp(d2), pd.Timestamp(d3)]
    assert list(borough["value"]) == [10.0, 12.0, 15.0]
    assert borough["numerator"].isna().all()
    assert str(borough["day"].dtype) == "datetime64[ns]"
    assert list(borough.columns) == ["day", "value", "numerator", "denominator"]

    assert list(store.history("overdue_steps", "borough", since=d2)["value"]) == [12.0, 15.0]
    assert list(store.history("overdue_steps", "team:12")["value"]) == [4.0]
    visits = store.history("visits_in_time", "borough")
    assert (visits["numerator"][0], visits["denominator"][0]) == (30.0, 40.0)

    empty = store.history("nothing", "borough")
    assert len(empty) == 0 and str(empty["day"].dtype) == "datetime64[ns]"


def test_many_processes_may_create_the_schema_at_once(any_db_url: str) -> None:
    # Web workers and the scheduler all start together against a fresh store. On SQLite the
    # switch to WAL could answer "database is locked" at once (about one start in 30), so a
    # new file is raced 20 times.
    sqlite = any_db_url.startswith("sqlite")
    for attempt in range(20 if sqlite else 1):
        url = any_db_url.replace("db.sqlite", f"db{attempt}.sqlite") if sqlite else any_db_url
        stores = [SnapshotStore(url) for _ in range(6)]
        barrier = threading.Barrier(len(stores))
        errors: list[BaseException] = []

        def create(store: SnapshotStore, barrier=barrier, errors=errors) -> None:
            barrier.wait()
            try:
                store.create_schema()
                store.status()
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=create, args=(store,)) for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for store in stores:
            store.dispose()
        assert errors == [], f"attempt {attempt}"
