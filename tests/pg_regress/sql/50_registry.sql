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

-- A backend remembers a tenant it found active, with where that row version
-- lives; later uses read only that version's header, not the registry.
-- Tenant 2 was found active just above: three uses in a new transaction
-- read the registry's index no time. (pg_stat_force_next_flush: the
-- transaction's counts start from zero.)
SELECT pg_stat_force_next_flush();
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'inactive') IS NOT NULL AS set;
SELECT tenant_guard.set_context(:'inactive') IS NOT NULL AS set;
SELECT tenant_guard.set_context(:'inactive') IS NOT NULL AS set;
SELECT idx_scan AS registry_index_reads FROM pg_stat_xact_user_tables WHERE relname = 'accounts';
COMMIT;
RESET ROLE;
-- Any update of the row, even one that keeps it active, makes a new version:
-- the first use after it looks the tenant up again (once).
UPDATE accounts SET name = 'Globex Ltd' WHERE "accountId" = 2;
SELECT pg_stat_force_next_flush();
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'inactive') IS NOT NULL AS set;
SELECT tenant_guard.set_context(:'inactive') IS NOT NULL AS set;
SELECT tenant_guard.set_context(:'inactive') IS NOT NULL AS set;
SELECT idx_scan AS registry_index_reads FROM pg_stat_xact_user_tables WHERE relname = 'accounts';
COMMIT;
RESET ROLE;

-- Deactivating the tenant makes a new row version: the remembered one is no
-- longer visible, so the next use looks it up again and is refused.
UPDATE accounts SET "isActive" = false WHERE "accountId" = 2;
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'inactive');
ROLLBACK;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- So does deleting it, and inserting it again inactive.
UPDATE accounts SET "isActive" = true WHERE "accountId" = 2;
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'inactive') IS NOT NULL AS set;
COMMIT;
RESET ROLE;
DELETE FROM accounts WHERE "accountId" = 2;
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'inactive');
ROLLBACK;
RESET ROLE;
INSERT INTO accounts VALUES (2, 'Globex', false);
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'inactive');
ROLLBACK;
RESET ROLE;

-- A row version is known by its address and inserting transaction. Rows
-- inserted by one statement share that transaction, and VACUUM FULL moves a
-- row into a deleted one's place without changing it: tenant 21 lands where
-- tenant 20 was, with the same xmin. The rewrite invalidates the table, so
-- nothing remembered before it is trusted after it: tenant 20 is refused.
CREATE TABLE orgs (id bigint PRIMARY KEY, live boolean);
INSERT INTO orgs VALUES (20, true), (21, true);
SELECT tenant_guard.use_registry('orgs', 'id', 'live');
SELECT tenant_guard.sign('{"tenant_id": 20, "exp": 4102444800}') AS org20 \gset
SELECT tenant_guard.sign('{"tenant_id": 21, "exp": 4102444800}') AS org21 \gset
SELECT ctid AS ctid20, xmin AS xmin20 FROM orgs WHERE id = 20 \gset
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'org20') IS NOT NULL AS set;
COMMIT;
RESET ROLE;
DELETE FROM orgs WHERE id = 20;
VACUUM FULL orgs;
SELECT ctid = :'ctid20' AS in_20s_place, xmin = :'xmin20' AS same_xmin FROM orgs WHERE id = 21;
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'org20');
ROLLBACK;
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT tenant_guard.set_context(:'org21') IS NOT NULL AS set;
COMMIT;
RESET ROLE;
-- TRUNCATE empties the table (a new file, the same addresses).
TRUNCATE orgs;
INSERT INTO orgs VALUES (21, false);
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'org21');
ROLLBACK;
RESET ROLE;
-- A transaction that has written runs the look-up itself (it would read
-- its own writes).
BEGIN;
UPDATE orgs SET live = true WHERE id = 21;
SELECT tenant_guard.set_context(:'org21') IS NOT NULL AS set;
UPDATE orgs SET live = false WHERE id = 21;
SELECT tenant_guard.set_context(:'org21');
ROLLBACK;
SELECT tenant_guard.use_registry('accounts', 'accountId', 'isActive');
DROP TABLE orgs;

-- Without a unique index on the id column, ids may repeat, and the look-up
-- reads the first matching row: nothing is remembered there, or a backend
-- could keep accepting an id whose first row is now an inactive copy.
-- Here the copy lands on page 0, before the active row (page 21).
CREATE TABLE loose (id text, active boolean, pad text) WITH (fillfactor = 10);
INSERT INTO loose SELECT 'filler' || g, true, repeat('x', 300) FROM generate_series(1, 43) g;
INSERT INTO loose VALUES ('t1', true, 'active');
SELECT tenant_guard.use_registry('loose', 'id', 'active');
SELECT tenant_guard.sign('{"tenant_id": "t1", "exp": 4102444800}') AS t1 \gset
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'t1') IS NOT NULL AS set;
COMMIT;
RESET ROLE;
UPDATE loose SET id = 't1', active = false, pad = 'inactive copy' WHERE id = 'filler1';
SELECT active, ctid < (SELECT ctid FROM loose WHERE pad = 'active') AS comes_first
  FROM loose WHERE pad = 'inactive copy';
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'t1');
ROLLBACK;
RESET ROLE;
DROP TABLE loose;

-- The registry table is named by schema and name, so its schema is watched
-- too. The application role owns the schema (not the table, not the data):
-- renaming the schema and putting a look-alike table in its place does not
-- make the look-up read the look-alike (tenant 2 is inactive in the
-- registry, active in the look-alike; 99 is only in the look-alike).
CREATE ROLE tg_reg_owner;
CREATE SCHEMA app_s AUTHORIZATION tg_reg_app;
GRANT USAGE ON SCHEMA app_s TO tg_reg_owner;
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO tg_reg_app', current_database()); END $$;
CREATE TABLE app_s.accounts (id bigint PRIMARY KEY, active boolean);
INSERT INTO app_s.accounts VALUES (1, true), (2, false);
ALTER TABLE app_s.accounts OWNER TO tg_reg_owner;
SELECT tenant_guard.use_registry('app_s.accounts', 'id', 'active');
SET ROLE tg_reg_app;
BEGIN;
SELECT tenant_guard.set_context(:'active') IS NOT NULL AS set;
COMMIT;
ALTER SCHEMA app_s RENAME TO app_old;
CREATE SCHEMA app_s;
CREATE TABLE app_s.accounts (id bigint PRIMARY KEY, active boolean);
INSERT INTO app_s.accounts VALUES (2, true), (99, true);
GRANT USAGE ON SCHEMA app_s TO tg_reg_owner;
GRANT SELECT ON app_s.accounts TO tg_reg_owner;
BEGIN;
SELECT tenant_guard.set_context(:'inactive');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'missing');
ROLLBACK;
-- Revoking the registry owner's use of the schema stops even remembered
-- tenants (the look-up may no longer run).
BEGIN;
SELECT tenant_guard.set_context(:'active') IS NOT NULL AS set;
COMMIT;
REVOKE USAGE ON SCHEMA app_old FROM tg_reg_owner;
BEGIN;
SELECT tenant_guard.set_context(:'active');
ROLLBACK;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT tenant_guard.use_registry('accounts', 'accountId', 'isActive');
DROP SCHEMA app_s CASCADE;
DROP SCHEMA app_old CASCADE;
DO $$ BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM tg_reg_app', current_database()); END $$;
DROP ROLE tg_reg_owner;

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
