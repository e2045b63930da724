-- tenant_guard on a Citus router query: verified context (forwarded to the
-- worker), then a point lookup naming the tenant (the distribution column).
\set t random(1, 1000)
\set id (:t - 1) * 200 + random(1, 200)
BEGIN;
SELECT tenant_guard.set_context(token) FROM bench_tenants WHERE n = :t;
SELECT payload FROM items_tg WHERE tenant_id = 'tenant-:t' AND id = :id;
COMMIT;
