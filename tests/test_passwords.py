"""Password hashing: salted scrypt, parameters in the hash string, policy, constant-time verify."""

from __future__ import annotations

import base64
import hashlib

import pytest

from dashboard.passwords import (
    MIN_PASSWORD_LENGTH,
    PasswordHashError,
    PasswordPolicyError,
    ScryptHasher,
    check_password_policy,
    parse_hash,
)

GOOD = "correct horse battery staple"


def test_hash_verifies_the_right_password_and_refuses_a_wrong_one():
    hasher = ScryptHasher()
    encoded = hasher.hash(GOOD)
    assert hasher.verify(GOOD, encoded) is True
    assert hasher.verify(GOOD + "!", encoded) is False
    assert hasher.verify("", encoded) is False
    assert hasher.verify(GOOD.upper(), encoded) is False


def test_hash_string_carries_algorithm_cost_salt_and_key():
    encoded = ScryptHasher().hash(GOOD)
    assert encoded.startswith("$scrypt$ln=15,r=8,p=3$")
    assert GOOD not in encoded
    log2_n, r, p, salt, key = parse_hash(encoded)
    assert (log2_n, r, p) == (15, 8, 3)
    assert len(salt) == 16 and len(key) == 32
    # The key is scrypt of the password with that salt and cost: recomputed independently here.
    expected = hashlib.scrypt(
        GOOD.encode(), salt=salt, n=2**15, r=8, p=3, maxmem=64 * 1024 * 1024, dklen=32
    )
    assert key == expected
    assert encoded.split("$")[-1] == base64.b64encode(expected).decode().rstrip("=")


def test_each_hash_has_its_own_salt():
    hasher = ScryptHasher(log2_n=10)
    first, second = hasher.hash(GOOD), hasher.hash(GOOD)
    assert first != second
    assert parse_hash(first)[3] != parse_hash(second)[3]
    assert hasher.verify(GOOD, first) and hasher.verify(GOOD, second)


def test_cost_is_read_from_the_hash_and_a_different_cost_needs_rehash():
    cheap = ScryptHasher(log2_n=10, r=8, p=1)
    encoded = cheap.hash(GOOD)
    # Verified by a hasher of another cost: the string says how it was made.
    assert ScryptHasher().verify(GOOD, encoded) is True
    assert ScryptHasher().needs_rehash(encoded) is True
    assert cheap.needs_rehash(encoded) is False
    assert ScryptHasher().needs_rehash("not a hash") is True


def test_unicode_is_normalised_so_composed_and_decomposed_accents_match():
    hasher = ScryptHasher(log2_n=10)
    composed = "caf\u00e9 au lait please"
    decomposed = "cafe\u0301 au lait please"
    assert hasher.verify(decomposed, hasher.hash(composed)) is True


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plain text",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$a2V5",
        "$scrypt$ln=15,r=8$c2FsdA$a2V5",
        "$scrypt$ln=99,r=8,p=1$c2FsdA$a2V5",  # absurd cost: refused, not attempted
        "$scrypt$ln=15,r=8,p=1$c2Fs'; DROP TABLE users;--$a2V5",
    ],
)
def test_malformed_hash_strings_are_refused_with_a_clear_error(encoded):
    with pytest.raises(PasswordHashError):
        ScryptHasher().verify(GOOD, encoded)


def test_over_long_password_is_refused_not_hashed_at_length():
    hasher = ScryptHasher(log2_n=10)
    encoded = hasher.hash(GOOD)
    assert hasher.verify(GOOD + "x" * 5000, encoded) is False


def test_policy_requires_a_minimum_length_and_never_echoes_the_password():
    secret = "short-Pw1"
    with pytest.raises(PasswordPolicyError) as caught:
        check_password_policy(secret)
    assert str(MIN_PASSWORD_LENGTH) in str(caught.value)
    assert secret not in str(caught.value)
    with pytest.raises(PasswordPolicyError):
        check_password_policy(" " * 20)
    with pytest.raises(PasswordPolicyError):
        check_password_policy("a" * 5000)
    check_password_policy("a" * MIN_PASSWORD_LENGTH)  # exactly the minimum is fine


def test_hasher_refuses_out_of_range_costs():
    with pytest.raises(ValueError):
        ScryptHasher(log2_n=0)
    with pytest.raises(ValueError):
        ScryptHasher(log2_n=21)


def test_keys_are_derived_one_at_a_time_on_a_nicer_thread_of_their_own():
    """A burst of logins takes the CPU the open pages leave: each process derives keys on one
    thread, queued, at a lower priority than its request threads."""
    import os
    import threading

    from dashboard.passwords import PASSWORD_THREAD_NICE, in_password_thread

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    tid, nice = in_password_thread(
        lambda: (threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0))
    )
    assert tid != threading.get_native_id()
    assert nice == min(19, mine + PASSWORD_THREAD_NICE)
    with open(f"/proc/self/task/{tid}/stat") as stat:  # what the kernel schedules it at
        assert int(stat.read().rsplit(")", 1)[1].split()[16]) == nice

    hasher = ScryptHasher(log2_n=10, r=8, p=1)  # a millisecond's work
    encoded = hasher.hash(GOOD)
    release = threading.Event()
    blocker = threading.Thread(target=in_password_thread, args=(release.wait,), daemon=True)
    blocker.start()
    answers: list[bool] = []
    login = threading.Thread(target=lambda: answers.append(hasher.verify(GOOD, encoded)))
    login.start()
    login.join(1.0)
    assert login.is_alive() and answers == []  # queued behind the password thread's work
    release.set()
    login.join(30)
    assert answers == [True]
