-- title: Work waiting for sign-off
-- refresh: 15m
-- scope: [team_id]
-- personal: true
-- description: >
--   One row per step whose authorisation was requested on or before as_of and not yet given
--   (authorised_on empty), excluding CANCELLED steps. team_id is the step team.
-- columns:
--   workflow_step_id: int
--   person_id: int
--   first_names: str
--   last_name: str
--   step_code: str
--   step_description: str
--   category: str
--   step_status: str
--   authorisation_requested_on: date
--   assignee_id: int
--   worker_first_names: str
--   worker_last_names: str
--   team_id: int
SELECT s.workflow_step_id,
       s.person_id,
       p.first_names,
       p.last_name,
       t.code AS step_code,
       t.description AS step_description,
       t.category,
       s.step_status,
       s.authorisation_requested_on,
       s.assignee_id,
       w.first_names AS worker_first_names,
       w.last_names AS worker_last_names,
       s.responsible_team_id AS team_id
-- CROSS JOIN plus the join condition in WHERE is the same inner join; it makes SQLite read
-- workflow_steps once in id order instead of once per step type through an index (29x
-- slower for 10x the rows). PostgreSQL plans it as the plain join.
FROM workflow_steps s
CROSS JOIN workflow_step_types t
LEFT JOIN people p ON p.person_id = s.person_id
LEFT JOIN workers w ON w.worker_id = s.assignee_id
WHERE t.workflow_step_type_id = s.workflow_step_type_id
  AND s.authorisation_requested_on <= :as_of
  AND s.authorised_on IS NULL
  AND s.step_status <> 'CANCELLED'
ORDER BY s.workflow_step_id
