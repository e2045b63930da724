-- Tests the DDL guard: a table-owning application role (not a superuser,
-- as migration tools run) cannot weaken a protected table: every such
-- statement is refused with 42501, changes nothing (also the harmless part
-- of a multi-command ALTER TABLE), and isolation still holds afterwards.
-- The sanctioned paths work: unprotect then DDL then protect, tenant_guard's
-- own helpers, harmless DDL, RENAME / SET SCHEMA / DETACH PARTITION (the
-- protection follows the table), DROP TABLE, a migration that recreates
-- the table; DDL on unprotected tables is unaffected; a
-- superuser's emergency door (tenant_guard.ddl_guard = off) works and warns;
-- on a table that had drifted before, only new weakening is refused.
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('main', decode(repeat('a1', 32), 'hex'));
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset
\set SHOW_CONTEXT never
CREATE ROLE tg_dg_app LOGIN;
CREATE ROLE tg_dg_other NOLOGIN;
CREATE ROLE tg_dg_bypass NOLOGIN BYPASSRLS;
GRANT tg_dg_bypass TO tg_dg_app;
GRANT CREATE ON SCHEMA public TO tg_dg_app, tg_dg_bypass;
CREATE SCHEMA tg_dg_moved AUTHORIZATION tg_dg_app;
GRANT EXECUTE ON FUNCTION tenant_guard.protect(regclass, text, text, boolean, boolean),
                          tenant_guard.unprotect(regclass, boolean),
                          tenant_guard.protection_drift(regclass),
                          tenant_guard.enforce_not_null(regclass, text, boolean),
                          tenant_guard.add_tenant_fk(regclass, text[], regclass, text[], text, boolean, boolean)
  TO tg_dg_app;

-- The application role owns its tables and protects them itself.
SET ROLE tg_dg_app;
CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL, body text);
INSERT INTO orders VALUES (1, 'acme', 'a'), (2, 'globex', 'g');
SELECT count(*) AS statements FROM tenant_guard.protect('orders');
-- What the table looks like; compared after every refused statement.
CREATE FUNCTION pg_temp.shape() RETURNS TABLE (rls boolean, forced boolean, policies bigint,
    triggers bigint, enabled_triggers bigint, tenant_default text, tenant_type text, drift text[])
