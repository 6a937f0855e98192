"""Who may see what: a user's scopes, from their roles in the organisation plus admin grants.

DESIGN.md, Access: a worker with a TEAM_MANAGER role on a team sees that team; a SERVICE_MANAGER
or HEAD_OF_SERVICE sees every team below their organisation node; the budget holder of a cost
centre sees that cost centre; a DIRECTOR sees the borough. Workers match users by
``workers.username``. Admin grants (``dashboard.users``) add to that.

Roles come from SNAPSHOTS of the access datasets (``queries/user_roles.sql``,
``queries/budget_holders.sql``, ``queries/organisation.sql``), never from a query at page view,
so a manager who moves team loses the old team at the next refresh.

``resolve_access`` is a pure function over frames (easy to test, cheap to call per request);
``load_access`` is the thin door that reads the latest snapshots and the user's grants.
The data layer asks ``access.allows(scope, teams_of_service(org_frame))`` before computing
anything.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from dashboard.model import Scope, ScopeError, Tier
from dashboard.scopes import teams_below

if TYPE_CHECKING:
    from dashboard.users import Grant, UserStore

log = logging.getLogger(__name__)

ROLES_DATASET = "user_roles"
BUDGET_HOLDERS_DATASET = "budget_holders"
# queries/organisation.sql (shared with the data layer): org_id, name, org_level, parent_org_id
ORGANISATION_DATASET = "organisation"

TEAM_MANAGER = "TEAM_MANAGER"
SERVICE_ROLES = ("SERVICE_MANAGER", "HEAD_OF_SERVICE")
DIRECTOR = "DIRECTOR"
TIER_ORDER: tuple[Tier, ...] = ("team", "budget", "borough")
HOME_PATHS: dict[Tier, str] = {"team": "/team", "budget": "/budget", "borough": "/borough"}

ROLE_COLUMNS = ("username", "role", "org_id", "start_date", "end_date")
HOLDER_COLUMNS = ("username", "cost_centre_code")
ORG_COLUMNS = ("org_id", "parent_org_id", "org_level")
DATED_COLUMNS = ("start_date", "end_date", "worker_start_date", "worker_end_date")


@dataclass(frozen=True)
class Access:
    """What one user may see. Build with ``resolve_access`` or ``load_access``.

    ``borough`` lets the user see everything (every team, cost centre and the borough), so a
    borough user gets every tier page. ``reasons`` say where each part came from, for people
    (the ``csc-dashboard access`` listing); they play no part in any decision.
    """

    username: str
    borough: bool
    team_ids: frozenset[int]
    cost_centres: frozenset[str]
    tiers: tuple[Tier, ...]
    reasons: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_empty(self) -> bool:
        """No scope at all: the user may log in but sees no data (the web layer answers 403)."""
        return not (self.borough or self.team_ids or self.cost_centres)

    def allows(
        self, scope: Scope, teams_of_service: Callable[[int], Iterable[int]] | None = None
    ) -> bool:
        """May this user see ``scope``? Anything not clearly inside their access is refused.

        ``teams_of_service(org_id)`` gives the teams below an organisation node (use
        ``teams_of_service(organisations_frame)``); a ``service:`` scope is allowed only if every one of its
        teams is the user's, and an unknown or empty service is refused.
        """
        if not isinstance(scope, Scope):
            return False
        if self.borough:
            return True
        if scope.kind in ("team", "teams"):
            ids = _int_keys(scope.keys)
            if scope.kind == "team" and len(scope.keys) != 1:
                return False
            return bool(ids) and ids <= self.team_ids
        if scope.kind == "service":
            ids = _int_keys(scope.keys)
            if len(scope.keys) != 1 or not ids or teams_of_service is None:
                return False
            teams = {int(t) for t in teams_of_service(next(iter(ids)))}
            return bool(teams) and teams <= self.team_ids
        if scope.kind == "cost_centre":
            return len(scope.keys) == 1 and scope.keys[0] in self.cost_centres
        return False  # "borough" for a non-borough user, or a kind this code does not know

    def default_scope(self, tier: Tier | None = None) -> Scope:
        """The scope a page opens on: the user's teams, their first cost centre, or the borough.

        With a ``tier``, the default for that tier's page. ``LookupError`` if the user has nothing
        to see there.
        """
        tier = tier or self._home_tier()
        if tier == "team" and self.team_ids:
            return _teams_scope(self.team_ids)
        if tier == "budget" and self.cost_centres:
            return Scope.cost_centre(sorted(self.cost_centres)[0])
        if tier in TIER_ORDER and self.borough:
            return Scope.borough()
        raise LookupError(f"{self.username} has no {tier} scope")

    def home_path(self) -> str:
        """Where to send the user after login: '/borough', '/team' or '/budget'."""
        return HOME_PATHS[self._home_tier()]

    def scope_choices(self) -> list[Scope]:
        """Scopes a picker may offer: all of the user's teams together, each team, each cost
        centre, and the borough. (A borough user may type any team or cost centre too.)"""
        choices: list[Scope] = []
        if len(self.team_ids) > 1:
            choices.append(_teams_scope(self.team_ids))
        choices += [Scope.team(t) for t in sorted(self.team_ids)]
        choices += [Scope.cost_centre(c) for c in sorted(self.cost_centres)]
        if self.borough:
            choices.append(Scope.borough())
        return choices

    def _home_tier(self) -> Tier:
        if self.borough:
            return "borough"
        if self.team_ids:
            return "team"
        if self.cost_centres:
            return "budget"
        raise LookupError(f"{self.username} has no access to any data")


def _teams_scope(team_ids: Iterable[int]) -> Scope:
    ids = sorted(int(t) for t in team_ids)
    if len(ids) == 1:
        return Scope.team(ids[0])
    # Built directly: Scope.parse caps a typed scope at 200 characters, which a head of service's
    # team list can exceed. This scope is made on the server and never parsed from a browser.
    return Scope("teams", tuple(str(t) for t in ids))


def _int_keys(keys: Iterable[str]) -> frozenset[int]:
    keys = tuple(keys)
    if not keys or not all(isinstance(k, str) and k.isdigit() and len(k) <= 18 for k in keys):
        return frozenset()
    return frozenset(int(k) for k in keys)


def teams_of_service(organisations: pd.DataFrame) -> Callable[[int], frozenset[int]]:
    """The ``teams_of_service`` argument of ``Access.allows``: TEAM nodes at or below a node."""
    _require(organisations, ORG_COLUMNS, ORGANISATION_DATASET)
    return functools.partial(teams_below, organisations)


def org_names(organisations: pd.DataFrame) -> dict[int, str]:
    """Organisation names by id, from the ``organisation`` frame."""
    if "name" not in organisations:
        return {}
    return {
        int(org): str(name)
        for org, name in zip(organisations["org_id"], organisations["name"], strict=True)
        if pd.notna(org) and pd.notna(name)
    }


def _require(frame: pd.DataFrame, columns: Iterable[str], dataset: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {dataset} frame lacks column(s) {', '.join(missing)}")


# The access frames are small (managers and cost centres, not children), so plain Python over
# the matching rows is several times faster than pandas masks over whole frames, per request.


def _rows_of(frame: pd.DataFrame, username: str, columns: Iterable[str]) -> list[dict[str, Any]]:
    """The user's rows as dicts of ``columns`` (a column the frame lacks reads as missing)."""
    hits = [
        i
        for i, name in enumerate(frame["username"].tolist())
        if isinstance(name, str) and name.strip().lower() == username
    ]
    if not hits:
        return []
    values = {c: frame[c].tolist() if c in frame else [None] * len(frame) for c in columns}
    return [{c: values[c][i] for c in columns} for i in hits]


