"""The audit trail: who saw which children's records, when, where and how many rows.

Every view or export of child-level rows writes one event (and one row per child shown) in the
store, in one transaction, BEFORE the rows go to the browser. Writing fails closed: if the store
cannot take the record, ``record`` raises ``AuditError`` and the caller must not show the rows
(the web layer turns it into an error page). Nothing is dropped silently.

"Who looked at this child's record?"::

    AuditLog(store_url).query(person_id=123456)
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from dashboard.access_tables import (
    as_utc,
    audit_event_people,
    audit_events,
    create_schema,
    store_engine,
    utc_now,
)
from dashboard.model import Scope

Action = Literal["view", "export"]
ACTIONS: tuple[Action, ...] = ("view", "export")
DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000
# Bound parameters per IN (...) list: far below every database's limit.
_CHUNK = 500

log = logging.getLogger(__name__)


class AuditError(RuntimeError):
    """The audit record could not be written, so the child-level rows must not be shown."""


@dataclass(frozen=True)
class AuditEvent:
    event_id: int
    occurred_at: dt.datetime  # UTC
    username: str
    action: Action
    route: str
    indicator_id: str | None
    scope: str
    row_count: int
    person_ids: tuple[int, ...]  # the children whose rows were shown, ascending


def _moment(value: dt.date | dt.datetime, *, end_of_day: bool = False) -> dt.datetime:
    """A bound as a UTC datetime; a bare date means the start of that day (or of the next)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    day = value + dt.timedelta(days=1) if end_of_day else value
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _person_ids(person_ids: Iterable[int]) -> tuple[int, ...]:
    ids = set()
    for value in person_ids:
        if isinstance(value, bool) or value is None:
            raise ValueError(f"not a person id: {value!r}")
        try:
            number = int(value)  # numpy and pandas integers too
        except (TypeError, ValueError):
            raise ValueError(f"not a person id: {value!r}") from None
        if number != value:
            raise ValueError(f"not a whole-number person id: {value!r}")
        ids.add(number)
    return tuple(sorted(ids))


class AuditLog:
    """Writes and reads the audit trail in the store database."""

    def __init__(
        self, store_url: str | Engine, *, clock: Callable[[], dt.datetime] = utc_now
    ) -> None:
        self.engine = store_engine(store_url)
        self._clock = clock
        self._schema_ready = False

    def dispose(self) -> None:
        self.engine.dispose()

    def _ready(self) -> None:
        # Created on first use, not in the constructor: an app that starts while the store is
        # down must still start, and refuse child-level views until the store is back.
        if not self._schema_ready:
            create_schema(self.engine)
            self._schema_ready = True

    def record(
        self,
        username: str,
        route: str,
        indicator_id: str | None,
        scope: Scope | str,
        row_count: int,
        person_ids: Sequence[int],
        action: Action = "view",
        when: dt.datetime | None = None,
    ) -> int:
        """Write one event and the children it showed; return the event id.

        Raises ``AuditError`` if the store cannot take it (the caller must then show nothing),
        and ``ValueError`` for arguments that make no sense.
        """
        if action not in ACTIONS:
            raise ValueError(f"audit action must be one of {ACTIONS}, not {action!r}")
        if not username:
            raise ValueError("an audit event needs the username")
        if isinstance(row_count, bool) or int(row_count) < 0:
            raise ValueError(f"row_count must be a whole number >= 0, not {row_count!r}")
        ids = _person_ids(person_ids)
        occurred = _moment(when) if when is not None else self._clock()
        event = {
            "occurred_at": occurred,
            "username": str(username).strip().lower()[:100],
            "action": action,
            "route": str(route or "")[:500],
            "indicator_id": None if indicator_id is None else str(indicator_id)[:100],
            "scope": str(scope)[:250],
            "row_count": int(row_count),
            "person_count": len(ids),
        }
        try:
            self._ready()
            with self.engine.begin() as conn:
                event_id = conn.execute(insert(audit_events).values(**event)).inserted_primary_key[
                    0
                ]
                if ids:
                    conn.execute(
                        insert(audit_event_people),
                        [{"event_id": event_id, "person_id": pid} for pid in ids],
                    )
        except SQLAlchemyError as exc:
            log.error(
                "audit record failed for %s on %s (%d rows): %s",
                event["username"],
                event["route"],
                event["row_count"],
                exc.__class__.__name__,
            )
            raise AuditError(
                "the audit trail could not be written, so these records cannot be shown"
            ) from exc
        return int(event_id)

    def query(
        self,
        username: str | None = None,
        person_id: int | None = None,
        since: dt.date | dt.datetime | None = None,
        until: dt.date | dt.datetime | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[AuditEvent]:
        """Events, newest first, filtered by user, by child, and by time.

        ``since`` is inclusive, ``until`` exclusive; a bare date for ``until`` includes that day.
        """
        if not 1 <= int(limit) <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        e = audit_events
        query = select(e)
        if username is not None:
            query = query.where(e.c.username == str(username).strip().lower())
        if person_id is not None:
            query = query.where(
                e.c.event_id.in_(
                    select(audit_event_people.c.event_id).where(
                        audit_event_people.c.person_id == int(person_id)
                    )
                )
            )
        if since is not None:
            query = query.where(e.c.occurred_at >= _moment(since))
        if until is not None:
            query = query.where(e.c.occurred_at < _moment(until, end_of_day=True))
        query = query.order_by(e.c.occurred_at.desc(), e.c.event_id.desc()).limit(int(limit))
        self._ready()
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            people = self._people(conn, [row.event_id for row in rows])
        return [
            AuditEvent(
                event_id=row.event_id,
                occurred_at=as_utc(row.occurred_at),
                username=row.username,
                action=row.action,
                route=row.route,
                indicator_id=row.indicator_id,
                scope=row.scope,
                row_count=row.row_count,
                person_ids=tuple(sorted(people.get(row.event_id, ()))),
            )
            for row in rows
        ]

    @staticmethod
    def _people(conn, event_ids: list[int]) -> dict[int, list[int]]:  # noqa: ANN001
        found: dict[int, list[int]] = {}
        p = audit_event_people
        for start in range(0, len(event_ids), _CHUNK):
            chunk = event_ids[start : start + _CHUNK]
            for event_id, person_id in conn.execute(
                select(p.c.event_id, p.c.person_id).where(p.c.event_id.in_(chunk))
            ):
                found.setdefault(event_id, []).append(person_id)
        return found
