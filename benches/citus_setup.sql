-- The Citus router bench (scripts/bench, section citus): 1,000 tenants x 200
-- rows in two tables, distributed by tenant where Citus is installed (on a
-- single node the same script builds plain tables, for the comparison):
--   items_tg  protected by tenant_guard.protect
--   items_hr  the hand-written policy: tenant_id = current_setting('app.current_tenant_id'),
--             set with SET LOCAL (Citus forwards SET LOCAL, not set_config)
SET client_min_messages = warning;
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus \gset
CREATE TABLE bench_tenants (n int PRIMARY KEY, tenant text NOT NULL, token text);
INSERT INTO bench_tenants
SELECT n, 'tenant-' || n,
       tenant_guard.sign(jsonb_build_object('tenant_id', 'tenant-' || n, 'sub', 'u' || n, 'exp', 4102444800))
  FROM generate_series(1, 1000) n;
CREATE TABLE items_tg (tenant_id text NOT NULL, id bigint NOT NULL, payload int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE items_hr (LIKE items_tg INCLUDING ALL);
SELECT count(*) FROM tenant_guard.protect('items_tg');
ALTER TABLE items_hr ENABLE ROW LEVEL SECURITY;
ALTER TABLE items_hr FORCE ROW LEVEL SECURITY;
CREATE POLICY hand_rolled ON items_hr
  USING (tenant_id = current_setting('app.current_tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.current_tenant_id', true));
\if :citus
SELECT create_reference_table('bench_tenants');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('items_tg', 'tenant_id');
SELECT create_distributed_table('items_hr', 'tenant_id', colocate_with => 'items_tg');
RESET citus.enable_unsafe_triggers;
SELECT count(*) FROM tenant_guard.sync_nodes();
\endif
INSERT INTO items_tg SELECT 'tenant-' || t, (t - 1) * 200 + k, k FROM generate_series(1, 1000) t, generate_series(1, 200) k;
INSERT INTO items_hr SELECT * FROM items_tg;
VACUUM ANALYZE items_tg;
VACUUM ANALYZE items_hr;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_app') THEN CREATE ROLE bench_app LOGIN; END IF;
END $$;
GRANT SELECT ON bench_tenants, items_tg, items_hr TO bench_app;
