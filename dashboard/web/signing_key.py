"""The key that signs session cookies.

Outside demo mode it must be configured (``DASHBOARD_SECRET_KEY``): the app refuses to start
without one, or with one too short to resist guessing. In demo mode a random key is made once
per store and kept IN the store, so every gunicorn worker (and a restart) signs with the same
key and a login made on one worker holds on the others.
"""

from __future__ import annotations

import datetime as dt
import secrets

from pydantic import SecretStr
from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from dashboard.config import Settings

MIN_LENGTH = 32
KEY_NAME = "session_signing_key"

_metadata = MetaData()
app_secrets = Table(
    "app_secrets",
    _metadata,
    Column("name", String(50), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class SigningKeyError(RuntimeError):
    """No usable session signing key: the app must not start."""


def signing_key(settings: Settings, store_engine: Engine) -> str:
    """The configured key; in demo mode without one, the store's generated demo key."""
    if settings.secret_key is not None:
        secret = settings.secret_key
        # A SecretStr from the environment; plain text when a copy was made with model_copy.
        key = secret.get_secret_value() if isinstance(secret, SecretStr) else str(secret)
        if len(key) < MIN_LENGTH:
            raise SigningKeyError(
                f"DASHBOARD_SECRET_KEY is {len(key)} characters; use at least {MIN_LENGTH} "
                "random ones, e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return key
    if not settings.demo:
        raise SigningKeyError(
            "DASHBOARD_SECRET_KEY is not set: the session signing key is required outside demo "
            "mode (generate one with python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    return demo_key(store_engine)


def demo_key(engine: Engine) -> str:
    """The store's demo signing key, made on first use; safe when workers start together."""
    try:
        _metadata.create_all(engine, checkfirst=True)
    except SQLAlchemyError:  # two workers racing to create the table: the second look finds it
        _metadata.create_all(engine, checkfirst=True)
    with engine.connect() as conn:
        found = conn.scalar(select(app_secrets.c.value).where(app_secrets.c.name == KEY_NAME))
    if found:
        return found
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(app_secrets).values(
                    name=KEY_NAME,
                    value=secrets.token_urlsafe(48),
                    created_at=dt.datetime.now(dt.UTC),
                )
            )
    except IntegrityError:
        pass  # another worker made it first: use theirs
    with engine.connect() as conn:
        return conn.scalar(select(app_secrets.c.value).where(app_secrets.c.name == KEY_NAME))
