-- tenant_guard: audit views and the advisor.
--
-- Whose rights: the views run with the caller's rights and pinned
-- search_path. The counts are Rust functions (src/audit.rs) that first
-- check the caller may read every row of the table (SELECT, and row-level
-- security does not restrict it: query them as a superuser, a BYPASSRLS
-- role or the tables' owner), then count as the table's owner, so a cast or
-- operator written by that owner never runs with an auditor's rights. A
-- table the caller may not read in full is skipped with a WARNING. Every
-- identifier is quoted; counts are exact.

-- Tenant tables: every table with the column named by tenant_guard.tenant_column
-- (outside system schemas and this extension), plus every table protected
-- with a column of its own. Partitions are counted through their parent.
-- No SET clause, so the planner inlines it (re-planning it per call would
-- cost the audit benchmark ~1 ms per view): instead nothing in it depends
-- on the search_path the caller plans it with. Relations, functions and
-- casts are schema-qualified, every operator is OPERATOR(pg_catalog.…)
-- (no NULLIF, LIKE or IN, which look up "=" or "~~" by name); UNION
-- compares with the types' default operator classes, found by type.
CREATE FUNCTION tenant_guard_internal.tenant_tables()
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

CREATE FUNCTION tenant_guard_internal.audit_null_tenant_rows()
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

CREATE VIEW tenant_guard.null_tenant_rows AS
  SELECT * FROM tenant_guard_internal.audit_null_tenant_rows();
COMMENT ON VIEW tenant_guard.null_tenant_rows IS
  'tenant tables with NULL tenant ids, with the exact count (query as a superuser or BYPASSRLS role)';

CREATE FUNCTION tenant_guard_internal.audit_orphan_tenant_rows()
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

CREATE VIEW tenant_guard.orphan_tenant_rows AS
  SELECT * FROM tenant_guard_internal.audit_orphan_tenant_rows();
COMMENT ON VIEW tenant_guard.orphan_tenant_rows IS
  'rows whose tenant id is not in the registry (see use_registry), per table and tenant id';

-- Foreign keys between two tenant tables that leave the tenant column out,
-- with the number of child rows whose parent belongs to another tenant.
CREATE FUNCTION tenant_guard_internal.tenant_blind_foreign_keys()
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

CREATE FUNCTION tenant_guard_internal.audit_cross_tenant_references()
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

CREATE VIEW tenant_guard.cross_tenant_references AS
  SELECT * FROM tenant_guard_internal.audit_cross_tenant_references();
COMMENT ON VIEW tenant_guard.cross_tenant_references IS
  'foreign keys without the tenant column whose child and parent rows disagree on the tenant';

-- One row per tenant table. `drift` (tenant_guard.protection_drift) lists
-- every way a protected table differs from what protect renders for its
-- recorded options (policies, row-level security flags, default, triggers,
-- permissive policies of its own); `policies_current` is true only when
-- nothing differs, and a drifted table reports phase 'drifted', never
-- 'enforce'. Catalog reads with the caller's rights; every relation and
-- operator qualified (a view resolves them once, at CREATE EXTENSION).
CREATE VIEW tenant_guard.status AS
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

-- The advisor: one row per finding, with runnable SQL as the remedy where
-- there is one. Caller's rights, search_path pinned. Names in objects,
-- details and remedies are built from nspname/relname (format('%I.%I'),
-- %L of that inside a function call), never from regclass output; no
-- regular expression is ever built from a name.
CREATE FUNCTION tenant_guard_internal.advisor_findings()
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

CREATE VIEW tenant_guard.advisor AS
  SELECT * FROM tenant_guard_internal.advisor_findings();
COMMENT ON VIEW tenant_guard.advisor IS
  'one row per finding: severity, code, object, detail, remedy (runnable SQL where there is one)';
