-- Tests that an application role cannot forge a tenant context
-- The context lives in settings only superusers may set; set_context writes
-- them after verifying a signed token. Every other way in is refused.
CREATE EXTENSION tenant_guard;
CREATE ROLE tg_forge_app LOGIN;
GRANT CREATE ON SCHEMA public TO tg_forge_app;
\set VERBOSITY default

SET ROLE tg_forge_app;
SET tenant_guard.context = 'victim';
SET LOCAL tenant_guard.context = 'victim';
SELECT set_config('tenant_guard.context', 'victim', false);
SELECT set_config('tenant_guard.context', E'victim\x1f{}\x1f{"tenant_id": "victim"}', true);
RESET tenant_guard.context;
ALTER ROLE tg_forge_app SET tenant_guard.context = 'victim';
-- A function whose SET clause would plant the context.
CREATE FUNCTION public.plant() RETURNS text LANGUAGE sql
  SET tenant_guard.context = 'victim' AS $$ SELECT tenant_guard.tenant_id() $$;
-- Loosening the verification rules is refused too.
SET tenant_guard.require_exp = off;
SET tenant_guard.max_token_bytes = 1000000;
SELECT set_config('tenant_guard.leeway', '3600', false);
SELECT tenant_guard.tenant_id() AS tenant, current_setting('tenant_guard.context') AS raw_setting;
RESET ROLE;

-- A placeholder set before the library is loaded in a backend is discarded
-- with a WARNING when it loads. \c starts a new backend, which has not
-- loaded tenant_guard yet.
\c - tg_forge_app
SET tenant_guard.context = E'victim\x1f{}\x1f{"tenant_id": "victim"}';
SET tenant_guard.context_tenant = 'victim';
SELECT tenant_guard.tenant_id() AS tenant, tenant_guard.claims() AS claims;
SHOW tenant_guard.context;

-- A per-role default cannot be stored either, even from a backend that has
-- not loaded the library; and none is applied at the next login.
\c - tg_forge_app
ALTER ROLE tg_forge_app SET tenant_guard.context = 'victim';
\c - tg_forge_app
SELECT tenant_guard.tenant_id() AS tenant;

-- Citus' settings made up where Citus is not loaded (placeholders any role
-- can set) do not send tenant_guard down its Citus paths: set_context works
-- as on any single node, also inside a savepoint (refused only on Citus).
\c - postgres
SELECT tenant_guard.add_key('forge', decode(repeat('ab', 32), 'hex'));
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme_token \gset
\c - tg_forge_app
SET citus.propagate_set_commands = 'none';
SET application_name = 'citus_internal gpid=1';
BEGIN;
SAVEPOINT s;
SELECT tenant_guard.set_context(:'acme_token') AS tenant;
SELECT tenant_guard.tenant_id() AS tenant;
COMMIT;
RESET application_name;

\c - postgres
ALTER ROLE tg_forge_app RESET ALL;
DROP EXTENSION tenant_guard;
REVOKE CREATE ON SCHEMA public FROM tg_forge_app;
DROP ROLE tg_forge_app;
