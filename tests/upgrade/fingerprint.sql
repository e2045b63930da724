-- Catalog fingerprint of everything the extension tenant_guard owns, one line
-- per fact, each line starting with its section. No OIDs: two databases with
-- the same extension objects print the same text. Run with psql -X -At.
-- Multi-line texts (function bodies, view definitions) print one line per
-- source line, each prefixed with the object, so a diff names the object.
SET search_path = pg_catalog, pg_temp;

-- An ACL as text with its entries sorted: the order of aclitems carries no
-- meaning (a GRANT appends, a fresh default lists PUBLIC first), their set does.
CREATE FUNCTION pg_temp.acl(a aclitem[]) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT coalesce((SELECT array_agg(i::text ORDER BY i::text) FROM unnest(a) i)::text, '-') $$;

CREATE TEMP VIEW ext_member AS
SELECT d.classid, d.objid, d.objsubid
  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'tenant_guard';

-- Every member object, by description.
SELECT 'member ' || pg_describe_object(classid, objid, objsubid) FROM ext_member ORDER BY 1;

-- The extension row itself.
SELECT 'extension ' || concat_ws(' | ', e.extversion, r.rolname, n.nspname, e.extrelocatable,
         (SELECT string_agg(c::regclass::text, ',' ORDER BY c::regclass::text) FROM unnest(e.extconfig) c),
         array_to_string(e.extcondition, ','), obj_description(e.oid, 'pg_extension'))
  FROM pg_extension e JOIN pg_roles r ON r.oid = e.extowner JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'tenant_guard';
-- Config dump registrations, each table with its condition.
SELECT 'extconfig ' || c.cfg::regclass::text || ' | ' || coalesce(e.extcondition[c.i], '<null>')
  FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY AS c(cfg, i)
 WHERE e.extname = 'tenant_guard' ORDER BY 1;

-- Schemas.
SELECT 'schema ' || concat_ws(' | ', n.nspname, pg_get_userbyid(n.nspowner), pg_temp.acl(n.nspacl),
         obj_description(n.oid, 'pg_namespace'))
  FROM ext_member m JOIN pg_namespace n ON n.oid = m.objid
 WHERE m.classid = 'pg_namespace'::regclass ORDER BY 1;

-- Functions: signature, result, properties, privileges, comment.
CREATE TEMP VIEW ext_proc AS
SELECT p.*, p.oid AS poid, n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS sig,
       l.lanname
  FROM ext_member m JOIN pg_proc p ON p.oid = m.objid
  JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
 WHERE m.classid = 'pg_proc'::regclass;
SELECT 'function ' || concat_ws(' | ', sig,
         'args=' || pg_get_function_arguments(poid), 'result=' || pg_get_function_result(poid),
         'kind=' || prokind::text, 'lang=' || lanname, 'volatile=' || provolatile::text, 'parallel=' || proparallel::text,
         'strict=' || proisstrict, 'secdef=' || prosecdef, 'leakproof=' || proleakproof,
         'retset=' || proretset, 'cost=' || procost, 'rows=' || prorows,
         'owner=' || pg_get_userbyid(proowner), 'config=' || coalesce(proconfig::text, '-'),
         'acl=' || pg_temp.acl(proacl),
         CASE WHEN lanname = 'c' THEN 'c=' || probin || ':' || prosrc END,
         'comment=' || coalesce(obj_description(poid, 'pg_proc'), '-'))
  FROM ext_proc ORDER BY 1;
-- Bodies of SQL and PL/pgSQL functions, line by line.
SELECT 'body ' || sig || ' ' || to_char(ln.n, 'FM0000') || ': ' || ln.line
  FROM ext_proc, regexp_split_to_table(prosrc, E'\n') WITH ORDINALITY AS ln(line, n)
 WHERE lanname <> 'c' ORDER BY sig, ln.n;

-- Relations (tables, views, sequences, ...): kind, flags, privileges, comment.
CREATE TEMP VIEW ext_rel AS
SELECT c.*, c.oid AS coid, n.nspname || '.' || c.relname AS qname
  FROM ext_member m JOIN pg_class c ON c.oid = m.objid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE m.classid = 'pg_class'::regclass;
SELECT 'relation ' || concat_ws(' | ', qname, 'kind=' || relkind::text, 'persistence=' || relpersistence::text,
         'owner=' || pg_get_userbyid(relowner), 'rls=' || relrowsecurity || '/' || relforcerowsecurity,
         'options=' || coalesce(reloptions::text, '-'), 'acl=' || pg_temp.acl(relacl),
         'comment=' || coalesce(obj_description(coid, 'pg_class'), '-'))
  FROM ext_rel ORDER BY 1;
