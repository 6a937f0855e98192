-- title: Referrals, last two years
-- refresh: 1h
-- scope: [team_id]
-- personal: true
-- description: >
--   Every referral dated after two_years_ago (or in the 24-month trend window) up to as_of.
--   The referrals of the last 12 months are counted; the year before them is the look-back for
--   re-referrals (another referral of the same child on or after 365 days before, strictly
--   before), computed in pandas because date arithmetic is not portable SQL.
-- columns:
--   referral_id: int
--   person_id: int
--   first_names: str
--   last_name: str
--   referral_date: date
--   source_code: str
--   primary_need_code: str
--   nfa_flag: bool
--   team_id: int
--   closure_date: date
SELECT r.referral_id,
       r.person_id,
       p.first_names,
       p.last_name,
       r.referral_date,
       r.source_code,
       r.primary_need_code,
       r.nfa_flag,
       r.responsible_team_id AS team_id,
       r.closure_date
FROM cin_referrals r
LEFT JOIN people p ON p.person_id = r.person_id
WHERE (r.referral_date > :two_years_ago OR r.referral_date >= :trend_start)
  AND r.referral_date <= :as_of
ORDER BY r.referral_id
