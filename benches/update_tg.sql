-- tenant_guard: verified context, then an ORM-style update that writes every
-- column, the tenant column included (so the tenant-keeping trigger fires).
\set t random(1, 1000)
\set id (:t - 1) * 2000 + random(1, 2000)
BEGIN;
SELECT tenant_guard.set_context(token) FROM bench_tenants WHERE n = :t;
UPDATE items_tg SET tenant_id = tenant_id, payload = payload WHERE id = :id;
COMMIT;
