"""The refresher: runs dataset files against the read-only source and stores the snapshots.

``refresh_datasets`` runs datasets once (the ``refresh`` command, tests, benchmarks).
``run_scheduler`` / ``start_background_scheduler`` run them forever with APScheduler 3.11: one job
per dataset on its own interval, and only while holding the store's scheduler lock, so exactly one
scheduler refreshes a store however many web workers or processes are started (DESIGN.md).

Failure is local: a bad file or a failing query marks only its own dataset; an unreachable source
marks every dataset failed and the last good snapshots stay readable. Nothing here writes to the
source: SQLite is opened with ``mode=ro``, PostgreSQL sessions default to read-only transactions,
and every source transaction is rolled back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from dashboard.config import Settings
from dashboard.datasets import (
    DatasetFileError,
    DatasetSpec,
    load_dataset,
    load_datasets,
    run_dataset,
)
from dashboard.locks import SchedulerLock, scheduler_lock
from dashboard.reporting import ReportingPeriod
from dashboard.store import SnapshotStore, sqlite_path, with_driver

log = logging.getLogger(__name__)

AfterRefresh = Callable[[SnapshotStore, ReportingPeriod], None]

JOB_PREFIX = "dataset:"
RESCAN_JOB_ID = "queries:rescan"
HISTORY_JOB_ID = "history"
# A file whose header cannot be read has no interval of its own; it is retried this often (and
# picked up with its real interval by the rescan once fixed).
BROKEN_FILE_RETRY = dt.timedelta(minutes=15)
RESCAN_EVERY = dt.timedelta(minutes=1)
# History is written once the burst of dataset jobs that finish together has settled.
HISTORY_DELAY = dt.timedelta(seconds=5)
# While it refreshes a dataset whose history it records next, the scheduler asks the web workers
# to hold the new version back (``SnapshotStore.hold_publication``) until the history is written:
# one new version for the browsers, not the snapshot and then its history. The hold lapses by
# itself after this long (a scheduler that died holding it); each worker also waits at most
# ``data.PUBLISH_HOLD_MAX_S``.
PUBLISH_HOLD = dt.timedelta(minutes=2)
PUBLISH_HOLD_NAME = "history"
# ... and not while a dataset is still being refreshed, or has not had its first refresh since
# the scheduler started (a run then records its values as failed, and the web workers would
# compute those cells of the team matrix themselves): the last refresh to finish schedules it.
# Datasets refreshing back to back for this long do not hold it off any longer.
HISTORY_MAX_WAIT = dt.timedelta(minutes=10)
# Source queries at once. Small: the source is a case-management replica, not ours to load.
SCHEDULER_WORKERS = 4
LOCK_RETRY_S = 30.0
LOCK_CHECK_S = 10.0
SOURCE_CONNECT_TIMEOUT_S = 10
# SQLite has no statement timeout; a progress handler checks the deadline every N VM steps.
_SQLITE_PROGRESS_STEPS = 10_000


class UnknownDatasetError(ValueError):
    """Dataset ids asked for that have no file in the queries folder."""


class SourceUnavailableError(RuntimeError):
    """The source database cannot be opened (missing file, server down)."""


class SchedulerLockedError(RuntimeError):
    """Another scheduler holds the store's lock and we were asked not to wait."""


@dataclass
class DatasetRun:
    dataset_id: str
    ok: bool
    rows: int
    duration_s: float
    error: str | None
    version: int | None


@dataclass
class RefreshReport:
    runs: list[DatasetRun]
    after_refresh_error: str | None = None

    @property
    def failed(self) -> list[str]:
        return [run.dataset_id for run in self.runs if not run.ok]

    def __str__(self) -> str:
        width = max((len(run.dataset_id) for run in self.runs), default=0)
        lines = []
        for run in self.runs:
            if run.ok:
                lines.append(
                    f"ok      {run.dataset_id:<{width}}  {run.rows:>9,} rows  "
                    f"{run.duration_s:7.2f} s  version {run.version}"
                )
            else:
                lines.append(
                    f"FAILED  {run.dataset_id:<{width}}  {'':14}  {run.duration_s:7.2f} s  {run.error}"
                )
        if self.after_refresh_error:
            lines.append(f"FAILED  (history)  {self.after_refresh_error}")
        return "\n".join(lines)


# --- the source connection -------------------------------------------------------------------


