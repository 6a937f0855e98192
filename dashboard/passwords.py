"""Password hashing: salted, slow, self-describing hash strings (scrypt from the standard library).

Why scrypt from ``hashlib`` rather than argon2-cffi: it is memory-hard, recommended by OWASP's
password-storage guidance beside Argon2id, and needs no compiled dependency on a council's
locked-down server. The cost parameters live in the hash string, so raising them later
(``needs_rehash``) upgrades each user at their next login without breaking old hashes.

Format (modular-crypt style)::

    $scrypt$ln=15,r=8,p=3$<salt, base64>$<derived key, base64>

Passwords never appear in an exception message or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from dashboard.priority import lower_this_thread

T = TypeVar("T")

# OWASP's equivalent scrypt settings: N=2^15, r=8, p=3 costs 32 MiB and about a fifth of a second
# on one core, which a login can afford and a password-guessing attacker cannot.
DEFAULT_LOG2_N = 15
DEFAULT_R = 8
DEFAULT_P = 3
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PASSWORD_LENGTH = 12
# A cap, so a megabyte "password" cannot be used to burn server CPU.
MAX_PASSWORD_LENGTH = 1024
# A stored hash names its own cost; refuse absurd ones rather than exhaust memory verifying them.
MAX_LOG2_N = 20
# Each process derives keys on one thread of its own, this much nicer than the process: a burst
# of logins (a whole borough arriving at nine) then takes the CPU the open pages leave, one
# login at a time per web worker, instead of four at once per worker ahead of every poll.
PASSWORD_THREAD_NICE = 10

_FORMAT = re.compile(
    r"^\$scrypt\$ln=(?P<ln>\d{1,2}),r=(?P<r>\d{1,2}),p=(?P<p>\d{1,2})"
    r"\$(?P<salt>[A-Za-z0-9+/]+)\$(?P<key>[A-Za-z0-9+/]+)$"
)


class PasswordPolicyError(ValueError):
    """A new password that does not meet the policy (the message never contains the password)."""


class PasswordHashError(ValueError):
    """A stored hash string that is not in the expected format."""


def check_password_policy(password: str) -> None:
    """Raise ``PasswordPolicyError`` unless ``password`` is acceptable for a real account.

    Length is what matters (NIST SP 800-63B): at least ``MIN_PASSWORD_LENGTH`` characters, no
    composition rules. Demo accounts skip this check and are marked as demo-only instead.
    """
    if not isinstance(password, str):
        raise PasswordPolicyError("the password must be text")
    length = len(_normalise(password))
    if length < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters"
        )
    if length > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(
            f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters"
        )
    if not password.strip():
        raise PasswordPolicyError("the password must not be only spaces")


def _normalise(password: str) -> str:
    # NFKC, so the same password typed on two keyboards (composed or decomposed accents) matches.
    return unicodedata.normalize("NFKC", password)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ScryptHasher:
    """Hashes and verifies passwords with scrypt at the given cost (default: OWASP's)."""

    log2_n: int = DEFAULT_LOG2_N
    r: int = DEFAULT_R
    p: int = DEFAULT_P

    def __post_init__(self) -> None:
        if not (1 <= self.log2_n <= MAX_LOG2_N and 1 <= self.r <= 99 and 1 <= self.p <= 99):
            raise ValueError(f"scrypt cost out of range: ln={self.log2_n}, r={self.r}, p={self.p}")

    def hash(self, password: str) -> str:
        """A new salted hash string of ``password`` (a fresh random salt every time)."""
        salt = secrets.token_bytes(SALT_BYTES)
        key = _derive(password, salt, self.log2_n, self.r, self.p)
        return f"$scrypt$ln={self.log2_n},r={self.r},p={self.p}${_b64(salt)}${_b64(key)}"

    def verify(self, password: str, encoded: str) -> bool:
        """Does ``password`` match the hash string? Compared in constant time.

        Raises ``PasswordHashError`` if ``encoded`` is not a hash string this module wrote.
        """
        log2_n, r, p, salt, expected = parse_hash(encoded)
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
            # Still do the work, so an over-long guess takes as long as any other.
            _derive("", salt, log2_n, r, p)
            return False
        key = _derive(password, salt, log2_n, r, p)
        return hmac.compare_digest(key, expected)

    def needs_rehash(self, encoded: str) -> bool:
        """Was ``encoded`` made at a different cost than this hasher's? (Rehash at next login.)"""
        try:
            log2_n, r, p, _salt, _key = parse_hash(encoded)
        except PasswordHashError:
            return True
        return (log2_n, r, p) != (self.log2_n, self.r, self.p)


def parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    """``(log2_n, r, p, salt, key)`` from a hash string; ``PasswordHashError`` if malformed."""
    match = _FORMAT.match(encoded or "")
    if not match:
        raise PasswordHashError("not a $scrypt$ password hash")
    log2_n, r, p = int(match["ln"]), int(match["r"]), int(match["p"])
    if not (1 <= log2_n <= MAX_LOG2_N and r >= 1 and p >= 1):
        raise PasswordHashError(f"scrypt cost out of range: ln={log2_n}, r={r}, p={p}")
    return log2_n, r, p, _unb64(match["salt"]), _unb64(match["key"])


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    # scrypt needs 128 * n * r bytes; hashlib refuses more than maxmem, so allow that plus slack.
    maxmem = 128 * n * r + 1024 * 1024
    secret = _normalise(password).encode("utf-8")
    return in_password_thread(
        lambda: hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=KEY_BYTES)
    )


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def in_password_thread(work: Callable[[], T]) -> T:
    """Run ``work`` on this process's password thread (queued behind any other) and return its
    result. The thread runs ``PASSWORD_THREAD_NICE`` nicer than the process, where the OS
    allows (Linux sets a thread's own priority)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():  # none yet, or inherited across a fork
            pool = ThreadPoolExecutor(
                1, "password", initializer=lower_this_thread, initargs=(PASSWORD_THREAD_NICE,)
            )
            _pool = (os.getpid(), pool)
        pool = _pool[1]
    return pool.submit(work).result()
