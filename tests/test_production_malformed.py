"""Malformed rows in the source are counted in data quality, never a crash (issue 6, Faults).

A small demo borough is refreshed clean, then rows are spoiled in ways a case system's data
really is spoiled: an open step with no due date, a step status the system does not define, a
step completed in the future, a referral dated in the future, a negative weekly cost. The real
``refresh`` and ``indicators`` commands run over it; the counts are known from what was planted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from dashboard.demo import generate_borough

AS_OF = dt.date(2026, 11, 25)
REPO = Path(__file__).resolve().parent.parent
QUALITY = (
    "steps_without_due_date",
    "records_with_unknown_codes",
    "records_dated_in_the_future",
    "elements_with_negative_cost",
)
# Each statement spoils one row, picked by the lowest id that qualifies (so the rows differ).
SPOIL = (
    # An open step with no due date.
    "UPDATE workflow_steps SET due_date = NULL WHERE workflow_step_id = (SELECT MIN"
    "(workflow_step_id) FROM workflow_steps WHERE step_status IN ('INCOMING', 'STARTED'))",
    # A status the case system does not define (the next open step).
    "UPDATE workflow_steps SET step_status = 'ON_HOLD' WHERE workflow_step_id = (SELECT MIN"
    "(workflow_step_id) FROM workflow_steps WHERE step_status IN ('INCOMING', 'STARTED')"
    " AND due_date IS NOT NULL)",
    # Completed a month after the reporting date.
    "UPDATE workflow_steps SET completed_on = '2026-12-25' WHERE workflow_step_id = (SELECT"
    " MIN(workflow_step_id) FROM workflow_steps WHERE step_status = 'COMPLETED')",
    # A referral dated after the reporting date.
    "UPDATE cin_referrals SET referral_date = '2026-12-05'"
    " WHERE referral_id = (SELECT MIN(referral_id) FROM cin_referrals)",
    # A negative weekly cost on an authorised element.
    "UPDATE service_elements SET weekly_cost = -250 WHERE service_element_id = (SELECT"
    " MIN(service_element_id) FROM service_elements WHERE status = 'AUTHORISED')",
)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def refresh_and_measure(env: dict[str, str]) -> dict[str, dict]:
    refreshed = cli(env, "refresh")
    assert refreshed.returncode == 0, refreshed.stderr[-3000:]
    assert "FAILED" not in refreshed.stdout and "Traceback" not in refreshed.stderr
    shown = cli(env, "indicators", "--json", "--scope", "borough")
    assert shown.returncode == 0, shown.stderr[-3000:]
    return {value["id"]: value for value in json.loads(shown.stdout)}


def test_malformed_rows_are_counted_in_data_quality_and_crash_nothing(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    generate_borough(source, population=2_000, years=6, seed=42, as_of=AS_OF)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")},
        "DASHBOARD_SOURCE_URL": source,
        "DASHBOARD_STORE_URL": f"sqlite:///{tmp_path / 'store.sqlite'}",
        "DASHBOARD_AS_OF": AS_OF.isoformat(),
    }
    clean = refresh_and_measure(env)
    assert all(clean[i]["status"] == "ok" for i in QUALITY), {i: clean[i] for i in QUALITY}
    assert [clean[i]["value"] for i in QUALITY[1:]] == [0, 0, 0]  # the demo plants none

    engine = create_engine(source)
    with engine.begin() as conn:
        for statement in SPOIL:
            assert conn.execute(text(statement)).rowcount == 1, statement
    engine.dispose()

    spoiled = refresh_and_measure(env)
    assert {i: spoiled[i]["status"] for i in QUALITY} == dict.fromkeys(QUALITY, "ok")
    assert (
        spoiled["steps_without_due_date"]["value"] == clean["steps_without_due_date"]["value"] + 1
    )
    assert spoiled["records_with_unknown_codes"]["value"] == 1
    assert spoiled["records_dated_in_the_future"]["value"] == 2  # a step and a referral
    assert spoiled["elements_with_negative_cost"]["value"] == 1
    # Everything else still computes.
    failed = [v["id"] for v in spoiled.values() if v["status"] == "failed"]
    assert not failed, failed


@pytest.mark.postgres
def test_the_implausible_records_dataset_runs_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """The same spoiling on PostgreSQL, where the refresher reads with a statement timeout."""
    generate_borough(pg_url, population=2_000, years=6, seed=42, as_of=AS_OF)
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        for statement in SPOIL[2:]:  # the dates and the cost (PostgreSQL enforces the codes)
            assert conn.execute(text(statement)).rowcount == 1, statement
    engine.dispose()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")},
        "DASHBOARD_SOURCE_URL": pg_url,
        "DASHBOARD_STORE_URL": f"sqlite:///{tmp_path / 'store.sqlite'}",
        "DASHBOARD_AS_OF": AS_OF.isoformat(),
    }
    values = refresh_and_measure(env)
    assert values["records_dated_in_the_future"]["value"] == 2
    assert values["elements_with_negative_cost"]["value"] == 1
