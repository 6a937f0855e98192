-- title: CP visits in the last 90 days, and whether the child was seen alone
-- refresh: 1h
-- scope: [team_id]
-- personal: true
-- description: >
--   One row per completed child protection visit: visits with visit_type CP whose step is
--   COMPLETED, dated in the last 90 days (quarter_ago < visit_date <= as_of). team_id is the
--   step team. seen_alone is 1 when the child was seen alone, else 0, so its sum is the count.
-- columns:
--   visit_id: int
--   workflow_step_id: int
--   person_id: int
--   first_names: str
--   last_name: str
--   visit_date: date
--   child_seen: str
--   seen_alone: int
--   worker_id: int
--   worker_first_names: str
--   worker_last_names: str
--   team_id: int
-- indicators:
--   - id: cp_visits_seen_alone
--     title: CP visits where the child was seen alone
--     definition: >
--       Of CP visits (completed CP visit steps) dated in the last 90 days, the share where the
--       child was seen alone. Scoped by the step team.
--     tier: team
--     unit: percent
--     polarity: higher_better
--     measure: {ratio: [seen_alone, 1]}
--     # Local thresholds, not national: England publishes no figure for children seen alone,
--     # and babies and toddlers on plans cannot be seen alone, so no borough nears 100%.
--     thresholds: {green: 60, amber: 45}
SELECT v.visit_id,
       v.workflow_step_id,
       v.person_id,
       p.first_names,
       p.last_name,
       v.visit_date,
       v.child_seen,
       CASE WHEN v.seen_alone = 'Y' THEN 1 ELSE 0 END AS seen_alone,
       v.worker_id,
       w.first_names AS worker_first_names,
       w.last_names AS worker_last_names,
       s.responsible_team_id AS team_id
FROM visits v
JOIN workflow_steps s ON s.workflow_step_id = v.workflow_step_id
LEFT JOIN people p ON p.person_id = v.person_id
LEFT JOIN workers w ON w.worker_id = v.worker_id
WHERE v.visit_type = 'CP'
  AND s.step_status = 'COMPLETED'
  AND v.visit_date > :quarter_ago
  AND v.visit_date <= :as_of
ORDER BY v.visit_id
