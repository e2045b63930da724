\echo Use "ALTER EXTENSION tenant_guard UPDATE TO '0.2.0'" to load this file. \quit
-- tenant_guard 0.1.0 -> 0.2.0 (the security round).
--
-- Hand-written; never edited once 0.2.0 is released. tests/upgrade/run checks
-- that a 0.1.0 install updated with this script has the same catalog as a
-- fresh 0.2.0 install (functions, bodies, views, tables, triggers, event
-- triggers, privileges, comments, dump registrations).
--
-- No table of the extension changes, so the key ring, the registry and the
-- record of protected tables are kept as they are; the policies, defaults
-- and triggers protect() put on user tables are the same in both versions.
-- The changes, in dependency order:
--   0. the private schema tenant_guard_internal, and the 0.1.0 functions
--      users are not meant to call moved into it (ALTER FUNCTION … SET
--      SCHEMA keeps each function's OID, so the triggers on users' tables,
--      the event triggers and the audit views that call them keep working)
--   1. new C functions: protection_drift, tenant_column and policy_names
--      (the library's one definition of the default tenant column and of the
--      policy names, for the SQL below), the audit counts that read user
--      tables as their owner (count_null_tenant_rows, count_orphan_tenant_rows,
--      count_cross_tenant_references); backfill_batch and the committing
--      backfill procedure
--   2. SQL and PL/pgSQL functions rewritten (pinned search_path, qualified
--      operators, counts through the new C functions, selftest independent
--      of the database's settings, on_ddl's hint built from the catalog)
--   3. the status view: new column drift (at the end), policies_current and
--      phase from protection_drift
--   4. privileges and comments
--   5. the DDL guard: ddl_guard_findings, ddl_guard_snapshot, ddl_guard_done
--      (C), ddl_guard_check, the event triggers tenant_guard_ddl_guard_start,
--      tenant_guard_ddl_guard and tenant_guard_drop_guard

-- 0. The private schema -------------------------------------------------

-- As in sql/bootstrap.sql: USAGE for PUBLIC, so that a table's owner can
-- name the trigger functions when protect() creates its triggers (and
-- pg_restore can), EXECUTE on nothing else (finalize.sql, section 4).
CREATE SCHEMA tenant_guard_internal;
GRANT USAGE ON SCHEMA tenant_guard_internal TO PUBLIC;
COMMENT ON SCHEMA tenant_guard_internal IS
  'tenant_guard machinery: trigger functions and helpers behind the views; not an API';

ALTER FUNCTION tenant_guard.config_changed() SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.in_protect() SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.refuse_truncate() SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.refuse_tenant_change() SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.on_ddl() SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.on_drop() SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.selftest_try(text) SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.selftest_count(text) SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.tenant_tables() SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.tenant_blind_foreign_keys() SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.audit_null_tenant_rows() SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.audit_orphan_tenant_rows() SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.audit_cross_tenant_references() SET SCHEMA tenant_guard_internal;
ALTER FUNCTION tenant_guard.advisor_findings() SET SCHEMA tenant_guard_internal;

-- 1. New C functions -----------------------------------------------------

-- Whether the context may read (write) a tenant given in the column's own
-- type: the tenant rule with the set hashed (src/context.rs, tenant_member).
-- The planner puts these in place of a policy's rule where a plan tests it
-- as a filter (src/scan.rs, hash_tenant_filters); the policies are unchanged.
CREATE FUNCTION tenant_guard.is_visible(anyelement) RETURNS boolean
  LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tg_is_visible';
CREATE FUNCTION tenant_guard.is_writable(anyelement) RETURNS boolean
  LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tg_is_writable';
COMMENT ON FUNCTION tenant_guard.is_visible(anyelement) IS
  'whether the current context may read this tenant (the read rule, hashed; used by plans in place of the policies'' filters)';
COMMENT ON FUNCTION tenant_guard.is_writable(anyelement) IS
  'whether the current context may write this tenant (the write rule, hashed; used by plans in place of the policies'' filters)';

CREATE FUNCTION tenant_guard.protection_drift(tbl regclass) RETURNS text[]
  STRICT STABLE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'protection_drift_wrapper';

CREATE FUNCTION tenant_guard_internal.count_null_tenant_rows(tbl regclass, tenant_column text,
                                                    skip_unreadable boolean DEFAULT false) RETURNS bigint
  STRICT STABLE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'count_null_tenant_rows_wrapper';

CREATE FUNCTION tenant_guard_internal.count_orphan_tenant_rows(tbl regclass, tenant_column text)
  RETURNS TABLE (tenant_id text, "rows" bigint)
  STRICT STABLE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'count_orphan_tenant_rows_wrapper';

CREATE FUNCTION tenant_guard_internal.count_cross_tenant_references(constraint_oid oid, child_tenant text DEFAULT NULL,
                                                           parent_tenant text DEFAULT NULL) RETURNS bigint
  STABLE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'count_cross_tenant_references_wrapper';

-- The default tenant column and the policy names, from the library (the
-- one definition of each), for the SQL below (tenant_tables, the advisor,
-- the status view, the DDL guard).
CREATE FUNCTION tenant_guard_internal.tenant_column() RETURNS text
  STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'default_tenant_column_wrapper';
CREATE FUNCTION tenant_guard_internal.policy_names() RETURNS text[]
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'policy_names_wrapper';

-- One batch of a backfill (from a block on, as the child's owner), for the
-- committing procedure tenant_guard.backfill below or a client's loop.
CREATE FUNCTION tenant_guard.backfill_batch(child regclass, via_constraint text, from_block bigint DEFAULT 0,
                                            batch_size integer DEFAULT 10000, tenant_column text DEFAULT NULL)
  RETURNS TABLE (rows_updated bigint, next_block bigint, blocks bigint, null_rows bigint,
                 null_rows_left bigint, fillable_rows_left bigint)
  VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'backfill_batch_wrapper';

-- The committing backfill (new; as in sql/backfill.sql): COMMITs after every
-- batch, so it has no SET clause; everything in it is qualified instead.
CREATE PROCEDURE tenant_guard.backfill(
    child regclass,
    via_constraint text,
    batch_size integer DEFAULT 10000,
    tenant_column text DEFAULT NULL,
    max_retries integer DEFAULT 10)
LANGUAGE plpgsql
AS $body$
DECLARE
    r pg_catalog.record;  -- qualified: a type named "record" on the search_path must not be used
    pos pg_catalog.int8;
    done pg_catalog.int8 := 0;
    walk_filled pg_catalog.int8;
    at_start pg_catalog.int8;
    batches pg_catalog.int4 := 0;
    walks pg_catalog.int4 := 0;
    tries pg_catalog.int4;
    t0 pg_catalog.float8 := pg_catalog.date_part('epoch'::pg_catalog.text, pg_catalog.clock_timestamp());
    secs pg_catalog.float8;
BEGIN
    -- Inside a transaction block (or a function) a procedure cannot commit:
    -- fail here (2D000 "invalid transaction termination"), before any work.
    COMMIT;
    LOOP
        walks := walks OPERATOR(pg_catalog.+) 1;
        walk_filled := 0;
        pos := 0;
        LOOP
            tries := 0;
            LOOP
                BEGIN
                    SELECT * INTO STRICT r
                      FROM tenant_guard.backfill_batch(child, via_constraint, pos, batch_size, tenant_column);
                    EXIT;
                EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
                    tries := tries OPERATOR(pg_catalog.+) 1;
                    IF tries OPERATOR(pg_catalog.>) max_retries THEN
                        RAISE;
                    END IF;
                    RAISE NOTICE 'backfill: batch failed with %, retry % of %', SQLSTATE, tries, max_retries;
                    PERFORM pg_catalog.pg_sleep(0.1::pg_catalog.float8 OPERATOR(pg_catalog.*) tries::pg_catalog.float8);
                END;
            END LOOP;
            COMMIT;
            IF at_start IS NULL THEN
                at_start := r.null_rows;
            END IF;
            IF r.rows_updated OPERATOR(pg_catalog.>) 0 THEN
                batches := batches OPERATOR(pg_catalog.+) 1;
                done := done OPERATOR(pg_catalog.+) r.rows_updated;
                walk_filled := walk_filled OPERATOR(pg_catalog.+) r.rows_updated;
                secs := pg_catalog.date_part('epoch'::pg_catalog.text, pg_catalog.clock_timestamp()) OPERATOR(pg_catalog.-) t0;
                RAISE NOTICE 'backfill: batch %: % rows, % done, about % left', batches, r.rows_updated, done,
                    GREATEST(at_start OPERATOR(pg_catalog.-) done, 0::pg_catalog.int8)
                  USING DETAIL = pg_catalog.format(
                    'Rows left: rows with no tenant when the backfill started minus rows filled since. %s rows/s; block %s of %s; %s s.',
                    (done::pg_catalog.float8 OPERATOR(pg_catalog./) GREATEST(secs, 0.001::pg_catalog.float8))::pg_catalog.int8,
                    COALESCE(r.next_block, r.blocks), r.blocks,
                    pg_catalog.round(secs::pg_catalog.numeric, 1));
            END IF;
            EXIT WHEN r.next_block IS NULL;
            pos := r.next_block;
        END LOOP;
        -- Rows that were locked by other transactions, or added behind the
        -- walk: walk again while that fills something.
        EXIT WHEN r.fillable_rows_left OPERATOR(pg_catalog.=) 0 OR walk_filled OPERATOR(pg_catalog.=) 0
               OR walks OPERATOR(pg_catalog.>=) 10;
        RAISE NOTICE 'backfill: % row(s) were locked or added during the walk: walking the table again', r.fillable_rows_left;
    END LOOP;
    secs := pg_catalog.date_part('epoch'::pg_catalog.text, pg_catalog.clock_timestamp()) OPERATOR(pg_catalog.-) t0;
    RAISE NOTICE 'backfill: % rows filled in % batches', done, batches
      USING DETAIL = pg_catalog.format('%s s, %s rows/s, %s walk(s) of the table.',
                         pg_catalog.round(secs::pg_catalog.numeric, 1),
                         (done::pg_catalog.float8 OPERATOR(pg_catalog./) GREATEST(secs, 0.001::pg_catalog.float8))::pg_catalog.int8,
                         walks);
    IF r.null_rows_left OPERATOR(pg_catalog.>) r.fillable_rows_left THEN
        RAISE NOTICE 'backfill: % row(s) of % still have no tenant: their parent through "%" has none, or they have no parent',
            r.null_rows_left OPERATOR(pg_catalog.-) r.fillable_rows_left, child, via_constraint;
    END IF;
    IF r.fillable_rows_left OPERATOR(pg_catalog.>) 0 THEN
        RAISE NOTICE 'backfill: % row(s) could still be filled (locked by other transactions, or added during the backfill): CALL it again',
            r.fillable_rows_left;
    END IF;
END
$body$;

-- The tenant-keeping row trigger, now C (one column comparison per row,
-- no JSON), and it lets an operator (no tenant context, not restricted by
-- row-level security) repair a row's tenant. Same name and signature, so
-- the triggers protect() created keep working.
CREATE OR REPLACE FUNCTION tenant_guard_internal.refuse_tenant_change() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'tg_refuse_tenant_change';

-- 2. Rewritten SQL and PL/pgSQL functions (same signatures and results) ---

-- Still inlinable (no SET clause): every relation, function, cast and
-- operator qualified instead.
CREATE OR REPLACE FUNCTION tenant_guard_internal.tenant_tables()
RETURNS TABLE (table_name regclass, tenant_column name)
LANGUAGE sql STABLE AS $$
  SELECT c.oid::pg_catalog.regclass, a.attname
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
                       AND a.attname OPERATOR(pg_catalog.=)
                           tenant_guard_internal.tenant_column()::pg_catalog.name
                       AND a.attnum OPERATOR(pg_catalog.>) 0::pg_catalog.int2 AND NOT a.attisdropped
   WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog."char"[]) AND NOT c.relispartition
     AND NOT (n.nspname OPERATOR(pg_catalog.=) ANY ('{pg_catalog,information_schema,tenant_guard,pg_toast}'::pg_catalog.name[]))
     AND NOT pg_catalog.starts_with(n.nspname::pg_catalog.text, 'pg_temp_'::pg_catalog.text)
     AND NOT pg_catalog.starts_with(n.nspname::pg_catalog.text, 'pg_toast_temp_'::pg_catalog.text)
  UNION
  SELECT p.relid, p.tenant_column FROM tenant_guard.protected p
   WHERE p.parent IS NULL
