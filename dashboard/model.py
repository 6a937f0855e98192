"""The shared vocabulary: scopes, indicator declarations and computed indicator values.

These records cross every boundary (data layer, CLI, JSON API, pages), so they live apart from
the code that computes them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ScopeKind = Literal["borough", "team", "service", "teams", "cost_centre"]
Unit = Literal["count", "percent", "money", "per_10k", "days", "ratio"]
Polarity = Literal["higher_better", "lower_better", "context"]
Tier = Literal["team", "budget", "borough"]
Rag = Literal["green", "amber", "red"]

_SCOPE = re.compile(r"^(borough)$|^(team|service|teams|cost_centre):(.+)$")


class ScopeError(ValueError):
    """A scope string that does not parse."""


@dataclass(frozen=True, order=True)
class Scope:
    """What a value is computed over.

    ``borough``; ``team:<org_id>``; ``service:<org_id>`` (every team below an organisation node);
    ``teams:<id>,<id>`` (a set of teams); ``cost_centre:<code>``.
    """

    kind: ScopeKind
    keys: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Scope:
        match = _SCOPE.match((text or "").strip())
        if not match:
            raise ScopeError(
                f"not a scope: {text!r} (use borough, team:<org_id>, service:<org_id>, "
                "teams:<id>,<id> or cost_centre:<code>)"
            )
        if match.group(1):
            return cls("borough")
        kind, rest = match.group(2), match.group(3)
        keys = tuple(k.strip() for k in rest.split(",")) if kind == "teams" else (rest.strip(),)
        if not all(keys) or len(rest) > 200:
            raise ScopeError(f"not a scope: {text!r}")
        if kind in ("team", "service", "teams") and not all(k.isdigit() for k in keys):
            raise ScopeError(f"team and service ids are whole numbers: {text!r}")
        return cls(kind, tuple(sorted(set(keys), key=lambda k: (len(k), k))))  # type: ignore[arg-type]

    @classmethod
    def borough(cls) -> Scope:
        return cls("borough")

    @classmethod
    def team(cls, org_id: int) -> Scope:
        return cls("team", (str(int(org_id)),))

    @classmethod
    def cost_centre(cls, code: str) -> Scope:
        return cls("cost_centre", (code,))

    @property
    def is_borough(self) -> bool:
        return self.kind == "borough"

    @property
    def is_teams(self) -> bool:
        """Team-like scopes: computed over a set of teams (team, service or teams)."""
        return self.kind in ("team", "service", "teams")

    def __str__(self) -> str:
        if self.kind == "borough":
            return "borough"
        return f"{self.kind}:{','.join(self.keys)}"


@dataclass(frozen=True)
class Thresholds:
    """RAG bands. For lower-better: green if value <= green, amber if <= amber, else red.
    For higher-better: green if value >= green, amber if >= amber, else red."""

    green: float
    amber: float

    def rag(self, value: float | None, polarity: Polarity) -> Rag | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if polarity == "higher_better":
            return "green" if value >= self.green else "amber" if value >= self.amber else "red"
        if polarity == "lower_better":
            return "green" if value <= self.green else "amber" if value <= self.amber else "red"
        return None


@dataclass(frozen=True)
class Indicator:
    """An indicator, declared once: what it means, how it is judged, where its data comes from."""

    id: str
    title: str
    definition: str
    tier: Tier
    unit: Unit
    polarity: Polarity
    datasets: tuple[str, ...]
    thresholds: Thresholds | None = None
    england: float | None = None  # national comparator, in the indicator's unit
    england_label: str = ""
    drilldown: bool = False  # has a list of the rows the number counts
    personal: bool = False  # that list holds child-level rows (audited)


@dataclass(frozen=True)
class Freshness:
    """How fresh an indicator's value is, without computing it: when its snapshots were
    computed (the oldest), whether that is stale, and whether its latest refresh failed while
    a good snapshot of each of its datasets is still on show."""

    computed_at: dt.datetime | None = None
    stale: bool = False
    refresh_failed: bool = False


@dataclass(frozen=True)
class IndicatorValue:
    """An indicator's value for one scope, from one set of snapshots."""

    id: str
    title: str
    scope: str
    value: float | int | None
    unit: Unit
    polarity: Polarity
    rag: Rag | None = None
    numerator: float | int | None = None
    denominator: float | int | None = None
    comparator: Mapping[str, Any] | None = None  # {"label": "England", "value": 85.7}
    computed_at: dt.datetime | None = None
    stale: bool = False
    status: Literal["ok", "failed", "no_data"] = "ok"
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON shape shared by ``csc-dashboard indicators --json`` and ``/api/indicators``."""
        return {
            "id": self.id,
            "title": self.title,
            "scope": self.scope,
            "value": _json_number(self.value),
            "unit": self.unit,
            "rag": self.rag,
            "polarity": self.polarity,
            "numerator": _json_number(self.numerator),
            "denominator": _json_number(self.denominator),
            "comparator": dict(self.comparator) if self.comparator else None,
            "computed_at": self.computed_at.isoformat() if self.computed_at else None,
            "stale": self.stale,
            "status": self.status,
            "error": self.error,
            **{
                k: _json_number(v) if isinstance(v, int | float) else v
                for k, v in self.extra.items()
            },
        }


def _json_number(value: float | int | None) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return round(value, 2)
    return int(value)