def source_engine(settings: Settings) -> Engine:
    """A read-only engine on the source. Raises ``SourceUnavailableError`` for a missing file.

    SQLite: opened as ``file:<path>?mode=ro``, so a missing file is an error, never a new empty
    database. PostgreSQL: every session defaults to read-only transactions and carries the
    statement timeout. (A council should still give the dashboard a read-only database role.)
    """
    url = with_driver(settings.source_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = sqlite_path(url)
        if path is None:
            raise SourceUnavailableError("the SQLite source must be a file")
        if not path.is_file():
            raise SourceUnavailableError(f"source database file not found: {path}")
        uri = f"{path.resolve().as_uri()}?mode=ro"
        return create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30),
            poolclass=NullPool,
        )
    if backend == "postgresql":
        timeout_ms = settings.source_statement_timeout_s * 1000
        return create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "options": (
                    f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms}"
                ),
                "connect_timeout": SOURCE_CONNECT_TIMEOUT_S,
                "application_name": "csc-dashboard refresher",
            },
        )
    # Other databases (e.g. SQL Server): read-only rests on the account and on never committing.
    return create_engine(url, poolclass=NullPool)


@contextlib.contextmanager
def _statement_timeout(conn: Connection, seconds: float) -> Iterator[None]:
    """Bound one dataset's query by ``seconds`` (its own ``timeout`` or the settings')."""
    backend = conn.dialect.name
    if backend == "postgresql":
        # is_local=true: only this transaction; set_config takes the value as a bound parameter.
        conn.execute(
            text("SELECT set_config('statement_timeout', :ms, true)"),
            {"ms": str(int(seconds * 1000))},
        )
        yield
    elif backend == "sqlite":
        raw = conn.connection.dbapi_connection
        deadline = time.monotonic() + seconds
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS)
        try:
            yield
        finally:
            raw.set_progress_handler(None, 0)
    else:
        yield


def _describe(exc: BaseException) -> str:
    """One line: the driver's own message, without SQLAlchemy's echo of the SQL."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{exc.__class__.__name__}: {first}" if first else exc.__class__.__name__


def _timed_out(exc: BaseException) -> bool:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    name = orig.__class__.__name__ if orig is not None else ""
    return name == "QueryCanceled" or "interrupted" in str(orig)


# --- one refresh -----------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _fail(
    store: SnapshotStore,
    dataset_id: str,
    error: str,
    period: ReportingPeriod,
    started: dt.datetime,
    duration_s: float,
) -> DatasetRun:
    try:
        store.record_failure(
            dataset_id, error, as_of=period.as_of, computed_at=started, duration_s=duration_s
        )
    except Exception as exc:  # the store itself is down: still report, never crash
        log.error(
            "refresh dataset=%s status=unrecorded error=%r store_error=%r",
            dataset_id,
            error,
            _describe(exc),
        )
    log.warning(
        "refresh dataset=%s status=failed duration_s=%.3f error=%r", dataset_id, duration_s, error
    )
    return DatasetRun(dataset_id, False, 0, duration_s, error, None)


def _refresh_one(
    store: SnapshotStore,
    spec: DatasetSpec,
    engine: Engine,
    period: ReportingPeriod,
    settings: Settings,
) -> DatasetRun:
    timeout_s = (
        spec.timeout.total_seconds() if spec.timeout else settings.source_statement_timeout_s
    )
    started = _now()
    clock = time.perf_counter()
    try:
        with engine.connect() as conn:  # leaving the block rolls the transaction back
            with _statement_timeout(conn, timeout_s):
                frame = run_dataset(spec, conn, period)
    except Exception as exc:
        duration = time.perf_counter() - clock
        if _timed_out(exc):
            error = f"{spec.path.name}: timed out after {timeout_s:g} s"
        elif isinstance(exc, DBAPIError):
            error = f"{spec.path.name}: {_describe(exc)}"
        else:
            error = str(exc)  # DatasetResultError and friends already name the file
        return _fail(store, spec.id, error, period, started, duration)
    duration = time.perf_counter() - clock
    try:
        version = store.write_snapshot(
            spec.id, frame, as_of=period.as_of, computed_at=started, duration_s=duration
        )
    except Exception as exc:
        error = f"{spec.path.name}: cannot store the snapshot: {_describe(exc)}"
        return _fail(store, spec.id, error, period, started, duration)
    log.info(
        "refresh dataset=%s status=ok version=%d rows=%d duration_s=%.3f",
        spec.id,
        version,
        len(frame),
        duration,
    )
    return DatasetRun(spec.id, True, len(frame), duration, None, version)


def _load_wanted(
    folder: Path, dataset_ids: Sequence[str] | None
) -> tuple[list[str], dict[str, DatasetSpec], dict[str, DatasetFileError]]:
    """Parse only the files asked for: a scheduler job refreshes one dataset, and parsing every
    header in the folder for it would cost more than many small queries."""
    paths = {path.stem: path for path in sorted(Path(folder).glob("*.sql"))}
    wanted = list(dict.fromkeys(dataset_ids)) if dataset_ids else sorted(paths)
    unknown = [dataset_id for dataset_id in wanted if dataset_id not in paths]
    if unknown:
        raise UnknownDatasetError(
            f"no dataset file for {', '.join(unknown)} in {folder}; "
            f"known: {', '.join(sorted(paths)) or 'none'}"
        )
    good: dict[str, DatasetSpec] = {}
    bad: dict[str, DatasetFileError] = {}
    for dataset_id in wanted:
        try:
            good[dataset_id] = load_dataset(paths[dataset_id])
        except DatasetFileError as exc:
            bad[dataset_id] = exc
    return wanted, good, bad


def refresh_datasets(
    settings: Settings,
    dataset_ids: Sequence[str] | None = None,
    *,
    store: SnapshotStore | None = None,
    period: ReportingPeriod | None = None,
    after_refresh: AfterRefresh | None = None,
) -> RefreshReport:
    """Run datasets now (all, or those named) and write their snapshots; never raises for a
    dataset's own failure. Raises ``UnknownDatasetError`` for ids with no file."""
    wanted, good, bad = _load_wanted(settings.queries_dir, dataset_ids)
    period = period or ReportingPeriod.for_date(settings.reporting_date())
    own_store = store is None
    store = store or SnapshotStore.from_settings(settings)
    engine: Engine | None = None
    source_error: str | None = None
    try:
        if any(dataset_id in good for dataset_id in wanted):
            try:
                engine = source_engine(settings)
                with engine.connect():
                    pass
            except Exception as exc:
                source_error = f"source unreachable: {_describe(exc)}"
                log.error("refresh source=unreachable error=%r", source_error)
        runs = []
        for dataset_id in wanted:
            if dataset_id in bad:
                runs.append(_fail(store, dataset_id, str(bad[dataset_id]), period, _now(), 0.0))
            elif source_error is not None:
                runs.append(_fail(store, dataset_id, source_error, period, _now(), 0.0))
            else:
                runs.append(_refresh_one(store, good[dataset_id], engine, period, settings))
        report = RefreshReport(runs)
        if after_refresh is not None:
            report.after_refresh_error = _call_after_refresh(after_refresh, store, period)
        return report
    finally:
        if engine is not None:
            engine.dispose()
        if own_store:
            store.dispose()


