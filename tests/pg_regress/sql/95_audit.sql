-- Tests the audit views and the advisor on planted dirt
CREATE EXTENSION tenant_guard;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET tenant_guard.tenant_column = 'tenantId';

-- A registry, and a schema with dirt planted in known amounts.
CREATE TABLE tenants (id text PRIMARY KEY);
INSERT INTO tenants VALUES ('acme'), ('globex');
SELECT tenant_guard.use_registry('tenants');
CREATE TABLE "Customer" (id int PRIMARY KEY, "tenantId" text, name text);
INSERT INTO "Customer" VALUES (1, 'acme', 'a'), (2, 'globex', 'g'), (3, NULL, 'n1'), (4, NULL, 'n2'),
                              (5, 'umbrella', 'u1'), (6, 'umbrella', 'u2'), (7, 'initech', 'i');
CREATE TABLE "Invoice" (id int PRIMARY KEY, "tenantId" text NOT NULL, "customerId" int REFERENCES "Customer" (id),
                        number text UNIQUE);
CREATE INDEX ON "Invoice" ("tenantId");
INSERT INTO "Invoice" VALUES (1, 'acme', 1, 'A1'), (2, 'acme', 2, 'A2'), (3, 'globex', 2, 'G1'), (4, 'globex', 1, 'G2');
CREATE TABLE countries (code text PRIMARY KEY);   -- global: not a tenant table

SELECT * FROM tenant_guard.null_tenant_rows ORDER BY 1;
SELECT * FROM tenant_guard.orphan_tenant_rows ORDER BY 1, 3;
SELECT * FROM tenant_guard.cross_tenant_references ORDER BY 1;
SELECT * FROM tenant_guard.status ORDER BY 1;

-- The advisor names each problem with a runnable remedy.
SELECT severity, code, object, remedy FROM tenant_guard.advisor ORDER BY code, object;

-- Each finding is cleared by its remedy.
SELECT count(*) FROM tenant_guard.protect('"Customer"', mode => 'permissive');
SELECT count(*) FROM tenant_guard.protect('"Invoice"');
UPDATE "Customer" SET "tenantId" = 'acme' WHERE "tenantId" IS NULL;
INSERT INTO tenants VALUES ('umbrella'), ('initech');
DELETE FROM "Invoice" WHERE id IN (2, 4);
SELECT count(*) FROM tenant_guard.enforce_not_null('"Customer"');
SELECT count(*) FROM tenant_guard.upgrade_foreign_keys('public');
SELECT count(*) FROM tenant_guard.scope_unique('"Invoice"', 'Invoice_number_key');
SELECT count(*) FROM tenant_guard.protect('"Customer"');
SELECT * FROM tenant_guard.null_tenant_rows;
SELECT * FROM tenant_guard.orphan_tenant_rows;
SELECT * FROM tenant_guard.cross_tenant_references;
SELECT table_name, nullable, rls_forced, policies_current, mode, composite_fks, tenant_blind_fks, phase
  FROM tenant_guard.status ORDER BY 1;
SELECT severity, code, object FROM tenant_guard.advisor
 WHERE code NOT IN ('login_role_bypasses_rls') ORDER BY code, object;

