-- Tests protect() on tenant columns with a nondeterministic collation:
-- the rules compare tenant ids in the column's collation, so one that
-- counts ACME and acme as equal would let a token for ACME read acme's
-- rows. protect refuses such a column (42804). Nondeterministic
-- collations need ICU: a build without it runs nothing here
-- (72_collations_1.out).
CREATE EXTENSION tenant_guard;
\set VERBOSITY default
\set SHOW_CONTEXT never
DO $$
BEGIN
  CREATE COLLATION tg_case_blind (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
EXCEPTION WHEN feature_not_supported THEN
  NULL;  -- ICU is not supported in this build
END $$;
SELECT EXISTS (SELECT FROM pg_collation WHERE collname = 'tg_case_blind') AS icu \gset
\if :icu
SELECT 'ACME' = 'acme' COLLATE tg_case_blind AS equal_here;
CREATE TABLE tg_coll_docs (id int PRIMARY KEY, tenant_id text COLLATE tg_case_blind NOT NULL);
SELECT count(*) FROM tenant_guard.protect('tg_coll_docs');
-- Through a domain (the column takes the domain's collation).
CREATE DOMAIN tg_coll_id AS text COLLATE tg_case_blind;
CREATE TABLE tg_coll_notes (id int PRIMARY KEY, tenant_id tg_coll_id NOT NULL);
SELECT count(*) FROM tenant_guard.protect('tg_coll_notes');
-- A deterministic ICU collation compares like the bytes: accepted.
CREATE COLLATION tg_exact (provider = icu, locale = 'und');
CREATE TABLE tg_coll_exact (id int PRIMARY KEY, tenant_id text COLLATE tg_exact NOT NULL);
SELECT count(*) > 0 AS protected FROM tenant_guard.protect('tg_coll_exact');
SELECT count(*) AS protected_tables FROM tenant_guard.protected;
-- A table protected before this rule (recorded here by hand, as an older
-- protect would have): the advisor reports it, high, with the way out.
INSERT INTO tenant_guard.protected (relid, tenant_column, mode, force, rls_was_enabled, rls_was_forced)
VALUES ('tg_coll_docs', 'tenant_id', 'strict', true, false, false);
SELECT severity, code, object, detail, remedy FROM tenant_guard.advisor
 WHERE code = 'nondeterministic_tenant_collation';
DELETE FROM tenant_guard.protected WHERE relid = 'tg_coll_docs'::regclass;
DROP TABLE tg_coll_docs, tg_coll_notes, tg_coll_exact;
DROP DOMAIN tg_coll_id;
DROP COLLATION tg_case_blind;
DROP COLLATION tg_exact;
\endif
DROP EXTENSION tenant_guard;
