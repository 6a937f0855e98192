"""Families, referrals and the child-in-need, child-protection and care pathways of a locality.

Families are referred together: a family's referral opens one episode per child under 18 (each
sibling has their own referral and steps, as in Frameworki). An episode follows one route (no
further action, assessment and close, child in need, child protection, care) with dates from the
statutory timescales; when it closes, the family may be referred again, which is what makes
re-referrals. Everything is simulated a few years before the history starts so that the cases open
on its first day are there too.

Dates are day numbers; the whole future of an episode is drawn, and what lies after as_of is
cut off when the rows are made (a case closing after as_of is open).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dashboard.demo import names
from dashboard.demo.calendar import NULL, add_years
from dashboard.demo.organisation import Locality
from dashboard.demo.steps import StepColumns
from dashboard.demo.timescales import Context, completion, on_time, schedule

# Family referral chains started per 10,000 children per year, tuned so the borough gets
# about 519 child referrals per 10,000 a year (CALIBRATION.md).
CHAINS_PER_10K = 232.0
UASC_PER_10K = 3.1
DISABLED_SHARE = 0.07
KIDS_P = (0.5, 0.27, 0.13, 0.07, 0.03)  # children per family known to the service: 1..5
AGE_P = np.array([12, 6, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 7, 7, 6, 5, 3], dtype=float)
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
NORMAL, DISABLED, UASC = 0, 1, 2


def _choice(rng: np.random.Generator, table: dict[str, float], size: int) -> np.ndarray:
    codes = np.array(list(table), dtype=object)
    p = np.array(list(table.values()))
    return codes[rng.choice(len(codes), size=size, p=p / p.sum())]


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
    category = _choice(rng, CP_CATEGORIES, n)

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
    source = _choice(rng, SOURCES, n)
    source[uasc] = np.where(rng.random(uasc.sum()) < 0.6, "4", "5A")
    need = _choice(rng, NEEDS, n)
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


@dataclass
class Phases:
    """Who holds the case when: one row per (child-episode, team) stretch; an allocation each."""

    episode: np.ndarray
    child: np.ndarray
    team: np.ndarray
    start: np.ndarray
    end: np.ndarray  # NULL while open at as_of


@dataclass
class Casework:
    children: Children
    families: Families
    referrals: dict[str, np.ndarray]  # cin_referrals columns, ids local (0-based)
    episode_child: np.ndarray
    phases: Phases
    steps: StepColumns
    cp_plans: dict[str, np.ndarray]
    care: dict[str, np.ndarray]  # per child-episode in care: inputs for care.py
    cin_support: dict[str, np.ndarray]  # child-in-need periods (for support packages)


def simulate_casework(rng: np.random.Generator, ctx: Context, loc: Locality) -> Casework:
    families, children, first_d0 = make_families(rng, ctx, loc.population)
    fe = referral_chains(rng, ctx, loc, families, first_d0)

    # One episode per child of the family who is born and under 18 on the referral date.
    per = families.n_children[fe.family]
    fe_of = np.repeat(np.arange(len(fe.d0)), per)
    child = families.first_child[fe.family][fe_of] + (
        np.arange(len(fe_of)) - np.repeat(np.cumsum(per) - per, per)
    )
    dob = children.dob[child]
    adult = add_years(dob, 18)
    d0 = fe.d0[fe_of]
    ok = (dob <= d0) & (d0 < adult - 14)
    closure = np.minimum(fe.closure[fe_of], adult)
    ok &= closure >= ctx.history_start  # episodes over before the history starts are not kept
    fe_of, child, adult, d0, closure = fe_of[ok], child[ok], adult[ok], d0[ok], closure[ok]
    n = len(fe_of)

    def f(name: str) -> np.ndarray:
        return getattr(fe, name)[fe_of]

    as_of = ctx.as_of
    care_start = f("care_start")
    care = f("care") & (care_start < closure) & (care_start <= as_of)
    care_end = np.minimum(f("care_end"), closure)
    # The team in charge once in care: leaving care from 16, else the family's care team.
    age_at_care = care_start - children.dob[child]
    team_l = np.where(
        (age_at_care >= 16 * 365) & (children.disability[child] == 0),
        loc.teams["LEAVING_CARE"][rng.integers(0, len(loc.teams["LEAVING_CARE"]), n)],
        f("team_cla"),
    )

    # Phases: front door, then the assessing / case-holding team, then CIN team, then care team.
    route = f("route")
    fd_end = np.minimum(f("fd_end"), closure)
    a_done = f("a_done")
    team_1 = f("team_1")
    end_before_care = np.where(care, care_start, closure)
    separate_cin = f("cin") & (f("cin_team") != team_1)
    end_1 = np.where(separate_cin, np.minimum(a_done, end_before_care), end_before_care)
    start_1 = fd_end
    start_2 = end_1
    end_2 = np.where(separate_cin, end_before_care, start_2)
    start_3 = np.where(care, care_start, closure)
    phase_spec = (
        (f("team_fd"), f("contact"), fd_end),
        (team_1, start_1, end_1),
        (f("cin_team"), start_2, end_2),
        (team_l, start_3, closure),
    )
    ph_episode, ph_team, ph_start, ph_end, ph_kind = [], [], [], [], []
    phase_index = np.full((4, n), -1, dtype=np.int64)
    count = 0
    for kind, (team, start, end) in enumerate(phase_spec):
        present = (start < end) & (start <= as_of)
        if kind == 0:
            present = start <= as_of  # every referral passes the front door, however briefly
        idx = np.flatnonzero(present)
        phase_index[kind, idx] = count + np.arange(len(idx))
        count += len(idx)
        ph_episode.append(idx)
        ph_team.append(team[idx])
        ph_start.append(start[idx])
        ph_end.append(np.where(end[idx] > as_of, NULL, np.maximum(end[idx], start[idx])))
        ph_kind.append(np.full(len(idx), kind))
    ph_episode_a = np.concatenate(ph_episode)
    phases = Phases(
        episode=ph_episode_a,
        child=child[ph_episode_a],
        team=np.concatenate(ph_team),
        start=np.concatenate(ph_start),
        end=np.concatenate(ph_end),
    )
    # The case's current team: the last phase begun by as_of.
    current = phase_index[0].copy()
    for kind in (1, 2, 3):
        current = np.where(phase_index[kind] >= 0, phase_index[kind], current)
    referral_team = phases.team[current]

    open_case = closure > as_of
    closure_reason = np.select(
        [
            route == NFA,
            route == ASSESS_CLOSE,
            care & (closure >= adult - 1),
            care & (rng.random(n) < 0.25),
            care & (rng.random(n) < 0.3),
            rng.random(n) < 0.06,
        ],
        ["RC8", "RC8", "RC6", "RC1", "RC4", "RC5"],
        "RC7",
    ).astype(object)
    referrals = {
        "person": child,
        "referral_date": d0,
        "source_code": f("source"),
        "primary_need_code": f("need"),
        "nfa_flag": np.where(route == NFA, "Y", "N").astype(object),
        "responsible_team_id": referral_team,
        "closure_date": np.where(open_case, NULL, closure),
        "closure_reason": np.where(open_case, None, closure_reason),
    }

    steps = StepColumns()
    episode = np.arange(n)
    cal = ctx.cal
    ph_fd, ph_1 = phase_index[0], phase_index[1]
    # Contact and referral at the front door.
    contact_done = np.minimum(d0, cal.add(f("contact"), rng.integers(0, 2, n)))
    steps.add(
        "CONTACT",
        child=child,
        episode=episode,
        phase=ph_fd,
        team=f("team_fd"),
        incoming=f("contact"),
        due=cal.add(f("contact"), 1),
        completed=contact_done,
    )
    ref_done = cal.add(
        d0, np.where(rng.random(n) < 0.93, rng.integers(0, 2, n), rng.integers(2, 6, n))
    )
    steps.add(
        "REFERRAL",
        child=child,
        episode=episode,
        phase=ph_fd,
        team=f("team_fd"),
        incoming=d0,
        due=cal.add(d0, 1),
        completed=ref_done,
    )

    # Assessment: by the first case-holding team (the care team for children accommodated at once).
    a = np.flatnonzero(f("assess") & ((ph_1 >= 0) | (phase_index[3] >= 0)))
    a_phase = np.where(ph_1[a] >= 0, ph_1[a], phase_index[3][a])
    assessment_step = np.full(n, -1)
    assessment_step[a] = steps.add(
        "CF_ASSESSMENT",
        child=child[a],
        episode=a,
        phase=a_phase,
        team=phases.team[a_phase],
        incoming=d0[a],
        started=f("a_start")[a],
        due=f("a_due")[a],
        completed=a_done[a],
    )

    s = np.flatnonzero(f("s47") & (ph_1 >= 0))
    strat_done = f("strat_done")[s]
    team_s = phases.team[ph_1[s]]
    steps.add(
        "STRATEGY",
        child=child[s],
        episode=s,
        phase=ph_1[s],
        team=team_s,
        incoming=d0[s],
        due=cal.add(d0[s], 3),
        completed=strat_done,
    )
    steps.add(
        "S47_ENQUIRY",
        child=child[s],
        episode=s,
        phase=ph_1[s],
        team=team_s,
        incoming=strat_done,
        due=cal.add(strat_done, 15),
        completed=f("s47_done")[s],
    )
    i = np.flatnonzero(f("icpc") & (ph_1 >= 0))
    steps.add(
        "ICPC",
        child=child[i],
        episode=i,
        phase=ph_1[i],
        team=phases.team[ph_1[i]],
        incoming=f("icpc_in")[i],
        due=cal.add(f("strat_done")[i], 15),
        completed=f("icpc_done")[i],
    )

    # Child protection plans, review conferences every 3 then 6 months, visits every 10 days.
    p = np.flatnonzero(
        f("plan") & (ph_1 >= 0) & (f("plan_start") < closure) & (f("plan_start") <= as_of)
    )
    plan_start = f("plan_start")[p]
    plan_end = np.minimum(f("plan_end")[p], closure[p])
    latest = f("category")[p].copy()
    change = rng.random(len(p)) < 0.2
    latest[change] = _choice(rng, CP_CATEGORIES, int(change.sum()))
    cp_plans = {
        "person": child[p],
        "start_date": plan_start,
        "end_date": np.where(plan_end > as_of, NULL, plan_end),
        "initial_category": f("category")[p],
        "latest_category": latest,
    }
    team_p = phases.team[ph_1[p]]
    owner, due, prev = schedule(ctx, plan_start, plan_end + 1, 182, working=False, first=91)
    first_review = due - prev == 91
    ok = on_time(rng, ctx, "RCPC", team_p[owner])
    done = completion(rng, due, prev, ok)
    for code, sel in (("RCPC_FIRST", first_review), ("RCPC", ~first_review)):
        o = owner[sel]
        steps.add(
            code,
            child=child[p][o],
            episode=p[o],
            phase=ph_1[p][o],
            team=team_p[o],
            incoming=prev[sel],
            due=due[sel],
            completed=done[sel],
        )
    owner, due, prev = schedule(ctx, plan_start, plan_end, 10, working=True)
    ok = on_time(rng, ctx, "CP_VISIT", team_p[owner])
    steps.add(
        "CP_VISIT",
        child=child[p][owner],
        episode=p[owner],
        phase=ph_1[p][owner],
        team=team_p[owner],
        incoming=prev,
        due=due,
        completed=completion(rng, due, prev, ok),
    )

    # Child-in-need plans and visits every six weeks or so.
    c = np.flatnonzero(f("cin") & (f("cin_start") < closure) & (f("cin_start") <= as_of))
    c_phase = np.where(separate_cin[c], phase_index[2][c], ph_1[c])
    c = c[c_phase >= 0]
    c_phase = c_phase[c_phase >= 0]
    c_team = phases.team[c_phase]
    cin_start = f("cin_start")[c]
    cin_end = np.minimum(f("cin_end")[c], closure[c])
    ok = on_time(rng, ctx, "CIN_PLAN", c_team)
    plan_due = cal.add(cin_start, 10)
    cin_plan_step = steps.add(
        "CIN_PLAN",
        child=child[c],
        episode=c,
        phase=c_phase,
        team=c_team,
        incoming=cin_start,
        due=plan_due,
        completed=completion(rng, plan_due, cin_start, ok),
    )
    owner, due, prev = schedule(ctx, cin_start, cin_end, 30, working=True)
    ok = on_time(rng, ctx, "CIN_VISIT", c_team[owner])
    steps.add(
        "CIN_VISIT",
        child=child[c][owner],
        episode=c[owner],
        phase=c_phase[owner],
        team=c_team[owner],
        incoming=prev,
        due=due,
        completed=completion(rng, due, prev, ok),
    )

    # Closure, recorded by the last team to hold the case.
    last_phase = current
    close_in = np.maximum(closure - rng.integers(0, 6, n), d0)
    steps.add(
        "CLOSURE",
        child=child,
        episode=episode,
        phase=last_phase,
        team=phases.team[last_phase],
        incoming=close_in,
        due=cal.add(close_in, 5),
        completed=closure,
    )

    cin_support = {
        "episode": c,
        "child": child[c],
        "start": cin_start,
        "end": cin_end,
        "team": c_team,
        "disabled": children.disability[child[c]],
        "step": cin_plan_step,
    }
    k = np.flatnonzero(care & (phase_index[3] >= 0))
    care_rows = {
        "episode": k,
        "child": child[k],
        "start": care_start[k],
        "end": care_end[k],
        "adult": adult[k],
        "dob": children.dob[child[k]],
        "phase": phase_index[3][k],
        "team": team_l[k],
        "uasc": children.uasc[child[k]],
        "disabled": children.disability[child[k]],
        "from_plan": f("plan")[k],
        "step": assessment_step[k],
    }
    _standalone_contacts(rng, ctx, loc, children, steps)
    return Casework(
        children, families, referrals, child, phases, steps, cp_plans, care_rows, cin_support
    )


def _standalone_contacts(
    rng: np.random.Generator, ctx: Context, loc: Locality, children: Children, steps: StepColumns
) -> None:
    """Contacts that never became referrals (advice, signposting): no referral_id, no phase."""
    n = int(len(children.dob) * 0.2)
    who = rng.integers(0, len(children.dob), n)
    day = rng.integers(ctx.history_start, ctx.as_of + 1, n)
    keep = (day >= children.dob[who]) & (day < add_years(children.dob[who], 18))
    who, day = who[keep], day[keep]
    team = loc.teams["FRONT_DOOR"][rng.integers(0, len(loc.teams["FRONT_DOOR"]), len(who))]
    none = np.full(len(who), -1)
    done = ctx.cal.add(day, np.where(rng.random(len(who)) < 0.95, 0, rng.integers(1, 4, len(who))))
    steps.add(
        "CONTACT",
        child=who,
        episode=none,
        phase=none,
        team=team,
        incoming=day,
        due=ctx.cal.add(day, 1),
        completed=done,
    )
