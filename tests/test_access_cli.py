"""The access commands end to end: users, grants, who-sees-what, and the audit trail.

The store is a real SQLite file or PostgreSQL database; the roles come from snapshots of the
access datasets run on the hand-built organisation (tests/access_org.py).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys

import pytest

from dashboard.audit import AuditLog
from dashboard.cli import main
from dashboard.store import SnapshotStore
from dashboard.users import UserStore
from tests import access_org as org
from tests.test_access import run_access_datasets

PASSWORD = "a long enough passphrase"


@pytest.fixture
def env(any_db_url, tmp_path, monkeypatch):
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    org.build_source(source)
    monkeypatch.setenv("DASHBOARD_STORE_URL", any_db_url)
    monkeypatch.setenv("DASHBOARD_SOURCE_URL", source)
    monkeypatch.setenv("DASHBOARD_AS_OF", org.AS_OF.isoformat())
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    return {"store": any_db_url, "source": source}


def run(capsys, monkeypatch, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def snapshot_access_datasets(env) -> None:  # noqa: ANN001
    store = SnapshotStore(env["store"])
    for dataset, frame in run_access_datasets(env["source"], org.AS_OF).items():
        store.write_snapshot(
            dataset, frame, as_of=org.AS_OF, computed_at=dt.datetime.now(dt.UTC), duration_s=0.1
        )
    store.dispose()


def test_users_add_list_passwd_disable(env, capsys, monkeypatch):
    status, out, _ = run(capsys, monkeypatch, "users", "add", "ATeam", "--name", "Asha Team",
                         "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert (status, out.strip()) == (0, "created account ateam")
    users = UserStore(env["store"])
    assert users.verify("ateam", PASSWORD).display_name == "Asha Team"

    status, _, err = run(capsys, monkeypatch, "users", "add", "bsm", "--password-stdin",
                         stdin="tooshort\n")  # fmt: skip
    assert status == 2 and "too short" in err and "tooshort" not in err
    status, _, err = run(capsys, monkeypatch, "users", "add", "bsm")  # stdin is not a terminal
    assert status == 2 and "--password-stdin" in err
    status, _, err = run(capsys, monkeypatch, "users", "add", "ateam", "--password-stdin",
                         stdin=PASSWORD + "\n")  # fmt: skip
    assert status == 2 and "already exists" in err
    status, out, _ = run(capsys, monkeypatch, "users", "add", "root", "--admin", "--no-password")
    assert out.strip() == "created admin account root (single sign-on only)"

    status, out, _ = run(capsys, monkeypatch, "users", "passwd", "ateam", "--password-stdin",
                         stdin="another long passphrase\n")  # fmt: skip
    assert status == 0 and users.verify("ateam", "another long passphrase") is not None
    assert users.verify("ateam", PASSWORD) is None

    assert run(capsys, monkeypatch, "users", "disable", "ateam")[0] == 0
    status, out, _ = run(capsys, monkeypatch, "users", "list")
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["ateam", "root"]
    assert "disabled" in lines[0] and "admin" in lines[1] and "single sign-on only" in lines[1]
    assert run(capsys, monkeypatch, "users", "enable", "ateam")[0] == 0
    assert users.verify("ateam", "another long passphrase") is not None
    assert run(capsys, monkeypatch, "users", "disable", "nobody")[0] == 2
    users.dispose()


def test_grant_revoke_and_who_sees_what(env, capsys, monkeypatch):
    snapshot_access_datasets(env)
    status, out, _ = run(
        capsys, monkeypatch, "users", "grant", "ateam", "service:4", "--by", "admin"
    )
    assert (status, out.strip()) == (0, "granted service:4 to ateam (by admin)")
    status, _, err = run(capsys, monkeypatch, "users", "grant", "ateam", "everything")
    assert status == 2 and "not a scope" in err

    status, out, _ = run(capsys, monkeypatch, "access", "ateam")
    assert status == 0
    assert out.splitlines() == [
        "ateam (no account (single sign-on or none))",
        "  tiers: team",
        "  borough: no",
        "  teams: 10 CP Team A, 20 CLA Team, 21 Leaving Care Team",
        "  cost centres: -",
        "  because: TEAM_MANAGER on CP Team A (org 10): team 10",
        "  because: grant of service:4 by admin: 2 team(s) below it [20, 21]",
    ]

    status, out, _ = run(capsys, monkeypatch, "access")
    blocks = {b.split()[0]: b for b in out.strip().split("\n") if not b.startswith(" ")}
    # Everyone with a role running at as_of, a cost centre or a grant is listed.
    assert sorted(blocks) == ["ateam", "bsm", "chos", "ddir", "ebud", "fmoved", "jedge", "kservice"]
    assert "budget holder of cost centre CC04" in out
    assert "DIRECTOR on Children's Services (org 1): borough" in out

    status, out, _ = run(capsys, monkeypatch, "users", "revoke", "ateam", "service:4")
    assert status == 0
    assert run(capsys, monkeypatch, "users", "revoke", "ateam", "service:4")[0] == 2
    status, out, _ = run(capsys, monkeypatch, "access", "ateam")
    assert "  teams: 10 CP Team A" in out.splitlines()

    status, out, _ = run(capsys, monkeypatch, "access", "isw")
    assert out.splitlines() == ["isw (no account (single sign-on or none))", "  sees no data"]


def test_access_re_checks_role_dates_for_a_later_day(env, capsys, monkeypatch):
    snapshot_access_datasets(env)
    # Worker 110's role on team 13 starts on as_of and never ends; the DIRECTOR is long-serving:
    # both still hold on a later day, so the answer is unchanged there.
    status, out, _ = run(capsys, monkeypatch, "access", "jedge", "--as-of", "2027-01-01")
    assert "  teams: 13 North Team 2" in out.splitlines()
    # Before the role started, the same snapshot gives nothing.
    status, out, _ = run(capsys, monkeypatch, "access", "jedge", "--as-of", "2026-11-24")
    assert "  sees no data" in out.splitlines()


def test_audit_answers_who_looked_at_this_child(env, capsys, monkeypatch):
    log = AuditLog(env["store"])
    at = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
    log.record("ateam", "/team", "overdue_steps", "team:10", 2, [503, 504], when=at)
    log.record("bsm", "/export/open_cases", "open_cases", "service:2", 1, [503], "export",
               when=at + dt.timedelta(days=2))  # fmt: skip
    log.record("ddir", "/borough", None, "borough", 9, [], when=at + dt.timedelta(days=3))
    log.dispose()

    status, out, _ = run(capsys, monkeypatch, "audit", "--child", "503")
    lines = out.strip().splitlines()
    assert lines[0] == "who looked at child 503's record: 2 event(s)"
    assert lines[1].startswith("2026-11-22 09:30:00Z  bsm ")
    assert "export /export/open_cases" in lines[1] and "children=503" in lines[1]
    assert lines[2].startswith("2026-11-20 09:30:00Z  ateam ")
    assert "rows=2 children=503,504" in lines[2]

    status, out, _ = run(capsys, monkeypatch, "audit", "--user", "ddir", "--json")
    assert json.loads(out) == [
        {
            "event_id": 3, "occurred_at": "2026-11-23T09:30:00+00:00", "username": "ddir",
            "action": "view", "route": "/borough", "indicator_id": None, "scope": "borough",
            "row_count": 9, "person_ids": [],
        }
    ]  # fmt: skip
    status, out, _ = run(
        capsys, monkeypatch, "audit", "--since", "2026-11-21", "--until", "2026-11-22"
    )
    assert [line.split()[2] for line in out.strip().splitlines()] == ["bsm"]
    status, out, _ = run(capsys, monkeypatch, "audit", "--child", "999")
    assert out.strip().splitlines()[-1] == "no audit events match"
    with pytest.raises(SystemExit) as caught:  # argparse: not a whole number
        main(["audit", "--child", "abc"])
    assert caught.value.code == 2


def test_the_console_command_reads_the_password_from_stdin_not_argv(env):
    environment = os.environ | {
        "DASHBOARD_STORE_URL": env["store"],
        "DASHBOARD_AS_OF": org.AS_OF.isoformat(),
    }
    done = subprocess.run(
        [sys.executable, "-m", "dashboard", "users", "add", "ebud", "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert UserStore(env["store"]).verify("ebud", PASSWORD) is not None
