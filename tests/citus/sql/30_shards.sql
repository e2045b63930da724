-- Tests that the protection survives what Citus does to shards: a shard
-- move, a rebalance, a new table with on_new_table, unprotect/protect and
-- undistribute_table; and that the DDL guard and the advisor know the Citus
-- policy shape.
\set VERBOSITY sqlstate
\set SHOW_CONTEXT never
\getenv w1_host W1_HOST
\getenv w1_port W1_PORT
\getenv w2_host W2_HOST
\getenv w2_port W2_PORT
SET client_min_messages = warning;
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset
SELECT tenant_guard.sign('{"tenant_id": "globex", "exp": 4102444800}') AS globex \gset

-- What each tenant sees, as the application role (a fresh transaction per
-- tenant: router and multi-shard paths).
\set seen 'BEGIN; SELECT tenant_guard.set_context(:''acme'') IS NOT NULL AS acme_ctx; SELECT string_agg(tenant_id || '':'' || id, '','' ORDER BY tenant_id, id) AS acme_sees FROM orders; SELECT count(*) AS acme_globex_rows FROM orders WHERE tenant_id = ''globex''; COMMIT; BEGIN; SELECT tenant_guard.set_context(:''globex'') IS NOT NULL AS globex_ctx; SELECT string_agg(tenant_id || '':'' || id, '','' ORDER BY tenant_id, id) AS globex_sees FROM orders; COMMIT;'

-- A shard of orders (with its co-located order_lines shard) moves from the
-- first worker to the second. Citus builds the new placement from the
-- table's definition: the same permissive tenant policies.
SELECT min(shardid) AS moved FROM pg_dist_placement JOIN pg_dist_shard USING (shardid)
  JOIN pg_dist_node USING (groupid)
 WHERE logicalrelid = 'orders'::regclass AND nodeport = :w1_port \gset
SELECT citus_move_shard_placement(:moved, :'w1_host', :w1_port, :'w2_host', :w2_port, shard_transfer_mode => 'block_writes');
SELECT nodeport = :w2_port AS on_second_worker, result AS moved_shard_policies
  FROM run_command_on_placements('orders',
       $$SELECT string_agg(polname || (CASE WHEN polpermissive THEN ' permissive' ELSE ' restrictive' END), ', ' ORDER BY polname) FROM pg_policy WHERE polrelid = '%s'::regclass$$)
 WHERE shardid = :moved;
SET ROLE tg_citus_app;
:seen
RESET ROLE;

-- A rebalance moves shards back; every placement of both tables still has
-- the four policies.
SELECT nodeport = :w1_port AS first_worker, count(*) AS orders_shards
  FROM pg_dist_placement JOIN pg_dist_node USING (groupid) JOIN pg_dist_shard USING (shardid)
 WHERE logicalrelid = 'orders'::regclass GROUP BY 1 ORDER BY 1;
SELECT rebalance_table_shards(shard_transfer_mode => 'block_writes');
SELECT nodeport = :w1_port AS first_worker, count(*) AS orders_shards
  FROM pg_dist_placement JOIN pg_dist_node USING (groupid) JOIN pg_dist_shard USING (shardid)
 WHERE logicalrelid = 'orders'::regclass GROUP BY 1 ORDER BY 1;
SELECT result AS tenant_guard_policies, count(*) AS placements
  FROM (SELECT result FROM run_command_on_placements('orders', $$SELECT count(*) FROM pg_policy WHERE polrelid = '%s'::regclass AND polname LIKE 'tenant_guard_%%' AND polpermissive$$)
        UNION ALL
        SELECT result FROM run_command_on_placements('order_lines', $$SELECT count(*) FROM pg_policy WHERE polrelid = '%s'::regclass AND polname LIKE 'tenant_guard_%%' AND polpermissive$$)) r
 GROUP BY 1;
SET ROLE tg_citus_app;
:seen
RESET ROLE;

