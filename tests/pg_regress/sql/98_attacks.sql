-- Tests attacks not covered elsewhere, as an application role and as the
-- table's owner: COPY, leaky functions, unique-key probes, held cursors,
-- owner privileges
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('main', decode(repeat('a1', 32), 'hex'));
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE ROLE tg_atk_app LOGIN;
CREATE ROLE tg_atk_owner LOGIN;
CREATE TABLE accounts (id int PRIMARY KEY, tenant_id text NOT NULL, email text NOT NULL,
                       CONSTRAINT accounts_email_key UNIQUE (email));
INSERT INTO accounts VALUES (1, 'acme', 'boss@acme.test'), (2, 'globex', 'ceo@globex.test');
SELECT count(*) FROM tenant_guard.protect('accounts');
GRANT SELECT, INSERT, UPDATE, DELETE ON accounts TO tg_atk_app;
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset
SELECT tenant_guard.sign('{"tenant_id": "globex", "exp": 4102444800}') AS globex \gset

SET ROLE tg_atk_app;

-- COPY ... TO copies only the rows the context may read.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
COPY accounts TO STDOUT;
COPY (SELECT * FROM accounts) TO STDOUT;
ROLLBACK;
-- COPY ... FROM into a table with row-level security is refused by
-- PostgreSQL; load through INSERT (which the policies check). (\copy: the
-- server refuses before any data is sent, and psql versions differ in what
-- they do with inline COPY data that was never requested.)
BEGIN;
SELECT tenant_guard.set_context(:'acme');
\copy accounts FROM '/dev/null'
ROLLBACK;

-- A function in the WHERE clause that leaks its arguments only ever sees
-- the rows the policies let through: the tenant rule runs first.
RESET ROLE;
CREATE FUNCTION public.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS
$$ BEGIN RAISE NOTICE 'leak saw %', $1; RETURN true; END $$;
SET ROLE tg_atk_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT id FROM accounts WHERE leak(email);
ROLLBACK;

-- Unique-key probe: with a tenant-blind UNIQUE (email), a tenant learns that
-- another tenant uses an address from the duplicate-key error.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
INSERT INTO accounts (id, email) VALUES (3, 'ceo@globex.test');
ROLLBACK;
-- scope_unique makes the key per tenant: the same insert now succeeds, so
-- the error no longer says anything about other tenants.
RESET ROLE;
SELECT count(*) FROM tenant_guard.scope_unique('accounts', 'accounts_email_key');
SET ROLE tg_atk_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
INSERT INTO accounts (id, email) VALUES (3, 'ceo@globex.test') RETURNING tenant_id, email;
INSERT INTO accounts (id, email) VALUES (4, 'boss@acme.test');
ROLLBACK;

-- A cursor held across COMMIT keeps the rows it read under its context
-- (materialized at COMMIT): it never shows rows of another tenant, even when
-- fetched under another context or none.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
DECLARE held CURSOR WITH HOLD FOR SELECT id, tenant_id FROM accounts ORDER BY id;
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(:'globex');
FETCH ALL FROM held;
COMMIT;
CLOSE held;
-- A held cursor declared without a context fails at once.
BEGIN;
DECLARE held2 CURSOR WITH HOLD FOR SELECT id FROM accounts;
COMMIT;

-- The application role can neither switch protection off nor mint tokens.
ALTER TABLE accounts DISABLE ROW LEVEL SECURITY;
ALTER TABLE accounts NO FORCE ROW LEVEL SECURITY;
DROP POLICY tenant_guard_select ON accounts;
SELECT tenant_guard.sign('{"tenant_id": "globex", "exp": 4102444800}');
SELECT tenant_guard.add_key('mine', decode(repeat('b2', 32), 'hex'));
SELECT * FROM tenant_guard.rollout('prepare');
SELECT * FROM tenant_guard.unprotect('accounts');
RESET ROLE;

-- The table owner is bound by the policies too (FORCE), and cannot forge a
-- context either ...
ALTER TABLE accounts OWNER TO tg_atk_owner;
SET ROLE tg_atk_owner;
SELECT count(*) FROM accounts;
SET tenant_guard.context = 'globex';
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT id, tenant_id FROM accounts ORDER BY id;
UPDATE accounts SET email = 'x' WHERE tenant_id = 'globex' RETURNING id;
COPY accounts TO STDOUT;
ROLLBACK;
-- ... and PostgreSQL lets owners alter their tables, but the DDL guard
-- refuses switching row-level security off (42501), so the owner still sees
-- nothing without a context. The advisor still reports application roles
-- that own tenant tables (login_role_owns_tenant_table).
ALTER TABLE accounts NO FORCE ROW LEVEL SECURITY;
SELECT count(*) AS rows_visible_to_owner_without_force FROM accounts;
RESET ROLE;
SELECT code, object FROM tenant_guard.advisor
 WHERE code IN ('login_role_owns_tenant_table', 'rls_not_forced') ORDER BY 1;

ALTER TABLE accounts OWNER TO postgres;
DROP TABLE accounts;
DROP FUNCTION public.leak(text);
DROP EXTENSION tenant_guard;
DROP ROLE tg_atk_app;
DROP ROLE tg_atk_owner;

-- Side channels tenant_guard cannot close (see SECURITY.md): EXPLAIN ANALYZE
-- reports how many rows the tenant rule removed; pg_stats, on the other
-- hand, shows nothing for a table whose row-level security applies.
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('main', decode(repeat('a1', 32), 'hex'));
CREATE ROLE tg_side_app LOGIN;
CREATE TABLE side (id int, tenant_id text NOT NULL);
INSERT INTO side SELECT g, CASE WHEN g % 10 = 0 THEN 'acme' ELSE 'globex' END FROM generate_series(1, 1000) g;
ANALYZE side;
SELECT count(*) FROM tenant_guard.protect('side');
GRANT SELECT ON side TO tg_side_app;
CREATE FUNCTION public.plan_numbers(q text) RETURNS TABLE (rows_returned numeric, rows_removed_by_filter numeric)
LANGUAGE plpgsql AS $$
DECLARE p jsonb;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON, TIMING OFF, SUMMARY OFF) ' || q INTO p;
  RETURN QUERY SELECT round((p->0->'Plan'->>'Actual Rows')::numeric), round((p->0->'Plan'->>'Rows Removed by Filter')::numeric);
END $$;
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset
SET ROLE tg_side_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT * FROM public.plan_numbers('SELECT * FROM side');
SELECT count(*) AS pg_stats_rows FROM pg_stats WHERE tablename = 'side';
ROLLBACK;
RESET ROLE;
DROP TABLE side;
DROP FUNCTION public.plan_numbers(text);
DROP EXTENSION tenant_guard;
DROP ROLE tg_side_app;
