"""Every indicator, declared once: meaning, unit, polarity, thresholds, datasets and measure.

The definitions quote INDICATORS.md; the measures live in team.py, budget.py, borough.py and
quality.py. Applicability: team-tier indicators apply to team-like scopes and the borough,
budget-tier ones to cost centres and the borough, borough-tier ones to the borough only.

These are the built-ins. Indicators declared in dataset files' headers join them in the data
layer's catalogue (``dashboard.indicators.declared``); code that lists indicators asks the data
layer, not ``DEFINITIONS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from dashboard.indicators import borough, budget, quality, team
from dashboard.indicators.measure import MeasureInput, Measurement
from dashboard.model import Indicator, Scope, Thresholds
from dashboard.scopes import team_scope

Measure = Callable[[MeasureInput], Measurement]


@dataclass(frozen=True)
class Definition:
    indicator: Indicator
    measure: Measure
    chart: bool = False  # a chart, not a number: value is None, the series is the drill-down
    quality: bool = False  # an extra for the data-quality view (not in INDICATORS.md)
    borough_only: bool = False  # cannot be split by the tier's scope column
    rag_from: str | None = None  # RAG on this extra instead of the value (variance: the %)

    @property
    def id(self) -> str:
        return self.indicator.id

    def applies_to(self, scope: Scope) -> bool:
        if scope.is_borough:
            return True
        if self.borough_only or self.indicator.tier == "borough":
            return False
        if self.indicator.tier == "team":
            return scope.is_teams
        return scope.kind == "cost_centre"


def _define(
    id: str,
    title: str,
    definition: str,
    tier,
    unit,
    polarity,
    datasets,
    measure: Measure,
    *,
    green: float | None = None,
    amber: float | None = None,
    england: float | None = None,
    england_label: str = "",
    drilldown: bool = True,
    personal: bool = True,
    **flags,
) -> Definition:
    thresholds = Thresholds(green, amber) if green is not None and amber is not None else None
    indicator = Indicator(
        id=id,
        title=title,
        definition=definition,
        tier=tier,
        unit=unit,
        polarity=polarity,
        datasets=tuple(datasets),
        thresholds=thresholds,
        england=england,
        england_label=england_label or ("England" if england is not None else ""),
        drilldown=drilldown,
        personal=personal and drilldown,
    )
    return Definition(indicator, measure, **flags)


TEAM = (
    _define(
        "open_cases",
        "Open cases",
        "Open CIN referrals (cases) at as_of whose case team is in scope.",
        "team",
        "count",
        "context",
        ["open_cases"],
        team.open_cases,
    ),
    _define(
        "unallocated_cases",
        "Unallocated children",
        "Open cases whose child has no ALLWKR allocation running at as_of.",
        "team",
        "count",
        "lower_better",
        ["open_cases"],
        team.unallocated_cases,
        green=0,
        amber=5,
    ),
    _define(
        "average_caseload",
        "Average caseload",
        "ALLWKR allocations running at as_of held by active case-holding workers (primary "
        "role SW, ASYE or SENIOR_PRACTITIONER) of teams in scope, whether or not the "
        "child's case is still open, divided by the sum of those workers' FTE.",
        "team",
        "ratio",
        "lower_better",
        ["workforce"],
        team.average_caseload,
        green=18,
        amber=22,
        personal=False,
    ),
    _define(
        "overdue_steps",
        "Overdue work",
        "Open steps of teams in scope with due_date before as_of.",
        "team",
        "count",
        "lower_better",
        ["open_steps"],
        team.overdue_steps,
        green=0,
        amber=10,
    ),
    _define(
        "awaiting_signoff",
        "Waiting for sign-off",
        "Steps with authorisation_requested_on on or before as_of, authorised_on empty, "
        "not CANCELLED; also the oldest wait in days (as_of - authorisation_requested_on).",
        "team",
        "count",
        "lower_better",
        ["signoff_queue"],
        team.awaiting_signoff,
        green=5,
        amber=15,
    ),
    _define(
        "assessments_on_time",
        "Assessments within 45 working days",
        "On-time rate for ASSESSMENT steps due in the last 12 months.",
        "team",
        "percent",
        "higher_better",
        ["step_timeliness"],
        team.assessments_on_time,
        green=85,
        amber=75,
        england=85.7,
    ),
    _define(
        "cp_visits_on_time",
        "CP visits in timescale",
        "On-time rate for CP_VISIT steps due in the last 90 days.",
        "team",
        "percent",
        "higher_better",
        ["step_timeliness"],
        team.cp_visits_on_time,
        green=90,
        amber=80,
    ),
    _define(
        "cla_visits_on_time",
        "CLA visits in timescale",
        "On-time rate for CLA_VISIT steps due in the last 90 days.",
        "team",
        "percent",
        "higher_better",
        ["step_timeliness"],
        team.cla_visits_on_time,
        green=90,
        amber=80,
    ),
    _define(
        "cla_reviews_on_time",
        "CLA reviews in timescale",
        "On-time rate for CLA_REVIEW steps due in the last 12 months.",
        "team",
        "percent",
        "higher_better",
        ["step_timeliness"],
        team.cla_reviews_on_time,
        green=95,
        amber=85,
    ),
    _define(
        "unfinished_steps",
        "Started, never finished",
        "Open steps with status STARTED or REOPENED and due_date before as_of - 28 days.",
        "team",
        "count",
        "lower_better",
        ["open_steps"],
        team.unfinished_steps,
        green=0,
        amber=20,
    ),
    _define(
        "unstarted_steps",
        "Never started",
        "Steps INCOMING with incoming_on before as_of - 10 days, of teams in scope.",
        "team",
        "count",
        "lower_better",
        ["open_steps"],
        team.unstarted_steps,
        green=0,
        amber=20,
    ),
)

BUDGET = (
    _define(
        "budget",
        "Budget",
        "Revised budget of the cost centres in scope for the FY.",
        "budget",
        "money",
        "context",
        ["budgets"],
        budget.budget,
        drilldown=False,
    ),
    _define(
        "paid_to_date",
        "Paid",
        "Payments PAID with paid_on on or before as_of and period_start on or after the FY start.",
        "budget",
        "money",
        "context",
        ["payments_fy"],
        budget.paid_to_date,
        drilldown=False,
    ),
    _define(
        "accrued_to_date",
        "Incurred to date",
        "Sum over elements AUTHORISED or ENDED of daily rate (weekly_cost / 7) x days from "
        "s to min(as_of, t), where s = max(start_date, fy_start) and t = min(end_date, "
        "else planned_end_date, else fy_end; never after fy_end).",
        "budget",
        "money",
        "context",
        ["service_elements"],
        budget.accrued_to_date,
    ),
    _define(
        "committed",
        "Committed",
        "Sum over elements AUTHORISED with t after as_of (including those starting later "
        "in the FY) of daily rate x days from max(as_of + 1, s) to t.",
        "budget",
        "money",
        "context",
        ["service_elements"],
        budget.committed,
    ),
    _define(
        "awaiting_authorisation",
        "Awaiting authorisation",
        "The committed sum over elements AWAITING_AUTHORISATION.",
        "budget",
        "money",
        "lower_better",
        ["service_elements"],
        budget.awaiting_authorisation,
    ),
    _define(
        "forecast_outturn",
        "Forecast outturn",
        "accrued_to_date + committed.",
        "budget",
        "money",
        "context",
        ["service_elements"],
        budget.forecast_outturn,
        drilldown=False,
    ),
    _define(
        "variance",
        "Variance",
        "forecast_outturn - budget (positive = overspend), also as % of budget; RAG on the %.",
        "budget",
        "money",
        "lower_better",
        ["service_elements", "budgets"],
        budget.variance,
        green=0,
        amber=2,
        drilldown=False,
        rag_from="percent_of_budget",
    ),
    _define(
        "active_placements",
        "Active placements",
        "PLACEMENT elements AUTHORISED and running at as_of.",
        "budget",
        "count",
        "context",
        ["service_elements"],
        budget.active_placements,
    ),
    _define(
        "high_cost_placements",
        "High-cost placements",
        "AUTHORISED elements running at as_of with weekly_cost of 10,000 or more.",
        "budget",
        "count",
        "lower_better",
        ["service_elements"],
        budget.high_cost_placements,
    ),
    _define(
        "ending_soon",
        "Ending in 28 days",
        "AUTHORISED elements running at as_of with planned_end_date in (as_of, as_of + 28 days].",
        "budget",
        "count",
        "context",
        ["service_elements"],
        budget.ending_soon,
    ),
    _define(
        "spend_by_month",
        "Spend profile",
        "Chart: incurred per month of the FY against budget / 12, with the forecast for "
        "the remaining months.",
        "budget",
        "money",
        "context",
        ["service_elements", "budgets"],
        lambda data: Measurement(None, rows=budget.spend_by_month(data)),
        drilldown=False,
        chart=True,
    ),
)

BOROUGH = (
    _define(
        "referrals_12m",
        "Referrals, last 12 months",
        "Referrals with referral_date in the last 12 months; also per 10,000 children.",
        "borough",
        "count",
        "context",
        ["referrals"],
        borough.referrals_12m,
        england=519,
        england_label="England, per 10,000",
    ),
    _define(
        "rereferral_rate",
        "Re-referrals within 12 months",
        "Of the referrals in the last 12 months, the share whose child had another "
        "referral dated on or after 365 days before it and strictly before it.",
        "borough",
        "percent",
        "lower_better",
        ["referrals"],
        borough.rereferral_rate,
        england=22.6,
    ),
    _define(
        "cin_rate",
        "Children in need per 10,000",
        "Distinct children with an open case at as_of, per 10,000 children aged 0-17.",
        "borough",
        "per_10k",
        "context",
        ["open_cases"],
        borough.cin_rate,
        england=330.3,
    ),
    _define(
        "cp_rate",
        "Child protection plans per 10,000",
        "Distinct children with a CP plan open at as_of, per 10,000.",
        "borough",
        "per_10k",
        "context",
        ["cp_plans"],
        borough.cp_rate,
        england=40.6,
    ),
    _define(
        "cla_rate",
        "Looked after per 10,000",
        "Distinct children with a period of care open at as_of, per 10,000.",
        "borough",
        "per_10k",
        "context",
        ["looked_after"],
        borough.cla_rate,
        england=67,
    ),
    _define(
        "icpc_on_time",
        "ICPC within 15 working days",
        "On-time rate for ICPC steps due in the last 12 months.",
        "borough",
        "percent",
        "higher_better",
        ["step_timeliness"],
        borough.icpc_on_time,
        england=81.4,
    ),
    _define(
        "cp_plans_2yrs",
        "CP plans lasting 2 years or more",
        "Of CP plans whose end_date is in the last 12 months, the share with end_date - "
        "start_date of 730 days or more.",
        "borough",
        "percent",
        "lower_better",
        ["cp_plans"],
        borough.cp_plans_2yrs,
        england=4.4,
    ),
    _define(
        "second_cp_plans",
        "Second or subsequent CP plans",
        "Of CP plans whose start_date is in the last 12 months, the share whose child has "
        "another CP plan with an earlier start_date.",
        "borough",
        "percent",
        "lower_better",
        ["cp_plans"],
        borough.second_cp_plans,
        england=16.6,
        england_label="England (2015)",
    ),
    _define(
        "placement_moves",
        "Three or more placements",
        "Of children with a period of care open at as_of, the share with 3 or more "
        "placements whose start_date is in the last 12 months.",
        "borough",
        "percent",
        "lower_better",
        ["looked_after"],
        borough.placement_moves,
        england=10,
        england_label="England (older figure)",
    ),
    _define(
        "trends",
        "Trends",
        "Charts, 24 months by month: referrals, assessments completed, CP plans started, "
        "periods of care started, spend incurred; and the store's daily history of "
        "overdue_steps, unallocated_cases and average_caseload.",
        "borough",
        "count",
        "context",
        ["referrals", "assessments_completed", "cp_plans", "looked_after", "service_elements"],
        borough.trends,
        drilldown=False,
        chart=True,
    ),
)

QUALITY = (
    _define(
        "children_missing_dob",
        "Children without a date of birth",
        "Distinct children with an open case in scope whose date_of_birth is empty.",
        "team",
        "count",
        "lower_better",
        ["open_cases"],
        quality.children_missing_dob,
        green=0,
        amber=5,
        quality=True,
    ),
    _define(
        "children_missing_ethnicity",
        "Children without ethnicity",
        "Distinct children with an open case in scope whose ethnicity_code is empty.",
        "team",
        "count",
        "lower_better",
        ["open_cases"],
        quality.children_missing_ethnicity,
        green=0,
        amber=5,
        quality=True,
    ),
    _define(
        "steps_without_due_date",
        "Open steps without a due date",
        "Open steps of teams in scope whose due_date is empty (they can never be overdue).",
        "team",
        "count",
        "lower_better",
        ["open_steps"],
        quality.steps_without_due_date,
        green=0,
        amber=5,
        quality=True,
    ),
    _define(
        "elements_without_cost_centre",
        "Elements without a cost centre",
        "Service elements in the FY, not CANCELLED, whose cost_centre_code is empty: "
        "their spend is on no budget holder's forecast.",
        "budget",
        "count",
        "lower_better",
        ["service_elements"],
        quality.elements_without_cost_centre,
        green=0,
        amber=5,
        quality=True,
        borough_only=True,
    ),
    _define(
        "payments_without_element",
        "Payments without a service element",
        "Payments for periods starting this FY whose service element is empty or unknown.",
        "budget",
        "count",
        "lower_better",
        ["orphan_payments"],
        quality.payments_without_element,
        green=0,
        amber=5,
        quality=True,
        personal=False,
    ),
)


def _team_matrix(data: MeasureInput) -> Measurement:
    return Measurement(None, rows=team_matrix_frame(data))


MATRIX = _define(
    "team_matrix",
    "Team RAG matrix",
    "Every team x every team-tier indicator, coloured by RAG; each cell links to that team's view.",
    "borough",
    "count",
    "context",
    tuple(dict.fromkeys(["organisation"] + [d for x in TEAM for d in x.indicator.datasets])),
    _team_matrix,
    drilldown=False,
    chart=True,
)

DEFINITIONS: dict[str, Definition] = {d.id: d for d in (*TEAM, *BUDGET, *BOROUGH, MATRIX, *QUALITY)}

# Datasets read by views rather than indicators: scope resolution, team and cost-centre lists,
# the family view.
VIEW_DATASETS = {
    "organisation": "scopes, team list, team names in drill-downs",
    "budgets": "cost-centre list",
    "family_members": "family view",
    "user_roles": "access control (dashboard/access.py)",
    "budget_holders": "access control (dashboard/access.py)",
}


def rag_of(
    definition: Definition, measurement: Measurement, thresholds: Thresholds | None
) -> str | None:
    if thresholds is None:
        return None
    basis = measurement.value
    if definition.rag_from is not None:
        basis = measurement.extra.get(definition.rag_from)
    return thresholds.rag(basis, definition.indicator.polarity)


def _direct(definition: Definition, data: MeasureInput) -> Measurement:
    return definition.measure(data)


def team_matrix_frame(
    data: MeasureInput,
    measure: Callable[[Definition, MeasureInput], Measurement] = _direct,
    definitions: Sequence[Definition] = TEAM,
) -> pd.DataFrame:
    """One row per team in scope; per team-tier indicator its value and RAG.

    ``measure`` runs one indicator for one team; the data layer passes its cached one, so the
    matrix and the team pages share their work, and its catalogue's team-tier ``definitions``
    (the built-ins plus those declared in dataset files).
    """
    organisation = data.frame("organisation")
    teams = organisation[organisation["org_level"] == "TEAM"]
    names = dict(zip(organisation["org_id"].astype(int), organisation["name"], strict=True))
    rows = []
    for org_id, name, parent in zip(
        teams["org_id"], teams["name"], teams["parent_org_id"], strict=True
    ):
        if data.scope.team_ids is not None and int(org_id) not in data.scope.team_ids:
            continue
        scoped = MeasureInput(
            data.frames,
            team_scope(int(org_id), str(name)),
            data.period,
            data.population,
            data.thresholds,
        )
        row: dict[str, object] = {
            "team_id": int(org_id),
            "team_name": str(name),
            "service_id": None if pd.isna(parent) else int(parent),
            "service_name": None if pd.isna(parent) else names.get(int(parent)),
        }
        for definition in definitions:
            result = measure(definition, scoped)
            thresholds = data.thresholds.get(definition.id, definition.indicator.thresholds)
            row[definition.id] = result.value
            row[f"{definition.id}_rag"] = rag_of(definition, result, thresholds)
        rows.append(row)
    return pd.DataFrame(rows)
