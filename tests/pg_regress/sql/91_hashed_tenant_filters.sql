-- Tests the tenant rule as a filter: tenant_guard.is_visible()
-- Where a plan tests the tenant rule as a filter (a sequential or sample
-- scan, a scan through another index, the inner side of a join),
-- PostgreSQL compares each row with every tenant of the array, element by
-- element. The planner puts tenant_guard.is_visible(column) (is_writable
-- for the write rule) in its place: the same set, built once per
-- statement, hashed once it holds more than eight tenants. Values whose
-- equality is equality of bytes (text under a deterministic collation,
-- uuid, integers, enums) are compared by their bytes; others (numeric,
-- where 5 = 5.0) with the type's own equality and hash. The policies do not
-- change, nor do index conditions. Every context shape must read exactly
-- its tenants, through the filter and through the index.
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('main', decode(repeat('c3', 32), 'hex'));
CREATE ROLE tg_hash_app LOGIN;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- 30 tenants (1 to 30), 3 rows each; numeric ids stored with a scale
-- (5.0), which the tokens write without one ('5'); one text tenant whose id
-- is long enough to be stored compressed. h_vc holds h_text's rows in a
-- varchar column (Rails and Django's default): its rule compares
-- column::text with the array cast to varchar[] and back to text[], casts
-- that change no element.
CREATE TABLE h_text (id int PRIMARY KEY, tenant_id text NOT NULL);
CREATE TABLE h_uuid (id int PRIMARY KEY, tenant_id uuid NOT NULL);
CREATE TABLE h_int (id int PRIMARY KEY, tenant_id bigint NOT NULL);
CREATE TABLE h_num (id int PRIMARY KEY, tenant_id numeric NOT NULL);
CREATE TABLE h_perm (id int PRIMARY KEY, tenant_id text);
CREATE TABLE h_vc (id int PRIMARY KEY, tenant_id varchar(5000) NOT NULL);
INSERT INTO h_int SELECT g, g % 30 + 1 FROM generate_series(1, 90) g;
INSERT INTO h_text SELECT id, 't' || lpad(tenant_id::text, 2, '0') FROM h_int;
INSERT INTO h_text SELECT 100 + g, 'long-' || repeat('x', 4000) FROM generate_series(1, 2) g;
INSERT INTO h_uuid SELECT id, (lpad(tenant_id::text, 8, '0') || '-0000-0000-0000-000000000000')::uuid FROM h_int;
INSERT INTO h_uuid SELECT 100 + g, (lpad((g + 30)::text, 8, '0') || '-0000-0000-0000-000000000000')::uuid FROM generate_series(1, 2) g;
INSERT INTO h_num SELECT id, tenant_id::numeric(6, 1) FROM h_int;
INSERT INTO h_perm SELECT * FROM h_text WHERE id <= 90;
INSERT INTO h_perm VALUES (200, NULL);
INSERT INTO h_vc SELECT * FROM h_text;
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['h_text', 'h_uuid', 'h_int', 'h_num', 'h_perm', 'h_vc'] LOOP
    EXECUTE format('CREATE INDEX ON %I (tenant_id, id)', t);
    PERFORM count(*) FROM tenant_guard.protect(t::regclass, mode => CASE t WHEN 'h_perm' THEN 'permissive' ELSE 'strict' END);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tg_hash_app', t);
    EXECUTE format('ANALYZE %I', t);
  END LOOP;
END $$;
-- The long id is stored compressed.
SELECT pg_column_compression(tenant_id) IS NOT NULL AS compressed FROM h_text WHERE id = 101;

SELECT extract(epoch FROM now())::bigint AS now_s \gset
-- One tenant; twelve tenants (more than eight: hashed), as text, uuid and
-- number ids (the text ones with the long id); a bypass token, which reads
-- the registry's active tenants.
SELECT tenant_guard.sign('{"tenant_id": "t07", "exp": 4102444800}') AS t_one \gset
SELECT tenant_guard.sign(jsonb_build_object('tenant_id', 't01', 'exp', 4102444800,
  'tenants', (SELECT jsonb_agg('t' || lpad(g::text, 2, '0')) FROM generate_series(1, 23, 2) g) || jsonb_build_array('long-' || repeat('x', 4000)))) AS t_many \gset
SELECT tenant_guard.sign(jsonb_build_object('tenant_id', '00000001-0000-0000-0000-000000000000', 'exp', 4102444800,
  'tenants', (SELECT jsonb_agg(lpad(g::text, 8, '0') || '-0000-0000-0000-000000000000') FROM generate_series(1, 23, 2) g)
             || jsonb_build_array('00000031-0000-0000-0000-000000000000'))) AS u_many \gset
SELECT tenant_guard.sign('{"tenant_id": "7", "exp": 4102444800}') AS n_one \gset
SELECT tenant_guard.sign(jsonb_build_object('tenant_id', '1', 'exp', 4102444800,
  'tenants', (SELECT jsonb_agg(g::text) FROM generate_series(1, 23, 2) g))) AS n_many \gset
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'sub', 'support', 'iat', :now_s, 'exp', :now_s + 600)) AS bypass \gset
-- The registry: t01 to t12, t05 inactive (eleven active: hashed).
CREATE TABLE h_reg (id text PRIMARY KEY, active boolean NOT NULL);
INSERT INTO h_reg SELECT 't' || lpad(g::text, 2, '0'), g <> 5 FROM generate_series(1, 12) g;

