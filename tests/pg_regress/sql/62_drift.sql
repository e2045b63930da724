-- Tests drift detection and repair, and that protect runs its DDL as the
-- table's owner: a non-superuser owning a protected table tampers with it
-- (policies, row-level security, triggers, default); status and the advisor
-- report each change, protect repairs it. Then the DBA protects app-owned
-- tables whose triggers, CHECKs and index expressions call attacker code.
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('main', decode(repeat('a1', 32), 'hex'));
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE ROLE tg_drift_owner LOGIN;
CREATE ROLE tg_drift_other NOLOGIN;
GRANT CREATE ON SCHEMA public TO tg_drift_owner;
GRANT EXECUTE ON FUNCTION tenant_guard.protect(regclass, text, text, boolean, boolean) TO tg_drift_owner;

SET ROLE tg_drift_owner;
CREATE TABLE notes (id int PRIMARY KEY, tenant_id text NOT NULL, body text);
CREATE INDEX ON notes (tenant_id);
INSERT INTO notes VALUES (1, 'acme', 'a'), (2, 'globex', 'g');
-- The owner protects its own table: the DDL runs as the owner.
SELECT count(*) AS statements FROM tenant_guard.protect('notes');
RESET ROLE;

CREATE VIEW drift AS
  SELECT policies_current, phase, drift FROM tenant_guard.status WHERE table_name = 'notes'::regclass;
CREATE VIEW drift_finding AS
  SELECT severity, code, object, detail, remedy FROM tenant_guard.advisor WHERE code = 'protection_drift';
SELECT * FROM drift;
SELECT * FROM drift_finding;
SELECT tenant_guard.protection_drift('notes');

-- Each tampering below is done by the owner (not a superuser), reported by
-- status and the advisor, and repaired by protect. The DDL guard refuses
-- every one of them (66_ddl_guard); this spec is about tampering that
-- happened anyway (before the guard existed, or through a superuser's
-- emergency door), so the door is open for the rest of the session and
-- each change is let through with a WARNING.
SET tenant_guard.ddl_guard = off;
-- 1. DROP POLICY tenant_guard_select: the permissive USING (true) is left,
--    so every tenant would read every row.
SET ROLE tg_drift_owner;
DROP POLICY tenant_guard_select ON notes;
RESET ROLE;
SELECT * FROM drift;
SELECT * FROM drift_finding;
SELECT * FROM tenant_guard.protect('notes');
SELECT * FROM drift;

-- 2. ALTER POLICY ... USING (true).
SET ROLE tg_drift_owner;
ALTER POLICY tenant_guard_select ON notes USING (true);
ALTER POLICY tenant_guard_update ON notes WITH CHECK (true);
RESET ROLE;
SELECT * FROM drift;
SELECT count(*) AS findings FROM drift_finding;
SELECT * FROM tenant_guard.protect('notes');
SELECT * FROM drift;

-- 3. ALTER POLICY ... TO some_role: the restrictive rule no longer applies
--    to anyone else.
SET ROLE tg_drift_owner;
ALTER POLICY tenant_guard_delete ON notes TO tg_drift_other;
RESET ROLE;
SELECT * FROM drift;
SELECT * FROM tenant_guard.protect('notes');
SELECT * FROM drift;

-- 4. The policy dropped and created again as PERMISSIVE with the same
--    expression: recreated (ALTER POLICY cannot change that).
SET ROLE tg_drift_owner;
DROP POLICY tenant_guard_insert ON notes;
CREATE POLICY tenant_guard_insert ON notes AS PERMISSIVE FOR INSERT
  WITH CHECK (tenant_id = ANY (tenant_guard.writable_tenants()));
RESET ROLE;
SELECT * FROM drift;
SELECT * FROM tenant_guard.protect('notes');
SELECT * FROM drift;

-- 5. DISABLE and NO FORCE ROW LEVEL SECURITY: never phase 'enforce'.
SET ROLE tg_drift_owner;
ALTER TABLE notes NO FORCE ROW LEVEL SECURITY;
RESET ROLE;
SELECT * FROM drift;
SET ROLE tg_drift_owner;
ALTER TABLE notes DISABLE ROW LEVEL SECURITY;
RESET ROLE;
SELECT * FROM drift;
SELECT * FROM tenant_guard.protect('notes');
SELECT * FROM drift;

