-- Hand-rolled: unverified setting + current_setting() policy, then a point lookup.
\set t random(1, 1000)
\set id (:t - 1) * 2000 + random(1, 2000)
BEGIN;
SELECT set_config('app.current_tenant_id', tenant, true) FROM bench_tenants WHERE n = :t;
SELECT payload FROM items_hr WHERE id = :id;
COMMIT;
