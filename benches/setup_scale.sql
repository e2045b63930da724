-- The scale section of ./scripts/bench: 1,000,000 rows over 100,000 tenants
-- (10 rows each), registries of 10, 1,000 and 100,000 tenants.
CREATE TABLE sc_items (id bigint PRIMARY KEY, tenant_id text NOT NULL, v int NOT NULL);
INSERT INTO sc_items SELECT g, 's' || lpad((g % 100000)::text, 6, '0'), g % 97 FROM generate_series(1, 1000000) g;
CREATE INDEX ON sc_items (tenant_id);
CREATE TABLE sc_reg (id text PRIMARY KEY);
INSERT INTO sc_reg SELECT 's' || lpad(g::text, 6, '0') FROM generate_series(0, 99999) g;
CREATE TABLE sc_reg_1k (id text PRIMARY KEY);
INSERT INTO sc_reg_1k SELECT id FROM sc_reg ORDER BY id LIMIT 1000;
GRANT SELECT ON sc_items TO bench_app;
SELECT count(*) FROM tenant_guard.protect('sc_items');
ALTER DATABASE bench SET tenant_guard.max_token_bytes = 65536;
VACUUM ANALYZE sc_items;
VACUUM ANALYZE sc_reg;
VACUUM ANALYZE sc_reg_1k;
