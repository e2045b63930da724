-- Tests selftest(): the main attacks, tried by an ordinary role on a scratch
-- fixture, one row per check, nothing left behind
CREATE EXTENSION tenant_guard;
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT count(*) AS keys_before FROM tenant_guard.keys;

SELECT "check", passed, detail FROM tenant_guard.selftest();

-- Nothing is left behind: no key, role, protected table or scratch table.
SELECT count(*) AS keys_after FROM tenant_guard.keys;
SELECT count(*) AS roles_left FROM pg_roles WHERE rolname LIKE 'tenant_guard_selftest%';
SELECT count(*) AS protected_left FROM tenant_guard.protected;
SELECT count(*) AS tables_left FROM pg_class WHERE relname LIKE 'selftest%';
SELECT current_user, tenant_guard.tenant_id() AS context_left;

-- Only a superuser can run it.
CREATE ROLE tg_selftest_dba LOGIN;
SET ROLE tg_selftest_dba;
SELECT * FROM tenant_guard.selftest();
RESET ROLE;
DROP ROLE tg_selftest_dba;
DROP EXTENSION tenant_guard;
