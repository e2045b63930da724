-- Tests who may change a row's tenant: never a tenant session, an operator may repair
-- The tenant-keeping trigger refuses a tenant change under any tenant
-- context (single, multi-tenant, bypass) and for any role that row-level
-- security restricts. A session without tenant context that row-level
-- security does not restrict (a superuser, a BYPASSRLS role) may move a
-- row, e.g. an orphan row of a preview deployment to its real tenant; a
-- NULL tenant may always be filled in.
CREATE EXTENSION tenant_guard;
CREATE ROLE tg_rep_app LOGIN;
CREATE ROLE tg_rep_ops LOGIN BYPASSRLS;
SELECT tenant_guard.add_key('rep', decode(repeat('e5', 32), 'hex'));
CREATE TABLE tenants (id text PRIMARY KEY, active boolean NOT NULL DEFAULT true);
INSERT INTO tenants VALUES ('acme'), ('globex'), ('deploy-preview-123');
SELECT tenant_guard.use_registry('tenants');
CREATE TABLE projects (tenant_id text NOT NULL, id int, name text, PRIMARY KEY (tenant_id, id));
CREATE TABLE tasks (tenant_id text NOT NULL, id int, project_id int, PRIMARY KEY (tenant_id, id),
                    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON UPDATE CASCADE);
SELECT count(*) AS ddl FROM tenant_guard.protect('projects');
SELECT count(*) AS ddl FROM tenant_guard.protect('tasks');
GRANT SELECT, INSERT, UPDATE, DELETE ON projects, tasks TO tg_rep_app, tg_rep_ops;
INSERT INTO projects VALUES ('acme', 1, 'roadmap'), ('deploy-preview-123', 2, 'billing');
INSERT INTO tasks VALUES ('deploy-preview-123', 20, 2);
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "tenants": ["acme", "globex"], "exp": 4102444800}') AS agency \gset
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'exp', extract(epoch FROM now())::bigint + 300)) AS bypass \gset

-- A tenant session cannot move its own row to another tenant.
\set VERBOSITY sqlstate
SET ROLE tg_rep_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
UPDATE projects SET tenant_id = 'globex' WHERE id = 1;
ROLLBACK;
-- Nor can a multi-tenant context, inside its own set of tenants.
BEGIN;
SELECT tenant_guard.set_context(:'agency');
UPDATE projects SET tenant_id = 'globex' WHERE id = 1;
ROLLBACK;
RESET ROLE;
-- Nor a bypass context, even for a superuser.
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS bypass_set;
UPDATE projects SET tenant_id = 'acme' WHERE id = 2;
ROLLBACK;
\set VERBOSITY default
-- The message says who can.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
UPDATE projects SET tenant_id = 'globex' WHERE id = 1;
ROLLBACK;

-- Updating other columns, or writing the same tenant, is not a change.
SET ROLE tg_rep_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
UPDATE projects SET tenant_id = 'acme', name = 'roadmap 2027' WHERE id = 1;
ROLLBACK;
RESET ROLE;

-- An operator (BYPASSRLS, no context) repairs the orphan project; its task
-- follows through the composite key's ON UPDATE CASCADE.
SET ROLE tg_rep_ops;
UPDATE projects SET tenant_id = 'globex' WHERE tenant_id = 'deploy-preview-123' AND id = 2;
SELECT tenant_id, id FROM projects ORDER BY id;
SELECT tenant_id, id, project_id FROM tasks ORDER BY id;
RESET ROLE;
-- ... and a superuser without context can too.
UPDATE projects SET tenant_id = 'acme' WHERE id = 2;
SELECT tenant_id, id FROM tasks ORDER BY id;

-- The owner of a table whose row-level security is forced is a tenant
-- session like any other there: it cannot move a row either.
CREATE TABLE owned (tenant_id text, id int PRIMARY KEY);
INSERT INTO owned VALUES ('acme', 1), (NULL, 2);
ALTER TABLE owned OWNER TO tg_rep_app;
SELECT count(*) AS ddl FROM tenant_guard.protect('owned');
SET ROLE tg_rep_app;
\set VERBOSITY sqlstate
BEGIN;
SELECT tenant_guard.set_context(:'acme');
UPDATE owned SET tenant_id = 'globex' WHERE id = 1;
ROLLBACK;
\set VERBOSITY default
RESET ROLE;
-- A NULL tenant may be filled in (a backfill), by anyone who may update.
UPDATE owned SET tenant_id = 'acme' WHERE id = 2;
SELECT tenant_id, id FROM owned ORDER BY id;

-- Nor through a foreign key's ON UPDATE CASCADE from a table it may update:
-- the cascade runs as the child's owner, but the session's own role is one
-- that row-level security restricts, context or not.
CREATE TABLE accounts (id text PRIMARY KEY);
INSERT INTO accounts VALUES ('acme'), ('globex');
CREATE TABLE docs (tenant_id text NOT NULL REFERENCES accounts (id) ON UPDATE CASCADE,
                   id int PRIMARY KEY, body text);
INSERT INTO docs VALUES ('globex', 1, 'globex secret');
SELECT count(*) AS ddl FROM tenant_guard.protect('docs');
GRANT UPDATE, SELECT ON accounts TO tg_rep_app;
GRANT SELECT ON docs TO tg_rep_app;
SET ROLE tg_rep_app;
UPDATE accounts SET id = 'acme_old' WHERE id = 'acme';
\set VERBOSITY sqlstate
UPDATE accounts SET id = 'acme' WHERE id = 'globex';
\set VERBOSITY default
RESET ROLE;
SELECT tenant_id, id, body FROM docs;

DROP TABLE docs, accounts;
DROP TABLE tasks, projects, owned, tenants;
DROP EXTENSION tenant_guard;
DROP ROLE tg_rep_app;
DROP ROLE tg_rep_ops;
