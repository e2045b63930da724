-- Tests rollout(): prepare, tighten, enforce over a schema with dirty data
CREATE EXTENSION tenant_guard;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE ROLE tg_roll_app LOGIN;

CREATE SCHEMA app;
CREATE TABLE app."Org" (id int PRIMARY KEY, "tenantId" text);
CREATE TABLE app."Ticket" (id int PRIMARY KEY, "tenantId" text, "orgId" int REFERENCES app."Org" (id));
CREATE TABLE app.currencies (code text PRIMARY KEY);
INSERT INTO app."Org" VALUES (1, 'acme'), (2, 'globex');
INSERT INTO app."Ticket" VALUES (1, 'acme', 1), (2, NULL, 1), (3, NULL, 2), (4, 'globex', 1);
GRANT USAGE ON SCHEMA app TO tg_roll_app;
GRANT SELECT ON ALL TABLES IN SCHEMA app TO tg_roll_app;

-- Dry run is the default: the DDL, nothing changed.
SELECT * FROM tenant_guard.rollout('prepare', 'app', tenant_column => 'tenantId');
SELECT count(*) AS protected FROM tenant_guard.protected;

-- prepare: permissive policies, not forced. Rows without a tenant remain
-- readable while the application starts calling set_context.
SELECT count(*) FROM tenant_guard.rollout('prepare', 'app', 'tenantId', dry_run => false);
SELECT table_name, mode, rls_forced, phase FROM tenant_guard.status
 WHERE table_name::text LIKE 'app.%' ORDER BY 1;

-- tighten is refused while the audits find dirt, with every blocker listed,
-- and changes nothing at all (compare the catalog before and after).
CREATE TEMP TABLE before AS
  SELECT polrelid::regclass::text AS rel, polname, pg_get_expr(polqual, polrelid) AS qual FROM pg_policy;
SELECT count(*) FROM tenant_guard.rollout('tighten', 'app', 'tenantId', dry_run => false);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS changed_policies FROM (
  (SELECT polrelid::regclass::text, polname, pg_get_expr(polqual, polrelid) FROM pg_policy EXCEPT SELECT * FROM before)
  UNION ALL
  (SELECT * FROM before EXCEPT SELECT polrelid::regclass::text, polname, pg_get_expr(polqual, polrelid) FROM pg_policy)) d;
SELECT table_name, mode, phase FROM tenant_guard.status WHERE table_name::text LIKE 'app.%' ORDER BY 1;

-- Fix: backfill from the organisation, repair the cross-tenant ticket.
SET client_min_messages = warning;
SELECT tenant_guard.backfill_tenant('app."Ticket"', 'Ticket_orgId_fkey', tenant_column => 'tenantId');
RESET client_min_messages;
UPDATE app."Ticket" SET "orgId" = 2 WHERE id = 4;
SELECT count(*) FROM tenant_guard.rollout('tighten', 'app', 'tenantId', dry_run => false);
SELECT table_name, mode, rls_forced, phase FROM tenant_guard.status
 WHERE table_name::text LIKE 'app.%' ORDER BY 1;

-- enforce: NOT NULL, composite keys, forced row-level security. Its dry run
-- lists the statements the real run executes, in the same order, except that
-- it builds indexes CONCURRENTLY (statements to run one per transaction on a
-- live table; CONCURRENTLY cannot run inside a function).
CREATE TEMP TABLE planned AS
  SELECT * FROM tenant_guard.rollout('enforce', 'app', 'tenantId') WITH ORDINALITY AS d(ddl, n);
SELECT ddl FROM planned WHERE ddl LIKE '%CONCURRENTLY%' ORDER BY n;
CREATE TEMP TABLE executed AS
  SELECT * FROM tenant_guard.rollout('enforce', 'app', 'tenantId', dry_run => false) WITH ORDINALITY AS d(ddl, n);
SELECT ddl FROM executed ORDER BY n;
SELECT count(*) AS differences
  FROM ((SELECT replace(ddl, ' CONCURRENTLY', ''), n FROM planned EXCEPT TABLE executed)
        UNION ALL (TABLE executed EXCEPT SELECT replace(ddl, ' CONCURRENTLY', ''), n FROM planned)) d;
SELECT table_name, nullable, rls_forced, composite_fks, tenant_blind_fks, phase
  FROM tenant_guard.status WHERE table_name::text LIKE 'app.%' ORDER BY 1;
-- Running a phase again changes nothing.
SELECT count(*) AS statements FROM tenant_guard.rollout('enforce', 'app', 'tenantId', dry_run => false);

-- Bad input.
SELECT * FROM tenant_guard.rollout('finish', 'app');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenant_guard.rollout('prepare', 'nope');
\echo :LAST_ERROR_SQLSTATE
SET ROLE tg_roll_app;
SELECT * FROM tenant_guard.rollout('prepare', 'app');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

DROP SCHEMA app CASCADE;
DROP EXTENSION tenant_guard;
DROP ROLE tg_roll_app;