def _running(row: dict[str, Any], start: str, end: str, day: pd.Timestamp) -> bool:
    """Does the row's [start, end) period contain ``day``? A missing start or end is open."""
    began, ended = row.get(start), row.get(end)
    return (_missing(began) or pd.Timestamp(began) <= day) and (
        _missing(ended) or pd.Timestamp(ended) > day
    )


def _missing(value: Any) -> bool:
    return value is None or bool(pd.isna(value))


def resolve_access(
    username: str,
    roles_frame: pd.DataFrame,
    organisations_frame: pd.DataFrame,
    budget_holders_frame: pd.DataFrame,
    grants: Iterable[Grant | str] = (),
    *,
    as_of: dt.date | None = None,
) -> Access:
    """A user's access from the role, organisation and budget-holder frames and their grants.

    Only roles and workers running at ``as_of`` count (the datasets already select them at
    refresh time; with ``as_of`` they are checked again, so a role that ended since the last
    refresh stops counting at once). ``grants`` are ``Grant`` records or scope strings.
    """
    name = (username or "").strip().lower()
    _require(roles_frame, ROLE_COLUMNS, ROLES_DATASET)
    _require(budget_holders_frame, HOLDER_COLUMNS, BUDGET_HOLDERS_DATASET)
    below_node = teams_of_service(organisations_frame)
    names = org_names(organisations_frame)
    borough = False
    teams: set[int] = set()
    cost_centres: set[str] = set()
    reasons: list[str] = []

    roles = _rows_of(roles_frame, name, ("role", "org_id", *DATED_COLUMNS))
    holders = _rows_of(budget_holders_frame, name, ("cost_centre_code", *DATED_COLUMNS[2:]))
    if as_of is not None:
        day = pd.Timestamp(as_of)
        roles = [
            r
            for r in roles
            if _running(r, "start_date", "end_date", day)
            and _running(r, "worker_start_date", "worker_end_date", day)
        ]
        holders = [h for h in holders if _running(h, "worker_start_date", "worker_end_date", day)]

    for row in roles:
        if _missing(row["org_id"]) or _missing(row["role"]):
            continue
        role, org = str(row["role"]).upper(), int(row["org_id"])
        where = f"{role} on {names.get(org, 'an unknown organisation')} (org {org})"
        if role == DIRECTOR:
            borough = True
            reasons.append(f"{where}: borough")
        elif role == TEAM_MANAGER:
            teams.add(org)
            reasons.append(f"{where}: team {org}")
        elif role in SERVICE_ROLES:
            below = below_node(org)
            teams |= below
            reasons.append(f"{where}: {len(below)} team(s) below it {_ids(below)}")

    for row in holders:
        code = row["cost_centre_code"]
        if _missing(code):
            continue
        cost_centres.add(str(code))
        reasons.append(f"budget holder of cost centre {code}")

    for grant in grants:
        text, by = (grant, None) if isinstance(grant, str) else (grant.scope, grant.granted_by)
        source = f"grant of {text}" + (f" by {by}" if by else "")
        try:
            scope = Scope.parse(text)
        except ScopeError:
            log.warning("ignoring unparseable grant %r for %s", text, name)
            continue
        if scope.kind == "borough":
            borough = True
            reasons.append(f"{source}: borough")
        elif scope.kind in ("team", "teams"):
            ids = _int_keys(scope.keys)
            teams |= ids
            reasons.append(f"{source}: team(s) {_ids(ids)}")
        elif scope.kind == "service":
            below = below_node(int(scope.keys[0]))
            teams |= below
            reasons.append(f"{source}: {len(below)} team(s) below it {_ids(below)}")
        elif scope.kind == "cost_centre":
            cost_centres.add(scope.keys[0])
            reasons.append(f"{source}: cost centre {scope.keys[0]}")

    if borough:
        tiers: tuple[Tier, ...] = TIER_ORDER
    else:
        tiers = tuple(
            t
            for t, has in zip(TIER_ORDER, (bool(teams), bool(cost_centres), False), strict=True)
            if has
        )
    return Access(
        username=name,
        borough=borough,
        team_ids=frozenset(teams),
        cost_centres=frozenset(cost_centres),
        tiers=tiers,
        reasons=tuple(reasons),
    )


