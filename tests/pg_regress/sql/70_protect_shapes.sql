-- Tests protect() on other shapes: column types, quoted names, partitions,
-- permissive mode, protect_schema and the new-table guard
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('main', decode(repeat('a1', 32), 'hex'));
CREATE ROLE tg_shape_app LOGIN;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA shop;
GRANT USAGE ON SCHEMA shop TO tg_shape_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO tg_shape_app;

-- camelCase names and a uuid tenant column, as ORMs like to create them.
CREATE TABLE shop."ServiceRequest" (
    id         int PRIMARY KEY,
    "tenantId" uuid NOT NULL,
    title      text
);
INSERT INTO shop."ServiceRequest" VALUES
  (1, '11111111-1111-1111-1111-111111111111', 'leaky tap'),
  (2, '22222222-2222-2222-2222-222222222222', 'broken door');
SELECT * FROM tenant_guard.protect('shop."ServiceRequest"', tenant_column => 'tenantId')
 WHERE protect LIKE '%tenant_guard_select%' OR protect LIKE '%DEFAULT%';

-- A bigint tenant column.
CREATE TABLE shop.invoices (id int PRIMARY KEY, account bigint NOT NULL, total numeric);
INSERT INTO shop.invoices VALUES (1, 7, 10), (2, 8, 20);
SELECT count(*) FROM tenant_guard.protect('shop.invoices', 'account');

