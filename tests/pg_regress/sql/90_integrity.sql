-- Tests tenant integrity: composite foreign keys, backfill, NOT NULL and
-- tenant-scoped unique constraints, on dirty data and camelCase names
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('main', decode(repeat('a1', 32), 'hex'));
CREATE ROLE tg_int_app LOGIN;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- An ORM-made schema: "Account" <- "Project" <- "Task", camelCase tenant
-- column, single-column foreign keys, NULL tenants on the children, and a
-- globally unique project code.
CREATE TABLE "Account" (id int PRIMARY KEY, "tenantId" text NOT NULL, name text);
CREATE TABLE "Project" (id int PRIMARY KEY, "tenantId" text, "accountId" int REFERENCES "Account" (id) ON DELETE CASCADE,
                        code text CONSTRAINT "Project_code_key" UNIQUE);
CREATE TABLE "Task" (id int PRIMARY KEY, "tenantId" text, "projectId" int CONSTRAINT "Task_projectId_fkey" REFERENCES "Project" (id) ON DELETE SET NULL DEFERRABLE);
INSERT INTO "Account" VALUES (1, 'acme', 'Acme'), (2, 'globex', 'Globex');
INSERT INTO "Project" VALUES (10, NULL, 1, 'P-1'), (11, NULL, 1, 'P-2'), (20, NULL, 2, 'P-3'), (30, NULL, NULL, 'P-4');
INSERT INTO "Task" SELECT g, NULL, CASE WHEN g % 2 = 0 THEN 10 ELSE 20 END FROM generate_series(1, 6) g;
INSERT INTO "Task" VALUES (7, NULL, 30), (8, NULL, NULL);
SET tenant_guard.tenant_column = 'tenantId';

-- Backfill through two levels: projects from accounts, then tasks from
-- projects. Rows whose parent has no tenant stay NULL and are reported.
SELECT tenant_guard.backfill_tenant('"Project"', 'Project_accountId_fkey', batch_size => 2);
SELECT tenant_guard.backfill_tenant('"Task"', 'Task_projectId_fkey', batch_size => 3);
SELECT id, "tenantId" FROM "Task" ORDER BY id;
-- A second run has nothing left to do.
SELECT tenant_guard.backfill_tenant('"Task"', 'Task_projectId_fkey');
-- Bad input.
SELECT tenant_guard.backfill_tenant('"Task"', 'Task_projectId_fkey', batch_size => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.backfill_tenant('"Task"', 'no_such_constraint');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.backfill_tenant('"Task"', 'Task_pkey');
\echo :LAST_ERROR_SQLSTATE

-- NOT NULL is refused, with the count, while NULLs remain.
SELECT * FROM tenant_guard.enforce_not_null('"Task"');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM "Task" WHERE "tenantId" IS NULL;
UPDATE "Project" SET "tenantId" = 'acme' WHERE id = 30;
SELECT * FROM tenant_guard.enforce_not_null('"Task"', dry_run => true);
SELECT * FROM tenant_guard.enforce_not_null('"Task"');
SELECT count(*) AS enforced_again FROM tenant_guard.enforce_not_null('"Task"');
SELECT attnotnull FROM pg_attribute WHERE attrelid = '"Task"'::regclass AND attname = 'tenantId';
SELECT count(*) AS leftover_checks FROM pg_constraint WHERE conrelid = '"Task"'::regclass AND contype = 'c';

-- A composite key on dirty data: a task pointing at another tenant's
-- project. The key is added NOT VALID (new rows are checked), the violation
-- is reported, and nothing else changes.
UPDATE "Task" SET "tenantId" = 'globex' WHERE id = 2;
SELECT * FROM tenant_guard.add_tenant_fk('"Task"', ARRAY['projectId'], '"Project"');
SELECT conname, convalidated FROM pg_constraint WHERE conrelid = '"Task"'::regclass AND contype = 'f' ORDER BY 1;
-- Fixed, it validates on the next run (which creates nothing twice).
UPDATE "Task" SET "tenantId" = 'acme' WHERE id = 2;
SELECT * FROM tenant_guard.add_tenant_fk('"Task"', ARRAY['projectId'], '"Project"');
SELECT count(*) AS statements FROM tenant_guard.add_tenant_fk('"Task"', ARRAY['projectId'], '"Project"');
SELECT conname, convalidated FROM pg_constraint WHERE conrelid = '"Task"'::regclass AND contype = 'f' ORDER BY 1;

-- Composite keys wait for a NOT NULL tenant column: a row with a NULL tenant
-- would not be checked at all.
SELECT * FROM tenant_guard.add_tenant_fk('"Project"', ARRAY['accountId'], '"Account"');
\echo :LAST_ERROR_SQLSTATE

-- Bad input.
CREATE TABLE global_things (id int PRIMARY KEY);
SELECT * FROM tenant_guard.add_tenant_fk('"Task"', ARRAY['projectId'], 'global_things');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenant_guard.add_tenant_fk('"Task"', ARRAY['nope'], '"Project"');
\echo :LAST_ERROR_SQLSTATE

-- upgrade_foreign_keys replaces the remaining tenant-blind keys, keeping
-- names, actions and deferrability.
SELECT * FROM tenant_guard.upgrade_foreign_keys('public');
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) AS definition
  FROM pg_constraint WHERE contype = 'f' AND conrelid IN ('"Task"'::regclass, '"Project"'::regclass)
 ORDER BY 1, 2;
