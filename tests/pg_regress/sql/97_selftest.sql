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

-- With a registry configured (which knows neither scratch tenant) and other
-- claim and column settings, every check still runs and passes (it used to
-- fail with 28000); the registry and the settings are left as they were.
CREATE TABLE tg_selftest_registry (id bigint PRIMARY KEY);
SELECT tenant_guard.use_registry('tg_selftest_registry');
SET tenant_guard.tenant_claim = 'org';
SET tenant_guard.tenant_column = 'org_id';
SELECT count(*) AS checks, bool_and(passed) AS all_passed FROM tenant_guard.selftest();
SELECT tenant_table, id_column FROM tenant_guard.registry;
SHOW tenant_guard.tenant_claim;
SHOW tenant_guard.tenant_column;
RESET tenant_guard.tenant_claim;
RESET tenant_guard.tenant_column;
DELETE FROM tenant_guard.registry;
DROP TABLE tg_selftest_registry;

-- Only a superuser can run it.
CREATE ROLE tg_selftest_dba LOGIN;
SET ROLE tg_selftest_dba;
SELECT * FROM tenant_guard.selftest();
RESET ROLE;
DROP ROLE tg_selftest_dba;
DROP EXTENSION tenant_guard;
