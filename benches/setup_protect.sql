-- 1,000 tenants x 2,000 rows, three identical tables:
--   items_tg     protected by tenant_guard.protect
--   items_hr     the hand-rolled policy: tenant_id = current_setting('app.current_tenant_id')
--   items_plain  no row-level security (queries carry an explicit WHERE)
CREATE TABLE bench_tenants (n int PRIMARY KEY, tenant text NOT NULL, token text);
INSERT INTO bench_tenants
SELECT n, 'tenant-' || lpad(n::text, 4, '0'),
       tenant_guard.sign(jsonb_build_object('tenant_id', 'tenant-' || lpad(n::text, 4, '0'), 'sub', 'u' || n, 'exp', 4102444800))
  FROM generate_series(1, 1000) n;

CREATE TABLE items_tg (id bigint PRIMARY KEY, tenant_id text NOT NULL, payload int NOT NULL);
INSERT INTO items_tg
SELECT (t - 1) * 2000 + k, 'tenant-' || lpad(t::text, 4, '0'), k
  FROM generate_series(1, 1000) t, generate_series(1, 2000) k;
CREATE INDEX ON items_tg (tenant_id, id);
CREATE TABLE items_hr (LIKE items_tg INCLUDING ALL);
INSERT INTO items_hr SELECT * FROM items_tg;
CREATE TABLE items_plain (LIKE items_tg INCLUDING ALL);
INSERT INTO items_plain SELECT * FROM items_tg;
VACUUM ANALYZE;

SELECT count(*) FROM tenant_guard.protect('items_tg');
ALTER TABLE items_hr ENABLE ROW LEVEL SECURITY;
ALTER TABLE items_hr FORCE ROW LEVEL SECURITY;
CREATE POLICY hand_rolled ON items_hr
  USING (tenant_id = current_setting('app.current_tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.current_tenant_id', true));
GRANT SELECT ON bench_tenants, items_tg, items_hr, items_plain TO bench_app;
GRANT UPDATE ON items_tg, items_hr TO bench_app;
