"""Scopes resolved against the organisation tree and the cost centres.

A ``Scope`` (dashboard.model) is what the user asked for; a ``ResolvedScope`` is the set of team
ids and cost-centre codes it covers, so measures can filter any dataset by its ``team_id`` or
``cost_centre_code`` column. ``None`` means "no filter" (the borough: every row, including rows
whose team or cost centre is empty, because those are still the borough's work and money).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field, replace

import pandas as pd

from dashboard.model import Scope, ScopeError
from dashboard.partition import PartitionedFrames

TEAM_LEVEL = "TEAM"


@dataclass(frozen=True)
class ResolvedScope:
    scope: Scope
    team_ids: frozenset[int] | None  # None: every team (borough)
    cost_centres: frozenset[str] | None  # None: every cost centre (borough)
    label: str = "Borough"
    # The frames the filters below are mostly given, with their rows grouped by scope key, so
    # one scope's rows are taken by position rather than found by reading every row. Not part
    # of the scope's identity.
    partitions: PartitionedFrames | None = field(default=None, compare=False, repr=False)

    @property
    def is_borough(self) -> bool:
        return self.scope.is_borough

    def using(self, partitions: PartitionedFrames | None) -> ResolvedScope:
        """The same scope, filtering the given frames by their row positions."""
        return self if partitions is self.partitions else replace(self, partitions=partitions)

    def filter_teams(self, frame: pd.DataFrame, column: str = "team_id") -> pd.DataFrame:
        """Rows whose team is in scope (every row for the borough)."""
        if self.team_ids is None:
            return frame
        return self._filter(frame, column, self.team_ids)

    def filter_cost_centres(
        self, frame: pd.DataFrame, column: str = "cost_centre_code"
    ) -> pd.DataFrame:
        """Rows whose cost centre is in scope (every row for the borough)."""
        if self.cost_centres is None:
            return frame
        return self._filter(frame, column, self.cost_centres)

    def _filter(self, frame: pd.DataFrame, column: str, keys: frozenset) -> pd.DataFrame:
        if self.partitions is not None:
            taken = self.partitions.rows(frame, column, keys)
            if taken is not None:
                return taken
        # A frame derived from a snapshot (filtered, sorted): read every row.
        return frame[frame[column].isin(list(keys)).fillna(False).astype(bool)]


def borough_scope() -> ResolvedScope:
    return ResolvedScope(Scope.borough(), None, None, "Borough")


def team_scope(org_id: int, name: str = "") -> ResolvedScope:
    """One team, already known to exist (team matrix, history)."""
    return ResolvedScope(Scope.team(org_id), frozenset({int(org_id)}), frozenset(), name)


@dataclass(frozen=True)
class Organisation:
    """The organisation tree as look-ups by org id. Built once per version by the data layer, so
    resolving a scope costs its own teams rather than a pass over the whole tree (the history
    resolves every team: a pass each grew with teams x teams)."""

    names: Mapping[int, str]
    levels: Mapping[int, str]
    children: Mapping[int, tuple[int, ...]]

    @classmethod
    def of(cls, organisation: pd.DataFrame) -> Organisation:
        ids = organisation["org_id"].astype(int)
        children: dict[int, list[int]] = {}
        for child, parent in zip(
            organisation["org_id"], organisation["parent_org_id"], strict=True
        ):
            if pd.notna(parent):
                children.setdefault(int(parent), []).append(int(child))
        return cls(
            names=dict(zip(ids, organisation["name"], strict=True)),
            levels=dict(zip(ids, organisation["org_level"], strict=True)),
            children={parent: tuple(kids) for parent, kids in children.items()},
        )

    def teams_below(self, org_id: int) -> frozenset[int]:
        """TEAM nodes at or below ``org_id`` (any depth; cycles are cut)."""
        found: set[int] = set()
        seen: set[int] = set()
        stack = [int(org_id)]
        while stack:
            node = stack.pop()
            if node in seen:  # a cycle in messy data must not loop forever
                continue
            seen.add(node)
            if self.levels.get(node) == TEAM_LEVEL:
                found.add(node)
            stack.extend(self.children.get(node, ()))
        return frozenset(found)


def teams_below(organisation: pd.DataFrame, org_id: int) -> frozenset[int]:
    """TEAM nodes at or below ``org_id`` in the organisation tree (any depth; cycles are cut)."""
    return Organisation.of(organisation).teams_below(org_id)


def resolve(
    scope: Scope, organisation: pd.DataFrame | Organisation, cost_centres: Iterable[str]
) -> ResolvedScope:
    """The teams and cost centres a scope covers. Raises ``ScopeError`` for unknown ids."""
    if scope.is_borough:
        return borough_scope()
    if scope.kind == "cost_centre":
        code = scope.keys[0]
        known = cost_centres if isinstance(cost_centres, Set) else set(cost_centres)
        if code not in known:
            raise ScopeError(f"unknown cost centre: {code!r} (scope {scope})")
        return ResolvedScope(scope, frozenset(), frozenset({code}), f"Cost centre {code}")

    tree = organisation if isinstance(organisation, Organisation) else Organisation.of(organisation)
    names, levels = tree.names, tree.levels
    ids = [int(key) for key in scope.keys]
    for org_id in ids:
        if org_id not in names:
            raise ScopeError(f"unknown organisation id {org_id} (scope {scope})")
    if scope.kind in ("team", "teams"):
        for org_id in ids:
            if levels[org_id] != TEAM_LEVEL:
                raise ScopeError(
                    f"organisation {org_id} ({names[org_id]}) is a {levels[org_id]}, not a team;"
                    f" use service:{org_id}"
                )
        label = ", ".join(str(names[i]) for i in ids)
        return ResolvedScope(scope, frozenset(ids), frozenset(), label)
    team_ids = tree.teams_below(ids[0])
    return ResolvedScope(scope, team_ids, frozenset(), str(names[ids[0]]))
