-- title: Payments without a service element
-- refresh: 1h
-- scope: [cost_centre_code]
-- personal: false
-- description: >
--   Data quality: payments for periods starting this financial year (period_start >= fy_start)
--   whose service element is empty or does not exist, so they belong to no package.
-- columns:
--   payment_id: int
--   service_element_id: int
--   cost_centre_code: str
--   period_start: date
--   period_end: date
--   amount: float
--   status: str
--   paid_on: date
SELECT pay.payment_id,
       pay.service_element_id,
       pay.cost_centre_code,
       pay.period_start,
       pay.period_end,
       pay.amount,
       pay.status,
       pay.paid_on
FROM payments pay
WHERE pay.period_start >= :fy_start
  AND pay.period_start <= :as_of
  AND (pay.service_element_id IS NULL
       OR NOT EXISTS (
           SELECT 1
           FROM service_elements e
           WHERE e.service_element_id = pay.service_element_id
       ))
ORDER BY pay.payment_id
