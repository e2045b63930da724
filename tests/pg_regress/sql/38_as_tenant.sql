-- Tests tenant_guard.as_tenant: a test suite acts as a tenant without a token, and nobody else can
--
-- Only superusers and members of the role tenant_guard.as_tenant_role names
-- (empty: superusers only) may call it; EXECUTE is revoked from PUBLIC too.
-- The context it makes is marked as made by as_tenant, by whom; the
-- per-statement check accepts it only in the session whose as_tenant made
-- it, so a value written by hand fails closed. Every use is logged at LOG
-- and counted.
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('k1', decode(repeat('a1', 32), 'hex'));
CREATE ROLE tg_as_app LOGIN;
CREATE ROLE tg_as_testers NOLOGIN;
CREATE ROLE tg_as_qa LOGIN IN ROLE tg_as_testers;
CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL, item text);
INSERT INTO orders VALUES (1, 'acme', 'anvil'), (2, 'acme', 'rocket'), (3, 'globex', 'gizmo'), (4, 'umbrella', 'vial');
SELECT count(*) > 0 AS protected FROM tenant_guard.protect('orders');
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO tg_as_app, tg_as_qa;
CREATE SCHEMA spec;
GRANT USAGE ON SCHEMA spec TO PUBLIC;
CREATE VIEW spec.moved AS
  SELECT metric || coalesce('{' || reason || '}', '') AS counter, value
    FROM tenant_guard.stats WHERE value <> 0 ORDER BY metric, reason;
\set VERBOSITY sqlstate

-- The intended use: a superuser (or a tester) picks the tenant, then runs
-- the statements as the application role. Transaction-local by default.
BEGIN;
SELECT tenant_guard.as_tenant('acme');
SET LOCAL ROLE tg_as_app;
SELECT tenant_guard.tenant_id(), tenant_guard.user_id(), tenant_guard.visible_tenants(), tenant_guard.writable_tenants();
SELECT id, tenant_id, item FROM orders ORDER BY id;
-- Writes are the tenant's only, as with a token.
INSERT INTO orders VALUES (5, 'globex', 'forged');
ROLLBACK;
-- Gone with the transaction.
SELECT tenant_guard.tenant_id();

-- Parallel query is off while an as_tenant context lasts (after a session
-- context, for the rest of the session): a parallel worker cannot tell its
-- value from a forged one, and would read nothing.
BEGIN;
SHOW max_parallel_workers_per_gather;
SELECT tenant_guard.as_tenant('acme');
SHOW max_parallel_workers_per_gather;
ROLLBACK;
SHOW max_parallel_workers_per_gather;

-- Like set_context, transaction-local needs a transaction block.
SELECT tenant_guard.as_tenant('acme');

-- A read set (it writes its tenant only) and a user id.
BEGIN;
SELECT tenant_guard.as_tenant('acme', tenants => ARRAY['globex'], user_id => 'alice');
SET LOCAL ROLE tg_as_app;
SELECT tenant_guard.tenant_id(), tenant_guard.user_id(), tenant_guard.visible_tenants(), tenant_guard.writable_tenants();
SELECT id, tenant_id FROM orders ORDER BY id;
UPDATE orders SET item = 'x' WHERE tenant_id = 'globex' RETURNING id;
-- The claims are what a token would carry.
SELECT tenant_guard.claims();
ROLLBACK;

