"""Accounts and grants in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from sqlalchemy import create_engine, select

from dashboard.access_tables import create_schema, user_grants, users
from dashboard.model import ScopeError
from dashboard.passwords import PasswordPolicyError, ScryptHasher, parse_hash
from dashboard.users import UserError, UserStore, normalise_username

PASSWORD = "a long enough passphrase"
CHEAP = ScryptHasher(log2_n=10, r=8, p=1)  # the real code at a low cost, to spare the CPU


@dataclass(frozen=True)
class CountingHasher(ScryptHasher):
    """The real hasher, recording which hash strings it was asked to check."""

    checked: list[str] = field(default_factory=list, compare=False)

    def verify(self, password: str, encoded: str) -> bool:
        self.checked.append(encoded)
        return super().verify(password, encoded)


def stored_row(store: UserStore, username: str):
    with store.engine.connect() as conn:
        return conn.execute(select(users).where(users.c.username == username)).one()


def test_create_and_verify_with_the_default_cost(any_db_url):
    store = UserStore(any_db_url)
    user = store.create_user("ATeam ", PASSWORD, "Asha Team")
    assert user.username == "ateam" and user.display_name == "Asha Team"
    assert not user.is_admin and not user.is_demo and user.has_password
    assert store.verify("ateam", PASSWORD) == user
    assert store.verify("ATEAM", PASSWORD) == user  # usernames are case-insensitive
    assert store.verify("ateam", PASSWORD + "x") is None
    row = stored_row(store, "ateam")
    assert PASSWORD not in row.password_hash
    assert parse_hash(row.password_hash)[:3] == (15, 8, 3)
    store.dispose()


def test_unknown_user_checks_a_dummy_hash_of_the_same_cost(any_db_url):
    hasher = CountingHasher(log2_n=10, r=8, p=1)
    store = UserStore(any_db_url, hasher=hasher)
    store.create_user("ateam", PASSWORD, "Asha Team")
    real_hash = stored_row(store, "ateam").password_hash

    assert store.verify("nobody", PASSWORD) is None
    assert store.verify("'; DROP TABLE users;--", PASSWORD) is None  # not even a username
    assert len(hasher.checked) == 2
    dummy = hasher.checked[0]
    assert dummy != real_hash and hasher.checked[1] == dummy
    assert parse_hash(dummy)[:3] == parse_hash(real_hash)[:3]  # same work as a real check

    hasher.checked.clear()
    assert store.verify("ateam", "wrong password here") is None
    assert hasher.checked == [real_hash]
    store.dispose()


def test_disabled_and_demo_accounts_are_refused_after_the_same_work(any_db_url):
    hasher = CountingHasher(log2_n=10, r=8, p=1)
    store = UserStore(any_db_url, hasher=hasher)
    store.create_user("ateam", PASSWORD, "Asha Team")
    demo = store.create_user("ddir", "demo", "Dev Director", is_demo=True)
    assert demo.is_demo

    store.disable("ateam")
    assert store.get("ateam").disabled
    assert store.verify("ateam", PASSWORD) is None
    store.enable("ateam")
    assert store.verify("ateam", PASSWORD) is not None

    hasher.checked.clear()
    assert store.verify("ddir", "demo") is None  # not in demo mode
    assert hasher.checked == [stored_row(store, "ddir").password_hash]
    assert store.verify("ddir", "demo", allow_demo=True).username == "ddir"
    assert store.verify("ddir", "wrong", allow_demo=True) is None
    store.dispose()


def test_password_policy_and_single_sign_on_accounts(any_db_url):
    store = UserStore(any_db_url, hasher=CHEAP)
    with pytest.raises(PasswordPolicyError):
        store.create_user("ateam", "short", "Asha Team")
    assert store.get("ateam") is None
    sso = store.create_user("bsm", None, "Ben Service")
    assert not sso.has_password
    assert store.verify("bsm", "") is None
    assert store.verify("bsm", PASSWORD) is None
    store.dispose()


def test_set_password_replaces_the_old_one_and_ends_demo_status(any_db_url):
    store = UserStore(any_db_url, hasher=CHEAP)
    store.create_user("ddir", "demo", "Dev Director", is_demo=True)
    store.set_password("ddir", PASSWORD)
    assert store.verify("ddir", "demo", allow_demo=True) is None
    user = store.verify("ddir", PASSWORD)
    assert user is not None and not user.is_demo
    with pytest.raises(PasswordPolicyError):
        store.set_password("ddir", "tiny")
    with pytest.raises(UserError, match="no such user"):
        store.set_password("nobody", PASSWORD)
    store.dispose()


def test_an_old_cost_is_upgraded_at_the_next_good_login(any_db_url):
    UserStore(any_db_url, hasher=CHEAP).create_user("ateam", PASSWORD, "Asha Team")
    stronger = ScryptHasher(log2_n=11, r=8, p=1)
    store = UserStore(any_db_url, hasher=stronger)
    assert parse_hash(stored_row(store, "ateam").password_hash)[0] == 10
    assert store.verify("ateam", "wrong password here") is None
    assert parse_hash(stored_row(store, "ateam").password_hash)[0] == 10  # not on a failure
    assert store.verify("ateam", PASSWORD) is not None
    assert parse_hash(stored_row(store, "ateam").password_hash)[0] == 11
    assert store.verify("ateam", PASSWORD) is not None
    store.dispose()


def test_duplicate_and_bad_usernames_are_refused(any_db_url):
    store = UserStore(any_db_url, hasher=CHEAP)
    store.create_user("ateam", PASSWORD, "Asha Team", is_admin=True)
    with pytest.raises(UserError, match="already exists"):
        store.create_user("ATEAM", PASSWORD, "Someone Else")
    for bad in ("", "   ", "a b", "x" * 101, "robert'); drop table users;--", "-lead"):
        with pytest.raises(UserError):
            normalise_username(bad)
    assert [u.username for u in store.list_users()] == ["ateam"]
    assert store.list_users()[0].is_admin
    store.dispose()


def test_grants_are_canonical_kept_when_revoked_and_can_be_granted_again(any_db_url):
    moments = iter(dt.datetime(2026, 11, 25, 9, m, tzinfo=dt.UTC) for m in range(10))
    store = UserStore(any_db_url, hasher=CHEAP, clock=lambda: next(moments))
    first = store.grant("ATeam", "teams:12,3", granted_by="Admin")
    assert (first.username, first.scope, first.granted_by) == ("ateam", "teams:3,12", "admin")
    assert first.granted_at == dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
    again = store.grant("ateam", "teams:3,12", granted_by="other")
    assert again == first  # already held: the original grant
    store.grant("ateam", "cost_centre:CC01", granted_by="admin")
    store.grant("bsm", "borough", granted_by="admin")  # no account needed (single sign-on)
    assert [g.scope for g in store.grants("ateam")] == ["teams:3,12", "cost_centre:CC01"]
    with pytest.raises(ScopeError):
        store.grant("ateam", "everything", granted_by="admin")

    assert store.revoke("ateam", "teams:12,3", revoked_by="admin") is True
    assert store.revoke("ateam", "teams:12,3", revoked_by="admin") is False
    assert [g.scope for g in store.grants("ateam")] == ["cost_centre:CC01"]
    store.grant("ateam", "teams:3,12", granted_by="admin")
    # Oldest first: the new grant of teams:3,12 comes after the cost centre.
    assert [g.scope for g in store.grants("ateam")] == ["cost_centre:CC01", "teams:3,12"]
    assert [(g.username, g.scope) for g in store.all_grants()] == [
        ("ateam", "cost_centre:CC01"),
        ("ateam", "teams:3,12"),
        ("bsm", "borough"),
    ]
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(user_grants.c.scope, user_grants.c.revoked_by).order_by(user_grants.c.grant_id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("teams:3,12", "admin"),  # the revoked grant is kept, with who revoked it
        ("cost_centre:CC01", None),
        ("borough", None),
        ("teams:3,12", None),
    ]
    store.dispose()


def test_demo_users_are_deleted_with_their_grants_and_real_ones_kept(any_db_url):
    store = UserStore(any_db_url, hasher=CHEAP)
    store.create_user("ateam", PASSWORD, "Asha Team")
    store.create_user("ddir", "demo", "Dev Director", is_demo=True)
    store.grant("ddir", "borough", granted_by="demo-data")
    store.grant("ateam", "team:10", granted_by="admin")
    assert store.delete_demo_users() == 1
    assert [u.username for u in store.list_users()] == ["ateam"]
    assert store.grants("ddir") == [] and len(store.grants("ateam")) == 1
    store.dispose()


def test_create_schema_is_idempotent(any_db_url):
    engine = create_engine(any_db_url)
    create_schema(engine)
    create_schema(engine)
    UserStore(engine, hasher=CHEAP).create_user("ateam", PASSWORD, "Asha Team")
    create_schema(engine)
    assert UserStore(any_db_url, hasher=CHEAP).get("ateam") is not None
    engine.dispose()
