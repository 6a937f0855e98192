"""Team-tier measures on small hand-built frames; every answer is worked out in the comments.

Reporting date 2025-10-15: year_ago 2024-10-15, quarter_ago 2025-07-17, as_of - 28 days
2025-09-17, as_of - 10 days 2025-10-05. Teams 1 and 2 form service 10; team 3 is service 20.
"""

from __future__ import annotations

import datetime as dt

import pytest
from indicator_frames import inputs

from dashboard.indicators import team

AS_OF = dt.date(2025, 10, 15)


def case(referral_id, team_id, worker_id=None, person_id=None):
    return {
        "referral_id": referral_id,
        "person_id": person_id or referral_id,
        "referral_date": "2025-01-01",
        "team_id": team_id,
        "worker_id": worker_id,
    }


CASES = [case(1, 1, worker_id=501), case(2, 1), case(3, 2), case(4, None, worker_id=502)]


def test_open_cases_count_the_case_team_and_the_borough_keeps_teamless_cases():
    assert team.open_cases(inputs({"open_cases": CASES}, AS_OF, "team:1")).value == 2
    assert team.open_cases(inputs({"open_cases": CASES}, AS_OF, "service:10")).value == 3
    # Case 4 has no team: it is still the borough's case.
    assert team.open_cases(inputs({"open_cases": CASES}, AS_OF)).value == 4


def test_unallocated_cases_are_open_cases_without_a_running_allocation():
    result = team.unallocated_cases(inputs({"open_cases": CASES}, AS_OF))
    assert result.value == 2
    assert sorted(result.rows["referral_id"]) == [2, 3]
    assert team.unallocated_cases(inputs({"open_cases": CASES}, AS_OF, "team:1")).value == 1


def worker(worker_id, role, team_id, fte, allocations, role_start="2020-01-01", role_id=None):
    return {
        "worker_id": worker_id,
        "role": role,
        "team_id": team_id,
        "fte": fte,
        "allocations": allocations,
        "role_start_date": role_start,
        "worker_role_id": role_id or worker_id,
        "first_names": "W",
        "last_names": str(worker_id),
    }


WORKFORCE = [
    worker(1, "SW", 1, 1.0, 10),
    worker(2, "ASYE", 1, 0.5, 6),
    worker(3, "FAMILY_SUPPORT", 1, 1.0, 5),  # not case-holding
    # Two running primary roles: the latest started (TEAM_MANAGER) is the one in force.
    worker(4, "SW", 2, 1.0, 9, role_start="2020-01-01", role_id=40),
    worker(4, "TEAM_MANAGER", 1, 1.0, 9, role_start="2024-01-01", role_id=41),
    worker(5, "SENIOR_PRACTITIONER", 2, 0.8, 12),
    worker(6, "FAMILY_SUPPORT", 3, 1.0, 4),
]


def test_average_caseload_is_allocations_over_fte_of_case_holding_workers():
    # Team 1: workers 1 and 2 (worker 3 is family support, worker 4 is now a manager):
    # (10 + 6) / (1.0 + 0.5) = 10.666... -> 10.67.
    result = team.average_caseload(inputs({"workforce": WORKFORCE}, AS_OF, "team:1"))
    assert (result.value, result.numerator, result.denominator) == (10.67, 16, 1.5)
    assert sorted(result.rows["worker_id"]) == [1, 2]
    # Team 2: worker 5 only: 12 / 0.8 = 15.0.
    assert team.average_caseload(inputs({"workforce": WORKFORCE}, AS_OF, "team:2")).value == 15.0
    # Borough: (10 + 6 + 12) / (1.0 + 0.5 + 0.8) = 28 / 2.3 = 12.1739 -> 12.17, not the mean
    # of the team averages ((10.67 + 15) / 2 = 12.83).
    borough = team.average_caseload(inputs({"workforce": WORKFORCE}, AS_OF))
    assert (borough.value, borough.numerator, borough.denominator) == (12.17, 28, 2.3)


def test_average_caseload_without_case_holding_workers_has_no_value():
    result = team.average_caseload(inputs({"workforce": WORKFORCE}, AS_OF, "team:3"))
    assert result.value is None
    assert result.denominator == 0


def step(
    step_id,
    status,
    due=None,
    team_id=1,
    incoming="2025-01-01",
    category="ASSESSMENT",
    completed=None,
    requested=None,
):
    row = {
        "workflow_step_id": step_id,
        "person_id": 900 + step_id,
        "step_status": status,
        "due_date": due,
        "team_id": team_id,
        "incoming_on": incoming,
        "category": category,
        "step_code": category,
        "step_description": category.title(),
    }
    if completed is not None:
        row["completed_on"] = completed
    if requested is not None:
        row["authorisation_requested_on"] = requested
    return row