-- A session context, until cleared (a pytest fixture's shape).
SELECT tenant_guard.as_tenant('globex', is_local => false);
SET ROLE tg_as_app;
SELECT id, tenant_id FROM orders ORDER BY id;
RESET ROLE;
SELECT tenant_guard.clear_context();
SELECT tenant_guard.tenant_id();

-- Bad arguments (22023).
BEGIN;
SELECT tenant_guard.as_tenant(NULL);
ROLLBACK;
BEGIN;
SELECT tenant_guard.as_tenant('');
ROLLBACK;
BEGIN;
SELECT tenant_guard.as_tenant('acme', tenants => ARRAY[NULL]);
ROLLBACK;

-- Every use is logged at LOG (who, which tenant), whatever
-- tenant_guard.log_context says; shown here by raising client_min_messages.
\set VERBOSITY terse
BEGIN;
SET LOCAL client_min_messages = log;
SELECT tenant_guard.as_tenant('acme', user_id => 'alice');
ROLLBACK;
\set VERBOSITY sqlstate

-- Counted in tenant_guard.stats (refused calls are not).
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
BEGIN;
SELECT tenant_guard.as_tenant('acme');
SELECT tenant_guard.as_tenant('globex');
ROLLBACK;
SELECT * FROM spec.moved;

-- Attack: the application role calls as_tenant. EXECUTE is not granted.
SELECT has_function_privilege('tg_as_app', 'tenant_guard.as_tenant(text, text[], text, boolean)', 'EXECUTE') AS app_may_execute;
SET ROLE tg_as_app;
BEGIN;
SELECT tenant_guard.as_tenant('globex');
ROLLBACK;
RESET ROLE;

-- Attack: granted EXECUTE, but neither a superuser nor a member of
-- tenant_guard.as_tenant_role (not set: superusers only).
GRANT EXECUTE ON FUNCTION tenant_guard.as_tenant(text, text[], text, boolean) TO tg_as_app, tg_as_qa;
\set VERBOSITY default
SET ROLE tg_as_app;
BEGIN;
SELECT tenant_guard.as_tenant('globex');
ROLLBACK;
RESET ROLE;
-- With the role set, its members may; others may not.
SET tenant_guard.as_tenant_role = 'tg_as_testers';
SET ROLE tg_as_qa;
BEGIN;
SELECT tenant_guard.as_tenant('acme');
SELECT id, tenant_id FROM orders ORDER BY id;
ROLLBACK;
RESET ROLE;
SET ROLE tg_as_app;
BEGIN;
SELECT tenant_guard.as_tenant('globex');
ROLLBACK;
-- The application role cannot name a role of its own.
SET tenant_guard.as_tenant_role = 'tg_as_app';
RESET ROLE;
-- A role that does not exist admits superusers only.
SET tenant_guard.as_tenant_role = 'tg_as_gone';
SET ROLE tg_as_qa;
BEGIN;
SELECT tenant_guard.as_tenant('acme');
ROLLBACK;
RESET ROLE;
SET tenant_guard.as_tenant_role = 'tg_as_testers';
\set VERBOSITY sqlstate

-- Attack: a SECURITY DEFINER function of the application's, called by a
-- superuser, runs as the application role: refused.
GRANT CREATE ON SCHEMA spec TO tg_as_app;
SET ROLE tg_as_app;
CREATE FUNCTION spec.helpful() RETURNS text LANGUAGE sql SECURITY DEFINER
  AS $$ SELECT tenant_guard.as_tenant('globex', is_local => false) $$;
RESET ROLE;
SELECT spec.helpful();
SELECT tenant_guard.tenant_id();

-- Attack: after a legitimate as_tenant, the application role (now the
-- current role) tries to change tenants: as_tenant, the setting by hand,
-- set_config. All refused; the context stays acme's.
BEGIN;
SELECT tenant_guard.as_tenant('acme');
SET LOCAL ROLE tg_as_app;
SELECT tenant_guard.as_tenant('globex');
ROLLBACK;
BEGIN;
SELECT tenant_guard.as_tenant('acme');
SET LOCAL ROLE tg_as_app;
SAVEPOINT s;
SET tenant_guard.context = E'globex\x1f\x1f{"kid":"","as":"postgres"}\x1f{}';
ROLLBACK TO s;
SELECT set_config('tenant_guard.context', E'globex\x1f\x1f{"kid":"","as":"postgres"}\x1f{}', true);
ROLLBACK TO s;
SELECT tenant_guard.tenant_id(), count(*) AS rows_visible FROM orders;
ROLLBACK;

-- Attack: a value marked as made by as_tenant, written by hand (here by a
-- superuser; likewise a role granted SET on the setting) fails closed: it
-- reads nothing, and says why once. (A role allowed to write the setting
-- could also copy a value this session's as_tenant made, or a token
-- context's: writing it is a superuser's right, never an application's.)
BEGIN;
SELECT set_config('tenant_guard.context', E'umbrella\x1f\x1f{"kid":"","as":"postgres"}\x1f{"tenant_id":"umbrella"}', true) IS NOT NULL AS written;
SET LOCAL ROLE tg_as_app;
\set VERBOSITY default
SELECT tenant_guard.tenant_id();
\set VERBOSITY sqlstate
SELECT count(*) AS rows_visible FROM orders;
ROLLBACK;
-- The same with a role granted SET on the setting, after a legitimate
-- as_tenant in the same session.
GRANT SET ON PARAMETER tenant_guard.context TO tg_as_app;
BEGIN;
SELECT tenant_guard.as_tenant('acme');
SET LOCAL ROLE tg_as_app;
SELECT set_config('tenant_guard.context', E'umbrella\x1f\x1f{"kid":"","as":"postgres"}\x1f{"tenant_id":"umbrella"}', true) IS NOT NULL AS written;
SELECT tenant_guard.tenant_id(), count(*) AS rows_visible FROM orders;
ROLLBACK;
REVOKE SET ON PARAMETER tenant_guard.context FROM tg_as_app;

-- A value PostgreSQL restores (a rollback to a savepoint) is recognised
-- as the one this session's as_tenant made.
BEGIN;
SELECT tenant_guard.as_tenant('acme');
SAVEPOINT s;
SELECT tenant_guard.as_tenant('globex');
ROLLBACK TO s;
SET LOCAL ROLE tg_as_app;
SELECT tenant_guard.tenant_id(), count(*) AS rows_visible FROM orders;
ROLLBACK;

-- The registry's rules apply as to a token: unknown and suspended
-- tenants are refused (28000), and suspending a tenant ends its session
-- context at the next statement.
CREATE TABLE tenants (id text PRIMARY KEY, active boolean NOT NULL);
INSERT INTO tenants VALUES ('acme', true), ('globex', false);
SELECT tenant_guard.use_registry('tenants', 'id', 'active');
BEGIN;
SELECT tenant_guard.as_tenant('globex');
ROLLBACK;
BEGIN;
SELECT tenant_guard.as_tenant('initech');
ROLLBACK;
BEGIN;
SELECT tenant_guard.as_tenant('acme', tenants => ARRAY['globex']);
ROLLBACK;
SELECT tenant_guard.as_tenant('acme', is_local => false);
SET ROLE tg_as_app;
SELECT count(*) AS rows_visible FROM orders;
RESET ROLE;
UPDATE tenants SET active = false WHERE id = 'acme';
SET ROLE tg_as_app;
SELECT count(*) AS rows_visible FROM orders;
RESET ROLE;
SELECT tenant_guard.clear_context();
SELECT tenant_guard.use_registry(NULL);

RESET tenant_guard.as_tenant_role;
DROP EXTENSION tenant_guard CASCADE;
DROP TABLE orders, tenants;
DROP SCHEMA spec CASCADE;
DROP ROLE tg_as_app, tg_as_qa, tg_as_testers;
