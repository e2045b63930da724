-- Tests the committing backfill (CALL tenant_guard.backfill and its batch
-- function tenant_guard.backfill_batch): it fills every row across several
-- batches, committing each; a driver stopped after a few batches, and a
-- CALL that fails half-way, leave their finished batches committed, and a
-- second CALL finishes with exact counts, no row updated twice; a batch that
-- hits 40P01 or 55P03 is retried; inside a transaction block it fails before
-- changing anything; it runs the table owner's trigger as the owner, and
-- refuses what backfill_tenant refuses (a role restricted by row-level
-- security; a parent of another owner whose policy would run as the child's
-- owner).
CREATE EXTENSION tenant_guard;
-- Terse: the progress NOTICEs carry rates and timings in their DETAIL.
\set VERBOSITY terse
\set SHOW_CONTEXT never
CREATE ROLE tg_bf_app LOGIN;
CREATE ROLE tg_bf_restricted LOGIN;
GRANT CREATE ON SCHEMA public TO tg_bf_app;
-- Code of the application that runs as anyone but tg_bf_app advances this.
CREATE SEQUENCE tg_bf_escalations;
-- Failures the application's trigger simulates, each once (sequences
-- survive the rollback of the failed batch).
CREATE SEQUENCE tg_bf_deadlock_once;
CREATE SEQUENCE tg_bf_lock_timeout_once;
GRANT USAGE, SELECT, UPDATE ON SEQUENCE tg_bf_escalations, tg_bf_deadlock_once, tg_bf_lock_timeout_once TO PUBLIC;

SET ROLE tg_bf_app;
CREATE TABLE tg_bf_parent (id int PRIMARY KEY, tenant_id text) WITH (autovacuum_enabled = false);
CREATE TABLE tg_bf_child (id int PRIMARY KEY, tenant_id text,
                          parent_id int CONSTRAINT tg_bf_child_parent_fk REFERENCES tg_bf_parent (id),
                          updates int NOT NULL DEFAULT 0)
  WITH (autovacuum_enabled = false);
-- A row that makes a batch fail (a crash half-way through a CALL).
CREATE TABLE tg_bf_crash_at (id int);
CREATE FUNCTION tg_bf_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_user::text <> 'tg_bf_app' THEN
    PERFORM nextval('public.tg_bf_escalations');
  END IF;
  IF EXISTS (SELECT FROM public.tg_bf_crash_at c WHERE c.id = NEW.id) THEN
    RAISE EXCEPTION 'simulated crash at row %', NEW.id;
  END IF;
  IF NEW.id = 1501 AND nextval('public.tg_bf_deadlock_once') = 1 THEN
    RAISE EXCEPTION 'simulated deadlock' USING ERRCODE = 'deadlock_detected';
  END IF;
  IF NEW.id = 1801 AND nextval('public.tg_bf_lock_timeout_once') = 1 THEN
    RAISE EXCEPTION 'simulated lock timeout' USING ERRCODE = 'lock_not_available';
  END IF;
  NEW.updates := OLD.updates + 1;
  RETURN NEW;
END $$;
CREATE TRIGGER tg_bf_on_update BEFORE UPDATE ON tg_bf_child FOR EACH ROW EXECUTE FUNCTION tg_bf_on_update();
-- 50 parents, the last without a tenant; 2,000 children, every 100th
-- without a parent: 1,940 rows can be filled, 60 cannot.
INSERT INTO tg_bf_parent SELECT g, CASE WHEN g < 50 THEN 't' || (g % 5) END FROM generate_series(1, 50) g;
INSERT INTO tg_bf_child (id, parent_id)
  SELECT g, CASE WHEN g % 100 <> 0 THEN 1 + g % 50 END FROM generate_series(1, 2000) g;
RESET ROLE;

-- A driver that runs two batches and stops (killed): the first call
-- analyzes the never-analyzed child to size its batches and counts the rows
-- with no tenant.
SELECT rows_updated, next_block, null_rows
  FROM tenant_guard.backfill_batch('tg_bf_child', 'tg_bf_child_parent_fk', 0, 300) \gset first_
SELECT :first_rows_updated AS rows_updated, :first_next_block AS next_block, :first_null_rows AS null_rows;
SELECT rows_updated, next_block, null_rows, null_rows_left, fillable_rows_left
  FROM tenant_guard.backfill_batch('tg_bf_child', 'tg_bf_child_parent_fk', :first_next_block, 300);
SELECT count(*) FILTER (WHERE tenant_id IS NOT NULL) AS filled, max(updates) AS max_updates FROM tg_bf_child;

-- A CALL that fails half-way (the application's trigger raises on row
-- 1201): the batches before it stay committed.
INSERT INTO tg_bf_crash_at VALUES (1201);
CALL tenant_guard.backfill('tg_bf_child', 'tg_bf_child_parent_fk', batch_size => 300);
SELECT count(*) FILTER (WHERE tenant_id IS NOT NULL) AS filled, max(updates) AS max_updates FROM tg_bf_child;
SELECT tenant_id IS NULL AS crash_row_still_null FROM tg_bf_child WHERE id = 1201;