OPEN_STEPS = [
    step(1, "STARTED", due="2025-10-14"),  # overdue by 1 day
    step(2, "STARTED", due="2025-10-15"),  # due ON as_of: not overdue
    step(3, "INCOMING", due=None, incoming="2025-10-10"),  # no due date: never overdue
    step(4, "REOPENED", due="2025-01-01", team_id=2),  # overdue; unfinished
    step(5, "STARTED", due="2025-09-16"),  # overdue; unfinished (before 2025-09-17)
    step(6, "STARTED", due="2025-09-17"),  # overdue; NOT unfinished (not before 2025-09-17)
    step(7, "INCOMING", due="2025-12-01", incoming="2025-10-04"),  # unstarted (before 10-05)
    step(8, "INCOMING", due="2025-12-01", incoming="2025-10-05"),  # not unstarted: on 10-05
    step(9, "INCOMING", due="2025-10-01", incoming="2025-10-16"),  # arrives after as_of: not open
    step(10, "COMPLETED", due="2025-01-01"),  # not an open step
]


def test_overdue_steps_are_open_steps_due_before_as_of():
    result = team.overdue_steps(inputs({"open_steps": OPEN_STEPS}, AS_OF))
    assert sorted(result.rows["workflow_step_id"]) == [1, 4, 5, 6]
    assert result.value == 4
    # Step 4 is 287 days overdue (2025-01-01 to 2025-10-15); the list is longest first.
    assert list(result.rows["days_overdue"])[:1] == [287]
    assert team.overdue_steps(inputs({"open_steps": OPEN_STEPS}, AS_OF, "team:1")).value == 3


def test_unfinished_and_unstarted_steps():
    data = inputs({"open_steps": OPEN_STEPS}, AS_OF)
    assert sorted(team.unfinished_steps(data).rows["workflow_step_id"]) == [4, 5]
    assert sorted(team.unstarted_steps(data).rows["workflow_step_id"]) == [7]


def test_awaiting_signoff_counts_requests_not_yet_authorised_and_the_oldest_wait():
    queue = [
        step(1, "COMPLETED", requested="2025-10-01"),  # waiting 14 days
        step(2, "STARTED", requested="2025-10-15"),  # asked today: 0 days
        step(3, "CANCELLED", requested="2025-09-01"),  # cancelled: never counts
        step(4, "STARTED", requested="2025-10-16", team_id=2),  # asked after as_of
    ]
    result = team.awaiting_signoff(inputs({"signoff_queue": queue}, AS_OF))
    assert result.value == 2
    assert result.extra["oldest_wait_days"] == 14
    empty = team.awaiting_signoff(inputs({"signoff_queue": queue}, AS_OF, "team:2"))
    assert (empty.value, empty.extra["oldest_wait_days"]) == (0, None)


TIMELINESS = [
    step(1, "COMPLETED", due="2024-10-15", completed="2024-10-01"),  # due ON year_ago: outside
    step(2, "COMPLETED", due="2024-10-16", completed="2024-10-16"),  # on time, first day in
    step(3, "STARTED", due="2025-10-15"),  # due ON as_of, not done: late
    step(4, "COMPLETED", due="2025-06-01", completed="2025-06-02"),  # a day late
    step(5, "COMPLETED", due="2025-05-01", team_id=2),  # completed with no date: not on time
    step(6, "PROPOSED", due="2025-05-01"),  # never counts
    step(7, "CANCELLED", due="2025-05-01"),  # never counts
    step(8, "COMPLETED", due="2025-07-17", completed="2025-07-01", category="CP_VISIT"),
    step(9, "COMPLETED", due="2025-07-18", completed="2025-07-10", category="CP_VISIT"),
    step(10, "COMPLETED", due="2025-09-01", completed="2025-09-02", category="CP_VISIT"),
]


def test_on_time_rate_counts_undone_steps_as_late_over_a_half_open_window():
    # Due in (2024-10-15, 2025-10-15]: steps 2, 3, 4, 5; on time: step 2 only -> 25.00%.
    result = team.assessments_on_time(inputs({"step_timeliness": TIMELINESS}, AS_OF))
    assert (result.value, result.numerator, result.denominator) == (25.0, 1, 4)
    assert sorted(result.rows["workflow_step_id"]) == [2, 3, 4, 5]
    # Team 1 alone: steps 2, 3, 4 -> 1 of 3 = 33.33%.
    team_one = team.assessments_on_time(inputs({"step_timeliness": TIMELINESS}, AS_OF, "team:1"))
    assert (team_one.value, team_one.numerator, team_one.denominator) == (33.33, 1, 3)


def test_ninety_day_window_excludes_a_step_due_on_quarter_ago():
    # Due in (2025-07-17, 2025-10-15]: steps 9 (on time) and 10 (late) -> 50.00%.
    result = team.cp_visits_on_time(inputs({"step_timeliness": TIMELINESS}, AS_OF))
    assert (result.value, result.numerator, result.denominator) == (50.0, 1, 2)


@pytest.mark.parametrize("measure", [team.cla_visits_on_time, team.cla_reviews_on_time])
def test_on_time_rate_without_steps_due_has_no_value(measure):
    result = measure(inputs({"step_timeliness": TIMELINESS}, AS_OF))
    assert result.value is None
    assert result.denominator == 0


def test_counts_equal_their_drilldown_rows():
    data = inputs({"open_steps": OPEN_STEPS, "open_cases": CASES}, AS_OF)
    for measure in (
        team.open_cases,
        team.unallocated_cases,
        team.overdue_steps,
        team.unfinished_steps,
        team.unstarted_steps,
    ):
        result = measure(data)
        assert result.value == len(result.rows)
