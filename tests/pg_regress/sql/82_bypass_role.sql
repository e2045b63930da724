-- Tests bypass through a role: tenant_guard.bypass_role
-- With the setting naming a role that has BYPASSRLS (and is not a
-- superuser), a verified bypass token makes the rest of its transaction run
-- as that role: row-level security does not apply to it, so support queries
-- cost what they cost the table's owner, whatever the number of tenants, and
-- no registry is needed. Leaving is automatic: at commit or rollback, when
-- the context changes, and when a rollback to a savepoint undoes the
-- set_context. A token that expires inside the transaction stops it at the
-- next statement.
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('main', decode(repeat('b2', 32), 'hex'));
CREATE ROLE tg_br_app LOGIN;
CREATE ROLE tg_br_support NOLOGIN BYPASSRLS;
CREATE ROLE tg_br_plain NOLOGIN;
CREATE ROLE tg_br_super NOLOGIN SUPERUSER BYPASSRLS;
CREATE ROLE tg_br_creator NOLOGIN CREATEROLE BYPASSRLS;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE tickets (id int PRIMARY KEY, tenant_id text NOT NULL, title text);
CREATE INDEX ON tickets (tenant_id);
INSERT INTO tickets VALUES (1, 'acme', 'a'), (2, 'globex', 'g'), (3, 'orphan-7', 'o');
GRANT SELECT, INSERT, UPDATE ON tickets TO tg_br_app, tg_br_support;
SELECT count(*) FROM tenant_guard.protect('tickets');

SELECT extract(epoch FROM now())::bigint AS now_s \gset
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'sub', 'support', 'iat', :now_s, 'exp', :now_s + 600)) AS bypass \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'sub', 'x", kid "k9', 'iat', :now_s, 'exp', :now_s + 600)) AS bypass_quote \gset

-- Only a superuser sets it.
SET ROLE tg_br_app;
SET tenant_guard.bypass_role = 'tg_br_support';
RESET ROLE;

-- The role must exist, have BYPASSRLS, and not be a superuser.
SET tenant_guard.bypass_role = 'tg_br_missing';
SET ROLE tg_br_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass');
ROLLBACK;
RESET ROLE;
SET tenant_guard.bypass_role = 'tg_br_plain';
SET ROLE tg_br_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass');
ROLLBACK;
RESET ROLE;
SET tenant_guard.bypass_role = 'tg_br_super';
SET ROLE tg_br_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass');
ROLLBACK;
RESET ROLE;

SET tenant_guard.bypass_role = 'tg_br_creator';
SET ROLE tg_br_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass');
ROLLBACK;
RESET ROLE;

SET tenant_guard.bypass_role = 'tg_br_support';
SET ROLE tg_br_app;

-- A bypass context: the transaction runs as the role and reads every row
-- (also rows of tenants no registry lists), with the plan of a query without
-- row-level security. The session user stays.
SET client_min_messages = log;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') = '' AS no_tenant;
RESET client_min_messages;
SELECT current_user, session_user, tenant_guard.is_bypass();
SELECT id, tenant_id FROM tickets ORDER BY id;
EXPLAIN (COSTS OFF) SELECT count(*) FROM tickets;
COMMIT;
-- The LOG line writes quotes in its fields as ?, so a claim cannot make it
-- read as other fields.
SET client_min_messages = log;
BEGIN;
SELECT tenant_guard.set_context(:'bypass_quote') IS NOT NULL;
ROLLBACK;
RESET client_min_messages;
-- The transaction is read-only from set_context on, and stays so: nothing
-- written, created or granted as the role outlives the token (a function
-- created as the role would keep its rights).
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
SAVEPOINT s;
UPDATE tickets SET title = 'x' WHERE id = 2;
ROLLBACK TO SAVEPOINT s;
CREATE FUNCTION pg_temp.all_tickets() RETURNS SETOF tickets LANGUAGE sql
  SECURITY DEFINER AS $$ SELECT * FROM public.tickets $$;
