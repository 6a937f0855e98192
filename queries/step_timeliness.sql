-- title: Timeliness of statutory steps
-- refresh: 1h
-- scope: [team_id]
-- personal: true
-- description: >
--   Steps of the categories with statutory timescales (ASSESSMENT, ICPC, CP_VISIT, CLA_VISIT,
--   CLA_REVIEW), neither PROPOSED nor CANCELLED, due in the last 12 months
--   (year_ago < due_date <= as_of). A step is on time when COMPLETED with completed_on <=
--   due_date; steps still not done count as late. The 90-day rates use the later part.
-- columns:
--   workflow_step_id: int
--   person_id: int
--   first_names: str
--   last_name: str
--   step_code: str
--   category: str
--   step_status: str
--   due_date: date
--   completed_on: date
--   assignee_id: int
--   worker_first_names: str
--   worker_last_names: str
--   team_id: int
SELECT s.workflow_step_id,
       s.person_id,
       p.first_names,
       p.last_name,
       t.code AS step_code,
       t.category,
       s.step_status,
       s.due_date,
       s.completed_on,
       s.assignee_id,
       w.first_names AS worker_first_names,
       w.last_names AS worker_last_names,
       s.responsible_team_id AS team_id
FROM workflow_steps s
JOIN workflow_step_types t ON t.workflow_step_type_id = s.workflow_step_type_id
LEFT JOIN people p ON p.person_id = s.person_id
LEFT JOIN workers w ON w.worker_id = s.assignee_id
WHERE t.category IN ('ASSESSMENT', 'ICPC', 'CP_VISIT', 'CLA_VISIT', 'CLA_REVIEW')
  AND s.step_status NOT IN ('PROPOSED', 'CANCELLED')
  AND s.due_date > :year_ago
  AND s.due_date <= :as_of
ORDER BY s.workflow_step_id
