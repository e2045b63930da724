-- Tests installing and removing tenant_guard
-- CREATE EXTENSION creates the schemas tenant_guard (the API) and
-- tenant_guard_internal (the machinery) and everything in them; DROP
-- EXTENSION removes all of it again.
CREATE EXTENSION tenant_guard;

SELECT tenant_guard.version() = extversion AS version_matches
  FROM pg_extension WHERE extname = 'tenant_guard';

-- Every object the extension owns.
SELECT pg_describe_object(classid, objid, 0) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tenant_guard')
   AND deptype = 'e'
   AND classid <> 'pg_type'::regclass  -- row types: listed from PostgreSQL 18 on
 ORDER BY 1;

-- Administrative functions are not executable by PUBLIC; the context
-- functions are. In tenant_guard_internal only the two trigger functions
-- are (a table's owner creates the triggers through protect; PostgreSQL
-- runs them only as triggers).
SELECT n.nspname, p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('tenant_guard', 'tenant_guard_internal')
 ORDER BY 1, 2;

-- Both schemas: USAGE for PUBLIC, CREATE for nobody but their owner.
SELECT nspname, has_schema_privilege('public', oid, 'USAGE') AS public_usage,
       has_schema_privilege('public', oid, 'CREATE') AS public_create
  FROM pg_namespace WHERE nspname IN ('tenant_guard', 'tenant_guard_internal')
 ORDER BY 1;

-- Volatility: verification reads the clock (volatile); accessors are stable
-- and safe in parallel workers.
SELECT pronamespace::regnamespace AS schema, proname, provolatile, proparallel
  FROM pg_proc WHERE pronamespace IN ('tenant_guard'::regnamespace, 'tenant_guard_internal'::regnamespace)
 ORDER BY 1::text, 2;

DROP EXTENSION tenant_guard;

-- Nothing is left behind.
SELECT count(*) AS leftover_schemas FROM pg_namespace WHERE nspname IN ('tenant_guard', 'tenant_guard_internal');
SELECT count(*) AS leftover_functions FROM pg_proc WHERE proname IN ('set_context', 'add_key', 'tenant_id');