def _ids(ids: Iterable[int]) -> str:
    ordered = sorted(ids)
    shown = ", ".join(str(i) for i in ordered[:12])
    return f"[{shown}{', ...' if len(ordered) > 12 else ''}]"


class SnapshotSource(Protocol):
    """What ``load_access`` needs of the snapshot store (``dashboard.store.SnapshotStore``)."""

    def latest(self, dataset_id: str) -> Any: ...  # a Snapshot with .frame, or None


def _latest_frame(store: SnapshotSource, dataset_id: str, columns: Iterable[str]) -> pd.DataFrame:
    snapshot = store.latest(dataset_id)
    if snapshot is None:
        # Never refreshed yet: nobody gets anything from roles (grants still apply). Fail closed.
        log.warning("no snapshot of %s yet: access from roles is empty", dataset_id)
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return snapshot.frame


def access_frames(store: SnapshotSource) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The latest (roles, organisations, budget holders) frames from the snapshot store."""
    return (
        _latest_frame(store, ROLES_DATASET, ROLE_COLUMNS),
        _latest_frame(store, ORGANISATION_DATASET, (*ORG_COLUMNS, "name")),
        _latest_frame(store, BUDGET_HOLDERS_DATASET, HOLDER_COLUMNS),
    )


def load_access(
    store: SnapshotSource,
    user_store: UserStore,
    username: str,
    as_of: dt.date | None = None,
) -> Access | None:
    """The user's access from the latest snapshots and their grants; None if they may see no
    data at all or their account is disabled. Call it per request (it is cheap: cached frames)."""
    user = user_store.get(username)
    if user is not None and user.disabled:
        return None
    roles, organisations, holders = access_frames(store)
    access = resolve_access(
        username, roles, organisations, holders, user_store.grants(username), as_of=as_of
    )
    return None if access.is_empty else access


def everyone(
    roles_frame: pd.DataFrame,
    organisations_frame: pd.DataFrame,
    budget_holders_frame: pd.DataFrame,
    grants: Iterable[Grant],
    usernames: Iterable[str] = (),
    *,
    as_of: dt.date | None = None,
) -> list[Access]:
    """Access for every person with a role, a cost centre, a grant or an account, by username."""
    grants = list(grants)
    names = {str(u).strip().lower() for u in usernames}
    for frame in (roles_frame, budget_holders_frame):
        if "username" in frame:
            names |= {str(u).strip().lower() for u in frame["username"].dropna()}
    names |= {g.username for g in grants}
    by_user: dict[str, list[Grant]] = {}
    for grant in grants:
        by_user.setdefault(grant.username, []).append(grant)
    return [
        resolve_access(
            name,
            roles_frame,
            organisations_frame,
            budget_holders_frame,
            by_user.get(name, ()),
            as_of=as_of,
        )
        for name in sorted(names)
    ]
