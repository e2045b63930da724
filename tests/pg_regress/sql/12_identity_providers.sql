-- Tests tokens from identity providers: public-key algorithms (RS, PS, ES,
-- EdDSA), key sets imported with add_jwks, rotation, issuer rules, claim
-- paths and revocation. The key sets and tokens are in data/idp_fixtures.sql
-- (made by data/make_idp_fixtures.py with the cryptography package; only
-- public keys and tokens, every token expires in 2100).
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/data/idp_fixtures.sql'
\i :fixtures
\set VERBOSITY default
CREATE EXTENSION tenant_guard;
CREATE ROLE tg_idp_app LOGIN;
SET tenant_guard.require_exp = on;

-- A provider's key set is imported for its issuer: every signature key is
-- added under its kid, for exactly one algorithm (its alg, or the one its
-- curve implies); a key for encryption is skipped.
SELECT * FROM tenant_guard.add_jwks(:'jwks', 'https://idp.example.com/') ORDER BY kid;
SELECT kid, algorithm, kind, issuer, source, status FROM tenant_guard.key_status ORDER BY kid;
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api', tenant_claim => 'org_id');

-- Each algorithm verifies its token.
BEGIN;
SELECT tenant_guard.set_context(:'tok_rs256') AS rs256, tenant_guard.set_context(:'tok_rs384') AS rs384,
       tenant_guard.set_context(:'tok_rs512') AS rs512;
SELECT tenant_guard.set_context(:'tok_ps256') AS ps256, tenant_guard.set_context(:'tok_ps384') AS ps384,
       tenant_guard.set_context(:'tok_ps512') AS ps512;
SELECT tenant_guard.set_context(:'tok_es256') AS es256, tenant_guard.set_context(:'tok_es384') AS es384,
       tenant_guard.set_context(:'tok_eddsa') AS eddsa;
SELECT tenant_guard.tenant_id(), tenant_guard.user_id();
COMMIT;

-- Attacks, each refused with 28000 and a DETAIL naming what was wrong.
-- Algorithm confusion: HS256 "signed" with the RSA public key (DER, PEM).
BEGIN;
SELECT tenant_guard.set_context(:'tok_confusion_der');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'tok_confusion_pem');
ROLLBACK;
-- Key type confusion: PS256 with an RS256 key, RS256 with an EC key, an
-- ES256 signature made by a P-384 key.
BEGIN;
SELECT tenant_guard.set_context(:'tok_ps_on_rs_key');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'tok_rs_on_es_key');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'tok_es256_by_p384');
ROLLBACK;
-- A key embedded in the header (jwk, jku) is never used.
BEGIN;
SELECT tenant_guard.set_context(:'tok_embedded_jwk');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'tok_embedded_jwk_nokid');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'tok_jku');
ROLLBACK;
-- A key verifies its issuer's tokens only, with that issuer's audience.
BEGIN;
SELECT tenant_guard.set_context(:'tok_other_issuer');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'tok_no_issuer');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'tok_wrong_aud');
ROLLBACK;
-- An identity provider's token never grants bypass.
BEGIN;
SELECT tenant_guard.set_context(:'tok_bypass');
ROLLBACK;
-- The tenant claim path is missing.
BEGIN;
SELECT tenant_guard.set_context(:'tok_no_org');
ROLLBACK;

-- Key sets that are refused whole, nothing imported: a private member, a
-- short RSA key, a P-256 point announced as P-384, ES384 on a P-256 key, a
-- symmetric key, a key set without any signature key.
SELECT * FROM tenant_guard.add_jwks(:'jwks_private', 'https://idp.example.com/');
SELECT * FROM tenant_guard.add_jwks(:'jwks_short', 'https://idp.example.com/');
SELECT * FROM tenant_guard.add_jwks(:'jwks_wrong_curve', 'https://idp.example.com/');
SELECT * FROM tenant_guard.add_jwks(:'jwks_es384_on_p256', 'https://idp.example.com/');
SELECT * FROM tenant_guard.add_jwks(:'jwks_oct', 'https://idp.example.com/');
SELECT * FROM tenant_guard.add_jwks('{"keys": []}', 'https://idp.example.com/');
SELECT * FROM tenant_guard.add_jwks(:'jwks', 'https://idp.example.com/', default_algorithm => 'HS256');
-- The same kids for another issuer: refused (a kid is never reused).
SELECT * FROM tenant_guard.add_jwks(:'jwks', 'https://other.example.com/');
SELECT count(*) AS keys FROM tenant_guard.keys;
-- add_key takes shared secrets only.
SELECT tenant_guard.add_key('rsa', decode(repeat('a1', 64), 'hex'), 'RS256');

