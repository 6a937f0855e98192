"""One locality of the borough, from simulation to rows ready to write.

The order matters: casework and care first (they decide which cases are open at as_of), then the
team staffing that those open cases need, then allocations and assignees, then the mess, then
finance, and last the ids, which run on from the previous locality's so every key is unique.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dashboard.demo import mess
from dashboard.demo.allocation import allocations, assignees, choose_slots
from dashboard.demo.calendar import NULL, add_years
from dashboard.demo.care import simulate_care
from dashboard.demo.casework import simulate_casework
from dashboard.demo.finance import CC_CODES, Providers, fy_spend, simulate_finance
from dashboard.demo.organisation import Locality, Organisation, Workforce, staff_locality
from dashboard.demo.steps import CATEGORY_OF_TYPE, VISIT_TYPE_OF_CATEGORY, sign_off
from dashboard.demo.timescales import Context

Frames = dict[str, dict[str, np.ndarray]]


@dataclass
class IdCounters:
    """The next free id per table, carried from one locality to the next."""

    person: int = 1
    group: int = 1
    referral: int = 1
    step: int = 1
    visit: int = 1
    cp_plan: int = 1
    period: int = 1
    placement: int = 1
    package: int = 1
    element: int = 1
    payment: int = 1
    allocation: int = 1

    def take(self, name: str, count: int) -> np.ndarray:
        first = getattr(self, name)
        setattr(self, name, first + count)
        return np.arange(first, first + count, dtype=np.int64)


def _remap(local: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Local indexes (-1 for none) to ids (NULL for none)."""
    local = np.asarray(local, dtype=np.int64)
    return np.where(local >= 0, ids[np.maximum(local, 0)], NULL)


def _yes(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, "Y", "N").astype(object)


