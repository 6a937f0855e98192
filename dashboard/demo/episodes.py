"""Family episodes: one per family referral, with its route and every key date drawn in full.

A referral leads to no further action, an assessment and closure, a child-in-need plan, a child
protection plan, or care; dates follow the statutory timescales, and how often a team meets them
depends on its quality (``timescales``). When an episode closes the family may be referred again,
which is what makes re-referrals; a family once on a plan is likelier to need one again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dashboard.demo.calendar import add_years
from dashboard.demo.families import DISABLED, NORMAL, UASC, Families
from dashboard.demo.organisation import Locality
from dashboard.demo.timescales import Context, on_time

SOURCES = {
    "5A": 0.28,
    "2A": 0.21,
    "3A": 0.06,
    "3B": 0.04,
    "3E": 0.03,
    "4": 0.08,
    "1A": 0.05,
    "1C": 0.02,
    "2B": 0.02,
    "6": 0.04,
    "7": 0.05,
    "8": 0.06,
    "9": 0.06,
}
NEEDS = {
    "N1": 0.57,
    "N3": 0.04,
    "N4": 0.09,
    "N5": 0.15,
    "N6": 0.03,
    "N7": 0.01,
    "N8": 0.05,
    "N9": 0.06,
}
CP_CATEGORIES = {"NEG": 0.45, "EMO": 0.30, "PHY": 0.09, "SAB": 0.04, "MUL": 0.12}
# CP plan durations: CALIBRATION.md's shares of ending plans by length, in days.
CP_DURATION_BANDS = ((20, 91), (92, 182), (183, 365), (366, 729), (730, 1100))
CP_DURATION_P = (0.159, 0.110, 0.435, 0.252, 0.044)

# Routes of an episode.
NFA, ASSESS_CLOSE, CIN, CP, CARE = 0, 1, 2, 3, 4
REREFERRAL_P = np.array([0.55, 0.40, 0.22, 0.25, 0.06])


def choose_code(rng: np.random.Generator, table: dict[str, float], size: int) -> np.ndarray:
    codes = np.array(list(table), dtype=object)
    p = np.array(list(table.values()))
    return codes[rng.choice(len(codes), size=size, p=p / p.sum())]


@dataclass
class FamilyEpisodes:
    """One row per family referral: the route and every key date, drawn in full."""

    family: np.ndarray
    d0: np.ndarray
    route: np.ndarray
    source: np.ndarray
    need: np.ndarray
    contact: np.ndarray
    fd_end: np.ndarray
    team_fd: np.ndarray
    team_1: np.ndarray  # team doing the assessment (and, for CP and disability, the case)
    team_c: np.ndarray  # child in need / protection team
    team_cla: np.ndarray
    assess: np.ndarray  # bool
    a_start: np.ndarray
    a_due: np.ndarray
    a_done: np.ndarray
    s47: np.ndarray
    strat_done: np.ndarray
    s47_done: np.ndarray
    icpc: np.ndarray
    icpc_in: np.ndarray
    icpc_done: np.ndarray
    plan: np.ndarray
    plan_start: np.ndarray
    plan_end: np.ndarray
    category: np.ndarray
    cin: np.ndarray  # a child-in-need period (after assessment, or stepped down from a plan)
    cin_start: np.ndarray
    cin_end: np.ndarray
    cin_team: np.ndarray
    care: np.ndarray
    care_start: np.ndarray
    care_end: np.ndarray
    closure: np.ndarray


def _pick_team(rng: np.random.Generator, teams: np.ndarray, n: int) -> np.ndarray:
    return teams[rng.integers(0, len(teams), n)]


def simulate_episodes(
    rng: np.random.Generator,
    ctx: Context,
    loc: Locality,
    family: np.ndarray,
    d0: np.ndarray,
    kind: np.ndarray,
    prior_cp: np.ndarray,
) -> FamilyEpisodes:
    cal = ctx.cal
    n = len(d0)
    u = rng.random((12, n))
    normal, disabled, uasc = kind == NORMAL, kind == DISABLED, kind == UASC
    nfa = normal & (u[0] < 0.073)
    s47 = ~nfa & ~uasc & (u[1] < np.where(disabled, 0.12, np.where(prior_cp, 0.75, 0.41)))
    icpc = s47 & (u[2] < np.where(prior_cp, 0.7, 0.26))
    plan = icpc & (u[3] < 0.86)
    direct_care = (normal & ~nfa & ~s47 & (u[4] < 0.035)) | uasc | (disabled & (u[4] < 0.05))
    cin_p = np.where(disabled, 0.9, np.where(icpc, 0.6, np.where(s47, 0.33, 0.41)))
    cin_after_assessment = ~nfa & ~plan & ~direct_care & (u[5] < cin_p)
    after_plan = np.where(u[6] < 0.15, CARE, np.where(u[6] < 0.62, CIN, ASSESS_CLOSE))
    cin_to_care = cin_after_assessment & normal & (u[7] < 0.04)

    team_fd = _pick_team(rng, loc.teams["FRONT_DOOR"], n)
    team_a = _pick_team(rng, loc.teams["ASSESSMENT"], n)
    team_c = _pick_team(rng, loc.teams["CIN_CP"], n)
    team_d = _pick_team(rng, loc.teams["DISABILITY"], n)
    team_cla = _pick_team(rng, loc.teams["CLA"], n)
    team_lc = _pick_team(rng, loc.teams["LEAVING_CARE"], n)
    team_1 = np.where(disabled, team_d, np.where(s47, team_c, np.where(uasc, team_lc, team_a)))
    team_cla = np.where(disabled, team_d, np.where(uasc, team_lc, team_cla))

    contact = d0 - rng.integers(0, 3, n)
    fd_end = cal.add(d0, rng.integers(0, 3, n))
    # Assessment: 45 working days from the referral; on time it takes a median of ~33.
    assess = ~nfa
    a_due = cal.add(d0, 45)
    a_ok = on_time(rng, ctx, "ASSESSMENT", team_1)
    a_days = np.where(a_ok, np.clip(rng.normal(32, 8, n), 8, 45), 46 + rng.geometric(1 / 14, n))
    a_done = cal.add(d0, a_days.astype(np.int64))
    a_start = np.minimum(cal.add(d0, rng.integers(0, 4, n)), a_done)

    strat_done = cal.add(d0, np.where(u[8] < 0.93, rng.integers(0, 3, n), rng.integers(4, 10, n)))
    s47_done = cal.add(
        strat_done, np.where(u[9] < 0.88, rng.integers(5, 16, n), rng.integers(16, 35, n))
    )
    icpc_due = cal.add(strat_done, 15)
    icpc_ok = on_time(rng, ctx, "ICPC", team_c)
    icpc_done = np.where(
        icpc_ok, cal.add(strat_done, rng.integers(9, 16, n)), icpc_due + 1 + rng.geometric(1 / 9, n)
    )
    icpc_in = np.minimum(cal.add(strat_done, rng.integers(2, 7, n)), icpc_done)
    band = rng.choice(len(CP_DURATION_P), size=n, p=CP_DURATION_P)
    lo = np.array([b[0] for b in CP_DURATION_BANDS])[band]
    hi = np.array([b[1] for b in CP_DURATION_BANDS])[band]
    plan_start = icpc_done
    plan_end = plan_start + rng.integers(lo, hi + 1)
    category = choose_code(rng, CP_CATEGORIES, n)

    # Child-in-need period: after the assessment, or stepped down when a plan ends.
    stepped_down = plan & (after_plan == CIN)
    cin = cin_after_assessment | stepped_down
    cin_start = np.where(stepped_down, plan_end, a_done + rng.integers(0, 10, n))
    cin_length = (
        np.where(
            disabled,
            rng.lognormal(np.log(520), 0.6, n),
            np.where(
                stepped_down,
                rng.lognormal(np.log(130), 0.5, n),
                rng.lognormal(np.log(225), 0.65, n),
            ),
        ).astype(np.int64)
        + 20
    )
    cin_end = cin_start + cin_length
    cin_team = np.where(disabled, team_d, team_c)

    care = direct_care | (plan & (after_plan == CARE)) | cin_to_care
    care_start = np.where(
        uasc,
        fd_end,
        np.where(
            direct_care,
            fd_end + rng.integers(0, 25, n),
            np.where(plan, plan_end, cin_start + rng.integers(30, 300, n)),
        ),
    )
    cin_end = np.where(cin_to_care, care_start, cin_end)
    r = rng.random(n)
    care_length = np.where(
        r < 0.33,
        rng.integers(14, 180, n),
        np.where(r < 0.66, rng.integers(180, 1100, n), rng.integers(1100, 5500, n)),
    )
    care_length = np.where(uasc, 10_000, care_length)  # until 18
    care_end = care_start + care_length

    closure = np.where(
        nfa,
        d0 + rng.integers(1, 8, n),
        np.where(
            care,
            care_end + rng.integers(0, 20, n),
            np.where(
                cin,
                cin_end,
                np.where(
                    plan,
                    plan_end + rng.integers(0, 14, n),
                    np.maximum(a_done, fd_end) + rng.integers(0, 15, n),
                ),
            ),
        ),
    )
    fd_end = np.where(nfa, closure, fd_end)
    route = np.where(
        nfa, NFA, np.where(care, CARE, np.where(plan, CP, np.where(cin, CIN, ASSESS_CLOSE)))
    )
    source = choose_code(rng, SOURCES, n)
    source[uasc] = np.where(rng.random(uasc.sum()) < 0.6, "4", "5A")
    need = choose_code(rng, NEEDS, n)
    need[disabled] = "N2"
    need[uasc] = "N8"
    return FamilyEpisodes(
        family=family,
        d0=d0,
        route=route,
        source=source,
        need=need,
        contact=contact,
        fd_end=fd_end,
        team_fd=team_fd,
        team_1=team_1,
        team_c=team_c,
        team_cla=team_cla,
        assess=assess,
        a_start=a_start,
        a_due=a_due,
        a_done=a_done,
        s47=s47,
        strat_done=strat_done,
        s47_done=s47_done,
        icpc=icpc,
        icpc_in=icpc_in,
        icpc_done=icpc_done,
        plan=plan,
        plan_start=plan_start,
        plan_end=plan_end,
        category=category,
        cin=cin,
        cin_start=cin_start,
        cin_end=cin_end,
        cin_team=cin_team,
        care=care,
        care_start=care_start,
        care_end=care_end,
        closure=closure,
    )


def referral_chains(
    rng: np.random.Generator, ctx: Context, loc: Locality, families: Families, first_d0: np.ndarray
) -> FamilyEpisodes:
    """Every family referral: first ones, then re-referrals after each closure."""
    parts: list[FamilyEpisodes] = []
    family = np.arange(len(first_d0))
    d0 = first_d0
    prior_cp = np.zeros(len(d0), dtype=bool)
    while len(family):
        ep = simulate_episodes(rng, ctx, loc, family, d0, families.kind[family], prior_cp)
        parts.append(ep)
        again = rng.random(len(family)) < REREFERRAL_P[ep.route]
        next_d0 = ep.closure + 10 + rng.exponential(140, len(family)).astype(np.int64)
        still_child = next_d0 < add_years(families.youngest_dob[family], 18) - 30
        keep = again & still_child & (next_d0 <= ctx.as_of)
        family, d0, prior_cp = family[keep], next_d0[keep], (prior_cp | ep.plan)[keep]
    return FamilyEpisodes(
        **{
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in FamilyEpisodes.__dataclass_fields__
        }
    )
