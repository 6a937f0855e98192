-- title: Child protection plans
-- refresh: 1h
-- scope: []
-- personal: true
-- description: >
--   CP plans started on or before as_of that are open at as_of, ended in the last 12 months,
--   or started in the 24-month trend window. has_earlier_plan is true when the child has
--   another plan with an earlier start_date (second or subsequent plans).
-- columns:
--   cp_plan_id: int
--   person_id: int
--   first_names: str
--   last_name: str
--   start_date: date
--   end_date: date
--   initial_category: str
--   latest_category: str
--   has_earlier_plan: bool
SELECT c.cp_plan_id,
       c.person_id,
       p.first_names,
       p.last_name,
       c.start_date,
       c.end_date,
       c.initial_category,
       c.latest_category,
       CASE WHEN EXISTS (
                SELECT 1
                FROM cp_plans e
                WHERE e.person_id = c.person_id
                  AND e.start_date < c.start_date
            ) THEN 1 ELSE 0 END AS has_earlier_plan
FROM cp_plans c
LEFT JOIN people p ON p.person_id = c.person_id
WHERE c.start_date <= :as_of
  AND (c.end_date IS NULL OR c.end_date > :year_ago OR c.start_date >= :trend_start)
ORDER BY c.cp_plan_id
