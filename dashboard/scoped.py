"""The data layer as one user may see it: every read checks the user's access first.

``ScopedData(data, access, ...)`` has the data layer's reading methods (``values``, ``drilldown``,
``chart``, ``history``, ``team_matrix``, ``family``, ``teams``, ...), so pages, callbacks, the
JSON API and downloads take one of these per request and cannot reach data outside the user's
scope (issue 5; DESIGN.md, Access). A scope the user may not see raises ``AccessDenied`` before
anything is computed; the web layer answers 403.

Child-level rows (the drill-down of a ``personal`` indicator, any export, the family view) are
written to the audit trail BEFORE they are handed back (an empty list records nothing); if the audit write fails, ``AuditError``
propagates and no rows leave this class. Aggregate reads (tiles, charts, history, the team matrix)
write nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from dashboard.access import Access
from dashboard.model import Freshness, Indicator, IndicatorValue, Scope, ScopeError

if TYPE_CHECKING:
    from dashboard.audit import AuditLog
    from dashboard.data import DataLayer

log = logging.getLogger(__name__)

# Columns that name the child a row is about: drill-down lists say child_id, raw frames person_id.
CHILD_COLUMNS = ("child_id", "person_id")


class AccessDenied(Exception):
    """The user may not see this scope (the web layer answers 403, with no data)."""


class ScopedData:
    """One user's view of a ``DataLayer``: the same reads, checked and audited.

    ``route`` names where rows are being shown, for the audit trail (e.g. ``/download/x.csv``).
    """

    def __init__(
        self,
        data: DataLayer,
        access: Access,
        *,
        audit: AuditLog,
        route: str,
        version: Callable[[], str] | None = None,
    ) -> None:
        self.data = data
        self.access = access
        self.audit = audit
        self.route = route
        # Where the store's version is read: the web app passes one read per request.
        self._version = version or data.version_token

    # --- access ----------------------------------------------------------------------------

    @property
    def username(self) -> str:
        return self.access.username

    def allows(self, scope: Scope) -> bool:
        """May this user see ``scope``? (``service:`` scopes are checked team by team.)"""
        return self.access.allows(scope, self._teams_of_service)

    def check(self, scope: Scope) -> Scope:
        """``scope`` if the user may see it; ``AccessDenied`` otherwise."""
        if not self.allows(scope):
            raise AccessDenied(f"{self.username} may not see {scope}")
        return scope

    def _teams_of_service(self, org_id: int) -> frozenset[int]:
        # The data layer's loaded organisation, its tree and each service's teams cached per
        # version: a manager's page checks every service for its selector (hundreds at regional
        # scale), which read the organisation from the store once per service.
        try:
            teams = self.data.resolve(Scope("service", (str(int(org_id)),))).team_ids
        except ScopeError:  # no organisation yet, or no such service: it covers nothing
            return frozenset()
        return frozenset() if teams is None else frozenset(teams)

    # --- pass-through: no data of any scope ------------------------------------------------------

    def version_token(self) -> str:
        return self._version()

    def snapshot_as_of(self) -> Any:
        return self.data.snapshot_as_of()

    def catalogue(self, tier: Any = None) -> list[Indicator]:
        return self.data.catalogue(tier)

    def definition(self, indicator_id: str) -> Any:
        return self.data.definition(indicator_id)

    def applicable(self, scope: Scope) -> list[str]:
        return self.data.applicable(scope)

    def resolve(self, scope: Scope) -> Any:
        """The teams and cost centres a scope covers; ``ScopeError`` for ids that do not exist."""
        return self.data.resolve(scope)

    # --- aggregates: checked, not audited --------------------------------------------------------

    def values(
        self, scope: Scope, ids: Sequence[str] | None = None, *, remember: bool = True
    ) -> list[IndicatorValue]:
        return self.data.values(self.check(scope), ids, remember=remember)

    def freshness(self, scope: Scope, ids: Sequence[str]) -> list[Freshness]:
        return self.data.freshness(self.check(scope), ids)

    def value(self, indicator_id: str, scope: Scope) -> IndicatorValue:
        return self.data.value(indicator_id, self.check(scope))

    def chart(self, chart_id: str, scope: Scope) -> pd.DataFrame:
        return self.data.chart(chart_id, self.check(scope))

    def chart_figure(
        self, chart_id: str, scope: Scope, draw: Callable[[pd.DataFrame], Any], variant: Any = None
    ) -> Any:
        return self.data.chart_figure(chart_id, self.check(scope), draw, variant)

    def history(self, indicator_id: str, scope: Scope) -> pd.DataFrame:
        return self.data.history(indicator_id, self.check(scope))

    def prefetch_history(self, indicator_ids: Iterable[str], scope: Scope) -> None:
        self.data.prefetch_history(indicator_ids, self.check(scope))

    def team_matrix(self, scope: Scope) -> pd.DataFrame:
        """One row per team in ``scope`` (which the user must be allowed: so only their teams)."""
        return self.data.team_matrix(self.check(scope))

    # --- child-level rows: checked, then audited, then returned ---------------------------------

    def drilldown(
        self, indicator_id: str, scope: Scope, *, action: Literal["view", "export"] = "view"
    ) -> pd.DataFrame:
        """The rows behind a tile. A ``personal`` indicator's view, and every export, is audited
        first; ``AuditError`` means the rows must not be shown (and they are not returned)."""
        self.check(scope)
        frame = self.data.drilldown(indicator_id, scope)
        personal = self.data.definition(indicator_id).indicator.personal
        if personal or action == "export":
            self._record(indicator_id, scope, frame, action)
        return frame

    def drilldown_block(
        self,
        indicator_id: str,
        scope: Scope,
        pick: Callable[[pd.DataFrame], tuple[pd.DataFrame, int]],
    ) -> tuple[pd.DataFrame, int]:
        """One block of the rows behind a tile, for a grid that asks for them block by block:
        ``pick`` filters, sorts and slices the whole list and says how many rows the filter
        leaves. Only the block leaves the server, so only its rows are audited (a ``personal``
        indicator's, before they are returned; an empty block records nothing)."""
        self.check(scope)
        rows, total = pick(self.data.drilldown_view(indicator_id, scope))
        if self.data.definition(indicator_id).indicator.personal:
            self._record(indicator_id, scope, rows, "view")
        return rows, total

    def family(self, person_id: int, scope: Scope) -> pd.DataFrame:
        """A child's family and its open work, cut down to what lies inside ``scope``.

        The data layer already refuses a child with no open work in the scope; here the rows of
        family members are kept only where the work itself is in the scope's teams, so a
        sibling's case in another team (or a sibling with no open work in scope) is not shown.
        Audited, like any child-level view.
        """
        self.check(scope)
        frame = self.data.family(int(person_id), scope)
        resolved = self.data.resolve(scope)
        if resolved.team_ids is not None and not frame.empty:
            frame = resolved.filter_teams(frame).reset_index(drop=True)
        self._record(None, scope, frame, "view", extra_people=(int(person_id),))
        return frame

    def _record(
        self,
        indicator_id: str | None,
        scope: Scope,
        frame: pd.DataFrame,
        action: Literal["view", "export"],
        extra_people: Iterable[int] = (),
    ) -> None:
        if frame.empty:
            return  # an empty list shows no child: nothing to record
        people = set(extra_people) | set(child_ids(frame))
        self.audit.record(
            self.username,
            self.route,
            indicator_id,
            scope,
            len(frame),
            sorted(people),
            action=action,
        )

    # --- lists for selectors: only the user's own ------------------------------------------------

    def teams(self) -> pd.DataFrame:
        """The teams the user may see (every team for a borough user)."""
        teams = self.data.teams()
        if self.access.borough:
            return teams
        return teams[teams["org_id"].astype(int).isin(sorted(self.access.team_ids))].reset_index(
            drop=True
        )

    def services(self) -> pd.DataFrame:
        """Services every one of whose teams the user may see."""
        services = self.data.services()
        if self.access.borough:
            return services
        keep = [self.allows(Scope("service", (str(int(o)),))) for o in services["org_id"]]
        return services[pd.Series(keep, index=services.index, dtype=bool)].reset_index(drop=True)

    def cost_centres(self) -> pd.DataFrame:
        """The cost centres the user may see."""
        centres = self.data.cost_centres()
        if self.access.borough:
            return centres
        mine = centres["cost_centre_code"].astype(str).isin(sorted(self.access.cost_centres))
        return centres[mine].reset_index(drop=True)


def child_ids(frame: pd.DataFrame) -> list[int]:
    """The distinct children a frame's rows are about (empty if it names none)."""
    ids: set[int] = set()
    for column in CHILD_COLUMNS:
        if column in frame.columns:
            ids |= {int(v) for v in frame[column].dropna()}
    return sorted(ids)
