-- tenant_guard walkthrough. Run by ./scripts/demo against a throwaway cluster.
\pset footer off
\set VERBOSITY default
\set SHOW_CONTEXT never

-- 1. Install. Everything lives in the tenant_guard schema.
CREATE EXTENSION tenant_guard;
\dx tenant_guard
\df tenant_guard.*

-- 2. The DBA adds a signing key (at least 32 random bytes for HS256). In
--    production the application backend holds the same secret and signs
--    tokens with any JWT library; here we mint them in SQL.
SELECT tenant_guard.add_key('app-2026', decode(repeat('5f', 32), 'hex'));
SELECT kid, algorithm, status FROM tenant_guard.key_status;

SELECT tenant_guard.sign('{"tenant_id": "acme", "sub": "alice", "exp": 4102444800}') AS acme_token
\gset

-- 3. The application connects as an ordinary role.
CREATE ROLE demo_app LOGIN;
SET ROLE demo_app;

--    Per request: one transaction, one set_context. The context ends with
--    the transaction, so a pooled connection never carries it over.
BEGIN;
SELECT tenant_guard.set_context(:'acme_token') AS tenant;
SELECT tenant_guard.tenant_id(), tenant_guard.user_id(), tenant_guard.claims();
COMMIT;
SELECT tenant_guard.tenant_id() AS tenant_after_commit;

-- 4. Rejections: each with a clear message and SQLSTATE.
\set ON_ERROR_STOP 0
--    (a) a forged context: plain SET is refused.
SET tenant_guard.context = 'globex';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
--    (b) a tampered token: the payload now says "globex".
BEGIN;
SELECT tenant_guard.set_context(
         split_part(:'acme_token', '.', 1) || '.' ||
         translate(encode(convert_to('{"tenant_id":"globex","exp":4102444800}', 'UTF8'), 'base64'), E'+/=\n', '-_') || '.' ||
         split_part(:'acme_token', '.', 3));
ROLLBACK;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
--    (c) an unsigned token (alg "none").
BEGIN;
SELECT tenant_guard.set_context('eyJhbGciOiJub25lIn0.eyJ0ZW5hbnRfaWQiOiJnbG9iZXgifQ.x');
ROLLBACK;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
--    (d) outside a transaction the local context would vanish: an error.
SELECT tenant_guard.set_context(:'acme_token');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1

RESET ROLE;

-- 5. Protect a table: one call generates row-level security for it.
CREATE TABLE orders (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL,
    item      text NOT NULL
);
CREATE INDEX ON orders (tenant_id, id);
INSERT INTO orders (tenant_id, item) VALUES
  ('acme', 'anvil'), ('acme', 'rocket skates'), ('globex', 'doomsday device');
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO demo_app;
SELECT * FROM tenant_guard.protect('orders');

SELECT tenant_guard.sign('{"tenant_id": "globex", "sub": "hank", "exp": 4102444800}') AS globex_token
\gset
SET ROLE demo_app;

--    Each tenant sees its own rows only; inserts get the tenant by default.
BEGIN;
SELECT tenant_guard.set_context(:'acme_token');
SELECT id, tenant_id, item FROM orders ORDER BY id;
INSERT INTO orders (item) VALUES ('giant magnet') RETURNING id, tenant_id;
COMMIT;

BEGIN;
SELECT tenant_guard.set_context(:'globex_token');
SELECT id, tenant_id, item FROM orders ORDER BY id;
--    Touching acme's rows does nothing...
UPDATE orders SET item = 'stolen' WHERE tenant_id = 'acme' RETURNING id;
--    ...and writing into acme is refused.
\set ON_ERROR_STOP 0
INSERT INTO orders (tenant_id, item) VALUES ('acme', 'trojan horse');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;

--    No context, no rows: an error naming set_context.
SELECT * FROM orders;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1

RESET ROLE;
SELECT tenant_id, count(*) FROM orders GROUP BY 1 ORDER BY 1;   -- the superuser sees all

