-- tenant_guard: one tenant's 2,000 rows.
\set t random(1, 1000)
BEGIN;
SELECT tenant_guard.set_context(token) FROM bench_tenants WHERE n = :t;
SELECT count(*), sum(payload) FROM items_tg;
COMMIT;
