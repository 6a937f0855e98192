"""The data-quality faults a real case system has, at CALIBRATION.md's rates.

Work started and abandoned, work never started, open cases left without an allocated worker,
children with no date of birth or ethnicity, elements with no cost centre, payments with no
element. The weak teams are messier. Statutory work the timeliness measures count (assessments,
conferences, visits, reviews) is hit less, so those measures keep their calibrated level.
"""

from __future__ import annotations

import numpy as np

from dashboard.demo.calendar import NULL
from dashboard.demo.organisation import WEAK
from dashboard.demo.steps import CATEGORY_OF_TYPE

ABANDONED_SHARE = 0.03
NEVER_STARTED_SHARE = 0.02
NO_DOB_SHARE = 0.01
NO_ETHNICITY_SHARE = 0.03
NO_COST_CENTRE_SHARE = 0.005
UNALLOCATED_SHARE = 0.0125  # of open cases: 25 at the default borough
_STATUTORY = ("ASSESSMENT", "ICPC", "CP_VISIT", "CLA_VISIT", "CLA_REVIEW")


def _draw(
    rng: np.random.Generator, eligible: np.ndarray, weight: np.ndarray, wanted: float
) -> np.ndarray:
    """Pick about ``wanted`` rows among the eligible, in proportion to weight."""
    w = np.where(eligible, weight, 0.0)
    if w.sum() == 0 or wanted <= 0:
        return np.zeros(len(w), dtype=bool)
    p = np.minimum(1.0, w * wanted / w.sum())
    return rng.random(len(w)) < p


def spoil_steps(
    rng: np.random.Generator, steps: dict[str, np.ndarray], quality: np.ndarray, as_of: int
) -> None:
    n = len(steps["type_id"])
    category = CATEGORY_OF_TYPE[steps["type_id"]]
    weight = np.where(np.isin(category, _STATUTORY), 0.15, 1.0)
    weight = weight * np.where(quality[steps["team"]] == WEAK, 2.0, 1.0)
    done = steps["status"] == "COMPLETED"
    abandoned = _draw(rng, done & (steps["due"] < as_of - 28), weight, ABANDONED_SHARE * n)
    steps["status"][abandoned] = "STARTED"
    steps["completed"][abandoned] = NULL
    never = _draw(
        rng, done & ~abandoned & (steps["incoming"] < as_of - 10), weight, NEVER_STARTED_SHARE * n
    )
    steps["status"][never] = "INCOMING"
    steps["started"][never] = NULL
    steps["completed"][never] = NULL


def _exactly(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """A mask of round(share * n) rows, so small boroughs get the rate too, not just on average."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=int(round(share * n)), replace=False)] = True
    return mask


def spoil_people(rng: np.random.Generator, people: dict[str, np.ndarray]) -> None:
    n = len(people["person_id"])
    people["date_of_birth"] = np.where(
        _exactly(rng, n, NO_DOB_SHARE), NULL, people["date_of_birth"]
    )
    people["ethnicity_code"] = np.where(
        _exactly(rng, n, NO_ETHNICITY_SHARE), None, people["ethnicity_code"]
    )


def unallocate(
    rng: np.random.Generator, alloc: dict[str, np.ndarray], open_people: np.ndarray, as_of: int
) -> None:
    """End the running allocation of a few open cases: the worker left, nobody picked them up."""
    wanted = int(round(len(open_people) * UNALLOCATED_SHARE))
    if wanted == 0:
        return
    chosen = rng.choice(open_people, size=min(wanted, len(open_people)), replace=False)
    hit = np.isin(alloc["person_id"], chosen) & (alloc["end_date"] == NULL)
    ended = as_of - rng.integers(1, 60, len(hit))
    alloc["end_date"] = np.where(hit, np.maximum(alloc["start_date"], ended), alloc["end_date"])


def missing_cost_centres(rng: np.random.Generator, n: int) -> np.ndarray:
    """Which of n service elements lose their cost centre."""
    return _exactly(rng, n, NO_COST_CENTRE_SHARE)


def orphan_payments(rng: np.random.Generator, payments: dict[str, np.ndarray]) -> None:
    """Turn a few payments into sundry ones with no service element."""
    n = len(payments["payment_id"])
    if n == 0:
        return
    k = rng.choice(n, size=min(n, max(3, n // 4000)), replace=False)
    payments["service_element_id"][k] = NULL
