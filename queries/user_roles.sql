-- title: Management roles (who may see which teams)
-- refresh: 15m
-- scope: []
-- personal: false
-- description: >
--   Access dataset (dashboard/access.py), not shown on a page. One row per management role
--   running at as_of (start_date <= as_of, end_date empty or after as_of) held by a worker who is
--   running at as_of. TEAM_MANAGER gives the role's team; SERVICE_MANAGER and HEAD_OF_SERVICE every
--   team below the role's organisation node; DIRECTOR the borough. Users match by username, so a
--   manager who moves team loses the old team at the next refresh of this dataset.
-- columns:
--   username: str
--   worker_id: int
--   first_names: str
--   last_names: str
--   worker_role_id: int
--   role: str
--   org_id: int
--   start_date: date
--   end_date: date
--   worker_start_date: date
--   worker_end_date: date
SELECT w.username,
       w.worker_id,
       w.first_names,
       w.last_names,
       wr.worker_role_id,
       wr.role,
       wr.org_id,
       wr.start_date,
       wr.end_date,
       w.start_date AS worker_start_date,
       w.end_date AS worker_end_date
FROM worker_roles wr
JOIN workers w ON w.worker_id = wr.worker_id
WHERE wr.role IN ('TEAM_MANAGER', 'SERVICE_MANAGER', 'HEAD_OF_SERVICE', 'DIRECTOR')
  AND wr.start_date <= :as_of
  AND (wr.end_date IS NULL OR wr.end_date > :as_of)
  AND w.start_date <= :as_of
  AND (w.end_date IS NULL OR w.end_date > :as_of)
ORDER BY w.username, wr.worker_role_id
