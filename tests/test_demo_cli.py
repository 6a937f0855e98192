"""``csc-dashboard demo-data`` through the real command line: good runs, bad arguments, and
failures that must leave the previous database exactly as it was."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from dashboard.cli import main
from dashboard.demo import DemoDataError, generate_borough, writer

SMALL = ["--population", "1500", "--years", "2", "--seed", "3", "--as-of", "2026-11-25"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_builds_a_borough_and_replaces_an_existing_one(tmp_path, capsys):
    target = tmp_path / "demo.sqlite"
    url = f"sqlite:///{target}"
    assert main(["demo-data", "--url", url, *SMALL]) == 0
    first = _sha(target)
    assert "workflow_steps" in capsys.readouterr().out
    assert (
        main(["demo-data", "--url", url, *SMALL[:-4], "--seed", "4", "--as-of", "2026-11-25"]) == 0
    )
    assert _sha(target) != first  # rebuilt with the new seed
    assert not (tmp_path / "demo.sqlite.partial").exists()


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--population", "-5"], "--population"),
        (["--population", "many"], "--population"),
        (["--as-of", "2026-13-45"], "--as-of"),
        (["--years", "0"], "--years"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(tmp_path, args, complaint):
    target = tmp_path / "demo.sqlite"
    result = subprocess.run(
        [sys.executable, "-m", "dashboard", "demo-data", "--url", f"sqlite:///{target}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert complaint in result.stderr
    assert "Traceback" not in result.stderr
    assert not target.exists() and not (tmp_path / "demo.sqlite.partial").exists()


def test_unreachable_database_is_one_line_and_non_zero(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dashboard",
            "demo-data",
            "--url",
            "postgresql+psycopg://postgres@127.0.0.1:1/x",
            *SMALL,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "127.0.0.1" in lines[0] and "Traceback" not in result.stderr


def test_unsupported_url_is_refused(tmp_path, capsys):
    assert main(["demo-data", "--url", "mysql://nobody@localhost/x", *SMALL]) == 1
    assert "SQLite or PostgreSQL" in capsys.readouterr().err


class _Boom(RuntimeError):
    pass


def _fail_on_payments(original):
    """Wrap a writer's write() so the build dies half-way, after most tables are written."""

    def write(self, name, frame):
        if name == "payments":
            raise _Boom("disk on fire")
        return original(self, name, frame)

    return write


def test_sqlite_failure_mid_way_leaves_the_previous_database_intact(tmp_path, monkeypatch):
    target = tmp_path / "demo.sqlite"
    url = f"sqlite:///{target}"
    generate_borough(url, population=1500, years=2, seed=3)
    before = _sha(target)
    monkeypatch.setattr(writer.SqliteWriter, "write", _fail_on_payments(writer.SqliteWriter.write))
    with pytest.raises(DemoDataError, match="disk on fire"):
        generate_borough(url, population=1500, years=2, seed=9)
    assert _sha(target) == before
    assert not (tmp_path / "demo.sqlite.partial").exists()


def test_sqlite_failure_with_no_previous_database_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "demo.sqlite"
    monkeypatch.setattr(writer.SqliteWriter, "write", _fail_on_payments(writer.SqliteWriter.write))
    with pytest.raises(DemoDataError):
        generate_borough(f"sqlite:///{target}", population=1500, years=2, seed=9)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_postgres_failure_mid_way_leaves_the_previous_tables_intact(pg_url, monkeypatch):
    generate_borough(pg_url, population=1500, years=2, seed=3)
    engine = create_engine(pg_url)

    def counts() -> dict[str, int]:
        with engine.connect() as conn:
            return {
                t: conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one()
                for t in ("people", "workflow_steps", "payments")
            }

    before = counts()
    monkeypatch.setattr(
        writer.PostgresWriter, "write", _fail_on_payments(writer.PostgresWriter.write)
    )
    with pytest.raises(DemoDataError, match="disk on fire"):
        generate_borough(pg_url, population=1500, years=2, seed=9)
    assert counts() == before
    assert "csc_demo_build" not in inspect(engine).get_schema_names()
    engine.dispose()