SELECT count(*) AS statements FROM tenant_guard.upgrade_foreign_keys('public');

-- scope_unique: project codes become unique per tenant (same name).
SELECT * FROM tenant_guard.scope_unique('"Project"', 'Project_code_key');
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'Project_code_key';
INSERT INTO "Project" VALUES (40, 'globex', 2, 'P-1');
SELECT count(*) AS statements FROM tenant_guard.scope_unique('"Project"', 'Project_code_key');
SELECT * FROM tenant_guard.scope_unique('"Project"', 'Project_pkey');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenant_guard.scope_unique('"Project"', 'Project_accountId_fkey');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenant_guard.scope_unique('"Project"', 'nope');
\echo :LAST_ERROR_SQLSTATE
-- A unique index that tenant-blind foreign keys reference is rewritten with
-- its dependents, or refused when a referencing table has no tenant column.
CREATE TABLE labels (id int, "tenantId" text NOT NULL, slug text);
CREATE UNIQUE INDEX labels_slug ON labels (slug);
CREATE TABLE label_uses (id int, "tenantId" text NOT NULL, slug text REFERENCES labels (slug));
CREATE TABLE label_audit (id int, slug text REFERENCES labels (slug));
SELECT * FROM tenant_guard.scope_unique('labels', 'labels_slug');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE label_audit;
SELECT * FROM tenant_guard.scope_unique('labels', 'labels_slug');
SELECT pg_get_indexdef('labels_slug'::regclass);

-- The composite key leaks nothing: referencing another tenant's project and
-- referencing a project that does not exist fail alike (no existence oracle).
SELECT count(*) FROM tenant_guard.protect_schema('public');
GRANT SELECT, INSERT ON "Task", "Project" TO tg_int_app;
SELECT tenant_guard.sign('{"tenantId": "globex", "exp": 4102444800}') AS globex \gset
SET tenant_guard.tenant_claim = 'tenantId';
SET ROLE tg_int_app;
BEGIN;
SELECT tenant_guard.set_context(:'globex');
SAVEPOINT s;
INSERT INTO "Task" (id, "projectId") VALUES (100, 10);   -- acme's project
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT s;
INSERT INTO "Task" (id, "projectId") VALUES (100, 99);   -- no such project
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET ROLE;

RESET tenant_guard.tenant_column;
RESET tenant_guard.tenant_claim;
DROP TABLE "Task", "Project", "Account", global_things, label_uses, labels;
DROP EXTENSION tenant_guard;
DROP ROLE tg_int_app;
