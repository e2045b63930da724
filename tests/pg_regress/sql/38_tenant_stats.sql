-- Tests tenant_guard.tenant_stats: per tenant of the context, each counter moves with the event it names
--
-- This cluster does not load tenant_guard through shared_preload_libraries,
-- so the table is this backend's (the view says so with a NOTICE and
-- scope = 'backend'); tests/stats runs it cluster-wide, across sessions,
-- and shows eviction at tenant_guard.tenant_stats_max. Each step below
-- empties the table, runs a workload as the application role and lists
-- what it counted.
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('k1', decode(repeat('a1', 32), 'hex'));
CREATE ROLE tg_tstats_app LOGIN;
CREATE ROLE tg_tstats_monitor LOGIN IN ROLE pg_read_all_stats;
\set VERBOSITY sqlstate

CREATE SCHEMA spec;
CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL, item text);
INSERT INTO orders VALUES (1, 'acme', 'anvil'), (2, 'acme', 'rocket'), (3, 'globex', 'gizmo');
SELECT count(*) > 0 AS protected FROM tenant_guard.protect('orders');
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO tg_tstats_app;
-- A function running three queries (one statement when called).
CREATE FUNCTION spec.three_queries() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  SELECT count(*) INTO n FROM orders;
  SELECT count(*) INTO n FROM orders;
  RETURN (SELECT count(*) FROM orders);
END $$;
GRANT USAGE ON SCHEMA spec TO tg_tstats_app;
-- The counters of every tenant, as rows (time separately: it is not exact).
CREATE VIEW spec.counted AS
  SELECT tenant, transactions, statements, rows_returned, rows_written, denials
    FROM tenant_guard.tenant_stats ORDER BY tenant;

SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset
SELECT tenant_guard.sign('{"tenant_id": "globex", "exp": 4102444800}') AS globex \gset

-- The view: one row per tenant. Without shared_preload_libraries it
-- counts this backend and says so; empty until tracking is on.
\set VERBOSITY default
SELECT * FROM tenant_guard.tenant_stats;
\set VERBOSITY sqlstate
SET client_min_messages = warning;

-- Tracking is off by default: a context's statements count nothing.
SHOW tenant_guard.track_tenants;
SET ROLE tg_tstats_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT id FROM orders ORDER BY id;
COMMIT;
RESET ROLE;
SELECT * FROM spec.counted;

