-- Tests that a context is re-checked at every statement: a session context
-- (set_context(token, false)) stops reading and writing from the next
-- statement once its key is retired or expires, its token expires, or its
-- tenant is deactivated or deleted in the registry; as an application role
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('main', decode(repeat('a1', 32), 'hex'));
SELECT tenant_guard.add_key('doomed', decode(repeat('b2', 32), 'hex'));
CREATE ROLE tg_sess_app LOGIN;
\set SHOW_CONTEXT never
-- No clock skew allowed, so the sleeps below stay short.
SET tenant_guard.leeway = 0;

CREATE TABLE notes (
    id        int PRIMARY KEY,
    tenant_id text NOT NULL,
    body      text
);
INSERT INTO notes VALUES (1, 'acme', 'a1'), (2, 'acme', 'a2'), (3, 'globex', 'g1');
SELECT count(*) > 0 AS protected FROM tenant_guard.protect('notes');
GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO tg_sess_app;

SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', kid => 'main') AS acme \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', kid => 'doomed') AS acme_doomed \gset
SELECT tenant_guard.sign('{"tenant_id": "globex", "tenants": ["globex", "acme"], "exp": 4102444800}', kid => 'main') AS multi \gset

-- 1. The key is retired (here by the DBA in this session; in another
--    session the invalidation arrives at the application's next statement
--    just the same).
SET ROLE tg_sess_app;
\set VERBOSITY default
SELECT tenant_guard.set_context(:'acme_doomed', is_local => false);
SELECT id, body FROM notes ORDER BY id;
RESET ROLE;
SELECT tenant_guard.retire_key('doomed');
SET ROLE tg_sess_app;
-- From the next statement: one WARNING saying why, then no rows, no
-- accessors, no writes, without an error.
SELECT id, body FROM notes ORDER BY id;
SELECT count(*) AS rows_after_retire FROM notes;
SELECT tenant_guard.tenant_id(), tenant_guard.user_id(), tenant_guard.claims(), tenant_guard.is_bypass();
SELECT tenant_guard.visible_tenants(), tenant_guard.writable_tenants();
\set VERBOSITY sqlstate
SELECT tenant_guard.require_tenant_id();
INSERT INTO notes VALUES (10, 'acme', 'written after retire');
UPDATE notes SET body = 'changed' WHERE id = 1;
DELETE FROM notes WHERE id = 2;
-- Presenting the retired key's token again is refused.
SELECT tenant_guard.set_context(:'acme_doomed', is_local => false);
\set VERBOSITY default
-- A transaction-local context over it works, and so does a new session
-- context with a token of an active key.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT count(*) AS local_rows FROM notes;
COMMIT;
SELECT count(*) AS back_to_retired_session_context FROM notes;
SELECT tenant_guard.set_context(:'acme', is_local => false);
SELECT count(*) AS rows_with_new_context FROM notes;
SELECT tenant_guard.clear_context();

-- The same inside a transaction: retired in the middle of it, the next
-- statement of the same transaction sees no context.
BEGIN;
RESET ROLE;
SELECT tenant_guard.add_key('brief', decode(repeat('c3', 32), 'hex'));
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', kid => 'brief') AS acme_brief \gset
SET ROLE tg_sess_app;
SELECT tenant_guard.set_context(:'acme_brief');
SELECT count(*) AS before_retire FROM notes;
RESET ROLE;
SELECT tenant_guard.retire_key('brief');
SET ROLE tg_sess_app;
\set VERBOSITY terse
SELECT count(*) AS after_retire_same_transaction FROM notes;
\set VERBOSITY default
COMMIT;

