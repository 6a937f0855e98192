-- title: Family group members
-- refresh: 1h
-- scope: []
-- personal: true
-- description: >
--   Members (group_subjects running at as_of) of every family group in which at least one
--   member has a case open at as_of: the family view groups siblings' work back together.
-- columns:
--   group_id: int
--   person_id: int
--   first_names: str
--   last_name: str
--   date_of_birth: date
--   member_since: date
SELECT gs.group_id,
       gs.person_id,
       p.first_names,
       p.last_name,
       p.date_of_birth,
       gs.start_date AS member_since
FROM group_subjects gs
LEFT JOIN people p ON p.person_id = gs.person_id
WHERE gs.start_date <= :as_of
  AND (gs.end_date IS NULL OR gs.end_date > :as_of)
  AND EXISTS (
      SELECT 1
      FROM group_subjects g2
      JOIN cin_referrals r ON r.person_id = g2.person_id
      WHERE g2.group_id = gs.group_id
        AND g2.start_date <= :as_of
        AND (g2.end_date IS NULL OR g2.end_date > :as_of)
        AND r.referral_date <= :as_of
        AND (r.closure_date IS NULL OR r.closure_date > :as_of)
  )
ORDER BY gs.group_id, gs.person_id
