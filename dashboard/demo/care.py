"""Periods of care, placements and the statutory work of looking after a child.

A period of care runs from the day a child is accommodated to the day they leave (at the latest,
their 18th birthday). Placements follow one another inside it: most children stay put for years,
a restless quarter move every few months, and a move late in a troubled run is often to a
children's home. Visits, reviews, health assessments and pathway plans are due on CALIBRATION.md's
timescales.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dashboard.demo.calendar import NULL, add_years
from dashboard.demo.steps import StepColumns
from dashboard.demo.timescales import Context, completion, on_time, schedule

# Placement kinds: (SSDA903 codes, provider type or None for no provider, share of placements).
PLACEMENT_KINDS: tuple[tuple[tuple[str, ...], str | None, float], ...] = (
    (("U4", "U6"), "IN_HOUSE_FOSTERING", 0.28),
    (("U1", "U3"), "KINSHIP", 0.12),
    (("U4", "U6"), "IFA", 0.29),
    (("K2",), "CHILDRENS_HOME", 0.145),
    (("K3",), "SUPPORTED_ACCOMMODATION", 0.06),
    (("K1",), "SECURE", 0.007),
    (("S1",), "RESIDENTIAL_SCHOOL", 0.02),
    (("R3",), "PARENT_AND_CHILD", 0.013),
    (("P1",), None, 0.06),
    (("A6",), None, 0.03),
    (("Z1",), "OTHER", 0.013),
)
IN_HOUSE, KINSHIP, IFA, HOME, SUPPORTED, SECURE, SCHOOL, PARENT_CHILD, PARENTS, ADOPTION, OTHER = (
    range(11)
)
LEGAL = {"C2": 0.3, "C1": 0.28, "V2": 0.3, "E1": 0.05, "L1": 0.03, "L2": 0.04}
REASONS_CHANGE = np.array(["CARP", "ALLG", "STND", "CHLD", "LARQ", "PLCE", "OTHR"], dtype=object)


@dataclass
class CareRecords:
    periods: dict[str, np.ndarray]
    placements: dict[str, np.ndarray]  # plus helper columns: kind, period, child, uasc, ...


def _age_fix(kind: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Keep each placement kind to the ages it serves (secure, then homes, from older ages)."""
    years = age / 365.25
    kind = np.where((kind == SUPPORTED) & (years < 16), IFA, kind)
    kind = np.where((kind == SECURE) & (years < 12), HOME, kind)
    kind = np.where((kind == HOME) & (years < 9), IFA, kind)
    kind = np.where((kind == ADOPTION) & (years >= 6), IN_HOUSE, kind)
    kind = np.where((kind == PARENT_CHILD) & (years >= 2), IN_HOUSE, kind)
    return kind


