"""Demo accounts: one per tier and scope, picked from the borough's own workers, demo-only."""

from __future__ import annotations

import datetime as dt

from dashboard.access import resolve_access
from dashboard.demo_users import create_demo_users
from dashboard.users import UserStore
from tests import access_org as org
from tests.test_access import run_access_datasets


def test_picks_on_the_hand_built_organisation(any_db_url, sqlite_url):
    org.build_source(sqlite_url)
    made = create_demo_users(any_db_url, sqlite_url, org.AS_OF)
    # Hand-worked from tests/access_org.py: the single-team manager in child protection with the
    # lowest team id; the service manager with most teams; the budget holder with no teams; the
    # director; and the admin.
    assert [(u.username, u.display_name, u.tier, u.scope, u.is_admin) for u in made] == [
        ("ateam", "Asha Team", "team", "team 10 (CP Team A)", False),
        (
            "bsm",
            "Ben Service",
            "team",
            "4 teams: 10 (CP Team A), 11 (CP Team B), 12 (North Team 1), 13 (North Team 2)",
            False,
        ),
        ("ebud", "Ema Budget", "budget", "2 cost centre(s): CC01, CC02", False),
        ("ddir", "Dev Director", "borough", "the borough", False),
        (
            "admin",
            "Demo administrator",
            "borough",
            "the borough (by grant) and the admin pages",
            True,
        ),
    ]
    assert all(u.password == "demo" and u.is_demo for u in made)

    users = UserStore(any_db_url)
    for demo in made:
        assert users.verify(demo.username, "demo") is None  # refused outside demo mode
        user = users.verify(demo.username, "demo", allow_demo=True)
        assert user is not None and user.is_demo and user.is_admin is demo.is_admin
    assert [g.scope for g in users.grants("admin")] == ["borough"]
    users.dispose()


def test_running_again_replaces_demo_accounts_and_leaves_real_ones(any_db_url, sqlite_url):
    org.build_source(sqlite_url)
    users = UserStore(any_db_url)
    users.create_user("ebud", "a long enough passphrase", "Ema (real account)")
    create_demo_users(any_db_url, sqlite_url, org.AS_OF)
    again = create_demo_users(any_db_url, sqlite_url, org.AS_OF)
    # ebud has a real account, so is not picked: the other budget holder, bsm, stands for the
    # budget tier as well as the service manager's (one account).
    assert [(u.username, u.tier) for u in again] == [
        ("ateam", "team"),
        ("bsm", "team"),
        ("bsm", "budget"),
        ("ddir", "borough"),
        ("admin", "borough"),
    ]
    assert users.get("ebud").display_name == "Ema (real account)"
    assert users.verify("ebud", "demo", allow_demo=True) is None
    assert sorted(u.username for u in users.list_users()) == [
        "admin",
        "ateam",
        "bsm",
        "ddir",
        "ebud",
    ]
    users.dispose()


def test_demo_users_of_the_generated_borough_cover_every_tier(small_demo_source_url, sqlite_url):
    as_of = dt.date(2026, 11, 25)
    made = create_demo_users(sqlite_url, small_demo_source_url, as_of)
    assert [u.tier for u in made] == ["team", "team", "budget", "borough", "borough"]
    assert len({u.username for u in made}) == 5
    frames = run_access_datasets(small_demo_source_url, as_of)

    def access(username: str):  # noqa: ANN202
        return resolve_access(
            username,
            frames["user_roles"],
            frames["organisation"],
            frames["budget_holders"],
            as_of=as_of,
        )

    team_manager, service_manager, budget_holder, director, admin = made
    assert len(access(team_manager.username).team_ids) == 1
    assert not access(team_manager.username).borough
    assert len(access(service_manager.username).team_ids) > 1
    assert not access(service_manager.username).borough
    assert access(budget_holder.username).cost_centres
    assert not access(budget_holder.username).borough
    assert access(director.username).borough
    assert admin.username == "admin" and admin.is_admin
