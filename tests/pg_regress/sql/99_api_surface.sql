-- Tests that the schema tenant_guard holds the documented API and nothing else
--
-- The API is the table under "### Functions" in README.md's Reference: one
-- row per function, each starting with `tenant_guard.NAME(` (or
-- `PROCEDURE tenant_guard.NAME(`). This spec reads that table from the
-- README itself and compares it with the catalog, so adding a function to
-- tenant_guard without a row in the table, leaving a row for a function
-- that is gone, or a row whose argument types differ from the function's,
-- fails here. How it finds the README: pg_regress (PostgreSQL
-- 15 and later) exports PG_ABS_SRCDIR, the absolute --inputdir
-- (tests/pg_regress), to the psql it runs; psql's \getenv reads it and a
-- backtick command reads ../../README.md from there on the client side (no
-- server file access, no setting of scripts/test involved). Should the file
-- be missing, the variable is empty and every function below is reported
-- as undocumented.
--
-- Everything else (trigger functions, the functions behind the views,
-- selftest's helpers) lives in tenant_guard_internal, where PUBLIC may
-- execute nothing but the two trigger functions.
\getenv abs_srcdir PG_ABS_SRCDIR
\set readme_file :abs_srcdir '/../../README.md'
\set readme `cat :readme_file`
\set VERBOSITY sqlstate
CREATE EXTENSION tenant_guard;

-- The reference table's rows: (name, procedure?, argument list as written).
CREATE TEMP TABLE readme_reference AS
SELECT DISTINCT m[2] AS name, m[1] IS NOT NULL AS is_procedure, m[3] AS args
  FROM regexp_matches(substring(:'readme' FROM '### Functions\n(.*?)\n### '),
                      '(?n)^\| `(PROCEDURE )?tenant_guard\.([a-z_0-9]+)\(([^)]*)\)', 'g') AS m;

-- The README's table was found and is not empty.
SELECT count(*) > 20 AS reference_table_found FROM readme_reference;

-- Functions and procedures in tenant_guard without a row in the README's
-- reference table: none.
SELECT p.proname AS undocumented
  FROM pg_proc p
 WHERE p.pronamespace = 'tenant_guard'::regnamespace
   AND NOT EXISTS (SELECT 1 FROM readme_reference r WHERE r.name = p.proname)
 ORDER BY 1;

-- Rows of the reference table naming nothing in tenant_guard: none.
SELECT r.name AS documented_but_missing
  FROM readme_reference r
 WHERE NOT EXISTS (SELECT 1 FROM pg_proc p
                    WHERE p.pronamespace = 'tenant_guard'::regnamespace AND p.proname = r.name)
 ORDER BY 1;

-- The API: each function as the README names it (function or procedure)
-- and with a COMMENT, so \df+ explains it.
SELECT p.proname, p.prokind,
       (p.prokind = 'p') = r.is_procedure AS kind_as_documented,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS has_comment
  FROM pg_proc p JOIN readme_reference r ON r.name = p.proname
 WHERE p.pronamespace = 'tenant_guard'::regnamespace
 ORDER BY 1;

-- Functions whose argument types differ from the README's signature (each
-- argument written "name type [DEFAULT ...]"; the type as PostgreSQL names
-- it, so timestamptz and timestamp with time zone agree): none.
SELECT p.proname, r.args AS readme_arguments, pg_get_function_identity_arguments(p.oid) AS arguments
  FROM pg_proc p JOIN readme_reference r ON r.name = p.proname
 WHERE p.pronamespace = 'tenant_guard'::regnamespace
   AND coalesce((SELECT string_agg(format_type(t, NULL), ', ' ORDER BY o)
                   FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, o)), '')
       IS DISTINCT FROM
       coalesce((SELECT string_agg(to_regtype(regexp_replace(regexp_replace(a, '\s+DEFAULT\s.*$', ''),
                                                            '^\s*\S+\s+', ''))::text, ', ' ORDER BY o)
                   FROM unnest(string_to_array(nullif(r.args, ''), ',')) WITH ORDINALITY u(a, o)), '')
 ORDER BY 1;

-- tenant_guard_internal: PUBLIC may execute only functions that return
-- trigger (PostgreSQL runs those only as triggers).
SELECT p.proname, p.prorettype::regtype
  FROM pg_proc p
 WHERE p.pronamespace = 'tenant_guard_internal'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY 1;

-- Called directly, they refuse.
SELECT tenant_guard_internal.refuse_truncate();
SELECT tenant_guard_internal.refuse_tenant_change();
SELECT tenant_guard_internal.config_changed();

-- An application role cannot call the machinery.
CREATE ROLE tg_api_app;
SET ROLE tg_api_app;
SELECT tenant_guard_internal.in_protect();
SELECT * FROM tenant_guard_internal.tenant_tables();
SELECT tenant_guard_internal.count_null_tenant_rows('pg_class', 'relname');
RESET ROLE;
DROP ROLE tg_api_app;

DROP EXTENSION tenant_guard;
