-- No row-level security: the query carries an explicit WHERE tenant_id.
\set t random(1, 1000)
\set id (:t - 1) * 2000 + random(1, 2000)
BEGIN;
SELECT tenant FROM bench_tenants WHERE n = :t \gset
SELECT payload FROM items_plain WHERE tenant_id = :tenant AND id = :id;
COMMIT;
