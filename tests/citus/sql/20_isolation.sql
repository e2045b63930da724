-- Tests isolation on distributed tables, as a non-superuser application role
-- (tables and rows from 10_cluster: tenants acme and globex, two orders and
-- two order lines each).
--
-- set_context on the coordinator also runs SET LOCAL
-- tenant_guard.forwarded_token, which Citus forwards to every worker
-- connection of the transaction (also to connections opened later); each
-- worker verifies the token against its own key ring (sync_nodes) before it
-- becomes the context there. Errors raised on a worker name the shard, so
-- they show as SQLSTATEs.
\set VERBOSITY sqlstate
\set SHOW_CONTEXT never
SELECT tenant_guard.sign('{"tenant_id": "acme", "sub": "alice", "exp": 4102444800}') AS acme \gset
SELECT tenant_guard.sign('{"tenant_id": "globex", "exp": 4102444800}') AS globex \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "tenants": ["acme", "globex"], "exp": 4102444800}') AS agency \gset
-- A token of a key that is then retired, everywhere.
SELECT tenant_guard.add_key('rotated', decode(repeat('c3', 32), 'hex'));
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', 'rotated') AS retired \gset
SELECT tenant_guard.retire_key('rotated');
SELECT count(*) FILTER (WHERE success) AS synced FROM tenant_guard.sync_nodes();
SET ROLE tg_citus_app;

-- COPY ... TO as the first distributed statement of the transaction:
-- acme's rows only.
BEGIN;
SELECT tenant_guard.set_context(:'acme') AS tenant;
COPY orders TO STDOUT;
COPY (SELECT tenant_id, id, qty FROM order_lines ORDER BY id) TO STDOUT;
COMMIT;

-- Router queries (one shard): another tenant's key finds nothing.
BEGIN;
SELECT tenant_guard.set_context(:'acme') AS tenant;
SELECT * FROM orders WHERE tenant_id = 'acme' AND id = 1;
SELECT * FROM orders WHERE tenant_id = 'globex';
SELECT * FROM orders WHERE tenant_id = 'globex' AND id = 1;
-- Multi-shard queries and aggregates.
SELECT * FROM orders ORDER BY tenant_id, id;
SELECT tenant_id, count(*), sum(qty) FROM order_lines GROUP BY tenant_id ORDER BY 1;
-- Co-located join, and a join with the reference table.
SELECT o.tenant_id, o.id, o.item, l.qty FROM orders o JOIN order_lines l
    ON l.tenant_id = o.tenant_id AND l.order_id = o.id ORDER BY 1, 2;
SELECT t.name, o.item FROM orders o JOIN tenants t ON t.id = o.tenant_id ORDER BY 2;
COMMIT;

-- Writes: the default fills the tenant; other tenants' rows are neither
-- changed nor deleted; a row for another tenant is refused.
BEGIN;
SELECT tenant_guard.set_context(:'acme') AS tenant;
INSERT INTO orders (id, item) VALUES (3, 'magnet') RETURNING tenant_id, id, item;
UPDATE orders SET item = item || '!' RETURNING tenant_id, id, item;
DELETE FROM order_lines WHERE id = 2 RETURNING tenant_id, id;
DELETE FROM orders WHERE id = 2 RETURNING tenant_id, id;
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(:'acme') AS tenant;
INSERT INTO orders VALUES ('globex', 9, 'planted');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'acme') AS tenant;
UPDATE orders SET item = 'moved' WHERE tenant_id = 'globex' RETURNING *;
-- Citus itself refuses to change the distribution column.
UPDATE orders SET tenant_id = 'globex' WHERE id = 1;
ROLLBACK;
-- TRUNCATE ignores row-level security: refused.
BEGIN;
SELECT tenant_guard.set_context(:'acme') AS tenant;
TRUNCATE order_lines;
ROLLBACK;
-- Foreign key probes: an acme line cannot point at order 2, which only
-- globex has now (the composite key includes the tenant).
BEGIN;
SELECT tenant_guard.set_context(:'acme') AS tenant;
INSERT INTO order_lines VALUES ('acme', 10, 2, 1);
ROLLBACK;

-- Switching the context inside a transaction reaches the connections the
-- transaction already opened.
BEGIN;
SELECT tenant_guard.set_context(:'acme') AS tenant;
SELECT tenant_id, id FROM orders ORDER BY 1, 2;
SELECT tenant_guard.set_context(:'globex') AS tenant;
SELECT tenant_id, id FROM orders ORDER BY 1, 2;
-- clear_context reaches them too: the workers fail closed.
SELECT tenant_guard.clear_context();
SELECT tenant_id, id FROM orders ORDER BY 1, 2;
ROLLBACK;

