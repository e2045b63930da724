-- Tests multi-tenant and bypass tokens on a protected table
-- A token may read a set of tenants ("tenants" claim) and write the one its
-- tenant claim names. A bypass token (bypass: true) reads every tenant of the
-- registry, must be short-lived, and is logged on every use. Neither changes
-- the shape of the policy, so ordinary tenant queries keep their index scans.
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('main', decode(repeat('a1', 32), 'hex'));
CREATE ROLE tg_multi_app LOGIN;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE tenants (id text PRIMARY KEY, active boolean NOT NULL DEFAULT true);
INSERT INTO tenants VALUES ('acme', true), ('globex', true), ('initech', true), ('umbrella', false);
CREATE TABLE tickets (id int PRIMARY KEY, tenant_id text NOT NULL, title text);
CREATE INDEX tickets_tenant_idx ON tickets (tenant_id, id);
INSERT INTO tickets VALUES (1, 'acme', 'a'), (2, 'globex', 'g'), (3, 'initech', 'i'), (4, 'umbrella', 'u');
GRANT SELECT, INSERT, UPDATE, DELETE ON tickets TO tg_multi_app;
SELECT count(*) FROM tenant_guard.protect('tickets');

-- Short-lived tokens need a current clock: iat/exp relative to now.
SELECT extract(epoch FROM now())::bigint AS now_s \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "tenants": ["acme", "globex"], "sub": "agent", "exp": 4102444800}') AS agency \gset
SELECT tenant_guard.sign('{"tenant_id": "initech", "tenants": ["acme", "globex"], "exp": 4102444800}') AS outside_set \gset
SELECT tenant_guard.sign('{"tenant_id": "globex", "tenants": ["globex", "initech"], "exp": 4102444800}') AS agency2 \gset
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'sub', 'support', 'iat', :now_s, 'exp', :now_s + 600)) AS bypass \gset
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'tenant_id', 'globex', 'iat', :now_s, 'exp', :now_s + 600)) AS bypass_globex \gset
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'iat', :now_s, 'exp', :now_s + 3600)) AS bypass_long \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset

SET ROLE tg_multi_app;

-- An ordinary token reads and writes its own tenant; the sets are proper
-- text arrays.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT tenant_guard.visible_tenants(), tenant_guard.writable_tenants(),
       array_dims(tenant_guard.visible_tenants()) AS dims,
       tenant_guard.visible_tenants() = ARRAY['acme'] AS equals_literal,
       'acme' = ANY (tenant_guard.visible_tenants()) AS contains;
ROLLBACK;
RESET ROLE;
SET tenant_guard.missing_context = 'empty';
SELECT tenant_guard.visible_tenants(), cardinality(tenant_guard.visible_tenants()) AS n,
       tenant_guard.visible_tenants() = '{}'::text[] AS equals_empty;
RESET tenant_guard.missing_context;
SET ROLE tg_multi_app;

-- An agency token reads both of its tenants and writes only its own.
BEGIN;
SELECT tenant_guard.set_context(:'agency');
SELECT tenant_guard.visible_tenants(), tenant_guard.writable_tenants(), tenant_guard.is_bypass();
SELECT id, tenant_id FROM tickets ORDER BY id;
INSERT INTO tickets (id, title) VALUES (10, 'new') RETURNING tenant_id;
INSERT INTO tickets VALUES (11, 'globex', 'into the other tenant');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'agency');
UPDATE tickets SET title = 'edited' WHERE id = 2 RETURNING id;
DELETE FROM tickets WHERE id = 2 RETURNING id;
ROLLBACK;
-- The write tenant must be one of the set.
BEGIN;
SELECT tenant_guard.set_context(:'outside_set');
ROLLBACK;

-- Bypass tokens need a registry: it is the list of "every tenant".
BEGIN;
SELECT tenant_guard.set_context(:'bypass');
ROLLBACK;
RESET ROLE;
SELECT tenant_guard.use_registry('tenants', 'id', 'active');
SET ROLE tg_multi_app;

