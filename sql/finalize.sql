-- tenant_guard: triggers, privileges and comments. Runs last in CREATE EXTENSION.

-- Any change to the key ring or the registry drops every backend's cache.
-- C (src/keys.rs): a relation-cache invalidation of the table it fires on.
CREATE FUNCTION tenant_guard_internal.config_changed() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'config_changed_wrapper';
CREATE TRIGGER keys_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_guard.keys
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard_internal.config_changed();
CREATE TRIGGER registry_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_guard.registry
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard_internal.config_changed();
CREATE TRIGGER issuers_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_guard.issuers
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard_internal.config_changed();
CREATE TRIGGER revocations_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_guard.revocations
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard_internal.config_changed();

-- TRUNCATE ignores row-level security: a session under a tenant context, or
-- any role the table's policies apply to, may not truncate a protected table.
-- C (src/triggers.rs), so that each refusal is counted in tenant_guard.stats.
CREATE FUNCTION tenant_guard_internal.refuse_truncate() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'tg_refuse_truncate';

-- A row's tenant never changes under a tenant context or for a role that
-- row-level security restricts; a NULL tenant may be filled in (backfills),
-- and an operator (no tenant context, not restricted by row-level security)
-- may repair a row's tenant. C (src/triggers.rs): one column comparison per
-- updated row.
CREATE FUNCTION tenant_guard_internal.refuse_tenant_change() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'tg_refuse_tenant_change';

-- DDL guard: protects partitions created in or attached to a protected
-- table, and (tenant_guard.on_new_table = warn | protect) new tables that
-- have the tenant column. Runs with the extension owner's rights because it
-- writes tenant_guard.protected, with search_path pinned; it reads only the
-- catalog and tenant_guard's tables itself, and protect() runs the DDL on
-- the new table as that table's owner (src/privileged.rs), so nothing the
-- table's creator attached to it runs with the extension owner's rights.
CREATE FUNCTION tenant_guard_internal.on_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  cmd record;
  part record;
  col name := tenant_guard_internal.tenant_column();
  action text := coalesce(current_setting('tenant_guard.on_new_table', true), 'off');
  p tenant_guard.protected;
BEGIN
  IF tenant_guard_internal.in_protect() THEN
    RETURN;  -- protect/unprotect's own DDL
  END IF;
  FOR cmd IN
    SELECT DISTINCT objid FROM pg_event_trigger_ddl_commands()
     WHERE object_type IN ('table', 'table column')
       AND command_tag IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
  LOOP
    -- Partitions of protected tables (new ones, and ones just attached).
    -- The table itself and everything below it, read from pg_inherits
    -- without locking the partitions (pg_partition_tree would lock them all,
    -- which can deadlock with a concurrent load, e.g. a parallel pg_restore).
    FOR part IN
      WITH RECURSIVE tree(relid, depth) AS (
        SELECT cmd.objid, 0
        UNION ALL
        SELECT i.inhrelid, t.depth + 1 FROM pg_inherits i JOIN tree t ON i.inhparent = t.relid
      )
      SELECT t.relid, i.inhparent FROM tree t JOIN pg_inherits i ON i.inhrelid = t.relid
       ORDER BY t.depth
    LOOP
      SELECT * INTO p FROM tenant_guard.protected WHERE relid = part.inhparent;
      CONTINUE WHEN NOT FOUND;
      -- A table protected on its own before it was attached: record its parent.
      UPDATE tenant_guard.protected SET parent = part.inhparent
       WHERE relid = part.relid AND parent IS NULL;
      CONTINUE WHEN EXISTS (SELECT 1 FROM tenant_guard.protected WHERE relid = part.relid);
      PERFORM tenant_guard.protect(part.relid::regclass, p.tenant_column, p.mode, p.force);
      RAISE NOTICE 'tenant_guard: protected partition % of %', part.relid::regclass, part.inhparent::regclass;
    END LOOP;
    -- New tables with the tenant column. On a Citus worker, the shards and
    -- shell tables Citus creates over its own connections are left to it
    -- (any session may name itself so: only where Citus is installed).
    CONTINUE WHEN action = 'off'
      OR (starts_with(current_setting('application_name'), 'citus_internal')
          AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus'))
      OR EXISTS (SELECT 1 FROM tenant_guard.protected WHERE relid = cmd.objid)
      OR NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = cmd.objid AND c.relkind IN ('r', 'p') AND NOT c.relispartition)
      OR NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = cmd.objid AND a.attname = col
                        AND a.attnum > 0 AND NOT a.attisdropped)
      OR NOT EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() d
                      WHERE d.objid = cmd.objid AND d.command_tag <> 'ALTER TABLE');
    IF action = 'protect' THEN
      PERFORM tenant_guard.protect(cmd.objid::regclass, col);
      RAISE NOTICE 'tenant_guard: protected new table % (tenant column %)', cmd.objid::regclass, col;
    ELSE
      RAISE WARNING 'table % has the tenant column % but is not protected', cmd.objid::regclass, col
        USING HINT = (SELECT format('Run SELECT tenant_guard.protect(%L);', format('%I.%I', n.nspname, c.relname))
                        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.oid = cmd.objid);
    END IF;
  END LOOP;
