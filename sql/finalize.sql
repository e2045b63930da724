-- tenant_guard: triggers, privileges and comments. Runs last in CREATE EXTENSION.

-- Any change to the key ring or the registry drops every backend's cache.
CREATE TRIGGER keys_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_guard.keys
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard.config_changed();
CREATE TRIGGER registry_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_guard.registry
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard.config_changed();

-- Administration is for the extension owner and roles it grants. Whoever can
-- sign can become any tenant; whoever can add a key can sign.
REVOKE ALL ON FUNCTION tenant_guard.add_key(text, bytea, text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.retire_key(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.sign(jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.use_registry(regclass, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.config_changed() FROM PUBLIC;

COMMENT ON FUNCTION tenant_guard.version() IS 'tenant_guard library version';
COMMENT ON FUNCTION tenant_guard.add_key(text, bytea, text, timestamptz) IS
  'add an HMAC key (HS256/384/512; secret at least 32/48/64 bytes) to the key ring';
COMMENT ON FUNCTION tenant_guard.retire_key(text) IS
  'retire a key: tokens signed with it stop verifying in every session';
COMMENT ON FUNCTION tenant_guard.sign(jsonb, text) IS
  'mint a token over the given claims with a key of the ring (not for PUBLIC)';
COMMENT ON FUNCTION tenant_guard.use_registry(regclass, text, text) IS
  'make set_context refuse tenants missing from (or inactive in) a table; NULL turns it off';
COMMENT ON FUNCTION tenant_guard.set_context(text, boolean) IS
  'verify a signed token and set the tenant context (transaction-scoped by default); returns the tenant id';
COMMENT ON FUNCTION tenant_guard.clear_context() IS 'drop the tenant context';
COMMENT ON FUNCTION tenant_guard.tenant_id() IS 'current tenant id, NULL without a context';
COMMENT ON FUNCTION tenant_guard.require_tenant_id() IS
  'current tenant id; error 42501 without a context';
COMMENT ON FUNCTION tenant_guard.user_id() IS 'the sub claim of the current context';
COMMENT ON FUNCTION tenant_guard.claims() IS 'all verified claims of the current context';
COMMENT ON FUNCTION tenant_guard.is_bypass() IS 'whether the current context sees every tenant';