$$;

CREATE OR REPLACE FUNCTION tenant_guard_internal.tenant_blind_foreign_keys()
RETURNS TABLE (constraint_oid oid, child_table regclass, constraint_name name, parent_table regclass,
               child_tenant name, parent_tenant name, child_columns name[], parent_columns name[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT k.oid, k.conrelid::pg_catalog.regclass, k.conname, k.confrelid::pg_catalog.regclass,
         ct.tenant_column, pt.tenant_column, cols.child_columns, cols.parent_columns
    FROM pg_catalog.pg_constraint k
    JOIN tenant_guard_internal.tenant_tables() ct ON ct.table_name::pg_catalog.oid OPERATOR(pg_catalog.=) k.conrelid
    JOIN tenant_guard_internal.tenant_tables() pt ON pt.table_name::pg_catalog.oid OPERATOR(pg_catalog.=) k.confrelid
    -- Both column lists in key order, in one walk of (conkey, confkey): the
    -- SQL side's one "column names of a key" look-up (src/catalog.rs has the
    -- Rust side's, column_names!).
    CROSS JOIN LATERAL (
      SELECT pg_catalog.array_agg(ca.attname ORDER BY u.o), pg_catalog.array_agg(pa.attname ORDER BY u.o)
        FROM ROWS FROM (pg_catalog.unnest(k.conkey), pg_catalog.unnest(k.confkey)) WITH ORDINALITY u(c, p, o)
        JOIN pg_catalog.pg_attribute ca ON ca.attrelid OPERATOR(pg_catalog.=) k.conrelid
                                       AND ca.attnum OPERATOR(pg_catalog.=) u.c
        JOIN pg_catalog.pg_attribute pa ON pa.attrelid OPERATOR(pg_catalog.=) k.confrelid
                                       AND pa.attnum OPERATOR(pg_catalog.=) u.p
    ) cols(child_columns, parent_columns)
   WHERE k.contype OPERATOR(pg_catalog.=) 'f'::pg_catalog."char"
     AND k.conparentid OPERATOR(pg_catalog.=) 0::pg_catalog.oid
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(k.conkey) u(n)
                       JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid
                                                     AND a.attnum OPERATOR(pg_catalog.=) u.n
                      WHERE a.attname OPERATOR(pg_catalog.=) ct.tenant_column)
$$;

-- The audit counts: the caller must read every row; counted as the owner.
CREATE OR REPLACE FUNCTION tenant_guard_internal.audit_null_tenant_rows()
RETURNS TABLE (table_name regclass, tenant_column name, null_rows bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE t record; n bigint;
BEGIN
  -- NOT NULL columns are skipped without a scan; the others are counted
  -- with the same query one would write by hand (an index on the tenant
  -- column serves IS NULL), as the table's owner.
  FOR t IN SELECT tt.table_name, tt.tenant_column
             FROM tenant_guard_internal.tenant_tables() tt
             JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) tt.table_name::pg_catalog.oid
                                          AND a.attname OPERATOR(pg_catalog.=) tt.tenant_column
            WHERE NOT a.attnotnull
            ORDER BY tt.table_name::pg_catalog.text LOOP
    -- A table the caller may not read in full: WARNING, NULL, skipped.
    n := tenant_guard_internal.count_null_tenant_rows(t.table_name, t.tenant_column::pg_catalog.text, true);
    IF n OPERATOR(pg_catalog.>) 0 THEN
      table_name := t.table_name; tenant_column := t.tenant_column; null_rows := n;
      RETURN NEXT;
    END IF;
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION tenant_guard_internal.audit_orphan_tenant_rows()
RETURNS TABLE (table_name regclass, tenant_column name, tenant_id text, "rows" bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE t record;
BEGIN
  -- Orphans need a registry to be orphans of: without one the counts
  -- return nothing. The registry's ids are read as its owner, each table's
  -- tenant values grouped as that table's owner (see src/audit.rs).
  FOR t IN SELECT * FROM tenant_guard_internal.tenant_tables() tt ORDER BY tt.table_name::pg_catalog.text LOOP
    BEGIN
      RETURN QUERY SELECT t.table_name, t.tenant_column, o.tenant_id, o."rows"
                     FROM tenant_guard_internal.count_orphan_tenant_rows(t.table_name, t.tenant_column::pg_catalog.text) o;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE WARNING '%', SQLERRM USING DETAIL = 'orphan_tenant_rows skipped this table.';
    END;
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION tenant_guard_internal.audit_cross_tenant_references()
RETURNS TABLE (child_table regclass, constraint_name name, parent_table regclass, mismatched_rows bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE f record; n bigint;
BEGIN
  -- Counted as a table owner with the key's own equality operators, the
  -- tenants compared as text (see src/audit.rs). NULL: neither owner could
  -- count without running another role's code (a WARNING says so).
  FOR f IN SELECT * FROM tenant_guard_internal.tenant_blind_foreign_keys() b
            ORDER BY b.child_table::pg_catalog.text, b.constraint_name LOOP
    BEGIN
      n := tenant_guard_internal.count_cross_tenant_references(f.constraint_oid, f.child_tenant::pg_catalog.text,
                                                      f.parent_tenant::pg_catalog.text);
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE WARNING '%', SQLERRM USING DETAIL = 'cross_tenant_references skipped this foreign key.';
      CONTINUE;
    END;
    IF n IS NULL OR n OPERATOR(pg_catalog.>) 0 THEN
      child_table := f.child_table; constraint_name := f.constraint_name;
      parent_table := f.parent_table; mismatched_rows := n;
      RETURN NEXT;
    END IF;
  END LOOP;
END $$;

-- New finding protection_drift; names from nspname/relname.
CREATE OR REPLACE FUNCTION tenant_guard_internal.advisor_findings()
RETURNS TABLE (severity text, code text, object text, detail text, remedy text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE col name := tenant_guard_internal.tenant_column();
BEGIN
  -- Tenant tables never protected.
  RETURN QUERY
  SELECT 'high', 'unprotected_tenant_table', format('%I.%I', n.nspname, c.relname),
         format('%I.%I has the tenant column %I but no tenant_guard protection', n.nspname, c.relname, t.tenant_column),
         format('SELECT * FROM tenant_guard.protect(%L, tenant_column => %L);',
                format('%I.%I', n.nspname, c.relname), t.tenant_column)
    FROM tenant_guard_internal.tenant_tables() t
    JOIN pg_class c ON c.oid = t.table_name JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE NOT EXISTS (SELECT 1 FROM tenant_guard.protected p WHERE p.relid = t.table_name)
   ORDER BY 3;

  -- A protected table that no longer looks like what protect renders for
  -- its recorded options: a policy dropped or altered (expression, roles,
  -- command, permissiveness), row-level security disabled or not forced,
  -- a trigger dropped or disabled, the default dropped, or a permissive
  -- policy of its own. Re-running protect repairs all but the last.
  RETURN QUERY
  SELECT 'high', 'protection_drift', x.qn,
         format('%s differs from what tenant_guard.protect renders: %s', x.qn, array_to_string(x.drift, '; ')),
         format('SELECT * FROM tenant_guard.protect(%L, tenant_column => %L, mode => %L, force => %s);',
                x.qn, x.tenant_column, x.mode, CASE WHEN x.force THEN 'true' ELSE 'false' END)
         || coalesce('  -- then review (protect keeps them): '
                     || (SELECT string_agg(format('DROP POLICY %I ON %s;', substr(e, 25), x.qn), ' ' ORDER BY e)
                           FROM unnest(x.drift) e WHERE starts_with(e, 'extra permissive policy ')), '')
    FROM (SELECT format('%I.%I', n.nspname, c.relname) AS qn, p.tenant_column, p.mode, p.force,
                 tenant_guard.protection_drift(p.relid) AS drift
            FROM tenant_guard.protected p
            JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
          OFFSET 0) x
   WHERE cardinality(x.drift) > 0
   ORDER BY 3;

  -- Row-level security switched off, or not forced, on a tenant table.
  RETURN QUERY
  SELECT 'high', 'rls_disabled', format('%I.%I', n.nspname, c.relname),
         format('row-level security is off on %I.%I: every role with SELECT sees every tenant', n.nspname, c.relname),
         format('SELECT * FROM tenant_guard.protect(%L, tenant_column => %L);',
                format('%I.%I', n.nspname, c.relname), t.tenant_column)
    FROM tenant_guard_internal.tenant_tables() t
    JOIN pg_class c ON c.oid = t.table_name JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE NOT c.relrowsecurity
     AND EXISTS (SELECT 1 FROM tenant_guard.protected p WHERE p.relid = t.table_name)
   ORDER BY 3;
  RETURN QUERY
  SELECT 'medium', 'rls_not_forced', format('%I.%I', n.nspname, c.relname),
         format('row-level security on %I.%I is not forced: its owner %I bypasses every policy',
                n.nspname, c.relname, pg_get_userbyid(c.relowner)),
         format('ALTER TABLE %I.%I FORCE ROW LEVEL SECURITY;', n.nspname, c.relname)
    FROM tenant_guard_internal.tenant_tables() t
    JOIN pg_class c ON c.oid = t.table_name JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relrowsecurity AND NOT c.relforcerowsecurity
   ORDER BY 3;

  -- Row-level security on, but no restrictive policy: permissive policies
  -- OR together, so any USING (true) opens the table.
  RETURN QUERY
  SELECT 'high', 'no_restrictive_policy', format('%I.%I', n.nspname, c.relname),
         format('%I.%I has row-level security but no restrictive policy holding the tenant rule', n.nspname, c.relname),
         format('SELECT * FROM tenant_guard.protect(%L, tenant_column => %L);',
                format('%I.%I', n.nspname, c.relname), t.tenant_column)
    FROM tenant_guard_internal.tenant_tables() t
    JOIN pg_class c ON c.oid = t.table_name JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relrowsecurity
     AND NOT EXISTS (SELECT 1 FROM pg_policy pol WHERE pol.polrelid = t.table_name AND NOT pol.polpermissive)
     -- With Citus, protect's tenant rules are permissive policies (Citus
     -- re-creates shard policies without AS RESTRICTIVE); protection_drift
     -- judges those tables, and reports any other permissive policy.
     AND NOT (EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'citus')
              AND EXISTS (SELECT 1 FROM tenant_guard.protected p WHERE p.relid = t.table_name))
   ORDER BY 3;

  -- Policies that trust a setting any session can change (a fixed pattern,
  -- not built from any name).
  RETURN QUERY
  SELECT 'high', 'policy_trusts_setting', format('%s on %I.%I', pol.polname, n.nspname, c.relname),
         format('policy %I trusts a setting any session can SET: %s', pol.polname,
                coalesce(pg_get_expr(pol.polqual, pol.polrelid), pg_get_expr(pol.polwithcheck, pol.polrelid))),
         format('DROP POLICY %I ON %I.%I;  -- after tenant_guard.protect(%L)', pol.polname, n.nspname, c.relname,
                format('%I.%I', n.nspname, c.relname))
    FROM pg_policy pol
    JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE concat(pg_get_expr(pol.polqual, pol.polrelid), ' ', pg_get_expr(pol.polwithcheck, pol.polrelid))
         ~ 'current_setting\(''(?!tenant_guard\.)'
   ORDER BY 3;

  -- Nullable tenant columns.
  RETURN QUERY
  SELECT 'medium', 'nullable_tenant_column', format('%I.%I.%I', n.nspname, c.relname, t.tenant_column),
         format('%I.%I.%I allows NULL: rows without a tenant', n.nspname, c.relname, t.tenant_column),
         format('SELECT * FROM tenant_guard.enforce_not_null(%L, tenant_column => %L);',
                format('%I.%I', n.nspname, c.relname), t.tenant_column)
    FROM tenant_guard_internal.tenant_tables() t
    JOIN pg_class c ON c.oid = t.table_name JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = t.table_name AND a.attname = t.tenant_column
   WHERE NOT a.attnotnull
   ORDER BY 3;

  -- Tables protected permissive (rollout's prepare phase) with rows without
  -- a tenant: every tenant can read them and none can change them (a
  -- tenant's UPDATE or DELETE matches 0 rows, silently). Counted by
  -- count_null_tenant_rows (as the owner, after checking the caller could
  -- read every row; a table it cannot is skipped with a WARNING).
  RETURN QUERY
  SELECT 'medium', 'shared_null_tenant_rows', x.qn,
         format('%s row(s) of %s have no tenant: in permissive mode every tenant can read them and none can change them',
                x.n, x.qn),
         NULL::text
    FROM (SELECT format('%I.%I', n.nspname, c.relname) AS qn,
                 tenant_guard_internal.count_null_tenant_rows(p.relid, p.tenant_column::text, true) AS n
            FROM tenant_guard.protected p
            JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = p.relid AND a.attname = p.tenant_column
           WHERE p.mode = 'permissive' AND p.parent IS NULL AND NOT a.attnotnull
             AND has_function_privilege('tenant_guard_internal.count_null_tenant_rows(regclass, text, boolean)', 'EXECUTE')
          OFFSET 0) x
   WHERE x.n > 0
   ORDER BY 3;

  -- Unique constraints and indexes (other than the primary key) that leave
  -- the tenant out: a duplicate error tells a tenant another tenant's value.
  RETURN QUERY
  SELECT 'medium', 'tenant_blind_unique', format('%s on %I.%I', ic.relname, n.nspname, c.relname),
         format('unique %s on %I.%I does not include %I: a duplicate reveals another tenant''s value',
                CASE WHEN k.oid IS NULL THEN 'index' ELSE 'constraint' END, n.nspname, c.relname, t.tenant_column),
         format('SELECT * FROM tenant_guard.scope_unique(%L, %L, tenant_column => %L);',
                format('%I.%I', n.nspname, c.relname), coalesce(k.conname, ic.relname), t.tenant_column)
    FROM tenant_guard_internal.tenant_tables() t
    JOIN pg_class c ON c.oid = t.table_name JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_index i ON i.indrelid = t.table_name AND i.indisunique AND NOT i.indisprimary
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_attribute a ON a.attrelid = t.table_name AND a.attname = t.tenant_column
    LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.contype = 'u'
   WHERE NOT (a.attnum = ANY (i.indkey))
   ORDER BY 3;

  -- Foreign keys between tenant tables without the tenant column.
  RETURN QUERY
  SELECT 'high', 'tenant_blind_fk', format('%s on %I.%I', b.constraint_name, cn.nspname, cc.relname),
         format('%I.%I references %I.%I without the tenant column: a row can point at another tenant''s row',
                cn.nspname, cc.relname, pn.nspname, pc.relname),
         format('SELECT * FROM tenant_guard.add_tenant_fk(%L, %L, %L, %L, tenant_column => %L);',
                format('%I.%I', cn.nspname, cc.relname), b.child_columns::text,
                format('%I.%I', pn.nspname, pc.relname), b.parent_columns::text, b.child_tenant)
    FROM tenant_guard_internal.tenant_blind_foreign_keys() b
    JOIN pg_class cc ON cc.oid = b.child_table JOIN pg_namespace cn ON cn.oid = cc.relnamespace
    JOIN pg_class pc ON pc.oid = b.parent_table JOIN pg_namespace pn ON pn.oid = pc.relnamespace
   ORDER BY 3;

  -- No index led by the tenant column: every tenant query scans.
  RETURN QUERY
  SELECT 'low', 'no_tenant_index', format('%I.%I', n.nspname, c.relname),
         format('no index on %I.%I starts with %I', n.nspname, c.relname, t.tenant_column),
         format('CREATE INDEX ON %I.%I (%I);', n.nspname, c.relname, t.tenant_column)
    FROM tenant_guard_internal.tenant_tables() t
    JOIN pg_class c ON c.oid = t.table_name JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = t.table_name AND a.attname = t.tenant_column
   WHERE NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.table_name AND i.indkey[0] = a.attnum)
   ORDER BY 3;

  -- Views over protected tables that run as their owner.
  RETURN QUERY
  SELECT DISTINCT 'high', 'view_without_security_invoker', format('%I.%I', vn.nspname, v.relname),
         format('view %I.%I reads %I.%I with its owner''s rights, so row-level security is checked against the owner',
                vn.nspname, v.relname, tn.nspname, tc.relname),
         format('ALTER VIEW %I.%I SET (security_invoker = true);', vn.nspname, v.relname)
    FROM pg_class v
    JOIN pg_namespace vn ON vn.oid = v.relnamespace
    JOIN pg_rewrite r ON r.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
    JOIN tenant_guard.protected p ON p.relid = d.refobjid
    JOIN pg_class tc ON tc.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
   WHERE v.relkind = 'v' AND v.oid <> d.refobjid
     AND NOT coalesce(v.reloptions @> ARRAY['security_invoker=true']
                      OR v.reloptions @> ARRAY['security_invoker=on'], false)
   ORDER BY 3;

  -- Materialized views over protected tables (they have no row-level security).
  RETURN QUERY
  SELECT DISTINCT 'high', 'materialized_view_exposes_tenants', format('%I.%I', vn.nspname, v.relname),
         format('materialized view %I.%I holds rows of %I.%I without row-level security',
                vn.nspname, v.relname, tn.nspname, tc.relname),
         format('REVOKE ALL ON %I.%I FROM PUBLIC;', vn.nspname, v.relname)
    FROM pg_class v
    JOIN pg_namespace vn ON vn.oid = v.relnamespace
    JOIN pg_rewrite r ON r.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
    JOIN tenant_guard.protected p ON p.relid = d.refobjid
    JOIN pg_class tc ON tc.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
   WHERE v.relkind = 'm'
   ORDER BY 3;

  -- Foreign tables with the tenant column (no row-level security there either).
  RETURN QUERY
  SELECT 'medium', 'foreign_table_with_tenant_column', format('%I.%I', n.nspname, c.relname),
         format('foreign table %I.%I has the tenant column %I but cannot have row-level security',
                n.nspname, c.relname, col),
         NULL::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = col AND NOT a.attisdropped
   WHERE c.relkind = 'f'
   ORDER BY 3;

  -- SECURITY DEFINER functions that name a protected table: they read it
  -- with their owner's rights. The body is split into words with a fixed
  -- pattern and the table's name compared as a string (a name is never
  -- made into a regular expression); a name that is not a plain word
  -- (quoted, e.g. "evil(") is looked for as a substring. SQL-standard
  -- bodies (BEGIN ATOMIC) record the dependency in pg_depend.
  RETURN QUERY
  SELECT DISTINCT 'high', 'security_definer_reads_tenant_table', fx.fname,
         format('SECURITY DEFINER function %s mentions %I.%I and runs as %I', fx.fname, tn.nspname, tc.relname,
                pg_get_userbyid(fx.proowner)),
         format('ALTER FUNCTION %s SECURITY INVOKER;', fx.fname)
    FROM (SELECT f.oid, f.proowner, lower(f.prosrc) AS src,
                 format('%I.%I(%s)', n.nspname, f.proname,
                        array_to_string(ARRAY(SELECT format_type(u.t, NULL) FROM unnest(f.proargtypes::oid[]) WITH ORDINALITY u(t, o)
                                               ORDER BY u.o), ',')) AS fname
            FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace
           WHERE f.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_guard', 'tenant_guard_internal')) fx
    JOIN tenant_guard.protected p ON true
    JOIN pg_class tc ON tc.oid = p.relid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
   WHERE EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = fx.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid = p.relid)
      OR (lower(tc.relname) ~ '^[a-z_][a-z0-9_$]*$'
          AND lower(tc.relname) IN (SELECT w FROM regexp_split_to_table(fx.src, '[^a-z0-9_$]+') w))
      OR (lower(tc.relname) !~ '^[a-z_][a-z0-9_$]*$' AND strpos(fx.src, lower(tc.relname)) > 0)
   ORDER BY 3;

  -- User LEAKPROOF functions run before row-level security filters.
  RETURN QUERY
  SELECT 'medium', 'user_leakproof_function', fx.fname,
         format('%s is LEAKPROOF: it runs on rows before the tenant filter', fx.fname),
         format('ALTER FUNCTION %s NOT LEAKPROOF;', fx.fname)
    FROM (SELECT format('%I.%I(%s)', n.nspname, f.proname,
                        array_to_string(ARRAY(SELECT format_type(u.t, NULL) FROM unnest(f.proargtypes::oid[]) WITH ORDINALITY u(t, o)
                                               ORDER BY u.o), ',')) AS fname
            FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace
           WHERE f.proleakproof AND n.nspname NOT IN ('pg_catalog', 'information_schema')) fx
   ORDER BY 3;

  -- Login roles that bypass row-level security.
  RETURN QUERY
  SELECT CASE WHEN r.rolsuper THEN 'warning' ELSE 'high' END,
         'login_role_bypasses_rls', r.rolname::text,
         format('login role %I %s: if the application connects as it, no tenant isolation applies',
                r.rolname, CASE WHEN r.rolsuper THEN 'is a superuser' ELSE 'has BYPASSRLS' END),
         CASE WHEN r.rolsuper THEN NULL ELSE format('ALTER ROLE %I NOBYPASSRLS;', r.rolname) END
    FROM pg_roles r
   WHERE r.rolcanlogin AND (r.rolsuper OR r.rolbypassrls)
   ORDER BY 3;
  RETURN QUERY
  SELECT 'high', 'login_role_bypasses_rls', r.rolname::text,
         format('login role %I can SET ROLE to %I, which %s', r.rolname, b.rolname,
                CASE WHEN b.rolsuper THEN 'is a superuser' ELSE 'has BYPASSRLS' END),
         format('REVOKE %I FROM %I;', b.rolname, r.rolname)
    FROM pg_roles r
    JOIN pg_roles b ON b.oid <> r.oid AND (b.rolsuper OR b.rolbypassrls) AND NOT b.rolcanlogin
   WHERE r.rolcanlogin AND NOT (r.rolsuper OR r.rolbypassrls)
     AND pg_has_role(r.oid, b.oid, 'MEMBER')
   ORDER BY 3;

  -- Protected tables owned by an ordinary login role (an application role
  -- that owns a table can switch its row-level security off).
  RETURN QUERY
  -- Partitions too: ALTER TABLE … OWNER TO on a partitioned table leaves
  -- its partitions' owner unchanged. A login role that is a member of the
  -- owner role can act as the owner just the same.
  SELECT 'high', 'login_role_owns_tenant_table', format('%I.%I', n.nspname, c.relname),
         format('%s%I.%I is owned by %I, which login role %I can act as: it can disable its row-level security',
                CASE WHEN p.parent IS NULL THEN '' ELSE 'partition ' END,
                n.nspname, c.relname, r.rolname, l.rolname),
         format('ALTER TABLE %I.%I OWNER TO <a NOLOGIN owner role>;%s', n.nspname, c.relname,
                CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'p' THEN '  -- and each of its partitions' ELSE '' END)
    FROM tenant_guard.protected p
    JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::oid
    JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    JOIN pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner
    CROSS JOIN LATERAL (
      SELECT min(x.rolname::pg_catalog.text) AS rolname FROM pg_roles x
       WHERE x.rolcanlogin AND NOT x.rolsuper
         AND pg_has_role(x.oid, c.relowner, 'USAGE')) l
   WHERE NOT r.rolsuper AND l.rolname IS NOT NULL
   ORDER BY 3;

  -- Columns of protected tables whose type, or a type it is built on (a
  -- domain's base type, an array's element type, a range's subtype, a
  -- multirange's range, a composite type's attributes), belongs to a role
  -- other than the table's owner and is not a superuser's, or runs a
  -- function of such a role (its casts, a domain's checks, a range's
  -- functions): that role's code runs for every role that writes the
  -- column, and for the tenant column also in the policies, for every
  -- reader; an enum's owner can rename its values and so move a tenant's
  -- rows. protect refuses such a tenant column; a table protected before
  -- that, or another column, shows here.
  RETURN QUERY
  WITH RECURSIVE cols AS (
    SELECT c.oid AS rel, c.relowner AS owner, a.attname AS att, p.tenant_column::pg_catalog.name AS tcol,
           a.atttypid AS ty, 0 AS depth
      FROM tenant_guard.protected p
      JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::oid
      JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
     WHERE a.attnum OPERATOR(pg_catalog.>) 0::pg_catalog.int2 AND NOT a.attisdropped
    UNION ALL
    SELECT x.rel, x.owner, x.att, x.tcol, u.ty, x.depth OPERATOR(pg_catalog.+) 1
      FROM cols x JOIN pg_type t ON t.oid OPERATOR(pg_catalog.=) x.ty
      CROSS JOIN LATERAL (
        SELECT t.typbasetype WHERE t.typtype OPERATOR(pg_catalog.=) 'd'
        UNION ALL SELECT t.typelem WHERE t.typcategory OPERATOR(pg_catalog.=) 'A'
                                     AND t.typelem OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
        UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid OPERATOR(pg_catalog.=) t.oid
        UNION ALL SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid OPERATOR(pg_catalog.=) t.oid
        UNION ALL SELECT b.atttypid FROM pg_attribute b
                   WHERE t.typtype OPERATOR(pg_catalog.=) 'c' AND b.attrelid OPERATOR(pg_catalog.=) t.typrelid
                     AND b.attnum OPERATOR(pg_catalog.>) 0::pg_catalog.int2 AND NOT b.attisdropped
        -- the types a domain check names (a cast to another domain runs its checks)
        UNION ALL SELECT d.refobjid FROM pg_constraint n
                   JOIN pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass
                    AND d.objid OPERATOR(pg_catalog.=) n.oid
                    AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
                  WHERE n.contypid OPERATOR(pg_catalog.=) t.oid AND d.refobjid OPERATOR(pg_catalog.<>) t.oid) u(ty)
     WHERE x.ty OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid AND x.depth OPERATOR(pg_catalog.<) 16
  ),
  -- The functions a type's code calls: its casts to and from text (and of
  -- its array type to and from text[], the casts tenant_guard's SQL uses;
  -- whoever owns the other type of a cast may create one), its range's.
  code(ty, fn, what) AS (
    SELECT t.oid, k.castfunc, 'cast'
      FROM pg_type t JOIN pg_cast k ON k.castfunc OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
       AND ((k.castsource OPERATOR(pg_catalog.=) t.oid AND k.casttarget OPERATOR(pg_catalog.=) 'pg_catalog.text'::pg_catalog.regtype)
            OR (k.casttarget OPERATOR(pg_catalog.=) t.oid AND k.castsource OPERATOR(pg_catalog.=) 'pg_catalog.text'::pg_catalog.regtype)
            OR (k.castsource OPERATOR(pg_catalog.=) t.typarray AND k.casttarget OPERATOR(pg_catalog.=) 'pg_catalog.text[]'::pg_catalog.regtype)
            OR (k.casttarget OPERATOR(pg_catalog.=) t.typarray AND k.castsource OPERATOR(pg_catalog.=) 'pg_catalog.text[]'::pg_catalog.regtype))
     WHERE t.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid

    UNION ALL
    SELECT r.rngtypid, r.rngcanonical::pg_catalog.oid, 'range' FROM pg_range r
    UNION ALL
    SELECT r.rngtypid, r.rngsubdiff::pg_catalog.oid, 'range' FROM pg_range r
  ),
  found AS (
    -- the type's owner
    SELECT x.rel, x.owner, x.att, x.tcol, t.oid AS ty,
           format('is of type %s, which belongs to %I, not to the table''s owner', pg_catalog.format_type(t.oid, NULL), o.rolname) AS why,
           format('ALTER %s %s OWNER TO %I;', CASE WHEN t.typtype OPERATOR(pg_catalog.=) 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                  pg_catalog.format_type(t.oid, NULL), r.rolname) AS remedy
      FROM cols x JOIN pg_type t ON t.oid OPERATOR(pg_catalog.=) x.ty
      JOIN pg_roles o ON o.oid OPERATOR(pg_catalog.=) t.typowner
      JOIN pg_roles r ON r.oid OPERATOR(pg_catalog.=) x.owner
     WHERE x.ty OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
       AND t.typowner OPERATOR(pg_catalog.<>) x.owner AND NOT o.rolsuper
    UNION ALL
    -- a user-defined function its casts or range call (whoever owns it,
    -- its body or the search_path it resolves names through may reach
    -- another role's code)
    SELECT x.rel, x.owner, x.att, x.tcol, x.ty,
           format('is of type %s, whose %s calls %I.%I (of %I), not a built-in function', pg_catalog.format_type(x.ty, NULL),
                  k.what, s.nspname, f.proname, o.rolname),
           NULL::pg_catalog.text
      FROM cols x JOIN code k ON k.ty OPERATOR(pg_catalog.=) x.ty
      JOIN pg_proc f ON f.oid OPERATOR(pg_catalog.=) k.fn
      JOIN pg_namespace s ON s.oid OPERATOR(pg_catalog.=) f.pronamespace
      JOIN pg_roles o ON o.oid OPERATOR(pg_catalog.=) f.proowner
     WHERE x.ty OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid AND f.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
    UNION ALL
    -- a domain check that is not only constants, the value, built-in
    -- operators, built-in immutable functions, conversions to built-in types, boolean
    -- logic and CASE (read from the stored expression: no dependency on a
    -- built-in function is recorded)
    SELECT x.rel, x.owner, x.att, x.tcol, x.ty,
           format('is of type %s, whose check %I is not only constants, the value, built-in operators, built-in immutable functions, conversions to built-in types, boolean logic and CASE, or uses a collation of another role',
                  pg_catalog.format_type(x.ty, NULL), n.conname),
           NULL::pg_catalog.text
      FROM cols x JOIN pg_constraint n ON n.contypid OPERATOR(pg_catalog.=) x.ty AND n.conbin IS NOT NULL
     WHERE x.ty OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
       AND (EXISTS (SELECT FROM regexp_matches(n.conbin::pg_catalog.text, '\{([A-Z_]+)', 'g') AS g(m)
                     WHERE NOT (g.m)[1] OPERATOR(pg_catalog.=) ANY (ARRAY['CONST', 'COERCETODOMAINVALUE', 'OPEXPR', 'FUNCEXPR', 'BOOLEXPR', 'NULLTEST', 'BOOLEANTEST',
                               'SCALARARRAYOPEXPR', 'RELABELTYPE', 'DISTINCTEXPR', 'NULLIFEXPR', 'CASE', 'WHEN', 'CASETESTEXPR',
                               'COALESCEEXPR', 'MINMAXEXPR', 'ARRAYEXPR', 'COLLATEEXPR', 'COERCEVIAIO',
                               'ARRAYCOERCEEXPR']::pg_catalog.text[]))
            OR EXISTS (SELECT FROM regexp_matches(n.conbin::pg_catalog.text, ':(?:op)?funcid ([0-9]+)', 'g') AS g(m)
                         JOIN pg_proc p ON p.oid OPERATOR(pg_catalog.=) (g.m)[1]::pg_catalog.oid
                        WHERE p.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                           OR p.provolatile OPERATOR(pg_catalog.<>) 'i'::pg_catalog."char")
            OR EXISTS (SELECT FROM regexp_matches(n.conbin::pg_catalog.text, ':resulttype ([0-9]+)', 'g') AS g(m)
                        WHERE (g.m)[1]::pg_catalog.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid)
            -- an operator with its negator and commutator (the planner
            -- turns NOT (a op b) into the negator): built-in, with built-in
            -- immutable functions
            OR EXISTS (SELECT FROM regexp_matches(n.conbin::pg_catalog.text, ':opno ([0-9]+)', 'g') AS g(m)
                         JOIN pg_operator o ON o.oid OPERATOR(pg_catalog.=) (g.m)[1]::pg_catalog.oid
                         JOIN pg_operator q ON q.oid OPERATOR(pg_catalog.=) ANY (ARRAY[o.oid, o.oprnegate, o.oprcom])
                         JOIN pg_proc p ON p.oid OPERATOR(pg_catalog.=) q.oprcode
                        WHERE q.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                           OR p.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                           OR p.provolatile OPERATOR(pg_catalog.<>) 'i'::pg_catalog."char")
            -- a collation of another role (who could drop it, and the check)
            OR EXISTS (SELECT FROM regexp_matches(n.conbin::pg_catalog.text, ':[a-z_]*coll(?:id|ation|Oid) ([0-9]+)', 'g') AS g(m)
                         JOIN pg_collation l ON l.oid OPERATOR(pg_catalog.=) (g.m)[1]::pg_catalog.oid
                         JOIN pg_roles w ON w.oid OPERATOR(pg_catalog.=) l.collowner
                        WHERE l.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                          AND l.collowner OPERATOR(pg_catalog.<>) x.owner AND NOT w.rolsuper))
  )
  SELECT DISTINCT CASE WHEN y.att OPERATOR(pg_catalog.=) y.tcol THEN 'high' ELSE 'medium' END,
         'foreign_owned_column_type',
         format('%I.%I.%I', n.nspname, c.relname, y.att),
         format('column %I of %I.%I %s: that code runs as whoever writes%s',
                y.att, n.nspname, c.relname, y.why,
                CASE WHEN y.att OPERATOR(pg_catalog.=) y.tcol
                     THEN ' the table and, in the tenant policies, whoever reads it; the type''s owner can change which tenant a row belongs to'
                     ELSE ' the column' END),
         y.remedy
    FROM found y
    JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) y.rel
    JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
   ORDER BY 3, 4;

  -- A protected tenant column with a nondeterministic collation (ICU,
  -- e.g. case-insensitive): the rules compare ids in it, so ids it counts
  -- as equal (ACME and acme) read each other's rows. protect refuses such
  -- a column; a table protected before that shows here.
  RETURN QUERY
  SELECT 'high', 'nondeterministic_tenant_collation', format('%I.%I.%I', n.nspname, c.relname, a.attname),
         format('tenant column %I of %I.%I has the nondeterministic collation %I.%I: tenant ids it counts as equal read each other''s rows',
                a.attname, n.nspname, c.relname, ln.nspname, l.collname),
         format('SELECT tenant_guard.unprotect(%L); ALTER TABLE %I.%I ALTER COLUMN %I TYPE %s COLLATE "C"; SELECT tenant_guard.protect(%L, tenant_column => %L);',
                format('%I.%I', n.nspname, c.relname), n.nspname, c.relname, a.attname,
                pg_catalog.format_type(a.atttypid, a.atttypmod), format('%I.%I', n.nspname, c.relname), a.attname)
    FROM tenant_guard.protected p
    JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::oid
    JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
                       AND a.attname OPERATOR(pg_catalog.=) p.tenant_column::pg_catalog.name
    JOIN pg_collation l ON l.oid OPERATOR(pg_catalog.=) a.attcollation
    JOIN pg_namespace ln ON ln.oid OPERATOR(pg_catalog.=) l.collnamespace
   WHERE NOT l.collisdeterministic
   ORDER BY 3;

  -- A protected tenant column of a type whose conversion or = is not exact
  -- (anything but text, varchar, char(n), the integer types, numeric, uuid,
  -- an enum, or a domain over one): different tenant ids may become one
  -- value there. protect refuses such a column; a table protected before
  -- that shows here. The OIDs are policy::EXACT_TENANT_TYPES (a unit test
  -- holds each copy of this list to it).
  RETURN QUERY
  SELECT 'high', 'inexact_tenant_type', format('%I.%I.%I', n.nspname, c.relname, a.attname),
         format('tenant column %I of %I.%I is of type %s: converting tenant ids to it can cut, round or read them through session settings, or its = is not identity, so different tenant ids can read each other''s rows',
                a.attname, n.nspname, c.relname, pg_catalog.format_type(a.atttypid, a.atttypmod)),
         format('SELECT tenant_guard.unprotect(%L); ALTER TABLE %I.%I ALTER COLUMN %I TYPE text; SELECT tenant_guard.protect(%L, tenant_column => %L);',
                format('%I.%I', n.nspname, c.relname), n.nspname, c.relname, a.attname,
                format('%I.%I', n.nspname, c.relname), a.attname)
    FROM tenant_guard.protected p
    JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::oid
    JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
                       AND a.attname OPERATOR(pg_catalog.=) p.tenant_column::pg_catalog.name
    CROSS JOIN LATERAL (
      WITH RECURSIVE b(t, k) AS (
        SELECT a.atttypid, 0
        UNION ALL
        SELECT y.typbasetype, b.k OPERATOR(pg_catalog.+) 1
          FROM pg_type y JOIN b ON y.oid OPERATOR(pg_catalog.=) b.t
         WHERE y.typtype OPERATOR(pg_catalog.=) 'd' AND b.k OPERATOR(pg_catalog.<) 100)
      SELECT b.t FROM b ORDER BY b.k DESC LIMIT 1) base(t)
    JOIN pg_type bt ON bt.oid OPERATOR(pg_catalog.=) base.t
   WHERE NOT (bt.oid OPERATOR(pg_catalog.=) ANY (ARRAY[25, 1043, 1042, 21, 23, 20, 1700, 2950]::pg_catalog.oid[])
              OR bt.typtype OPERATOR(pg_catalog.=) 'e')
   ORDER BY 3;

  -- TRUNCATE ignores row-level security.
  RETURN QUERY
  SELECT 'medium', 'truncate_granted', format('%I.%I to %s', n.nspname, c.relname, g.grantee),
         format('%s may TRUNCATE %I.%I, which ignores row-level security (tenant_guard refuses it under a context)',
                g.grantee, n.nspname, c.relname),
         format('REVOKE TRUNCATE ON %I.%I FROM %s;', n.nspname, c.relname,
                CASE WHEN g.grantee = 'PUBLIC' THEN 'PUBLIC' ELSE quote_ident(g.grantee) END)
    FROM tenant_guard.protected p
    JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL (
      SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END AS grantee
        FROM aclexplode(c.relacl) x
       WHERE x.privilege_type = 'TRUNCATE' AND x.grantee <> c.relowner) g
   ORDER BY 3;

  -- Partitions of protected tables that are not protected themselves.
  RETURN QUERY
  SELECT 'high', 'unprotected_partition', format('%I.%I', n.nspname, c.relname),
         format('partition %I.%I of protected %I.%I has no tenant policies; named directly it shows every tenant',
                n.nspname, c.relname, pn.nspname, pc.relname),
         format('SELECT * FROM tenant_guard.protect(%L, tenant_column => %L);',
                format('%I.%I', n.nspname, c.relname), p.tenant_column)
    FROM tenant_guard.protected p
    JOIN pg_inherits i ON i.inhparent = p.relid
    JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_class pc ON pc.oid = p.relid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
   WHERE NOT EXISTS (SELECT 1 FROM tenant_guard.protected q WHERE q.relid = i.inhrelid)
   ORDER BY 3;
  -- A registry whose changes cannot reach the sessions: without
  -- use_registry's trigger as it makes it, every bypass context reads the
  -- whole registry once per transaction instead of keeping it (a registry
  -- configured before 0.2.0, a trigger dropped, disabled or replaced). Not
  -- reported where no trigger could make it kept: on Citus, for a
  -- partitioned registry or one with inheritance children. Read only by
  -- a caller who may read the registry setting (PUBLIC may not).
  IF has_table_privilege('tenant_guard.registry'::regclass, 'SELECT') THEN
    RETURN QUERY
    SELECT 'low', 'registry_not_watched', format('%I.%I', n.nspname, c.relname),
           format('registry %I.%I has no trigger tenant_guard_registry_changed as use_registry makes it: '
                  'each bypass context reads every row of it once per transaction', n.nspname, c.relname),
           format('SELECT tenant_guard.use_registry(%L, %L, %L);',
                  format('%I.%I', n.nspname, c.relname), r.id_column, r.active_column)
      FROM tenant_guard.registry r
      JOIN pg_class c ON c.oid = r.tenant_table::oid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND NOT c.relispartition
       AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid)
       AND NOT EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'citus')
       AND NOT EXISTS (
         SELECT 1 FROM pg_trigger g
          WHERE g.tgrelid = c.oid AND g.tgname = 'tenant_guard_registry_changed'
            AND g.tgfoid = 'tenant_guard_internal.config_changed()'::regprocedure::oid
            AND g.tgenabled = 'A' AND g.tgqual IS NULL
            -- FOR EACH ROW, AFTER (neither BEFORE nor INSTEAD OF), on
            -- INSERT, DELETE and UPDATE
            AND (g.tgtype::int & 1) = 1 AND (g.tgtype::int & 66) = 0 AND (g.tgtype::int & 28) = 28
            -- UPDATE of every column (no column list), the function given
            -- the id and active columns' names
            AND cardinality(g.tgattr::int2[]) = 0
            AND g.tgargs = convert_to(r.id_column, getdatabaseencoding()) || decode('00', 'hex')
                           || coalesce(convert_to(r.active_column, getdatabaseencoding()) || decode('00', 'hex'), ''::bytea))
     ORDER BY 3;
  END IF;
  -- Citus: every shard placement of a protected distributed table carries
  -- protect's four permissive tenant policies, row-level security, the
  -- TRUNCATE trigger, and no other permissive policy (read on the workers through Citus'
  -- run_command_on_placements, with the caller's rights; the command is a
  -- fixed text in which Citus puts the shard's name).
  IF EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'citus') THEN
    RETURN QUERY EXECUTE $citus$
      SELECT 'high', 'shard_policy_drift', format('%I.%I shard %s on %s:%s', n.nspname, c.relname, r.shardid, r.nodename, r.nodeport),
             format('shard %s of %I.%I on %s:%s: %s', r.shardid, n.nspname, c.relname, r.nodename, r.nodeport,
                    CASE WHEN r.success THEN r.result ELSE 'could not be checked: ' || r.result END),
             CASE WHEN r.result = 'trigger tenant_guard_no_truncate missing'
                  -- Citus does not propagate a BEFORE TRUNCATE trigger
                  -- created after distribution: put it on each placement
                  -- (Citus names a shard's copy <name>_<shard id>).
                  THEN format('SELECT * FROM run_command_on_placements(%L, %L);',
                              format('%I.%I', n.nspname, c.relname),
                              'SET LOCAL citus.enable_manual_changes_to_shards TO on; CREATE OR REPLACE TRIGGER tenant_guard_no_truncate '
                              || 'BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard_internal.refuse_truncate()')
                  ELSE format('SELECT * FROM tenant_guard.unprotect(%L); SELECT * FROM tenant_guard.protect(%L, tenant_column => %L);',
                              format('%I.%I', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname), p.tenant_column)
             END
        FROM tenant_guard.protected p
        JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_dist_partition dp ON dp.logicalrelid = p.relid
        CROSS JOIN LATERAL run_command_on_placements(p.relid,
          'WITH s AS (SELECT ''%s''::pg_catalog.regclass::pg_catalog.oid AS r) '
          || 'SELECT COALESCE(pg_catalog.string_agg(x, ''; '' ORDER BY x), ''ok'') FROM ('
          || 'SELECT ''policy '' OPERATOR(pg_catalog.||) w OPERATOR(pg_catalog.||) '' missing'' AS x FROM s, '
          || 'pg_catalog.unnest(ARRAY[''tenant_guard_select'', ''tenant_guard_insert'', ''tenant_guard_update'', ''tenant_guard_delete'']) w '
          || 'WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy q WHERE q.polrelid OPERATOR(pg_catalog.=) s.r '
          || 'AND q.polname::pg_catalog.text OPERATOR(pg_catalog.=) w AND q.polpermissive) '
          || 'UNION ALL SELECT ''extra permissive policy '' OPERATOR(pg_catalog.||) q.polname FROM s, pg_catalog.pg_policy q '
          || 'WHERE q.polrelid OPERATOR(pg_catalog.=) s.r AND q.polpermissive AND NOT q.polname::pg_catalog.text OPERATOR(pg_catalog.=) '
          || 'ANY (ARRAY[''tenant_guard_select'', ''tenant_guard_insert'', ''tenant_guard_update'', ''tenant_guard_delete'']) '
          || 'UNION ALL SELECT ''row-level security disabled'' FROM s, pg_catalog.pg_class k '
          || 'WHERE k.oid OPERATOR(pg_catalog.=) s.r AND NOT k.relrowsecurity '
          || 'UNION ALL SELECT ''trigger tenant_guard_no_truncate missing'' FROM s '
          || 'WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) s.r '
          || 'AND pg_catalog.starts_with(g.tgname::pg_catalog.text, ''tenant_guard_no_truncate'') '
          || 'AND g.tgenabled OPERATOR(pg_catalog.<>) ''D'')) f') r
       WHERE dp.partmethod = 'h' AND (NOT r.success OR r.result <> 'ok')
       ORDER BY 3
    $citus$;
  END IF;
END $$;

-- Independent of the registry and the settings of the database.
CREATE OR REPLACE FUNCTION tenant_guard.selftest()
RETURNS TABLE ("check" text, passed boolean, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  names text[] := '{}';
  oks boolean[] := '{}';
  details text[] := '{}';
  acme text; globex text; expired text; tampered text; none_tok text; st text; n bigint;
  app name := 'tenant_guard_selftest_app';
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RAISE EXCEPTION 'tenant_guard.selftest() must be run by a superuser'
      USING ERRCODE = '42501', HINT = 'It creates a scratch key, role and tables, and rolls them back.';
  END IF;
  BEGIN
    -- The checks must not depend on how this database is configured: the
    -- scratch tenants are in no registry (with one configured, set_context
    -- would refuse them: 28000), and the settings the fixture relies on are
    -- pinned. All of it is undone with the rest below (the subtransaction
    -- rolls back the registry row and every set_config(..., true)).
    DELETE FROM tenant_guard.registry;
    PERFORM set_config('tenant_guard.tenant_column', 'tenant_id', true),
            set_config('tenant_guard.tenant_claim', 'tenant_id', true),
            set_config('tenant_guard.issuer', '', true),
            set_config('tenant_guard.audience', '', true),
            set_config('tenant_guard.missing_context', 'error', true),
            set_config('tenant_guard.on_new_table', 'off', true);
    -- Fixture: a key, an application role, a protected table with two
    -- tenants, a protected partitioned table, a composite foreign key.
    PERFORM tenant_guard.add_key('tenant_guard_selftest', gen_random_uuid()::text::bytea || gen_random_uuid()::text::bytea);
    EXECUTE format('CREATE ROLE %I NOLOGIN', app);
    CREATE TABLE pg_temp.selftest_parent (id int, tenant_id text NOT NULL, PRIMARY KEY (tenant_id, id));
    CREATE TABLE pg_temp.selftest_rows (id int PRIMARY KEY, tenant_id text NOT NULL, parent_id int, secret text);
    CREATE TABLE pg_temp.selftest_parts (tenant_id text NOT NULL, v int) PARTITION BY LIST (tenant_id);
    CREATE TABLE pg_temp.selftest_parts_acme PARTITION OF pg_temp.selftest_parts FOR VALUES IN ('acme');
    CREATE TABLE pg_temp.selftest_parts_globex PARTITION OF pg_temp.selftest_parts FOR VALUES IN ('globex');
    INSERT INTO pg_temp.selftest_parent VALUES (1, 'acme'), (2, 'globex');
    INSERT INTO pg_temp.selftest_rows VALUES (1, 'acme', 1, 'a'), (2, 'globex', 2, 'g');
    INSERT INTO pg_temp.selftest_parts VALUES ('acme', 1), ('globex', 2);
    PERFORM count(*) FROM tenant_guard.protect('pg_temp.selftest_parent');
    PERFORM count(*) FROM tenant_guard.protect('pg_temp.selftest_rows');
    PERFORM count(*) FROM tenant_guard.protect('pg_temp.selftest_parts');
    PERFORM count(*) FROM tenant_guard.add_tenant_fk('pg_temp.selftest_rows', ARRAY['parent_id'],
                                                     'pg_temp.selftest_parent', ARRAY['id']);
    -- (Every role with TEMP on the database may use this session's temp schema.)
    EXECUTE format('GRANT EXECUTE ON FUNCTION tenant_guard_internal.selftest_try(text), '
                   'tenant_guard_internal.selftest_count(text) TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON pg_temp.selftest_rows, pg_temp.selftest_parent, '
                   'pg_temp.selftest_parts, pg_temp.selftest_parts_acme, pg_temp.selftest_parts_globex TO %I', app);
    acme := tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', 'tenant_guard_selftest');
    globex := tenant_guard.sign('{"tenant_id": "globex", "exp": 4102444800}', 'tenant_guard_selftest');
    expired := tenant_guard.sign('{"tenant_id": "globex", "exp": 1000000000}', 'tenant_guard_selftest');
    tampered := split_part(acme, '.', 1) || '.' || split_part(globex, '.', 2) || '.' || split_part(acme, '.', 3);
    none_tok := 'eyJhbGciOiJub25lIn0.' || split_part(globex, '.', 2) || '.';

    -- From here on: the application role.
    PERFORM set_config('role', app, true);

    st := tenant_guard_internal.selftest_try($q$SELECT set_config('tenant_guard.context', 'globex', true)$q$);
    names := names || 'forged context (set_config)'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try($q$SET tenant_guard.context = 'globex'$q$);
    names := names || 'forged context (SET)'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try(format('SELECT tenant_guard.set_context(%L, false)', none_tok));
    names := names || 'unsigned token (alg none)'::text; oks := oks || (st = '28000'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try(format('SELECT tenant_guard.set_context(%L, false)', tampered));
    names := names || 'tampered token'::text; oks := oks || (st = '28000'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try(format('SELECT tenant_guard.set_context(%L, false)', expired));
    names := names || 'expired token'::text; oks := oks || (st = '28000'); details := details || ('SQLSTATE ' || st);

    st := tenant_guard_internal.selftest_try('SELECT count(*) FROM pg_temp.selftest_rows');
    names := names || 'no context, no rows'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);

    PERFORM tenant_guard.set_context(acme, false);
    n := tenant_guard_internal.selftest_count($q$SELECT count(*) FROM pg_temp.selftest_rows WHERE tenant_id <> 'acme'$q$);
    names := names || 'other tenant''s rows invisible'::text; oks := oks || (n = 0); details := details || (coalesce(n::text, 'error') || ' foreign rows seen');
    n := tenant_guard_internal.selftest_count('SELECT count(*) FROM pg_temp.selftest_rows');
    names := names || 'own rows visible'::text; oks := oks || (n = 1); details := details || (coalesce(n::text, 'error') || ' rows seen');
    st := tenant_guard_internal.selftest_try($q$INSERT INTO pg_temp.selftest_rows VALUES (3, 'globex', 2, 'x')$q$);
    names := names || 'insert into another tenant'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    n := tenant_guard_internal.selftest_count($q$WITH u AS (UPDATE pg_temp.selftest_rows SET secret = 'owned' WHERE id = 2 RETURNING 1) SELECT count(*) FROM u$q$);
    names := names || 'update another tenant''s row'::text; oks := oks || (n = 0); details := details || (coalesce(n::text, 'error') || ' rows updated');
    n := tenant_guard_internal.selftest_count($q$WITH d AS (DELETE FROM pg_temp.selftest_rows WHERE id = 2 RETURNING 1) SELECT count(*) FROM d$q$);
    names := names || 'delete another tenant''s row'::text; oks := oks || (n = 0); details := details || (coalesce(n::text, 'error') || ' rows deleted');
    st := tenant_guard_internal.selftest_try($q$UPDATE pg_temp.selftest_rows SET tenant_id = 'globex' WHERE id = 1$q$);
    names := names || 'move a row to another tenant'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try('TRUNCATE pg_temp.selftest_rows');
    names := names || 'TRUNCATE'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    n := tenant_guard_internal.selftest_count('SELECT count(*) FROM pg_temp.selftest_parts_globex');
    names := names || 'partition named directly'::text; oks := oks || (n = 0); details := details || (coalesce(n::text, 'error') || ' foreign rows seen');
    st := tenant_guard_internal.selftest_try($q$INSERT INTO pg_temp.selftest_rows VALUES (4, 'acme', 2, 'x')$q$);
    names := names || 'reference another tenant''s parent'::text; oks := oks || (st = '23503'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try('SELECT * FROM tenant_guard.unprotect(''pg_temp.selftest_rows'')');
    names := names || 'application role calls unprotect'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try('ALTER TABLE pg_temp.selftest_rows DISABLE ROW LEVEL SECURITY');
    names := names || 'application role disables row-level security'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try('SELECT count(*) FROM tenant_guard.keys');
    names := names || 'application role reads the key ring'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    PERFORM tenant_guard.clear_context();
    n := tenant_guard_internal.selftest_count('SELECT count(*) FROM pg_temp.selftest_rows');
    names := names || 'cleared context, no rows'::text; oks := oks || (n IS NULL); details := details || CASE WHEN n IS NULL THEN 'refused' ELSE n || ' rows seen' END;

    -- Undo every change (fixture, key, role, settings).
    RAISE EXCEPTION USING ERRCODE = 'TGST1', MESSAGE = 'tenant_guard selftest rollback';
  EXCEPTION WHEN SQLSTATE 'TGST1' THEN
    NULL;
  END;
  RETURN QUERY SELECT * FROM unnest(names, oks, details);
END $$;

-- The hint names the table from the catalog (nspname, relname).
CREATE OR REPLACE FUNCTION tenant_guard_internal.on_ddl() RETURNS event_trigger
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

-- 3. The status view ------------------------------------------------------

-- The eleven columns of 0.1.0 keep their names, types and order; drift is
-- appended, so CREATE OR REPLACE keeps the view's privileges.
CREATE OR REPLACE VIEW tenant_guard.status AS
SELECT t.table_name,
       t.tenant_column,
       NOT a.attnotnull AS nullable,
       c.relrowsecurity AS rls_enabled,
       c.relforcerowsecurity AS rls_forced,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_policy pol
         WHERE pol.polrelid OPERATOR(pg_catalog.=) c.oid
           AND pol.polname OPERATOR(pg_catalog.=) ANY
               (tenant_guard_internal.policy_names()::pg_catalog.name[])
       )::pg_catalog.int4 AS policies,
       p.relid IS NOT NULL AND pg_catalog.cardinality(d.drift) OPERATOR(pg_catalog.=) 0 AS policies_current,
       p.mode,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_constraint k
         WHERE k.contype OPERATOR(pg_catalog.=) 'f'::pg_catalog."char"
           AND k.conrelid OPERATOR(pg_catalog.=) c.oid
           AND a.attnum OPERATOR(pg_catalog.=) ANY (k.conkey))::pg_catalog.int4 AS composite_fks,
       (SELECT pg_catalog.count(*) FROM tenant_guard_internal.tenant_blind_foreign_keys() b
         WHERE b.child_table::pg_catalog.oid OPERATOR(pg_catalog.=) c.oid)::pg_catalog.int4 AS tenant_blind_fks,
       CASE
         WHEN p.relid IS NULL THEN 'none'
         WHEN pg_catalog.cardinality(d.drift) OPERATOR(pg_catalog.<>) 0 THEN 'drifted'
         WHEN p.mode OPERATOR(pg_catalog.=) 'strict'::pg_catalog.text AND c.relforcerowsecurity AND a.attnotnull
              AND NOT EXISTS (SELECT 1 FROM tenant_guard_internal.tenant_blind_foreign_keys() b
                               WHERE b.child_table::pg_catalog.oid OPERATOR(pg_catalog.=) c.oid) THEN 'enforce'
         WHEN p.mode OPERATOR(pg_catalog.=) 'strict'::pg_catalog.text THEN 'tighten'
         ELSE 'prepare'
       END AS phase,
       d.drift
  FROM tenant_guard_internal.tenant_tables() t
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.table_name::pg_catalog.oid
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
                                AND a.attname OPERATOR(pg_catalog.=) t.tenant_column
  LEFT JOIN tenant_guard.protected p ON p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) c.oid
  -- OFFSET 0: evaluated once per table, not once per reference.
  CROSS JOIN LATERAL (SELECT CASE WHEN p.relid IS NOT NULL
                                  THEN tenant_guard.protection_drift(t.table_name) END AS drift
                       OFFSET 0) d;
COMMENT ON VIEW tenant_guard.status IS
  'one row per tenant table: column, nullability, row-level security, policies, keys, rollout phase reached and drift from what protect renders';

-- 4. Privileges and comments ---------------------------------------------

-- As in finalize.sql: drift and the counts are not for PUBLIC.
REVOKE ALL ON FUNCTION tenant_guard.protection_drift(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard_internal.count_null_tenant_rows(regclass, text, boolean),
              tenant_guard_internal.count_orphan_tenant_rows(regclass, text),
              tenant_guard_internal.count_cross_tenant_references(oid, text, text) FROM PUBLIC;
-- As in sql/backfill.sql: the committing backfill is not for PUBLIC either.
REVOKE ALL ON PROCEDURE tenant_guard.backfill(regclass, text, integer, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.backfill_batch(regclass, text, bigint, integer, text) FROM PUBLIC;
-- As in finalize.sql: nothing in tenant_guard_internal for PUBLIC but the
-- two trigger functions (called directly they raise), on which a table
-- owner needs EXECUTE because protect() now creates its triggers with the
-- owner's rights.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tenant_guard_internal FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard_internal.refuse_truncate() TO PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard_internal.refuse_tenant_change() TO PUBLIC;

COMMENT ON FUNCTION tenant_guard_internal.refuse_tenant_change() IS
  'trigger: refuses changing the tenant of a row, except an operator''s repair without tenant context and row-level security';
COMMENT ON FUNCTION tenant_guard.protection_drift(regclass) IS
  'how a protected table differs from what protect would leave (policies, row-level security, triggers, default); NULL when not protected';
COMMENT ON FUNCTION tenant_guard_internal.count_null_tenant_rows(regclass, text, boolean) IS
  'rows of a table with a NULL tenant (caller must read every row; counts as the table owner)';
COMMENT ON FUNCTION tenant_guard_internal.count_orphan_tenant_rows(regclass, text) IS
  'rows per tenant id not in the registry (caller must read every row; counts as the table owners)';
COMMENT ON FUNCTION tenant_guard_internal.count_cross_tenant_references(oid, text, text) IS
  'child rows of a foreign key whose parent has another tenant (caller must read both tables; counts as an owner)';
COMMENT ON PROCEDURE tenant_guard.backfill(regclass, text, integer, text, integer) IS
  'fill NULL tenant ids from the parent reached through a foreign key, committing every batch (CALL outside a transaction block); resumable, retries 40P01/55P03';
COMMENT ON FUNCTION tenant_guard.backfill_batch(regclass, text, bigint, integer, text) IS
  'one batch of a backfill, from block from_block, as the child''s owner; returns rows_updated and next_block (NULL at the end of the table)';
COMMENT ON FUNCTION tenant_guard_internal.tenant_column() IS
  'the tenant column used when none is given: tenant_guard.tenant_column, or the built-in default';
COMMENT ON FUNCTION tenant_guard_internal.policy_names() IS 'names of the policies protect creates';

-- 5. The DDL guard --------------------------------------------------------
-- New in 0.2.0 (issue 15). As in sql/finalize.sql: the library's part
-- (ddl_guard_findings, ddl_guard_snapshot, ddl_guard_done), the check that
-- raises, and the three event triggers. A database upgraded with tables
-- that have drifted under 0.1.0 keeps that drift (not refused, since it
-- was there before each statement) until SELECT tenant_guard.protect(...)
-- repairs it (tenant_guard.status shows which, column drift).
CREATE FUNCTION tenant_guard_internal."ddl_guard_findings"(
	"relid" oid
) RETURNS TEXT[]
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'ddl_guard_findings_wrapper';
CREATE FUNCTION tenant_guard_internal."ddl_guard_snapshot"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'ddl_guard_snapshot_wrapper';
CREATE FUNCTION tenant_guard_internal."ddl_guard_done"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'ddl_guard_done_wrapper';

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

REVOKE ALL ON FUNCTION tenant_guard_internal.ddl_guard_findings(oid),
                       tenant_guard_internal.ddl_guard_snapshot(),
                       tenant_guard_internal.ddl_guard_done(),
                       tenant_guard_internal.ddl_guard_check(oid, text),
                       tenant_guard_internal.ddl_guard_start(),
                       tenant_guard_internal.ddl_guard(),
                       tenant_guard_internal.drop_guard() FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard_internal.ddl_guard_findings(oid) IS
  'what the DDL guard refuses on a table: the drift detector''s findings the running statement added (but extra permissive policies) and an owner bypassing row-level security; NULL when not protected';
COMMENT ON FUNCTION tenant_guard_internal.ddl_guard_snapshot() IS
  'DDL guard: at ddl_command_start, remember what protected tables already lacked (not refused later)';
COMMENT ON FUNCTION tenant_guard_internal.ddl_guard_done() IS 'DDL guard: at ddl_command_end, forget the statement''s snapshot';
COMMENT ON FUNCTION tenant_guard_internal.ddl_guard_check(oid, text) IS
  'DDL guard: raise 42501 (or, with tenant_guard.ddl_guard off, warn) when a statement left a protected table weakened';
COMMENT ON FUNCTION tenant_guard_internal.ddl_guard_start() IS 'event trigger: DDL guard snapshot at ddl_command_start';
COMMENT ON FUNCTION tenant_guard_internal.ddl_guard() IS 'event trigger: refuses ALTER TABLE/POLICY/TRIGGER and CREATE POLICY that weaken a protected table';
COMMENT ON FUNCTION tenant_guard_internal.drop_guard() IS 'event trigger: refuses drops (policy, trigger, column, default; also by cascade) that weaken a protected table';

-- Citus (issue 13): the key ring and registry settings copied to every
-- worker (sync_nodes on the coordinator, load_node_state on each worker).
CREATE FUNCTION tenant_guard."sync_nodes"() RETURNS TABLE (
	"nodename" TEXT,
	"nodeport" INT,
	"success" bool,
	"result" TEXT
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'sync_nodes_wrapper';
CREATE FUNCTION tenant_guard_internal."load_node_state"(
	"state" jsonb
) RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'load_node_state_wrapper';
REVOKE ALL ON FUNCTION tenant_guard.sync_nodes() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard_internal.load_node_state(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard.sync_nodes() IS
  'Citus: copy the key ring and registry settings to every worker (one row per worker)';
COMMENT ON FUNCTION tenant_guard_internal.load_node_state(jsonb) IS
  'Citus: on a worker, replace the key ring and registry settings with those sync_nodes sent';

-- Observability: tenant_guard.stats (counters of set_context outcomes,
-- rejections by reason, denied cross-tenant writes, rejection log lines) and
-- tenant_guard.reset_stats(). Counters live in shared memory with the library
-- in shared_preload_libraries, per backend otherwise (src/stats.rs).
CREATE FUNCTION tenant_guard_internal."stats_rows"() RETURNS TABLE (
	"metric" TEXT,
	"reason" TEXT,
	"value" bigint,
	"stats_reset" timestamp with time zone,
	"scope" TEXT
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'stats_rows_wrapper';
CREATE FUNCTION tenant_guard."reset_stats"() RETURNS timestamp with time zone
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'reset_stats_wrapper';
CREATE VIEW tenant_guard.stats AS
  SELECT metric, reason, value, stats_reset, scope
    FROM tenant_guard_internal.stats_rows();
COMMENT ON VIEW tenant_guard.stats IS
  'tenant_guard counters, one row per counter (Prometheus names; reason is the label): set_context calls, verifications, cache hits, rejections by reason, denied cross-tenant writes, rejection log lines';
COMMENT ON FUNCTION tenant_guard_internal.stats_rows() IS 'the rows of tenant_guard.stats';
COMMENT ON FUNCTION tenant_guard.reset_stats() IS
  'sets the counters of tenant_guard.stats to zero and stats_reset to now; returns stats_reset';
REVOKE ALL ON tenant_guard.stats FROM PUBLIC;
GRANT SELECT ON tenant_guard.stats TO pg_monitor;
REVOKE ALL ON FUNCTION tenant_guard_internal.stats_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard_internal.stats_rows() TO pg_monitor;
REVOKE ALL ON FUNCTION tenant_guard.reset_stats() FROM PUBLIC;
-- The TRUNCATE trigger in C (src/triggers.rs), counting each refusal; same
-- rule as before (a tenant or bypass context, or row-level security active
-- for the caller). Replaced in place: existing triggers keep calling it.
CREATE OR REPLACE FUNCTION tenant_guard_internal.refuse_truncate() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'tg_refuse_truncate';

-- 6. Tokens from identity providers: public-key algorithms, key sets,
--    issuer rules, revocation ------------------------------------------------

-- The key ring takes public keys (RS/PS/ES/EdDSA) bound to an issuer.
ALTER TABLE tenant_guard.keys ALTER COLUMN secret DROP NOT NULL;
ALTER TABLE tenant_guard.keys DROP CONSTRAINT keys_algorithm_check;
ALTER TABLE tenant_guard.keys ADD CONSTRAINT keys_algorithm_check CHECK (algorithm IN ('HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'));
ALTER TABLE tenant_guard.keys ADD COLUMN public_key bytea;
ALTER TABLE tenant_guard.keys ADD COLUMN issuer text;
ALTER TABLE tenant_guard.keys ADD COLUMN source text NOT NULL DEFAULT 'add_key' CHECK (source IN ('add_key', 'add_jwks'));
ALTER TABLE tenant_guard.keys ADD CONSTRAINT keys_material_check CHECK ((secret IS NULL) <> (public_key IS NULL) AND (public_key IS NULL) = (algorithm IN ('HS256', 'HS384', 'HS512')) AND (issuer IS NULL) = (source = 'add_key'));

CREATE OR REPLACE VIEW tenant_guard.key_status AS
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

CREATE TRIGGER issuers_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_guard.issuers
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard_internal.config_changed();
CREATE TRIGGER revocations_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_guard.revocations
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard_internal.config_changed();

CREATE  FUNCTION tenant_guard."add_jwks"(
	"jwks" jsonb, /* pgrx :: JsonB */
	"issuer" TEXT, /* & str */
	"grace" interval DEFAULT '1 day', /* pgrx :: datum :: Interval */
	"default_algorithm" TEXT DEFAULT 'RS256' /* & str */
) RETURNS TABLE (
	"kid" TEXT,  /* String */
	"algorithm" TEXT,  /* Option < String > */
	"action" TEXT  /* String */
)
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'add_jwks_wrapper';

CREATE  FUNCTION tenant_guard."set_issuer"(
	"issuer" TEXT, /* & str */
	"audience" TEXT DEFAULT NULL, /* Option < & str > */
	"leeway" INT DEFAULT NULL, /* Option < i32 > */
	"tenant_claim" TEXT DEFAULT NULL, /* Option < & str > */
	"tenants_claim" TEXT DEFAULT NULL, /* Option < & str > */
	"user_claim" TEXT DEFAULT NULL, /* Option < & str > */
	"org_column" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'set_issuer_wrapper';

CREATE  FUNCTION tenant_guard."revoke_token"(
	"jti" TEXT, /* & str */
	"expires_at" timestamp with time zone DEFAULT NULL /* Option < pgrx :: datum :: TimestampWithTimeZone > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'revoke_token_wrapper';

CREATE  FUNCTION tenant_guard."revoke_subject"(
	"sub" TEXT, /* & str */
	"issued_before" timestamp with time zone DEFAULT now(), /* pgrx :: datum :: TimestampWithTimeZone */
	"expires_at" timestamp with time zone DEFAULT NULL /* Option < pgrx :: datum :: TimestampWithTimeZone > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'revoke_subject_wrapper';

CREATE  FUNCTION tenant_guard."revoke_tenant"(
	"tenant" TEXT, /* & str */
	"issued_before" timestamp with time zone DEFAULT now(), /* pgrx :: datum :: TimestampWithTimeZone */
	"expires_at" timestamp with time zone DEFAULT NULL /* Option < pgrx :: datum :: TimestampWithTimeZone > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'revoke_tenant_wrapper';

CREATE  FUNCTION tenant_guard."prune_revocations"() RETURNS bigint /* i64 */
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prune_revocations_wrapper';

REVOKE ALL ON FUNCTION tenant_guard.add_jwks(jsonb, text, interval, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.set_issuer(text, text, integer, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.revoke_token(text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.revoke_subject(text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.revoke_tenant(text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.prune_revocations() FROM PUBLIC;
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

-- Testing as a tenant: tenant_guard.as_tenant (src/impersonate.rs) and
-- Observability: as_tenant, and explain_access for the current context or
-- a given token or tenant (as sql/explain.sql).
CREATE  FUNCTION tenant_guard."as_tenant"(
	"tenant" TEXT, /* Option < & str > */
	"tenants" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"user_id" TEXT DEFAULT NULL, /* Option < & str > */
	"is_local" bool DEFAULT true /* Option < bool > */
) RETURNS TEXT /* String */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'as_tenant_wrapper';
REVOKE ALL ON FUNCTION tenant_guard.as_tenant(text, text[], text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard.as_tenant(text, text[], text, boolean) IS
  'for test suites: make a tenant the context without a token (superusers and members of tenant_guard.as_tenant_role only; logged); returns the tenant id';
CREATE FUNCTION tenant_guard.explain_access(tbl regclass, row_filter text DEFAULT NULL,
                                            token text DEFAULT NULL, tenant text DEFAULT NULL)
RETURNS TABLE (aspect text, detail text)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  aspects text[] := '{}';
  details text[] := '{}';
  r record;
  nsp name;
  rel name;
  col name;
  coltype text;
  relkind "char";
  rls boolean;
  forced boolean;
  applies boolean;
  filter text := coalesce(nullif(btrim(row_filter), ''), 'true');
  n bigint;
  n_reads bigint;
  n_writes bigint;
  locked boolean;
  p record;
BEGIN
  IF token IS NOT NULL AND tenant IS NOT NULL THEN
    RAISE EXCEPTION 'explain_access takes a token or a tenant, not both'
      USING ERRCODE = '22023', HINT = 'Pass token => … to explain a token''s context, or tenant => … (as_tenant''s callers only).';
  END IF;
  IF token IS NOT NULL OR tenant IS NOT NULL THEN
    -- Under the given context, in a block rolled back at its end (the
    -- rows are kept in variables, which a rollback does not touch).
    BEGIN
      IF token IS NOT NULL THEN
        PERFORM tenant_guard.set_context(token, false);
        aspects := aspects || 'explained under'::text;
        details := details || 'the given token (verified; the caller''s context is unchanged)'::text;
      ELSE
        PERFORM tenant_guard.as_tenant(tenant, is_local => false);
        aspects := aspects || 'explained under'::text;
        details := details || format('as_tenant(%L) (the caller''s context is unchanged)', tenant);
      END IF;
      FOR r IN SELECT e.aspect AS a, e.detail AS d FROM tenant_guard.explain_access(tbl, row_filter) e LOOP
        aspects := aspects || r.a;
        details := details || r.d;
      END LOOP;
      RAISE SQLSTATE 'TGXPL';
    EXCEPTION WHEN SQLSTATE 'TGXPL' THEN
      NULL;
    END;
    FOR i IN 1 .. coalesce(array_length(aspects, 1), 0) LOOP
      aspect := aspects[i];
      detail := details[i];
      RETURN NEXT;
    END LOOP;
    RETURN;
  END IF;
  SELECT n2.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity
    INTO nsp, rel, relkind, rls, forced
    FROM pg_class c JOIN pg_namespace n2 ON n2.oid OPERATOR(pg_catalog.=) c.relnamespace
   WHERE c.oid OPERATOR(pg_catalog.=) tbl;
  SELECT pr.tenant_column INTO col FROM tenant_guard.protected pr
   WHERE pr.relid OPERATOR(pg_catalog.=) tbl;
  IF relkind IS NULL OR relkind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION 'tenant_guard.explain_access explains tables only'
      USING ERRCODE = '42809',
            DETAIL = format('%s is not a table or a partitioned table.', tbl);
  END IF;
  -- The counts below name the table and run as the caller. Lock the table
  -- (it can then be neither dropped nor renamed), then make sure the name
  -- is still its own: a role owning the table, or its schema, could
  -- otherwise put a view of its own under the name, whose functions would
  -- run as the caller. Without the right to lock it (SELECT), no count.
  -- A caller that may (a superuser) also keeps schema names as they are
  -- until its transaction ends, as the helpers do: no schema renamed, and
  -- another of the same name created, between the check and a count. (Any
  -- other caller's query of a table already runs the table owner's policy
  -- functions as the caller, as PostgreSQL does for every query.)
  BEGIN
    LOCK TABLE pg_catalog.pg_namespace IN SHARE MODE;
  EXCEPTION WHEN insufficient_privilege OR read_only_sql_transaction THEN
    NULL;  -- not the caller's right, or a standby (no schema changes there)
  END;
  BEGIN
    EXECUTE format('LOCK TABLE ONLY %I.%I IN ACCESS SHARE MODE', nsp, rel);
    locked := true;
  EXCEPTION WHEN insufficient_privilege THEN
    locked := false;
  END;
  IF locked AND pg_catalog.to_regclass(format('%I.%I', nsp, rel)) IS DISTINCT FROM tbl THEN
    RAISE EXCEPTION 'relation %.% is no longer the table explain_access was given', quote_ident(nsp), quote_ident(rel)
      USING ERRCODE = '42P01',
            DETAIL = 'It was dropped or renamed meanwhile, and another relation has its name.';
  END IF;
  IF col IS NOT NULL THEN
    -- The column's type, through any domains to its base type; the cast
    -- target only when that is a built-in type (in pg_catalog).
    WITH RECURSIVE t(oid, typtype, typbasetype, typnamespace, typname, depth) AS (
      SELECT ty.oid, ty.typtype, ty.typbasetype, ty.typnamespace, ty.typname, 0
        FROM pg_attribute a JOIN pg_type ty ON ty.oid OPERATOR(pg_catalog.=) a.atttypid
       WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) col
         AND NOT a.attisdropped
      UNION ALL
      SELECT b.oid, b.typtype, b.typbasetype, b.typnamespace, b.typname, t.depth OPERATOR(pg_catalog.+) 1
        FROM t JOIN pg_type b ON b.oid OPERATOR(pg_catalog.=) t.typbasetype
       WHERE t.typtype OPERATOR(pg_catalog.=) 'd'::"char")
    SELECT format('pg_catalog.%I', t.typname) INTO coltype FROM t
     WHERE t.typtype OPERATOR(pg_catalog.<>) 'd'::"char"
       AND t.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::regnamespace;
  END IF;

  aspect := 'context';
  detail := CASE
    WHEN tenant_guard.is_bypass() THEN 'bypass (every tenant of the registry readable)'
    WHEN tenant_guard.tenant_id() IS NULL THEN 'none (tenant_guard.missing_context = '
         || current_setting('tenant_guard.missing_context') || ')'
    ELSE format('tenant %L, user %L', tenant_guard.tenant_id(), tenant_guard.user_id()) END;
  RETURN NEXT;
  IF tenant_guard.tenant_id() IS NOT NULL OR tenant_guard.is_bypass() THEN
    aspect := 'reads';
    detail := array_to_string(tenant_guard.visible_tenants(), ', ');
    RETURN NEXT;
    aspect := 'writes';
    detail := array_to_string(tenant_guard.writable_tenants(), ', ');
    RETURN NEXT;
  END IF;

  applies := row_security_active(tbl);
  aspect := 'row-level security';
  detail := format('%s%s; for role %I it %s',
                   CASE WHEN rls THEN 'enabled' ELSE 'disabled' END,
                   CASE WHEN forced THEN ', forced' ELSE '' END,
                   current_user,
                   CASE WHEN applies THEN 'applies' ELSE 'does not apply (a superuser, BYPASSRLS, or the owner without FORCE)' END);
  RETURN NEXT;
  aspect := 'protected';
  detail := CASE WHEN col IS NULL THEN 'no: not protected by tenant_guard'
                 ELSE format('yes: tenant column %I', col) END;
  RETURN NEXT;

  -- Every policy on the table, which decides what: tenant_guard's are the
  -- restrictive ones it generated; any other permissive policy can only
  -- widen what the restrictive ones allow, never past them.
  FOR p IN
    SELECT pol.polname,
           CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END AS kind,
           CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                           WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS cmd,
           pg_get_expr(pol.polqual, pol.polrelid) AS using_expr,
           pg_get_expr(pol.polwithcheck, pol.polrelid) AS check_expr,
           pol.polname LIKE 'tenant\_guard\_%' AS ours
      FROM pg_policy pol WHERE pol.polrelid OPERATOR(pg_catalog.=) tbl ORDER BY pol.polname
  LOOP
    aspect := 'policy ' || quote_ident(p.polname);
    detail := format('%s FOR %s%s%s%s', p.kind, p.cmd,
                     coalesce(' USING (' || p.using_expr || ')', ''),
                     coalesce(' WITH CHECK (' || p.check_expr || ')', ''),
                     CASE WHEN p.ours THEN ' (tenant_guard)' ELSE ' (not tenant_guard''s)' END);
    RETURN NEXT;
  END LOOP;

  -- Counts, a query of the caller's: rows the caller's SELECT returns with
  -- the filter, and of those the ones the context reads and writes. One
  -- statement, its name checked just before it: once parsed, it reads the
  -- table by OID, whatever it then waits for (a partition's lock). (On a
  -- standby schema names cannot be kept: replay renames them.)
  BEGIN
    IF NOT locked THEN
      RAISE EXCEPTION 'permission denied for table %', quote_ident(rel) USING ERRCODE = '42501';
    END IF;
    IF pg_catalog.to_regclass(format('%I.%I', nsp, rel)) IS DISTINCT FROM tbl THEN
      RAISE EXCEPTION 'relation %.% is no longer the table explain_access was given', quote_ident(nsp), quote_ident(rel)
        USING ERRCODE = '42P01';
    END IF;
    IF col IS NOT NULL AND coltype IS NOT NULL
       AND (tenant_guard.tenant_id() IS NOT NULL OR tenant_guard.is_bypass()) THEN
      EXECUTE format('SELECT count(*), '
                     'count(*) FILTER (WHERE %I OPERATOR(pg_catalog.=) ANY (tenant_guard.visible_tenants()::%s[])), '
                     'count(*) FILTER (WHERE %I OPERATOR(pg_catalog.=) ANY (tenant_guard.writable_tenants()::%s[])) '
                     'FROM %I.%I WHERE (%s)', col, coltype, col, coltype, nsp, rel, filter)
        INTO n, n_reads, n_writes;
    ELSE
      EXECUTE format('SELECT count(*) FROM %I.%I WHERE (%s)', nsp, rel, filter) INTO n;
    END IF;
    aspect := 'rows returned';
    detail := n::text;
    RETURN NEXT;
    IF col IS NOT NULL AND coltype IS NULL THEN
      aspect := 'of which the context reads';
      detail := 'not counted: the tenant column''s type is not a built-in type or a domain over one';
      RETURN NEXT;
    ELSIF n_reads IS NOT NULL THEN
      aspect := 'of which the context reads';
      detail := n_reads::text;
      RETURN NEXT;
      aspect := 'of which the context writes';
      detail := n_writes::text;
      RETURN NEXT;
    END IF;
  EXCEPTION WHEN OTHERS THEN
    aspect := 'rows returned';
    detail := format('error %s: %s', SQLSTATE, SQLERRM);
    RETURN NEXT;
  END;
END $$;
COMMENT ON FUNCTION tenant_guard.explain_access(regclass, text, text, text) IS
  'why rows are visible or writable: the context (the current one, a token''s, or as_tenant''s for its callers), row-level security for the caller, every policy on the table, and counts of the rows (with an optional filter) the caller''s query returns and the context reads and writes; runs with the caller''s rights';

-- Per-tenant statistics: tenant_guard.tenant_stats (per tenant of the
-- context, with tenant_guard.track_tenants on: transactions, top-level
-- statements, rows returned and written, execution time, denials, last seen)
-- and tenant_guard.reset_tenant_stats(). A hash table in shared memory with
-- the library in shared_preload_libraries, per backend otherwise
-- (src/tenant_stats.rs). Readable by pg_read_all_stats only.
CREATE FUNCTION tenant_guard_internal."tenant_stats_rows"() RETURNS TABLE (
	"tenant" TEXT,
	"database" TEXT,
	"transactions" bigint,
	"statements" bigint,
	"rows_returned" bigint,
	"rows_written" bigint,
	"total_exec_time" double precision,
	"denials" bigint,
	"last_seen" timestamp with time zone,
	"stats_reset" timestamp with time zone,
	"scope" TEXT
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'tenant_stats_rows_wrapper';
CREATE FUNCTION tenant_guard."reset_tenant_stats"() RETURNS timestamp with time zone
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'reset_tenant_stats_wrapper';
CREATE VIEW tenant_guard.tenant_stats AS
  SELECT tenant, database, transactions, statements, rows_returned, rows_written,
         total_exec_time, denials, last_seen, stats_reset, scope
    FROM tenant_guard_internal.tenant_stats_rows();
COMMENT ON VIEW tenant_guard.tenant_stats IS
  'per tenant of the context (with tenant_guard.track_tenants on): transactions, top-level statements, rows returned and written, execution time (ms), write denials, last seen; tenant ids are business data: readable by pg_read_all_stats only';
COMMENT ON FUNCTION tenant_guard_internal.tenant_stats_rows() IS 'the rows of tenant_guard.tenant_stats';
COMMENT ON FUNCTION tenant_guard.reset_tenant_stats() IS
  'empties tenant_guard.tenant_stats and sets its stats_reset to now; returns stats_reset';
REVOKE ALL ON tenant_guard.tenant_stats FROM PUBLIC;
GRANT SELECT ON tenant_guard.tenant_stats TO pg_read_all_stats;
REVOKE ALL ON FUNCTION tenant_guard_internal.tenant_stats_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard_internal.tenant_stats_rows() TO pg_read_all_stats;
REVOKE ALL ON FUNCTION tenant_guard.reset_tenant_stats() FROM PUBLIC;

-- use_registry() puts tenant_guard_internal.config_changed() on the registry
-- table (tenant_guard_registry_changed, with the table owner's rights), so a
-- bypass context's set is kept until the registry changes. A registry set
-- before this update is read by every transaction until use_registry() is
-- run again.
GRANT EXECUTE ON FUNCTION tenant_guard_internal.config_changed() TO PUBLIC;
COMMENT ON FUNCTION tenant_guard_internal.config_changed() IS 'trigger: drops every backend''s cached key ring when keys, registry settings or the registry table''s ids and active flags change';