-- The rows of a table, read through a filter (sequential scan, then a
-- sample scan) and through the tenant index, as tenant lists: all three
-- must agree.
CREATE FUNCTION seen(tbl text) RETURNS TABLE (through text, tenants text)
LANGUAGE plpgsql AS $$
BEGIN
  SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_indexonlyscan = off;
  RETURN QUERY EXECUTE format('SELECT ''filter'', string_agg(DISTINCT left(tenant_id::text, 12), '','') || '' ('' || count(*) || '' rows)'' FROM %I', tbl);
  RETURN QUERY EXECUTE format('SELECT ''sample'', string_agg(DISTINCT left(tenant_id::text, 12), '','') || '' ('' || count(*) || '' rows)'' FROM %I TABLESAMPLE SYSTEM (100)', tbl);
  SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = on; SET LOCAL enable_bitmapscan = on;
  RETURN QUERY EXECUTE format('SELECT ''index'', string_agg(DISTINCT left(tenant_id::text, 12), '','') || '' ('' || count(*) || '' rows)'' FROM %I WHERE tenant_id IS NOT DISTINCT FROM tenant_id', tbl);
  RESET enable_seqscan; RESET enable_indexscan; RESET enable_bitmapscan; RESET enable_indexonlyscan;
END $$;
GRANT EXECUTE ON FUNCTION seen(text) TO tg_hash_app;

SET ROLE tg_hash_app;
-- One tenant, and twelve text tenants (the long one among them).
BEGIN;
SELECT tenant_guard.set_context(:'t_one') IS NOT NULL AS set;
SELECT * FROM seen('h_text');
SELECT * FROM seen('h_perm');
SELECT * FROM seen('h_vc');
SELECT tenant_guard.set_context(:'t_many') IS NOT NULL AS set;
SELECT * FROM seen('h_text');
SELECT * FROM seen('h_perm');
SELECT * FROM seen('h_vc');
ROLLBACK;
-- Bypass through the registry: its eleven active tenants.
RESET ROLE;
SELECT tenant_guard.use_registry('h_reg', active_column => 'active');
SET ROLE tg_hash_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NOT NULL AS set;
SELECT * FROM seen('h_text');
ROLLBACK;
RESET ROLE;
SELECT tenant_guard.use_registry(NULL);
SET ROLE tg_hash_app;
-- Twelve uuid tenants.
BEGIN;
SELECT tenant_guard.set_context(:'u_many') IS NOT NULL AS set;
SELECT * FROM seen('h_uuid');
ROLLBACK;
-- Numbers: bigint compares bytes; numeric compares values (7 = 7.0).
BEGIN;
SELECT tenant_guard.set_context(:'n_one') IS NOT NULL AS set;
SELECT * FROM seen('h_int');
SELECT * FROM seen('h_num');
SELECT tenant_guard.set_context(:'n_many') IS NOT NULL AS set;
SELECT * FROM seen('h_int');
SELECT * FROM seen('h_num');
ROLLBACK;

