"""Settings: read once, from ``DASHBOARD_*`` environment variables (or a ``.env`` file).

Nothing else in the code base reads ``os.environ``. Every field has a default and a help text,
and every environment variable is documented in the README's configuration table (a test checks).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration. Build with ``Settings()`` (environment) or ``Settings(**overrides)``."""

    model_config = SettingsConfigDict(
        env_prefix="DASHBOARD_", env_file=".env", extra="ignore", frozen=True
    )

    source_url: str = Field(
        "sqlite:///data/demo.sqlite",
        description="SQLAlchemy URL of the Frameworki-style source database (opened read-only).",
    )
    store_url: str = Field(
        "sqlite:///data/store.sqlite",
        description="SQLAlchemy URL of the snapshot store (SQLite file, or PostgreSQL in production).",
    )
    as_of: dt.date | None = Field(
        None, description="Pin the reporting date (demo, tests, time travel). Default: today."
    )
    secret_key: SecretStr | None = Field(
        None, description="Session signing key. Required outside demo mode."
    )
    child_population: int | None = Field(
        None,
        gt=0,
        description="Borough population aged 0-17, for rates per 10,000. Default: the demo borough's.",
    )
    demo: bool = Field(
        False, description="Demo mode: embedded demo borough, demo users, generated secret key."
    )
    queries_dir: Path = Field(
        PROJECT_ROOT / "queries", description="Folder of dataset SQL files (one dataset per file)."
    )
    thresholds_file: Path | None = Field(
        None,
        description="YAML file overriding indicators' RAG thresholds, e.g. {overdue_steps: {green: 0, amber: 10}}.",
    )
    source_statement_timeout_s: int = Field(
        300, gt=0, description="Statement timeout for source queries, in seconds (PostgreSQL)."
    )
    snapshot_retention: int = Field(
        3,
        ge=1,
        description="Snapshot versions kept per dataset; older detail frames (personal data) are deleted.",
    )
    auth_mode: Literal["embedded", "header"] = Field(
        "embedded",
        description="'embedded' (users and password hashes in the store) or 'header' (trusted SSO proxy header).",
    )
    auth_header: str = Field(
        "X-Remote-User",
        description="Header carrying the username in 'header' auth mode; the proxy must strip it from clients.",
    )
    session_idle_minutes: int = Field(
        30,
        gt=0,
        description="Log a browser out after this many minutes without a user action (an open "
        "page's own polls and re-renders do not count).",
    )
    session_max_hours: int = Field(
        12, gt=0, description="Log a browser out this many hours after login, however active."
    )
    session_cookie_secure: bool | None = Field(
        None,
        description="Send the session cookie over HTTPS only. Default: on, except in demo mode.",
    )
    login_max_failures: int = Field(
        5,
        ge=1,
        description="Failed logins per username (4x per client address) before a lockout.",
    )
    login_lockout_minutes: int = Field(
        15,
        gt=0,
        description="How long failures count, and how long a lockout lasts, in minutes.",
    )
    poll_seconds: float = Field(
        10.0,
        gt=0,
        description="How often browsers check for a new snapshot (a version compare, no SQL).",
    )
    preload_seconds: float = Field(
        1.0,
        ge=0,
        description="How often each web worker checks for a new snapshot and loads it before "
        "any page asks (0: on the first request instead).",
    )
    scheduler_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="How much the scheduler lowers its own CPU priority (Unix nice): its "
        "refreshes and daily history are batch work, and on a shared server the web workers, "
        "who answer people, come first.",
    )
    shared_renders: bool | None = Field(
        None,
        description="Web workers share rendered pages through the store (each page of each new "
        "snapshot rendered by one worker, read by the others). Default: on with a PostgreSQL "
        "store, off with SQLite (one process).",
    )
    log_level: str = Field("INFO", description="Python logging level.")

    def reporting_date(self) -> dt.date:
        """The as-of date in force: the pinned one, else today."""
        return self.as_of or dt.date.today()
