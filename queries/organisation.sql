-- title: Organisation tree
-- refresh: 1h
-- scope: []
-- personal: false
-- description: >
--   Every organisation node (directorate, services, teams) with its parent. The data layer
--   resolves service scopes to the TEAM nodes below them and names teams in drill-downs.
-- columns:
--   org_id: int
--   name: str
--   org_level: str
--   parent_org_id: int
--   service_area: str
SELECT o.org_id,
       o.name,
       o.org_level,
       o.parent_org_id,
       o.service_area
FROM organisations o
ORDER BY o.org_id
