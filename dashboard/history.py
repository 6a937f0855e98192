"""Daily history of headline values, for trends the source cannot reconstruct (e.g. the overdue
backlog on each past day). The refresher calls ``record_history(store, period)`` after a refresh;
it writes one row per indicator and scope (the borough, each team, each cost centre) for the day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from dashboard.config import Settings
from dashboard.data import DataLayer
from dashboard.model import Scope
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
        for value in data.values(scope, ids):
            if value.status == "failed":
                continue
            rows.append(
                HistoryRow(
                    indicator_id=value.id,
                    scope=value.scope,
                    value=None if value.value is None else float(value.value),
                    numerator=None if value.numerator is None else float(value.numerator),
                    denominator=None if value.denominator is None else float(value.denominator),
                )
            )
    return rows


def record_history(
    store: SnapshotStore, period: ReportingPeriod, settings: Settings | None = None
) -> None:
    """Write today's (``period.as_of``) row for every indicator and scope into the store."""
    data = DataLayer(settings if settings is not None else Settings(), store)
    if not data.has_snapshots():
        log.info("history skipped: no snapshots yet")
        return
    rows = history_rows(data)
    store.write_history(period.as_of, rows)
    log.info("history recorded day=%s rows=%d", period.as_of, len(rows))


def history_hook(settings: Settings) -> Callable[[SnapshotStore, ReportingPeriod], None]:
    """``record_history`` bound to the given settings, for ``refresh_datasets(after_refresh=)``."""

    def hook(store: SnapshotStore, period: ReportingPeriod) -> None:
        record_history(store, period, settings)

    return hook
