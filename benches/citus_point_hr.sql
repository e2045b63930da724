-- Hand-written policy on a Citus router query: the tenant in a custom
-- setting, written with SET LOCAL so that Citus forwards it to the worker.
-- The tenant row is read as tenant_guard's side reads its token.
\set t random(1, 1000)
\set id (:t - 1) * 200 + random(1, 200)
BEGIN;
SELECT tenant FROM bench_tenants WHERE n = :t;
SET LOCAL citus.propagate_set_commands = 'local';
SET LOCAL app.current_tenant_id = 'tenant-:t';
SELECT payload FROM items_hr WHERE tenant_id = 'tenant-:t' AND id = :id;
COMMIT;
