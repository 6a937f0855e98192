"""Allocating children to case workers (``people_workers``, type ALLWKR).

Each phase of a case (front door, assessment, child in need, care) is allocated to a worker of
the team holding it. Cases open at as_of are spread over the team's posts in proportion to each
post's weight, systematically rather than at random, so caseloads come out close to the target
with a deliberate few far above it. A post that changed hands during the history splits the
allocations that straddle the change: the leaver's allocation ends, the successor's starts.
"""

from __future__ import annotations

import numpy as np

from dashboard.demo.calendar import NULL
from dashboard.demo.casework import Phases
from dashboard.demo.organisation import TeamSlots


def choose_slots(rng: np.random.Generator, phases: Phases, slots: TeamSlots) -> np.ndarray:
    """The post (index into ``slots``) holding each phase."""
    chosen = np.full(len(phases.team), -1, dtype=np.int64)
    order = np.argsort(slots.team, kind="stable")
    team_sorted = slots.team[order]
    for team in np.unique(phases.team):
        lo, hi = np.searchsorted(team_sorted, [team, team + 1])
        posts = order[lo:hi]
        weights = slots.weight[posts]
        cumulative = np.cumsum(weights) / weights.sum()
        mine = np.flatnonzero(phases.team == team)
        open_ = mine[phases.end[mine] == NULL]
        closed = mine[phases.end[mine] != NULL]
        # Systematic sampling: the k-th open case lands at (k + u) / n on the cumulative weights.
        open_ = open_[rng.permutation(len(open_))]
        positions = (np.arange(len(open_)) + rng.random()) / max(len(open_), 1)
        chosen[open_] = posts[
            np.minimum(np.searchsorted(cumulative, positions, side="right"), len(posts) - 1)
        ]
        chosen[closed] = posts[rng.choice(len(posts), size=len(closed), p=weights / weights.sum())]
    return chosen


def allocations(phases: Phases, slots: TeamSlots, slot: np.ndarray) -> dict[str, np.ndarray]:
    """ALLWKR rows for every phase, split where the post changed hands."""
    pred = slots.predecessor[slot]
    change = slots.change[slot]
    start, end = phases.start, phases.end
    has_pred = pred != NULL
    all_pred = has_pred & (end != NULL) & (end <= change)
    split = has_pred & (start < change) & ~all_pred
    first_worker = np.where(all_pred | split, pred, slots.worker[slot])
    first_end = np.where(split, change, end)
    second = np.flatnonzero(split)
    return {
        "person": np.concatenate([phases.child, phases.child[second]]),
        "worker_id": np.concatenate([first_worker, slots.worker[slot][second]]),
        "start_date": np.concatenate([start, change[second]]),
        "end_date": np.concatenate([first_end, end[second]]),
    }


def assignees(
    rng: np.random.Generator,
    step_phase: np.ndarray,
    step_team: np.ndarray,
    step_day: np.ndarray,
    slots: TeamSlots,
    slot: np.ndarray,
) -> np.ndarray:
    """The worker doing each step: the allocated worker on the day it arrived. Steps outside any
    phase (contacts that went no further) go to a worker of the step's team."""
    chosen = np.where(step_phase >= 0, slot[np.maximum(step_phase, 0)], -1)
    loose = np.flatnonzero(chosen < 0)
    if len(loose):
        order = np.argsort(slots.team, kind="stable")
        lo = np.searchsorted(slots.team[order], step_team[loose], side="left")
        hi = np.searchsorted(slots.team[order], step_team[loose], side="right")
        chosen[loose] = order[lo + (rng.random(len(loose)) * (hi - lo)).astype(np.int64)]
    pred = slots.predecessor[chosen]
    before = (pred != NULL) & (step_day < slots.change[chosen])
    return np.where(before, pred, slots.worker[chosen])
