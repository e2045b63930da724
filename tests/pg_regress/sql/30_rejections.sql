-- Tests that every bad token is refused with 28000 and leaves no context
CREATE EXTENSION tenant_guard;
CREATE ROLE tg_rej_app LOGIN;
SELECT tenant_guard.add_key('k256', decode(repeat('a1', 32), 'hex'));
SELECT tenant_guard.add_key('k512', decode(repeat('c3', 64), 'hex'), 'HS512');
SELECT tenant_guard.add_key('spare', decode(repeat('e5', 32), 'hex'));

-- Helpers to build tokens by hand: base64url and a checker that returns
-- the SQLSTATE and message instead of raising.
CREATE SCHEMA spec;
GRANT USAGE ON SCHEMA spec TO PUBLIC;
CREATE FUNCTION spec.b64url(t text) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT translate(encode(convert_to(t, 'UTF8'), 'base64'), E'+/=\n', '-_') $$;
CREATE FUNCTION spec.try_token(token text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t text;
BEGIN
  PERFORM tenant_guard.set_context(token, is_local => false);
  t := tenant_guard.tenant_id();
  PERFORM tenant_guard.clear_context();
  RETURN 'accepted: ' || t;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ' ' || SQLERRM
      || CASE WHEN tenant_guard.tenant_id() IS NULL THEN '' ELSE ' (CONTEXT LEFT BEHIND)' END;
END $$;

CREATE TABLE spec.tokens (name text PRIMARY KEY, token text);
GRANT SELECT ON spec.tokens TO PUBLIC;
INSERT INTO spec.tokens VALUES
  ('good',          tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', 'k256')),
  ('good, HS512',   tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', 'k512')),
  ('expired',       tenant_guard.sign('{"tenant_id": "acme", "exp": 1000000000}', 'k256')),
  ('not yet valid', tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800, "nbf": 4102444000}', 'k256')),
  ('issued in the future', tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800, "iat": 4102444000}', 'k256')),
  ('no exp',        tenant_guard.sign('{"tenant_id": "acme"}', 'k256')),
  ('exp is a string', tenant_guard.sign('{"tenant_id": "acme", "exp": "4102444800"}', 'k256')),
  ('no tenant',     tenant_guard.sign('{"sub": "alice", "exp": 4102444800}', 'k256')),
  ('tenant is an object', tenant_guard.sign('{"tenant_id": {"id": 1}, "exp": 4102444800}', 'k256')),
  ('tenant is a float', tenant_guard.sign('{"tenant_id": 1.5, "exp": 4102444800}', 'k256')),
  ('tenant is empty', tenant_guard.sign('{"tenant_id": "", "exp": 4102444800}', 'k256')),
  ('sub is boolean', tenant_guard.sign('{"tenant_id": "acme", "sub": true, "exp": 4102444800}', 'k256')),
  ('empty string',  ''),
  ('a.b',           'a.b'),
  ('four segments', 'a.b.c.d'),
  ('not base64',    '!!!.???.***'),
  ('header not JSON', spec.b64url('hello') || '.' || spec.b64url('{}') || '.AAAA'),
  ('header is an array', spec.b64url('[1]') || '.' || spec.b64url('{}') || '.AAAA'),
  ('payload is a number, bogus signature', spec.b64url('{"alg":"HS256","kid":"k256"}') || '.' || spec.b64url('42') || '.AAAA'),
  ('alg none',      spec.b64url('{"alg":"none"}') || '.' || spec.b64url('{"tenant_id":"acme","exp":4102444800}') || '.AAAA'),
  ('alg RS256',     spec.b64url('{"alg":"RS256","kid":"k256"}') || '.' || spec.b64url('{"tenant_id":"acme","exp":4102444800}') || '.AAAA'),
  ('crit header',   spec.b64url('{"alg":"HS256","kid":"k256","crit":["exp"]}') || '.' || spec.b64url('{"tenant_id":"acme","exp":4102444800}') || '.AAAA'),
  ('unknown kid',   spec.b64url('{"alg":"HS256","kid":"who"}') || '.' || spec.b64url('{"tenant_id":"acme","exp":4102444800}') || '.AAAA'),
  ('no kid, 3 keys', spec.b64url('{"alg":"HS256"}') || '.' || spec.b64url('{"tenant_id":"acme","exp":4102444800}') || '.AAAA'),
  ('200 kB of text', repeat('x', 200000));

-- Tampering: another payload under a valid signature, a signature from
-- another key, a header claiming another algorithm for the key, and
-- duplicate claims (two tenant_id members).
INSERT INTO spec.tokens
SELECT 'tampered payload', split_part(g.token, '.', 1) || '.' || spec.b64url('{"tenant_id":"globex","exp":4102444800}') || '.' || split_part(g.token, '.', 3)
  FROM spec.tokens g WHERE g.name = 'good';
INSERT INTO spec.tokens
SELECT 'signed by another key', split_part(g.token, '.', 1) || '.' || split_part(g.token, '.', 2) || '.'
       || split_part(tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', 'spare'), '.', 3)
  FROM spec.tokens g WHERE g.name = 'good';
INSERT INTO spec.tokens
SELECT 'alg HS256 on an HS512 key', spec.b64url('{"alg":"HS256","kid":"k512"}') || '.' || split_part(g.token, '.', 2) || '.' || split_part(g.token, '.', 3)
  FROM spec.tokens g WHERE g.name = 'good, HS512';
INSERT INTO spec.tokens
SELECT 'signature truncated', left(g.token, length(g.token) - 4) FROM spec.tokens g WHERE g.name = 'good';

SET ROLE tg_rej_app;
SELECT name, spec.try_token(token) AS outcome FROM spec.tokens ORDER BY name;

-- Duplicate claims and NUL characters need a real signature over the raw
-- JSON text, which sign() (taking jsonb) cannot produce; the unit tests of
-- the verifier cover them.

-- Settings tighten the rules for everyone; only superusers may change them.
SET tenant_guard.require_exp = off;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET tenant_guard.issuer = 'https://auth.example';
SET tenant_guard.audience = 'api';
SET tenant_guard.max_token_lifetime = '1h';
SET tenant_guard.max_token_bytes = 400;
-- (iat and exp relative to now: the lifetime rule needs both near now.)
INSERT INTO spec.tokens
SELECT name, tenant_guard.sign(claims || jsonb_build_object('iat', now_s - 60, 'exp', now_s + lifetime), 'k256')
  FROM (SELECT extract(epoch FROM now())::bigint AS now_s) n,
       (VALUES ('iss and aud ok', '{"tenant_id": "acme", "iss": "https://auth.example", "aud": ["web", "api"]}'::jsonb, 600),
               ('wrong iss', '{"tenant_id": "acme", "iss": "https://evil.example", "aud": "api"}', 600),
               ('wrong aud', '{"tenant_id": "acme", "iss": "https://auth.example", "aud": "web"}', 600),
               ('no iss', '{"tenant_id": "acme", "aud": "api"}', 600),
               ('lives 2 hours', '{"tenant_id": "acme", "iss": "https://auth.example", "aud": "api"}', 7200),
               ('over 400 bytes', jsonb_build_object('tenant_id', 'acme', 'iss', 'https://auth.example', 'aud', 'api', 'pad', repeat('p', 300)), 600)
       ) AS c(name, claims, lifetime);
SET ROLE tg_rej_app;
SELECT name, spec.try_token(token) AS outcome
  FROM spec.tokens WHERE name IN ('iss and aud ok', 'wrong iss', 'wrong aud', 'no iss', 'lives 2 hours', 'over 400 bytes')
 ORDER BY name;
RESET ROLE;
RESET ALL;

-- The DETAIL says why; rejections are logged (shown here by raising
-- client_min_messages) with the reason and kid but never the token.
\set VERBOSITY default
SET client_min_messages = log;
BEGIN;
SELECT tenant_guard.set_context(token) FROM spec.tokens WHERE name = 'expired';
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(token) FROM spec.tokens WHERE name = 'signed by another key';
ROLLBACK;

-- tenant_guard.log_rejections: all (the default: one line per rejection,
-- above), sampled (at most one line per backend every 10 seconds, with the
-- count skipped since), off (none; the ERROR itself still reaches the
-- client and, per log_min_messages, the log).
SHOW tenant_guard.log_rejections;
SET tenant_guard.log_rejections = sampled;
BEGIN;
SELECT tenant_guard.set_context(token) FROM spec.tokens WHERE name = 'expired';
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(token) FROM spec.tokens WHERE name = 'expired';
ROLLBACK;
SET tenant_guard.log_rejections = off;
BEGIN;
SELECT tenant_guard.set_context(token) FROM spec.tokens WHERE name = 'signed by another key';
ROLLBACK;
SET tenant_guard.log_rejections = everything;
RESET tenant_guard.log_rejections;
RESET client_min_messages;
-- Superuser-only: an application role can neither silence nor flood the log.
\set VERBOSITY sqlstate
SET ROLE tg_rej_app;
SET tenant_guard.log_rejections = off;
SELECT set_config('tenant_guard.log_rejections', 'all', false);
RESET ROLE;
\set VERBOSITY default

-- A retired key stops verifying at once (and in every other session from
-- its next transaction).
BEGIN;
SELECT tenant_guard.set_context(token) FROM spec.tokens WHERE name = 'good';
COMMIT;
SELECT tenant_guard.retire_key('k256');
SELECT name, spec.try_token(token) AS outcome FROM spec.tokens WHERE name = 'good';

DROP SCHEMA spec CASCADE;
DROP EXTENSION tenant_guard;
DROP ROLE tg_rej_app;
