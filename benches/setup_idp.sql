-- 50 tenants x 2,000 rows in two identical tables; tenant-42 (the bench
-- tokens' tenant) holds ids 1..2,000.
--   idp_items_tg  protected by tenant_guard.protect
--   idp_items_hr  tenant_id = current_setting('app.current_tenant_id')
CREATE TABLE idp_items_tg (id bigint PRIMARY KEY, tenant_id text NOT NULL, payload int NOT NULL);
INSERT INTO idp_items_tg
SELECT ((t + 8) % 50) * 2000 + k, 'tenant-' || t, k
  FROM generate_series(1, 50) t, generate_series(1, 2000) k;
CREATE INDEX ON idp_items_tg (tenant_id, id);
CREATE TABLE idp_items_hr (LIKE idp_items_tg INCLUDING ALL);
INSERT INTO idp_items_hr SELECT * FROM idp_items_tg;
VACUUM ANALYZE idp_items_tg, idp_items_hr;
SELECT count(*) FROM tenant_guard.protect('idp_items_tg');
ALTER TABLE idp_items_hr ENABLE ROW LEVEL SECURITY;
ALTER TABLE idp_items_hr FORCE ROW LEVEL SECURITY;
CREATE POLICY hand_rolled ON idp_items_hr
  USING (tenant_id = current_setting('app.current_tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.current_tenant_id', true));
GRANT SELECT ON idp_items_tg, idp_items_hr TO bench_app;
