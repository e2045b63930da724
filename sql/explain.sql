-- tenant_guard.explain_access: why a row is (not) visible or writable.
--
-- Runs with the caller's rights only (SECURITY INVOKER, no privileged SQL):
-- it counts rows through the caller's own queries, so row-level security
-- applies to them as to any query of the caller, and an application role
-- learns nothing about rows its context cannot read. The filter is the
-- caller's own SQL, run as the caller. Catalog reads are pinned
-- (search_path = pg_catalog, pg_temp); the table is named from
-- nspname/relname with %I, its tenant column from tenant_guard.protected.
-- A superuser is the expected caller, so nothing here may run code of the
-- table's owner: only tables and partitioned tables are counted (a view
-- or foreign table would run its owner's code), and the tenant sets are
-- cast to the column's built-in base type, never to a domain or another
-- type a role may have made (a domain's CHECK would run as the caller).
--
-- With a token (verified by set_context) or a tenant (as_tenant, for its
-- callers only), it explains under that context, inside a block that is
-- rolled back at its end: the caller's context comes back exactly (value,
-- transaction-local or session), also when the token is refused.
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