-- EXPLAIN: the filter calls is_visible (also inside the permissive rule's
-- OR, and on the varchar column, as text); the index condition keeps the
-- policy's array.
BEGIN;
SELECT tenant_guard.set_context(:'t_many') IS NOT NULL AS set;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM h_text;
EXPLAIN (COSTS OFF) SELECT id FROM h_perm;
EXPLAIN (COSTS OFF) SELECT id FROM h_vc;
RESET enable_indexscan;
RESET enable_bitmapscan;
SET LOCAL enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM h_text WHERE tenant_id = 't03';
ROLLBACK;

-- A filter on the inner side of a join, and writes: UPDATE and DELETE read
-- their rows through the write rule (is_writable); a read-only tenant of
-- the set is not written.
BEGIN;
SELECT tenant_guard.set_context(:'t_many') IS NOT NULL AS set;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = off;
SET LOCAL enable_hashjoin = off;
SET LOCAL enable_mergejoin = off;
SELECT count(*) AS joined FROM h_text a JOIN h_perm b ON a.id = b.id;
EXPLAIN (COSTS OFF) UPDATE h_text SET id = id WHERE id < 50;
WITH u AS (UPDATE h_text SET id = id WHERE id < 50 RETURNING tenant_id)
SELECT string_agg(DISTINCT tenant_id, ',') AS updated, count(*) FROM u;
WITH d AS (DELETE FROM h_text WHERE id > 30 RETURNING tenant_id)
SELECT string_agg(DISTINCT left(tenant_id, 8), ',') AS deleted, count(*) FROM d;
EXPLAIN (COSTS OFF) DELETE FROM h_vc WHERE id > 30;
WITH d AS (DELETE FROM h_vc WHERE id > 30 RETURNING tenant_id)
SELECT string_agg(DISTINCT left(tenant_id, 8), ',') AS deleted, count(*) FROM d;
ROLLBACK;

-- A statement prepared (and planned) under twelve tenants, then run under
-- one, then without a context: each run reads its own context's rows.
BEGIN;
SELECT tenant_guard.set_context(:'t_many') IS NOT NULL AS set;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = off;
PREPARE q AS SELECT string_agg(DISTINCT left(tenant_id, 8), ',') AS tenants, count(*) FROM h_text;
EXECUTE q;
SELECT tenant_guard.set_context(:'t_one') IS NOT NULL AS set;
EXECUTE q;
EXECUTE q;
ROLLBACK;
-- Without a context, the filter refuses as the policy's array does.
EXECUTE q;
DEALLOCATE q;

-- Called directly: whether the context reads a value, in the value's type.
BEGIN;
SELECT tenant_guard.set_context(:'n_many') IS NOT NULL AS set;
SELECT tenant_guard.is_visible(3::bigint) AS three, tenant_guard.is_visible(4) AS four,
       tenant_guard.is_visible(3.0) AS three_point_zero, tenant_guard.is_writable(3) AS writes_three,
       tenant_guard.is_writable(1) AS writes_one, tenant_guard.is_visible(NULL::int) AS null_id;
-- The numeric filter compares values (EXPLAIN), and a type without a hash
-- operator class is refused (42883).
SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM h_num;
DO $$
BEGIN
  PERFORM tenant_guard.is_visible(point '(1,1)');
EXCEPTION WHEN undefined_function THEN
  RAISE NOTICE 'refused (%): %', SQLSTATE, SQLERRM;
END $$;
ROLLBACK;
RESET ROLE;

DROP TABLE h_text, h_uuid, h_int, h_num, h_perm, h_vc, h_reg;
DROP FUNCTION seen(text);
DROP EXTENSION tenant_guard;
DROP ROLE tg_hash_app;
