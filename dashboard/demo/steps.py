"""Workflow step types and a collector that gathers generated steps into one set of columns.

Each piece of casework (contact, assessment, visit, review, ...) is added as whole columns at a
time; ``StepColumns.finish`` then decides each step's status from the as-of date: work whose
completion lies after as_of is still open, and work not yet due to arrive is not there at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dashboard.demo.calendar import NULL


@dataclass(frozen=True)
class StepType:
    code: str
    description: str
    category: str
    timescale_days: int
    timescale_unit: str  # WORKING or CALENDAR
    requires_authorisation: bool


# Timescales from CALIBRATION.md's statutory list; local standards where the law is silent.
STEP_TYPES: tuple[StepType, ...] = (
    StepType("CONTACT", "Contact received", "CONTACT", 1, "WORKING", False),
    StepType("REFERRAL", "Referral decision", "REFERRAL", 1, "WORKING", False),
    StepType("CF_ASSESSMENT", "Child and family assessment", "ASSESSMENT", 45, "WORKING", True),
    StepType("STRATEGY", "Strategy discussion", "STRATEGY", 3, "WORKING", False),
    StepType("S47_ENQUIRY", "Section 47 enquiry", "S47", 15, "WORKING", True),
    StepType("ICPC", "Initial child protection conference", "ICPC", 15, "WORKING", True),
    StepType(
        "RCPC_FIRST", "First review child protection conference", "RCPC", 91, "CALENDAR", True
    ),
    StepType("RCPC", "Review child protection conference", "RCPC", 182, "CALENDAR", True),
    StepType("CIN_PLAN", "Child in need plan", "CIN_PLAN", 10, "WORKING", True),
    StepType("CIN_VISIT", "Child in need visit", "CIN_VISIT", 30, "WORKING", False),
    StepType("CP_VISIT", "Child protection visit", "CP_VISIT", 10, "WORKING", False),
    StepType(
        "CLA_VISIT_PLACEMENT", "Visit within a week of placement", "CLA_VISIT", 7, "CALENDAR", False
    ),
    StepType("CLA_VISIT", "Looked-after child statutory visit", "CLA_VISIT", 42, "CALENDAR", False),
    StepType("CLA_REVIEW_FIRST", "First looked-after review", "CLA_REVIEW", 20, "WORKING", True),
    StepType("CLA_REVIEW_SECOND", "Second looked-after review", "CLA_REVIEW", 91, "CALENDAR", True),
    StepType("CLA_REVIEW", "Looked-after review", "CLA_REVIEW", 182, "CALENDAR", True),
    StepType("PATHWAY_PLAN", "Pathway plan", "PATHWAY_PLAN", 182, "CALENDAR", True),
    StepType(
        "HEALTH_INITIAL", "Initial health assessment", "HEALTH_ASSESSMENT", 20, "WORKING", False
    ),
    StepType(
        "HEALTH_REVIEW", "Review health assessment", "HEALTH_ASSESSMENT", 365, "CALENDAR", False
    ),
    StepType("CLOSURE", "Case closure", "CLOSURE", 5, "WORKING", True),
)
STEP_TYPE_ID = {t.code: i + 1 for i, t in enumerate(STEP_TYPES)}
CATEGORY_OF_TYPE = np.array([""] + [t.category for t in STEP_TYPES], dtype=object)
NEEDS_SIGN_OFF = np.array([False] + [t.requires_authorisation for t in STEP_TYPES])
VISIT_TYPE_OF_CATEGORY = {"CP_VISIT": "CP", "CIN_VISIT": "CIN", "CLA_VISIT": "CLA"}


def step_types_frame() -> dict[str, np.ndarray]:
    return {
        "workflow_step_type_id": np.arange(1, len(STEP_TYPES) + 1, dtype=np.int64),
        "code": np.array([t.code for t in STEP_TYPES], dtype=object),
        "description": np.array([t.description for t in STEP_TYPES], dtype=object),
        "category": np.array([t.category for t in STEP_TYPES], dtype=object),
        "timescale_days": np.array([t.timescale_days for t in STEP_TYPES], dtype=np.int64),
        "timescale_unit": np.array([t.timescale_unit for t in STEP_TYPES], dtype=object),
        "requires_authorisation": np.array(
            ["Y" if t.requires_authorisation else "N" for t in STEP_TYPES], dtype=object
        ),
    }


_FIELDS = (
    "type_id",
    "child",
    "episode",
    "phase",
    "team",
    "incoming",
    "started",
    "due",
    "completed",
)


@dataclass
class StepColumns:
    """Steps gathered column-wise. ``child`` and ``episode`` index the chunk's children and
    child-episodes (-1 for none); ``phase`` is the allocation phase whose worker does the work."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=lambda: {f: [] for f in _FIELDS})
    size: int = 0
    kept_index: np.ndarray | None = None  # after finish: row number before -> after (-1 dropped)

    def add(
        self,
        code: str,
        *,
        child: np.ndarray,
        episode: np.ndarray,
        phase: np.ndarray,
        team: np.ndarray,
        incoming: np.ndarray,
        due: np.ndarray,
        completed: np.ndarray,
        started: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add one step per element; returns their row numbers (see ``kept_index``)."""
        n = len(child)
        rows = np.arange(self.size, self.size + n)
        if n == 0:
            return rows
        self.size += n
        incoming = np.minimum(incoming, completed)
        if started is None:
            started = incoming
        started = np.clip(started, incoming, completed)
        values = {
            "type_id": np.full(n, STEP_TYPE_ID[code], dtype=np.int64),
            "child": child,
            "episode": episode,
            "phase": phase,
            "team": team,
            "incoming": incoming,
            "started": started,
            "due": due,
            "completed": completed,
        }
        for name, column in values.items():
            self.parts[name].append(np.asarray(column, dtype=np.int64))
        return rows

    def finish(self, as_of: int) -> dict[str, np.ndarray]:
        """Concatenate, drop work not arrived by as_of, and set statuses and open dates."""
        cols = {
            name: (np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64))
            for name, chunks in self.parts.items()
        }
        keep = cols["incoming"] <= as_of
        self.kept_index = np.where(keep, np.cumsum(keep) - 1, -1)
        cols = {name: column[keep] for name, column in cols.items()}
        done = cols["completed"] <= as_of
        begun = cols["started"] <= as_of
        cols["status"] = np.where(done, "COMPLETED", np.where(begun, "STARTED", "INCOMING")).astype(
            object
        )
        cols["started"] = np.where(begun, cols["started"], NULL)
        cols["completed"] = np.where(done, cols["completed"], NULL)
        return cols


SIGN_OFF_WAITING_SHARE = 0.03  # of steps arrived in the last 90 days (CALIBRATION.md)


def sign_off(
    rng: np.random.Generator, cols: dict[str, np.ndarray], team_manager: np.ndarray, as_of: int
) -> None:
    """Authorisation of steps that need it: managers sign most off within days; about 3% of recent
    work is still waiting at as_of, a few of those for more than 15 days."""
    n = len(cols["type_id"])
    needs = NEEDS_SIGN_OFF[cols["type_id"]] & (cols["status"] == "COMPLETED")
    requested = np.where(needs, cols["completed"], NULL)
    wait = rng.geometric(0.35, n) - 1
    authorised = np.where(needs, np.minimum(requested + wait, as_of), NULL)
    recent = cols["incoming"] > as_of - 90
    wanted = SIGN_OFF_WAITING_SHARE * recent.sum()
    age = as_of - requested
    weight = np.where(
        needs & (age >= 0) & (age <= 10),
        1.0,
        np.where(needs & (age > 10) & (age <= 45), 0.025, 0.0),
    )
    if weight.sum() > 0:
        waiting = rng.random(n) < np.minimum(1.0, weight * wanted / weight.sum())
        authorised = np.where(waiting, NULL, authorised)
    cols["authorisation_requested_on"] = requested
    cols["authorised_on"] = authorised
    cols["authorised_by"] = np.where(authorised != NULL, team_manager[cols["team"]], NULL)