def build_locality(
    rng: np.random.Generator,
    ctx: Context,
    loc: Locality,
    org: Organisation,
    providers: Providers,
    workforce: Workforce,
    ids: IdCounters,
    cc_holder: np.ndarray,
    budget_years: range,
) -> tuple[Frames, np.ndarray]:
    as_of = ctx.as_of
    cw = simulate_casework(rng, ctx, loc)
    care = simulate_care(rng, ctx, cw.care, cw.steps)
    steps = cw.steps.finish(as_of)

    # Staff each team for the cases it holds at as_of.
    phases = cw.phases
    open_per_team = {int(t): 0 for area in loc.teams.values() for t in area}
    teams, counts = np.unique(phases.team[phases.end == NULL], return_counts=True)
    open_per_team.update({int(t): int(c) for t, c in zip(teams, counts, strict=True)})
    for team in loc.teams["FRONT_DOOR"]:
        # The front door's work is contacts, not caseloads: staff it for the flow.
        front_door_fte = 6 * loc.population / 60_000 / len(loc.teams["FRONT_DOOR"])
        open_per_team[int(team)] = max(open_per_team[int(team)], int(front_door_fte * 16.8))
    slots = staff_locality(open_per_team, workforce, ctx.sim_start, as_of)
    slot = choose_slots(rng, phases, slots)
    alloc = allocations(phases, slots, slot)
    assignee = assignees(rng, steps["phase"], steps["team"], steps["incoming"], slots, slot)

    # A few cancelled visits, then the mess, then sign-off.
    category = CATEGORY_OF_TYPE[steps["type_id"]]
    is_visit = np.isin(category, list(VISIT_TYPE_OF_CATEGORY))
    cancelled = is_visit & (steps["status"] == "COMPLETED") & (rng.random(len(category)) < 0.006)
    steps["status"][cancelled] = "CANCELLED"
    steps["completed"][cancelled] = NULL
    steps["cancelled"] = np.where(
        cancelled, np.maximum(steps["incoming"], np.minimum(steps["due"], as_of) - 2), NULL
    )
    mess.spoil_steps(rng, steps, ctx.quality, as_of)
    team_manager = np.full(max(org.team_manager) + 1, NULL)
    for team, manager in org.team_manager.items():
        team_manager[team] = manager
    sign_off(rng, steps, team_manager, as_of)

    fin = simulate_finance(
        rng,
        ctx,
        providers,
        cw.care,
        care.periods["end_date"],
        care.placements,
        cw.cin_support,
        cc_holder,
    )
    el = fin.elements
    no_cc = mess.missing_cost_centres(rng, len(el["cc"]))
    el["cc"] = np.where(no_cc, NULL, el["cc"])
    spend = fy_spend(el, as_of, budget_years)

    # --- ids and rows -------------------------------------------------------------------
    children = cw.children
    used = np.zeros(len(children.dob), dtype=bool)
    used[cw.referrals["person"]] = True
    used[steps["child"]] = True
    person_ids = np.full(len(used), NULL)
    person_ids[used] = ids.take("person", int(used.sum()))
    u = np.flatnonzero(used)
    m = len(u)
    school_age = (as_of - children.dob[u]) > 4 * 365
    people = {
        "person_id": person_ids[u],
        "first_names": children.first_names[u],
        "last_name": children.last_name[u],
        "date_of_birth": children.dob[u],
        "gender": children.gender[u],
        "ethnicity_code": children.ethnicity[u],
        "upn": np.where(
            school_age & (rng.random(m) < 0.9),
            np.char.add("A", np.char.zfill(rng.integers(0, 10**12, m).astype(str), 12)).astype(
                object
            ),
            None,
        ),
        "nhs_number": np.where(
            rng.random(m) < 0.95,
            np.char.zfill(rng.integers(4 * 10**8, 10**10 - 1, m).astype(str), 10).astype(object),
            None,
        ),
        "disability_flag": _yes(children.disability[u]),
        "uasc_flag": _yes(children.uasc[u]),
        "postcode": children.postcode[u],
        "date_of_death": np.full(m, NULL),
    }
    mess.spoil_people(rng, people)

    fam_used = np.unique(children.family[u])
    group_ids = np.full(len(cw.families.kind), NULL)
    group_ids[fam_used] = ids.take("group", len(fam_used))
    groups = {
        "group_id": group_ids[fam_used],
        "group_name": (cw.families.surname[fam_used] + " family").astype(object),
    }
    group_subjects = {
        "group_id": group_ids[children.family[u]],
        "person_id": person_ids[u],
        "start_date": children.dob[u],
        "end_date": np.where(
            add_years(children.dob[u], 18) <= as_of, add_years(children.dob[u], 18), NULL
        ),
    }

    ref = cw.referrals
    referral_ids = ids.take("referral", len(ref["person"]))
    referrals = {
        "referral_id": referral_ids,
        "person_id": person_ids[ref["person"]],
        "referral_date": ref["referral_date"],
        "source_code": ref["source_code"],
        "primary_need_code": ref["primary_need_code"],
        "nfa_flag": ref["nfa_flag"],
        "responsible_team_id": ref["responsible_team_id"],
        "closure_date": ref["closure_date"],
        "closure_reason": ref["closure_reason"],
    }

    step_ids = ids.take("step", len(steps["type_id"]))
    step_frame = {
        "workflow_step_id": step_ids,
        "workflow_step_type_id": steps["type_id"],
        "person_id": person_ids[steps["child"]],
        "referral_id": _remap(steps["episode"], referral_ids),
        "step_status": steps["status"],
        "incoming_on": steps["incoming"],
        "started_on": steps["started"],
        "due_date": steps["due"],
        "completed_on": steps["completed"],
        "cancelled_on": steps["cancelled"],
        "assignee_id": assignee,
        "responsible_team_id": steps["team"],
        "authorisation_requested_on": steps["authorisation_requested_on"],
        "authorised_by": steps["authorised_by"],
        "authorised_on": steps["authorised_on"],
    }

    visit_rows = np.flatnonzero(is_visit & (steps["status"] == "COMPLETED"))
    k = len(visit_rows)
    seen = rng.random(k) < 0.95
    visit_child = steps["child"][visit_rows]
    old_enough = (steps["completed"][visit_rows] - children.dob[visit_child]) > 5 * 365
    visits = {
        "visit_id": ids.take("visit", k),
        "workflow_step_id": step_ids[visit_rows],
        "person_id": person_ids[visit_child],
        "visit_type": np.array(
            [VISIT_TYPE_OF_CATEGORY[c] for c in category[visit_rows]], dtype=object
        ),
        "worker_id": assignee[visit_rows],
        "visit_date": steps["completed"][visit_rows],
        "child_seen": _yes(seen),
        "seen_alone": _yes(seen & old_enough & (rng.random(k) < 0.75)),
    }

    cp = cw.cp_plans
    cp_plans = {
        "cp_plan_id": ids.take("cp_plan", len(cp["person"])),
        "person_id": person_ids[cp["person"]],
        "start_date": cp["start_date"],
        "end_date": cp["end_date"],
        "initial_category": cp["initial_category"],
        "latest_category": cp["latest_category"],
    }

    pe = care.periods
    period_ids = ids.take("period", len(pe["person"]))
    periods = {
        "period_of_care_id": period_ids,
        "person_id": person_ids[pe["person"]],
        "start_date": pe["start_date"],
        "end_date": pe["end_date"],
        "legal_status": pe["legal_status"],
        "reason_ceased": pe["reason_ceased"],
    }
    pl = care.placements
    placement_ids = ids.take("placement", len(pl["person"]))
    placements = {
        "placement_id": placement_ids,
        "period_of_care_id": period_ids[pl["period"]],
        "person_id": person_ids[pl["person"]],
        "placement_type": pl["placement_type"],
        "provider_id": pl["provider_id"],
        "start_date": pl["start_date"],
        "end_date": pl["end_date"],
        "reason_change": pl["reason_change"],
    }

    pk = fin.packages
    has = pk["has_elements"]
    package_ids = np.full(len(has), NULL)
    package_ids[has] = ids.take("package", int(has.sum()))
    step_row = np.where(pk["step"] >= 0, cw.steps.kept_index[np.maximum(pk["step"], 0)], -1)
    packages = {
        "care_package_id": package_ids[has],
        "person_id": person_ids[pk["person"][has]],
        "workflow_step_id": _remap(step_row[has], step_ids),
        "start_date": pk["start_date"][has],
        "end_date": pk["end_date"][has],
        "status": pk["status"][has],
    }
    element_ids = ids.take("element", len(el["start"]))
    cc_code = np.where(el["cc"] == NULL, None, CC_CODES[np.maximum(el["cc"], 0)])
    elements = {
        "service_element_id": element_ids,
        "care_package_id": package_ids[el["package"].astype(np.int64)],
        "person_id": person_ids[el["person"].astype(np.int64)],
        "placement_id": _remap(el["placement"], placement_ids),
        "provider_id": el["provider"].astype(np.int64),
        "element_type": el["element_type"],
        "cost_centre_code": cc_code,
        "weekly_cost": el["weekly_cost"].astype(float),
        "start_date": el["start"],
        "planned_end_date": el["planned_end"],
        "end_date": el["end"],
        "status": el["status"],
        "authorisation_requested_on": el["requested"],
        "authorised_by": el["authorised_by"],
        "authorised_on": el["authorised"],
    }
    pay = fin.payments
    payments = {
        "payment_id": ids.take("payment", len(pay["element"])),
        "service_element_id": element_ids[pay["element"]],
        "cost_centre_code": CC_CODES[pay["cc"]],
        "period_start": pay["period_start"],
        "period_end": pay["period_end"],
        "amount": pay["amount"],
        "status": pay["status"],
        "paid_on": pay["paid_on"],
    }
    mess.orphan_payments(rng, payments)

    allocation = {
        "allocation_id": ids.take("allocation", len(alloc["person"])),
        "person_id": person_ids[alloc["person"]],
        "worker_id": alloc["worker_id"],
        "allocation_type": np.full(len(alloc["person"]), "ALLWKR", dtype=object),
        "start_date": alloc["start_date"],
        "end_date": alloc["end_date"],
    }
    open_people = np.unique(referrals["person_id"][referrals["closure_date"] == NULL])
    mess.unallocate(rng, allocation, open_people, as_of)

    workers, roles = workforce.take()
    frames: Frames = {
        "workers": workers,
        "worker_roles": roles,
        "people": people,
        "groups": groups,
        "group_subjects": group_subjects,
        "cin_referrals": referrals,
        "workflow_steps": step_frame,
        "visits": visits,
        "cp_plans": cp_plans,
        "periods_of_care": periods,
        "placements": placements,
        "care_packages": packages,
        "service_elements": elements,
        "payments": payments,
        "people_workers": allocation,
    }
    return frames, spend
