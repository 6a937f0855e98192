-- title: Open cases
-- refresh: 15m
-- scope: [team_id]
-- personal: true
-- description: >
--   One row per CIN referral open at as_of (referral_date <= as_of and closure_date empty or
--   after as_of), with its case team, the child's allocated worker (an ALLWKR allocation running
--   at as_of; the lowest worker id when there are several) and family group, and the fields the
--   data-quality view checks (date of birth, ethnicity).
-- columns:
--   referral_id: int
--   person_id: int
--   first_names: str
--   last_name: str
--   date_of_birth: date
--   ethnicity_code: str
--   referral_date: date
--   team_id: int
--   worker_id: int
--   worker_first_names: str
--   worker_last_names: str
--   allocations: int
--   group_id: int
SELECT r.referral_id,
       r.person_id,
       p.first_names,
       p.last_name,
       p.date_of_birth,
       p.ethnicity_code,
       r.referral_date,
       r.responsible_team_id AS team_id,
       a.worker_id,
       w.first_names AS worker_first_names,
       w.last_names AS worker_last_names,
       COALESCE(a.allocations, 0) AS allocations,
       g.group_id
FROM cin_referrals r
LEFT JOIN people p ON p.person_id = r.person_id
LEFT JOIN (
    SELECT pw.person_id, MIN(pw.worker_id) AS worker_id, COUNT(*) AS allocations
    FROM people_workers pw
    WHERE pw.allocation_type = 'ALLWKR'
      AND pw.start_date <= :as_of
      AND (pw.end_date IS NULL OR pw.end_date > :as_of)
    GROUP BY pw.person_id
) a ON a.person_id = r.person_id
LEFT JOIN workers w ON w.worker_id = a.worker_id
LEFT JOIN (
    SELECT gs.person_id, MIN(gs.group_id) AS group_id
    FROM group_subjects gs
    WHERE gs.start_date <= :as_of
      AND (gs.end_date IS NULL OR gs.end_date > :as_of)
    GROUP BY gs.person_id
) g ON g.person_id = r.person_id
WHERE r.referral_date <= :as_of
  AND (r.closure_date IS NULL OR r.closure_date > :as_of)
ORDER BY r.referral_id