-- 2. The key expires (expires_at two seconds ahead).
RESET ROLE;
SELECT tenant_guard.add_key('short', decode(repeat('d4', 32), 'hex'),
                            expires_at => clock_timestamp() + interval '2 seconds');
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', kid => 'short') AS acme_short \gset
SET ROLE tg_sess_app;
SELECT tenant_guard.set_context(:'acme_short', is_local => false);
SELECT count(*) AS before_key_expiry FROM notes;
SELECT pg_sleep(2.5);
-- (The WARNING's DETAIL names the expiry time: terse output.)
\set VERBOSITY terse
SELECT count(*) AS after_key_expiry FROM notes;
SELECT tenant_guard.tenant_id() AS tenant_after_key_expiry;
\set VERBOSITY default
SELECT tenant_guard.clear_context();

-- 3. The token expires (exp two seconds ahead, leeway 0).
RESET ROLE;
SELECT tenant_guard.sign(jsonb_build_object('tenant_id', 'acme',
         'exp', floor(extract(epoch FROM clock_timestamp()))::bigint + 2)) AS acme_2s \gset
SET ROLE tg_sess_app;
SELECT tenant_guard.set_context(:'acme_2s', is_local => false);
SELECT count(*) AS before_token_expiry FROM notes;
SELECT pg_sleep(3);
\set VERBOSITY terse
SELECT count(*) AS after_token_expiry FROM notes;
INSERT INTO notes VALUES (11, 'acme', 'written after expiry');
\set VERBOSITY default
SELECT tenant_guard.clear_context();

-- 4. The tenant is deactivated or deleted in the registry. The registry is
--    the application's table: no invalidation tells anyone it changed, so
--    it is looked up again at every statement of a session context.
RESET ROLE;
CREATE TABLE tenants (id text PRIMARY KEY, active boolean NOT NULL DEFAULT true);
INSERT INTO tenants VALUES ('acme'), ('globex');
SELECT tenant_guard.use_registry('tenants', 'id', 'active');
SET ROLE tg_sess_app;
SELECT tenant_guard.set_context(:'acme', is_local => false);
SELECT count(*) AS active_tenant FROM notes;
RESET ROLE;
UPDATE tenants SET active = false WHERE id = 'acme';
SET ROLE tg_sess_app;
SELECT count(*) AS deactivated_tenant FROM notes;
SELECT tenant_guard.tenant_id() AS tenant_while_deactivated;
-- Reactivated: the context holds again (its token would be accepted anew
-- anyway).
RESET ROLE;
UPDATE tenants SET active = true WHERE id = 'acme';
SET ROLE tg_sess_app;
SELECT count(*) AS reactivated_tenant FROM notes;
RESET ROLE;
DELETE FROM tenants WHERE id = 'acme';
SET ROLE tg_sess_app;
SELECT count(*) AS deleted_tenant FROM notes;
RESET ROLE;
INSERT INTO tenants VALUES ('acme');
SET ROLE tg_sess_app;
SELECT tenant_guard.clear_context();

-- A multi-tenant token stops when any tenant it reads is deactivated.
SELECT tenant_guard.set_context(:'multi', is_local => false);
SELECT tenant_id, count(*) FROM notes GROUP BY tenant_id ORDER BY tenant_id;
RESET ROLE;
UPDATE tenants SET active = false WHERE id = 'acme';
SET ROLE tg_sess_app;
SELECT count(*) AS multi_with_one_deactivated FROM notes;
RESET ROLE;
UPDATE tenants SET active = true WHERE id = 'acme';
SET ROLE tg_sess_app;
SELECT tenant_guard.clear_context();

-- A transaction-local context is checked against the registry by
-- set_context and lasts its transaction; key and expiry are checked at
-- every statement all the same (case 1 above).
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT count(*) AS local_context FROM notes;
COMMIT;

-- 5. Parallel workers judge the context they are handed the same way
--    (including the registry look-up), with no leader participating.
RESET ROLE;
CREATE TABLE many_notes (tenant_id text NOT NULL, n int);
INSERT INTO many_notes SELECT CASE WHEN g % 3 = 0 THEN 'acme' ELSE 'globex' END, g
  FROM generate_series(1, 3000) g;
SELECT count(*) > 0 AS protected FROM tenant_guard.protect('many_notes');
ANALYZE many_notes;
GRANT SELECT ON many_notes TO tg_sess_app;
SET ROLE tg_sess_app;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SELECT tenant_guard.set_context(:'acme', is_local => false);
EXPLAIN (COSTS OFF) SELECT count(*) FROM many_notes;
SELECT count(*) AS parallel_active FROM many_notes;
RESET ROLE;
UPDATE tenants SET active = false WHERE id = 'acme';
SET ROLE tg_sess_app;
SELECT count(*) AS parallel_deactivated FROM many_notes;
RESET ROLE;
UPDATE tenants SET active = true WHERE id = 'acme';
SET ROLE tg_sess_app;
SELECT count(*) AS parallel_reactivated FROM many_notes;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
SELECT tenant_guard.clear_context();

RESET ROLE;
-- Nothing was written under a lapsed context.
SELECT id, tenant_id, body FROM notes ORDER BY id;
DROP TABLE many_notes;
DROP TABLE notes;
-- The registry's trigger (tenant_guard_registry_changed) depends on the
-- extension: use_registry(NULL) removes it before DROP EXTENSION.
SELECT tenant_guard.use_registry(NULL);
DROP EXTENSION tenant_guard;
DROP TABLE tenants;
DROP ROLE tg_sess_app;