-- 6. DROP TRIGGER and DISABLE TRIGGER.
SET ROLE tg_drift_owner;
DROP TRIGGER tenant_guard_no_truncate ON notes;
ALTER TABLE notes DISABLE TRIGGER tenant_guard_immutable_tenant;
RESET ROLE;
SELECT * FROM drift;
SELECT * FROM tenant_guard.protect('notes');
SELECT * FROM drift;
-- A trigger of the same name that calls something else is not ours.
SET ROLE tg_drift_owner;
DROP TRIGGER tenant_guard_no_truncate ON notes;
CREATE FUNCTION public.tg_drift_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER tenant_guard_no_truncate BEFORE TRUNCATE ON notes
  FOR EACH STATEMENT EXECUTE FUNCTION public.tg_drift_noop();
RESET ROLE;
SELECT * FROM drift;
SELECT * FROM tenant_guard.protect('notes');
SELECT * FROM drift;

-- 7. ALTER COLUMN ... DROP DEFAULT.
SET ROLE tg_drift_owner;
ALTER TABLE notes ALTER COLUMN tenant_id DROP DEFAULT;
RESET ROLE;
SELECT * FROM drift;
SELECT * FROM tenant_guard.protect('notes');
SELECT * FROM drift;

-- 8. An extra permissive policy of the owner's: reported (the restrictive
--    tenant rules still hold), and kept by protect.
SET ROLE tg_drift_owner;
CREATE POLICY open_all ON notes FOR SELECT USING (true);
RESET ROLE;
SELECT * FROM drift;
SELECT remedy FROM drift_finding;
SELECT count(*) AS statements FROM tenant_guard.protect('notes');
SELECT policies_current FROM drift;
SET ROLE tg_drift_owner;
DROP POLICY open_all ON notes;
RESET ROLE;

-- Everything tampered at once, repaired by one protect call run by the
-- owner itself; the table works as before.
SET ROLE tg_drift_owner;
DROP POLICY tenant_guard_select ON notes;
ALTER POLICY tenant_guard_access ON notes TO tg_drift_other;
ALTER TABLE notes NO FORCE ROW LEVEL SECURITY;
DROP TRIGGER tenant_guard_no_truncate ON notes;
ALTER TABLE notes ALTER COLUMN tenant_id SET DEFAULT 'acme';
RESET ROLE;
SELECT * FROM drift;
SET ROLE tg_drift_owner;
SELECT * FROM tenant_guard.protect('notes');
RESET ROLE;
SELECT * FROM drift;
SELECT tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}') AS acme \gset
SET ROLE tg_drift_owner;
BEGIN;
SELECT tenant_guard.set_context(:'acme');
SELECT id, tenant_id FROM notes ORDER BY id;
INSERT INTO notes (id, body) VALUES (3, 'new') RETURNING tenant_id;
ROLLBACK;
RESET ROLE;

-- A table protected permissive (rollout "prepare": not forced) is not
-- drifted for being unforced; its read rule includes NULL tenants.
CREATE TABLE prep (id int, tenant_id text);
SELECT count(*) FROM tenant_guard.protect('prep', mode => 'permissive', force => false);
SELECT policies_current, phase, drift FROM tenant_guard.status WHERE table_name = 'prep'::regclass;
-- Re-protecting strict rewrites the read rule in place, and drift follows
-- the recorded mode.
SELECT * FROM tenant_guard.protect('prep', force => false);
SELECT policies_current, phase, drift FROM tenant_guard.status WHERE table_name = 'prep'::regclass;
DROP TABLE prep;

