"""The failed-login throttle, per username and per client address, on SQLite and PostgreSQL.

Time is injected through ``clock`` (no sleeps). Known answers, by hand: with 5 failures allowed
in 15 minutes and a 15-minute lockout, the 5th failure at 09:04 locks until 09:19.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from dashboard.access_tables import login_failures
from dashboard.login import attempt_login
from dashboard.passwords import ScryptHasher
from dashboard.throttle import LoginThrottle
from dashboard.users import UserStore


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def fail(throttle: LoginThrottle, clock: Clock, times: int, user: str, ip: str) -> None:
    for _ in range(times):
        throttle.record_failure(user, ip)
        clock.advance(minutes=1)


def test_locks_a_username_after_five_failures_and_releases_after_the_lockout(any_db_url, clock):
    throttle = LoginThrottle(any_db_url, clock=clock, max_ip_failures=100)
    fail(throttle, clock, 4, "ateam", "10.0.0.1")  # 09:00 .. 09:03
    assert throttle.check("ateam", "10.0.0.1") == 0
    throttle.record_failure("ateam", "10.0.0.2")  # the 5th, at 09:04, from another address
    assert throttle.check("ateam", "10.0.0.1") == 15 * 60
    assert throttle.check("ATeam", "10.0.0.9") == 15 * 60  # any address, any case
    assert throttle.check("bsm", "10.0.0.1") == 0  # other users are not affected
    clock.advance(minutes=14, seconds=30)  # 09:18:30
    assert throttle.check("ateam", "10.0.0.1") == 30
    clock.advance(seconds=30)  # 09:19: released
    assert throttle.check("ateam", "10.0.0.1") == 0
    throttle.dispose()


def test_failures_older_than_the_window_do_not_count(any_db_url, clock):
    throttle = LoginThrottle(any_db_url, clock=clock, max_ip_failures=100)
    fail(throttle, clock, 4, "ateam", "10.0.0.1")  # 09:00 .. 09:03
    clock.advance(minutes=13)  # 09:17: 09:00 to 09:02 are out of the 15 minutes before it
    throttle.record_failure("ateam", "10.0.0.1")
    assert throttle.check("ateam", "10.0.0.1") == 0  # 2 in the window (09:03, 09:17), not 5
    throttle.dispose()


def test_locks_an_address_spraying_many_usernames(any_db_url, clock):
    throttle = LoginThrottle(any_db_url, clock=clock, max_failures=5, max_ip_failures=8)
    for number in range(8):  # 8 different usernames, one guess each
        throttle.record_failure(f"user{number}", "203.0.113.7")
    assert throttle.check("someone", "203.0.113.7") == 15 * 60
    assert throttle.check("someone", "203.0.113.8") == 0  # other addresses are not affected
    clock.advance(minutes=15)
    assert throttle.check("someone", "203.0.113.7") == 0
    throttle.dispose()


def test_the_address_limit_defaults_higher_than_the_username_limit(any_db_url, clock):
    # Staff behind one council proxy address must not lock each other out with a few typos.
    throttle = LoginThrottle(any_db_url, clock=clock)
    assert throttle.max_ip_failures == 20
    for number in range(19):
        throttle.record_failure(f"user{number}", "198.51.100.1")
    assert throttle.check("someone", "198.51.100.1") == 0
    throttle.record_failure("user19", "198.51.100.1")
    assert throttle.check("someone", "198.51.100.1") == 15 * 60
    throttle.dispose()


def test_success_clears_the_username_but_not_the_address(any_db_url, clock):
    throttle = LoginThrottle(any_db_url, clock=clock, max_failures=3, max_ip_failures=5)
    fail(throttle, clock, 2, "ateam", "10.0.0.1")
    throttle.record_success("ateam", "10.0.0.1")
    fail(throttle, clock, 2, "ateam", "10.0.0.1")
    assert throttle.check("ateam", "10.0.0.2") == 0  # 2 since the success, limit 3
    throttle.record_failure("ateam", "10.0.0.1")  # the address's 5th
    assert throttle.check("bsm", "10.0.0.1") > 0
    throttle.dispose()


def test_settings_are_honoured_and_odd_input_is_counted_not_rejected(any_db_url, clock):
    throttle = LoginThrottle(
        any_db_url,
        clock=clock,
        max_failures=2,
        window=dt.timedelta(minutes=5),
        lockout=dt.timedelta(minutes=1),
    )
    hostile = "x' OR '1'='1" + "y" * 1000
    throttle.record_failure(hostile, None)
    throttle.record_failure(hostile, None)
    assert throttle.check(hostile, None) == 60
    clock.advance(minutes=1)
    assert throttle.check(hostile, None) == 0
    throttle.dispose()


def test_old_rows_are_pruned(any_db_url, clock):
    throttle = LoginThrottle(any_db_url, clock=clock)
    fail(throttle, clock, 3, "ateam", "10.0.0.1")
    clock.advance(hours=1)
    throttle.record_failure("bsm", "10.0.0.2")
    with throttle.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(login_failures)) == 2
    throttle.dispose()


def test_the_count_is_shared_between_throttle_objects(any_db_url, clock):
    # Two gunicorn workers each have their own LoginThrottle over the same store.
    first = LoginThrottle(any_db_url, clock=clock, max_failures=3)
    second = LoginThrottle(any_db_url, clock=clock, max_failures=3)
    first.record_failure("ateam", "10.0.0.1")
    second.record_failure("ateam", "10.0.0.2")
    first.record_failure("ateam", "10.0.0.3")
    assert second.check("ateam", "10.0.0.4") == 15 * 60
    first.dispose()
    second.dispose()


def test_bad_settings_are_refused(sqlite_url):
    with pytest.raises(ValueError):
        LoginThrottle(sqlite_url, max_failures=0)
    with pytest.raises(ValueError):
        LoginThrottle(sqlite_url, window=dt.timedelta(0))


def test_attempt_login_throttles_before_checking_the_password(any_db_url, clock):
    users = UserStore(any_db_url, hasher=ScryptHasher(log2_n=10, r=8, p=1))
    users.create_user("ateam", "a long enough passphrase", "Asha Team")
    users.create_user("ddir", "demo", "Dev Director", is_demo=True)
    throttle = LoginThrottle(any_db_url, clock=clock, max_failures=3)

    def login(username: str, password: str, *, demo: bool = False):  # noqa: ANN202
        return attempt_login(users, throttle, username, password, "10.0.0.1", allow_demo=demo)

    assert login("ateam", "a long enough passphrase").user.username == "ateam"
    assert login("ddir", "demo").ok is False  # a demo account outside demo mode: a failure
    assert login("ddir", "demo", demo=True).ok is True
    for _ in range(3):
        result = login("ateam", "a wrong guess at it")
        assert (result.ok, result.retry_after) == (False, 0)
    locked = login("ateam", "a long enough passphrase")  # the right password, while locked
    assert (locked.ok, locked.retry_after) == (False, 15 * 60)
    clock.advance(minutes=15)
    assert login("ateam", "a long enough passphrase").ok is True
    # The success cleared the username's count: three fresh guesses are allowed again.
    assert [login("ateam", "nope nope nope").retry_after for _ in range(3)] == [0, 0, 0]
    assert login("ateam", "nope nope nope").retry_after == 15 * 60
    users.dispose()
    throttle.dispose()