LANGUAGE sql AS $$
  SELECT c.relrowsecurity, c.relforcerowsecurity,
         (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid),
         (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
         (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgenabled = 'O'),
         (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a
             ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'),
         (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
           WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped),
         tenant_guard.protection_drift(c.oid::regclass)
    FROM pg_class c WHERE c.oid = 'orders'::regclass
$$;
-- What tenant acme sees (the owner is bound too: FORCE ROW LEVEL SECURITY).
CREATE FUNCTION pg_temp.acme_sees() RETURNS TABLE (id int, tenant_id text)
LANGUAGE sql AS $$ SELECT id, tenant_id FROM orders ORDER BY id $$;
SELECT * FROM pg_temp.shape();

-- 1. The refusal, in full: message, DETAIL naming what would be lost, HINT
--    naming the way out.
\set VERBOSITY default
ALTER TABLE orders NO FORCE ROW LEVEL SECURITY;
\set VERBOSITY sqlstate

-- 2. Every weakening statement: refused with 42501.
ALTER TABLE orders DISABLE ROW LEVEL SECURITY;
ALTER TABLE orders NO FORCE ROW LEVEL SECURITY;
DROP POLICY tenant_guard_select ON orders;
DROP POLICY tenant_guard_access ON orders;
ALTER POLICY tenant_guard_select ON orders USING (true);
ALTER POLICY tenant_guard_update ON orders WITH CHECK (true);
ALTER POLICY tenant_guard_delete ON orders TO tg_dg_other;
ALTER POLICY tenant_guard_select ON orders RENAME TO my_select;
DROP TRIGGER tenant_guard_no_truncate ON orders;
DROP TRIGGER tenant_guard_immutable_tenant ON orders;
ALTER TABLE orders DISABLE TRIGGER tenant_guard_immutable_tenant;
ALTER TABLE orders DISABLE TRIGGER USER;
ALTER TRIGGER tenant_guard_no_truncate ON orders RENAME TO no_truncate;
ALTER TABLE orders ALTER COLUMN tenant_id DROP DEFAULT;
ALTER TABLE orders ALTER COLUMN tenant_id SET DEFAULT 'acme';
ALTER TABLE orders ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE orders RENAME COLUMN tenant_id TO customer;
ALTER TABLE orders DROP COLUMN tenant_id CASCADE;
ALTER TABLE orders OWNER TO tg_dg_bypass;
-- A parent that tenant_guard does not protect: PostgreSQL applies only the
-- policies of the table a query names, so it would read and write every
-- tenant's rows of orders. Refused both ways: the table inheriting, and a
-- partitioned table attaching it.
CREATE TABLE evil_parent (id int, tenant_id text, body text);
CREATE TABLE evil_parted (id int, tenant_id text NOT NULL, body text) PARTITION BY LIST (tenant_id);
ALTER TABLE orders INHERIT evil_parent;
ALTER TABLE evil_parted ATTACH PARTITION orders DEFAULT;
SELECT count(*) AS rows_through_parents
  FROM (SELECT id FROM evil_parent UNION ALL SELECT id FROM evil_parted) x;
DROP TABLE evil_parent, evil_parted;
-- A drop that takes the tenant column (and the policies) with it by cascade.
CREATE DOMAIN tg_dg_tenant AS text;
CREATE TABLE tagged (id int, tenant_id tg_dg_tenant NOT NULL);
SELECT count(*) AS statements FROM tenant_guard.protect('tagged');
DROP DOMAIN tg_dg_tenant CASCADE;
SELECT tenant_guard.protection_drift('tagged');
DROP TABLE tagged;
DROP DOMAIN tg_dg_tenant;
-- PostgreSQL itself refuses changing the type of a column a policy uses.
ALTER TABLE orders ALTER COLUMN tenant_id TYPE varchar(40);
-- A multi-command ALTER TABLE is refused as a whole: no column added.
ALTER TABLE orders ADD COLUMN note text, NO FORCE ROW LEVEL SECURITY;
-- In a migration's transaction: refused, and the transaction is aborted.
BEGIN;
ALTER TABLE orders ADD COLUMN note text;
DROP POLICY tenant_guard_insert ON orders;
ROLLBACK;
-- Nothing changed, and isolation holds.
SELECT * FROM pg_temp.shape();
SELECT count(*) AS note_columns FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'note';
SELECT attnotnull AS tenant_not_null FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'tenant_id';
SELECT relowner::regrole AS owner FROM pg_class WHERE oid = 'orders'::regclass;
BEGIN;
SELECT tenant_guard.set_context(:'acme') IS NOT NULL AS context_set;
SELECT * FROM pg_temp.acme_sees();
COMMIT;
-- Without a context: refused (fail closed).
SELECT count(*) AS rows_without_context FROM orders;

-- 3. Allowed on a protected table: DDL that weakens nothing.
ALTER TABLE orders ADD COLUMN note text;
CREATE INDEX orders_tenant ON orders (tenant_id);
ALTER TABLE orders ALTER COLUMN body SET DEFAULT 'x';
COMMENT ON TABLE orders IS 'orders';
-- Another permissive policy cannot widen access: tenant_guard's tenant
-- rules are RESTRICTIVE and ANDed with it.
CREATE POLICY open_all ON orders AS PERMISSIVE USING (true) WITH CHECK (true);
BEGIN;
SELECT tenant_guard.set_context(:'acme') IS NOT NULL AS context_set;
SELECT * FROM pg_temp.acme_sees();
COMMIT;
DROP POLICY open_all ON orders;
-- The protection follows the table through RENAME and SET SCHEMA.
ALTER TABLE orders RENAME TO purchases;
ALTER TABLE purchases SET SCHEMA tg_dg_moved;
SELECT relid, tenant_guard.protection_drift(relid) FROM tenant_guard.protected ORDER BY relid::text;
ALTER TABLE tg_dg_moved.purchases NO FORCE ROW LEVEL SECURITY;
ALTER TABLE tg_dg_moved.purchases SET SCHEMA public;
ALTER TABLE purchases RENAME TO orders;

-- 4. The sanctioned way out: unprotect, change, protect again.
SELECT count(*) AS statements FROM tenant_guard.unprotect('orders');
ALTER TABLE orders NO FORCE ROW LEVEL SECURITY;
ALTER TABLE orders ALTER COLUMN tenant_id TYPE varchar(40);
SELECT count(*) AS statements FROM tenant_guard.protect('orders');
SELECT * FROM pg_temp.shape();
ALTER TABLE orders NO FORCE ROW LEVEL SECURITY;
-- tenant_guard's helpers pass the guard.
CREATE TABLE lines (id int PRIMARY KEY, order_id int, tenant_id varchar(40));
SELECT count(*) AS statements FROM tenant_guard.protect('lines');
SELECT count(*) AS statements FROM tenant_guard.enforce_not_null('lines');
SELECT count(*) AS statements FROM tenant_guard.add_tenant_fk('lines', '{order_id}', 'orders', '{id}');
SELECT tenant_guard.protection_drift('lines'), tenant_guard.protection_drift('orders');

-- 5. Partitions: PostgreSQL drops the row triggers a partition inherited
--    when it is detached; the guard protects the detached table on its own,
--    so it stays protected. DROP TABLE works.
CREATE TABLE events (id int, tenant_id text NOT NULL) PARTITION BY LIST (tenant_id);
CREATE TABLE events_acme PARTITION OF events FOR VALUES IN ('acme');
SELECT count(*) AS statements FROM tenant_guard.protect('events');
\set VERBOSITY terse
ALTER TABLE events DETACH PARTITION events_acme;
\set VERBOSITY sqlstate
SELECT relid, parent, tenant_guard.protection_drift(relid) FROM tenant_guard.protected
 WHERE relid::text LIKE 'events%' ORDER BY relid::text;
ALTER TABLE events_acme NO FORCE ROW LEVEL SECURITY;
DROP TABLE events_acme;
DROP TABLE events;
SELECT count(*) AS events_protected FROM tenant_guard.protected WHERE relid::text LIKE 'events%';

-- 6. Unprotected tables: every one of these works as before.
CREATE TABLE plain (id int, tenant_id text DEFAULT 'x' NOT NULL);
ALTER TABLE plain ENABLE ROW LEVEL SECURITY;
ALTER TABLE plain FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON plain USING (true);
ALTER POLICY p ON plain USING (tenant_id = 'x');
ALTER POLICY p ON plain RENAME TO q;
DROP POLICY q ON plain;
ALTER TABLE plain NO FORCE ROW LEVEL SECURITY;
ALTER TABLE plain DISABLE ROW LEVEL SECURITY;
CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER t BEFORE INSERT ON plain FOR EACH ROW EXECUTE FUNCTION pg_temp.noop();
ALTER TABLE plain DISABLE TRIGGER t;
ALTER TRIGGER t ON plain RENAME TO u;
DROP TRIGGER u ON plain;
ALTER TABLE plain ALTER COLUMN tenant_id DROP DEFAULT;
ALTER TABLE plain ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE plain ALTER COLUMN tenant_id TYPE varchar(40);
ALTER TABLE plain RENAME COLUMN tenant_id TO customer;
ALTER TABLE plain DROP COLUMN customer;
ALTER TABLE plain OWNER TO tg_dg_bypass;
DROP TABLE plain;

-- 7. The application role cannot open the emergency door.
SET tenant_guard.ddl_guard = off;
RESET ROLE;

-- 8. A superuser can, for one statement at a time; each is logged.
\set VERBOSITY default
SET tenant_guard.ddl_guard = off;
ALTER TABLE orders NO FORCE ROW LEVEL SECURITY;
RESET tenant_guard.ddl_guard;
\set VERBOSITY sqlstate

-- 9. A table that drifted before (here through the door): what was
--    missing when a statement started is not refused (a dump being
--    restored is in the same situation: its policies come after its data),
--    so harmless DDL passes, but any further weakening is refused, naming
--    only what it adds. protect repairs the table.
SET ROLE tg_dg_app;
ALTER TABLE orders ADD COLUMN extra int;
\set VERBOSITY default
ALTER TABLE orders ALTER COLUMN tenant_id DROP DEFAULT;
\set VERBOSITY sqlstate
SELECT tenant_guard.protection_drift('orders');
SELECT * FROM tenant_guard.protect('orders');
SELECT * FROM pg_temp.shape();

-- 10. A migration that recreates a table (Prisma's "redefine table":
--     create, copy, drop, rename). Without unprotect the copy is refused:
--     the owner reads nothing without a tenant context (FORCE).
BEGIN;
CREATE TABLE new_orders (id int PRIMARY KEY, tenant_id varchar(40) NOT NULL, body text, note text, extra int);
INSERT INTO new_orders SELECT id, tenant_id, body, note, extra FROM orders;
ROLLBACK;
--     The sanctioned migration: unprotect, recreate, protect. With
--     on_new_table = warn (set by the DBA) the new table is never silently
--     unprotected: its creation warns until protect runs.
RESET ROLE;
SET tenant_guard.on_new_table = warn;
SET ROLE tg_dg_app;
BEGIN;
SELECT count(*) AS statements FROM tenant_guard.unprotect('orders');
\set VERBOSITY terse
CREATE TABLE new_orders (id int PRIMARY KEY, tenant_id varchar(40) NOT NULL, body text, note text, extra int);
\set VERBOSITY sqlstate
INSERT INTO new_orders SELECT id, tenant_id, body, note, extra FROM orders;
DROP TABLE lines;
DROP TABLE orders;
ALTER TABLE new_orders RENAME TO orders;
SELECT count(*) AS statements FROM tenant_guard.protect('orders');
COMMIT;
SELECT relid, tenant_guard.protection_drift(relid) FROM tenant_guard.protected ORDER BY relid::text;
BEGIN;
SELECT tenant_guard.set_context(:'acme') IS NOT NULL AS context_set;
SELECT * FROM pg_temp.acme_sees();
COMMIT;
ALTER TABLE orders DISABLE ROW LEVEL SECURITY;
RESET ROLE;
RESET tenant_guard.on_new_table;

-- 11. The tenant column's type: giving the enum or domain to another role,
-- or adding a domain check that calls another role's function, would let
-- that role's code run for every writer (protect refuses such a column);
-- so the guard refuses it, for the DBA too. A harmless change of the type
-- goes through.
CREATE TYPE tg_dg_tenant AS ENUM ('acme', 'globex');
CREATE DOMAIN tg_dg_tid AS tg_dg_tenant;
CREATE TABLE boards (id int PRIMARY KEY, tenant_id tg_dg_tid NOT NULL);
SELECT count(*) > 0 AS protected FROM tenant_guard.protect('boards');
SET ROLE tg_dg_app;
CREATE FUNCTION public.tg_dg_valid(tg_dg_tenant) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
RESET ROLE;
\set VERBOSITY default
ALTER TYPE tg_dg_tenant OWNER TO tg_dg_app;
\set VERBOSITY sqlstate
ALTER DOMAIN tg_dg_tid OWNER TO tg_dg_app;
ALTER DOMAIN tg_dg_tid ADD CONSTRAINT tg_dg_valid CHECK (public.tg_dg_valid(VALUE)) NOT VALID;
-- A cast from text to the enum calling a function: refused too (protect
-- accepts only built-in functions there).
CREATE FUNCTION public.tg_dg_from_text(text) RETURNS tg_dg_tenant LANGUAGE sql IMMUTABLE
  AS $$ SELECT $1::name::text::tg_dg_tenant $$;
CREATE CAST (text AS tg_dg_tenant) WITH FUNCTION public.tg_dg_from_text(text);
ALTER TYPE tg_dg_tenant ADD VALUE 'initech';
SELECT pg_catalog.pg_get_userbyid(typowner) AS owner, typname FROM pg_type
 WHERE typname IN ('tg_dg_tenant', 'tg_dg_tid') ORDER BY typname;
SELECT tenant_guard.protection_drift('boards');
DROP TABLE boards;
DROP DOMAIN tg_dg_tid;
DROP FUNCTION public.tg_dg_valid(tg_dg_tenant), public.tg_dg_from_text(text);
DROP TYPE tg_dg_tenant;

-- 12. tenant_guard's own triggers, recreated under their names with the
-- same function but a WHEN condition that never holds, or firing for
-- another column only, would never fire: TRUNCATE would empty every
-- tenant's rows, a bypass context could move a row to another tenant. A
-- partition's clone of the row trigger cannot be replaced or dropped on its
-- own, but it can be disabled there. All refused (the table's owner may
-- otherwise create triggers on it).
SET ROLE tg_dg_app;
CREATE OR REPLACE TRIGGER tenant_guard_no_truncate BEFORE TRUNCATE ON orders
  FOR EACH STATEMENT WHEN (false) EXECUTE FUNCTION tenant_guard_internal.refuse_truncate();
CREATE OR REPLACE TRIGGER tenant_guard_immutable_tenant BEFORE UPDATE OF body ON orders
  FOR EACH ROW EXECUTE FUNCTION tenant_guard_internal.refuse_tenant_change('tenant_id');
CREATE TABLE parts (id int, tenant_id text NOT NULL) PARTITION BY LIST (tenant_id);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES IN ('acme', 'globex');
SELECT count(*) > 0 AS protected FROM tenant_guard.protect('parts');
ALTER TABLE parts_1 DISABLE TRIGGER tenant_guard_immutable_tenant_p;
ALTER TABLE parts_1 ENABLE REPLICA TRIGGER tenant_guard_immutable_tenant_p;
SELECT * FROM pg_temp.shape();
RESET ROLE;
-- Let through (the emergency door), the changes work: a tenant context
-- truncates the table. protection_drift names each; protect repairs them
-- (the clone is enabled again, as it cannot be recreated).
SET tenant_guard.ddl_guard = off;
CREATE OR REPLACE TRIGGER tenant_guard_no_truncate BEFORE TRUNCATE ON orders
  FOR EACH STATEMENT WHEN (false) EXECUTE FUNCTION tenant_guard_internal.refuse_truncate();
CREATE OR REPLACE TRIGGER tenant_guard_immutable_tenant BEFORE UPDATE OF body ON orders
  FOR EACH ROW EXECUTE FUNCTION tenant_guard_internal.refuse_tenant_change('tenant_id');
ALTER TABLE parts_1 DISABLE TRIGGER tenant_guard_immutable_tenant_p;
RESET tenant_guard.ddl_guard;
SELECT tenant_guard.protection_drift('orders') AS orders,
       tenant_guard.protection_drift('parts_1') AS parts_1;
BEGIN;
SELECT tenant_guard.set_context(:'acme') IS NOT NULL AS context_set;
TRUNCATE orders;
ROLLBACK;
SELECT * FROM tenant_guard.protect('orders');
SELECT * FROM tenant_guard.protect('parts_1');
SELECT tenant_guard.protection_drift('orders') AS orders,
       tenant_guard.protection_drift('parts_1') AS parts_1;
BEGIN;
SELECT tenant_guard.set_context(:'acme') IS NOT NULL AS context_set;
TRUNCATE orders;
ROLLBACK;
SELECT * FROM pg_temp.shape();
DROP TABLE parts;

DROP TABLE orders;
DROP FUNCTION pg_temp.shape(), pg_temp.acme_sees(), pg_temp.noop();
DROP SCHEMA tg_dg_moved;
DROP EXTENSION tenant_guard;
REVOKE CREATE ON SCHEMA public FROM tg_dg_app, tg_dg_bypass;
DROP ROLE tg_dg_app;
DROP ROLE tg_dg_other;
DROP ROLE tg_dg_bypass;
