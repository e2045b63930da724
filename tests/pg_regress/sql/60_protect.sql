-- Tests protect(): generated row-level security, as the application role
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('main', decode(repeat('a1', 32), 'hex'));
CREATE ROLE tg_prot_app LOGIN;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE orders (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL,
    item      text
);
CREATE INDEX orders_tenant_idx ON orders (tenant_id, id);
INSERT INTO orders (tenant_id, item) VALUES ('acme', 'anvil'), ('acme', 'rocket'), ('globex', 'gizmo');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON orders TO tg_prot_app;

SELECT tenant_guard.sign('{"tenant_id": "acme", "sub": "alice", "exp": 4102444800}') AS acme \gset
SELECT tenant_guard.sign('{"tenant_id": "globex", "exp": 4102444800}') AS globex \gset

-- dry_run shows the DDL and changes nothing.
SELECT * FROM tenant_guard.protect('orders', dry_run => true);
SELECT relrowsecurity FROM pg_class WHERE relname = 'orders';

-- protect runs it and records the table.
SELECT count(*) AS statements FROM tenant_guard.protect('orders');
SELECT relid, tenant_column, mode, force FROM tenant_guard.protected;
SELECT polname, polpermissive, polcmd FROM pg_policy WHERE polrelid = 'orders'::regclass ORDER BY polname;

-- Running it again with the same options changes nothing.
SELECT count(*) AS statements FROM tenant_guard.protect('orders');

SET ROLE tg_prot_app;

-- Without a context: an error naming set_context (fail closed).
SELECT * FROM orders;

-- Each tenant sees only its own rows.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT id, tenant_id, item FROM orders ORDER BY id;
-- Inserts get the tenant by default...
INSERT INTO orders (item) VALUES ('catapult') RETURNING tenant_id, item;
-- ...and cannot name another tenant.
INSERT INTO orders (tenant_id, item) VALUES ('globex', 'trojan');
ROLLBACK;

BEGIN;
SELECT tenant_guard.set_context(:'globex');
SELECT id, tenant_id, item FROM orders ORDER BY id;
-- Another tenant's rows cannot be updated or deleted: 0 rows affected.
UPDATE orders SET item = 'stolen' WHERE item = 'anvil' RETURNING id;
DELETE FROM orders WHERE tenant_id = 'acme' RETURNING id;
-- A row cannot be moved to another tenant.
UPDATE orders SET tenant_id = 'acme' WHERE item = 'gizmo';
ROLLBACK;

BEGIN;
SELECT tenant_guard.set_context(:'globex');
-- TRUNCATE ignores row-level security, so it is refused.
TRUNCATE orders;
ROLLBACK;

-- A prepared statement's generic plan follows the context of each execution.
SET plan_cache_mode = force_generic_plan;
PREPARE my_orders AS SELECT tenant_id, item FROM orders ORDER BY id;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
EXECUTE my_orders;
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(:'globex');
EXECUTE my_orders;
COMMIT;
DEALLOCATE my_orders;
RESET plan_cache_mode;

-- A tenant point lookup is an index scan: the rule is an index condition.
RESET ROLE;
INSERT INTO orders (tenant_id, item)
SELECT 't' || (g % 100), 'bulk' FROM generate_series(1, 20000) g;
ANALYZE orders;
SET ROLE tg_prot_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
EXPLAIN (COSTS OFF) SELECT item FROM orders WHERE tenant_id = 'acme' AND id = 1;
EXPLAIN (COSTS OFF) SELECT count(*) FROM orders;
SELECT count(*) FROM orders;
COMMIT;

-- Forced parallel plan: workers apply the same rule.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
EXPLAIN (COSTS OFF) SELECT count(*) FROM orders;
SELECT count(*) FROM orders;
COMMIT;
RESET ALL;
SET ROLE tg_prot_app;

-- With missing_context = empty, no context means no rows instead of an error.
RESET ROLE;
SET tenant_guard.missing_context = 'empty';
SET ROLE tg_prot_app;
SELECT count(*) FROM orders;
INSERT INTO orders (tenant_id, item) VALUES ('acme', 'no context');
RESET ROLE;
RESET tenant_guard.missing_context;

-- The table owner is bound too (FORCE ROW LEVEL SECURITY).
CREATE ROLE tg_prot_owner LOGIN;
ALTER TABLE orders OWNER TO tg_prot_owner;
SET ROLE tg_prot_owner;
SELECT count(*) FROM orders;
BEGIN;
SELECT tenant_guard.set_context(:'globex');
SELECT tenant_id, item FROM orders ORDER BY id;
INSERT INTO orders (tenant_id, item) VALUES ('acme', 'from owner');
ROLLBACK;
TRUNCATE orders;
-- The owner may not manage protection without EXECUTE on the functions.
SELECT * FROM tenant_guard.unprotect('orders');
RESET ROLE;
-- An operator (no context, not restricted by row-level security) may.
BEGIN;
TRUNCATE orders;
SELECT count(*) AS left_after_truncate FROM orders;
ROLLBACK;

-- With force => false the owner is exempt again (rollout "prepare" phase).
SELECT * FROM tenant_guard.protect('orders', force => false);
SET ROLE tg_prot_owner;
SELECT count(*) > 0 AS owner_sees_rows FROM orders;
RESET ROLE;
SELECT * FROM tenant_guard.protect('orders');
ALTER TABLE orders OWNER TO postgres;

-- unprotect removes exactly what protect added.
SELECT * FROM tenant_guard.unprotect('orders');
SELECT count(*) AS policies FROM pg_policy WHERE polrelid = 'orders'::regclass;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = 'orders';
SELECT pg_get_expr(adbin, adrelid) AS tenant_default FROM pg_attrdef
 WHERE adrelid = 'orders'::regclass AND adnum = 2;
SELECT count(*) AS recorded FROM tenant_guard.protected;
SELECT * FROM tenant_guard.unprotect('orders');

-- Bad input changes nothing.
CREATE VIEW orders_view AS SELECT * FROM orders;
SELECT * FROM tenant_guard.protect('orders_view');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenant_guard.protect('no_such_table');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenant_guard.protect('orders', tenant_column => 'org_id');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenant_guard.protect('orders', mode => 'lenient');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS policies FROM pg_policy WHERE polrelid = 'orders'::regclass;
-- The application role may not call protect or unprotect at all.
SET ROLE tg_prot_app;
SELECT * FROM tenant_guard.protect('orders');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

DROP VIEW orders_view;
DROP TABLE orders;
DROP EXTENSION tenant_guard;
DROP ROLE tg_prot_app;
DROP ROLE tg_prot_owner;
