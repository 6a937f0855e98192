"""Identities kept until an account changes: the web worker follows the store's account change
counter (once a second, from the snapshot preloader) instead of reading every user's account and
grants again every few seconds, and a change made anywhere through ``UserStore`` (the admin
pages, the CLI, another worker) still applies within a second or two."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import event

from dashboard.store import SnapshotStore
from dashboard.users import UserStore
from dashboard.web import context as web_context
from dashboard.web.accounts import CHANGES_FRESH_S, IDENTITY_MAX_SECONDS, IDENTITY_SECONDS
from dashboard.web.app import create_app
from tests.topology import poll_body, wait_until
from tests.web_support import demo_borough, logged_in


@pytest.fixture(scope="module")
def borough(small_demo_source_url, tmp_path_factory):
    return demo_borough(small_demo_source_url, tmp_path_factory.mktemp("accounts-follow"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def accounts(borough):
    found = web_context.of(create_app(borough.settings).server).accounts
    found.clock = Clock()
    return found


def store_queries(accounts) -> list[str]:
    """Every statement the accounts' engine runs from now on."""
    seen: list[str] = []
    event.listen(
        accounts.users.engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_rest: seen.append(statement),
    )
    return seen


def test_a_followed_identity_is_kept_until_an_account_changes(accounts, borough):
    user = borough.director
    accounts.follow_changes()
    first_user, first_access = accounts.identity(user)
    assert first_user is not None and first_access is not None
    queries = store_queries(accounts)

    accounts.clock.now += 30  # far past IDENTITY_SECONDS, the counter read again meanwhile
    accounts.follow_changes()
    again = accounts.identity(user)

    assert 30 > IDENTITY_SECONDS
    assert again == (first_user, first_access)
    assert queries == [queries[0]] and "account_changes" in queries[0]  # the counter only

    # The CLI (its own engine) disables the account: the next reading of the counter shows it.
    cli = UserStore(borough.settings.store_url)
    try:
        cli.disable(user)
        assert accounts.identity(user)[0].disabled is False  # not followed yet
        accounts.follow_changes()
        user_now, access_now = accounts.identity(user)
        assert user_now.disabled is True and access_now is None
    finally:
        cli.enable(user)
        cli.dispose()


def test_without_a_recent_reading_of_the_counter_identities_last_seconds(accounts, borough):
    user = borough.director
    accounts.follow_changes()
    accounts.identity(user)
    accounts.clock.now += CHANGES_FRESH_S + 1  # the preloader stopped reading the counter
    queries = store_queries(accounts)
    accounts.identity(user)
    assert any("FROM users" in q for q in queries)  # read again

    queries.clear()
    accounts.identity(user)
    assert queries == []  # and kept for IDENTITY_SECONDS
    accounts.clock.now += IDENTITY_SECONDS + 0.1
    accounts.identity(user)
    assert any("FROM users" in q for q in queries)


def _write_changed(settings, dataset_id: str, change) -> None:
    """A new snapshot of ``dataset_id``: its latest frame, changed by ``change``."""
    store = SnapshotStore.from_settings(settings)
    try:
        frame = store.latest(dataset_id).frame.copy()
        change(frame)
        now = dt.datetime.now(dt.UTC)
        store.write_snapshot(
            dataset_id, frame, as_of=settings.as_of, computed_at=now, duration_s=0.1
        )
    finally:
        store.dispose()


def test_a_followed_identity_is_read_again_after_its_limit_or_new_roles(accounts, borough):
    user = borough.director
    accounts.follow_changes()
    accounts.identity(user)
    queries = store_queries(accounts)

    # A new snapshot of another dataset (here the workforce: an FTE halved) keeps every
    # identity: 700 users must not all read their accounts again when their pages re-render.
    def halve_one_fte(frame):
        frame.loc[frame.index[0], "fte"] = frame["fte"].iloc[0] / 2

    _write_changed(borough.settings, "workforce", halve_one_fte)
    assert accounts.identity(user)[0] is not None
    assert not any("FROM users" in q for q in queries)

    # A new snapshot of the roles: they may have changed.
    def one_role_ends_today(frame):
        frame.loc[frame.index[-1], "end_date"] = pd.Timestamp(borough.settings.as_of)

    _write_changed(borough.settings, "user_roles", one_role_ends_today)
    accounts.identity(user)
    assert any("FROM users" in q for q in queries)

    queries.clear()
    accounts.identity(user)
    assert queries == []  # kept again
    accounts.clock.now += IDENTITY_MAX_SECONDS + 1  # an edit made straight in the database
    accounts.follow_changes()
    accounts.identity(user)
    assert any("FROM users" in q for q in queries)


def test_a_disabled_account_is_logged_out_within_seconds_on_a_following_worker(borough):
    app = create_app(borough.settings)
    data = web_context.of(app.server).data
    stop = data.preload(0.05, stale_after_s=30)
    cli = UserStore(borough.settings.store_url)
    try:
        wait_until(lambda: data.served_token() is not None, "the first version published")
        manager = logged_in(app, borough.team_manager)
        token = data.served_token()
        assert manager.post("/_dash-update-component", json=poll_body(token)).status_code == 200

        cli.disable(borough.team_manager)

        wait_until(
            lambda: (
                manager.post("/_dash-update-component", json=poll_body(token)).status_code == 401
            ),
            "the disabled account's poll refused",
            deadline_s=10,
        )
    finally:
        stop()
        cli.enable(borough.team_manager)
        cli.dispose()
