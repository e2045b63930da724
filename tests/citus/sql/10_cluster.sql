-- Tests tenant_guard on a Citus cluster: installation, keys on every node,
-- protect before and after distribution, and what the shards carry.
--
-- The cluster: this coordinator and two workers (tests/citus/run), Citus
-- 13 on PostgreSQL 15, four shards per distributed table.
\set VERBOSITY terse
\set SHOW_CONTEXT never
\getenv w1_host W1_HOST
\getenv w1_port W1_PORT

-- CREATE EXTENSION on the coordinator reaches the workers (Citus
-- propagates extensions), and so do roles.
CREATE EXTENSION tenant_guard;
SELECT result AS worker_extversion FROM run_command_on_workers($$SELECT extversion FROM pg_extension WHERE extname = 'tenant_guard'$$);
CREATE ROLE tg_citus_app LOGIN;

-- Keys: each node verifies tokens with its own key ring. sync_nodes copies
-- the coordinator's ring (and registry settings) to every worker: one row
-- per worker.
SELECT tenant_guard.add_key('main', decode(repeat('a1', 32), 'hex'));
SELECT nodeport > 0 AS has_port, success, result FROM tenant_guard.sync_nodes();
SELECT result AS worker_keys FROM run_command_on_workers($$SELECT string_agg(kid || ':' || status, ',') FROM tenant_guard.key_status$$);
-- Retiring a key and syncing again retires it everywhere.
SELECT tenant_guard.add_key('old', decode(repeat('b2', 32), 'hex'));
SELECT tenant_guard.retire_key('old');
SELECT count(*) FILTER (WHERE success) AS synced FROM tenant_guard.sync_nodes();
SELECT result AS worker_keys FROM run_command_on_workers($$SELECT string_agg(kid || ':' || status, ',' ORDER BY kid) FROM tenant_guard.key_status$$);
-- Not for PUBLIC.
SET ROLE tg_citus_app;
SELECT * FROM tenant_guard.sync_nodes();
RESET ROLE;

-- The schema: a reference table of tenants and two co-located tenant tables.
CREATE TABLE tenants (id text PRIMARY KEY, name text NOT NULL, active boolean NOT NULL DEFAULT true);
CREATE TABLE orders (tenant_id text NOT NULL, id int NOT NULL, item text, PRIMARY KEY (tenant_id, id));
CREATE TABLE order_lines (tenant_id text NOT NULL, id int NOT NULL, order_id int NOT NULL, qty int NOT NULL,
                          PRIMARY KEY (tenant_id, id));

-- With Citus installed, protect writes the tenant rules as per-command
-- PERMISSIVE policies, without a USING (true) policy: Citus re-creates
-- policies on shards as permissive, and this shape means the same there.
SELECT count(*) AS ddl FROM tenant_guard.protect('orders');
SELECT polname, polpermissive, polcmd FROM pg_policy WHERE polrelid = 'orders'::regclass ORDER BY 1;

-- Distributing a protected table: its triggers only raise errors, so they
-- are safe on every shard, but Citus wants that said.
SELECT create_distributed_table('orders', 'tenant_id');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('orders', 'tenant_id');
SELECT create_distributed_table('order_lines', 'tenant_id', colocate_with => 'orders');
RESET citus.enable_unsafe_triggers;
SELECT create_reference_table('tenants');

-- protect after distribution: the policies and triggers reach every shard;
-- the default is the coordinator's (Citus evaluates it there to route the
-- row, and refuses ALTER ... SET DEFAULT on a distribution column).
SELECT count(*) AS ddl FROM tenant_guard.protect('order_lines');
SELECT pg_get_expr(d.adbin, d.adrelid) AS coordinator_default
  FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
 WHERE d.adrelid = 'order_lines'::regclass AND a.attname = 'tenant_id';
-- A composite tenant foreign key between co-located tables.
SELECT * FROM tenant_guard.add_tenant_fk('order_lines', ARRAY['order_id'], 'orders', ARRAY['id']);

-- Citus does not propagate a BEFORE TRUNCATE trigger created after
-- distribution: the advisor checks every placement, names those without it,
-- and gives the remedy, run here.
SELECT count(*) AS placements_without_truncate_trigger FROM tenant_guard.advisor
 WHERE code = 'shard_policy_drift' AND detail LIKE '%: trigger tenant_guard_no_truncate missing';
\o /dev/null
SELECT DISTINCT remedy FROM tenant_guard.advisor WHERE code = 'shard_policy_drift' \gexec
\o
SELECT count(*) AS shard_findings FROM tenant_guard.advisor WHERE code = 'shard_policy_drift';

-- A tenant-blind unique key keeps a table from being distributed (Citus
-- wants the distribution column in every unique key); scope_unique makes
-- it per tenant, and the table distributes, co-located.
CREATE TABLE coupons (tenant_id text NOT NULL, id int NOT NULL, code text NOT NULL CONSTRAINT coupons_code_key UNIQUE,
                      PRIMARY KEY (tenant_id, id));
SELECT count(*) AS ddl FROM tenant_guard.protect('coupons');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('coupons', 'tenant_id', colocate_with => 'orders');
SELECT * FROM tenant_guard.scope_unique('coupons', 'coupons_code_key');
SELECT create_distributed_table('coupons', 'tenant_id', colocate_with => 'orders');
RESET citus.enable_unsafe_triggers;
INSERT INTO coupons VALUES ('acme', 1, 'WELCOME'), ('globex', 1, 'WELCOME');
INSERT INTO coupons VALUES ('acme', 2, 'WELCOME');

-- Every shard placement of both tables: four permissive tenant_guard
-- policies, the tenant-change and TRUNCATE triggers, nothing restrictive.
SELECT result AS worker_shards_policies_triggers FROM run_command_on_workers($$
  SELECT count(DISTINCT c.oid) || ' shards, '
         || (SELECT count(*) FROM pg_policy p JOIN pg_class s ON s.oid = p.polrelid
              WHERE s.relname ~ '^(orders|order_lines)_[0-9]+$' AND p.polname LIKE 'tenant_guard_%' AND p.polpermissive) || ' permissive, '
         || (SELECT count(*) FROM pg_policy p JOIN pg_class s ON s.oid = p.polrelid
              WHERE s.relname ~ '^(orders|order_lines)_[0-9]+$' AND NOT p.polpermissive) || ' restrictive, '
         || (SELECT count(*) FROM pg_trigger t JOIN pg_class s ON s.oid = t.tgrelid
              WHERE s.relname ~ '^(orders|order_lines)_[0-9]+$' AND t.tgname LIKE 'tenant_guard_%') || ' triggers'
    FROM pg_class c WHERE c.relname ~ '^(orders|order_lines)_[0-9]+$' AND c.relkind = 'r'$$);

-- Rows of two tenants, written by the superuser.
INSERT INTO tenants VALUES ('acme', 'Acme'), ('globex', 'Globex');
INSERT INTO orders VALUES ('acme', 1, 'anvil'), ('acme', 2, 'rocket'), ('globex', 1, 'gear'), ('globex', 2, 'bolt');
INSERT INTO order_lines VALUES ('acme', 1, 1, 5), ('acme', 2, 2, 1), ('globex', 1, 1, 7), ('globex', 2, 2, 3);
GRANT SELECT ON tenants TO tg_citus_app;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON orders, order_lines TO tg_citus_app;

-- The drift check agrees with the Citus shape.
SELECT tenant_guard.protection_drift('orders') AS orders_drift, tenant_guard.protection_drift('order_lines') AS lines_drift;