-- Schema-level findings, each from a minimal fixture.
CREATE TABLE hand_rolled (id int, "tenantId" text);
ALTER TABLE hand_rolled ENABLE ROW LEVEL SECURITY;
CREATE POLICY by_setting ON hand_rolled USING ("tenantId" = current_setting('app.current_tenant_id'));
CREATE VIEW invoice_totals AS SELECT "tenantId", count(*) FROM "Invoice" GROUP BY 1;
CREATE VIEW invoice_totals_safe WITH (security_invoker = true) AS SELECT "tenantId", count(*) FROM "Invoice" GROUP BY 1;
CREATE MATERIALIZED VIEW invoice_cache AS SELECT * FROM "Invoice";
CREATE FUNCTION all_invoices() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM "Invoice"';
CREATE FUNCTION leaky(text) RETURNS boolean LANGUAGE sql LEAKPROOF AS 'SELECT true';
CREATE ROLE tg_audit_bypass LOGIN BYPASSRLS;
CREATE ROLE tg_audit_support NOLOGIN BYPASSRLS;
CREATE ROLE tg_audit_agent LOGIN IN ROLE tg_audit_support;
CREATE ROLE tg_audit_owner LOGIN;
ALTER TABLE "Invoice" OWNER TO tg_audit_owner;
GRANT TRUNCATE ON "Customer" TO PUBLIC;
CREATE TABLE parts (id int, "tenantId" text NOT NULL) PARTITION BY LIST ("tenantId");
SELECT count(*) FROM tenant_guard.protect('parts');
CREATE TABLE parts_acme PARTITION OF parts FOR VALUES IN ('acme');   -- protected by the DDL guard
DELETE FROM tenant_guard.protected WHERE relid = 'parts_acme'::regclass;   -- as if it had not been
SELECT severity, code, object, remedy FROM tenant_guard.advisor
 WHERE code NOT IN ('unprotected_tenant_table', 'no_tenant_index', 'nullable_tenant_column')
   AND (code <> 'login_role_bypasses_rls' OR object LIKE 'tg_%')
 ORDER BY code, object;

-- Remedies clear them.
DROP POLICY by_setting ON hand_rolled;
ALTER VIEW invoice_totals SET (security_invoker = true);
ALTER FUNCTION all_invoices() SECURITY INVOKER;
ALTER FUNCTION leaky(text) NOT LEAKPROOF;
ALTER ROLE tg_audit_bypass NOBYPASSRLS;
REVOKE tg_audit_support FROM tg_audit_agent;
ALTER TABLE "Invoice" OWNER TO postgres;
REVOKE TRUNCATE ON "Customer" FROM PUBLIC;
SELECT count(*) FROM tenant_guard.protect('parts_acme');
DROP MATERIALIZED VIEW invoice_cache;
SELECT severity, code, object FROM tenant_guard.advisor
 WHERE code NOT IN ('unprotected_tenant_table', 'no_tenant_index', 'nullable_tenant_column')
   AND (code <> 'login_role_bypasses_rls' OR object LIKE 'tg_%')
 ORDER BY code, object;

-- The hand-rolled table, protected, then with row-level security switched
-- off behind tenant_guard's back (through the DDL guard's emergency door,
-- which only a superuser can open).
SELECT count(*) FROM tenant_guard.protect('hand_rolled');
SET tenant_guard.ddl_guard = off;
ALTER TABLE hand_rolled DISABLE ROW LEVEL SECURITY;
RESET tenant_guard.ddl_guard;
SELECT severity, code, object, remedy FROM tenant_guard.advisor WHERE object LIKE '%hand_rolled%';
SELECT count(*) FROM tenant_guard.protect('hand_rolled');
SELECT severity, code, object FROM tenant_guard.advisor
 WHERE code <> 'login_role_bypasses_rls' OR object LIKE 'tg_%';

-- tenant_guard's own SECURITY DEFINER functions (the DDL guard's) are not
-- findings, whatever the protected tables are called (their bodies hold
-- short words such as c and rel).
CREATE TABLE c (id int, "tenantId" text);
CREATE TABLE rel (id int, "tenantId" text);
SELECT count(*) > 0 AS protected FROM tenant_guard.protect('c');
SELECT count(*) > 0 AS protected FROM tenant_guard.protect('rel');
SELECT count(*) AS own_functions_reported FROM tenant_guard.advisor
 WHERE code = 'security_definer_reads_tenant_table' AND object LIKE 'tenant\_guard%';
DROP TABLE c, rel;

-- The audits are not for application roles.
CREATE ROLE tg_audit_app LOGIN;
SET ROLE tg_audit_app;
SELECT * FROM tenant_guard.advisor;
SELECT * FROM tenant_guard.null_tenant_rows;
RESET ROLE;

DROP VIEW invoice_totals, invoice_totals_safe;
DROP FUNCTION all_invoices(), leaky(text);
DROP TABLE "Invoice", "Customer", countries, hand_rolled, parts, tenants;
DROP EXTENSION tenant_guard;
DROP ROLE tg_audit_bypass;
DROP ROLE tg_audit_agent;
DROP ROLE tg_audit_support;
DROP ROLE tg_audit_owner;
DROP ROLE tg_audit_app;