-- On (a superuser's setting): 3 statements as acme in one transaction
-- (2 rows returned, then 1; 1 row written), 2 as globex in another (1 row
-- returned, 1 written). The set_context statements themselves started
-- without a context: not counted. Nor are the superuser's statements
-- without a context (reading the view, RESET ROLE).
SET tenant_guard.track_tenants = on;
SET ROLE tg_tstats_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT id FROM orders ORDER BY id;
SELECT count(*) FROM orders;
UPDATE orders SET item = item WHERE id = 1;
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(:'globex');
SELECT id FROM orders ORDER BY id;
INSERT INTO orders VALUES (4, 'globex', 'gear');
COMMIT;
RESET ROLE;
SELECT * FROM spec.counted;
SELECT count(*) AS rows, bool_and(database = current_database()) AS this_database,
       bool_and(last_seen <= now() AND last_seen > now() - interval '1 hour') AS last_seen_now,
       bool_and(scope = 'backend') AS per_backend
  FROM tenant_guard.tenant_stats;

-- reset_tenant_stats empties the table and moves stats_reset; reset_stats
-- (tenant_guard.stats) leaves it alone.
SELECT tenant_guard.reset_stats() IS NOT NULL AS stats_reset;
SELECT count(*) AS tenants_kept FROM tenant_guard.tenant_stats;
SELECT tenant_guard.reset_tenant_stats() AS first_reset \gset
SELECT count(*) AS tenants_left FROM tenant_guard.tenant_stats;
SELECT pg_sleep(0.01);
SELECT tenant_guard.reset_tenant_stats() > :'first_reset' AS stats_reset_advances;

-- Denials: as acme, a cross-tenant INSERT (the insert policy) and a tenant
-- change (the tenant-keeping trigger), each refused with 42501 in its own
-- savepoint. Two denials and one transaction; the refused statements did
-- not run to their end, so they are not statements.
SET ROLE tg_tstats_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SAVEPOINT s;
INSERT INTO orders VALUES (10, 'globex', 'trojan');
ROLLBACK TO s;
UPDATE orders SET tenant_id = 'globex' WHERE id = 1;
ROLLBACK;
RESET ROLE;
SELECT * FROM spec.counted;
SELECT tenant_guard.reset_tenant_stats() IS NOT NULL AS reset;

-- Top-level statements only: a function running three queries is one
-- statement (its one row returned); a DO block's statements have no query
-- around them, so each counts (PERFORM returns acme's 2 rows, the UPDATE
-- writes 2); SQL PREPARE / EXECUTE counts each EXECUTE; EXPLAIN without
-- ANALYZE runs nothing and counts nothing.
SET ROLE tg_tstats_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT spec.three_queries();
DO $$ BEGIN PERFORM id FROM orders; UPDATE orders SET item = item; END $$;
PREPARE one AS SELECT item FROM orders WHERE id = 2;
EXECUTE one;
EXECUTE one;
EXPLAIN (COSTS OFF) SELECT id FROM orders WHERE id = 2;
COMMIT;
RESET ROLE;
SELECT * FROM spec.counted;
SELECT tenant_guard.reset_tenant_stats() IS NOT NULL AS reset;

-- A transaction that switches tenants counts for each. The statement that
-- switches (set_context) started under the first tenant: it is the first
-- tenant's. A rolled-back transaction counts too.
SET ROLE tg_tstats_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT count(*) FROM orders;
SELECT tenant_guard.set_context(:'globex');
SELECT count(*) FROM orders;
ROLLBACK;
RESET ROLE;
SELECT * FROM spec.counted;
SELECT tenant_guard.reset_tenant_stats() IS NOT NULL AS reset;

-- Execution time: a statement sleeping 50 ms adds at least 50 ms.
SET ROLE tg_tstats_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT pg_sleep(0.05);
COMMIT;
RESET ROLE;
SELECT tenant, statements, total_exec_time >= 50 AS at_least_50_ms, total_exec_time < 10000 AS under_10_s
  FROM tenant_guard.tenant_stats;
SELECT tenant_guard.reset_tenant_stats() IS NOT NULL AS reset;

-- Tracking off again: nothing more is counted.
SET tenant_guard.track_tenants = off;
SET ROLE tg_tstats_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT count(*) FROM orders;
COMMIT;
RESET ROLE;
SELECT * FROM spec.counted;
SET tenant_guard.track_tenants = on;
BEGIN;
SELECT tenant_guard.set_context(:'globex');
SELECT count(*) FROM orders;
COMMIT;

-- Who may read it: tenant ids are business data, so like
-- pg_stat_statements only pg_read_all_stats (and superusers) read the
-- view; the application role gets 42501, also calling the function behind
-- it, and cannot reset it or switch tracking. (tenant_stats_max, the
-- table's bound, is set at server start and exists only with
-- shared_preload_libraries: tests/stats.)
SET ROLE tg_tstats_app;
SELECT * FROM tenant_guard.tenant_stats;
SELECT * FROM tenant_guard_internal.tenant_stats_rows();
SELECT tenant_guard.reset_tenant_stats();
SET tenant_guard.track_tenants = off;
RESET ROLE;
SET ROLE tg_tstats_monitor;
SELECT tenant, transactions, statements FROM tenant_guard.tenant_stats;
SELECT tenant_guard.reset_tenant_stats();
RESET ROLE;
SELECT grantee, privilege_type FROM information_schema.role_table_grants
 WHERE table_schema = 'tenant_guard' AND table_name = 'tenant_stats' AND grantee <> current_user
 ORDER BY 1, 2;
SELECT name, setting, context FROM pg_settings
 WHERE name IN ('tenant_guard.track_tenants', 'tenant_guard.tenant_stats_max') ORDER BY name;
RESET tenant_guard.track_tenants;
RESET client_min_messages;

DROP EXTENSION tenant_guard CASCADE;
DROP SCHEMA spec CASCADE;
DROP TABLE orders;
DROP ROLE tg_tstats_app;
DROP ROLE tg_tstats_monitor;
