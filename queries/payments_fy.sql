-- title: Payments this financial year
-- refresh: 1h
-- scope: [cost_centre_code]
-- personal: false
-- description: >
--   PAID payments with paid_on <= as_of and period_start >= fy_start, summed per cost centre
--   of the payment (the code may be empty: those count for the borough only).
-- columns:
--   cost_centre_code: str
--   payments: int
--   amount: float
SELECT pay.cost_centre_code,
       COUNT(*) AS payments,
       SUM(pay.amount) AS amount
FROM payments pay
WHERE pay.status = 'PAID'
  AND pay.paid_on <= :as_of
  AND pay.period_start >= :fy_start
GROUP BY pay.cost_centre_code
ORDER BY pay.cost_centre_code
