"""The demo borough is internally consistent: every key resolves, dates run forwards, codes are
SCHEMA.md's. Checked on the small borough (fast) with queries written independently of the
generator."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import and_, create_engine, func, select, text

from dashboard import schema

AS_OF = dt.date(2026, 11, 25)

# Code sets from SCHEMA.md (and SSDA903 / CIN census codes where SCHEMA.md says "e.g." or "…").
CODES: dict[tuple[str, str], set[str]] = {
    ("people", "gender"): {"M", "F", "U"},
    ("people", "disability_flag"): {"Y", "N"},
    ("people", "uasc_flag"): {"Y", "N"},
    ("organisations", "org_level"): {"DIRECTORATE", "SERVICE", "TEAM"},
    ("workers", "is_agency"): {"Y", "N"},
    ("worker_roles", "role"): {
        "SW",
        "ASYE",
        "SENIOR_PRACTITIONER",
        "FAMILY_SUPPORT",
        "TEAM_MANAGER",
        "SERVICE_MANAGER",
        "HEAD_OF_SERVICE",
        "DIRECTOR",
        "FINANCE_OFFICER",
    },
    ("worker_roles", "primary_job"): {"Y", "N"},
    ("people_workers", "allocation_type"): {"ALLWKR"},
    ("cin_referrals", "nfa_flag"): {"Y", "N"},
    ("cin_referrals", "primary_need_code"): {f"N{i}" for i in range(1, 10)},
    ("cin_referrals", "closure_reason"): {f"RC{i}" for i in range(1, 9)},
    ("cin_referrals", "source_code"): {
        "1A",
        "1B",
        "1C",
        "1D",
        "2A",
        "2B",
        "3A",
        "3B",
        "3C",
        "3D",
        "3E",
        "3F",
        "4",
        "5A",
        "5B",
        "5C",
        "5D",
        "6",
        "7",
        "8",
        "9",
    },
    ("workflow_step_types", "category"): {
        "CONTACT",
        "REFERRAL",
        "ASSESSMENT",
        "STRATEGY",
        "S47",
        "ICPC",
        "RCPC",
        "CIN_PLAN",
        "CIN_VISIT",
        "CP_VISIT",
        "CLA_VISIT",
        "CLA_REVIEW",
        "PATHWAY_PLAN",
        "HEALTH_ASSESSMENT",
        "CLOSURE",
    },
    ("workflow_step_types", "timescale_unit"): {"WORKING", "CALENDAR"},
    ("workflow_step_types", "requires_authorisation"): {"Y", "N"},
    ("workflow_steps", "step_status"): {
        "PROPOSED",
        "INCOMING",
        "STARTED",
        "REOPENED",
        "COMPLETED",
        "CANCELLED",
    },
    ("visits", "visit_type"): {"CP", "CIN", "CLA"},
    ("visits", "child_seen"): {"Y", "N"},
    ("visits", "seen_alone"): {"Y", "N"},
    ("cp_plans", "initial_category"): {"NEG", "PHY", "SAB", "EMO", "MUL"},
    ("cp_plans", "latest_category"): {"NEG", "PHY", "SAB", "EMO", "MUL"},
    ("periods_of_care", "legal_status"): {
        "C1",
        "C2",
        "D1",
        "E1",
        "J1",
        "J2",
        "J3",
        "L1",
        "L2",
        "L3",
        "V2",
        "V3",
        "V4",
    },
    ("placements", "placement_type"): {
        "U1",
        "U2",
        "U3",
        "U4",
        "U5",
        "U6",
        "K1",
        "K2",
        "K3",
        "R1",
        "R2",
        "R3",
        "R5",
        "P1",
        "P2",
        "P3",
        "S1",
        "Z1",
        "A3",
        "A4",
        "A5",
        "A6",
        "H5",
        "T0",
    },
    ("providers", "provider_type"): {
        "IN_HOUSE_FOSTERING",
        "IFA",
        "CHILDRENS_HOME",
        "SUPPORTED_ACCOMMODATION",
        "SECURE",
        "RESIDENTIAL_SCHOOL",
        "PARENT_AND_CHILD",
        "KINSHIP",
        "OTHER",
    },
    ("providers", "pr_code"): {f"PR{i}" for i in range(6)},
    ("care_packages", "status"): {"ACTIVE", "ENDED", "CANCELLED"},
    ("service_elements", "element_type"): {
        "PLACEMENT",
        "SUPPORT",
        "EDUCATION",
        "THERAPY",
        "TRANSPORT",
        "ALLOWANCE",
    },
    ("service_elements", "status"): {
        "PROPOSED",
        "AWAITING_AUTHORISATION",
        "AUTHORISED",
        "ENDED",
        "CANCELLED",
    },
    ("payments", "status"): {"CERTIFIED", "PAID", "REJECTED"},
}

# (table, earlier, later): where both are present, earlier <= later.
ORDERED = [
    ("workflow_steps", "incoming_on", "started_on"),
    ("workflow_steps", "started_on", "completed_on"),
    ("workflow_steps", "incoming_on", "completed_on"),
    ("workflow_steps", "incoming_on", "cancelled_on"),
    ("workflow_steps", "authorisation_requested_on", "authorised_on"),
    ("cin_referrals", "referral_date", "closure_date"),
    ("payments", "period_start", "period_end"),
    ("payments", "period_end", "paid_on"),
    ("service_elements", "start_date", "planned_end_date"),
    ("service_elements", "authorisation_requested_on", "authorised_on"),
    ("people", "date_of_birth", "date_of_death"),
]
# Dates that record something that has happened: never after as_of.
HAPPENED = [
    ("workflow_steps", "incoming_on"),
    ("workflow_steps", "started_on"),
    ("workflow_steps", "completed_on"),
    ("workflow_steps", "cancelled_on"),
    ("workflow_steps", "authorised_on"),
    ("workflow_steps", "authorisation_requested_on"),
    ("visits", "visit_date"),
    ("cin_referrals", "referral_date"),
    ("cin_referrals", "closure_date"),
    ("payments", "paid_on"),
    ("payments", "period_end"),
    ("cp_plans", "start_date"),
    ("cp_plans", "end_date"),
    ("periods_of_care", "start_date"),
    ("periods_of_care", "end_date"),
    ("placements", "start_date"),
    ("placements", "end_date"),
    ("people_workers", "start_date"),
    ("people_workers", "end_date"),
    ("service_elements", "end_date"),
    ("service_elements", "authorised_on"),
    ("workers", "start_date"),
    ("worker_roles", "start_date"),
    ("people", "date_of_birth"),
]


@pytest.fixture(scope="module")
def small(small_demo_source_url):
    engine = create_engine(small_demo_source_url)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def _foreign_keys():
    for table in schema.metadata.sorted_tables:
        # table.foreign_keys is a set: sort it so every xdist worker collects the same order.
        for fk in sorted(table.foreign_keys, key=lambda fk: fk.parent.name):
            yield pytest.param(fk, id=f"{table.name}.{fk.parent.name}")


@pytest.mark.parametrize("fk", list(_foreign_keys()))
def test_every_foreign_key_points_at_a_row(small, fk):
    child = fk.parent
    parent_table = fk.column.table.alias("parent")  # aliased: organisations refers to itself
    parent = parent_table.c[fk.column.name]
    dangling = small.execute(
        select(func.count())
        .select_from(child.table.outerjoin(parent_table, child == parent))
        .where(child.is_not(None), parent.is_(None))
    ).scalar_one()
    assert dangling == 0


def test_every_table_has_rows(small):
    for table in schema.metadata.sorted_tables:
        assert small.execute(select(func.count()).select_from(table)).scalar_one() > 0, table.name


@pytest.mark.parametrize(("table", "earlier", "later"), ORDERED)
def test_dates_run_forwards(small, table, earlier, later):
    t = schema.metadata.tables[table]
    backwards = small.execute(
        select(func.count()).select_from(t).where(t.c[earlier] > t.c[later])
    ).scalar_one()
    assert backwards == 0


@pytest.mark.parametrize(
    "table",
    [
        t.name
        for t in schema.metadata.sorted_tables
        if {"start_date", "end_date"} <= set(t.c.keys())
    ],
)
def test_start_before_end(small, table):
    t = schema.metadata.tables[table]
    backwards = small.execute(
        select(func.count()).select_from(t).where(t.c.start_date > t.c.end_date)
    ).scalar_one()
    assert backwards == 0


@pytest.mark.parametrize(("table", "column"), HAPPENED)
def test_nothing_has_happened_after_as_of(small, table, column):
    t = schema.metadata.tables[table]
    latest = small.execute(select(func.max(t.c[column]))).scalar_one()
    assert latest is not None and latest <= AS_OF


@pytest.mark.parametrize(("table", "column"), list(CODES))
def test_codes_are_schema_codes(small, table, column):
    t = schema.metadata.tables[table]
    found = {v for (v,) in small.execute(select(t.c[column]).distinct()) if v is not None}
    assert found, f"{table}.{column} is empty"
    assert found <= CODES[(table, column)], found - CODES[(table, column)]


def test_step_statuses_match_their_dates(small):
    rows = small.execute(
        text(
            "SELECT step_status, "
            " SUM(CASE WHEN completed_on IS NULL THEN 0 ELSE 1 END),"
            " SUM(CASE WHEN started_on IS NULL THEN 0 ELSE 1 END),"
            " SUM(CASE WHEN cancelled_on IS NULL THEN 0 ELSE 1 END), COUNT(*)"
            " FROM workflow_steps GROUP BY step_status"
        )
    ).all()
    by = {r[0]: r[1:] for r in rows}
    done, started, cancelled, total = by["COMPLETED"]
    assert done == started == total and cancelled == 0
    assert by["STARTED"][0] == 0 and by["STARTED"][1] == by["STARTED"][3]
    assert by["INCOMING"][0] == 0 and by["INCOMING"][1] == 0
    assert by["CANCELLED"][2] == by["CANCELLED"][3]


def test_completed_visit_steps_have_visit_rows(small):
    missing = small.execute(
        text(
            "SELECT COUNT(*) FROM workflow_steps s"
            " JOIN workflow_step_types t ON t.workflow_step_type_id = s.workflow_step_type_id"
            " WHERE t.category IN ('CP_VISIT', 'CIN_VISIT', 'CLA_VISIT')"
            " AND s.step_status = 'COMPLETED'"
            " AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.workflow_step_id = s.workflow_step_id)"
        )
    ).scalar_one()
    assert missing == 0


def test_organisation_is_one_tree(small):
    orgs = small.execute(text("SELECT org_id, org_level, parent_org_id FROM organisations")).all()
    level = {o: lv for o, lv, _ in orgs}
    roots = [o for o, _, p in orgs if p is None]
    assert len(roots) == 1 and level[roots[0]] == "DIRECTORATE"
    for org_id, lv, parent in orgs:
        if lv == "SERVICE":
            assert level[parent] == "DIRECTORATE", org_id
        if lv == "TEAM":
            assert level[parent] == "SERVICE", org_id


def test_each_team_has_one_team_manager_and_workers_have_readable_usernames(small):
    managers = small.execute(
        text(
            "SELECT o.org_id, COUNT(r.worker_role_id) FROM organisations o"
            " LEFT JOIN worker_roles r ON r.org_id = o.org_id AND r.role = 'TEAM_MANAGER'"
            " WHERE o.org_level = 'TEAM' GROUP BY o.org_id"
        )
    ).all()
    assert managers and all(n == 1 for _, n in managers)
    names = [u for (u,) in small.execute(text("SELECT username FROM workers"))]
    assert len(names) == len(set(names))
    assert all(u.isascii() and u.isalnum() and u == u.lower() for u in names)


def test_open_cases_are_allocated_within_the_case_team(small):
    # The running ALLWKR allocation of an open case is held by a worker whose primary role, at
    # as_of, is in the case's team (cin_referrals.responsible_team_id).
    rows = small.execute(
        text(
            "SELECT r.responsible_team_id, ro.org_id FROM cin_referrals r"
            " JOIN people_workers a ON a.person_id = r.person_id AND a.allocation_type = 'ALLWKR'"
            "  AND a.start_date <= :d AND (a.end_date IS NULL OR a.end_date > :d)"
            " JOIN worker_roles ro ON ro.worker_id = a.worker_id AND ro.primary_job = 'Y'"
            "  AND ro.start_date <= :d AND (ro.end_date IS NULL OR ro.end_date > :d)"
            " WHERE r.referral_date <= :d AND (r.closure_date IS NULL OR r.closure_date > :d)"
        ),
        {"d": AS_OF},
    ).all()
    assert len(rows) > 50
    assert all(case_team == worker_team for case_team, worker_team in rows)


def test_placement_elements_match_their_placement(small):
    t_el, t_pl = schema.service_elements, schema.placements
    mismatched = small.execute(
        select(func.count())
        .select_from(t_el.join(t_pl, t_el.c.placement_id == t_pl.c.placement_id))
        .where(
            and_(
                t_el.c.element_type == "PLACEMENT",
                (t_el.c.start_date != t_pl.c.start_date) | (t_el.c.person_id != t_pl.c.person_id),
            )
        )
    ).scalar_one()
    assert mismatched == 0