-- Only the owner (or a superuser) protects and unprotects a table, even
-- with EXECUTE on the functions.
CREATE ROLE tg_drift_stranger LOGIN;
GRANT EXECUTE ON FUNCTION tenant_guard.protect(regclass, text, text, boolean, boolean) TO tg_drift_stranger;
GRANT EXECUTE ON FUNCTION tenant_guard.unprotect(regclass, boolean) TO tg_drift_stranger;
\set VERBOSITY sqlstate
SET ROLE tg_drift_stranger;
SELECT * FROM tenant_guard.protect('notes');
SELECT * FROM tenant_guard.unprotect('notes');
RESET ROLE;
\set VERBOSITY default
SET ROLE tg_drift_stranger;
SELECT * FROM tenant_guard.unprotect('notes');
RESET ROLE;

-- A table named like a regular expression does not break the advisor.
CREATE TABLE "evil(" (id int, tenant_id text);
SELECT count(*) FROM tenant_guard.protect('"evil("');
CREATE FUNCTION public.reads_evil() RETURNS bigint LANGUAGE sql SECURITY DEFINER
  AS $$ SELECT count(*) FROM "evil(" $$;
SELECT code, object FROM tenant_guard.advisor
 WHERE code IN ('security_definer_reads_tenant_table', 'protection_drift') ORDER BY 1, 2;
DROP FUNCTION public.reads_evil();
DROP TABLE "evil(";

-- The DBA protects app-owned tables whose trigger, CHECK and index
-- expression call an attacker function that counts, in sequences (which
-- survive rollback), whether it ran as a superuser, and then tries to make
-- its owner superuser. A test event trigger records who runs each DDL
-- statement: protect's DDL runs as the table's owner, never as the DBA.
CREATE SEQUENCE public.tg_drift_log;
CREATE SEQUENCE public.tg_drift_as_app;
CREATE SEQUENCE public.tg_drift_as_super;
GRANT USAGE ON SEQUENCE public.tg_drift_log, public.tg_drift_as_app, public.tg_drift_as_super TO PUBLIC;
CREATE TABLE public.tg_drift_seen (n bigint, who name, what text);
GRANT INSERT ON public.tg_drift_seen TO PUBLIC;
SET ROLE tg_drift_owner;
-- IMMUTABLE so that an index may use it; a sequence records each call.
CREATE FUNCTION public.tg_drift_pwn() RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    PERFORM nextval('public.tg_drift_as_super');
    EXECUTE 'ALTER ROLE tg_drift_owner SUPERUSER';
  ELSE
    PERFORM nextval('public.tg_drift_as_app');
  END IF;
  RETURN true;
