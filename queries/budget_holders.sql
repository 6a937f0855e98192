-- title: Budget holders (who may see which cost centres)
-- refresh: 15m
-- scope: []
-- personal: false
-- description: >
--   Access dataset (dashboard/access.py), not shown on a page. One row per cost centre whose
--   budget holder (cost_centres.budget_holder_worker_id) is a worker running at as_of
--   (start_date <= as_of, end_date empty or after as_of). Users match by username.
-- columns:
--   cost_centre_code: str
--   description: str
--   service_area: str
--   worker_id: int
--   username: str
--   first_names: str
--   last_names: str
--   worker_start_date: date
--   worker_end_date: date
SELECT cc.cost_centre_code,
       cc.description,
       cc.service_area,
       w.worker_id,
       w.username,
       w.first_names,
       w.last_names,
       w.start_date AS worker_start_date,
       w.end_date AS worker_end_date
FROM cost_centres cc
JOIN workers w ON w.worker_id = cc.budget_holder_worker_id
WHERE w.start_date <= :as_of
  AND (w.end_date IS NULL OR w.end_date > :as_of)
ORDER BY cc.cost_centre_code
