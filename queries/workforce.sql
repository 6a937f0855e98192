-- title: Workforce and caseloads
-- refresh: 15m
-- scope: [team_id]
-- personal: false
-- description: >
--   One row per active worker and primary role: the workers row and the primary role are both
--   running at as_of (start_date <= as_of, end_date empty or after as_of). team_id is the
--   role's organisation (the worker team). allocations counts the worker's ALLWKR allocations
--   running at as_of, whether or not the child's case is still open. The data layer keeps one
--   primary role per worker (the latest started) and case-holding roles for caseloads.
-- columns:
--   worker_id: int
--   first_names: str
--   last_names: str
--   username: str
--   is_agency: bool
--   fte: float
--   worker_role_id: int
--   role: str
--   team_id: int
--   role_start_date: date
--   allocations: int
SELECT w.worker_id,
       w.first_names,
       w.last_names,
       w.username,
       w.is_agency,
       w.fte,
       wr.worker_role_id,
       wr.role,
       wr.org_id AS team_id,
       wr.start_date AS role_start_date,
       (SELECT COUNT(*)
        FROM people_workers pw
        WHERE pw.worker_id = w.worker_id
          AND pw.allocation_type = 'ALLWKR'
          AND pw.start_date <= :as_of
          AND (pw.end_date IS NULL OR pw.end_date > :as_of)) AS allocations
FROM workers w
JOIN worker_roles wr ON wr.worker_id = w.worker_id
WHERE w.start_date <= :as_of
  AND (w.end_date IS NULL OR w.end_date > :as_of)
  AND wr.primary_job = 'Y'
  AND wr.start_date <= :as_of
  AND (wr.end_date IS NULL OR wr.end_date > :as_of)
ORDER BY w.worker_id, wr.worker_role_id
