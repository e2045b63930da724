-- Tests tenant_guard.explain_access: why rows are visible or writable, and that it shows an application role nothing more than its context reads
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('k1', decode(repeat('a1', 32), 'hex'));
CREATE ROLE tg_explain_app LOGIN;
\set VERBOSITY sqlstate
CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL, item text);
INSERT INTO orders VALUES (1, 'acme', 'anvil'), (2, 'acme', 'rocket'), (3, 'globex', 'gizmo');
SELECT count(*) > 0 AS protected FROM tenant_guard.protect('orders');
-- Another permissive policy of the application's own, listed as not ours.
CREATE POLICY app_extra ON orders FOR SELECT USING (item <> 'secret');
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO tg_explain_app;
SELECT tenant_guard.sign('{"tenant_id": "acme", "sub": "alice", "exp": 4102444800}') AS acme \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "tenants": ["acme", "globex"], "exp": 4102444800}') AS agency \gset

-- As the application role under acme's context: the context, row-level
-- security, every policy, and the rows its own query returns.
BEGIN;
SET LOCAL ROLE tg_explain_app;
SELECT tenant_guard.set_context(:'acme');
SELECT * FROM tenant_guard.explain_access('orders');
-- A filter naming another tenant's rows learns nothing: the counts are the
-- caller's own queries, filtered by row-level security.
SELECT * FROM tenant_guard.explain_access('orders', $$tenant_id = 'globex'$$) WHERE aspect LIKE '%rows%' OR aspect LIKE 'of which%';
-- The filter is the caller's SQL, run as the caller: no way around the policies.
SELECT * FROM tenant_guard.explain_access('orders', 'true) OR (true') WHERE aspect LIKE 'rows%' OR aspect LIKE 'of which%';
ROLLBACK;

-- A multi-tenant context reads two tenants and writes one.
BEGIN;
SET LOCAL ROLE tg_explain_app;
SELECT tenant_guard.set_context(:'agency');
SELECT * FROM tenant_guard.explain_access('orders') WHERE aspect IN ('reads', 'writes', 'rows returned', 'of which the context reads', 'of which the context writes');
ROLLBACK;

-- Without a context the application role's query fails closed, and says so.
SET ROLE tg_explain_app;
SELECT * FROM tenant_guard.explain_access('orders') WHERE aspect IN ('context', 'rows returned');
RESET ROLE;

-- A superuser (row-level security does not apply) sees every row, and
-- which of them a context would read and write.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT * FROM tenant_guard.explain_access('orders') WHERE aspect IN ('row-level security', 'rows returned', 'of which the context reads', 'of which the context writes');
ROLLBACK;

-- A table tenant_guard does not protect.
CREATE TABLE notes (id int);
SELECT * FROM tenant_guard.explain_access('notes') WHERE aspect IN ('protected', 'rows returned');

DROP EXTENSION tenant_guard CASCADE;
DROP TABLE orders, notes;
DROP ROLE tg_explain_app;