ROLLBACK TO SAVEPOINT s;
SET transaction_read_only = off;
ROLLBACK TO SAVEPOINT s;
-- Nor ANALYZE or REINDEX, which PostgreSQL lets run read-only: they store
-- what they read (statistics, which for an inheritance parent include the
-- session's temporary children; index contents).
ANALYZE tickets;
ROLLBACK TO SAVEPOINT s;
REINDEX TABLE tickets;
ROLLBACK TO SAVEPOINT s;
-- Nor PREPARE or LISTEN (a statement's text, a channel's name outlive the
-- transaction), nor PREPARE TRANSACTION (a prepared transaction keeps its
-- locks, whose keys code run as the role may choose, beyond the session;
-- refused, it ends the transaction).
PREPARE tg_br_kept AS SELECT 1;
ROLLBACK TO SAVEPOINT s;
LISTEN tg_br_channel;
ROLLBACK TO SAVEPOINT s;
PREPARE TRANSACTION 'tg_br';
-- Nor a query that fills a new table: PostgreSQL refuses CREATE TABLE AS in
-- a read-only transaction, but not under EXPLAIN ANALYZE.
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  CREATE TEMP TABLE tg_br_filled AS SELECT id, tenant_id FROM tickets;
ROLLBACK;
-- Also not inside a SECURITY DEFINER function of the application's:
-- rows of every tenant put into a temporary child of its table, then
-- ANALYZE of that table, would stay in pg_statistic.
RESET ROLE;
CREATE SCHEMA tg_br_att AUTHORIZATION tg_br_app;
GRANT USAGE ON SCHEMA tg_br_att TO tg_br_support;
SET ROLE tg_br_app;
CREATE TABLE tg_br_att.par (tenant_id text);
CREATE TEMP TABLE tg_br_child () INHERITS (tg_br_att.par);
GRANT INSERT ON tg_br_child TO tg_br_support;
CREATE FUNCTION tg_br_att.analyze_par() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
  AS $$ BEGIN ANALYZE tg_br_att.par; END $$;
GRANT EXECUTE ON FUNCTION tg_br_att.analyze_par() TO tg_br_support;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
-- (The INSERT itself is refused: see below.)
SAVEPOINT s;
INSERT INTO tg_br_child SELECT tenant_id FROM tickets;
ROLLBACK TO SAVEPOINT s;
SELECT tg_br_att.analyze_par();
COMMIT;
SELECT count(*) FROM pg_stats WHERE schemaname = 'tg_br_att';
DROP TABLE tg_br_child;
DROP SCHEMA tg_br_att CASCADE;
-- Back after COMMIT: no context, no rows.
SELECT current_user;
SELECT count(*) FROM tickets;

-- Back after ROLLBACK.
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
ROLLBACK;
SELECT current_user;

-- The role is checked at every use, also once accepted in this session: a
-- role that loses BYPASSRLS, or becomes a superuser, is refused from the
-- next set_context on (in every session: any change to a role drops what
-- each backend remembered about it).
RESET ROLE;
ALTER ROLE tg_br_support NOBYPASSRLS;
SET ROLE tg_br_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass');
ROLLBACK;
RESET ROLE;
ALTER ROLE tg_br_support BYPASSRLS SUPERUSER;
SET ROLE tg_br_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass');
ROLLBACK;
RESET ROLE;
ALTER ROLE tg_br_support NOSUPERUSER;
SET ROLE tg_br_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
SELECT current_user;
ROLLBACK;

-- Back as soon as the context changes: another token, or clear_context
-- (current_user after the call, in the same statement). The transaction can
-- then only end (see below).
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
SELECT tenant_guard.set_context(:'acme'), current_user, tenant_guard.is_bypass();
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
SELECT tenant_guard.clear_context(), current_user;
ROLLBACK;

-- Not inside a subtransaction (a savepoint, a PL/pgSQL block with an
-- EXCEPTION clause): its commit (RELEASE, the block's normal end) would
-- make the transaction read-write again and keep the role. Nor through
-- such a block in a DO block or procedure that may COMMIT (whose loops keep
-- their rows past the COMMIT). Entered at the top level, it stays
-- read-only through later savepoints.
BEGIN;
SAVEPOINT s;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
ROLLBACK TO SAVEPOINT s;
SELECT current_user, tenant_guard.is_bypass();
RELEASE SAVEPOINT s;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
SAVEPOINT u;
SELECT count(*) FROM tickets;
RELEASE SAVEPOINT u;
SELECT current_user, current_setting('transaction_read_only');
INSERT INTO tickets VALUES (100, 'globex', 'written as the role');
ROLLBACK;
CREATE FUNCTION pg_temp.tg_br_enter_in_block(tok text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    RETURN tenant_guard.set_context(tok);
  EXCEPTION WHEN division_by_zero THEN RETURN NULL;
  END;
END $$;
BEGIN;
SELECT pg_temp.tg_br_enter_in_block(:'bypass') IS NOT NULL;
INSERT INTO tickets VALUES (100, 'globex', 'written as the role');
ROLLBACK;
SELECT set_config('tg_br.tok', :'bypass', false) IS NOT NULL;
DO $$
DECLARE r record;
BEGIN
  BEGIN
    PERFORM tenant_guard.set_context(current_setting('tg_br.tok'));
  EXCEPTION WHEN division_by_zero THEN NULL;
  END;
  FOR r IN SELECT id FROM public.tickets LOOP
    COMMIT;
  END LOOP;
END $$;
SELECT set_config('tg_br.tok', '', false) = '';
SELECT current_user;
DROP FUNCTION pg_temp.tg_br_enter_in_block(text);
-- Nor inside a statement that may write (INSERT, UPDATE, DELETE, MERGE, a
-- locking SELECT, CREATE TABLE AS, COPY FROM, ALTER TABLE…): PostgreSQL
-- checks that a transaction is read-only when a statement starts, so one
-- already running would go on writing as the role, every tenant's rows
-- included. A SELECT of its own (also inside a DO block) enters.
RESET ROLE;
CREATE FUNCTION tg_br_grab(tok text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM tenant_guard.set_context(tok);
  RETURN (SELECT string_agg(tenant_id || ' as ' || current_user, ',' ORDER BY id) FROM public.tickets);
END $$;
CREATE TABLE tg_br_loot (n int, v text DEFAULT tg_br_grab(current_setting('tg_br.tok')));
INSERT INTO tg_br_loot VALUES (0, 'seed');
GRANT SELECT, INSERT, UPDATE ON tg_br_loot TO tg_br_app;
SET ROLE tg_br_app;
BEGIN;
INSERT INTO tg_br_loot SELECT 1, tg_br_grab(:'bypass');
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
UPDATE tickets SET title = current_user FROM (SELECT tenant_guard.set_context(:'bypass')) e;
ROLLBACK;
BEGIN;
CREATE TEMP TABLE tg_br_loot2 AS SELECT tg_br_grab(:'bypass') AS v;
ROLLBACK;
BEGIN;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  CREATE TEMP TABLE tg_br_loot2 AS SELECT tg_br_grab(:'bypass') AS v;
ROLLBACK;
BEGIN;
SELECT set_config('tg_br.tok', :'bypass', true) IS NOT NULL;
COPY tg_br_loot (n) FROM STDIN;
2
\.
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL FROM tg_br_loot FOR UPDATE;
ROLLBACK;
-- A writing statement stays counted until it ends: not counted out by
-- another statement's end (CREATE TABLE AS EXECUTE, whose query only learns
-- its destination when it runs), nor by a rollback of a subtransaction that
-- a locking query it started survives (a set-returning SQL function read
-- through a cursor opened before the block, closed after it).
RESET ROLE;
CREATE TABLE tg_br_w (n int);
INSERT INTO tg_br_w VALUES (1), (2);
GRANT SELECT, UPDATE ON tg_br_w TO tg_br_app;
CREATE FUNCTION tg_br_grab_ctas(tok text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'CREATE TEMP TABLE tg_br_ctas AS EXECUTE tg_br_one';
  RETURN tg_br_grab(tok);
END $$;
CREATE FUNCTION tg_br_lock() RETURNS SETOF int LANGUAGE sql AS 'SELECT n FROM tg_br_w FOR UPDATE';
CREATE FUNCTION tg_br_grab_sub(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE c refcursor; x int;
BEGIN
  OPEN c FOR SELECT tg_br_lock();
  BEGIN
    FETCH c INTO x;
    RAISE EXCEPTION 'undo';
  EXCEPTION WHEN raise_exception THEN NULL;
  END;
  CLOSE c;
  RETURN tg_br_grab(tok);
END $$;
SET ROLE tg_br_app;
PREPARE tg_br_one AS SELECT 1 AS x;
BEGIN;
INSERT INTO tg_br_loot SELECT 3, tg_br_grab_ctas(:'bypass');
COMMIT;
BEGIN;
INSERT INTO tg_br_loot SELECT 4, tg_br_grab_sub(:'bypass');
COMMIT;
DEALLOCATE tg_br_one;
-- Ended statements are counted out, also when closed in a savepoint that
-- is rolled back: a bypass context is entered after them.
BEGIN;
DECLARE c CURSOR FOR SELECT n FROM tg_br_w FOR UPDATE;
FETCH 1 FROM c;
SAVEPOINT s;
CLOSE c;
ROLLBACK TO SAVEPOINT s;
RELEASE SAVEPOINT s;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
ROLLBACK;
BEGIN;
INSERT INTO tg_br_loot (n, v) VALUES (5, 'x') ON CONFLICT DO NOTHING;
DO $$
BEGIN
  INSERT INTO tg_br_loot (n, v) SELECT 1 / (n - n), 'x' FROM tg_br_w;
EXCEPTION WHEN division_by_zero THEN NULL;
END $$;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
ROLLBACK;
BEGIN;
SELECT set_config('tg_br.tok', :'bypass', true) IS NOT NULL;
DO $$ BEGIN PERFORM tenant_guard.set_context(current_setting('tg_br.tok')); END $$;
SELECT current_user, current_setting('transaction_read_only');
SELECT tg_br_grab(:'bypass');
ROLLBACK;
SELECT n, v FROM tg_br_loot;
-- Savepoints taken after entering: a rollback to one undoes a context
-- change made after it, and brings the bypass context back.
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
SAVEPOINT t;
SELECT tenant_guard.set_context(:'acme'), current_user;
ROLLBACK TO SAVEPOINT t;
SELECT current_user, tenant_guard.is_bypass();
COMMIT;
SELECT current_user;

-- A cached plan made as the role is never run by a tenant: PostgreSQL plans
-- again for a role row-level security applies to (here a PL/pgSQL
-- function's statement, whose plan the session keeps).
CREATE FUNCTION pg_temp.all_ids() RETURNS int[] LANGUAGE plpgsql AS
  'BEGIN RETURN (SELECT array_agg(id ORDER BY id) FROM tickets); END';
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
SELECT pg_temp.all_ids();
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT pg_temp.all_ids();
COMMIT;
DROP FUNCTION pg_temp.all_ids();
-- EXECUTE of a statement prepared before is refused in a bypass
-- transaction, as PREPARE is: the statement's count of executions
-- (pg_prepared_statements) outlives the transaction, and code run as the
-- role could choose it.
PREPARE all_ids AS SELECT array_agg(id ORDER BY id) FROM tickets;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
EXECUTE all_ids;
ROLLBACK;
SELECT generic_plans + custom_plans AS executions FROM pg_prepared_statements WHERE name = 'all_ids';
DEALLOCATE all_ids;

-- Once the transaction has left its bypass context (another token,
-- clear_context, SET ROLE, RESET ROLE), it can only end: queries on tables
-- fail, also for a superuser. Plans made as the role have no row-level
-- security, and some outlive their statement: an open cursor, and (before
-- PostgreSQL 18) a SQL function's plans, which PL/pgSQL keeps for the
-- transaction. Back in the bypass context (a rollback to a savepoint), it
-- reads on.
RESET ROLE;
CREATE FUNCTION tg_br_all() RETURNS text LANGUAGE sql VOLATILE
  AS $$ SELECT string_agg(tenant_id, ',' ORDER BY id) FROM public.tickets $$;
CREATE FUNCTION tg_br_all_plpgsql() RETURNS text LANGUAGE plpgsql
  AS $$ BEGIN RETURN tg_br_all(); END $$;
SET ROLE tg_br_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
DECLARE c SCROLL CURSOR FOR SELECT id, tenant_id FROM tickets ORDER BY id;
FETCH 1 FROM c;
SELECT tg_br_all_plpgsql();
SAVEPOINT s;
SELECT tenant_guard.set_context(:'acme');
ROLLBACK TO SAVEPOINT s;
SELECT current_user;
FETCH ALL FROM c;
SELECT tenant_guard.set_context(:'acme'), current_user;
SAVEPOINT t;
FETCH FIRST FROM c;
ROLLBACK TO SAVEPOINT t;
SELECT tg_br_all_plpgsql();
ROLLBACK TO SAVEPOINT t;
SELECT count(*) FROM tickets;
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
DECLARE c CURSOR FOR SELECT id, tenant_id FROM tickets ORDER BY id;
SELECT tg_br_all_plpgsql();
SELECT tenant_guard.clear_context();
FETCH ALL FROM c;
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
DECLARE c CURSOR FOR SELECT id, tenant_id FROM tickets ORDER BY id;
SET LOCAL ROLE tg_br_app;
FETCH ALL FROM c;
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
DECLARE c CURSOR FOR SELECT id, tenant_id FROM tickets ORDER BY id;
RESET ROLE;
FETCH ALL FROM c;
ROLLBACK;
SET ROLE tg_br_app;
-- The next transaction starts afresh.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT tg_br_all_plpgsql();
COMMIT;
-- Rows a function scan stored while the bypass held are not handed out
-- after it ended either.
RESET ROLE;
CREATE FUNCTION tg_br_rows() RETURNS SETOF tickets LANGUAGE plpgsql
  AS $$ BEGIN RETURN QUERY SELECT * FROM public.tickets ORDER BY id; END $$;
SET ROLE tg_br_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
DECLARE f CURSOR FOR SELECT id, tenant_id FROM tg_br_rows();
FETCH 1 FROM f;
SELECT tenant_guard.set_context(:'acme');
FETCH ALL FROM f;
ROLLBACK;
-- Nor by a function reading a cursor over a set-returning function in the
-- select list (nothing in its FROM).
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
DECLARE g CURSOR FOR SELECT tg_br_rows();
FETCH 1 FROM g;
SELECT tenant_guard.set_context(:'acme');
SELECT cursor_to_xml('g', 10, false, false, '');
ROLLBACK;
-- A SECURITY DEFINER function called while the bypass context is in force
-- runs as its owner, under row-level security for that owner (which reads
-- no tenant in a bypass context without a registry).
RESET ROLE;
CREATE FUNCTION tg_br_owner_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER
  SET search_path = pg_catalog AS $$ SELECT count(*) FROM public.tickets $$;
ALTER FUNCTION tg_br_owner_count() OWNER TO tg_br_app;
SET ROLE tg_br_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
SELECT tg_br_owner_count();
SELECT count(*) FROM tickets;
ROLLBACK;
-- A context changed inside a SECURITY DEFINER function: when the call
-- returns, PostgreSQL makes the role current again, with a context that is
-- no longer a bypass context. Every query and utility command then fails,
-- also COPY of a table (which reads it without the executor).
RESET ROLE;
CREATE FUNCTION tg_br_owner_clear() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog AS $$ BEGIN PERFORM tenant_guard.clear_context(); END $$;
ALTER FUNCTION tg_br_owner_clear() OWNER TO tg_br_app;
SET ROLE tg_br_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
SELECT tg_br_owner_clear();
SAVEPOINT s;
SELECT current_user;
ROLLBACK TO SAVEPOINT s;
COPY tickets TO STDOUT;
ROLLBACK;
-- No cursor WITH HOLD gets rows read as the role: they would be kept past
-- the commit. Declaring one in a bypass transaction is refused, and so is
-- entering a bypass context in a transaction that declared one, also from
-- inside its fill at COMMIT (the commit fails and the transaction rolls
-- back), and filling at COMMIT, as the role, one declared before.
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
DECLARE h CURSOR WITH HOLD FOR SELECT id, tenant_id FROM tickets;
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
DECLARE h CURSOR WITH HOLD FOR SELECT tg_br_all();
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
ROLLBACK;
RESET ROLE;
CREATE FUNCTION tg_br_enter_and_read(tok text) RETURNS SETOF tickets LANGUAGE plpgsql AS $$
DECLARE r tickets;
BEGIN
  PERFORM tenant_guard.set_context(tok);
  FOR r IN SELECT * FROM public.tickets ORDER BY id LOOP RETURN NEXT r; END LOOP;
END $$;
SET ROLE tg_br_app;
BEGIN;
DECLARE h CURSOR WITH HOLD FOR SELECT id, tenant_id FROM tg_br_enter_and_read(:'bypass');
COMMIT;
SELECT current_user;
FETCH ALL FROM h;
-- A cursor opened in a tenant context keeps its row-level security plan:
-- fetched in the bypass context (no registry here), it reads nothing.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
DECLARE c CURSOR FOR SELECT id, tenant_id FROM tickets ORDER BY id;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL;
FETCH ALL FROM c;
ROLLBACK;

-- Transaction-local only.
SELECT tenant_guard.set_context(:'bypass', false);

-- Not from inside a SECURITY DEFINER function (the switch would not last).
RESET ROLE;
CREATE FUNCTION tg_br_wrap(tok text) RETURNS text LANGUAGE sql SECURITY DEFINER
  SET search_path = pg_catalog AS $$ SELECT tenant_guard.set_context(tok) $$;
ALTER FUNCTION tg_br_wrap(text) OWNER TO tg_br_app;
SET ROLE tg_br_app;
BEGIN;
SELECT tg_br_wrap(:'bypass');
ROLLBACK;

-- A token that expires inside the transaction stops the bypass: a query
-- started after that moment fails, also inside a statement that began
-- before it (a DO block), and so do utility commands like COPY (no clock
-- leeway here).
RESET ROLE;
SET tenant_guard.leeway = 0;
SELECT floor(extract(epoch FROM clock_timestamp()))::bigint AS now_s \gset
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'iat', :now_s - 1, 'exp', :now_s + 4)) AS bypass_short \gset
SET ROLE tg_br_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass_short') IS NOT NULL;
SELECT count(*) FROM tickets;
-- (The WARNING that the context lapsed names the expiry time: not shown.)
SET client_min_messages = error;
SAVEPOINT s;
DO $$ BEGIN PERFORM pg_sleep(5.2); PERFORM count(*) FROM tickets; END $$;
ROLLBACK TO SAVEPOINT s;
COPY tickets TO STDOUT;
ROLLBACK;
RESET client_min_messages;
SELECT current_user;


-- Nothing read as the role outlives its transaction. The transaction is
-- read-only, but PostgreSQL lets a read-only transaction write a temporary
-- table, change a setting for the session, notify another session, take a
-- session-level advisory lock, move a temporary sequence and create a large
-- object. Each would keep rows read as the role past the commit, for the
-- next request on a pooled connection (or for another session): each is
-- refused (25006), and settings changed after entering are undone at the
-- commit, as a function's SET clause is undone when it returns.
RESET ROLE;
CREATE TEMP TABLE tg_br_stash (id int, tenant_id text, title text);
GRANT INSERT, SELECT ON tg_br_stash TO tg_br_app, tg_br_support;
CREATE TEMP SEQUENCE tg_br_seq;
GRANT USAGE, UPDATE ON tg_br_seq TO tg_br_app, tg_br_support;
SET ROLE tg_br_app;
SET application_name = 'before';
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
INSERT INTO tg_br_stash SELECT * FROM tickets;
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
WITH t AS (SELECT * FROM tickets) INSERT INTO tg_br_stash SELECT * FROM t;
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
COPY tg_br_stash FROM '/dev/null';
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
COPY tickets TO '/dev/null';
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
NOTIFY tg_br_channel, 'globex';
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
SELECT pg_notify('tg_br_channel', string_agg(title, ',')) FROM tickets;
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
SELECT pg_advisory_lock(count(*)) FROM tickets;
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
SELECT setval('tg_br_seq', count(*)) FROM tickets;
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
SELECT nextval('tg_br_seq');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
SELECT lo_from_bytea(0, convert_to(string_agg(title, ','), 'UTF8')) FROM tickets;
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
SELECT setseed(0.5);
ROLLBACK;
-- Nor random(): each draw moves the session's sequence, which a later
-- setseed makes known, so a later transaction could count how many draws
-- code run as the role made.
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
SELECT count(random()) FROM tickets;
ROLLBACK;
-- Releasing a session-level advisory lock taken before is a channel too:
-- which keys stay held shows in pg_locks.
SELECT pg_advisory_lock(7);
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
SELECT pg_advisory_unlock(7);
ROLLBACK;
SELECT pg_advisory_unlock(7);
-- The same from a function called in the bypass transaction.
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
DO $$ BEGIN PERFORM pg_notify('tg_br_channel', 'x'); END $$;
ROLLBACK;
-- Before entering, and after the transaction, they run as usual; a
-- transaction-level advisory lock, which ends with it, is allowed.
BEGIN;
INSERT INTO tg_br_stash VALUES (0, 'acme', 'mine');
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
SELECT pg_advisory_xact_lock(42);
SELECT count(*) FROM tickets;
COMMIT;
SELECT nextval('tg_br_seq');
-- Settings changed as the role, also for the session, end with the
-- transaction; those set before entering stay.
BEGIN;
SET search_path = pg_catalog, public;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS entered;
SELECT set_config('application_name', string_agg(title, ','), false) FROM tickets;
SET tg_br.stash = 'globex';
SELECT current_setting('application_name') AS inside;
COMMIT;
SELECT current_setting('application_name') AS after, current_setting('tg_br.stash', true) AS stash,
       current_setting('search_path') AS search_path;
RESET search_path;
SELECT * FROM tg_br_stash ORDER BY id;
-- A function with a SET clause undoes its settings when it returns, before
-- the transaction ends: entering the role inside one is refused.
RESET ROLE;
CREATE FUNCTION tg_br_enter_with_set(t text) RETURNS text LANGUAGE sql
  SET work_mem = '8MB' AS $$ SELECT tenant_guard.set_context(t) $$;
SET ROLE tg_br_app;
BEGIN;
SELECT tg_br_enter_with_set(:'bypass') IS NOT NULL;
ROLLBACK;
RESET application_name;
RESET ROLE;
DROP FUNCTION tg_br_enter_with_set(text);
DROP TABLE tg_br_stash;
DROP SEQUENCE tg_br_seq;
RESET ROLE;
RESET tenant_guard.leeway;
RESET tenant_guard.bypass_role;
DROP FUNCTION tg_br_wrap(text);
DROP FUNCTION tg_br_all_plpgsql();
DROP FUNCTION tg_br_rows();
DROP FUNCTION tg_br_enter_and_read(text);
DROP FUNCTION tg_br_owner_count();
DROP FUNCTION tg_br_owner_clear();
DROP FUNCTION tg_br_all();
DROP TABLE tg_br_loot;
DROP TABLE tg_br_w;
DROP FUNCTION tg_br_grab_ctas(text);
DROP FUNCTION tg_br_grab_sub(text);
DROP FUNCTION tg_br_lock();
DROP FUNCTION tg_br_grab(text);
DROP TABLE tickets;
DROP EXTENSION tenant_guard;
DROP ROLE tg_br_app;
DROP ROLE tg_br_support;
DROP ROLE tg_br_plain;
DROP ROLE tg_br_super;
DROP ROLE tg_br_creator;