-- Claim paths: Clerk's o.id, Auth0's namespaced claim, a tenant set
-- through an array of objects.
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api', tenant_claim => 'o.id');
BEGIN;
SELECT tenant_guard.set_context(:'tok_clerk');
ROLLBACK;
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api', tenant_claim => 'https://example.com/tenant_id');
BEGIN;
SELECT tenant_guard.set_context(:'tok_auth0');
ROLLBACK;
-- The same as a JSON Pointer (RFC 6901).
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api', tenant_claim => '/https:~1~1example.com~1tenant_id');
BEGIN;
SELECT tenant_guard.set_context(:'tok_auth0');
ROLLBACK;
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api', tenant_claim => 'o.id', tenants_claim => 'orgs.id');
BEGIN;
SELECT tenant_guard.set_context(:'tok_orgs');
SELECT tenant_guard.visible_tenants();
ROLLBACK;
-- Without a tenants_claim of its issuer, a provider's token reads only its
-- tenant: a "tenants" claim (the setting's default) is not read from it, as
-- users may shape some provider claims.
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api', tenant_claim => 'org_id');
BEGIN;
SELECT tenant_guard.set_context(:'tok_wide');
SELECT tenant_guard.visible_tenants();
ROLLBACK;
-- A session context verified under the issuer's rules stops working at its
-- next statement when set_issuer changes them.
SELECT tenant_guard.set_context(:'tok_es256', false);
SELECT tenant_guard.tenant_id() AS before_rule_change;
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api-v2', tenant_claim => 'org_id');
SELECT tenant_guard.tenant_id() AS after_rule_change;
SELECT tenant_guard.clear_context();
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api', tenant_claim => 'org_id', user_claim => 'jti');
BEGIN;
SELECT tenant_guard.set_context(:'tok_eddsa'), tenant_guard.user_id();
ROLLBACK;
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api', tenant_claim => 'org_id');
SELECT tenant_guard.set_issuer('https://idp.example.com/', tenant_claim => 'o..id');
SELECT tenant_guard.set_issuer('https://idp.example.com/', leeway => -1);

-- Rotation: the set published again without ed-1 and with ed-2. ed-1 keeps
-- verifying for the grace period; with no grace it stops at once.
SELECT * FROM tenant_guard.add_jwks(:'jwks_rotated', 'https://idp.example.com/') ORDER BY kid;
SELECT kid, status, expires_at > now() + interval '23 hours' AS expires_in_a_day
  FROM tenant_guard.key_status WHERE kid IN ('ed-1', 'ed-2') ORDER BY kid;
BEGIN;
SELECT tenant_guard.set_context(:'tok_eddsa') AS old_kid_in_grace, tenant_guard.set_context(:'tok_ed2') AS new_kid;
COMMIT;
-- Published again: the pending expiry is lifted.
SELECT kid, action FROM tenant_guard.add_jwks(:'jwks', 'https://idp.example.com/') WHERE kid IN ('ed-1', 'ed-2') ORDER BY kid;
SELECT kid, expires_at IS NULL AS no_expiry FROM tenant_guard.key_status WHERE kid IN ('ed-1', 'ed-2') ORDER BY kid;
SELECT kid, action FROM tenant_guard.add_jwks(:'jwks_rotated', 'https://idp.example.com/', grace => '0') WHERE action = 'retiring';
BEGIN;
SELECT tenant_guard.set_context(:'tok_eddsa');
ROLLBACK;
SELECT * FROM tenant_guard.add_jwks(:'jwks_rotated', 'https://idp.example.com/', grace => '-1 hour');
-- Listed again by the provider, ed-1 verifies again.
SELECT kid, action FROM tenant_guard.add_jwks(:'jwks', 'https://idp.example.com/') WHERE kid = 'ed-1';

-- Revocation. A token by its jti, refused also when it was verified (and
-- cached) before in this session.
BEGIN;
SELECT tenant_guard.set_context(:'tok_es384');
COMMIT;
SELECT tenant_guard.revoke_token('jti-es384');
BEGIN;
SELECT tenant_guard.set_context(:'tok_es384');
ROLLBACK;
-- A jti that is a JSON number is named by its decimal text.
SELECT tenant_guard.revoke_token('12345');
BEGIN;
SELECT tenant_guard.set_context(:'tok_numjti');
ROLLBACK;
-- A subject: tokens issued before the cut are refused, later ones not.
SELECT tenant_guard.revoke_subject('user-1', issued_before => to_timestamp(1700000000));
BEGIN;
SELECT tenant_guard.set_context(:'tok_old');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(:'tok_es256') AS issued_at_the_cut;
COMMIT;
-- A session context of user-2 stops working at the next statement after
-- revoke_subject ("log out everywhere").
SELECT tenant_guard.set_context(:'tok_user2', false);
SELECT tenant_guard.tenant_id() AS before_revocation;
SELECT tenant_guard.revoke_subject('user-2', issued_before => '2024-01-01 00:00:00+00');
SELECT tenant_guard.tenant_id() AS after_revocation;
BEGIN;
SELECT tenant_guard.set_context(:'tok_user2');
ROLLBACK;
SELECT tenant_guard.clear_context();
-- A tenant: every token naming it (as its tenant or in its read set).
BEGIN;
SELECT tenant_guard.set_context(:'tok_globex');
COMMIT;
SELECT tenant_guard.revoke_tenant('globex', issued_before => '2024-01-01 00:00:00+00');
BEGIN;
SELECT tenant_guard.set_context(:'tok_globex');
ROLLBACK;
SELECT kind, value, issued_before IS NULL AS no_cut, expires_at IS NULL AS kept_for_ever
  FROM tenant_guard.revocations ORDER BY kind, value;
-- With a lifetime limit (or an explicit expires_at) an entry is kept until
-- every token it names has expired anyway, then pruned: by
-- prune_revocations() or at the next revocation.
SET tenant_guard.max_token_lifetime = 3600;
BEGIN;
SELECT tenant_guard.revoke_subject('user-9', issued_before => now() - interval '3630 seconds');
SELECT tenant_guard.revoke_tenant('t-9');
SELECT tenant_guard.revoke_token('jti-short', expires_at => now());
SELECT kind, value, expires_at <= now() AS prunable
  FROM tenant_guard.revocations WHERE value IN ('jti-short', 'user-9', 't-9') ORDER BY kind;
SELECT tenant_guard.prune_revocations() AS pruned;
COMMIT;
SELECT kind, value, expires_at = created_at + interval '3630 seconds' AS kept_lifetime_and_leeway
  FROM tenant_guard.revocations WHERE value IN ('jti-short', 'user-9', 't-9');
RESET tenant_guard.max_token_lifetime;

-- Organisation ids mapped to tenant ids through the registry: the token's
-- org_id names the provider's organisation, the registry row that holds it
-- in external_org_id is the tenant.
CREATE TABLE tenants (id text PRIMARY KEY, external_org_id text UNIQUE, active boolean NOT NULL DEFAULT true);
INSERT INTO tenants VALUES ('t-1', 'acme', true), ('t-2', 'globex', true), ('t-3', 'initech', false);
SELECT tenant_guard.use_registry('tenants', 'id', 'active');
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api', tenant_claim => 'org_id', org_column => 'external_org_id');
BEGIN;
SELECT tenant_guard.set_context(:'tok_rs256') AS mapped, tenant_guard.tenant_id();
ROLLBACK;
-- A revocation may name the organisation (as the provider's webhooks do)
-- or the tenant it maps to.
BEGIN;
SELECT tenant_guard.revoke_tenant('acme', issued_before => '2024-01-01 00:00:00+00');
SELECT tenant_guard.set_context(:'tok_rs256');
ROLLBACK;
BEGIN;
SELECT tenant_guard.revoke_tenant('t-1', issued_before => '2024-01-01 00:00:00+00');
SELECT tenant_guard.set_context(:'tok_rs256');
ROLLBACK;
-- An organisation no row names; one whose tenant is inactive.
UPDATE tenants SET external_org_id = 'acme-old' WHERE id = 't-1';
BEGIN;
SELECT tenant_guard.set_context(:'tok_rs256');
ROLLBACK;
UPDATE tenants SET external_org_id = 'acme', active = false WHERE id = 't-1';
BEGIN;
SELECT tenant_guard.set_context(:'tok_rs256');
ROLLBACK;
-- A column that is not text is refused; so is a mapping without a registry.
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api', tenant_claim => 'org_id', org_column => 'active');
BEGIN;
SELECT tenant_guard.set_context(:'tok_rs256');
ROLLBACK;
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api', tenant_claim => 'org_id', org_column => 'external_org_id');
SELECT tenant_guard.use_registry(NULL);
BEGIN;
SELECT tenant_guard.set_context(:'tok_rs256');
ROLLBACK;
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => 'api', tenant_claim => 'org_id');
DROP TABLE tenants;

-- The application's own HMAC keys keep the settings' rules, which take
-- claim paths too (here the user from tenant_guard.user_claim).
SELECT tenant_guard.add_key('app', decode(repeat('5a', 32), 'hex'));
SET tenant_guard.user_claim = 'profile.email';
BEGIN;
SELECT tenant_guard.set_context(tenant_guard.sign('{"tenant_id": "acme", "profile": {"email": "a@example.com"}, "exp": 4102444800}', 'app')),
       tenant_guard.user_id();
ROLLBACK;
-- revoke_subject matches that user too, not only the sub claim.
BEGIN;
SELECT tenant_guard.revoke_subject('a@example.com', issued_before => '2100-01-01 00:00:00+00');
SELECT tenant_guard.set_context(tenant_guard.sign('{"tenant_id": "acme", "profile": {"email": "a@example.com"}, "exp": 4102444800}', 'app'));
ROLLBACK;
RESET tenant_guard.user_claim;

-- None of this is for PUBLIC: an application role can neither import keys,
-- set rules, revoke, nor read the tables.
SET ROLE tg_idp_app;
SELECT * FROM tenant_guard.add_jwks(:'jwks', 'https://idp.example.com/');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.set_issuer('https://idp.example.com/', audience => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.revoke_token('x');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_guard.prune_revocations();
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenant_guard.revocations;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenant_guard.issuers;
\echo :LAST_ERROR_SQLSTATE
-- ... but it can use the provider's tokens.
BEGIN;
SELECT tenant_guard.set_context(:'tok_rs256');
COMMIT;
RESET ROLE;

DROP EXTENSION tenant_guard;
DROP ROLE tg_idp_app;
