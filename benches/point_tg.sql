-- tenant_guard: verified context from a token, then a point lookup.
\set t random(1, 1000)
\set id (:t - 1) * 2000 + random(1, 2000)
BEGIN;
SELECT tenant_guard.set_context(token) FROM bench_tenants WHERE n = :t;
SELECT payload FROM items_tg WHERE id = :id;
COMMIT;