-- A bypass token reads every active tenant; the use is logged.
SET client_min_messages = log;
BEGIN;
SELECT tenant_guard.set_context(:'bypass');
RESET client_min_messages;
SELECT tenant_guard.is_bypass(), tenant_guard.tenant_id(), tenant_guard.visible_tenants();
SELECT id, tenant_id FROM tickets ORDER BY id;
-- Without a tenant claim it may write to any tenant it reads...
UPDATE tickets SET title = 'fixed by support' WHERE id = 3 RETURNING id, tenant_id;
-- ...but not move rows between tenants.
UPDATE tickets SET tenant_id = 'acme' WHERE id = 3;
ROLLBACK;
-- With a tenant claim, writes go to that tenant only.
BEGIN;
SELECT tenant_guard.set_context(:'bypass_globex');
SELECT tenant_guard.writable_tenants();
INSERT INTO tickets VALUES (12, 'acme', 'support insert');
ROLLBACK;
-- The bypass read set is the registry as of the transaction's first
-- statement that reads a protected table: it is never copied into the
-- context (which stays as small as a tenant's, whatever the registry's
-- size), so a tenant registered or deactivated after set_context is seen.
BEGIN;
SELECT tenant_guard.set_context(:'bypass');
RESET ROLE;
SELECT length(current_setting('tenant_guard.context')) < 400 AS small_context;
UPDATE tenants SET active = true WHERE id = 'umbrella';
UPDATE tenants SET active = false WHERE id = 'initech';
SET ROLE tg_multi_app;
SELECT tenant_guard.visible_tenants();
SELECT id, tenant_id FROM tickets ORDER BY id;
ROLLBACK;
-- A multi-tenant set is built once per expression and statement, and again
-- when the context changes: a scan that switches context midway sees the
-- new context's set from then on (here from {acme, globex} to {globex,
-- initech} at row 2).
RESET ROLE;
CREATE FUNCTION pg_temp.switch_at(id int, tok text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF id = 2 THEN PERFORM tenant_guard.set_context(tok); END IF;
  RETURN true;
END $$;
SET tenant_guard.missing_context = 'empty';
BEGIN;
SELECT tenant_guard.set_context(:'agency');
SELECT t.id, t.tenant_id, t.tenant_id = ANY (tenant_guard.visible_tenants()) AS visible
  FROM (VALUES (1, 'acme'), (2, 'acme'), (3, 'initech'), (4, 'globex')) t(id, tenant_id)
 WHERE pg_temp.switch_at(t.id, :'agency2');
ROLLBACK;
RESET tenant_guard.missing_context;
SET ROLE tg_multi_app;
-- A bypass token living longer than tenant_guard.max_bypass_lifetime (15 min).
BEGIN;
SELECT tenant_guard.set_context(:'bypass_long');
ROLLBACK;

-- The tenant rule is an index condition for every kind of context, so a
-- bypass mechanism costs ordinary tenant queries nothing.
RESET ROLE;
INSERT INTO tickets SELECT g, 't' || (g % 500), 'bulk' FROM generate_series(100, 30099) g;
ANALYZE tickets;
SET ROLE tg_multi_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
EXPLAIN (COSTS OFF) SELECT title FROM tickets WHERE id = 1;
EXPLAIN (COSTS OFF) SELECT count(*) FROM tickets;
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(:'agency');
EXPLAIN (COSTS OFF) SELECT count(*) FROM tickets;
SELECT count(*) FROM tickets;
COMMIT;

-- Plans do not depend on who planned them. The planner estimates the
-- policy's rule with the context's own tenant, never with its read set: a
-- statement prepared under a token that reads 400 tenants (a generic plan,
-- reused as is) keeps the index scan of a one-tenant query when a
-- single-tenant request executes it, and each execution still gets its own
-- context's rows.
RESET ROLE;
SELECT tenant_guard.use_registry(NULL);
SELECT tenant_guard.sign(jsonb_build_object('tenant_id', 't1', 'exp', 4102444800,
         'tenants', (SELECT jsonb_agg('t' || g) FROM generate_series(0, 399) g))) AS wide \gset
SELECT tenant_guard.sign('{"tenant_id": "t7", "exp": 4102444800}') AS t7 \gset
SET ROLE tg_multi_app;
BEGIN;
SELECT tenant_guard.set_context(:'wide');
PREPARE per_tenant AS SELECT count(*) FROM tickets WHERE title = 'bulk';
EXPLAIN (COSTS OFF) EXECUTE per_tenant;
EXECUTE per_tenant;
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(:'t7');
EXPLAIN (COSTS OFF) EXECUTE per_tenant;
EXECUTE per_tenant;
COMMIT;
DEALLOCATE per_tenant;

-- Where tenants own a few rows each, the planner's plan for one tenant is a
-- plain index scan, which for a read set of 400 tenants would visit the
-- table once per row, in index order. A scan whose only index condition is
-- the tenant rule is therefore a bitmap scan on the tenant index, for every
-- context alike (the same plan whoever planned it, and each context gets
-- exactly its rows). A key looked up within the tenant keeps its index scan.
RESET ROLE;
CREATE TABLE notes (id int PRIMARY KEY, tenant_id text NOT NULL, body text);
CREATE INDEX notes_tenant_idx ON notes (tenant_id);
INSERT INTO notes SELECT g, 't' || (g % 5000), 'n' FROM generate_series(1, 10000) g;
ANALYZE notes;
GRANT SELECT ON notes TO tg_multi_app;
SELECT count(*) FROM tenant_guard.protect('notes');
SET ROLE tg_multi_app;
BEGIN;
SELECT tenant_guard.set_context(:'t7');
EXPLAIN (COSTS OFF) SELECT count(*) FROM notes;
SELECT count(*), min(id), max(id) FROM notes;
EXPLAIN (COSTS OFF) SELECT body FROM notes WHERE id = 5007;
SELECT id, body FROM notes WHERE id = 5007;
SELECT id FROM notes WHERE id = 5008;
-- With bitmap scans turned off the planner's own choice stands.
SET LOCAL enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*), max(body) FROM notes;
SELECT count(*), max(body) FROM notes;
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(:'wide');
EXPLAIN (COSTS OFF) SELECT count(*) FROM notes;
SELECT count(*), count(DISTINCT tenant_id), min(id), max(id) FROM notes;
COMMIT;
RESET ROLE;
SELECT count(*), count(DISTINCT tenant_id), min(id), max(id) FROM notes
 WHERE tenant_id = ANY (ARRAY(SELECT 't' || g FROM generate_series(0, 399) g));
DROP TABLE notes;

RESET ROLE;
DROP TABLE tickets;
DROP TABLE tenants;
DROP EXTENSION tenant_guard;
DROP ROLE tg_multi_app;
