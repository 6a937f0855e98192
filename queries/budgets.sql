-- title: Cost centres and budgets
-- refresh: 1h
-- scope: [cost_centre_code]
-- personal: false
-- description: >
--   Every cost centre with its description, service area and budget holder, and its original
--   and revised budget for the financial year containing as_of (empty when none is set).
-- columns:
--   cost_centre_code: str
--   description: str
--   service_area: str
--   budget_holder_worker_id: int
--   holder_first_names: str
--   holder_last_names: str
--   original_budget: float
--   revised_budget: float
SELECT cc.cost_centre_code,
       cc.description,
       cc.service_area,
       cc.budget_holder_worker_id,
       w.first_names AS holder_first_names,
       w.last_names AS holder_last_names,
       b.original_budget,
       b.revised_budget
FROM cost_centres cc
LEFT JOIN budgets b
       ON b.cost_centre_code = cc.cost_centre_code
      AND b.financial_year = :financial_year
LEFT JOIN workers w ON w.worker_id = cc.budget_holder_worker_id
ORDER BY cc.cost_centre_code
