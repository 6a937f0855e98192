"""The source schema creates on SQLite and PostgreSQL with exactly SCHEMA.md's names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from dashboard import schema

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "shared" / "docs" / "SCHEMA.md"


def _documented_tables() -> dict[str, set[str]]:
    """Table -> columns, read from SCHEMA.md's '**table** — ... `column` ...' paragraphs."""
    text = SCHEMA_DOC.read_text(encoding="utf-8")
    tables: dict[str, set[str]] = {}
    for block in re.split(r"\n\s*\n", text):
        match = re.match(r"\*\*(\w+)\*\*", block.strip())
        if not match:
            continue
        names = re.findall(r"`([a-z_]+)`", block)
        # Codes in backticks are capitals; column names are lower_snake_case.
        tables[match.group(1)] = {n for n in names if n.islower()}
    return tables


@pytest.mark.skipif(not SCHEMA_DOC.exists(), reason="shared/docs not beside the checkout")
def test_every_documented_table_and_column_exists_by_name():
    documented = _documented_tables()
    assert len(documented) >= 19
    for table, columns in documented.items():
        assert table in schema.metadata.tables, table
        actual = set(schema.metadata.tables[table].c.keys())
        # Prose may name another table's key in passing; every column in the doc's
        # own list must exist.
        missing = {c for c in columns if c not in actual and c not in schema.metadata.tables}
        missing -= {"updated_on"} - actual
        assert not missing, f"{table} lacks {missing}"
        assert "updated_on" in actual


def test_creates_on_both_databases(any_db_url):
    engine = create_engine(any_db_url)
    schema.create_source_schema(engine)
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) >= set(schema.SOURCE_TABLES)
    step_indexes = {ix["name"] for ix in inspector.get_indexes("workflow_steps")}
    assert "ix_workflow_steps_team_status_due" in step_indexes
    engine.dispose()
