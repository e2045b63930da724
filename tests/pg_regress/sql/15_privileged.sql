-- Tests that set_context, the key ring and the registry cannot be hijacked
-- Every statement tenant_guard runs with rights other than the caller's
-- pins search_path to pg_catalog, pg_temp and names every object with its
-- schema; the registry look-up runs as the registry table's owner. The
-- attacker below holds only PostgreSQL's default privileges (TEMP) plus,
-- for one check, EXECUTE on add_key. Every attacker function advances the
-- sequence tg_priv_ran (sequences survive rollbacks) and tries to make its
-- role a superuser.
CREATE EXTENSION tenant_guard;
CREATE ROLE tg_priv_app LOGIN;
CREATE ROLE tg_priv_keyadmin LOGIN;
GRANT EXECUTE ON FUNCTION tenant_guard.add_key(text, bytea, text, timestamptz) TO tg_priv_keyadmin;
CREATE SEQUENCE tg_priv_ran;
GRANT USAGE, SELECT, UPDATE ON SEQUENCE tg_priv_ran TO PUBLIC;
SELECT tenant_guard.add_key('priv', decode(repeat('c3', 32), 'hex'));
CREATE TABLE tg_priv_tenants (id text PRIMARY KEY, active boolean NOT NULL);
INSERT INTO tg_priv_tenants VALUES ('acme', true), ('suspended', false);
SELECT tenant_guard.use_registry('tg_priv_tenants', 'id', 'active');
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset
SELECT tenant_guard.sign('{"tenant_id": "suspended", "exp": 4102444800}') AS suspended \gset
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'exp', extract(epoch FROM now())::bigint + 300)) AS bypass \gset

-- What every check ends with: nobody was elevated, no attacker code ran.
CREATE FUNCTION tg_priv_verdict() RETURNS TABLE (any_role_elevated boolean, attacker_code_ran bigint)
LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname LIKE 'tg\_priv\_%'
                    AND (rolsuper OR rolbypassrls OR rolcreaterole)),
         (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM tg_priv_ran)
$$;

SET ROLE tg_priv_app;
CREATE FUNCTION pg_temp.pwn() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nextval('public.tg_priv_ran');
  BEGIN
    EXECUTE 'ALTER ROLE tg_priv_app SUPERUSER';
  EXCEPTION WHEN others THEN NULL;
  END;
  RETURN true;
END $$;
-- A temporary view named like the registry table, and domains named like
-- the catalog types tenant_guard casts to, all calling the attacker.
CREATE TEMP VIEW tg_priv_tenants AS SELECT 'suspended'::text AS id, pg_temp.pwn() AS active;
CREATE TEMP TABLE keys (kid text, algorithm text, secret bytea, expires_at timestamptz, retired_at timestamptz);
CREATE DOMAIN pg_temp.float8 AS pg_catalog.float8 CHECK (pg_temp.pwn());
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.pwn());
CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (pg_temp.pwn());
SET search_path = pg_temp, public;

-- The suspended tenant stays refused, the active one is accepted.
\set VERBOSITY sqlstate
BEGIN;
SELECT tenant_guard.set_context(:'suspended');
ROLLBACK;
\set VERBOSITY default
BEGIN;
SELECT tenant_guard.set_context(:'acme');
ROLLBACK;
-- A bypass token reads the real registry's active tenants only.
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS bypass_set,
       tenant_guard.visible_tenants() AS readable;
ROLLBACK;
RESET search_path;
RESET ROLE;
SELECT * FROM tg_priv_verdict();