END $$;
CREATE EVENT TRIGGER tenant_guard_ddl ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
  EXECUTE FUNCTION tenant_guard_internal.on_ddl();

-- The DDL guard (issue 15): on a protected table, DDL that would weaken
-- isolation is refused for every role, table owners included (an event
-- trigger fires for them; FORCE ROW LEVEL SECURITY alone does not stop an
-- owner from switching it off). It runs at ddl_command_end / sql_drop,
-- after PostgreSQL applied the statement, so the catalog shows its effect;
-- its error rolls the whole statement back. What counts as weakening is
-- tenant_guard_internal.ddl_guard_findings (src/ddl_guard.rs): the drift
-- detector's findings. protect/unprotect's own DDL passes (in_protect), and
-- a superuser may set tenant_guard.ddl_guard = off (logged at WARNING).
-- SECURITY DEFINER, search_path pinned: it reads tenant_guard.protected
-- and the catalog, and names tables from nspname/relname only.
CREATE FUNCTION tenant_guard_internal.ddl_guard_check(rel oid, tag text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  found text[] := tenant_guard_internal.ddl_guard_findings(rel);
  shown text;   -- for messages: "schema.table"
  lit text;     -- for the hint: a literal that names it exactly
BEGIN
  IF found IS NULL OR cardinality(found) = 0 THEN
    RETURN;
  END IF;
  SELECT n.nspname || '.' || c.relname, quote_literal(format('%I.%I', n.nspname, c.relname))
    INTO shown, lit
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel;
  IF NOT current_setting('tenant_guard.ddl_guard')::boolean THEN
    RAISE WARNING 'tenant_guard.ddl_guard is off: % let through on protected table "%"', tag, shown
      USING DETAIL = 'The table is left with: ' || array_to_string(found, '; ') || '.',
            HINT = format('SELECT tenant_guard.protect(%s); restores its protection.', lit);
    RETURN;
  END IF;
  RAISE EXCEPTION '% would weaken the tenant isolation of protected table "%"', tag, shown
    USING ERRCODE = '42501',
          DETAIL = 'It would leave the table with: ' || array_to_string(found, '; ') || '.',
          HINT = CASE WHEN EXISTS (SELECT 1 FROM unnest(found) f WHERE starts_with(f, 'tenant column type unsafe'))
                 THEN 'Leave the tenant column''s type, the types it is built on, their checks and casts with the '
                      'table''s owner or a superuser, calling only built-in functions: protect refuses a type whose '
                      'code another role controls.'
                 ELSE format('Run SELECT tenant_guard.unprotect(%s); before the change and '
                             'SELECT tenant_guard.protect(%s); after it. '
                             'A table that had drifted before is repaired by protect alone.', lit, lit)
                 END;
END $$;

-- Commands that report what they changed: ALTER TABLE (RLS, FORCE, column
-- default, type, DROP COLUMN, OWNER, RENAME, SET SCHEMA, DISABLE TRIGGER,
-- DETACH PARTITION), CREATE/ALTER POLICY, ALTER TRIGGER (rename), ALTER
-- TYPE / ALTER DOMAIN / CREATE CAST (the tables whose tenant column is of
-- the type); the tables they touched are checked.
CREATE FUNCTION tenant_guard_internal.ddl_guard() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  t record;
  detached tenant_guard.protected;
BEGIN
  IF tenant_guard_internal.in_protect() THEN
    PERFORM tenant_guard_internal.ddl_guard_done();
    RETURN;  -- protect/unprotect's own DDL
  END IF;
  -- A partition detached from a protected table loses the row triggers it
  -- inherited (PostgreSQL drops cloned triggers on DETACH): protect it on
  -- its own, so that it stays protected (and its record loses its parent).
  FOR detached IN
    SELECT c.* FROM tenant_guard.protected c
     WHERE c.parent IS NOT NULL
       AND c.parent::oid IN (SELECT d.objid FROM pg_event_trigger_ddl_commands() d
                              WHERE d.classid = 'pg_class'::regclass)
       AND NOT EXISTS (SELECT 1 FROM pg_inherits i
                        WHERE i.inhrelid = c.relid::oid AND i.inhparent = c.parent::oid)
     ORDER BY c.relid::oid
  LOOP
    PERFORM tenant_guard.protect(detached.relid, detached.tenant_column, detached.mode, detached.force);
    RAISE NOTICE 'tenant_guard: detached partition "%" stays protected',
      (SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = detached.relid::oid);
  END LOOP;
  FOR t IN
    SELECT DISTINCT s.rel, s.command_tag FROM (
      SELECT CASE d.classid
               WHEN 'pg_class'::regclass THEN d.objid
               WHEN 'pg_policy'::regclass THEN (SELECT p.polrelid FROM pg_policy p WHERE p.oid = d.objid)
               WHEN 'pg_trigger'::regclass THEN (SELECT g.tgrelid FROM pg_trigger g WHERE g.oid = d.objid)
             END AS rel, d.command_tag
        FROM pg_event_trigger_ddl_commands() d
      -- ALTER TABLE parent ATTACH PARTITION child reports the parent: the
      -- direct children of a parent that is not protected are checked too
      -- (a protected table must not gain such a parent; under a protected
      -- parent, ALTER TABLE on it checks only the parent).
      UNION ALL
      SELECT i.inhrelid, d.command_tag
        FROM pg_event_trigger_ddl_commands() d
        JOIN pg_inherits i ON i.inhparent = d.objid
       WHERE d.classid = 'pg_class'::regclass AND d.command_tag = 'ALTER TABLE'
         AND NOT EXISTS (SELECT 1 FROM tenant_guard.protected q WHERE q.relid::oid = d.objid)
      -- ALTER TYPE / ALTER DOMAIN (OWNER TO, ADD CONSTRAINT, ...) report the
      -- type, CREATE CAST the cast: the protected tables whose tenant column
      -- is of that type (or of the cast's source or target), or of a domain
      -- built on it, are checked (their drift includes the type rule).
      UNION ALL
      SELECT p.relid::oid, d.command_tag
        FROM pg_event_trigger_ddl_commands() d
        LEFT JOIN pg_cast kc ON d.classid = 'pg_cast'::regclass AND kc.oid = d.objid
        JOIN tenant_guard.protected p ON true
        JOIN pg_attribute a ON a.attrelid = p.relid::oid AND a.attname = p.tenant_column
       WHERE d.classid IN ('pg_type'::regclass, 'pg_cast'::regclass)
         AND (CASE WHEN d.classid = 'pg_type'::regclass THEN ARRAY[d.objid]
                   ELSE ARRAY[kc.castsource, kc.casttarget] END)
             && ARRAY(WITH RECURSIVE b(t, k) AS (
                           SELECT a.atttypid, 0
                           UNION ALL
                           SELECT y.typbasetype, b.k + 1 FROM pg_type y JOIN b ON y.oid = b.t
                            WHERE y.typtype = 'd' AND b.k < 100)
                      SELECT b.t FROM b UNION ALL SELECT y.typarray FROM b JOIN pg_type y ON y.oid = b.t)) s
     WHERE EXISTS (SELECT 1 FROM tenant_guard.protected p WHERE p.relid::oid = s.rel)
     ORDER BY s.rel
  LOOP
    PERFORM tenant_guard_internal.ddl_guard_check(t.rel, t.command_tag);
  END LOOP;
  PERFORM tenant_guard_internal.ddl_guard_done();
END $$;
-- Every command (no tag filter), so that each snapshot taken at
-- ddl_command_start is released here; only tables in tenant_guard.protected
-- are checked.
CREATE EVENT TRIGGER tenant_guard_ddl_guard ON ddl_command_end
  EXECUTE FUNCTION tenant_guard_internal.ddl_guard();

-- What was already missing when a statement started is not its doing: a
-- dump being restored (tenant_guard.protected is data, the policies and
-- triggers come in pg_dump's post-data section), a table repaired step by
-- step. The snapshot (src/ddl_guard.rs) holds the drift of the protected
-- tables a cheap catalog check flags; a table without drift costs one
-- catalog query per DDL statement.
CREATE FUNCTION tenant_guard_internal.ddl_guard_start() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM tenant_guard_internal.ddl_guard_snapshot();
END $$;
CREATE EVENT TRIGGER tenant_guard_ddl_guard_start ON ddl_command_start
  EXECUTE FUNCTION tenant_guard_internal.ddl_guard_start();

-- Drops that do not report through pg_event_trigger_ddl_commands(): DROP
-- POLICY, DROP TRIGGER, and cascades (DROP TYPE/DOMAIN/FUNCTION ... CASCADE
-- taking a column, a default, a policy or a trigger with it). The table is
-- found by the (schema, table) of the dropped object's address; a table
-- dropped itself is gone and DROP TABLE stays allowed.
CREATE FUNCTION tenant_guard_internal.drop_guard() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  t record;
BEGIN
  IF tenant_guard_internal.in_protect() THEN
    RETURN;
  END IF;
  FOR t IN
    SELECT DISTINCT c.oid AS rel
      FROM pg_event_trigger_dropped_objects() d
      JOIN pg_namespace n ON n.nspname = d.address_names[1]
      JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = d.address_names[2]
     WHERE d.object_type IN ('policy', 'trigger', 'table column', 'default value')
       AND cardinality(d.address_names) >= 3
       AND EXISTS (SELECT 1 FROM tenant_guard.protected p WHERE p.relid::oid = c.oid)
     ORDER BY c.oid
  LOOP
    PERFORM tenant_guard_internal.ddl_guard_check(t.rel, tg_tag);
  END LOOP;
END $$;
CREATE EVENT TRIGGER tenant_guard_drop_guard ON sql_drop
  EXECUTE FUNCTION tenant_guard_internal.drop_guard();

-- Forget tables that are dropped.
CREATE FUNCTION tenant_guard_internal.on_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  DELETE FROM tenant_guard.protected p
   USING pg_event_trigger_dropped_objects() d
   WHERE d.classid = 'pg_class'::regclass AND d.objid = p.relid::oid;
END $$;
CREATE EVENT TRIGGER tenant_guard_drop ON sql_drop
  WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
  EXECUTE FUNCTION tenant_guard_internal.on_drop();

-- Administration is for the extension owner and roles it grants. Whoever can
-- sign can become any tenant; whoever can add a key can sign.
REVOKE ALL ON FUNCTION tenant_guard.add_key(text, bytea, text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.retire_key(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.sign(jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.add_jwks(jsonb, text, interval, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.set_issuer(text, text, integer, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.revoke_token(text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.revoke_subject(text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.revoke_tenant(text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.prune_revocations() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.use_registry(regclass, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.protect(regclass, text, text, boolean, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.protect_schema(text, text, text, boolean, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.unprotect(regclass, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.protection_drift(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.add_tenant_fk(regclass, text[], regclass, text[], text, boolean, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.sync_nodes() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.upgrade_foreign_keys(text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.backfill_tenant(regclass, text, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.enforce_not_null(regclass, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.scope_unique(regclass, text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.rollout(text, text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.selftest() FROM PUBLIC;
-- Acting as a tenant without a token: superusers and members of
-- tenant_guard.as_tenant_role only (checked inside as well).
REVOKE ALL ON FUNCTION tenant_guard.as_tenant(text, text[], text, boolean) FROM PUBLIC;

-- Audits: for the extension owner and the roles it grants (they name every
-- tenant table and count rows across tenants).
REVOKE ALL ON tenant_guard.null_tenant_rows, tenant_guard.orphan_tenant_rows,
              tenant_guard.cross_tenant_references, tenant_guard.status, tenant_guard.advisor FROM PUBLIC;

-- tenant_guard_internal: no function in it is for PUBLIC, so one added
-- there later is closed by default. A role granted SELECT on an audit view
-- also needs EXECUTE on the function behind it (a view runs its functions
-- with the caller's rights).
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tenant_guard_internal FROM PUBLIC;
-- Except the two trigger functions, which PostgreSQL only runs as triggers
-- (called directly they raise): a table's owner needs EXECUTE on them
-- because protect() creates its triggers with the owner's rights.
GRANT EXECUTE ON FUNCTION tenant_guard_internal.refuse_truncate() TO PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard_internal.refuse_tenant_change() TO PUBLIC;
-- And config_changed(), which use_registry() puts on the registry table with
-- the table owner's rights; it only invalidates the cached description of the
-- table it fires on (what any DDL on one's own table does).
GRANT EXECUTE ON FUNCTION tenant_guard_internal.config_changed() TO PUBLIC;

COMMENT ON FUNCTION tenant_guard.version() IS 'tenant_guard library version';
COMMENT ON FUNCTION tenant_guard.add_key(text, bytea, text, timestamptz) IS
  'add an HMAC key (HS256/384/512; secret at least 32/48/64 bytes) to the key ring';
COMMENT ON FUNCTION tenant_guard.retire_key(text) IS
  'retire a key: tokens signed with it stop verifying in every session';
COMMENT ON FUNCTION tenant_guard.sign(jsonb, text) IS
  'mint a token over the given claims with a key of the ring (not for PUBLIC)';
COMMENT ON FUNCTION tenant_guard.add_jwks(jsonb, text, interval, text) IS
  'import an identity provider''s public key set (RFC 7517) for an issuer; re-importing rotates';
COMMENT ON FUNCTION tenant_guard.set_issuer(text, text, integer, text, text, text, text) IS
  'set the audience, leeway, claim paths and organisation mapping for tokens of an issuer';
COMMENT ON FUNCTION tenant_guard.revoke_token(text, timestamptz) IS
  'revoke the token with this jti in every session';
COMMENT ON FUNCTION tenant_guard.revoke_subject(text, timestamptz, timestamptz) IS
  'revoke every token of a subject (sub) issued before a time';
COMMENT ON FUNCTION tenant_guard.revoke_tenant(text, timestamptz, timestamptz) IS
  'revoke every token naming a tenant issued before a time';
COMMENT ON FUNCTION tenant_guard.prune_revocations() IS
  'delete revocations whose tokens have all expired; returns how many';
COMMENT ON FUNCTION tenant_guard.use_registry(regclass, text, text) IS
  'make set_context refuse tenants missing from (or inactive in) a table; NULL turns it off';
COMMENT ON FUNCTION tenant_guard.set_context(text, boolean) IS
  'verify a signed token and set the tenant context (transaction-scoped by default); returns the tenant id';
COMMENT ON FUNCTION tenant_guard.clear_context() IS 'drop the tenant context';
COMMENT ON FUNCTION tenant_guard.as_tenant(text, text[], text, boolean) IS
  'for test suites: make a tenant the context without a token (superusers and members of tenant_guard.as_tenant_role only; logged); returns the tenant id';
COMMENT ON FUNCTION tenant_guard.sync_nodes() IS
  'Citus: copy the key ring and registry settings to every worker (one row per worker)';
COMMENT ON FUNCTION tenant_guard_internal.load_node_state(jsonb) IS
  'Citus: on a worker, replace the key ring and registry settings with those sync_nodes sent';
COMMENT ON FUNCTION tenant_guard.tenant_id() IS 'current tenant id, NULL without a context';
COMMENT ON FUNCTION tenant_guard.require_tenant_id() IS
  'current tenant id; error 42501 without a context';
COMMENT ON FUNCTION tenant_guard.user_id() IS 'the sub claim of the current context';
COMMENT ON FUNCTION tenant_guard.claims() IS 'all verified claims of the current context';
COMMENT ON FUNCTION tenant_guard.is_bypass() IS 'whether the current context sees every tenant';
COMMENT ON FUNCTION tenant_guard.protect(regclass, text, text, boolean, boolean) IS
  'enable row-level security with tenant policies, default and triggers on a table (and its partitions); returns the DDL';
COMMENT ON FUNCTION tenant_guard.protect_schema(text, text, text, boolean, boolean) IS
  'protect every table of a schema that has the tenant column; returns the DDL';
COMMENT ON FUNCTION tenant_guard.protection_drift(regclass) IS
  'how a protected table differs from what protect would leave (policies, row-level security, triggers, default); NULL when not protected';
COMMENT ON FUNCTION tenant_guard.unprotect(regclass, boolean) IS
  'remove exactly what protect added; returns the DDL';
COMMENT ON FUNCTION tenant_guard.visible_tenants() IS
  'tenants the current context may read (used by the generated policies)';
COMMENT ON FUNCTION tenant_guard.writable_tenants() IS
  'tenants the current context may write (used by the generated policies)';
COMMENT ON FUNCTION tenant_guard.is_visible(anyelement) IS
  'whether the current context may read this tenant (the read rule, hashed; used by plans in place of the policies'' filters)';
COMMENT ON FUNCTION tenant_guard.is_writable(anyelement) IS
  'whether the current context may write this tenant (the write rule, hashed; used by plans in place of the policies'' filters)';
COMMENT ON FUNCTION tenant_guard.add_tenant_fk(regclass, text[], regclass, text[], text, boolean, boolean) IS
  'add a composite (tenant, key) foreign key, with the parent unique key and child index it needs; returns the DDL';
COMMENT ON FUNCTION tenant_guard.upgrade_foreign_keys(text, text, boolean) IS
  'replace tenant-blind foreign keys between tenant tables of a schema by composite ones; returns the DDL';
COMMENT ON FUNCTION tenant_guard.backfill_tenant(regclass, text, integer, text) IS
  'fill NULL tenant ids from the parent reached through a foreign key, in batches; returns rows updated';
COMMENT ON FUNCTION tenant_guard.enforce_not_null(regclass, text, boolean) IS
  'make the tenant column NOT NULL through a validated CHECK; refuses while NULLs remain; returns the DDL';
COMMENT ON FUNCTION tenant_guard.scope_unique(regclass, text, text, boolean) IS
  'rewrite a tenant-blind unique constraint or index as (tenant, ...), moving dependent foreign keys; returns the DDL';
COMMENT ON FUNCTION tenant_guard.rollout(text, text, text, boolean) IS
  'move every tenant table of a schema to prepare, tighten or enforce; refuses while audits show blockers; returns the DDL';
COMMENT ON FUNCTION tenant_guard.selftest() IS
  'try the main attacks on a scratch fixture as an ordinary role; one row per check; leaves nothing behind';
COMMENT ON FUNCTION tenant_guard_internal.selftest_try(text) IS 'selftest helper: runs a statement, returns its SQLSTATE';
COMMENT ON FUNCTION tenant_guard_internal.selftest_count(text) IS 'selftest helper: runs a count query, NULL when it fails';
COMMENT ON FUNCTION tenant_guard_internal.tenant_tables() IS 'tables with the tenant column (tenant_guard.tenant_column) or protected with their own';
COMMENT ON FUNCTION tenant_guard_internal.audit_null_tenant_rows() IS 'backs the view tenant_guard.null_tenant_rows';
COMMENT ON FUNCTION tenant_guard_internal.audit_orphan_tenant_rows() IS 'backs the view tenant_guard.orphan_tenant_rows';
COMMENT ON FUNCTION tenant_guard_internal.tenant_blind_foreign_keys() IS 'foreign keys between tenant tables that leave the tenant column out';
COMMENT ON FUNCTION tenant_guard_internal.audit_cross_tenant_references() IS 'backs the view tenant_guard.cross_tenant_references';
COMMENT ON FUNCTION tenant_guard_internal.advisor_findings() IS 'backs the view tenant_guard.advisor';
COMMENT ON FUNCTION tenant_guard_internal.tenant_column() IS
  'the tenant column used when none is given: tenant_guard.tenant_column, or the built-in default';
COMMENT ON FUNCTION tenant_guard_internal.policy_names() IS 'names of the policies protect creates';
COMMENT ON FUNCTION tenant_guard_internal.in_protect() IS 'whether protect/unprotect is running DDL in this backend (for the DDL guard)';
COMMENT ON FUNCTION tenant_guard_internal.config_changed() IS 'trigger: drops every backend''s cached key ring when keys, registry settings or the registry table''s ids and active flags change';
COMMENT ON FUNCTION tenant_guard_internal.refuse_truncate() IS 'trigger: refuses TRUNCATE of a protected table under a tenant context';
COMMENT ON FUNCTION tenant_guard_internal.refuse_tenant_change() IS
  'trigger: refuses changing the tenant of a row, except an operator''s repair without tenant context and row-level security';
COMMENT ON FUNCTION tenant_guard_internal.on_ddl() IS 'event trigger: protects new partitions of protected tables and (on_new_table) new tenant tables';
COMMENT ON FUNCTION tenant_guard_internal.ddl_guard_findings(oid) IS
  'what the DDL guard refuses on a table: the drift detector''s findings the running statement added (but extra permissive policies) and an owner bypassing row-level security; NULL when not protected';
COMMENT ON FUNCTION tenant_guard_internal.ddl_guard_check(oid, text) IS
  'DDL guard: raise 42501 (or, with tenant_guard.ddl_guard off, warn) when a statement left a protected table weakened';
COMMENT ON FUNCTION tenant_guard_internal.ddl_guard_snapshot() IS
  'DDL guard: at ddl_command_start, remember what protected tables already lacked (not refused later)';
COMMENT ON FUNCTION tenant_guard_internal.ddl_guard_done() IS 'DDL guard: at ddl_command_end, forget the statement''s snapshot';
COMMENT ON FUNCTION tenant_guard_internal.ddl_guard_start() IS 'event trigger: DDL guard snapshot at ddl_command_start';
COMMENT ON FUNCTION tenant_guard_internal.ddl_guard() IS 'event trigger: refuses ALTER TABLE/POLICY/TRIGGER and CREATE POLICY that weaken a protected table';
COMMENT ON FUNCTION tenant_guard_internal.drop_guard() IS 'event trigger: refuses drops (policy, trigger, column, default; also by cascade) that weaken a protected table';
COMMENT ON FUNCTION tenant_guard_internal.on_drop() IS 'event trigger: forgets dropped tables in tenant_guard.protected';
