"""When work is due and when it gets done: recurring schedules and team-dependent timeliness.

Each team has a quality (strong, middling, weak, from ``organisation``); the chance that a piece
of work is done within its timescale depends on the step category and that quality. The figures
are set so the borough lands near CALIBRATION.md's overall rates while at least one team is green
and one red on each measure under INDICATORS.md's default thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dashboard.demo.calendar import WorkingCalendar

# Probability of completing on time, by category, for (strong, middling, weak) teams.
ON_TIME: dict[str, tuple[float, float, float]] = {
    "ASSESSMENT": (0.97, 0.92, 0.70),
    "ICPC": (0.97, 0.82, 0.62),
    "CP_VISIT": (0.97, 0.93, 0.80),
    "CLA_VISIT": (0.98, 0.95, 0.74),
    "CLA_REVIEW": (0.995, 0.96, 0.84),
    "DEFAULT": (0.94, 0.88, 0.75),
}


@dataclass(frozen=True)
class Context:
    """What every part of a locality's simulation shares."""

    cal: WorkingCalendar
    as_of: int
    history_start: int  # as_of minus the years of history asked for
    sim_start: int  # earlier: cases open at history_start began during this run-in
    quality: np.ndarray  # team quality by org_id


def on_time(rng: np.random.Generator, ctx: Context, category: str, team: np.ndarray) -> np.ndarray:
    """Draw, per step, whether the team gets it done within its timescale."""
    table = np.asarray(ON_TIME.get(category, ON_TIME["DEFAULT"]))
    return rng.random(len(team)) < table[ctx.quality[team]]


def schedule(
    ctx: Context,
    start: np.ndarray,
    end: np.ndarray,
    interval: int,
    *,
    working: bool,
    first: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Due dates every ``interval`` (working or calendar) days after each start, up to its end.

    Returns (owner index into ``start``, due date, previous due date) for every occurrence; the
    first occurrence falls ``first`` days after the start (default: one interval).
    """
    first = interval if first is None else first
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    if working:
        span = ctx.cal.count(start, end)
    else:
        span = np.maximum(end - start, 0)
    count = np.where(span >= first, (span - first) // interval + 1, 0)
    owner = np.repeat(np.arange(len(start)), count)
    k = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    offset = first + k * interval
    base = start[owner]
    if working:
        due = ctx.cal.add(base, offset)
        previous = np.where(k == 0, base, ctx.cal.add(base, offset - interval))
    else:
        due = base + offset
        previous = np.where(k == 0, base, base + offset - interval)
    return owner, due, previous


def completion(
    rng: np.random.Generator, due: np.ndarray, earliest: np.ndarray, ok: np.ndarray
) -> np.ndarray:
    """Completion dates: on or before ``due`` (not before ``earliest``) when ``ok``, else late."""
    n = len(due)
    early = np.maximum(earliest, due - rng.integers(0, 6, n))
    late = due + 1 + rng.geometric(1 / 8, n)
    return np.where(ok, early, late)