def simulate_care(
    rng: np.random.Generator, ctx: Context, care: dict[str, np.ndarray], steps: StepColumns
) -> CareRecords:
    as_of = ctx.as_of
    n = len(care["start"])
    start, end = care["start"], care["end"]
    legal_codes = np.array(list(LEGAL), dtype=object)
    legal_p = np.array(list(LEGAL.values()))
    legal = legal_codes[rng.choice(len(legal_codes), size=n, p=legal_p / legal_p.sum())]
    legal[care["uasc"]] = "V2"
    legal[care["from_plan"] & np.isin(legal, ["V2", "L1", "L2"])] = "C1"
    ended = end <= as_of
    age_end = (end - care["dob"]) / 365.25
    reason = np.select(
        [
            end >= care["adult"],
            (age_end < 6) & (rng.random(n) < 0.5),
            rng.random(n) < 0.4,
            rng.random(n) < 0.35,
            rng.random(n) < 0.4,
        ],
        [np.where(rng.random(n) < 0.5, "E47", "E17"), "E11", "E13", "E41", "E43"],
        "E8",
    ).astype(object)
    periods = {
        "person": care["child"],
        "start_date": start,
        "end_date": np.where(ended, end, NULL),
        "legal_status": legal,
        "reason_ceased": np.where(ended, reason, None),
    }

    # Placements, one after another until the period ends.
    restless = rng.random(n) < 0.25
    p_period, p_start, p_end, p_index = [], [], [], []
    current = np.arange(n)
    cursor = start.copy()
    index = 0
    while len(current):
        gap = (
            np.where(
                restless[current],
                rng.exponential(130, len(current)),
                rng.exponential(1000, len(current)),
            ).astype(np.int64)
            + 7
        )
        stop = np.minimum(cursor + gap, end[current])
        p_period.append(current)
        p_start.append(cursor)
        p_end.append(stop)
        p_index.append(np.full(len(current), index))
        more = (stop < end[current]) & (stop <= as_of)
        current, cursor, index = current[more], stop[more], index + 1
    period = np.concatenate(p_period)
    pl_start = np.concatenate(p_start)
    pl_end = np.concatenate(p_end)
    pl_index = np.concatenate(p_index)
    order = np.lexsort((pl_index, period))
    period, pl_start, pl_end, pl_index = (
        period[order],
        pl_start[order],
        pl_end[order],
        pl_index[order],
    )
    m = len(period)
    shares = np.array([k[2] for k in PLACEMENT_KINDS])
    kind = rng.choice(len(PLACEMENT_KINDS), size=m, p=shares / shares.sum())
    age = pl_start - care["dob"][period]
    # Children who keep moving end up in residential care more often.
    escalate = restless[period] & (pl_index >= 2) & (rng.random(m) < 0.3)
    kind = np.where(escalate, HOME, kind)
    uasc = care["uasc"][period]
    kind = np.where(
        uasc,
        np.where(age >= 16 * 365, SUPPORTED, np.where(rng.random(m) < 0.5, IFA, IN_HOUSE)),
        kind,
    )
    kind = _age_fix(kind, age)
    codes = np.empty(m, dtype=object)
    for k, (choices, _ptype, _share) in enumerate(PLACEMENT_KINDS):
        sel = kind == k
        codes[sel] = np.asarray(choices, dtype=object)[
            rng.integers(0, len(choices), int(sel.sum()))
        ]
    placement_open = pl_end > as_of
    last = np.r_[period[1:] != period[:-1], True]
    placements = {
        "period": period,
        "person": care["child"][period],
        "placement_type": codes,
        "kind": kind,
        "start_date": pl_start,
        "end_date": np.where(placement_open, NULL, pl_end),
        "reason_change": np.where(
            placement_open | last, None, REASONS_CHANGE[rng.integers(0, 7, m)]
        ),
        "uasc": uasc,
        "disabled": care["disabled"][period],
        "dob": care["dob"][period],
        "adult": care["adult"][period],
    }
    _care_steps(rng, ctx, care, placements, steps)
    return CareRecords(periods, placements)


def _care_steps(
    rng: np.random.Generator,
    ctx: Context,
    care: dict[str, np.ndarray],
    placements: dict[str, np.ndarray],
    steps: StepColumns,
) -> None:
    cal = ctx.cal
    start, end, team, phase = care["start"], care["end"], care["team"], care["phase"]
    episode, child = care["episode"], care["child"]

    def add(
        code: str, category: str, owner: np.ndarray, incoming: np.ndarray, due: np.ndarray
    ) -> None:
        keep = due <= end[owner] + 14  # nothing falls due after the child has left care
        owner, incoming, due = owner[keep], incoming[keep], due[keep]
        ok = on_time(rng, ctx, category, team[owner])
        steps.add(
            code,
            child=child[owner],
            episode=episode[owner],
            phase=phase[owner],
            team=team[owner],
            incoming=incoming,
            due=due,
            completed=completion(rng, due, incoming, ok),
        )

    period = placements["period"]
    add(
        "CLA_VISIT_PLACEMENT",
        "CLA_VISIT",
        period,
        placements["start_date"],
        placements["start_date"] + 7,
    )
    owner, due, prev = schedule(ctx, start, end, 42, working=False)
    add("CLA_VISIT", "CLA_VISIT", owner, prev, due)

    all_n = np.arange(len(start))
    first = cal.add(start, 20)
    add("CLA_REVIEW_FIRST", "CLA_REVIEW", all_n, start, first)
    add("CLA_REVIEW_SECOND", "CLA_REVIEW", all_n, first, first + 91)
    owner, due, prev = schedule(ctx, first + 91, end, 182, working=False)
    add("CLA_REVIEW", "CLA_REVIEW", owner, prev, due)

    add("HEALTH_INITIAL", "HEALTH_ASSESSMENT", all_n, start, cal.add(start, 20))
    owner, due, prev = schedule(ctx, start, end, 365, working=False)
    add("HEALTH_REVIEW", "HEALTH_ASSESSMENT", owner, prev, due)

    sixteen = add_years(care["dob"], 16)
    from_16 = np.maximum(start, sixteen)
    owner, due, prev = schedule(ctx, from_16, end, 182, working=False, first=91)
    add("PATHWAY_PLAN", "PATHWAY_PLAN", owner, prev, due)
