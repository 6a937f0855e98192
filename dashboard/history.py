"""Daily history of headline values, for trends the source cannot reconstruct (e.g. the overdue
backlog on each past day). The refresher calls ``record_history(store, period)`` after a refresh;
it writes one row per indicator and scope (the borough, each team, each cost centre) for the day.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from dashboard.config import Settings
from dashboard.data import DataLayer
from dashboard.model import IndicatorValue, Scope
from dashboard.reporting import ReportingPeriod
from dashboard.store import HistoryRow, SnapshotStore

log = logging.getLogger(__name__)


def history_scopes(data: DataLayer) -> list[Scope]:
    """The borough, every team and every cost centre."""
    scopes = [Scope.borough()]
    scopes += [Scope.team(int(org_id)) for org_id in data.teams()["org_id"]]
    scopes += [
        Scope.cost_centre(str(code)) for code in data.cost_centres()["cost_centre_code"].dropna()
    ]
    return scopes


def history_rows(data: DataLayer) -> list[HistoryRow]:
    """Every point-in-time value (charts excluded; failed values are not recorded)."""
    rows = []
    for scope in history_scopes(data):
        ids = [key for key in data.applicable(scope) if not data.definition(key).chart]
        rows += _rows(data.values(scope, ids))
    return rows


def _rows(values: list[IndicatorValue]) -> list[HistoryRow]:
    return [
        HistoryRow(
            indicator_id=value.id,
            scope=value.scope,
            value=None if value.value is None else float(value.value),
            numerator=None if value.numerator is None else float(value.numerator),
            denominator=None if value.denominator is None else float(value.denominator),
        )
        for value in values
        if value.status != "failed"
    ]


def record_history(
    store: SnapshotStore, period: ReportingPeriod, settings: Settings | None = None
) -> None:
    """Write today's (``period.as_of``) row for every indicator and scope into the store.

    One-off (``csc-dashboard refresh``): everything is computed. The scheduler uses a
    :class:`HistoryRecorder`, which recomputes only what changed since its last run."""
    HistoryRecorder(settings)(store, period)


@dataclass(frozen=True)
class Recorded:
    """One run of a :class:`HistoryRecorder`: rows the day holds, values computed, rows written."""

    rows: int
    computed: int
    written: int


class HistoryRecorder:
    """The scheduler's after-refresh hook: records the day's history, incrementally.

    It keeps one data layer between runs, so a new snapshot of one dataset decodes only that
    dataset, and it remembers each (indicator, scope) value with what it was computed from (the
    versions of the datasets it reads and whether their latest attempt failed): a value whose
    inputs are unchanged is not computed again, and a row equal to the one already written for
    the day is not written again. At 100x the borough has 1,300 teams, and recomputing every
    team after every refresh took the scheduler a core for minutes; a refresh of the workforce
    now recomputes the caseloads and nothing else.

    If the store's history was written by someone else since this recorder's last write (a
    second scheduler took over meanwhile, or ``csc-dashboard refresh`` ran), every row of the day
    is written again.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self._lock = threading.Lock()  # one run at a time
        self._data: DataLayer | None = None
        self._store: SnapshotStore | None = None
        # (indicator, scope) -> (what it was computed from, its row or None when failed)
        self._computed: dict[tuple[str, str], tuple[Hashable, HistoryRow | None]] = {}
        # (indicator, scope) -> (day, row) as last written by this recorder
        self._written: dict[tuple[str, str], tuple[dt.date, HistoryRow]] = {}
        self._stamp: dt.datetime | None = None  # the store's history stamp after our last write

    def __call__(self, store: SnapshotStore, period: ReportingPeriod) -> Recorded:
        with self._lock:
            return self._record(store, period)

    def _record(self, store: SnapshotStore, period: ReportingPeriod) -> Recorded:
        started = time.perf_counter()
        if self._data is None or self._store is not store:
            self._data, self._store = DataLayer(self.settings, store), store
            self._computed.clear()
            self._written.clear()
        data = self._data
        # One version for the whole run: the values of thousands of scopes would otherwise
        # each ask the store for its version (a query per value: 20 s at regional scale).
        token = store.version_token()
        data.use_version(lambda: token)
        if not data.has_snapshots():
            log.info("history skipped: no snapshots yet")
            return Recorded(0, 0, 0)
        if store.versions().history != self._stamp:
            self._written.clear()  # written by someone else meanwhile: write the whole day
        rows: list[HistoryRow] = []
        computed = 0
        seen: set[tuple[str, str]] = set()
        for scope in history_scopes(data):
            name = str(scope)
            ids = [key for key in data.applicable(scope) if not data.definition(key).chart]
            stamps = {key: data.result_version(key, scope) for key in ids}
            stale = [
                key for key in ids if self._computed.get((key, name), (None,))[0] != stamps[key]
            ]
            if stale:
                fresh = {row.indicator_id: row for row in _rows(data.values(scope, stale))}
                for key in stale:
                    self._computed[(key, name)] = (stamps[key], fresh.get(key))
                computed += len(stale)
            for key in ids:
                seen.add((key, name))
                row = self._computed[(key, name)][1]
                if row is not None:
                    rows.append(row)
        for gone in set(self._computed) - seen:
            del self._computed[gone]  # a team or indicator no longer there
        changed = [
            row
            for row in rows
            if self._written.get((row.indicator_id, row.scope)) != (period.as_of, row)
        ]
        store.write_history(period.as_of, changed)
        for row in changed:
            self._written[(row.indicator_id, row.scope)] = (period.as_of, row)
        self._stamp = store.versions().history
        log.info(
            "history recorded day=%s rows=%d computed=%d written=%d duration_s=%.2f",
            period.as_of,
            len(rows),
            computed,
            len(changed),
            time.perf_counter() - started,
        )
        return Recorded(len(rows), computed, len(changed))


def history_hook(settings: Settings) -> Callable[[SnapshotStore, ReportingPeriod], None]:
    """An incremental recorder bound to the given settings, for
    ``refresh_datasets(after_refresh=)`` and the scheduler."""
    return HistoryRecorder(settings)