-- Run again: it continues where it stopped. The batch holding row 1501
-- fails once with 40P01 and the one holding row 1801 once with 55P03: both
-- are retried.
DELETE FROM tg_bf_crash_at;
CALL tenant_guard.backfill('tg_bf_child', 'tg_bf_child_parent_fk', batch_size => 300);
SELECT (SELECT last_value > 1 FROM tg_bf_deadlock_once) AS deadlock_retried,
       (SELECT last_value > 1 FROM tg_bf_lock_timeout_once) AS lock_timeout_retried;
-- Exact counts: every fillable row filled from its parent, once.
SELECT count(*) FILTER (WHERE c.tenant_id IS NOT DISTINCT FROM p.tenant_id AND c.tenant_id IS NOT NULL) AS filled_right,
       count(*) FILTER (WHERE c.tenant_id IS NULL) AS still_null,
       count(*) FILTER (WHERE c.tenant_id IS NOT NULL AND c.tenant_id IS DISTINCT FROM p.tenant_id) AS filled_wrong,
       max(c.updates) AS max_updates, sum(c.updates) AS updates
  FROM tg_bf_child c LEFT JOIN tg_bf_parent p ON p.id = c.parent_id;

-- Nothing left: a third CALL fills nothing.
CALL tenant_guard.backfill('tg_bf_child', 'tg_bf_child_parent_fk', batch_size => 300);

-- Inside a transaction block it cannot commit: 2D000 before any batch.
SET ROLE tg_bf_app;
UPDATE tg_bf_child SET tenant_id = NULL WHERE id = 7;
RESET ROLE;
BEGIN;
CALL tenant_guard.backfill('tg_bf_child', 'tg_bf_child_parent_fk');
ROLLBACK;
SELECT tenant_id IS NULL AS row_7_still_null FROM tg_bf_child WHERE id = 7;
CALL tenant_guard.backfill('tg_bf_child', 'tg_bf_child_parent_fk');
SELECT tenant_id, updates FROM tg_bf_child WHERE id = 7;

-- Bad arguments.
\set VERBOSITY sqlstate
SELECT * FROM tenant_guard.backfill_batch('tg_bf_child', 'tg_bf_child_parent_fk', -1);
SELECT * FROM tenant_guard.backfill_batch('tg_bf_child', 'tg_bf_child_parent_fk', 0, 0);
SELECT * FROM tenant_guard.backfill_batch('tg_bf_child', 'no_such_constraint');
SELECT * FROM tenant_guard.backfill_batch('tg_bf_child', 'tg_bf_child_pkey');

