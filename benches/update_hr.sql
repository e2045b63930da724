-- Hand-rolled: unverified setting + current_setting() policy, the same update
-- (no trigger guards the tenant column).
\set t random(1, 1000)
\set id (:t - 1) * 2000 + random(1, 2000)
BEGIN;
SELECT set_config('app.current_tenant_id', tenant, true) FROM bench_tenants WHERE n = :t;
UPDATE items_hr SET tenant_id = tenant_id, payload = payload WHERE id = :id;
COMMIT;
