-- tenant_guard: catalog tables. Runs first in CREATE EXTENSION.

-- The schema belongs to the extension, so DROP EXTENSION removes it too.
CREATE SCHEMA tenant_guard;

-- Application roles must be able to call set_context and the accessors.
GRANT USAGE ON SCHEMA tenant_guard TO PUBLIC;

-- The machinery users do not call: trigger functions, the event triggers'
-- functions, the functions behind the audit views, selftest's helpers. The
-- schema tenant_guard holds the documented API only (README, Reference).
-- USAGE for PUBLIC because a table's owner must be able to name the two
-- trigger functions when protect() creates its triggers as that owner (and
-- pg_restore must, restoring them); EXECUTE is revoked from PUBLIC on every
-- function in it except those two, which PostgreSQL only runs as triggers
-- (finalize.sql; tests/pg_regress/sql/99_api_surface.sql checks both).
CREATE SCHEMA tenant_guard_internal;
GRANT USAGE ON SCHEMA tenant_guard_internal TO PUBLIC;
COMMENT ON SCHEMA tenant_guard_internal IS
  'tenant_guard machinery: trigger functions and helpers behind the views; not an API';

-- The tenant sets the generated policies compare with: plain V1 C functions
-- (src/context.rs, tenant_array), without pgrx's argument machinery. A
-- context that reads one tenant gets a one-element text[] built from the
-- setting's bytes on each call; a read set or a bypass context's array is
-- built once per calling expression and statement and kept in fn_extra
-- (rebuilt when the context changes).
CREATE FUNCTION tenant_guard.visible_tenants() RETURNS text[]
  LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'tg_visible_tenants';
CREATE FUNCTION tenant_guard.writable_tenants() RETURNS text[]
  LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'tg_writable_tenants';
-- Whether the context may read (write) a tenant given in the column's own
-- type: the tenant rule with the set hashed (src/context.rs, tenant_member).
-- The planner puts these in place of a policy's rule where a plan tests it
-- as a filter (src/scan.rs, hash_tenant_filters); the policies are unchanged.
CREATE FUNCTION tenant_guard.is_visible(anyelement) RETURNS boolean
  LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tg_is_visible';
CREATE FUNCTION tenant_guard.is_writable(anyelement) RETURNS boolean
  LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tg_is_writable';

-- The key ring. Secrets never leave this table except through sign() and the
-- verification path, both of which read it with the extension owner's rights.
-- HMAC keys (add_key) have a secret; keys imported from an identity
-- provider's key set (add_jwks) have a public key and an issuer.
CREATE TABLE tenant_guard.keys (
    kid         text        PRIMARY KEY CHECK (kid <> ''),
    algorithm   text        NOT NULL CHECK (algorithm IN ('HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA')),
    secret      bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    retired_at  timestamptz,
    public_key  bytea,
    issuer      text,
    source      text        NOT NULL DEFAULT 'add_key' CHECK (source IN ('add_key', 'add_jwks')),
    CONSTRAINT keys_material_check CHECK ((secret IS NULL) <> (public_key IS NULL) AND (public_key IS NULL) = (algorithm IN ('HS256', 'HS384', 'HS512')) AND (issuer IS NULL) = (source = 'add_key'))
);
REVOKE ALL ON tenant_guard.keys FROM PUBLIC;
COMMENT ON TABLE tenant_guard.keys IS
  'tenant_guard key ring (secrets: readable by the extension owner only; dumped by pg_dump)';
-- pg_dump keeps the rows (so a restored database still verifies tokens).
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.keys', '');

-- Key metadata without secrets, for monitoring and rotation.
CREATE VIEW tenant_guard.key_status AS
SELECT kid, algorithm, created_at, expires_at, retired_at,
       CASE WHEN retired_at IS NOT NULL THEN 'retired'
            WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired'
            ELSE 'active' END AS status,
       CASE WHEN algorithm IN ('HS256', 'HS384', 'HS512') THEN 'hmac'
            WHEN algorithm IN ('ES256', 'ES384') THEN 'ec'
            WHEN algorithm = 'EdDSA' THEN 'okp'
            ELSE 'rsa' END AS kind,
       issuer, source
  FROM tenant_guard.keys;
REVOKE ALL ON tenant_guard.key_status FROM PUBLIC;
COMMENT ON VIEW tenant_guard.key_status IS 'tenant_guard keys without their secrets';

-- Issuers of identity-provider tokens (add_jwks, set_issuer) and their
-- rules; NULL falls back to the tenant_guard.* setting.
CREATE TABLE tenant_guard.issuers (
    issuer        text        PRIMARY KEY CHECK (issuer <> ''),
    audience      text,
    leeway        integer     CHECK (leeway >= 0),
    tenant_claim  text,
    tenants_claim text,
    user_claim    text,
    org_column    name,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenant_guard.issuers FROM PUBLIC;
COMMENT ON TABLE tenant_guard.issuers IS 'tenant_guard token issuers and their rules (see set_issuer)';
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.issuers', '');

-- Revoked tokens (jti), subjects and tenants (tokens issued before a time);
-- pruned once every token they name has expired.
CREATE TABLE tenant_guard.revocations (
    kind          text        NOT NULL CHECK (kind IN ('token', 'subject', 'tenant')),
    value         text        NOT NULL,
    issued_before timestamptz,
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value),
    CONSTRAINT revocations_issued_before_check CHECK ((kind = 'token') = (issued_before IS NULL))
);
REVOKE ALL ON tenant_guard.revocations FROM PUBLIC;
COMMENT ON TABLE tenant_guard.revocations IS 'tenant_guard revoked tokens, subjects and tenants (see revoke_token)';
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.revocations', '');

-- The optional tenant registry (at most one row).
CREATE TABLE tenant_guard.registry (
    singleton     boolean  PRIMARY KEY DEFAULT true CHECK (singleton),
    tenant_table  regclass NOT NULL,
    id_column     name     NOT NULL,
    active_column name
);
REVOKE ALL ON tenant_guard.registry FROM PUBLIC;
COMMENT ON TABLE tenant_guard.registry IS 'tenant_guard tenant registry (see use_registry)';
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.registry', '');

-- Tables protected by tenant_guard.protect, with what unprotect must restore.
-- Readable by everyone (which tables are protected is not a secret); written
-- only by protect/unprotect with the extension owner's rights.
CREATE TABLE tenant_guard.protected (
    relid            regclass    PRIMARY KEY,
    parent           regclass,
    tenant_column    name        NOT NULL,
    mode             text        NOT NULL CHECK (mode IN ('strict', 'permissive')),
    force            boolean     NOT NULL,
    rls_was_enabled  boolean     NOT NULL,
    rls_was_forced   boolean     NOT NULL,
    previous_default text,
    protected_at     timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenant_guard.protected FROM PUBLIC;
GRANT SELECT ON tenant_guard.protected TO PUBLIC;
COMMENT ON TABLE tenant_guard.protected IS 'tables protected by tenant_guard.protect (dumped by pg_dump)';
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.protected', '');