-- Not for PUBLIC; a role granted both may run it, but not when row-level
-- security restricts it on the child (it fills every tenant's rows).
SET ROLE tg_bf_restricted;
CALL tenant_guard.backfill('tg_bf_child', 'tg_bf_child_parent_fk');
RESET ROLE;
GRANT EXECUTE ON PROCEDURE tenant_guard.backfill(regclass, text, integer, text, integer) TO tg_bf_restricted;
GRANT EXECUTE ON FUNCTION tenant_guard.backfill_batch(regclass, text, bigint, integer, text) TO tg_bf_restricted;
GRANT SELECT, UPDATE ON tg_bf_child, tg_bf_parent TO tg_bf_restricted;
ALTER TABLE tg_bf_child ENABLE ROW LEVEL SECURITY;
CREATE POLICY tg_bf_own ON tg_bf_child USING (tenant_id = 't1');
SET ROLE tg_bf_app;
UPDATE tg_bf_child SET tenant_id = NULL WHERE id = 7;
SET ROLE tg_bf_restricted;
CALL tenant_guard.backfill('tg_bf_child', 'tg_bf_child_parent_fk');
RESET ROLE;
ALTER TABLE tg_bf_child DISABLE ROW LEVEL SECURITY;
SET ROLE tg_bf_restricted;
\set VERBOSITY terse
CALL tenant_guard.backfill('tg_bf_child', 'tg_bf_child_parent_fk');
RESET ROLE;
SELECT tenant_id, updates FROM tg_bf_child WHERE id = 7;

-- A partitioned child (ctids repeat across partitions): every row filled,
-- once.
SET ROLE tg_bf_app;
CREATE TABLE tg_bf_pchild (id int, tenant_id text,
                           parent_id int CONSTRAINT tg_bf_pchild_parent_fk REFERENCES tg_bf_parent (id),
                           updates int NOT NULL DEFAULT 0)
  PARTITION BY RANGE (id);
CREATE TABLE tg_bf_pchild_1 PARTITION OF tg_bf_pchild FOR VALUES FROM (0) TO (1000) WITH (autovacuum_enabled = false);
CREATE TABLE tg_bf_pchild_2 PARTITION OF tg_bf_pchild FOR VALUES FROM (1000) TO (3000) WITH (autovacuum_enabled = false);
CREATE TRIGGER tg_bf_on_update BEFORE UPDATE ON tg_bf_pchild FOR EACH ROW EXECUTE FUNCTION tg_bf_on_update();
INSERT INTO tg_bf_pchild (id, parent_id) SELECT g, 1 + g % 49 FROM generate_series(1, 2000) g;
RESET ROLE;
CALL tenant_guard.backfill('tg_bf_pchild', 'tg_bf_pchild_parent_fk', batch_size => 500);
SELECT count(*) FILTER (WHERE c.tenant_id IS NULL) AS still_null,
       count(*) FILTER (WHERE c.tenant_id IS DISTINCT FROM p.tenant_id) AS filled_wrong,
       max(c.updates) AS max_updates, sum(c.updates) AS updates
  FROM tg_bf_pchild c JOIN tg_bf_parent p ON p.id = c.parent_id;

-- A parent of another owner whose row-level security policy would run as
-- the child's owner (a victim owning another table): refused, the policy
-- never runs as the victim.
\set VERBOSITY sqlstate
CREATE ROLE tg_bf_victim NOLOGIN;
CREATE SEQUENCE tg_bf_ran_as_victim;
GRANT USAGE, SELECT, UPDATE ON SEQUENCE tg_bf_ran_as_victim TO PUBLIC;
SET ROLE tg_bf_app;
CREATE FUNCTION tg_bf_spy() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF current_user::text <> 'tg_bf_app' THEN
    PERFORM nextval('public.tg_bf_ran_as_victim');
  END IF;
  RETURN true;
END $$;
CREATE TABLE tg_bf_ap (id int PRIMARY KEY, tenant_id text NOT NULL);
INSERT INTO tg_bf_ap VALUES (1, 'acme');
ALTER TABLE tg_bf_ap ENABLE ROW LEVEL SECURITY;
CREATE POLICY tg_bf_spy ON tg_bf_ap USING (public.tg_bf_spy());
GRANT SELECT, REFERENCES ON tg_bf_ap TO tg_bf_victim;
RESET ROLE;
CREATE TABLE tg_bf_vc (id int PRIMARY KEY, tenant_id text,
                       ap_id int CONSTRAINT tg_bf_vc_ap_fk REFERENCES tg_bf_ap (id));
INSERT INTO tg_bf_vc VALUES (1, NULL, 1);
ALTER TABLE tg_bf_vc OWNER TO tg_bf_victim;
CALL tenant_guard.backfill('tg_bf_vc', 'tg_bf_vc_ap_fk');
SELECT * FROM tenant_guard.backfill_batch('tg_bf_vc', 'tg_bf_vc_ap_fk');
SELECT tenant_id FROM tg_bf_vc;
SELECT is_called AS ran_as_victim FROM tg_bf_ran_as_victim;

-- A type named "record" in a schema the caller's search_path puts before
-- pg_catalog (what a database owner's ALTER DATABASE … SET search_path
-- could impose on the DBA's session) is never used by the procedure.
CREATE FUNCTION tg_bf_record_trap(bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM nextval('tg_bf_escalations'); RETURN true; END $$;
CREATE DOMAIN tg_bf_trap_int8 AS bigint CHECK (tg_bf_record_trap(VALUE));
CREATE TYPE public.record AS (rows_updated tg_bf_trap_int8, next_block tg_bf_trap_int8,
  blocks tg_bf_trap_int8, null_rows tg_bf_trap_int8, null_rows_left tg_bf_trap_int8,
  fillable_rows_left tg_bf_trap_int8);
CREATE TABLE tg_bf_rp (id int PRIMARY KEY, tenant_id text NOT NULL);
CREATE TABLE tg_bf_rc (id int PRIMARY KEY, tenant_id text,
                       rp_id int CONSTRAINT tg_bf_rc_rp_fk REFERENCES tg_bf_rp (id));
INSERT INTO tg_bf_rp VALUES (1, 'acme');
INSERT INTO tg_bf_rc VALUES (1, NULL, 1), (2, NULL, 1);
SET search_path = public, pg_catalog;
\set VERBOSITY terse
CALL tenant_guard.backfill('tg_bf_rc', 'tg_bf_rc_rp_fk');
\set VERBOSITY default
RESET search_path;
SELECT id, tenant_id FROM tg_bf_rc ORDER BY id;
DROP TABLE tg_bf_rc, tg_bf_rp;
DROP TYPE public.record;
DROP DOMAIN tg_bf_trap_int8;
DROP FUNCTION tg_bf_record_trap(bigint);

-- The application's trigger ran as the application only.
SELECT is_called AS escalated FROM tg_bf_escalations;

DROP TABLE tg_bf_vc, tg_bf_ap, tg_bf_pchild, tg_bf_child, tg_bf_parent, tg_bf_crash_at;
DROP FUNCTION tg_bf_on_update(), tg_bf_spy();
DROP SEQUENCE tg_bf_escalations, tg_bf_deadlock_once, tg_bf_lock_timeout_once, tg_bf_ran_as_victim;
DROP EXTENSION tenant_guard;
REVOKE CREATE ON SCHEMA public FROM tg_bf_app;
DROP ROLE tg_bf_app;
DROP ROLE tg_bf_restricted;
DROP ROLE tg_bf_victim;
