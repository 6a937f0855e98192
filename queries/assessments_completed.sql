-- title: Assessments completed, 24 months
-- refresh: 1h
-- scope: [team_id]
-- personal: true
-- description: >
--   Completed ASSESSMENT steps with completed_on in the 24-month trend window
--   (trend_start <= completed_on <= as_of), for the monthly trend.
-- columns:
--   workflow_step_id: int
--   person_id: int
--   team_id: int
--   due_date: date
--   completed_on: date
SELECT s.workflow_step_id,
       s.person_id,
       s.responsible_team_id AS team_id,
       s.due_date,
       s.completed_on
FROM workflow_steps s
JOIN workflow_step_types t ON t.workflow_step_type_id = s.workflow_step_type_id
WHERE t.category = 'ASSESSMENT'
  AND s.step_status = 'COMPLETED'
  AND s.completed_on >= :trend_start
  AND s.completed_on <= :as_of
ORDER BY s.workflow_step_id