-- In the Citus shape another permissive policy would widen access (it is
-- ORed with the tenant rules): the DDL guard refuses to add one, even for
-- the superuser; a restrictive one narrows access and is allowed.
CREATE POLICY open_all ON orders AS PERMISSIVE USING (true);
CREATE POLICY only_small ON orders AS RESTRICTIVE USING (id < 1000);
DROP POLICY only_small ON orders;
-- Through the emergency door, the drift check and the advisor report it.
SET tenant_guard.ddl_guard = off;
CREATE POLICY open_all ON orders AS PERMISSIVE USING (true);
RESET tenant_guard.ddl_guard;
SELECT tenant_guard.protection_drift('orders');
SELECT code, object FROM tenant_guard.advisor WHERE code IN ('protection_drift', 'no_restrictive_policy') ORDER BY 1, 2;
DROP POLICY open_all ON orders;
SELECT code, object FROM tenant_guard.advisor WHERE code IN ('protection_drift', 'no_restrictive_policy') ORDER BY 1, 2;

-- on_new_table = protect, set for the database (Citus propagates it to the
-- workers): the coordinator protects the new table; the workers leave the
-- shards Citus creates to Citus, so distribution works.
ALTER DATABASE tg_citus SET tenant_guard.on_new_table = protect;
\c
SET client_min_messages = warning;
\set VERBOSITY sqlstate
CREATE TABLE invoices (tenant_id text NOT NULL, id int NOT NULL, total numeric NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT relid::text FROM tenant_guard.protected WHERE relid = 'invoices'::regclass;
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('invoices', 'tenant_id', colocate_with => 'orders');
RESET citus.enable_unsafe_triggers;
SELECT result AS worker_protected_tables FROM run_command_on_workers($$SELECT count(*) FROM tenant_guard.protected$$);
SELECT result AS invoices_placement_policies, count(*) AS placements
  FROM run_command_on_placements('invoices', $$SELECT count(*) FROM pg_policy WHERE polrelid = '%s'::regclass AND polname LIKE 'tenant_guard_%%' AND polpermissive$$)
 GROUP BY 1;
ALTER DATABASE tg_citus RESET tenant_guard.on_new_table;
INSERT INTO invoices VALUES ('acme', 1, 10), ('globex', 1, 20);
GRANT SELECT ON invoices TO tg_citus_app;
SET ROLE tg_citus_app;
BEGIN;
SELECT tenant_guard.set_context(:'globex') AS tenant;
SELECT * FROM invoices;
COMMIT;
RESET ROLE;

-- unprotect on a distributed table removes the policies from every shard;
-- protect puts them back.
SELECT count(*) AS ddl FROM tenant_guard.unprotect('invoices');
SELECT result AS policies_after_unprotect, count(*) AS placements
  FROM run_command_on_placements('invoices', $$SELECT count(*) FROM pg_policy WHERE polrelid = '%s'::regclass$$)
 GROUP BY 1;
SELECT count(*) AS ddl FROM tenant_guard.protect('invoices');
SELECT result AS policies_after_protect, count(*) AS placements
  FROM run_command_on_placements('invoices', $$SELECT count(*) FROM pg_policy WHERE polrelid = '%s'::regclass AND polpermissive$$)
 GROUP BY 1;
SELECT tenant_guard.protection_drift('invoices');

-- undistribute_table builds a new local table, copies the policies to it
-- and drops the distributed one. With on_new_table = protect in effect,
-- the new table is protected before Citus copies the policies, and Citus
-- fails on the duplicate (42710, nothing changed): switch it off for the
-- conversion.
SHOW tenant_guard.on_new_table;
SELECT undistribute_table('invoices');
SET tenant_guard.on_new_table = off;
SELECT undistribute_table('invoices');
RESET tenant_guard.on_new_table;
-- The new table has the same policies; it is recorded again by protect
-- (the distributed one was dropped, and forgotten with it).
SELECT polname, polpermissive FROM pg_policy WHERE polrelid = 'invoices'::regclass ORDER BY 1;
SELECT count(*) AS recorded FROM tenant_guard.protected WHERE relid = 'invoices'::regclass;
SELECT count(*) AS ddl FROM tenant_guard.protect('invoices');
SELECT tenant_guard.protection_drift('invoices');
SET ROLE tg_citus_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme') AS tenant;
SELECT * FROM invoices;
COMMIT;
RESET ROLE;
