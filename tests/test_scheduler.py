"""The one scheduler: its APScheduler jobs, its lock, and real competing scheduler processes."""

from __future__ import annotations

import datetime as dt
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_SUBMITTED
from sqlalchemy import create_engine, text
from tiny_source import AS_OF, BAD_HEADER, TEAMS_SQL, WORKERS_SQL, build_source, write_queries

from dashboard.config import Settings
from dashboard.locks import FileSchedulerLock, PostgresSchedulerLock, scheduler_lock
from dashboard.refresher import (
    RESCAN_JOB_ID,
    RefreshJobs,
    start_background_scheduler,
)
from dashboard.store import SnapshotStore

# Generous deadlines so a loaded CI machine never fails a test that works; nothing is timed.
DEADLINE_S = 90


def settings_for(tmp_path: Path, store_url: str | None = None, **files: str) -> Settings:
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    if not (tmp_path / "source.sqlite").exists():
        build_source(source)
    queries = write_queries(
        tmp_path / "queries", **(files or {"teams": TEAMS_SQL, "workers": WORKERS_SQL})
    )
    return Settings(
        source_url=source,
        store_url=store_url or f"sqlite:///{tmp_path / 'store.sqlite'}",
        queries_dir=queries,
        as_of=AS_OF,
    )


def test_one_job_per_dataset_with_coalesce_max_instances_and_misfire_grace(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, teams=TEAMS_SQL, workers=WORKERS_SQL, bad_header=BAD_HEADER)
    store = SnapshotStore.from_settings(settings)
    refresh_jobs = RefreshJobs(settings, store)
    refresh_jobs.start(paused=True)
    scheduler = refresh_jobs.scheduler
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {
            "dataset:teams",
            "dataset:workers",
            "dataset:bad_header",
            RESCAN_JOB_ID,
        }
        expected = {  # refresh interval and misfire grace (half of it), from the files' headers
            "dataset:teams": (dt.timedelta(minutes=15), 450),
            "dataset:workers": (dt.timedelta(hours=1), 1800),
            "dataset:bad_header": (dt.timedelta(minutes=15), 450),  # retried until fixed
        }
        now = dt.datetime.now(dt.UTC)
        for job_id, (interval, grace) in expected.items():
            job = jobs[job_id]
            assert job.trigger.interval == interval
            assert job.coalesce is True
            assert job.max_instances == 1
            assert job.misfire_grace_time == grace
            assert job.next_run_time <= now  # first run straight away
            assert job.args == (job_id.split(":", 1)[1],)
        assert jobs[RESCAN_JOB_ID].coalesce and jobs[RESCAN_JOB_ID].max_instances == 1
    finally:
        scheduler.shutdown(wait=False)
        store.dispose()


def test_the_rescan_follows_files_added_removed_and_retimed(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, teams=TEAMS_SQL, workers=WORKERS_SQL)
    store = SnapshotStore.from_settings(settings)
    refresh_jobs = RefreshJobs(settings, store)
    refresh_jobs.start(paused=True)
    scheduler = refresh_jobs.scheduler
    try:
        (settings.queries_dir / "workers.sql").unlink()
        write_queries(settings.queries_dir, teams=TEAMS_SQL.replace("refresh: 15m", "refresh: 5m"))
        write_queries(settings.queries_dir, teams_copy=TEAMS_SQL)
        scheduler.get_job(RESCAN_JOB_ID).func()

        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"dataset:teams", "dataset:teams_copy", RESCAN_JOB_ID}
        assert jobs["dataset:teams"].trigger.interval == dt.timedelta(minutes=5)
        assert jobs["dataset:teams"].misfire_grace_time == 150
        assert jobs["dataset:teams_copy"].trigger.interval == dt.timedelta(minutes=15)
    finally:
        scheduler.shutdown(wait=False)
        store.dispose()


SLOWISH_SQL = """\
-- title: Takes a moment (counts to three million)
-- refresh: 15m
-- columns:
--   n: int
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000)
SELECT count(*) AS n FROM c
"""


