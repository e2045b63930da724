-- Tests the DDL helpers' lock discipline (one session: the two-session
-- checks, a helper refused with 55P03 while the application holds a lock,
-- and no deadlock, are in tests/locks/run): the setting, the locks each
-- helper holds when it returns (taken up front, the strongest mode any of
-- its statements takes), that the session's lock_timeout is untouched, the
-- dry runs' per-transaction order (indexes CONCURRENTLY, then attached), and
-- the permissive phase's shared NULL-tenant rows (NOTICE, advisor finding).
CREATE EXTENSION tenant_guard;
\set VERBOSITY default
\set SHOW_CONTEXT never
SHOW tenant_guard.lock_timeout;
-- Any role may set it for its own calls.
CREATE ROLE tg_lk_user;
SET ROLE tg_lk_user;
SET tenant_guard.lock_timeout = '250ms';
SHOW tenant_guard.lock_timeout;
RESET tenant_guard.lock_timeout;
RESET ROLE;

CREATE SCHEMA lk;
CREATE TABLE lk.org (id int PRIMARY KEY, tenant_id text NOT NULL, code text UNIQUE);
CREATE TABLE lk.ticket (id int PRIMARY KEY, org_id int NOT NULL REFERENCES lk.org (id),
                        org_code text REFERENCES lk.org (code), tenant_id text);
INSERT INTO lk.org VALUES (1, 'acme', 'a'), (2, 'globex', 'g');
INSERT INTO lk.ticket VALUES (1, 1, 'a', 'acme'), (2, 2, 'g', 'globex'), (3, 2, NULL, NULL);

-- Locks a helper holds at its end (all taken before its first statement).
CREATE FUNCTION pg_temp.held() RETURNS TABLE (rel name, modes text) LANGUAGE sql AS $$
  SELECT c.relname, string_agg(l.mode, ', ' ORDER BY l.mode)
    FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
   WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
     AND c.relnamespace = 'lk'::regnamespace AND c.relkind IN ('r', 'p')
   GROUP BY 1 ORDER BY 1 $$;

-- The permissive phase: rows without a tenant are shared read-only.
SET lock_timeout = '7s';
BEGIN;
SELECT count(*) FROM tenant_guard.protect('lk.ticket', mode => 'permissive');
SELECT * FROM pg_temp.held();
SHOW lock_timeout;
COMMIT;
SELECT severity, object, detail FROM tenant_guard.advisor WHERE code = 'shared_null_tenant_rows';
UPDATE lk.ticket SET tenant_id = 'globex' WHERE id = 3;
SELECT count(*) AS findings FROM tenant_guard.advisor WHERE code = 'shared_null_tenant_rows';

-- enforce_not_null: ACCESS EXCLUSIVE on the table.
BEGIN;
SELECT count(*) FROM tenant_guard.enforce_not_null('lk.ticket');
SELECT * FROM pg_temp.held();
ROLLBACK;

-- add_tenant_fk: its dry run builds the parent's key and the child's index
-- CONCURRENTLY (run each statement in its own transaction); the real run
-- takes ACCESS EXCLUSIVE on the parent (its new unique key) and SHARE ROW
-- EXCLUSIVE on the child (index, foreign key, validation).
ALTER TABLE lk.ticket ALTER COLUMN tenant_id SET NOT NULL;
SELECT * FROM tenant_guard.add_tenant_fk('lk.ticket', ARRAY['org_id'], 'lk.org', dry_run => true);
BEGIN;
SELECT count(*) FROM tenant_guard.add_tenant_fk('lk.ticket', ARRAY['org_id'], 'lk.org');
SELECT * FROM pg_temp.held();
ROLLBACK;
SHOW lock_timeout;

-- upgrade_foreign_keys: ACCESS EXCLUSIVE on both (dropping the old key
-- drops its triggers on the parent), the parent first.
SELECT * FROM tenant_guard.upgrade_foreign_keys('lk', dry_run => true);
BEGIN;
SELECT count(*) FROM tenant_guard.upgrade_foreign_keys('lk');
SELECT * FROM pg_temp.held();
ROLLBACK;

