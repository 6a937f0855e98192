"""The Frameworki-style source schema (../shared/docs/SCHEMA.md), defined once.

This is the contract between the demo-borough generator, the queries in ``queries/`` and any real
reporting database a council points the dashboard at. Names follow Mosaic's in lower_snake_case.
Dates are ``DATE``, money ``NUMERIC(12,2)`` in pounds, flags ``'Y'``/``'N'``, codes in capitals.

The dashboard never writes to a real source: ``create_source_schema`` is only used by the demo
generator and the tests.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    func,
)
from sqlalchemy.engine import Engine

metadata = MetaData()

MONEY = Numeric(12, 2, asdecimal=False)
FLAG = String(1)  # 'Y' / 'N'


def _updated_on() -> Column:
    # Every table carries updated_on so refreshes can later be made incremental (SCHEMA.md).
    return Column("updated_on", DateTime, nullable=False, server_default=func.current_timestamp())


# --- People and families -------------------------------------------------------------------

people = Table(
    "people",
    metadata,
    Column("person_id", Integer, primary_key=True, autoincrement=False),
    Column("first_names", String(100)),
    Column("last_name", String(100)),
    Column("date_of_birth", Date),
    Column("gender", String(1)),  # M, F, U
    Column("ethnicity_code", String(4)),  # CBDS, e.g. WBRI
    Column("upn", String(13)),
    Column("nhs_number", String(10)),
    Column("disability_flag", FLAG, nullable=False, server_default="N"),
    Column("uasc_flag", FLAG, nullable=False, server_default="N"),
    Column("postcode", String(8)),
    Column("date_of_death", Date),
    _updated_on(),
)

groups = Table(
    "groups",
    metadata,
    Column("group_id", Integer, primary_key=True, autoincrement=False),
    Column("group_name", String(200)),
    _updated_on(),
)

group_subjects = Table(
    "group_subjects",
    metadata,
    Column("group_id", Integer, ForeignKey("groups.group_id"), nullable=False),
    Column("person_id", Integer, ForeignKey("people.person_id"), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    _updated_on(),
    Index("ix_group_subjects_person", "person_id"),
    Index("ix_group_subjects_group", "group_id"),
)

# --- Organisation and workforce ------------------------------------------------------------

organisations = Table(
    "organisations",
    metadata,
    Column("org_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("org_level", String(20), nullable=False),  # DIRECTORATE, SERVICE, TEAM
    Column("parent_org_id", Integer, ForeignKey("organisations.org_id")),
    Column("service_area", String(30)),
    _updated_on(),
)

workers = Table(
    "workers",
    metadata,
    Column("worker_id", Integer, primary_key=True, autoincrement=False),
    Column("first_names", String(100)),
    Column("last_names", String(100)),
    Column("username", String(100), nullable=False, unique=True),
    Column("is_agency", FLAG, nullable=False, server_default="N"),
    Column("fte", Numeric(4, 2, asdecimal=False), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    _updated_on(),
)

worker_roles = Table(
    "worker_roles",
    metadata,
    Column("worker_role_id", Integer, primary_key=True, autoincrement=False),
    Column("worker_id", Integer, ForeignKey("workers.worker_id"), nullable=False),
    Column("org_id", Integer, ForeignKey("organisations.org_id"), nullable=False),
    Column("role", String(30), nullable=False),
    Column("primary_job", FLAG, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    _updated_on(),
    Index("ix_worker_roles_worker", "worker_id"),
    Index("ix_worker_roles_org", "org_id"),
)

people_workers = Table(
    "people_workers",
    metadata,
    Column("allocation_id", Integer, primary_key=True, autoincrement=False),
    Column("person_id", Integer, ForeignKey("people.person_id"), nullable=False),
    Column("worker_id", Integer, ForeignKey("workers.worker_id"), nullable=False),
    Column("allocation_type", String(10), nullable=False),  # ALLWKR
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    _updated_on(),
    Index("ix_people_workers_worker", "worker_id", "end_date"),
    Index("ix_people_workers_person", "person_id", "end_date"),
)

# --- Cases and workflow --------------------------------------------------------------------

cin_referrals = Table(
    "cin_referrals",
    metadata,
    Column("referral_id", Integer, primary_key=True, autoincrement=False),
    Column("person_id", Integer, ForeignKey("people.person_id"), nullable=False),
    Column("referral_date", Date, nullable=False),
    Column("source_code", String(4)),
    Column("primary_need_code", String(2)),
    Column("nfa_flag", FLAG, nullable=False, server_default="N"),
    Column("responsible_team_id", Integer, ForeignKey("organisations.org_id")),
    Column("closure_date", Date),
    Column("closure_reason", String(4)),
    _updated_on(),
    Index("ix_cin_referrals_person", "person_id", "referral_date"),
    Index("ix_cin_referrals_team_open", "responsible_team_id", "closure_date"),
    Index("ix_cin_referrals_date", "referral_date"),
)

workflow_step_types = Table(
    "workflow_step_types",
    metadata,
    Column("workflow_step_type_id", Integer, primary_key=True, autoincrement=False),
    Column("code", String(30), nullable=False, unique=True),
    Column("description", String(200), nullable=False),
    Column("category", String(30), nullable=False),
    Column("timescale_days", Integer),
    Column("timescale_unit", String(10)),  # WORKING, CALENDAR
    Column("requires_authorisation", FLAG, nullable=False, server_default="N"),
    _updated_on(),
)

workflow_steps = Table(
    "workflow_steps",
    metadata,
    Column("workflow_step_id", Integer, primary_key=True, autoincrement=False),
    Column(
        "workflow_step_type_id",
        Integer,
        ForeignKey("workflow_step_types.workflow_step_type_id"),
        nullable=False,
    ),
    Column("person_id", Integer, ForeignKey("people.person_id"), nullable=False),
    Column("referral_id", Integer, ForeignKey("cin_referrals.referral_id")),
    Column("step_status", String(12), nullable=False),
    Column("incoming_on", Date, nullable=False),
    Column("started_on", Date),
    # Nullable: real data has steps with no due date, and data quality must count them, not crash.
    Column("due_date", Date),
    Column("completed_on", Date),
    Column("cancelled_on", Date),
    Column("assignee_id", Integer, ForeignKey("workers.worker_id")),
    Column("responsible_team_id", Integer, ForeignKey("organisations.org_id")),
    Column("authorisation_requested_on", Date),
    Column("authorised_by", Integer, ForeignKey("workers.worker_id")),
    Column("authorised_on", Date),
    _updated_on(),
    Index("ix_workflow_steps_team_status_due", "responsible_team_id", "step_status", "due_date"),
    Index("ix_workflow_steps_type_due", "workflow_step_type_id", "due_date"),
    Index("ix_workflow_steps_person", "person_id"),
    Index("ix_workflow_steps_auth", "authorisation_requested_on"),
)

visits = Table(
    "visits",
    metadata,
    Column("visit_id", Integer, primary_key=True, autoincrement=False),
    Column("workflow_step_id", Integer, ForeignKey("workflow_steps.workflow_step_id")),
    Column("person_id", Integer, ForeignKey("people.person_id"), nullable=False),
    Column("visit_type", String(3), nullable=False),  # CP, CIN, CLA
    Column("worker_id", Integer, ForeignKey("workers.worker_id")),
    Column("visit_date", Date, nullable=False),
    Column("child_seen", FLAG, nullable=False),
    Column("seen_alone", FLAG, nullable=False),
    _updated_on(),
    Index("ix_visits_person_date", "person_id", "visit_date"),
)

cp_plans = Table(
    "cp_plans",
    metadata,
    Column("cp_plan_id", Integer, primary_key=True, autoincrement=False),
    Column("person_id", Integer, ForeignKey("people.person_id"), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("initial_category", String(3)),  # NEG, PHY, SAB, EMO, MUL
    Column("latest_category", String(3)),
    _updated_on(),
    Index("ix_cp_plans_person", "person_id", "start_date"),
)

periods_of_care = Table(
    "periods_of_care",
    metadata,
    Column("period_of_care_id", Integer, primary_key=True, autoincrement=False),
    Column("person_id", Integer, ForeignKey("people.person_id"), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("legal_status", String(2)),
    Column("reason_ceased", String(3)),
    _updated_on(),
    Index("ix_periods_of_care_person", "person_id", "start_date"),
)

placements = Table(
    "placements",
    metadata,
    Column("placement_id", Integer, primary_key=True, autoincrement=False),
    Column(
        "period_of_care_id",
        Integer,
        ForeignKey("periods_of_care.period_of_care_id"),
        nullable=False,
    ),
    Column("person_id", Integer, ForeignKey("people.person_id"), nullable=False),
    Column("placement_type", String(2), nullable=False),  # SSDA903: U1-U6, K1, K2, ...
    Column("provider_id", Integer, ForeignKey("providers.provider_id")),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("reason_change", String(4)),
    _updated_on(),
    Index("ix_placements_person", "person_id", "start_date"),
)

# --- Finance -------------------------------------------------------------------------------

providers = Table(
    "providers",
    metadata,
    Column("provider_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("provider_type", String(30), nullable=False),
    Column("pr_code", String(3)),  # PR0-PR5
    Column("ofsted_urn", String(10)),
    _updated_on(),
)

cost_centres = Table(
    "cost_centres",
    metadata,
    Column("cost_centre_code", String(20), primary_key=True),
    Column("description", String(200), nullable=False),
    Column("service_area", String(30)),
    Column("budget_holder_worker_id", Integer, ForeignKey("workers.worker_id")),
    _updated_on(),
)

budgets = Table(
    "budgets",
    metadata,
    Column(
        "cost_centre_code",
        String(20),
        ForeignKey("cost_centres.cost_centre_code"),
        primary_key=True,
    ),
    Column("financial_year", Integer, primary_key=True, autoincrement=False),
    Column("original_budget", MONEY, nullable=False),
    Column("revised_budget", MONEY, nullable=False),
    _updated_on(),
)

care_packages = Table(
    "care_packages",
    metadata,
    Column("care_package_id", Integer, primary_key=True, autoincrement=False),
    Column("person_id", Integer, ForeignKey("people.person_id"), nullable=False),
    Column("workflow_step_id", Integer, ForeignKey("workflow_steps.workflow_step_id")),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("status", String(10), nullable=False),  # ACTIVE, ENDED, CANCELLED
    _updated_on(),
    Index("ix_care_packages_person", "person_id"),
)

service_elements = Table(
    "service_elements",
    metadata,
    Column("service_element_id", Integer, primary_key=True, autoincrement=False),
    Column("care_package_id", Integer, ForeignKey("care_packages.care_package_id"), nullable=False),
    Column("person_id", Integer, ForeignKey("people.person_id"), nullable=False),
    Column("placement_id", Integer, ForeignKey("placements.placement_id")),
    Column("provider_id", Integer, ForeignKey("providers.provider_id")),
    Column("element_type", String(12), nullable=False),
    # Nullable: elements with no cost centre are real mess the data-quality view must find.
    Column("cost_centre_code", String(20), ForeignKey("cost_centres.cost_centre_code")),
    Column("weekly_cost", MONEY, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("planned_end_date", Date),
    Column("end_date", Date),
    Column("status", String(25), nullable=False),
    Column("authorisation_requested_on", Date),
    Column("authorised_by", Integer, ForeignKey("workers.worker_id")),
    Column("authorised_on", Date),
    _updated_on(),
    Index("ix_service_elements_cc_status", "cost_centre_code", "status"),
    Index("ix_service_elements_dates", "start_date", "end_date"),
    Index("ix_service_elements_package", "care_package_id"),
)

payments = Table(
    "payments",
    metadata,
    Column("payment_id", Integer, primary_key=True, autoincrement=False),
    # Nullable: payments with no element are real mess the data-quality view must find.
    Column("service_element_id", Integer, ForeignKey("service_elements.service_element_id")),
    Column("cost_centre_code", String(20), ForeignKey("cost_centres.cost_centre_code")),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("status", String(10), nullable=False),  # CERTIFIED, PAID, REJECTED
    Column("paid_on", Date),
    _updated_on(),
    Index("ix_payments_cc_paid", "cost_centre_code", "paid_on"),
    Index("ix_payments_element", "service_element_id"),
    # Covers queries/payments_fy.sql: SQLite reads only the year's PAID rows, from the index
    # alone, in cost-centre order (through ix_payments_cc_paid it visited every payment ever
    # paid, one table lookup each: 24x slower for 10x the rows).
    Index(
        "ix_payments_cc_status_period",
        "cost_centre_code",
        "status",
        "period_start",
        "paid_on",
        "amount",
    ),
)

SOURCE_TABLES: tuple[str, ...] = tuple(metadata.tables)


def create_source_schema(engine: Engine, *, drop_first: bool = False) -> None:
    """Create every source table and index (demo generator and tests only)."""
    if drop_first:
        metadata.drop_all(engine)
    metadata.create_all(engine)
