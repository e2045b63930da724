-- tenant_guard: audit views and the advisor.
--
-- They look at the data, not only the schema, and they read as the caller:
-- query them as a superuser or a role with BYPASSRLS (row-level security
-- would otherwise hide exactly the dirty rows they count). Every identifier
-- is quoted with format('%I') / regclass output; counts are exact.

-- Tenant tables: every table with the column named by tenant_guard.tenant_column
-- (outside system schemas and this extension), plus every table protected
-- with a column of its own. Partitions are counted through their parent.
CREATE FUNCTION tenant_guard.tenant_tables()
RETURNS TABLE (table_name regclass, tenant_column name)
LANGUAGE sql STABLE AS $$
  -- No SET clause, so the planner can inline it; catalog names resolve in
  -- pg_catalog first whatever the caller's search_path.
  SELECT c.oid::regclass, a.attname
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid
                       AND a.attname = coalesce(nullif(current_setting('tenant_guard.tenant_column', true), ''), 'tenant_id')
                       AND a.attnum > 0 AND NOT a.attisdropped
   WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
     AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_guard', 'pg_toast')
     AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
  UNION
  SELECT p.relid, p.tenant_column FROM tenant_guard.protected p
   WHERE p.parent IS NULL
$$;

CREATE FUNCTION tenant_guard.audit_null_tenant_rows()
RETURNS TABLE (table_name regclass, tenant_column name, null_rows bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE t record; n bigint;
BEGIN
  -- NOT NULL columns are skipped without a scan; the others are counted
  -- with the same query one would write by hand (an index on the tenant
  -- column serves IS NULL).
  FOR t IN SELECT tt.table_name, tt.tenant_column
             FROM tenant_guard.tenant_tables() tt
             JOIN pg_attribute a ON a.attrelid = tt.table_name AND a.attname = tt.tenant_column
            WHERE NOT a.attnotnull
            ORDER BY tt.table_name::text LOOP
    EXECUTE format('SELECT count(*) FROM %s WHERE %I IS NULL', t.table_name, t.tenant_column) INTO n;
    IF n > 0 THEN
      table_name := t.table_name; tenant_column := t.tenant_column; null_rows := n;
      RETURN NEXT;
    END IF;
  END LOOP;
END $$;

CREATE VIEW tenant_guard.null_tenant_rows AS
  SELECT * FROM tenant_guard.audit_null_tenant_rows();
COMMENT ON VIEW tenant_guard.null_tenant_rows IS
  'tenant tables with NULL tenant ids, with the exact count (query as a superuser or BYPASSRLS role)';

CREATE FUNCTION tenant_guard.audit_orphan_tenant_rows()
RETURNS TABLE (table_name regclass, tenant_column name, tenant_id text, "rows" bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE t record; reg tenant_guard.registry; same_type boolean;
BEGIN
  SELECT * INTO reg FROM tenant_guard.registry;
  IF NOT FOUND THEN RETURN; END IF;   -- orphans need a registry to be orphans of
  FOR t IN SELECT * FROM tenant_guard.tenant_tables() tt ORDER BY tt.table_name::text LOOP
    SELECT ta.atttypid = ra.atttypid INTO same_type
      FROM pg_attribute ta, pg_attribute ra
     WHERE ta.attrelid = t.table_name AND ta.attname = t.tenant_column
       AND ra.attrelid = reg.tenant_table AND ra.attname = reg.id_column;
    -- An anti-join against the registry, in the column's own type when the
    -- types agree (so the registry's key index serves it).
    RETURN QUERY EXECUTE format(
      'SELECT %L::regclass, %L::name, x.%I::text, count(*) FROM %s x
        WHERE x.%I IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM %s r WHERE %s)
        GROUP BY 3 ORDER BY 3',
      t.table_name, t.tenant_column, t.tenant_column, t.table_name, t.tenant_column,
      reg.tenant_table,
      CASE WHEN same_type THEN format('r.%I = x.%I', reg.id_column, t.tenant_column)
           ELSE format('r.%I::text = x.%I::text', reg.id_column, t.tenant_column) END);
  END LOOP;
END $$;

CREATE VIEW tenant_guard.orphan_tenant_rows AS
  SELECT * FROM tenant_guard.audit_orphan_tenant_rows();
COMMENT ON VIEW tenant_guard.orphan_tenant_rows IS
  'rows whose tenant id is not in the registry (see use_registry), per table and tenant id';

-- Foreign keys between two tenant tables that leave the tenant column out,
-- with the number of child rows whose parent belongs to another tenant.
CREATE FUNCTION tenant_guard.tenant_blind_foreign_keys()
RETURNS TABLE (constraint_oid oid, child_table regclass, constraint_name name, parent_table regclass,
               child_tenant name, parent_tenant name, child_columns name[], parent_columns name[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT k.oid, k.conrelid::regclass, k.conname, k.confrelid::regclass, ct.tenant_column, pt.tenant_column,
         ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, o)
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o),
         ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, o)
                 JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.o)
    FROM pg_constraint k
    JOIN tenant_guard.tenant_tables() ct ON ct.table_name = k.conrelid
    JOIN tenant_guard.tenant_tables() pt ON pt.table_name = k.confrelid
   WHERE k.contype = 'f' AND k.conparentid = 0
     AND NOT EXISTS (SELECT 1 FROM unnest(k.conkey) u(n)
                       JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n
                      WHERE a.attname = ct.tenant_column)