-- A read set (tenants claim): reads both, writes its own tenant only.
BEGIN;
SELECT tenant_guard.set_context(:'agency') AS tenant;
SELECT tenant_id, id FROM orders ORDER BY 1, 2;
UPDATE orders SET item = item WHERE tenant_id = 'globex' RETURNING *;
ROLLBACK;

-- No context: the workers refuse (42501).
BEGIN;
SELECT count(*) FROM orders;
ROLLBACK;
-- A session context (is_local => false) is not forwarded: distributed tables
-- refuse it, with a hint saying so.
SELECT tenant_guard.set_context(:'acme', false) AS tenant;
\set VERBOSITY default
SELECT count(*) FROM orders;
\set VERBOSITY sqlstate
SELECT tenant_guard.clear_context();

-- Forged or retired tokens written straight into the forwarded setting are
-- verified like set_context's (28000), by the node that reads them.
BEGIN;
SET LOCAL tenant_guard.forwarded_token = 'eyJhbGciOiJIUzI1NiIsImtpZCI6Im1haW4ifQ.eyJ0ZW5hbnRfaWQiOiJnbG9iZXgiLCJleHAiOjQxMDI0NDQ4MDB9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
SELECT count(*) FROM orders;
ROLLBACK;
BEGIN;
SET LOCAL tenant_guard.forwarded_token = :'retired';
SELECT count(*) FROM orders;
ROLLBACK;

-- On Citus a context is set at the top level of the transaction: Citus
-- forgets a SET LOCAL made inside a savepoint once it is released, so the
-- workers would keep the earlier context (0A000, nothing changed).
BEGIN;
SELECT tenant_guard.set_context(:'acme') AS tenant;
SAVEPOINT s;
SELECT tenant_guard.set_context(:'globex') AS tenant;
ROLLBACK TO SAVEPOINT s;
SELECT tenant_guard.clear_context();
ROLLBACK TO SAVEPOINT s;
RELEASE SAVEPOINT s;
SELECT tenant_guard.tenant_id() AS tenant;
SELECT tenant_id, id FROM orders ORDER BY 1, 2;
COMMIT;

-- Nor inside a query Citus pushes down to a worker, where it would outlive
-- the transaction on a cached connection (0A000).
BEGIN;
SELECT tenant_guard.set_context(:'acme') AS tenant;
SELECT tenant_guard.set_context(:'acme', false) FROM orders WHERE tenant_id = 'acme' AND id = 1;
ROLLBACK;
-- A forwarded token written at session level on a worker connection counts
-- for no later transaction.
BEGIN;
SELECT tenant_guard.set_context(:'acme') AS tenant;
SELECT set_config('tenant_guard.forwarded_token', :'acme', false) IS NOT NULL AS planted
  FROM orders WHERE tenant_id = 'acme' AND id = 1;
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(:'globex') AS tenant;
SELECT tenant_id, id FROM orders WHERE tenant_id = 'acme' AND id = 1;
COMMIT;
BEGIN;
SELECT tenant_id, id FROM orders WHERE tenant_id = 'acme' AND id = 1;
ROLLBACK;

-- A prepared statement, executed under alternating tenants past the point
-- where PostgreSQL switches to a generic plan: each run sees its tenant.
PREPARE by_tenant(text) AS SELECT tenant_id, id FROM orders WHERE tenant_id = $1 ORDER BY 2;
BEGIN; SELECT tenant_guard.set_context(:'acme') AS tenant; EXECUTE by_tenant('acme'); EXECUTE by_tenant('globex'); COMMIT;
BEGIN; SELECT tenant_guard.set_context(:'globex') AS tenant; EXECUTE by_tenant('acme'); EXECUTE by_tenant('globex'); COMMIT;
BEGIN; SELECT tenant_guard.set_context(:'acme') AS tenant; EXECUTE by_tenant('acme'); EXECUTE by_tenant('globex'); COMMIT;
BEGIN; SELECT tenant_guard.set_context(:'globex') AS tenant; EXECUTE by_tenant('acme'); EXECUTE by_tenant('globex'); COMMIT;
DEALLOCATE by_tenant;
RESET ROLE;

-- tenant_guard.as_tenant (a context without a token, for test suites) is
-- refused on a Citus cluster, to a superuser too: the workers take their
-- context from a forwarded token, which they verify themselves. Nothing is
-- set by the attempt.
\set VERBOSITY default
BEGIN;
SELECT tenant_guard.as_tenant('acme');
ROLLBACK;
\set VERBOSITY sqlstate
BEGIN;
SELECT tenant_guard.as_tenant('acme', is_local => false);
ROLLBACK;
SELECT tenant_guard.tenant_id() IS NULL AS no_context;

-- What the writes above did, seen by the superuser: only acme's rows changed.
SELECT * FROM orders ORDER BY tenant_id, id;
SELECT * FROM order_lines ORDER BY tenant_id, id;
