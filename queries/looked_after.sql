-- title: Children looked after
-- refresh: 1h
-- scope: []
-- personal: true
-- description: >
--   Periods of care started on or before as_of that are open at as_of or started in the
--   24-month trend window. placements_12m counts the child's placements (in any period) whose
--   start_date is in the last 12 months, for placement stability.
-- columns:
--   period_of_care_id: int
--   person_id: int
--   first_names: str
--   last_name: str
--   uasc_flag: bool
--   start_date: date
--   end_date: date
--   legal_status: str
--   placements_12m: int
SELECT c.period_of_care_id,
       c.person_id,
       p.first_names,
       p.last_name,
       p.uasc_flag,
       c.start_date,
       c.end_date,
       c.legal_status,
       (SELECT COUNT(*)
        FROM placements pl
        WHERE pl.person_id = c.person_id
          AND pl.start_date > :year_ago
          AND pl.start_date <= :as_of) AS placements_12m
FROM periods_of_care c
LEFT JOIN people p ON p.person_id = c.person_id
WHERE c.start_date <= :as_of
  AND (c.end_date IS NULL OR c.end_date > :as_of OR c.start_date >= :trend_start)
ORDER BY c.period_of_care_id
