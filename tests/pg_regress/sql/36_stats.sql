-- Tests tenant_guard.stats: each counter moves with the event it names and no other
--
-- This cluster does not load tenant_guard through shared_preload_libraries,
-- so the counters are this backend's (the view says so with a NOTICE and
-- scope = 'backend'); tests/stats runs the same counters cluster-wide.
-- Each step resets the counters, causes one event and lists the counters
-- that moved.
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('k1', decode(repeat('a1', 32), 'hex'));
CREATE ROLE tg_stats_app LOGIN;
\set VERBOSITY sqlstate

CREATE SCHEMA spec;
CREATE FUNCTION spec.b64url(t text) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT translate(encode(convert_to(t, 'UTF8'), 'base64'), E'+/=\n', '-_') $$;
-- The counters that are not zero, as metric{reason} = value.
CREATE VIEW spec.moved AS
  SELECT metric || coalesce('{' || reason || '}', '') AS counter, value
    FROM tenant_guard.stats WHERE value <> 0 ORDER BY metric, reason;

CREATE TABLE tenants (id text PRIMARY KEY, active boolean NOT NULL);
INSERT INTO tenants VALUES ('acme', true), ('globex', true), ('umbrella', false);
CREATE TABLE orders (id int PRIMARY KEY, tenant_id text NOT NULL, item text);
INSERT INTO orders VALUES (1, 'acme', 'anvil'), (2, 'globex', 'gizmo');
-- An UPDATE trigger of the application's own that moves a row to another
-- tenant without naming the tenant column: the update policy refuses it.
CREATE FUNCTION spec.sneaky_move() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN IF NEW.item = 'move me' THEN NEW.tenant_id := 'globex'; END IF; RETURN NEW; END $$;
CREATE TRIGGER a_sneaky_move BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION spec.sneaky_move();
SELECT count(*) > 0 AS protected FROM tenant_guard.protect('orders');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON orders TO tg_stats_app;
GRANT USAGE ON SCHEMA spec TO tg_stats_app;

SELECT extract(epoch FROM now())::bigint AS now_s \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "tenants": ["acme", "globex"], "exp": 4102444800}') AS agency \gset
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'iat', :now_s, 'exp', :now_s + 600)) AS bypass \gset
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'iat', :now_s, 'exp', :now_s + 3600)) AS bypass_long \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 1000000000}') AS expired \gset
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800, "nbf": 4102444000}') AS not_yet \gset
SELECT tenant_guard.sign('{"sub": "alice", "exp": 4102444800}') AS no_tenant \gset
SELECT tenant_guard.sign('{"tenant_id": "umbrella", "exp": 4102444800}') AS suspended \gset
SELECT split_part(:'acme', '.', 1) || '.' || spec.b64url('{"tenant_id":"globex","iss":"https://evil","exp":4102444800}')
       || '.' || split_part(:'acme', '.', 3) AS forged \gset
SELECT spec.b64url('{"alg":"HS256","kid":"who"}') || '.' || spec.b64url('{"tenant_id":"acme","exp":4102444800}') || '.AAAA' AS unknown_kid \gset
SELECT spec.b64url('{"alg":"none"}') || '.' || spec.b64url('{"tenant_id":"acme","exp":4102444800}') || '.' AS alg_none \gset

-- The view: one row per counter, Prometheus names, the reason as a label.
-- Without shared_preload_libraries it counts this backend and says so.
\set VERBOSITY default
SELECT metric, reason, value, scope FROM tenant_guard.stats ORDER BY metric, reason;
\set VERBOSITY sqlstate
SET client_min_messages = warning;

-- reset_stats sets every counter to zero and stats_reset to now.
SELECT tenant_guard.reset_stats() AS first_reset \gset
SELECT count(*) AS counters, count(*) FILTER (WHERE value = 0) AS at_zero,
       bool_and(stats_reset = :'first_reset') AS reset_recorded
  FROM tenant_guard.stats;
SELECT pg_sleep(0.01);
SELECT tenant_guard.reset_stats() > :'first_reset' AS stats_reset_advances;

-- A token verified the first time: a call, a verification, a context.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
COMMIT;
SELECT * FROM spec.moved;
-- The same token again: a cache hit, not a verification.
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
COMMIT;
SELECT * FROM spec.moved;
-- A multi-tenant token.
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
BEGIN;
SELECT tenant_guard.set_context(:'agency');
COMMIT;
SELECT * FROM spec.moved;
-- Without a registry a bypass token is refused (reason bypass)...
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
BEGIN;
SELECT tenant_guard.set_context(:'bypass');
ROLLBACK;
SELECT * FROM spec.moved;
SELECT tenant_guard.use_registry('tenants', 'id', 'active');
-- ...with one it is a bypass context.
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
BEGIN;
SELECT tenant_guard.set_context(:'bypass');
ROLLBACK;
SELECT * FROM spec.moved;
-- A suspended tenant (reason tenant).
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
BEGIN;
SELECT tenant_guard.set_context(:'suspended');
ROLLBACK;
SELECT * FROM spec.moved;

