-- Tests set_context and the context accessors, as an application role
CREATE EXTENSION tenant_guard;
CREATE ROLE tg_ctx_app LOGIN;
SELECT tenant_guard.add_key('main', decode(repeat('a1', 32), 'hex'));
-- Tokens are minted here with fixed claims and a far-future exp (2100).
SELECT tenant_guard.sign('{"tenant_id": "acme", "sub": "alice", "role": "admin", "exp": 4102444800}') AS acme
\gset
SELECT tenant_guard.sign('{"tenant_id": 42, "sub": 7, "exp": 4102444800}') AS numeric_ids
\gset
SELECT tenant_guard.sign('{"tenant_id": "globex", "exp": 4102444800}') AS globex
\gset
SET ROLE tg_ctx_app;
\set VERBOSITY default

-- Without a context every accessor says so.
SELECT tenant_guard.tenant_id(), tenant_guard.user_id(), tenant_guard.claims(), tenant_guard.is_bypass();
SELECT tenant_guard.require_tenant_id();
\echo :LAST_ERROR_SQLSTATE

-- set_context verifies the token and returns its tenant. By default the
-- context lasts until the end of the transaction, like SET LOCAL.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT tenant_guard.tenant_id(), tenant_guard.require_tenant_id(), tenant_guard.user_id();
SELECT tenant_guard.claims();
SELECT tenant_guard.claims() ->> 'role' AS role;
COMMIT;
SELECT tenant_guard.tenant_id() AS after_commit;

-- Rolled back: gone as well.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
ROLLBACK;
SELECT tenant_guard.tenant_id() AS after_rollback;

-- Outside a transaction block a local context would vanish at once, so it
-- is an error with a hint rather than a silent no-op.
SELECT tenant_guard.set_context(:'acme');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.tenant_id() AS after_error;

-- Integer tenant and user ids are returned as text.
BEGIN;
SELECT tenant_guard.set_context(:'numeric_ids');
SELECT tenant_guard.tenant_id(), tenant_guard.user_id();
COMMIT;

-- A savepoint rolled back restores the context it replaced.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SAVEPOINT s1;
SELECT tenant_guard.set_context(:'globex');
SELECT tenant_guard.tenant_id() AS inside_savepoint;
ROLLBACK TO SAVEPOINT s1;
SELECT tenant_guard.tenant_id() AS after_rollback_to_savepoint;
COMMIT;

-- is_local => false keeps the context for the session...
SELECT tenant_guard.set_context(:'globex', is_local => false);
SELECT tenant_guard.tenant_id() AS session_context;
-- ...a transaction-local context overrides it until COMMIT...
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT tenant_guard.tenant_id() AS local_override;
COMMIT;
SELECT tenant_guard.tenant_id() AS back_to_session;
-- ...clear_context drops it...
SELECT tenant_guard.clear_context();
SELECT tenant_guard.tenant_id() AS after_clear, tenant_guard.claims() AS claims_after_clear;
-- ...and so do RESET ALL and DISCARD ALL, even for a role that may not SET
-- the underlying settings.
SELECT tenant_guard.set_context(:'globex', is_local => false);
RESET ALL;
-- (RESET ALL also reset the role: become the application again.)
SET ROLE tg_ctx_app;
SELECT tenant_guard.tenant_id() AS after_reset_all;
SELECT tenant_guard.set_context(:'globex', is_local => false);
DISCARD ALL;
SET ROLE tg_ctx_app;
SELECT tenant_guard.tenant_id() AS after_discard_all;

-- A NULL token or is_local is refused, never ignored.
BEGIN;
SELECT tenant_guard.set_context(NULL);
ROLLBACK;
SELECT tenant_guard.set_context(:'acme', NULL);
\echo :LAST_ERROR_SQLSTATE

-- A failed set_context aborts the transaction, and its context with it.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT tenant_guard.set_context('not a token');
ROLLBACK;
SELECT tenant_guard.tenant_id() AS after_failed_transaction;

-- Parallel workers see the context: in a parallel scan where the workers
-- do all the reading (the leader does not participate), the filter on
-- tenant_guard.tenant_id() still finds the tenant's 1000 rows.
RESET ROLE;
CREATE TABLE ctx_rows (tenant text, n int);
INSERT INTO ctx_rows SELECT CASE WHEN g % 3 = 0 THEN 'acme' ELSE 'globex' END, g FROM generate_series(1, 3000) g;
ANALYZE ctx_rows;
GRANT SELECT ON ctx_rows TO tg_ctx_app;
SET ROLE tg_ctx_app;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
EXPLAIN (COSTS OFF) SELECT count(*) FROM ctx_rows WHERE tenant = tenant_guard.tenant_id();
SELECT count(*) FROM ctx_rows WHERE tenant = tenant_guard.tenant_id();
COMMIT;
RESET ROLE;
DROP TABLE ctx_rows;

-- The verified-token cache is bounded in bytes per backend
-- (tenant_guard.token_cache_bytes, default 4MB; 0 turns it off). A context
-- is the same with or without it.
SHOW tenant_guard.token_cache_bytes;
SET tenant_guard.token_cache_bytes = 0;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT tenant_guard.set_context(:'acme');
COMMIT;
SET tenant_guard.token_cache_bytes = '64kB';
SHOW tenant_guard.token_cache_bytes;
BEGIN;
SELECT tenant_guard.set_context(:'globex');
SELECT tenant_guard.set_context(:'globex');
COMMIT;
\set VERBOSITY sqlstate
SET tenant_guard.token_cache_bytes = -1;
SET tenant_guard.token_cache_bytes = '2GB';
RESET tenant_guard.token_cache_bytes;
-- Superuser-only: an application role cannot grow its backend's cache.
SET ROLE tg_ctx_app;
SET tenant_guard.token_cache_bytes = '1GB';
SELECT set_config('tenant_guard.token_cache_bytes', '1GB', false);
SHOW tenant_guard.token_cache_bytes;
RESET ROLE;
\set VERBOSITY default

-- The verification settings are read once and kept while none changes: a
-- change takes effect at the next set_context, also inside a transaction
-- and also when the new value has the old one's length.
SELECT tenant_guard.sign('{"tenant_id": "acme", "org": "umbrella", "exp": 4102444800}') AS two_claims \gset
BEGIN;
SELECT tenant_guard.set_context(:'two_claims');
SET LOCAL tenant_guard.tenant_claim = 'org';
SELECT tenant_guard.set_context(:'two_claims');
SET LOCAL tenant_guard.tenant_claim = 'xyz';
SAVEPOINT s;
SELECT tenant_guard.set_context(:'two_claims');
ROLLBACK TO SAVEPOINT s;
SET LOCAL tenant_guard.leeway = 0;
SET LOCAL tenant_guard.tenant_claim = 'org';
SELECT tenant_guard.set_context(:'two_claims');
COMMIT;
SELECT tenant_guard.set_context(:'two_claims', false);
SELECT tenant_guard.clear_context();

DROP EXTENSION tenant_guard;
DROP ROLE tg_ctx_app;