$$;

CREATE FUNCTION tenant_guard.audit_cross_tenant_references()
RETURNS TABLE (child_table regclass, constraint_name name, parent_table regclass, mismatched_rows bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE f record; n bigint;
BEGIN
  FOR f IN SELECT * FROM tenant_guard.tenant_blind_foreign_keys() b ORDER BY b.child_table::text, b.constraint_name LOOP
    EXECUTE format('SELECT count(*) FROM %s c JOIN %s p ON %s WHERE c.%I <> p.%I',
                   f.child_table, f.parent_table,
                   (SELECT string_agg(format('p.%I = c.%I', pc, cc), ' AND ')
                      FROM unnest(f.child_columns, f.parent_columns) u(cc, pc)),
                   f.child_tenant, f.parent_tenant) INTO n;
    IF n > 0 THEN
      child_table := f.child_table; constraint_name := f.constraint_name;
      parent_table := f.parent_table; mismatched_rows := n;
      RETURN NEXT;
    END IF;
  END LOOP;
END $$;

CREATE VIEW tenant_guard.cross_tenant_references AS
  SELECT * FROM tenant_guard.audit_cross_tenant_references();
COMMENT ON VIEW tenant_guard.cross_tenant_references IS
  'foreign keys without the tenant column whose child and parent rows disagree on the tenant';

CREATE VIEW tenant_guard.status AS
SELECT t.table_name,
       t.tenant_column,
       NOT a.attnotnull AS nullable,
       c.relrowsecurity AS rls_enabled,
       c.relforcerowsecurity AS rls_forced,
       (SELECT count(*) FROM pg_policy pol WHERE pol.polrelid = t.table_name
           AND pol.polname IN ('tenant_guard_access', 'tenant_guard_select', 'tenant_guard_insert',
                               'tenant_guard_update', 'tenant_guard_delete'))::int AS policies,
       p.relid IS NOT NULL AND c.relrowsecurity
         AND (SELECT count(*) FROM pg_policy pol WHERE pol.polrelid = t.table_name
                 AND pol.polname IN ('tenant_guard_access', 'tenant_guard_select', 'tenant_guard_insert',
                                     'tenant_guard_update', 'tenant_guard_delete')) = 5 AS policies_current,
       p.mode,
       (SELECT count(*) FROM pg_constraint k WHERE k.contype = 'f' AND k.conrelid = t.table_name
           AND a.attnum = ANY (k.conkey))::int AS composite_fks,
       (SELECT count(*) FROM tenant_guard.tenant_blind_foreign_keys() b
         WHERE b.child_table = t.table_name)::int AS tenant_blind_fks,
       CASE
         WHEN p.relid IS NULL THEN 'none'
         WHEN p.mode = 'strict' AND c.relforcerowsecurity AND a.attnotnull
              AND NOT EXISTS (SELECT 1 FROM tenant_guard.tenant_blind_foreign_keys() b
                               WHERE b.child_table = t.table_name) THEN 'enforce'
         WHEN p.mode = 'strict' THEN 'tighten'
         ELSE 'prepare'
       END AS phase
  FROM tenant_guard.tenant_tables() t
  JOIN pg_class c ON c.oid = t.table_name
  JOIN pg_attribute a ON a.attrelid = t.table_name AND a.attname = t.tenant_column
  LEFT JOIN tenant_guard.protected p ON p.relid = t.table_name;
COMMENT ON VIEW tenant_guard.status IS
  'one row per tenant table: column, nullability, row-level security, policies, keys and rollout phase reached';

-- The advisor: one row per finding, with runnable SQL as the remedy where
-- there is one.
CREATE FUNCTION tenant_guard.advisor_findings()
RETURNS TABLE (severity text, code text, object text, detail text, remedy text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE col name := coalesce(nullif(current_setting('tenant_guard.tenant_column', true), ''), 'tenant_id');
BEGIN
  -- Tenant tables never protected.
  RETURN QUERY
  SELECT 'high', 'unprotected_tenant_table', t.table_name::text,
         format('%s has the tenant column %I but no tenant_guard protection', t.table_name, t.tenant_column),
         format('SELECT * FROM tenant_guard.protect(%L, tenant_column => %L);', t.table_name::text, t.tenant_column)
    FROM tenant_guard.tenant_tables() t
   WHERE NOT EXISTS (SELECT 1 FROM tenant_guard.protected p WHERE p.relid = t.table_name)
   ORDER BY 3;

  -- Row-level security switched off, or not forced, on a tenant table.
  RETURN QUERY
  SELECT 'high', 'rls_disabled', t.table_name::text,
         format('row-level security is off on %s: every role with SELECT sees every tenant', t.table_name),
         format('SELECT * FROM tenant_guard.protect(%L, tenant_column => %L);', t.table_name::text, t.tenant_column)
    FROM tenant_guard.tenant_tables() t JOIN pg_class c ON c.oid = t.table_name
   WHERE NOT c.relrowsecurity
     AND EXISTS (SELECT 1 FROM tenant_guard.protected p WHERE p.relid = t.table_name)
   ORDER BY 3;
  RETURN QUERY
  SELECT 'medium', 'rls_not_forced', t.table_name::text,
         format('row-level security on %s is not forced: its owner %I bypasses every policy',
                t.table_name, pg_get_userbyid(c.relowner)),
         format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', t.table_name)
    FROM tenant_guard.tenant_tables() t JOIN pg_class c ON c.oid = t.table_name
   WHERE c.relrowsecurity AND NOT c.relforcerowsecurity
   ORDER BY 3;

  -- Row-level security on, but no restrictive policy: permissive policies
  -- OR together, so any USING (true) opens the table.
  RETURN QUERY
  SELECT 'high', 'no_restrictive_policy', t.table_name::text,
         format('%s has row-level security but no restrictive policy holding the tenant rule', t.table_name),
         format('SELECT * FROM tenant_guard.protect(%L, tenant_column => %L);', t.table_name::text, t.tenant_column)
    FROM tenant_guard.tenant_tables() t JOIN pg_class c ON c.oid = t.table_name
   WHERE c.relrowsecurity
     AND NOT EXISTS (SELECT 1 FROM pg_policy pol WHERE pol.polrelid = t.table_name AND NOT pol.polpermissive)
   ORDER BY 3;

  -- Policies that trust a setting any session can change.
  RETURN QUERY
  SELECT 'high', 'policy_trusts_setting', format('%s on %s', pol.polname, pol.polrelid::regclass),
         format('policy %I trusts a setting any session can SET: %s', pol.polname,
                coalesce(pg_get_expr(pol.polqual, pol.polrelid), pg_get_expr(pol.polwithcheck, pol.polrelid))),
         format('DROP POLICY %I ON %s;  -- after tenant_guard.protect(%L)', pol.polname, pol.polrelid::regclass,
                pol.polrelid::regclass::text)
    FROM pg_policy pol
   WHERE concat(pg_get_expr(pol.polqual, pol.polrelid), ' ', pg_get_expr(pol.polwithcheck, pol.polrelid))
         ~ 'current_setting\(''(?!tenant_guard\.)'
   ORDER BY 3;

  -- Nullable tenant columns.
  RETURN QUERY
  SELECT 'medium', 'nullable_tenant_column', format('%s.%I', t.table_name, t.tenant_column),
         format('%s.%I allows NULL: rows without a tenant', t.table_name, t.tenant_column),
         format('SELECT * FROM tenant_guard.enforce_not_null(%L, tenant_column => %L);', t.table_name::text, t.tenant_column)
    FROM tenant_guard.tenant_tables() t
    JOIN pg_attribute a ON a.attrelid = t.table_name AND a.attname = t.tenant_column
   WHERE NOT a.attnotnull
   ORDER BY 3;

  -- Unique constraints and indexes (other than the primary key) that leave
  -- the tenant out: a duplicate error tells a tenant another tenant's value.
  RETURN QUERY
  SELECT 'medium', 'tenant_blind_unique', format('%s on %s', ic.relname, t.table_name),
         format('unique %s on %s does not include %I: a duplicate reveals another tenant''s value',
                CASE WHEN k.oid IS NULL THEN 'index' ELSE 'constraint' END, t.table_name, t.tenant_column),
         format('SELECT * FROM tenant_guard.scope_unique(%L, %L, tenant_column => %L);',
                t.table_name::text, coalesce(k.conname, ic.relname), t.tenant_column)
    FROM tenant_guard.tenant_tables() t
    JOIN pg_index i ON i.indrelid = t.table_name AND i.indisunique AND NOT i.indisprimary
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_attribute a ON a.attrelid = t.table_name AND a.attname = t.tenant_column
    LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.contype = 'u'
   WHERE NOT (a.attnum = ANY (i.indkey))
   ORDER BY 3;

  -- Foreign keys between tenant tables without the tenant column.
  RETURN QUERY
  SELECT 'high', 'tenant_blind_fk', format('%s on %s', b.constraint_name, b.child_table),
         format('%s references %s without the tenant column: a row can point at another tenant''s row',
                b.child_table, b.parent_table),
         format('SELECT * FROM tenant_guard.add_tenant_fk(%L, %L, %L, %L, tenant_column => %L);',
                b.child_table::text, b.child_columns::text, b.parent_table::text, b.parent_columns::text, b.child_tenant)
    FROM tenant_guard.tenant_blind_foreign_keys() b
   ORDER BY 3;

  -- No index led by the tenant column: every tenant query scans.
  RETURN QUERY
  SELECT 'low', 'no_tenant_index', t.table_name::text,
         format('no index on %s starts with %I', t.table_name, t.tenant_column),
         format('CREATE INDEX ON %s (%I);', t.table_name, t.tenant_column)
    FROM tenant_guard.tenant_tables() t
    JOIN pg_attribute a ON a.attrelid = t.table_name AND a.attname = t.tenant_column
   WHERE NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.table_name AND i.indkey[0] = a.attnum)
   ORDER BY 3;

  -- Views over protected tables that run as their owner.
  RETURN QUERY
  SELECT DISTINCT 'high', 'view_without_security_invoker', v.oid::regclass::text,
         format('view %s reads %s with its owner''s rights, so row-level security is checked against the owner',
                v.oid::regclass, d.refobjid::regclass),
         format('ALTER VIEW %s SET (security_invoker = true);', v.oid::regclass)
    FROM pg_class v
    JOIN pg_rewrite r ON r.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
    JOIN tenant_guard.protected p ON p.relid = d.refobjid
   WHERE v.relkind = 'v' AND v.oid <> d.refobjid
     AND NOT coalesce(v.reloptions @> ARRAY['security_invoker=true']
                      OR v.reloptions @> ARRAY['security_invoker=on'], false)
   ORDER BY 3;

  -- Materialized views over protected tables (they have no row-level security).
  RETURN QUERY
  SELECT DISTINCT 'high', 'materialized_view_exposes_tenants', v.oid::regclass::text,
         format('materialized view %s holds rows of %s without row-level security', v.oid::regclass, d.refobjid::regclass),
         format('REVOKE ALL ON %s FROM PUBLIC;', v.oid::regclass)
    FROM pg_class v
    JOIN pg_rewrite r ON r.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
    JOIN tenant_guard.protected p ON p.relid = d.refobjid
   WHERE v.relkind = 'm'
   ORDER BY 3;

  -- Foreign tables with the tenant column (no row-level security there either).
  RETURN QUERY
  SELECT 'medium', 'foreign_table_with_tenant_column', c.oid::regclass::text,
         format('foreign table %s has the tenant column %I but cannot have row-level security', c.oid::regclass, col),
         NULL::text
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = col AND NOT a.attisdropped
   WHERE c.relkind = 'f'
   ORDER BY 3;

  -- SECURITY DEFINER functions that name a protected table: they read it
  -- with their owner's rights.
  RETURN QUERY
  SELECT DISTINCT 'high', 'security_definer_reads_tenant_table', f.oid::regprocedure::text,
         format('SECURITY DEFINER function %s mentions %s and runs as %I', f.oid::regprocedure, p.relid,
                pg_get_userbyid(f.proowner)),
         format('ALTER FUNCTION %s SECURITY INVOKER;', f.oid::regprocedure)
    FROM pg_proc f
    JOIN pg_namespace n ON n.oid = f.pronamespace
    JOIN tenant_guard.protected p ON f.prosrc ~* ('\m' || (SELECT relname FROM pg_class WHERE oid = p.relid) || '\M')
   WHERE f.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_guard')
   ORDER BY 3;

  -- User LEAKPROOF functions run before row-level security filters.
  RETURN QUERY
  SELECT 'medium', 'user_leakproof_function', f.oid::regprocedure::text,
         format('%s is LEAKPROOF: it runs on rows before the tenant filter', f.oid::regprocedure),
         format('ALTER FUNCTION %s NOT LEAKPROOF;', f.oid::regprocedure)
    FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace
   WHERE f.proleakproof AND n.nspname NOT IN ('pg_catalog', 'information_schema')
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
  SELECT 'high', 'login_role_owns_tenant_table', p.relid::text,
         format('%s is owned by login role %I, which can disable its row-level security', p.relid, r.rolname),
         format('ALTER TABLE %s OWNER TO <a NOLOGIN owner role>;', p.relid)
    FROM tenant_guard.protected p JOIN pg_class c ON c.oid = p.relid JOIN pg_roles r ON r.oid = c.relowner
   WHERE r.rolcanlogin AND NOT r.rolsuper AND p.parent IS NULL
   ORDER BY 3;

  -- TRUNCATE ignores row-level security.
  RETURN QUERY
  SELECT 'medium', 'truncate_granted', format('%s to %s', p.relid, g.grantee),
         format('%s may TRUNCATE %s, which ignores row-level security (tenant_guard refuses it under a context)',
                g.grantee, p.relid),
         format('REVOKE TRUNCATE ON %s FROM %s;', p.relid,
                CASE WHEN g.grantee = 'PUBLIC' THEN 'PUBLIC' ELSE quote_ident(g.grantee) END)
    FROM tenant_guard.protected p
    JOIN pg_class c ON c.oid = p.relid
    CROSS JOIN LATERAL (
      SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END AS grantee
        FROM aclexplode(c.relacl) x
       WHERE x.privilege_type = 'TRUNCATE' AND x.grantee <> c.relowner) g
   ORDER BY 3;

  -- Partitions of protected tables that are not protected themselves.
  RETURN QUERY
  SELECT 'high', 'unprotected_partition', i.inhrelid::regclass::text,
         format('partition %s of protected %s has no tenant policies; named directly it shows every tenant',
                i.inhrelid::regclass, p.relid),
         format('SELECT * FROM tenant_guard.protect(%L, tenant_column => %L);', i.inhrelid::regclass::text, p.tenant_column)
    FROM tenant_guard.protected p
    JOIN pg_inherits i ON i.inhparent = p.relid
   WHERE NOT EXISTS (SELECT 1 FROM tenant_guard.protected q WHERE q.relid = i.inhrelid)
   ORDER BY 3;
END $$;

CREATE VIEW tenant_guard.advisor AS
  SELECT * FROM tenant_guard.advisor_findings();
COMMENT ON VIEW tenant_guard.advisor IS
  'one row per finding: severity, code, object, detail, remedy (runnable SQL where there is one)';