-- A column with a type modifier: the rules and the default cast to the
-- type without it. An explicit cast to varchar(8) would cut a longer tenant
-- id (acme-corporation would read and write acme-cor's rows), one to
-- numeric(6,0) would round it (41.6 would read tenant 42's).
CREATE TABLE shop.notes (id int PRIMARY KEY, tenant_id varchar(8) NOT NULL, body text);
INSERT INTO shop.notes VALUES (1, 'acme-cor', 'of acme-cor');
SELECT * FROM tenant_guard.protect('shop.notes')
 WHERE protect LIKE '%tenant_guard_select%' OR protect LIKE '%DEFAULT%';
-- char(n): the type without a modifier is bpchar, never character, which
-- the parser reads as character(1) (a cast to it cuts bob to b, the rows
-- of tenant b).
CREATE TABLE shop.codes (id int PRIMARY KEY, tenant_id char(8) NOT NULL);
INSERT INTO shop.codes VALUES (1, 'b'), (2, 'bob');
SELECT * FROM tenant_guard.protect('shop.codes')
 WHERE protect LIKE '%tenant_guard_select%' OR protect LIKE '%DEFAULT%';
-- Only types that compare tenant ids exactly are accepted (42804
-- otherwise): text, varchar, char(n), the integer types, numeric, uuid,
-- enums and domains over them. "char" and name cut ids, floating-point
-- types round them, dates and times (and ranges of them) read them through
-- the session's DateStyle and TimeZone, reg* types through its
-- search_path, and box's = compares areas.
CREATE TABLE shop.initials (id int PRIMARY KEY, tenant_id "char" NOT NULL);
CREATE TABLE shop.handles (id int PRIMARY KEY, tenant_id name NOT NULL);
CREATE TABLE shop.measures (id int PRIMARY KEY, tenant_id float8 NOT NULL);
CREATE TABLE shop.days (id int PRIMARY KEY, tenant_id date NOT NULL);
SELECT count(*) FROM tenant_guard.protect('shop.initials');
SELECT count(*) FROM tenant_guard.protect('shop.handles');
SELECT count(*) FROM tenant_guard.protect('shop.measures');
SELECT count(*) FROM tenant_guard.protect('shop.days');
CREATE TABLE shop.spans (id int PRIMARY KEY, tenant_id daterange NOT NULL);
CREATE TABLE shop.rels (id int PRIMARY KEY, tenant_id regclass NOT NULL);
CREATE TABLE shop.boxes (id int PRIMARY KEY, tenant_id box NOT NULL);
\set VERBOSITY terse
SELECT count(*) FROM tenant_guard.protect('shop.spans');
SELECT count(*) FROM tenant_guard.protect('shop.rels');
SELECT count(*) FROM tenant_guard.protect('shop.boxes');
\set VERBOSITY default
-- A table protected before this rule (recorded here by hand, as an older
-- protect would have): the advisor reports it, high, with the way out.
INSERT INTO tenant_guard.protected (relid, tenant_column, mode, force, rls_was_enabled, rls_was_forced)
VALUES ('shop.spans', 'tenant_id', 'strict', true, false, false);
SELECT severity, code, object, remedy FROM tenant_guard.advisor WHERE code = 'inexact_tenant_type';
DELETE FROM tenant_guard.protected WHERE relid = 'shop.spans'::regclass;
CREATE TABLE shop.ledgers (id int PRIMARY KEY, tenant_id numeric(6,0) NOT NULL, body text);
INSERT INTO shop.ledgers VALUES (1, 42, 'of 42');
SELECT count(*) FROM tenant_guard.protect('shop.ledgers');
-- A domain: the rules compare in its base type (the stored values passed
-- its checks already, and readers do not run them); writers still do,
-- through the default.
CREATE DOMAIN shop.slug AS varchar(20) CHECK (VALUE ~ '^[a-z0-9-]+$');
CREATE TABLE shop.pages (id int PRIMARY KEY, tenant_id shop.slug NOT NULL);
INSERT INTO shop.pages VALUES (1, 'acme');
SELECT * FROM tenant_guard.protect('shop.pages')
 WHERE protect LIKE '%tenant_guard_select%' OR protect LIKE '%DEFAULT%';
-- A domain over a domain over an enum: the column is cast to the enum too
-- (PostgreSQL has no = between the domain and the enum's array).
CREATE TYPE shop.tenant_enum AS ENUM ('acme', 'globex');
CREATE DOMAIN shop.tenant_dom AS shop.tenant_enum;
CREATE DOMAIN shop.tenant_dom2 AS shop.tenant_dom;
CREATE TABLE shop.boards (id int PRIMARY KEY, tenant_id shop.tenant_dom2 NOT NULL);
INSERT INTO shop.boards VALUES (1, 'acme'), (2, 'globex');
SELECT * FROM tenant_guard.protect('shop.boards') WHERE protect LIKE '%tenant_guard_select%';
SELECT tenant_guard.protection_drift('shop.boards');

SELECT tenant_guard.sign('{"tenant_id": "11111111-1111-1111-1111-111111111111", "exp": 4102444800}') AS t1 \gset
SELECT tenant_guard.sign('{"tenant_id": 7, "exp": 4102444800}') AS acct7 \gset
SELECT tenant_guard.sign('{"tenant_id": "acme-corporation", "exp": 4102444800}') AS long_id \gset
SELECT tenant_guard.sign('{"tenant_id": "41.6", "exp": 4102444800}') AS fraction \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset
SELECT tenant_guard.sign('{"tenant_id": "Acme!", "exp": 4102444800}') AS not_a_slug \gset
SELECT tenant_guard.sign('{"tenant_id": "bob", "exp": 4102444800}') AS bob \gset

SET ROLE tg_shape_app;
BEGIN;
SELECT tenant_guard.set_context(:'t1');
SELECT id, "tenantId", title FROM shop."ServiceRequest" ORDER BY id;
INSERT INTO shop."ServiceRequest" (id, title) VALUES (3, 'new') RETURNING "tenantId";
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'acct7');
SELECT id, account, total FROM shop.invoices ORDER BY id;
ROLLBACK;
-- A tenant id that is not a valid value of the column's type is an error,
-- never a match.
BEGIN;
SELECT tenant_guard.set_context(:'acct7');
SELECT count(*) FROM shop."ServiceRequest";
ROLLBACK;
-- Exact, whatever the modifier: no row of acme-cor for acme-corporation,
-- and its insert does not fit the column (22001); none of tenant 42 for
-- 41.6, whose insert is rounded to 42 and then fails the write rule.
BEGIN;
SELECT tenant_guard.set_context(:'long_id');
SELECT * FROM shop.notes;
UPDATE shop.notes SET body = 'overwritten' WHERE id = 1;
SAVEPOINT s;
INSERT INTO shop.notes (id, body) VALUES (2, 'new');
ROLLBACK TO s;
SELECT tenant_guard.set_context(:'fraction');
SELECT * FROM shop.ledgers;
INSERT INTO shop.ledgers (id, body) VALUES (2, 'new');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'bob');
SELECT * FROM shop.codes;
ROLLBACK;
-- The domain's tenant reads and writes its rows; a tenant id the domain's
-- check refuses reads nothing, and its insert fails the check (23514).
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT * FROM shop.pages;
INSERT INTO shop.pages (id) VALUES (2) RETURNING tenant_id;
SELECT * FROM shop.boards;
INSERT INTO shop.boards (id) VALUES (3) RETURNING tenant_id;
SELECT tenant_guard.set_context(:'not_a_slug');
SELECT count(*) FROM shop.pages;
INSERT INTO shop.pages (id) VALUES (3);
ROLLBACK;
RESET ROLE;
SELECT * FROM shop.notes;

-- Partitioned tables: existing partitions, partitions created later and
-- partitions attached later are all protected (a partition named directly
-- ignores its parent's policies).
CREATE TABLE shop.events (tenant_id text NOT NULL, at date NOT NULL, what text)
  PARTITION BY RANGE (at);
CREATE TABLE shop.events_2025 PARTITION OF shop.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO shop.events VALUES ('acme', '2025-05-01', 'a'), ('globex', '2025-06-01', 'g');
SELECT count(*) AS statements FROM tenant_guard.protect('shop.events');
CREATE TABLE shop.events_2026 PARTITION OF shop.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE shop.events_2027 (LIKE shop.events);
INSERT INTO shop.events_2027 VALUES ('globex', '2027-03-01', 'g27');
ALTER TABLE shop.events ATTACH PARTITION shop.events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
INSERT INTO shop.events VALUES ('acme', '2026-02-01', 'a26');
-- A table protected on its own can be attached too.
CREATE TABLE shop.events_2028 (LIKE shop.events);
SELECT count(*) FROM tenant_guard.protect('shop.events_2028');
ALTER TABLE shop.events ATTACH PARTITION shop.events_2028 FOR VALUES FROM ('2028-01-01') TO ('2029-01-01');
SELECT relid, parent, mode FROM tenant_guard.protected WHERE relid::text LIKE 'shop.events%' ORDER BY 1;
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
  FROM pg_class c WHERE c.relname LIKE 'events%' ORDER BY 1;
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset
SET ROLE tg_shape_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT tenant_id, at, what FROM shop.events ORDER BY at;
SELECT tenant_id, what FROM shop.events_2025;
SELECT tenant_id, what FROM shop.events_2027;
INSERT INTO shop.events_2026 (at, what) VALUES ('2026-07-01', 'direct') RETURNING tenant_id;
INSERT INTO shop.events_2026 VALUES ('globex', '2026-07-01', 'direct, other tenant');
ROLLBACK;
RESET ROLE;

-- Permissive mode (rollout): rows without a tenant stay readable as shared
-- rows, but tenants cannot write them or create new ones.
CREATE TABLE shop.articles (id int PRIMARY KEY, tenant_id text, body text);
INSERT INTO shop.articles VALUES (1, 'acme', 'own'), (2, NULL, 'shared'), (3, 'globex', 'other');
SELECT count(*) FROM tenant_guard.protect('shop.articles', mode => 'permissive');
SET ROLE tg_shape_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT id, tenant_id, body FROM shop.articles ORDER BY id;
UPDATE shop.articles SET body = 'edited' WHERE id = 2 RETURNING id;
UPDATE shop.articles SET tenant_id = 'acme' WHERE id = 2 RETURNING id;
DELETE FROM shop.articles WHERE id = 2 RETURNING id;
INSERT INTO shop.articles VALUES (4, NULL, 'no tenant');
ROLLBACK;
RESET ROLE;
-- Switching to strict converges in place (one ALTER POLICY) and hides them.
SELECT * FROM tenant_guard.protect('shop.articles', mode => 'strict');
SET ROLE tg_shape_app;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT id, tenant_id, body FROM shop.articles ORDER BY id;
ROLLBACK;
RESET ROLE;

-- protect_schema protects every table with the tenant column; tables
-- without it are global and left alone.
CREATE SCHEMA crm;
CREATE TABLE crm.contacts (id int, tenant_id text);
CREATE TABLE crm.notes (id int, tenant_id text);
CREATE TABLE crm.countries (code text PRIMARY KEY);
SELECT ddl FROM tenant_guard.protect_schema('crm', dry_run => true) AS ddl WHERE ddl LIKE '%ENABLE%';
SELECT count(*) FROM tenant_guard.protect_schema('crm');
SELECT relid FROM tenant_guard.protected WHERE relid::text LIKE 'crm.%' ORDER BY 1;
SELECT * FROM tenant_guard.protect_schema('nope');
\echo :LAST_ERROR_SQLSTATE

-- The new-table guard: warn about, or protect, tables created later with
-- the tenant column (named by tenant_guard.tenant_column).
SET tenant_guard.on_new_table = 'warn';
CREATE TABLE crm.deals (id int, tenant_id text);
SET tenant_guard.on_new_table = 'protect';
CREATE TABLE crm.tasks (id int, tenant_id text);
SET tenant_guard.tenant_column = 'org';
CREATE TABLE crm.orgs_things (id int, org bigint);
CREATE TABLE crm.lookup (id int);
-- A session that names itself like one of Citus' own connections is not
-- skipped where Citus is not installed.
SET application_name = 'citus_internal gpid=1';
CREATE TABLE crm.named_like_citus (id int, org bigint);
RESET application_name;
RESET tenant_guard.tenant_column;
RESET tenant_guard.on_new_table;
SELECT relid, tenant_column FROM tenant_guard.protected WHERE relid::text LIKE 'crm.%' ORDER BY 1;

-- Dropping a protected table forgets it.
DROP TABLE crm.tasks;
SELECT count(*) AS tasks_recorded FROM tenant_guard.protected WHERE relid::text = 'crm.tasks';

DROP SCHEMA crm CASCADE;
DROP SCHEMA shop CASCADE;
DROP EXTENSION tenant_guard;
DROP OWNED BY tg_shape_app;
DROP ROLE tg_shape_app;
