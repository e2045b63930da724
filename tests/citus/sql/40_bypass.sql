-- Bypass tokens on a Citus cluster, as the application role (tables and rows
-- from 10_cluster: tenants acme and globex, two orders each).
--
-- A bypass token that reaches a node through tenant_guard.forwarded_token is
-- read in registry mode: every tenant of the registry, readable and
-- writable. Where tenant_guard.bypass_role is set, bypass is meant to be
-- read-only (a transaction as that role), so a node takes a forwarded bypass
-- token only in a session whose role has BYPASSRLS: the worker connections
-- of a coordinator transaction that switched to the bypass role. A session
-- that writes the token into the setting itself is refused (42501).
\set VERBOSITY sqlstate
\set SHOW_CONTEXT never
-- A registry on every node: a plain table of the same name on each (a
-- reference table cannot serve as the registry, docs/citus.md), named by
-- use_registry and copied to the workers by sync_nodes.
CREATE TABLE tg_citus_registry (id text PRIMARY KEY);
INSERT INTO tg_citus_registry VALUES ('acme'), ('globex');
SELECT success, result FROM run_command_on_workers($$CREATE TABLE public.tg_citus_registry (id text PRIMARY KEY)$$);
SELECT success, result FROM run_command_on_workers($$INSERT INTO public.tg_citus_registry VALUES ('acme'), ('globex')$$);
SELECT tenant_guard.use_registry('tg_citus_registry');
SELECT count(*) FILTER (WHERE success) AS synced FROM tenant_guard.sync_nodes();
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'sub', 'support',
  'iat', extract(epoch FROM now())::bigint, 'exp', extract(epoch FROM now())::bigint + 600)) AS bypass \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset

-- Without tenant_guard.bypass_role, a forwarded bypass token is what
-- set_context(bypass token) gives on one node: every tenant of the registry.
SET ROLE tg_citus_app;
BEGIN;
SET LOCAL citus.propagate_set_commands = 'local';
SET LOCAL tenant_guard.forwarded_token = :'bypass';
SELECT tenant_id, id FROM orders ORDER BY 1, 2;
ROLLBACK;
RESET ROLE;

-- With it (set for the database, which Citus copies to the workers; a new
-- session reads it), a bypass token written into the forwarded setting by
-- the application role is refused on the node that reads it, and the
-- transaction changed nothing.
-- (LOGIN: the coordinator's worker connections of a bypass transaction
-- log in as the role.)
CREATE ROLE tg_citus_support LOGIN BYPASSRLS;
GRANT SELECT ON orders TO tg_citus_support;
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET tenant_guard.bypass_role = 'tg_citus_support';
SELECT result AS worker_bypass_role FROM run_command_on_workers($$SELECT setconfig::text FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())$$);
\c
\set VERBOSITY sqlstate
\set SHOW_CONTEXT never
SET ROLE tg_citus_app;
BEGIN;
SET LOCAL citus.propagate_set_commands = 'local';
SET LOCAL tenant_guard.forwarded_token = :'bypass';
SELECT tenant_id, id FROM orders ORDER BY 1, 2;
ROLLBACK;
BEGIN;
SET LOCAL citus.propagate_set_commands = 'local';
SET LOCAL tenant_guard.forwarded_token = :'bypass';
UPDATE orders SET item = 'bypassed' WHERE tenant_id = 'globex';
ROLLBACK;
-- The message, from the coordinator (tenant_guard.tenant_id() reads the
-- context there).
\set VERBOSITY default
BEGIN;
SET LOCAL tenant_guard.forwarded_token = :'bypass';
SELECT tenant_guard.tenant_id();
ROLLBACK;
\set VERBOSITY sqlstate
-- A tenant token forwarded the same way is still taken: acme's rows only.
BEGIN;
SET LOCAL citus.propagate_set_commands = 'local';
SET LOCAL tenant_guard.forwarded_token = :'acme';
SELECT tenant_id, id FROM orders ORDER BY 1, 2;
ROLLBACK;
-- The way bypass is meant to reach the workers: set_context with the bypass
-- token on the coordinator switches to the bypass role, whose worker
-- connections then take the forwarded token. Every tenant's rows, read-only.
BEGIN;
SELECT tenant_guard.set_context(:'bypass') AS tenant;
SELECT current_user;
SELECT tenant_id, id FROM orders ORDER BY 1, 2;
UPDATE orders SET item = 'bypassed' WHERE tenant_id = 'globex';
ROLLBACK;
-- The workers' side of that transaction is read-only too. Here the
-- application role's SECURITY DEFINER function, which Citus runs on the
-- workers, updates globex's shards after the bypass context was read there
-- (is_bypass() first in the select list): 25006, nothing written.
RESET ROLE;
GRANT CREATE ON SCHEMA public TO tg_citus_app;
SET ROLE tg_citus_app;
CREATE FUNCTION public.tg_citus_write_globex() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $f$
DECLARE r record; n int; total int := 0;
BEGIN
  FOR r IN SELECT relname FROM pg_class WHERE relname ~ '^orders_[0-9]+$' AND relkind = 'r' LOOP
    EXECUTE format('UPDATE public.%I SET item = %L WHERE tenant_id = %L', r.relname, 'bypassed', 'globex');
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
  END LOOP;
  RETURN total;
END $f$;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') AS tenant;
SELECT tenant_id, id, tenant_guard.is_bypass() AS bypass, public.tg_citus_write_globex() AS updated
  FROM orders ORDER BY 1, 2;
COMMIT;
DROP FUNCTION public.tg_citus_write_globex();
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM tg_citus_app;
SELECT tenant_id, id, item FROM orders WHERE item = 'bypassed';

-- Back as it was, for the specs after this one.
ALTER DATABASE :"db" RESET tenant_guard.bypass_role;
SELECT tenant_guard.use_registry(NULL);
SELECT count(*) FILTER (WHERE success) AS synced FROM tenant_guard.sync_nodes();
