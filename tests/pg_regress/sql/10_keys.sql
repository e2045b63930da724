-- Tests the key ring: add_key, retire_key, key_status and who may use them
CREATE EXTENSION tenant_guard;
CREATE ROLE tg_keys_app LOGIN;
\set VERBOSITY default

-- A key per algorithm. Secrets must be at least as long as the hash output
-- (RFC 7518 section 3.2): 32, 48 and 64 bytes.
SELECT tenant_guard.add_key('k256', decode(repeat('a1', 32), 'hex'));
SELECT tenant_guard.add_key('k384', decode(repeat('b2', 48), 'hex'), 'HS384');
SELECT tenant_guard.add_key('k512', decode(repeat('c3', 64), 'hex'), 'HS512',
                            expires_at => '2100-01-01 00:00:00+00');

SELECT kid, algorithm, expires_at IS NOT NULL AS expires, status
  FROM tenant_guard.key_status ORDER BY kid;

-- Bad input is refused with a SQLSTATE and changes nothing.
SELECT tenant_guard.add_key('short', decode(repeat('a1', 31), 'hex'));
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.add_key('short512', decode(repeat('a1', 48), 'hex'), 'HS512');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.add_key('rsa', decode(repeat('a1', 64), 'hex'), 'RS256');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.add_key('', decode(repeat('a1', 32), 'hex'));
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.add_key('k256', decode(repeat('a1', 32), 'hex'));
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.add_key('old', decode(repeat('a1', 32), 'hex'), expires_at => '2000-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS keys FROM tenant_guard.keys;

-- Retiring: unknown kids are an error; retiring twice is a no-op.
SELECT tenant_guard.retire_key('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.retire_key('k384');
SELECT tenant_guard.retire_key('k384');
SELECT kid, status FROM tenant_guard.key_status ORDER BY kid;

-- sign() mints a token with a named key; with several active keys a kid is
-- needed.
SELECT split_part(tenant_guard.sign('{"tenant_id": "t1"}', 'k256'), '.', 1) AS header_b64;
SELECT convert_from(decode(rpad(translate(h, '-_', '+/'), (length(h) + 3) / 4 * 4, '='), 'base64'), 'UTF8') AS header
  FROM split_part(tenant_guard.sign('{"tenant_id": "t1"}', 'k512'), '.', 1) AS h;
SELECT tenant_guard.sign('{"tenant_id": "t1"}');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.sign('{"tenant_id": "t1"}', 'k384');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.sign('[1, 2]', 'k256');
\echo :LAST_ERROR_SQLSTATE

-- An application role can neither read the ring nor manage or use keys.
SET ROLE tg_keys_app;
SELECT * FROM tenant_guard.keys;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenant_guard.key_status;
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.add_key('mine', decode(repeat('a1', 32), 'hex'));
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.retire_key('k256');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.sign('{"tenant_id": "t1"}', 'k256');
\echo :LAST_ERROR_SQLSTATE
UPDATE tenant_guard.keys SET retired_at = NULL;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- A key admin can be granted add_key without seeing any secret: the
-- function reads and writes the ring with the extension owner's rights.
GRANT EXECUTE ON FUNCTION tenant_guard.add_key(text, bytea, text, timestamptz) TO tg_keys_app;
SET ROLE tg_keys_app;
SELECT tenant_guard.add_key('granted', decode(repeat('d4', 32), 'hex'));
SELECT count(*) FROM tenant_guard.keys;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT kid, status FROM tenant_guard.key_status ORDER BY kid;

DROP EXTENSION tenant_guard;
DROP ROLE tg_keys_app;
