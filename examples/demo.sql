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
SET tenant_guard.context_tenant = 'globex';
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
DROP ROLE demo_app;
