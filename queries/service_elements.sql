-- title: Service elements (care package lines)
-- refresh: 1h
-- scope: [cost_centre_code]
-- personal: true
-- description: >
--   Priced service elements that start by the end of the financial year and have not ended
--   before the 24-month trend window, with provider and provider type. Incurred, committed and
--   awaiting-authorisation sums are computed from these in pandas (day counts are not portable
--   SQL). cost_centre_code may be empty (data quality).
-- columns:
--   service_element_id: int
--   care_package_id: int
--   person_id: int
--   first_names: str
--   last_name: str
--   placement_id: int
--   provider_id: int
--   provider_name: str
--   provider_type: str
--   element_type: str
--   cost_centre_code: str
--   weekly_cost: float
--   start_date: date
--   planned_end_date: date
--   end_date: date
--   status: str
--   authorisation_requested_on: date
SELECT e.service_element_id,
       e.care_package_id,
       e.person_id,
       p.first_names,
       p.last_name,
       e.placement_id,
       e.provider_id,
       pr.name AS provider_name,
       pr.provider_type,
       e.element_type,
       e.cost_centre_code,
       e.weekly_cost,
       e.start_date,
       e.planned_end_date,
       e.end_date,
       e.status,
       e.authorisation_requested_on
FROM service_elements e
LEFT JOIN people p ON p.person_id = e.person_id
LEFT JOIN providers pr ON pr.provider_id = e.provider_id
WHERE e.start_date <= :fy_end
  AND (e.end_date IS NULL OR e.end_date >= :trend_start)
ORDER BY e.service_element_id
