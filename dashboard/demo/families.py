"""Families known to the service and their children.

A family is referred as a whole (siblings together); most are one or two children, a few large.
Besides ordinary families there are disabled children known through the disability team and
unaccompanied asylum-seeking children (UASC), who arrive alone at 15-17.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dashboard.demo import names
from dashboard.demo.timescales import Context

# Family referral chains started per 10,000 children per year, tuned so the borough gets
# about 519 child referrals per 10,000 a year (CALIBRATION.md).
CHAINS_PER_10K = 232.0
UASC_PER_10K = 3.1
DISABLED_SHARE = 0.07
KIDS_P = (0.5, 0.27, 0.13, 0.07, 0.03)  # children per family known to the service: 1..5
AGE_P = np.array([12, 6, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 7, 7, 6, 5, 3], dtype=float)
NORMAL, DISABLED, UASC = 0, 1, 2


@dataclass
class Families:
    kind: np.ndarray  # NORMAL, DISABLED, UASC
    first_child: np.ndarray  # index of the family's first child
    n_children: np.ndarray
    youngest_dob: np.ndarray
    surname: np.ndarray


@dataclass
class Children:
    family: np.ndarray
    dob: np.ndarray
    gender: np.ndarray
    first_names: np.ndarray
    last_name: np.ndarray
    ethnicity: np.ndarray
    disability: np.ndarray
    uasc: np.ndarray
    postcode: np.ndarray


def make_families(
    rng: np.random.Generator, ctx: Context, population: int
) -> tuple[Families, Children, np.ndarray]:
    """Families with their children, and each family's first referral date."""
    years = (ctx.as_of - ctx.sim_start) / 365.25
    n_chain = rng.poisson(CHAINS_PER_10K * population / 10_000 * years)
    n_uasc = rng.poisson(UASC_PER_10K * population / 10_000 * years)
    n = n_chain + n_uasc
    kind = np.where(rng.random(n) < DISABLED_SHARE, DISABLED, NORMAL)
    kind[n_chain:] = UASC
    first_d0 = rng.integers(ctx.sim_start, ctx.as_of + 1, n)
    n_children = np.where(kind == NORMAL, rng.choice(5, size=n, p=KIDS_P) + 1, 1)
    age_years = rng.choice(18, size=n, p=AGE_P / AGE_P.sum())
    age_years = np.where(kind == DISABLED, rng.integers(2, 16, n), age_years)
    age_days = age_years * 365 + rng.integers(0, 365, n)
    age_days = np.where(kind == UASC, rng.integers(int(14.5 * 365), int(17.6 * 365), n), age_days)
    index_dob = first_d0 - age_days

    family = np.repeat(np.arange(n), n_children)
    first_child = np.cumsum(n_children) - n_children
    position = np.arange(len(family)) - first_child[family]
    # Siblings are born a few years either side of the child who was referred first.
    gap = rng.integers(365, 6 * 365, len(family)) * np.where(rng.random(len(family)) < 0.5, 1, -1)
    dob = index_dob[family] + np.where(position == 0, 0, gap)
    youngest = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(youngest, family, dob)

    m = len(family)
    gender = np.where(rng.random(m) < 0.505, "M", "F").astype(object)
    gender[rng.random(m) < 0.005] = "U"
    gender[(kind[family] == UASC) & (rng.random(m) < 0.9)] = "M"
    first_names = np.where(
        gender == "F",
        names.pick(rng, names.FIRST_NAMES_F, m),
        names.pick(rng, names.FIRST_NAMES_M, m),
    )
    surname = names.pick(rng, names.SURNAMES, n)
    last_name = np.where(rng.random(m) < 0.88, surname[family], names.pick(rng, names.SURNAMES, m))
    family_ethnicity = names.ethnicities(rng, n)
    ethnicity = np.where(rng.random(m) < 0.85, family_ethnicity[family], names.ethnicities(rng, m))
    uasc_codes = np.array(["AOTH", "BAFR", "OOTH", "BOTH", "WOTH"], dtype=object)
    ethnicity = np.where(kind[family] == UASC, uasc_codes[rng.integers(0, 5, m)], ethnicity)
    disability = (kind[family] == DISABLED) | (rng.random(m) < 0.03)
    postcode = names.postcodes(rng, n)[family]
    families = Families(kind, first_child, n_children, youngest, surname)
    children = Children(
        family,
        dob,
        gender,
        first_names,
        last_name,
        ethnicity,
        disability,
        kind[family] == UASC,
        postcode,
    )
    return families, children, first_d0
