-- title: Implausible source records (data quality)
-- refresh: 1h
-- scope: [team_id]
-- personal: true
-- description: >
--   One row per source record that cannot be right, which the other datasets leave out without
--   a trace: a workflow step with a step_status outside the case system's list, or a step type
--   it does not know (open-work counts skip them); a step completed after the reporting date, or
--   a referral dated after it (the future); a service element with a negative weekly cost (it
--   lowers a forecast). team_id is the step's or referral's responsible team; a service element
--   has none, so it counts at borough level only. The 0/1 columns say which check it failed.
-- columns:
--   record_table: str
--   record_id: int
--   person_id: int
--   team_id: int
--   problem: str
--   unknown_code: int
--   future_date: int
--   negative_cost: int
-- indicators:
--   - id: records_with_unknown_codes
--     title: Steps with an unknown status or type
--     definition: >
--       Workflow steps whose step_status is not one the case system defines (PROPOSED,
--       INCOMING, STARTED, REOPENED, COMPLETED, CANCELLED) or whose step type is missing from the
--       step types: no count of open or overdue work includes them.
--     tier: team
--     unit: count
--     polarity: lower_better
--     measure: {sum: unknown_code}
--     thresholds: {green: 0, amber: 5}
--   - id: records_dated_in_the_future
--     title: Steps and referrals dated in the future
--     definition: >
--       Workflow steps completed after the reporting date, and referrals dated after it.
--     tier: team
--     unit: count
--     polarity: lower_better
--     measure: {sum: future_date}
--     thresholds: {green: 0, amber: 5}
--   - id: elements_with_negative_cost
--     title: Service elements with a negative weekly cost
--     definition: >
--       Service elements whose weekly cost is below zero, which lower every sum and forecast they
--       are part of. Counted for the borough (an element has no team).
--     tier: borough
--     unit: count
--     polarity: lower_better
--     measure: {sum: negative_cost}
--     thresholds: {green: 0, amber: 1}
SELECT 'workflow_steps' AS record_table,
       s.workflow_step_id AS record_id,
       s.person_id,
       s.responsible_team_id AS team_id,
       'unknown step_status or step type' AS problem,
       1 AS unknown_code,
       0 AS future_date,
       0 AS negative_cost
FROM workflow_steps s
LEFT JOIN workflow_step_types t ON t.workflow_step_type_id = s.workflow_step_type_id
WHERE s.step_status IS NULL
   OR s.step_status NOT IN ('PROPOSED', 'INCOMING', 'STARTED', 'REOPENED', 'COMPLETED', 'CANCELLED')
   OR t.workflow_step_type_id IS NULL
UNION ALL
SELECT 'workflow_steps',
       s.workflow_step_id,
       s.person_id,
       s.responsible_team_id,
       'completed after the reporting date',
       0,
       1,
       0
FROM workflow_steps s
WHERE s.completed_on > :as_of
UNION ALL
SELECT 'cin_referrals',
       r.referral_id,
       r.person_id,
       r.responsible_team_id,
       'referral dated after the reporting date',
       0,
       1,
       0
FROM cin_referrals r
WHERE r.referral_date > :as_of
UNION ALL
SELECT 'service_elements',
       e.service_element_id,
       e.person_id,
       NULL,
       'negative weekly cost',
       0,
       0,
       1
FROM service_elements e
WHERE e.weekly_cost < 0