def test_shutdown_during_a_refresh_lets_it_finish_without_deadlock(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, slowish=SLOWISH_SQL)
    store = SnapshotStore.from_settings(settings)
    # With a history hook, the finishing job changes the scheduler (it schedules the history
    # run) while shutdown is waiting for it: the case that must not deadlock.
    refresh_jobs = RefreshJobs(settings, store, after_refresh=lambda store, period: None)
    submitted = threading.Event()
    refresh_jobs.scheduler.add_listener(lambda event: submitted.set(), EVENT_JOB_SUBMITTED)
    refresh_jobs.start()
    assert submitted.wait(DEADLINE_S)
    stopping = threading.Thread(target=refresh_jobs.shutdown, daemon=True)
    stopping.start()
    stopping.join(DEADLINE_S)
    assert not stopping.is_alive(), "shutdown deadlocked"
    assert store.latest("slowish").frame["n"].tolist() == [3_000_000]
    store.dispose()


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def test_the_background_scheduler_refreshes_records_history_and_stops(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    history_calls = []
    handle = start_background_scheduler(
        settings, after_refresh=lambda store, period: history_calls.append(period.as_of)
    )
    store = SnapshotStore.from_settings(settings)
    try:
        _wait_until(lambda: set(store.status()) == {"teams", "workers"}, "both datasets")
        _wait_until(lambda: history_calls, "the history hook")
        assert history_calls[0] == AS_OF
        assert list(store.latest("teams").frame["team_id"]) == [20, 21]
    finally:
        handle.stop()
    assert not handle.running
    # Stopping released the lock: another scheduler could take over now.
    lock = scheduler_lock(settings.store_url)
    assert lock.acquire()
    lock.close()
    assert len(history_calls) == 1  # one debounced run after both datasets, not one each
    store.dispose()


def test_the_history_waits_for_every_datasets_first_refresh(tmp_path: Path, monkeypatch) -> None:
    """A history run while a dataset is still refreshing would record its values as failed
    (the web workers then compute those matrix cells themselves, thousands at regional scale):
    the first run waits for the slow dataset, however short the debounce."""
    monkeypatch.setattr("dashboard.refresher.HISTORY_DELAY", dt.timedelta(seconds=0.05))
    settings = settings_for(tmp_path, teams=TEAMS_SQL, workers=WORKERS_SQL, slowish=SLOWISH_SQL)
    seen: list[set[str]] = []
    handle = start_background_scheduler(
        settings, after_refresh=lambda store, period: seen.append(set(store.status()))
    )
    store = SnapshotStore.from_settings(settings)
    try:
        _wait_until(lambda: seen, "the history hook")
        assert seen[0] == {"teams", "workers", "slowish"}
        time.sleep(1)  # what a held-off run would have left behind has had time to run
    finally:
        handle.stop()
        store.dispose()
    assert seen == [{"teams", "workers", "slowish"}]  # once, after the last


def test_file_lock_excludes_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    first, second = scheduler_lock(url), scheduler_lock(url)
    assert isinstance(first, FileSchedulerLock)
    assert first.acquire()
    assert not second.acquire()
    assert f"pid {os.getpid()}" in second.holder()
    assert first.still_held()
    first.release()
    assert second.acquire()
    second.close()
    first.close()


@pytest.mark.postgres
def test_advisory_lock_excludes_a_second_holder_and_notices_a_lost_session(
    pg_url: str, pg_admin_url: str
) -> None:
    first, second = scheduler_lock(pg_url), scheduler_lock(pg_url)
    assert isinstance(first, PostgresSchedulerLock)
    assert first.acquire()
    assert not second.acquire()
    assert f"pid {os.getpid()}" in second.holder()
    assert first.still_held()

    # The store restarts (here: the lock's session is terminated): the lock is gone with it.
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'csc-dashboard scheduler%' AND datname = :db"
            ),
            {"db": pg_url.rsplit("/", 1)[1]},
        )
    admin.dispose()
    assert not first.still_held()
    assert second.acquire()
    second.close()
    first.close()


class SchedulerProcess:
    """A real ``python -m dashboard scheduler`` process whose log lines we can wait for."""

    def __init__(self, settings: Settings, *args: str) -> None:
        env = {
            **os.environ,
            "DASHBOARD_SOURCE_URL": settings.source_url,
            "DASHBOARD_STORE_URL": settings.store_url,
            "DASHBOARD_QUERIES_DIR": str(settings.queries_dir),
            "DASHBOARD_AS_OF": AS_OF.isoformat(),
            "DASHBOARD_LOG_LEVEL": "INFO",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dashboard", "scheduler", "--lock-retry", "1", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str) -> str:
        deadline = time.monotonic() + DEADLINE_S
        for line in self.lines:
            if re.search(pattern, line):
                return line
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.lines)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEADLINE_S)


def _two_schedulers_take_turns(settings: Settings) -> None:
    first = SchedulerProcess(settings)
    second = third = None
    try:
        first.wait_for("scheduler status=running jobs=2")
        second = SchedulerProcess(settings)
        standby = second.wait_for("scheduler status=standby")
        assert "another scheduler holds the" in standby
        assert f"pid {first.proc.pid}" in standby  # it says which one

        third = SchedulerProcess(settings, "--exit-if-locked")
        assert third.proc.wait(timeout=DEADLINE_S) == 1
        third.wait_for(f"another scheduler holds the .*pid {first.proc.pid}")

        first.proc.kill()  # dies without cleaning up
        first.proc.wait(timeout=DEADLINE_S)
        second.wait_for("scheduler status=running jobs=2")
        second.wait_for("refresh dataset=teams status=ok")

        second.proc.send_signal(signal.SIGTERM)
        second.wait_for("signal=SIGTERM status=stopping")
        second.wait_for("scheduler status=stopped")
        assert second.proc.wait(timeout=DEADLINE_S) == 0
    finally:
        for process in (first, second, third):
            if process is not None:
                process.stop()


@pytest.mark.slow
def test_two_scheduler_processes_on_a_sqlite_store(tmp_path: Path) -> None:
    _two_schedulers_take_turns(settings_for(tmp_path))


@pytest.mark.slow
@pytest.mark.postgres
def test_two_scheduler_processes_on_a_postgres_store(tmp_path: Path, pg_url: str) -> None:
    _two_schedulers_take_turns(settings_for(tmp_path, store_url=pg_url))


def _nice_of(pid: int) -> int:
    """The nice value of a process, field 19 of /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_the_scheduler_runs_at_a_lower_cpu_priority_than_the_web_workers(tmp_path: Path) -> None:
    """Its refreshes and daily history are batch work: on a shared 2-core server the web
    workers answering people must come first (DASHBOARD_SCHEDULER_NICE, default 10)."""
    own = os.nice(0)
    process = SchedulerProcess(settings_for(tmp_path))
    try:
        process.wait_for("scheduler status=running jobs=2")
        assert _nice_of(process.proc.pid) == min(19, own + 10)
    finally:
        process.stop()
