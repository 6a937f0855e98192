"""Demo accounts: one per tier and scope, picked from the generated borough's own workers.

``csc-dashboard demo-data`` calls ``create_demo_users`` after building the borough. Each account
is a real worker of the demo borough (so its scope comes from its roles, like anyone's), with
the published password ``demo``. They are marked ``is_demo``: ``UserStore.verify`` refuses them
unless the web app runs in demo mode, so a demo store copied to production opens nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine

from dashboard.access import (
    BUDGET_HOLDERS_DATASET,
    ORGANISATION_DATASET,
    ROLES_DATASET,
    SERVICE_ROLES,
    TEAM_MANAGER,
    Access,
    everyone,
)
from dashboard.config import PROJECT_ROOT
from dashboard.datasets import load_dataset, run_dataset
from dashboard.reporting import ReportingPeriod
from dashboard.users import UserStore

DEMO_PASSWORD = "demo"  # published in the README: demo mode only
ADMIN_USERNAME = "admin"
# Team managers of these service areas make the liveliest team page; the front door and the
# finance team come last.
TEAM_AREA_PREFERENCE = ("CIN_CP", "ASSESSMENT", "CLA", "LEAVING_CARE", "DISABILITY", "FRONT_DOOR")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    display_name: str
    tier: str  # the page they land on: team, budget or borough (admin: borough)
    scope: str  # what they see, for people: "team 12 (Child in Need and Protection Team 1)"
    is_admin: bool = False
    is_demo: bool = True  # refused outside demo mode


def read_access_datasets(
    source_url: str, as_of: dt.date, queries_dir: Path
) -> dict[str, pd.DataFrame]:
    """Run the access datasets once on the source (demo-data time, not a page view)."""
    period = ReportingPeriod.for_date(as_of)
    engine = create_engine(source_url)
    try:
        with engine.connect() as conn:
            return {
                dataset: run_dataset(load_dataset(queries_dir / f"{dataset}.sql"), conn, period)
                for dataset in (ROLES_DATASET, ORGANISATION_DATASET, BUDGET_HOLDERS_DATASET)
            }
    finally:
        engine.dispose()


def create_demo_users(
    store_url: str,
    source_url: str,
    as_of: dt.date,
    *,
    queries_dir: Path | None = None,
) -> list[DemoUser]:
    """Create the demo accounts in the store (replacing earlier demo accounts); return them.

    A team manager (one team), a service manager (several teams), a budget holder (cost
    centres), the director (the borough), and ``admin`` (admin pages, plus a borough grant).
    A tier the borough has nobody for is left out, with a warning. Real (non-demo) accounts
    are never touched, and a worker who has one is not picked.
    """
    frames = read_access_datasets(source_url, as_of, queries_dir or PROJECT_ROOT / "queries")
    names = _display_names(frames[ROLES_DATASET], frames[BUDGET_HOLDERS_DATASET])
    store = UserStore(store_url)
    try:
        store.delete_demo_users()
        real = {u.username for u in store.list_users()}
        created: list[DemoUser] = []
        for username, tier, scope in pick_demo_users(frames, as_of, exclude=real):
            display = names.get(username, username)
            if store.get(username) is None:  # one person may stand for two tiers in a tiny org
                store.create_user(username, DEMO_PASSWORD, display, is_demo=True)
            created.append(DemoUser(username, DEMO_PASSWORD, display, tier, scope))
        if ADMIN_USERNAME in real:
            log.warning(
                "an account named %r exists and is not a demo one: left alone", ADMIN_USERNAME
            )
            return created
        store.create_user(
            ADMIN_USERNAME, DEMO_PASSWORD, "Demo administrator", is_admin=True, is_demo=True
        )
        store.grant(ADMIN_USERNAME, "borough", granted_by="demo-data")
        created.append(
            DemoUser(
                ADMIN_USERNAME,
                DEMO_PASSWORD,
                "Demo administrator",
                "borough",
                "the borough (by grant) and the admin pages",
                is_admin=True,
            )
        )
        return created
    finally:
        store.dispose()


def pick_demo_users(
    frames: dict[str, pd.DataFrame], as_of: dt.date, *, exclude: Collection[str] = ()
) -> list[tuple[str, str, str]]:
    """``(username, tier, scope description)`` for a team manager, a service manager, a budget
    holder and the director, chosen deterministically from the access datasets' frames."""
    roles, organisations = frames[ROLES_DATASET], frames[ORGANISATION_DATASET]
    holders = frames[BUDGET_HOLDERS_DATASET]
    access = [
        a
        for a in everyone(roles, organisations, holders, (), as_of=as_of)
        if a.username not in exclude
    ]
    org_names = dict(zip(organisations["org_id"].astype(int), organisations["name"], strict=True))
    area = dict(
        zip(organisations["org_id"].astype(int), organisations["service_area"], strict=True)
    )
    role_sets: dict[str, set[str]] = {}
    for user, role in zip(roles["username"], roles["role"], strict=True):
        role_sets.setdefault(str(user).strip().lower(), set()).add(str(role).upper())

    def has(a: Access, *wanted: str) -> bool:
        return bool(role_sets.get(a.username, set()) & set(wanted))

    def team_rank(a: Access) -> tuple:
        place = area.get(_one(a.team_ids))
        order = TEAM_AREA_PREFERENCE.index(place) if place in TEAM_AREA_PREFERENCE else 99
        return (order, _one(a.team_ids))

    def teams(a: Access) -> str:
        listed = ", ".join(f"{t} ({org_names.get(t, '?')})" for t in sorted(a.team_ids))
        return f"{len(a.team_ids)} teams: {listed}"

    tiers = [
        (
            "team",
            sorted(
                (
                    a
                    for a in access
                    if len(a.team_ids) == 1
                    and not (a.borough or a.cost_centres)
                    and has(a, TEAM_MANAGER)
                ),
                key=team_rank,
            ),
            lambda a: f"team {_one(a.team_ids)} ({org_names.get(_one(a.team_ids), '?')})",
        ),
        (
            "team",
            sorted(
                (
                    a
                    for a in access
                    if len(a.team_ids) > 1 and not a.borough and has(a, *SERVICE_ROLES)
                ),
                # A service manager proper before a head of service over everything; most teams.
                key=lambda a: (not has(a, "SERVICE_MANAGER"), -len(a.team_ids), a.username),
            ),
            teams,
        ),
        (
            "budget",
            sorted(
                (a for a in access if a.cost_centres and not a.borough),
                key=lambda a: (bool(a.team_ids), -len(a.cost_centres), a.username),
            ),
            lambda a: f"{len(a.cost_centres)} cost centre(s): {', '.join(sorted(a.cost_centres))}",
        ),
        (
            "borough",
            sorted(
                (a for a in access if a.borough and has(a, "DIRECTOR")), key=lambda a: a.username
            ),
            lambda a: "the borough",
        ),
    ]
    picked: list[tuple[str, str, str]] = []
    taken: set[str] = set()
    for tier, candidates, describe in tiers:
        # A different person per tier where the borough has one; else someone already picked.
        free = [a for a in candidates if a.username not in taken] or candidates
        if not free:
            log.warning("the demo borough has no %s user to show", tier)
            continue
        taken.add(free[0].username)
        picked.append((free[0].username, tier, describe(free[0])))
    return picked


def _one(ids: frozenset[int]) -> int:
    (only,) = ids
    return only


def _display_names(*frames: pd.DataFrame) -> dict[str, str]:
    names: dict[str, str] = {}
    for frame in frames:
        for user, first, last in zip(
            frame["username"], frame["first_names"], frame["last_names"], strict=True
        ):
            parts = [str(p) for p in (first, last) if pd.notna(p) and str(p).strip()]
            if pd.notna(user) and parts:
                names.setdefault(str(user).strip().lower(), " ".join(parts))
    return names