END $$;
CREATE FUNCTION public.tg_drift_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM public.tg_drift_pwn(); RETURN NEW; END $$;
CREATE TABLE trap (id int PRIMARY KEY, tenant_id text, flag boolean CHECK (public.tg_drift_pwn()));
CREATE INDEX trap_expr ON trap ((public.tg_drift_pwn()));
CREATE TRIGGER trap_any BEFORE INSERT OR UPDATE ON trap FOR EACH ROW EXECUTE FUNCTION public.tg_drift_trg();
INSERT INTO trap VALUES (1, NULL, true);
RESET ROLE;
CREATE FUNCTION public.tg_drift_ddl_seen() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.tg_drift_seen VALUES (nextval('public.tg_drift_log'), current_user, tg_tag); END $$;
CREATE EVENT TRIGGER tg_drift_ddl ON ddl_command_end EXECUTE FUNCTION public.tg_drift_ddl_seen();
TRUNCATE public.tg_drift_seen;
-- The DBA (superuser) protects it and reads status and the advisor.
SELECT count(*) AS statements FROM tenant_guard.protect('trap');
SELECT count(*) > 0 AS findings FROM tenant_guard.advisor;
SELECT policies_current FROM tenant_guard.status WHERE table_name = 'trap'::regclass;
SELECT count(*) AS statements FROM tenant_guard.unprotect('trap');
SELECT what, who, count(*) FROM public.tg_drift_seen GROUP BY 1, 2 ORDER BY 1, 2;
-- The DDL guard (SECURITY DEFINER, tenant_guard.on_new_table = protect)
-- protects a new table as its owner too.
TRUNCATE public.tg_drift_seen;
SET tenant_guard.on_new_table = 'protect';
SET ROLE tg_drift_owner;
CREATE TABLE trap2 (id int, tenant_id text DEFAULT 'x' CHECK (public.tg_drift_pwn()));
RESET ROLE;
RESET tenant_guard.on_new_table;
SELECT count(*) AS protected FROM tenant_guard.protected WHERE relid = 'trap2'::regclass;
SELECT what, who, count(*) FROM public.tg_drift_seen GROUP BY 1, 2 ORDER BY 1, 2;
DROP EVENT TRIGGER tg_drift_ddl;
-- A tenant column of the app's own domain, which gets a CHECK calling its
-- code once protected (protect refuses a domain whose checks call anything
-- but built-in immutable functions, see 92_owner_rights): the policies
-- compare in the domain's base type, so no reader runs the check, and
-- status compares them without evaluating anything. A policy the owner
-- changed is still seen.
SET ROLE tg_drift_owner;
CREATE DOMAIN public.tg_drift_tenant AS text;
CREATE TABLE trap3 (id int, tenant_id public.tg_drift_tenant);
RESET ROLE;
SELECT count(*) AS statements FROM tenant_guard.protect('trap3');
SET ROLE tg_drift_owner;
ALTER DOMAIN public.tg_drift_tenant ADD CONSTRAINT tg_drift_tenant_check CHECK (public.tg_drift_pwn()) NOT VALID;
RESET ROLE;
SELECT policies_current, drift FROM tenant_guard.status WHERE table_name = 'trap3'::regclass;
SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = 'trap3'::regclass AND polname = 'tenant_guard_select';
SET ROLE tg_drift_owner;
ALTER POLICY tenant_guard_select ON trap3 USING (tenant_id::text = ANY (tenant_guard.writable_tenants()));
RESET ROLE;
SELECT policies_current, drift FROM tenant_guard.status WHERE table_name = 'trap3'::regclass;
-- A table protected by 0.1.0 whose tenant column has a type modifier: its
-- rules cast to varchar(8), which cuts longer tenant ids (acme-corporation
-- read acme-cor's rows). Drift, a high finding, and protect rewrites the
-- policies and the default in place.
CREATE TABLE old_notes (id int PRIMARY KEY, tenant_id varchar(8) NOT NULL);
SELECT count(*) > 0 AS protected FROM tenant_guard.protect('old_notes');
ALTER POLICY tenant_guard_select ON old_notes
  USING (tenant_id = ANY (tenant_guard.visible_tenants()::varchar(8)[]));
ALTER POLICY tenant_guard_update ON old_notes
  USING (tenant_id = ANY (tenant_guard.writable_tenants()::varchar(8)[]))
  WITH CHECK (tenant_id = ANY (tenant_guard.writable_tenants()::varchar(8)[]));
ALTER TABLE old_notes ALTER COLUMN tenant_id SET DEFAULT tenant_guard.tenant_id()::varchar(8);
SELECT tenant_guard.protection_drift('old_notes');
SELECT severity, object FROM tenant_guard.advisor WHERE code = 'protection_drift' AND object = 'public.old_notes';
SELECT * FROM tenant_guard.protect('old_notes');
SELECT tenant_guard.protection_drift('old_notes');
-- The app's code ran (its own INSERT and CREATE TABLE), never as a
-- superuser; no role gained anything.
SELECT last_value > 0 AS ran_as_app FROM public.tg_drift_as_app;
SELECT is_called AS ran_as_superuser FROM public.tg_drift_as_super;
SELECT rolname, rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname LIKE 'tg_drift%' ORDER BY 1;

DROP VIEW drift_finding;
DROP VIEW drift;
DROP TABLE notes, trap, trap2, trap3, old_notes;
DROP DOMAIN public.tg_drift_tenant;
DROP FUNCTION public.tg_drift_trg(), public.tg_drift_pwn(), public.tg_drift_noop(), public.tg_drift_ddl_seen();
DROP TABLE public.tg_drift_seen;
DROP SEQUENCE public.tg_drift_log, public.tg_drift_as_app, public.tg_drift_as_super;
DROP EXTENSION tenant_guard;
REVOKE CREATE ON SCHEMA public FROM tg_drift_owner;
DROP ROLE tg_drift_owner;
DROP ROLE tg_drift_other;
DROP ROLE tg_drift_stranger;
