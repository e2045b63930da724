-- Tests the optional tenant registry: unknown or inactive tenants are refused
CREATE EXTENSION tenant_guard;
CREATE ROLE tg_reg_app LOGIN;
SELECT tenant_guard.add_key('main', decode(repeat('a1', 32), 'hex'));
\set VERBOSITY default

-- The application's own tenants table; the application role cannot read it,
-- yet the check works (it runs with the extension owner's rights).
CREATE TABLE accounts ("accountId" bigint PRIMARY KEY, name text, "isActive" boolean);
INSERT INTO accounts VALUES (1, 'Acme', true), (2, 'Globex', false), (3, 'Initech', NULL);

SELECT tenant_guard.sign('{"tenant_id": 1, "exp": 4102444800}') AS active \gset
SELECT tenant_guard.sign('{"tenant_id": 2, "exp": 4102444800}') AS inactive \gset
SELECT tenant_guard.sign('{"tenant_id": 3, "exp": 4102444800}') AS unknown_state \gset
SELECT tenant_guard.sign('{"tenant_id": 99, "exp": 4102444800}') AS missing \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS not_a_number \gset

-- Before use_registry any verified tenant is accepted.
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'missing');
ROLLBACK;
RESET ROLE;

SELECT tenant_guard.use_registry('accounts', 'accountId', 'isActive');
SELECT tenant_table, id_column, active_column FROM tenant_guard.registry;

SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'active');
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(:'inactive');
ROLLBACK;
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT tenant_guard.set_context(:'unknown_state');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'missing');
ROLLBACK;
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT tenant_guard.set_context(:'not_a_number');
ROLLBACK;
-- Only the extension owner configures the registry.
SELECT tenant_guard.use_registry('accounts', 'accountId');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Activating a tenant takes effect at once.
UPDATE accounts SET "isActive" = true WHERE "accountId" = 2;
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'inactive');
COMMIT;
RESET ROLE;

-- Bad configuration is refused and changes nothing.
SELECT tenant_guard.use_registry('accounts', 'id');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.use_registry('accounts', 'accountId', 'name');
\echo :LAST_ERROR_SQLSTATE
CREATE VIEW accounts_view AS SELECT * FROM accounts;
SELECT tenant_guard.use_registry('accounts_view', 'accountId');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.use_registry('no_such_table');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_table, id_column, active_column FROM tenant_guard.registry;

-- Text ids, no active column.
CREATE TABLE tenants (id text PRIMARY KEY);
INSERT INTO tenants VALUES ('acme');
SELECT tenant_guard.use_registry('tenants');
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'not_a_number');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'active');
ROLLBACK;
RESET ROLE;

-- NULL turns the registry off.
SELECT tenant_guard.use_registry(NULL);
SELECT count(*) FROM tenant_guard.registry;

DROP EXTENSION tenant_guard;
DROP TABLE accounts CASCADE;
DROP TABLE tenants;
DROP ROLE tg_reg_app;
