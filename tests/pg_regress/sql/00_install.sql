-- Tests installing and removing tenant_guard
-- CREATE EXTENSION creates the tenant_guard schema and everything in it;
-- DROP EXTENSION removes all of it again.
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
-- functions are.
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'tenant_guard'
 ORDER BY 1;

-- Volatility: verification reads the clock (volatile); accessors are stable
-- and safe in parallel workers.
SELECT proname, provolatile, proparallel
  FROM pg_proc WHERE pronamespace = 'tenant_guard'::regnamespace
 ORDER BY 1;

DROP EXTENSION tenant_guard;

-- Nothing is left behind.
SELECT count(*) AS leftover_schemas FROM pg_namespace WHERE nspname = 'tenant_guard';
SELECT count(*) AS leftover_functions FROM pg_proc WHERE proname IN ('set_context', 'add_key', 'tenant_id');
