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

-- For a given token: verified, explained under its context, and the
-- caller's context is exactly what it was afterwards.
BEGIN;
SET LOCAL ROLE tg_explain_app;
SELECT tenant_guard.set_context(:'acme');
SELECT * FROM tenant_guard.explain_access('orders', token => :'agency') WHERE aspect IN ('explained under', 'context', 'reads', 'writes', 'rows returned', 'of which the context reads', 'of which the context writes');
SELECT tenant_guard.tenant_id(), tenant_guard.visible_tenants();
-- A refused token raises its error (28000), and changes nothing either.
SAVEPOINT s;
SELECT * FROM tenant_guard.explain_access('orders', token => 'not.a.token');
ROLLBACK TO s;
SELECT tenant_guard.tenant_id(), tenant_guard.visible_tenants();
ROLLBACK;

-- For a tenant: only for those who may call tenant_guard.as_tenant
-- (superusers and members of tenant_guard.as_tenant_role).
BEGIN;
SET LOCAL ROLE tg_explain_app;
SELECT * FROM tenant_guard.explain_access('orders', tenant => 'globex');
ROLLBACK;
-- A superuser with a session context of its own explains globex's view;
-- its own context is back afterwards.
SELECT tenant_guard.as_tenant('acme', is_local => false);
SELECT * FROM tenant_guard.explain_access('orders', tenant => 'globex') WHERE aspect IN ('explained under', 'context', 'reads', 'rows returned', 'of which the context reads', 'of which the context writes');
SELECT * FROM tenant_guard.explain_access('orders', $$item = 'gizmo'$$, token => :'agency') WHERE aspect IN ('explained under', 'context', 'rows returned', 'of which the context reads', 'of which the context writes');
SELECT tenant_guard.tenant_id();
SELECT tenant_guard.clear_context();
-- A token and a tenant at once: refused (22023).
SELECT * FROM tenant_guard.explain_access('orders', token => :'acme', tenant => 'globex');

DROP EXTENSION tenant_guard CASCADE;
DROP TABLE orders, notes;
DROP ROLE tg_explain_app;
