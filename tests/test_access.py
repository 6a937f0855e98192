"""Roles -> scopes on a hand-built organisation (tests/access_org.py), and Access.allows.

Known answers are in access_org.EXPECTED, worked out by hand from the tree and the role dates.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import create_engine

from dashboard.access import (
    Access,
    everyone,
    load_access,
    resolve_access,
    teams_of_service,
)
from dashboard.config import PROJECT_ROOT
from dashboard.datasets import load_dataset, run_dataset
from dashboard.model import Scope
from dashboard.passwords import ScryptHasher
from dashboard.reporting import ReportingPeriod
from dashboard.store import SnapshotStore
from dashboard.users import Grant, UserStore
from tests import access_org as org

QUERIES = PROJECT_ROOT / "queries"
CHEAP = ScryptHasher(log2_n=10, r=8, p=1)
WHEN = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def resolve(username: str, grants=(), roles=None) -> Access:  # noqa: ANN001
    return resolve_access(
        username,
        org.roles_frame() if roles is None else roles,
        org.organisations_frame(),
        org.budget_holders_frame(),
        grants,
        as_of=org.AS_OF,
    )


@pytest.mark.parametrize("username", sorted(org.EXPECTED))
def test_roles_give_the_hand_worked_scopes(username):
    borough, teams, cost_centres = org.EXPECTED[username]
    access = resolve(username)
    assert access.username == username
    assert access.borough is borough
    assert access.team_ids == frozenset(teams)
    assert access.cost_centres == frozenset(cost_centres)


def test_usernames_match_whatever_their_case():
    assert resolve(" ATeam ").team_ids == {10}


def test_tiers_home_and_default_scope():
    team = resolve("ateam")
    assert team.tiers == ("team",) and team.home_path() == "/team"
    assert team.default_scope() == Scope.team(10)

    service = resolve("bsm")
    assert service.tiers == ("team", "budget") and service.home_path() == "/team"
    assert service.default_scope() == Scope.parse("teams:10,11,12,13")
    assert service.default_scope("budget") == Scope.cost_centre("CC04")
    with pytest.raises(LookupError):
        service.default_scope("borough")

    budget = resolve("ebud")
    assert budget.tiers == ("budget",) and budget.home_path() == "/budget"
    assert budget.default_scope() == Scope.cost_centre("CC01")  # the first of CC01, CC02
    assert budget.scope_choices() == [Scope.cost_centre("CC01"), Scope.cost_centre("CC02")]

    director = resolve("ddir")
    assert director.tiers == ("team", "budget", "borough")  # a borough user may open any page
    assert director.home_path() == "/borough"
    assert director.default_scope() == Scope.borough()
    assert director.default_scope("team") == Scope.borough()

    nobody = resolve("isw")
    assert nobody.is_empty and nobody.tiers == ()
    with pytest.raises(LookupError):
        nobody.home_path()


def test_reasons_name_the_role_the_node_and_the_cost_centre():
    reasons = resolve("bsm").reasons
    assert "SERVICE_MANAGER on Safeguarding (org 2): 4 team(s) below it [10, 11, 12, 13]" in reasons
    assert "budget holder of cost centre CC04" in reasons
    assert resolve("ddir").reasons == ("DIRECTOR on Children's Services (org 1): borough",)


def test_an_ended_or_future_role_and_a_leaver_do_not_count_even_in_an_old_snapshot():
    # The frames above hold every role; resolve_access checks the dates itself, so a role that
    # ended after the last refresh stops counting at once.
    late = resolve_access(
        "ateam",
        org.roles_frame(),
        org.organisations_frame(),
        org.budget_holders_frame(),
        as_of=dt.date(2030, 1, 1),
    )
    assert late.team_ids == {10}
    before = resolve_access(
        "ateam",
        org.roles_frame(),
        org.organisations_frame(),
        org.budget_holders_frame(),
        as_of=dt.date(2018, 12, 31),
    )
    assert before.is_empty  # the role starts on 2019-01-01
    assert resolve("gfuture").is_empty
    assert resolve("hleft").is_empty and "CC03" not in resolve("hleft").cost_centres


def test_a_manager_who_moves_team_loses_the_old_team_when_the_frame_changes():
    before = [
        (1, 101, 10, "TEAM_MANAGER", dt.date(2019, 1, 1), None),
    ]
    after = [
        (1, 101, 10, "TEAM_MANAGER", dt.date(2019, 1, 1), dt.date(2026, 11, 1)),
        (2, 101, 20, "TEAM_MANAGER", dt.date(2026, 11, 1), None),
    ]
    assert resolve("ateam", roles=org.roles_frame(before)).team_ids == {10}
    assert resolve("ateam", roles=org.roles_frame(after)).team_ids == {20}


def test_grants_add_to_roles_and_say_who_granted_them():
    grants = [
        Grant("ateam", "service:4", "admin", WHEN),
        Grant("ateam", "cost_centre:CC03", "admin", WHEN),
        "not a scope",  # ignored (grants are validated when made; a bad one never widens access)
    ]
    access = resolve("ateam", grants)
    assert access.team_ids == {10, 20, 21}
    assert access.cost_centres == {"CC03"}
    assert access.tiers == ("team", "budget")
    assert "grant of service:4 by admin: 2 team(s) below it [20, 21]" in access.reasons
    assert resolve("isw", ["borough"]).borough
    assert resolve("isw", ["teams:12,30"]).team_ids == {12, 30}


TEAMS_OF_SERVICE = teams_of_service(org.organisations_frame())


@pytest.mark.parametrize(
    ("username", "scope", "allowed"),
    [
        # team manager of 10
        ("ateam", "team:10", True),
        ("ateam", "teams:10", True),
        ("ateam", "team:11", False),
        ("ateam", "team:999", False),
        ("ateam", "teams:10,11", False),  # one team outside
        ("ateam", "service:2", False),  # service partly outside
        ("ateam", "service:10", True),  # the team node itself: only team 10
        ("ateam", "borough", False),
        ("ateam", "cost_centre:CC01", False),
        # service manager on 2 (teams 10-13, nested node 3), budget holder of CC04
        ("bsm", "service:2", True),
        ("bsm", "service:3", True),
        ("bsm", "teams:10,13", True),
        ("bsm", "teams:10,20", False),
        ("bsm", "service:4", False),
        ("bsm", "service:1", False),  # the directorate: includes 20, 21, 30
        ("bsm", "service:999", False),  # unknown node: no teams
        ("bsm", "cost_centre:CC04", True),
        ("bsm", "cost_centre:CC01", False),
        ("bsm", "borough", False),
        # service manager on the nested node 3 only
        ("kservice", "service:3", True),
        ("kservice", "service:2", False),
        ("kservice", "team:11", False),
        # budget holder of CC01, CC02
        ("ebud", "cost_centre:CC01", True),
        ("ebud", "cost_centre:CC02", True),
        ("ebud", "cost_centre:CC03", False),
        ("ebud", "cost_centre:cc01", False),  # codes are exact
        ("ebud", "team:30", False),
        ("ebud", "borough", False),
        # director
        ("ddir", "borough", True),
        ("ddir", "team:21", True),
        ("ddir", "service:1", True),
        ("ddir", "cost_centre:CC03", True),
        # a social worker: nothing
        ("isw", "team:10", False),
        ("isw", "borough", False),
    ],
)
def test_allows_every_scope_kind(username, scope, allowed):
    assert resolve(username).allows(Scope.parse(scope), TEAMS_OF_SERVICE) is allowed


@pytest.mark.parametrize(
    "forged",
    [
        Scope("team", ("10", "11")),  # a "team" scope smuggling a second team
        Scope("team", ("10; DROP TABLE users",)),
        Scope("team", ()),
        Scope("teams", ()),
        Scope("teams", ("10", "x")),
        Scope("service", ("2", "3")),
        Scope("cost_centre", ("CC04", "CC01")),
        Scope("cost_centre", ()),
        Scope("everything", ("1",)),  # type: ignore[arg-type]
        "team:10",  # a string is not a Scope: the caller must parse (and reject) it first
        None,
    ],
)
def test_forged_scopes_are_refused(forged):
    assert resolve("bsm").allows(forged, TEAMS_OF_SERVICE) is False


def test_a_service_scope_needs_the_tree():
    assert resolve("bsm").allows(Scope.parse("service:2")) is False
    assert resolve("ddir").allows(Scope.parse("service:2")) is True


def test_everyone_lists_role_holders_budget_holders_grantees_and_accounts():
    listing = everyone(
        org.roles_frame(),
        org.organisations_frame(),
        org.budget_holders_frame(),
        [Grant("zoe", "team:30", "admin", WHEN)],
        usernames=["admin"],
        as_of=org.AS_OF,
    )
    names = [a.username for a in listing]
    assert names == sorted({*org.EXPECTED, "zoe", "admin"})
    by_name = {a.username: a for a in listing}
    assert by_name["zoe"].team_ids == {30}
    assert by_name["admin"].is_empty
    for username, (borough, teams, cost_centres) in org.EXPECTED.items():
        assert (by_name[username].borough, by_name[username].team_ids) == (borough, teams)
        assert by_name[username].cost_centres == cost_centres


def run_access_datasets(source_url: str, as_of: dt.date) -> dict[str, pd.DataFrame]:
    period = ReportingPeriod.for_date(as_of)
    engine = create_engine(source_url)
    with engine.connect() as conn:
        frames = {
            name: run_dataset(load_dataset(QUERIES / f"{name}.sql"), conn, period)
            for name in ("user_roles", "budget_holders", "organisation")
        }
    engine.dispose()
    return frames


def test_the_access_datasets_select_only_roles_and_workers_running_at_as_of(any_db_url):
    org.build_source(any_db_url)
    frames = run_access_datasets(any_db_url, org.AS_OF)
    roles = frames["user_roles"]
    # Hand-worked: management roles running on 2026-11-25 of workers in post that day.
    assert sorted(roles["worker_role_id"].tolist()) == [1, 2, 3, 4, 7, 12, 13]
    assert sorted(frames["budget_holders"]["cost_centre_code"].tolist()) == ["CC01", "CC02", "CC04"]
    for username, (borough, teams, cost_centres) in org.EXPECTED.items():
        # No as_of here: the datasets alone must already give the right answers.
        access = resolve_access(
            username, roles, frames["organisation"], frames["budget_holders"], ()
        )
        assert (access.borough, access.team_ids, access.cost_centres) == (
            borough,
            teams,
            cost_centres,
        ), username


def write(store: SnapshotStore, dataset: str, frame: pd.DataFrame) -> None:
    store.write_snapshot(
        dataset, frame, as_of=org.AS_OF, computed_at=dt.datetime.now(dt.UTC), duration_s=0.1
    )


def test_load_access_reads_the_latest_snapshots_and_the_grants(any_db_url):
    snapshots = SnapshotStore(any_db_url)
    users = UserStore(any_db_url, hasher=CHEAP)
    # Before any refresh: roles give nothing (fail closed); grants still apply.
    assert load_access(snapshots, users, "ateam") is None
    users.grant("ateam", "team:30", granted_by="admin")
    assert load_access(snapshots, users, "ateam").team_ids == {30}

    write(snapshots, "organisation", org.organisations_frame())
    write(snapshots, "budget_holders", org.budget_holders_frame())
    write(
        snapshots,
        "user_roles",
        org.roles_frame([(1, 101, 11, "TEAM_MANAGER", dt.date(2019, 1, 1), None)]),
    )
    assert load_access(snapshots, users, "ateam").team_ids == {11, 30}
    # The next refresh finds the manager moved from team 11 to team 10: team 11 is gone.
    write(
        snapshots,
        "user_roles",
        org.roles_frame([(1, 101, 10, "TEAM_MANAGER", dt.date(2026, 11, 1), None)]),
    )
    access = load_access(snapshots, users, "ateam", as_of=org.AS_OF)
    assert access.team_ids == {10, 30}
    assert not access.allows(Scope.team(11), TEAMS_OF_SERVICE)

    assert load_access(snapshots, users, "isw") is None  # no scope at all
    users.create_user("ateam", "a long enough passphrase", "Asha Team")
    users.disable("ateam")
    assert load_access(snapshots, users, "ateam") is None  # a disabled account sees nothing
    snapshots.dispose()
    users.dispose()
