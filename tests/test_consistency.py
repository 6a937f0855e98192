"""Consistency between code and documentation: every setting is in the README's table."""

from __future__ import annotations

import re
from pathlib import Path

from dashboard.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_in_the_readme_configuration_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(DASHBOARD_[A-Z0-9_]+)` \|", readme, flags=re.M))
    settings = {f"DASHBOARD_{name.upper()}" for name in Settings.model_fields}
    assert settings - documented == set(), "settings missing from README"
    assert documented - settings == set(), "README documents settings that do not exist"


def test_every_setting_has_a_help_text():
    for name, field in Settings.model_fields.items():
        assert field.description, name