-- 6. Integrity: order lines reference orders of their own tenant only.
CREATE TABLE order_lines (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL,
    order_id  bigint NOT NULL,
    qty       int NOT NULL
);
GRANT SELECT, INSERT ON order_lines TO demo_app;
--    A composite key (tenant_id, order_id) -> orders (tenant_id, id), with
--    the unique key and index it needs.
SELECT * FROM tenant_guard.add_tenant_fk('order_lines', ARRAY['order_id'], 'orders');
SELECT count(*) AS statements FROM tenant_guard.protect('order_lines');

SET ROLE demo_app;
BEGIN;
SELECT tenant_guard.set_context(:'globex_token');
INSERT INTO order_lines (order_id, qty) VALUES (3, 1) RETURNING tenant_id, order_id;
--    Order 1 is acme's: referring to it fails exactly like a missing order.
\set ON_ERROR_STOP 0
INSERT INTO order_lines (order_id, qty) VALUES (1, 5);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
\set ON_ERROR_STOP 1
RESET ROLE;

DROP TABLE order_lines;
DROP TABLE orders;

-- 7. Rolling out on a dirty schema: audit, backfill, refusal, fix, enforce.
CREATE SCHEMA crm;
CREATE TABLE crm.accounts (id int PRIMARY KEY, tenant_id text);
CREATE TABLE crm.contacts (id int PRIMARY KEY, tenant_id text,
                           account_id int CONSTRAINT contacts_account_fkey REFERENCES crm.accounts (id));
INSERT INTO crm.accounts VALUES (1, 'acme'), (2, 'globex');
INSERT INTO crm.contacts VALUES (1, 'acme', 1), (2, NULL, 1), (3, NULL, 2), (4, 'globex', 1);
--    What the audits find: NULL tenants and a contact of globex pointing at
--    an account of acme.
SELECT * FROM tenant_guard.null_tenant_rows;
SELECT * FROM tenant_guard.cross_tenant_references;
SELECT severity, code, object FROM tenant_guard.advisor
 WHERE object LIKE 'crm.%' ORDER BY severity, code, object;
--    prepare is always possible: permissive policies, not forced.
SELECT count(*) AS statements FROM tenant_guard.rollout('prepare', 'crm', dry_run => false);
--    Backfill the NULL tenants from the account.
SELECT tenant_guard.backfill_tenant('crm.contacts', 'contacts_account_fkey');
--    tighten is refused while the cross-tenant reference remains.
\set ON_ERROR_STOP 0
SELECT count(*) FROM tenant_guard.rollout('tighten', 'crm', dry_run => false);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1
--    Fix it, then tighten and enforce.
UPDATE crm.contacts SET account_id = 2 WHERE id = 4;
SELECT count(*) AS statements FROM tenant_guard.rollout('tighten', 'crm', dry_run => false);
SELECT * FROM tenant_guard.rollout('enforce', 'crm', dry_run => false);
SELECT table_name, nullable, rls_forced, composite_fks, phase FROM tenant_guard.status
 WHERE table_name::text LIKE 'crm.%' ORDER BY 1;

-- 8. Tampering is refused, and what gets through is reported and repaired.
--    The DDL guard refuses DDL that would weaken a protected table, also for
--    its owner:
\set ON_ERROR_STOP off
ALTER POLICY tenant_guard_select ON crm.accounts USING (true);
\set ON_ERROR_STOP on
--    A superuser can open the emergency door (each statement is logged at
--    WARNING): widen a policy and stop forcing row-level security.
SET tenant_guard.ddl_guard = off;
ALTER POLICY tenant_guard_select ON crm.accounts USING (true);
ALTER TABLE crm.contacts NO FORCE ROW LEVEL SECURITY;
RESET tenant_guard.ddl_guard;
SELECT table_name, policies_current, phase, drift FROM tenant_guard.status
 WHERE table_name::text LIKE 'crm.%' ORDER BY 1;
SELECT severity, code, object FROM tenant_guard.advisor WHERE code = 'protection_drift' ORDER BY object;
--    protect() repairs exactly what drifted.
SELECT * FROM tenant_guard.protect('crm.accounts');
SELECT * FROM tenant_guard.protect('crm.contacts');
SELECT table_name, policies_current, phase, drift FROM tenant_guard.status
 WHERE table_name::text LIKE 'crm.%' ORDER BY 1;
DROP SCHEMA crm CASCADE;
DROP ROLE demo_app;
