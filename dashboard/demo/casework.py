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

from dashboard.demo.calendar import NULL, add_years
from dashboard.demo.episodes import ASSESS_CLOSE, CP_CATEGORIES, NFA, choose_code, referral_chains
from dashboard.demo.families import Children, Families, make_families
from dashboard.demo.organisation import Locality
from dashboard.demo.steps import StepColumns
from dashboard.demo.timescales import Context, completion, on_time, schedule


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
    latest[change] = choose_code(rng, CP_CATEGORIES, int(change.sum()))
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