-- A key administrator (EXECUTE on add_key only) with the same traps (the
-- temporary schema is the session's: the ones above are still there).
SET ROLE tg_priv_keyadmin;
CREATE DOMAIN pg_temp.bytea AS pg_catalog.bytea CHECK (pg_temp.pwn());
CREATE DOMAIN pg_temp.timestamptz AS pg_catalog.timestamptz CHECK (pg_temp.pwn());
CREATE DOMAIN pg_temp.bool AS pg_catalog.bool CHECK (pg_temp.pwn());
SET search_path = pg_temp, public;
SELECT tenant_guard.add_key('priv2', decode(repeat('d4', 32), 'hex'), 'HS256', '2100-01-01');
-- It still cannot read secrets.
\set VERBOSITY sqlstate
SELECT secret FROM tenant_guard.keys;
\set VERBOSITY default
RESET search_path;
RESET ROLE;
SELECT kid, status FROM tenant_guard.key_status ORDER BY kid;
SELECT * FROM tg_priv_verdict();

-- A registry table owned by the application role: the look-up runs as that
-- role (restricted), so what it attached to the table runs with its rights
-- only, never the extension owner's.
CREATE TABLE tg_priv_app_tenants (id bigint PRIMARY KEY, active boolean);
INSERT INTO tg_priv_app_tenants VALUES (1, true), (2, false);
ALTER TABLE tg_priv_app_tenants OWNER TO tg_priv_app;
SELECT tenant_guard.use_registry('tg_priv_app_tenants', 'id', 'active');
GRANT CREATE ON SCHEMA public TO tg_priv_app;
SET ROLE tg_priv_app;
CREATE FUNCTION public.tg_priv_seen(bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nextval('public.tg_priv_ran');
  RETURN true;
END $$;
-- A policy calling attacker code (it would run if row-level security applied).
ALTER TABLE tg_priv_app_tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tg_priv_app_tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY seen ON tg_priv_app_tenants USING (public.tg_priv_seen(id));
RESET ROLE;
SELECT tenant_guard.sign('{"tenant_id": 1, "exp": 4102444800}', 'priv') AS one \gset
SELECT tenant_guard.sign('{"tenant_id": 2, "exp": 4102444800}', 'priv') AS two \gset
SET ROLE tg_priv_app;
BEGIN;
SELECT tenant_guard.set_context(:'one');
ROLLBACK;
\set VERBOSITY sqlstate
BEGIN;
SELECT tenant_guard.set_context(:'two');
ROLLBACK;
\set VERBOSITY default
RESET ROLE;
-- The owner's forced row-level security does not hide tenants from the
-- check (it runs like a referential check), so the policy never ran.
SELECT * FROM tg_priv_verdict();

-- Renaming or moving the registry table is followed; dropping it fails
-- closed: every tenant is refused until use_registry is run again.
CREATE SCHEMA tg_priv_moved;
GRANT USAGE ON SCHEMA tg_priv_moved TO tg_priv_app;
ALTER TABLE tg_priv_app_tenants SET SCHEMA tg_priv_moved;
ALTER TABLE tg_priv_moved.tg_priv_app_tenants RENAME TO renamed_tenants;
SET ROLE tg_priv_app;
BEGIN;
SELECT tenant_guard.set_context(:'one');
ROLLBACK;
RESET ROLE;
DROP TABLE tg_priv_moved.renamed_tenants;
SET ROLE tg_priv_app;
\set VERBOSITY terse
BEGIN;
SELECT tenant_guard.set_context(:'one');
ROLLBACK;
\set VERBOSITY default
RESET ROLE;

-- An id column of a type that would need a cast is refused.
CREATE TYPE tg_priv_color AS ENUM ('red', 'green');
CREATE TABLE tg_priv_colors (id tg_priv_color PRIMARY KEY);
SELECT tenant_guard.use_registry('tg_priv_colors', 'id');

SELECT * FROM tg_priv_verdict();

-- The attacker's temporary objects above live in this test session's own
-- temporary schema (a real attacker cannot put them in a DBA's session:
-- PostgreSQL refuses temporary types and relations inside a restricted
-- operation). Drop them before the DBA works on.
DISCARD TEMP;

-- A database owner cannot change what tenant_guard's SQL means through the
-- settings it may impose: standard_conforming_strings = off breaks nothing.
SELECT tenant_guard.use_registry('tg_priv_tenants', 'id', 'active');
CREATE TABLE tg_priv_items (tenant_id text NOT NULL, id int PRIMARY KEY);
SELECT count(*) AS ddl FROM tenant_guard.protect('tg_priv_items');
SET standard_conforming_strings = off;
SELECT tenant_guard.protection_drift('tg_priv_items') AS drift;
SELECT policies_current, phase FROM tenant_guard.status WHERE table_name = 'tg_priv_items'::regclass;
RESET standard_conforming_strings;
-- ... nor redirect the generators to another column: the setting is
-- superuser-only.
SET ROLE tg_priv_app;
\set VERBOSITY sqlstate
SET tenant_guard.tenant_column = 'id';
\set VERBOSITY default
RESET ROLE;

-- The registry cannot be probed for tenant ids through the orphan count:
-- the caller must be able to read the registry itself.
GRANT EXECUTE ON FUNCTION tenant_guard_internal.count_orphan_tenant_rows(regclass, text) TO tg_priv_app;
SET ROLE tg_priv_app;
CREATE TEMP TABLE guesses (tenant_id text);
INSERT INTO guesses VALUES ('acme'), ('initech');
\set VERBOSITY sqlstate
SELECT * FROM tenant_guard_internal.count_orphan_tenant_rows('pg_temp.guesses', 'tenant_id');
\set VERBOSITY terse
SELECT * FROM tenant_guard_internal.count_orphan_tenant_rows('pg_temp.guesses', 'tenant_id');
\set VERBOSITY default
RESET ROLE;
DROP TABLE pg_temp.guesses;

-- A partition keeps its owner when its parent's changes: the advisor names
-- a partition a login role owns.
CREATE TABLE tg_priv_parts (tenant_id text NOT NULL, id int) PARTITION BY LIST (tenant_id);
CREATE TABLE tg_priv_parts_acme PARTITION OF tg_priv_parts FOR VALUES IN ('acme');
ALTER TABLE tg_priv_parts_acme OWNER TO tg_priv_app;
SELECT count(*) AS ddl FROM tenant_guard.protect('tg_priv_parts');
SELECT code, object FROM tenant_guard.advisor
 WHERE code = 'login_role_owns_tenant_table' ORDER BY object;
DROP TABLE tg_priv_parts, tg_priv_items;
SELECT * FROM tg_priv_verdict();

-- The registry's trigger (tenant_guard_registry_changed) depends on the
-- extension: use_registry(NULL) removes it before DROP EXTENSION.
SELECT tenant_guard.use_registry(NULL);
DROP EXTENSION tenant_guard;
DROP SCHEMA tg_priv_moved;
REVOKE CREATE ON SCHEMA public FROM tg_priv_app;
DROP TABLE public.tg_priv_tenants, public.tg_priv_colors;
DROP TYPE tg_priv_color;
DROP FUNCTION tg_priv_verdict();
DROP FUNCTION public.tg_priv_seen(bigint);
DROP SEQUENCE tg_priv_ran;
DROP ROLE tg_priv_app;
DROP ROLE tg_priv_keyadmin;