-- scope_unique: the new key beside the old one, each referencing key moved
-- to it NOT VALID, validated, the old key dropped and the new one renamed.
SELECT * FROM tenant_guard.scope_unique('lk.org', 'org_code_key', dry_run => true);
BEGIN;
SELECT count(*) FROM tenant_guard.scope_unique('lk.org', 'org_code_key');
SELECT * FROM pg_temp.held();
ROLLBACK;

-- rollout: every table of the phase, ACCESS EXCLUSIVE, up front.
BEGIN;
SELECT count(*) FROM tenant_guard.rollout('tighten', 'lk', dry_run => false);
SELECT * FROM pg_temp.held();
ROLLBACK;
SHOW lock_timeout;
RESET lock_timeout;

-- The online way, from psql: the dry run's statements, one per transaction
-- (psql's \gexec runs each result as its own statement; in autocommit mode
-- each is its own transaction, so CONCURRENTLY is allowed).
CREATE SCHEMA ol;
CREATE TABLE ol.org (id int PRIMARY KEY, tenant_id text NOT NULL);
CREATE TABLE ol.ticket (id int PRIMARY KEY, tenant_id text NOT NULL, org_id int REFERENCES ol.org);
INSERT INTO ol.org SELECT g, 't' || g % 3 FROM generate_series(1, 30) g;
INSERT INTO ol.ticket SELECT g, 't' || g % 3, g FROM generate_series(1, 30) g;
SET lock_timeout = '2s';
-- Interrupted: the first build was cancelled and left an invalid index, as
-- a cancelled or failed CREATE INDEX CONCURRENTLY does (simulated here by
-- marking the finished build invalid).
SELECT * FROM tenant_guard.upgrade_foreign_keys('ol', dry_run => true) LIMIT 1 \gexec
UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ol.org_tenant_id_id_key'::regclass;
-- An invalid index enforces nothing, so the next dry run does not count it
-- as the parent's key: it drops it, then builds it again. The rest follows.
SELECT * FROM tenant_guard.upgrade_foreign_keys('ol', dry_run => true);
SELECT * FROM tenant_guard.upgrade_foreign_keys('ol', dry_run => true) \gexec
-- Done: nothing is left to do, the key is composite and validated, and no
-- invalid index remains.
SELECT count(*) AS steps_left FROM tenant_guard.upgrade_foreign_keys('ol', dry_run => true);
SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint
 WHERE conrelid = 'ol.ticket'::regclass AND contype = 'f';
SELECT count(*) AS invalid_indexes FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ol' AND NOT i.indisvalid;
-- The same leftover in a one-call run: dropped under the locks taken up
-- front (ACCESS EXCLUSIVE on the child, whose index it is), then rebuilt.
ALTER TABLE ol.ticket DROP CONSTRAINT ticket_org_id_fkey;
ALTER TABLE ol.ticket ADD CONSTRAINT ticket_org_id_fkey FOREIGN KEY (org_id) REFERENCES ol.org;
UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ol.ticket_tenant_id_org_id_idx'::regclass;
SELECT * FROM tenant_guard.upgrade_foreign_keys('ol', dry_run => true);
BEGIN;
SELECT * FROM tenant_guard.upgrade_foreign_keys('ol');
SELECT c.relname, string_agg(l.mode, ', ' ORDER BY l.mode)
  FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
 WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
   AND c.relnamespace = 'ol'::regnamespace AND c.relkind = 'r'
 GROUP BY 1 ORDER BY 1;
COMMIT;
SELECT count(*) AS invalid_indexes FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ol' AND NOT i.indisvalid;
RESET lock_timeout;
DROP SCHEMA ol CASCADE;

DROP SCHEMA lk CASCADE;
DROP EXTENSION tenant_guard;
DROP ROLE tg_lk_user;