-- Columns in order, with type, NOT NULL, default, identity, privileges, comment.
SELECT 'column ' || concat_ws(' | ', r.qname, to_char(a.attnum, 'FM00') || ' ' || a.attname,
         format_type(a.atttypid, a.atttypmod), 'notnull=' || a.attnotnull,
         'default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-'),
         'identity=' || a.attidentity::text, 'generated=' || a.attgenerated::text,
         'collation=' || coalesce((SELECT collname FROM pg_collation WHERE oid = a.attcollation AND a.attcollation <> 0), '-'),
         'acl=' || pg_temp.acl(a.attacl),
         'comment=' || coalesce(col_description(r.coid, a.attnum), '-'))
  FROM ext_rel r JOIN pg_attribute a ON a.attrelid = r.coid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 ORDER BY r.qname, a.attnum;
-- View definitions, line by line.
SELECT 'view ' || r.qname || ' ' || to_char(ln.n, 'FM0000') || ': ' || ln.line
  FROM ext_rel r, regexp_split_to_table(pg_get_viewdef(r.coid, true), E'\n') WITH ORDINALITY AS ln(line, n)
 WHERE r.relkind IN ('v', 'm') ORDER BY r.qname, ln.n;
-- Constraints of extension tables.
SELECT 'constraint ' || concat_ws(' | ', r.qname, k.conname, k.contype::text, pg_get_constraintdef(k.oid, true),
         'deferrable=' || k.condeferrable, 'validated=' || k.convalidated)
  FROM ext_rel r JOIN pg_constraint k ON k.conrelid = r.coid ORDER BY 1;
-- Indexes of extension tables.
SELECT 'index ' || concat_ws(' | ', r.qname, pg_get_indexdef(i.indexrelid), 'primary=' || i.indisprimary,
         'unique=' || i.indisunique)
  FROM ext_rel r JOIN pg_index i ON i.indrelid = r.coid ORDER BY 1;
-- Triggers on extension tables.
SELECT 'trigger ' || concat_ws(' | ', r.qname, t.tgname, pg_get_triggerdef(t.oid, true), 'enabled=' || t.tgenabled::text)
  FROM ext_rel r JOIN pg_trigger t ON t.tgrelid = r.coid WHERE NOT t.tgisinternal ORDER BY 1;
-- Row-level security policies on extension tables.
SELECT 'policy ' || concat_ws(' | ', r.qname, p.polname, p.polcmd::text, p.polpermissive,
         p.polroles::regrole[]::text, pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
  FROM ext_rel r JOIN pg_policy p ON p.polrelid = r.coid ORDER BY 1;
-- Rules other than views' own.
SELECT 'rule ' || concat_ws(' | ', r.qname, w.rulename, pg_get_ruledef(w.oid, true))
  FROM ext_rel r JOIN pg_rewrite w ON w.ev_class = r.coid WHERE w.rulename <> '_RETURN' ORDER BY 1;

-- Event triggers (every one in the database: only the extension creates any here).
SELECT 'event_trigger ' || concat_ws(' | ', e.evtname, e.evtevent, pg_get_userbyid(e.evtowner),
         e.evtfoid::regprocedure::text, 'enabled=' || e.evtenabled::text, 'tags=' || coalesce(e.evttags::text, '-'),
         'member=' || EXISTS (SELECT 1 FROM ext_member m WHERE m.classid = 'pg_event_trigger'::regclass AND m.objid = e.oid),
         'comment=' || coalesce(obj_description(e.oid, 'pg_event_trigger'), '-'))
  FROM pg_event_trigger e ORDER BY 1;

-- Other member types (types, operators, casts, ...): their comments.
SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ' | ' || d.description
  FROM pg_description d JOIN ext_member m ON m.classid = d.classoid AND m.objid = d.objoid
 WHERE d.classoid NOT IN ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_namespace'::regclass, 'pg_event_trigger'::regclass)
 ORDER BY 1;

-- Initial privileges recorded for the extension's objects (what pg_dump
-- compares ACLs with).
SELECT 'init_privs ' || concat_ws(' | ', pg_describe_object(i.classoid, i.objoid, i.objsubid), i.privtype::text, pg_temp.acl(i.initprivs))
  FROM pg_init_privs i
 WHERE EXISTS (SELECT 1 FROM ext_member m WHERE m.classid = i.classoid AND m.objid = i.objoid)
    OR (i.classoid = 'pg_class'::regclass AND i.objoid IN (SELECT coid FROM ext_rel))
 ORDER BY 1;