-- Every other rejection reason, one token each, then the counters. Each
-- rejection also writes its log line (tenant_guard_rejection_log_lines_total).
CREATE FUNCTION spec.reject(token text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM tenant_guard.set_context(token, false);
  RETURN 'accepted';
EXCEPTION WHEN invalid_authorization_specification THEN
  RETURN SQLSTATE;
END $$;
CREATE TEMP TABLE reasons (reason text, token text);
INSERT INTO reasons VALUES
  ('expired', :'expired'), ('not_yet_valid', :'not_yet'), ('claims', :'no_tenant'),
  ('signature', :'forged'), ('unknown_key', :'unknown_kid'), ('algorithm', :'alg_none'),
  ('malformed', 'a.b'), ('too_large', repeat('x', 10000)), ('lifetime', :'bypass_long');
CREATE FUNCTION spec.counted(token text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  PERFORM tenant_guard.reset_stats();
  r := spec.reject(token);
  RETURN r || ': ' || (SELECT string_agg(m.counter || '=' || m.value, ', ') FROM spec.moved m);
END $$;
SELECT r.reason AS expected, spec.counted(r.token) AS counted FROM reasons r ORDER BY r.reason;
-- issuer and audience, once the server expects them.
SET tenant_guard.issuer = 'https://idp.example';
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
SELECT spec.reject(:'acme');
SELECT * FROM spec.moved;
RESET tenant_guard.issuer;
SET tenant_guard.audience = 'api';
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
SELECT spec.reject(:'acme');
SELECT * FROM spec.moved;
RESET tenant_guard.audience;

-- Denied writes, as the application role under acme's context: a
-- cross-tenant INSERT, an UPDATE whose new row belongs to another tenant,
-- an UPDATE of the tenant column, a TRUNCATE. Each moves its own counter.
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
SET ROLE tg_stats_app;
SAVEPOINT s;
INSERT INTO orders VALUES (10, 'globex', 'trojan');
ROLLBACK TO s;
RESET ROLE;
SELECT * FROM spec.moved;
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
SET ROLE tg_stats_app;
UPDATE orders SET item = 'move me' WHERE id = 1;
ROLLBACK TO s;
RESET ROLE;
SELECT * FROM spec.moved;
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
SET ROLE tg_stats_app;
UPDATE orders SET tenant_id = 'globex' WHERE id = 1;
ROLLBACK TO s;
RESET ROLE;
SELECT * FROM spec.moved;
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
SET ROLE tg_stats_app;
TRUNCATE orders;
ROLLBACK TO s;
RESET ROLE;
SELECT * FROM spec.moved;

-- What is not a denial of tenant_guard's moves nothing: updating another
-- tenant's rows (invisible: 0 rows), an ordinary 42501 (no privilege), a
-- function of the application raising the TRUNCATE trigger's message.
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
SET ROLE tg_stats_app;
UPDATE orders SET item = 'x' WHERE id = 2;
SELECT * FROM tenant_guard.keys;
ROLLBACK TO s;
DO $$ BEGIN RAISE EXCEPTION 'TRUNCATE is not allowed on tenant table orders' USING ERRCODE = '42501'; END $$;
ROLLBACK TO s;
RESET ROLE;
SELECT * FROM spec.moved;

-- A limit, shown as such: PostgreSQL raises the policies' refusals itself,
-- so they are counted when the error is reported, and one caught by an
-- exception handler inside the session is not; tenant_guard's triggers
-- (tenant change, TRUNCATE) count at the refusal, caught or not.
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
SET ROLE tg_stats_app;
DO $$ BEGIN INSERT INTO orders VALUES (11, 'globex', 'quiet'); EXCEPTION WHEN insufficient_privilege THEN NULL; END $$;
DO $$ BEGIN UPDATE orders SET tenant_id = 'globex' WHERE id = 1; EXCEPTION WHEN insufficient_privilege THEN NULL; END $$;
DO $$ BEGIN TRUNCATE orders; EXCEPTION WHEN insufficient_privilege THEN NULL; END $$;
RESET ROLE;
SELECT * FROM spec.moved;
ROLLBACK;

-- The application role can neither read the counters nor reset them.
SET ROLE tg_stats_app;
SELECT * FROM tenant_guard.stats;
SELECT tenant_guard.reset_stats();
RESET ROLE;
GRANT pg_monitor TO tg_stats_app;
SET ROLE tg_stats_app;
SELECT count(*) > 0 AS monitor_reads FROM tenant_guard.stats;
RESET ROLE;
REVOKE pg_monitor FROM tg_stats_app;

-- The rejection log line: reason, kid, the issuer and tenant the token
-- claims (unverified, clipped, never the token), role and client address
-- (empty over a Unix socket).
\set VERBOSITY default
SET client_min_messages = log;
SET ROLE tg_stats_app;
SELECT spec.reject(:'forged');
RESET ROLE;
-- Sampling (one of every N per reason) and the per-reason limit per
-- minute: rejections left out are counted, and the next line written says
-- how many were left out since the last.
SET tenant_guard.log_rejections_sample = 3;
SET client_min_messages = warning;
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
SET client_min_messages = log;
SELECT spec.reject(:'forged') FROM generate_series(1, 4);
SET client_min_messages = warning;
SELECT * FROM spec.moved;
RESET tenant_guard.log_rejections_sample;
\set VERBOSITY sqlstate
SET tenant_guard.log_rejections_per_minute = 2;
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
SELECT spec.reject(:'expired') FROM generate_series(1, 5);
SELECT spec.reject(:'not_yet');
SELECT * FROM spec.moved;
-- Off: no line, nothing left out.
SET tenant_guard.log_rejections = off;
SELECT tenant_guard.reset_stats() IS NOT NULL AS reset;
SELECT spec.reject(:'not_yet');
SELECT * FROM spec.moved;
RESET tenant_guard.log_rejections;
RESET tenant_guard.log_rejections_per_minute;
-- The settings are the superuser's.
SET ROLE tg_stats_app;
SET tenant_guard.log_rejections_per_minute = 0;
SET tenant_guard.log_rejections_sample = 1000;
RESET ROLE;
RESET client_min_messages;

DROP EXTENSION tenant_guard CASCADE;
DROP SCHEMA spec CASCADE;
DROP TABLE orders, tenants;
DROP ROLE tg_stats_app;