def _call_after_refresh(
    after_refresh: AfterRefresh, store: SnapshotStore, period: ReportingPeriod
) -> str | None:
    try:
        after_refresh(store, period)
    except Exception as exc:  # history is secondary: log it, keep the refresher alive
        log.exception("after_refresh status=failed error=%r", _describe(exc))
        return _describe(exc)
    log.info("after_refresh status=ok as_of=%s", period.as_of)
    return None


# --- the scheduler ---------------------------------------------------------------------------


class RefreshJobs:
    """An APScheduler ``BackgroundScheduler`` holding the refresher's jobs, and the jobs.

    Jobs: ``dataset:<id>`` for every dataset file, on the file's ``refresh`` interval, first run
    at start, ``coalesce=True``, ``max_instances=1``, misfire grace half the interval;
    ``queries:rescan`` to follow files added, removed or retimed; ``history`` (one-off, debounced)
    after dataset runs, when an ``after_refresh`` hook is given.
    """

    def __init__(
        self,
        settings: Settings,
        store: SnapshotStore,
        *,
        after_refresh: AfterRefresh | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.after_refresh = after_refresh
        self.scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            executors={"default": ThreadPoolExecutor(SCHEDULER_WORKERS)},
        )
        # Jobs change the scheduler (rescan, history). APScheduler's shutdown(wait=True) holds the
        # job-store lock while it waits for running jobs, so a job calling add_job then would
        # deadlock; every change goes through this lock and stops once shutdown has begun.
        self._changing = threading.Lock()
        self._closing = False
        # Datasets being refreshed now, and those not refreshed once yet since the start (the
        # history waits for both); when the history was first held off by them.
        self._refreshing: set[str] = set()
        self._unrefreshed: set[str] | None = None
        self._history_held_since: float | None = None
        self.sync()
        self.scheduler.add_job(
            self.sync,
            IntervalTrigger(seconds=RESCAN_EVERY.total_seconds(), timezone=dt.UTC),
            id=RESCAN_JOB_ID,
            name="rescan the queries folder",
            coalesce=True,
            max_instances=1,
        )

    def start(self, *, paused: bool = False) -> None:
        self.scheduler.start(paused=paused)

    def shutdown(self) -> None:
        """Stop; running refreshes finish first, so no snapshot is abandoned mid-write."""
        with self._changing:
            self._closing = True
        self.scheduler.shutdown(wait=True)

    def dataset_job_ids(self) -> list[str]:
        return [job.id for job in self.scheduler.get_jobs() if job.id.startswith(JOB_PREFIX)]

    def sync(self) -> None:
        """Give every dataset file a job on its interval; drop jobs whose file has gone."""
        good, bad = load_datasets(self.settings.queries_dir)
        wanted = {dataset_id: spec.refresh for dataset_id, spec in good.items()}
        wanted.update({dataset_id: BROKEN_FILE_RETRY for dataset_id in bad})
        with self._changing:
            if self._closing:
                return
            if self._unrefreshed is None:  # the first scan: every dataset awaits its refresh
                self._unrefreshed = set(wanted)
            else:  # a file gone no longer holds the history off
                self._unrefreshed &= set(wanted)
            for job in self.scheduler.get_jobs():
                if job.id.startswith(JOB_PREFIX) and job.id[len(JOB_PREFIX) :] not in wanted:
                    log.info("scheduler job=%s status=removed (file gone)", job.id)
                    job.remove()
            for dataset_id, interval in sorted(wanted.items()):
                self._schedule(dataset_id, interval)

    def _schedule(self, dataset_id: str, interval: dt.timedelta) -> None:
        job_id = JOB_PREFIX + dataset_id
        job = self.scheduler.get_job(job_id)
        trigger = IntervalTrigger(seconds=interval.total_seconds(), timezone=dt.UTC)
        grace = max(1, int(interval.total_seconds() // 2))
        if job is None:
            self.scheduler.add_job(
                self.run_dataset,
                trigger,
                args=[dataset_id],
                id=job_id,
                name=f"refresh {dataset_id}",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=grace,
                next_run_time=_now(),  # first run straight away
            )
            log.info("scheduler job=%s status=added every_s=%d", job_id, interval.total_seconds())
        elif job.trigger.interval != interval:
            job.modify(misfire_grace_time=grace)
            job.reschedule(trigger)
            log.info(
                "scheduler job=%s status=rescheduled every_s=%d", job_id, interval.total_seconds()
            )

    def run_dataset(self, dataset_id: str) -> None:
        with self._changing:
            self._refreshing.add(dataset_id)
            # Once every dataset has had its first refresh (before that, each new dataset is
            # shown as it lands), a new snapshot waits for its history.
            hold = self.after_refresh is not None and not self._unrefreshed and not self._closing
        if hold:
            self._hold_publication()
        try:
            refresh_datasets(self.settings, [dataset_id], store=self.store)
        except UnknownDatasetError:
            log.info("scheduler job=%s%s status=skipped (file gone)", JOB_PREFIX, dataset_id)
            if hold:
                self._release_publication()
            return  # the next rescan drops the job
        finally:
            with self._changing:
                self._refreshing.discard(dataset_id)
                if self._unrefreshed is not None:
                    self._unrefreshed.discard(dataset_id)
        if self.after_refresh is None:
            return
        with self._changing:
            closing = self._closing
            if not closing:
                # Debounced: datasets finishing together lead to one history run, after the last.
                self.scheduler.add_job(
                    self.run_history,
                    DateTrigger(run_date=_now() + HISTORY_DELAY, timezone=dt.UTC),
                    id=HISTORY_JOB_ID,
                    name="record history",
                    replace_existing=True,
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=None,
                )
        if closing and hold:
            self._release_publication()  # no history follows: publish what was written

    def run_history(self) -> None:
        if self.after_refresh is None or self._history_held():
            return
        period = ReportingPeriod.for_date(self.settings.reporting_date())
        try:
            _call_after_refresh(self.after_refresh, self.store, period)
        finally:
            self._release_publication()

    def _hold_publication(self) -> None:
        try:
            self.store.hold_publication(
                PUBLISH_HOLD_NAME, PUBLISH_HOLD.total_seconds(), f"scheduler {os.getpid()}"
            )
        except Exception as exc:  # the store is down: the refresh says so itself
            log.warning("could not hold publication: %s", _describe(exc))

    def _release_publication(self) -> None:
        try:
            self.store.release_publication(PUBLISH_HOLD_NAME)
        except Exception as exc:  # the hold lapses by itself
            log.warning("could not release publication: %s", _describe(exc))

    def _history_held(self) -> bool:
        """Is a refresh under way, or a dataset's first still to come? Then the history waits
        (the last refresh to finish schedules it again), up to ``HISTORY_MAX_WAIT``."""
        with self._changing:
            waiting = sorted(self._refreshing | (self._unrefreshed or set()))
            now = time.monotonic()
            if not waiting:
                self._history_held_since = None
                return False
            if self._history_held_since is None:
                self._history_held_since = now
            if now - self._history_held_since >= HISTORY_MAX_WAIT.total_seconds():
                log.info("history runs now: refreshes kept it waiting (%s)", ", ".join(waiting))
                self._history_held_since = None
                return False
        log.info("history waits for the refresh of %s", ", ".join(waiting))
        return True


def _supervise(
    settings: Settings,
    stop: threading.Event,
    after_refresh: AfterRefresh | None,
    *,
    exit_if_locked: bool,
    lock_retry_s: float,
) -> None:
    """Hold the lock, run the jobs until ``stop`` (or the lock is lost), else stand by."""
    store = SnapshotStore.from_settings(settings)
    lock = scheduler_lock(settings.store_url)
    last_holder: str | None = None
    try:
        while not stop.is_set():
            if not lock.acquire():
                holder = lock.holder()
                if exit_if_locked:
                    raise SchedulerLockedError(
                        f"another scheduler holds the {lock.description}: {holder}"
                    )
                if holder != last_holder:
                    log.warning(
                        "scheduler status=standby reason=%r holder=%r retry_every_s=%g",
                        f"another scheduler holds the {lock.description}",
                        holder,
                        lock_retry_s,
                    )
                    last_holder = holder
                stop.wait(lock_retry_s)
                continue
            last_holder = None
            try:
                _run_while_locked(settings, store, lock, stop, after_refresh, lock_retry_s)
            finally:
                lock.release()
    finally:
        lock.close()
        store.dispose()
        log.info("scheduler status=stopped")


def _run_while_locked(
    settings: Settings,
    store: SnapshotStore,
    lock: SchedulerLock,
    stop: threading.Event,
    after_refresh: AfterRefresh | None,
    lock_retry_s: float,
) -> None:
    log.info("scheduler status=active lock=%r", lock.description)
    try:
        store.create_schema()
        jobs = RefreshJobs(settings, store, after_refresh=after_refresh)
    except Exception as exc:  # store down or queries folder unreadable: retry later
        log.error("scheduler status=cannot_start error=%r", _describe(exc))
        stop.wait(lock_retry_s)
        return
    jobs.start()
    log.info("scheduler status=running jobs=%d", len(jobs.dataset_job_ids()))
    try:
        while not stop.wait(LOCK_CHECK_S):
            if not lock.still_held():
                log.error("scheduler status=lock_lost lock=%r; stopping jobs", lock.description)
                break
    finally:
        jobs.shutdown()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: object) -> None:
        log.info("scheduler signal=%s status=stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_scheduler(
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    after_refresh: AfterRefresh | None = None,
    exit_if_locked: bool = False,
    lock_retry_s: float = LOCK_RETRY_S,
) -> None:
    """Run the refresher until ``stop`` is set or SIGTERM/SIGINT arrives (the ``scheduler``
    command). If another scheduler holds the store's lock, stand by and take over when it goes,
    or raise ``SchedulerLockedError`` if ``exit_if_locked``."""
    stop = stop or threading.Event()
    with _stop_on_signals(stop):
        _supervise(
            settings,
            stop,
            after_refresh,
            exit_if_locked=exit_if_locked,
            lock_retry_s=lock_retry_s,
        )


@dataclass
class SchedulerHandle:
    """The in-process scheduler of ``python app.py``; ``stop()`` ends it."""

    thread: threading.Thread
    stop_event: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float | None = 60.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def start_background_scheduler(
    settings: Settings, *, after_refresh: AfterRefresh | None = None
) -> SchedulerHandle:
    """Start the refresher in a daemon thread of this process (the demo's one-process mode).

    It takes the same lock as the ``scheduler`` command, so it stands by if one is running.
    """
    stop = threading.Event()
    thread = threading.Thread(
        target=_supervise,
        args=(settings, stop, after_refresh),
        kwargs={"exit_if_locked": False, "lock_retry_s": LOCK_RETRY_S},
        name="csc-dashboard-scheduler",
        daemon=True,
    )
    handle = SchedulerHandle(thread=thread, stop_event=stop)
    thread.start()
    return handle
