-- Tests a bypass context's registry set, kept until the registry changes
-- A bypass context without tenant_guard.bypass_role reads the registry's
-- active tenants. use_registry() puts a trigger on the registry table
-- (tenant_guard_registry_changed: AFTER INSERT, UPDATE OF the id and active
-- columns, DELETE, FOR EACH ROW, enabled ALWAYS) that makes every change
-- drop the key ring in every session; the set is then kept with the ring,
-- read once for every statement and transaction of the session instead of
-- once per transaction. Whatever changes the registry, and whatever its
-- owner does to the trigger, a bypass context must read exactly the active
-- tenants of the registry as it now is. (Another session's changes: the
-- locks layer, tests/locks/run.)
CREATE EXTENSION tenant_guard;
SELECT tenant_guard.add_key('main', decode(repeat('c4', 32), 'hex'));
CREATE ROLE tg_watch_app LOGIN;
CREATE ROLE tg_watch_owner;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- Tenants 1 to 12, two rows each; the registry (owned by another role, as
-- an application's own table is) lists 1 to 10, all active.
CREATE TABLE w_items (id int PRIMARY KEY, tenant_id bigint NOT NULL);
INSERT INTO w_items SELECT g, g % 12 + 1 FROM generate_series(1, 24) g;
SELECT count(*) FROM tenant_guard.protect('w_items');
GRANT SELECT, INSERT, UPDATE, DELETE ON w_items TO tg_watch_app;
CREATE TABLE w_reg (id bigint PRIMARY KEY, active boolean NOT NULL, plan text);
ALTER TABLE w_reg OWNER TO tg_watch_owner;
INSERT INTO w_reg SELECT g, true, 'free' FROM generate_series(1, 10) g;
GRANT ALL ON w_reg TO tg_watch_app;
SELECT tenant_guard.use_registry('w_reg', active_column => 'active');
-- The trigger, created with the table owner's rights.
SELECT tgname, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'w_reg'::regclass;
-- The advisor reports a registry without that trigger (low: each bypass
-- context then reads the whole registry once per transaction), with the
-- use_registry call that puts it back; none while it is there.
CREATE FUNCTION unwatched() RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(concat_ws(' | ', severity, object, remedy), '; '), 'watched')
    FROM tenant_guard.advisor WHERE code = 'registry_not_watched' $$;
SELECT unwatched();

SELECT extract(epoch FROM now())::bigint AS now_s \gset
SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'sub', 'support', 'iat', :now_s, 'exp', :now_s + 600)) AS bypass \gset

-- What a bypass context reads, through a filter (sequential scan: the set
-- hashed) and through the primary key (a point lookup, the set as a
-- filter on one row), in a transaction of its own.
CREATE FUNCTION seen() RETURNS TABLE (filter text, point_lookups text)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM tenant_guard.set_context(current_setting('tg.bypass'));
  SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off;
  filter := (SELECT string_agg(DISTINCT tenant_id::text, ',' ORDER BY tenant_id::text) FROM w_items);
  RESET enable_indexscan; RESET enable_bitmapscan; SET LOCAL enable_seqscan = off;
  point_lookups := (SELECT string_agg(DISTINCT (SELECT tenant_id::text FROM w_items i WHERE i.id = g), ',')
                      FROM generate_series(1, 24) g);
  RESET enable_seqscan;
  RETURN NEXT;
END $$;
GRANT EXECUTE ON FUNCTION seen() TO tg_watch_app;
SET tg.bypass = :'bypass';
SET ROLE tg_watch_app;
-- The ten registered tenants (11 and 12 are not in the registry).
BEGIN; SELECT * FROM seen(); COMMIT;
BEGIN; SELECT * FROM seen(); COMMIT;
-- A new tenant, a deactivated one, a deleted one: each seen by the next
-- transaction.
INSERT INTO w_reg VALUES (11, true, 'free');
BEGIN; SELECT * FROM seen(); COMMIT;
UPDATE w_reg SET active = false WHERE id = 2;
BEGIN; SELECT * FROM seen(); COMMIT;
DELETE FROM w_reg WHERE id = 3;
BEGIN; SELECT * FROM seen(); COMMIT;
-- A change of another column fires nothing and changes nothing.
UPDATE w_reg SET plan = 'pro' WHERE id = 4;
BEGIN; SELECT * FROM seen(); COMMIT;
-- Within one transaction: the next statement sees the transaction's own
-- change; after a rollback it is gone again.
BEGIN;
SELECT * FROM seen();
UPDATE w_reg SET active = true WHERE id = 2;
SELECT * FROM seen();
ROLLBACK;
BEGIN; SELECT * FROM seen(); COMMIT;
-- Under session_replication_role = replica (logical replication's apply),
-- the trigger fires too (enabled ALWAYS).
RESET ROLE;
SET session_replication_role = replica;
INSERT INTO w_reg VALUES (12, true, 'free');
RESET session_replication_role;
SET ROLE tg_watch_app;
BEGIN; SELECT * FROM seen(); COMMIT;

-- The registry's owner may drop, disable or replace the trigger: the set
-- is then read by every transaction again, still exactly the registry.
RESET ROLE;
SET ROLE tg_watch_owner;
ALTER TABLE w_reg DISABLE TRIGGER tenant_guard_registry_changed;
RESET ROLE;
SELECT unwatched();
SET ROLE tg_watch_app;
BEGIN; SELECT * FROM seen(); COMMIT;
UPDATE w_reg SET active = false WHERE id = 12;
BEGIN; SELECT * FROM seen(); COMMIT;
RESET ROLE;
SET ROLE tg_watch_owner;
ALTER TABLE w_reg ENABLE TRIGGER tenant_guard_registry_changed;
RESET ROLE;
SELECT unwatched();
SET ROLE tg_watch_app;
-- Enabled (not ALWAYS), it would not fire under replica: not trusted.
BEGIN; SELECT * FROM seen(); COMMIT;
RESET ROLE;
SET session_replication_role = replica;
UPDATE w_reg SET active = true WHERE id = 12;
RESET session_replication_role;
SET ROLE tg_watch_app;
BEGIN; SELECT * FROM seen(); COMMIT;
-- Replaced by one that never fires (WHEN false), or by one on another
-- column only:
RESET ROLE;
SET ROLE tg_watch_owner;
CREATE OR REPLACE TRIGGER tenant_guard_registry_changed AFTER INSERT OR UPDATE OR DELETE ON w_reg
  FOR EACH ROW WHEN (false) EXECUTE FUNCTION tenant_guard_internal.config_changed();
ALTER TABLE w_reg ENABLE ALWAYS TRIGGER tenant_guard_registry_changed;
RESET ROLE;
SELECT unwatched();
SET ROLE tg_watch_app;
BEGIN; SELECT * FROM seen(); COMMIT;
UPDATE w_reg SET active = false WHERE id = 12;
BEGIN; SELECT * FROM seen(); COMMIT;
RESET ROLE;
SET ROLE tg_watch_owner;
CREATE OR REPLACE TRIGGER tenant_guard_registry_changed AFTER INSERT OR UPDATE OF plan OR DELETE ON w_reg
  FOR EACH ROW EXECUTE FUNCTION tenant_guard_internal.config_changed();
ALTER TABLE w_reg ENABLE ALWAYS TRIGGER tenant_guard_registry_changed;
RESET ROLE;
SELECT unwatched();
SET ROLE tg_watch_app;
BEGIN; SELECT * FROM seen(); COMMIT;
UPDATE w_reg SET active = true WHERE id = 12;
BEGIN; SELECT * FROM seen(); COMMIT;
-- Dropped:
RESET ROLE;
SET ROLE tg_watch_owner;
DROP TRIGGER tenant_guard_registry_changed ON w_reg;
RESET ROLE;
SELECT unwatched();
SET ROLE tg_watch_app;
BEGIN; SELECT * FROM seen(); COMMIT;
DELETE FROM w_reg WHERE id = 12;
BEGIN; SELECT * FROM seen(); COMMIT;
RESET ROLE;

-- use_registry() again (the advisor's remedy, run as it is) puts the
-- trigger back; use_registry(NULL) (or another table) removes it.
SELECT remedy FROM tenant_guard.advisor WHERE code = 'registry_not_watched' \gexec
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'w_reg'::regclass;
SELECT unwatched();
SET ROLE tg_watch_app;
BEGIN; SELECT * FROM seen(); COMMIT;
INSERT INTO w_reg VALUES (12, true, 'free');
BEGIN; SELECT * FROM seen(); COMMIT;
RESET ROLE;

-- The registry owner's BEFORE trigger derives the active flag (here from
-- the plan): UPDATE ... SET plan deactivates a tenant without naming the
-- active column. PostgreSQL fires an UPDATE OF trigger only for columns
-- the SET list names, so use_registry's trigger fires on every UPDATE and
-- compares the id and active columns of the row as stored: the next
-- transaction no longer reads tenant 4, then reads it again.
CREATE FUNCTION w_reg_derive() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN NEW.active := NEW.plan IS DISTINCT FROM 'closed'; RETURN NEW; END $$;
ALTER FUNCTION w_reg_derive() OWNER TO tg_watch_owner;
SET ROLE tg_watch_owner;
CREATE TRIGGER w_reg_derive BEFORE UPDATE ON w_reg FOR EACH ROW EXECUTE FUNCTION w_reg_derive();
RESET ROLE;
SELECT unwatched();
SET ROLE tg_watch_app;
BEGIN; SELECT * FROM seen(); COMMIT;
UPDATE w_reg SET plan = 'closed' WHERE id = 4;
BEGIN; SELECT * FROM seen(); COMMIT;
UPDATE w_reg SET plan = 'free' WHERE id = 4;
BEGIN; SELECT * FROM seen(); COMMIT;
RESET ROLE;
DROP TRIGGER w_reg_derive ON w_reg;
DROP FUNCTION w_reg_derive();
-- A trigger of the same shape naming other columns (plan for active) is
-- not use_registry's: not trusted, so the set is read per transaction and
-- the advisor reports it.
SET ROLE tg_watch_owner;
CREATE OR REPLACE TRIGGER tenant_guard_registry_changed AFTER INSERT OR UPDATE OR DELETE ON w_reg
  FOR EACH ROW EXECUTE FUNCTION tenant_guard_internal.config_changed('id', 'plan');
ALTER TABLE w_reg ENABLE ALWAYS TRIGGER tenant_guard_registry_changed;
RESET ROLE;
SELECT unwatched();
SET ROLE tg_watch_app;
UPDATE w_reg SET active = false WHERE id = 4;
BEGIN; SELECT * FROM seen(); COMMIT;
UPDATE w_reg SET active = true WHERE id = 4;
BEGIN; SELECT * FROM seen(); COMMIT;
RESET ROLE;
SELECT tenant_guard.use_registry('w_reg', active_column => 'active');
SELECT unwatched();

-- A parallel scan under a bypass context, where the workers do all the
-- reading: the rows of the ten active tenants of the registry, and each worker
-- loads the key ring once for the statement, not once per row. (A worker
-- cannot keep the ring beyond a call; the filter asked it for the kept
-- set again at every row: 1,000,000 rows under a registry of 100,000
-- took 36 s instead of 0.4 s.) Counted through the scans of
-- tenant_guard.keys that loading the ring makes, which a worker reports
-- when it exits, before the query returns: 10,000 rows, so a load per row
-- would show thousands. (Where no worker could start, the leader reads
-- the rows with the ring it keeps, and the count stays low too.)
CREATE TABLE w_many (id int, tenant_id bigint NOT NULL);
INSERT INTO w_many SELECT g, g % 14 + 1 FROM generate_series(1, 14000) g;
SELECT count(*) FROM tenant_guard.protect('w_many');
ANALYZE w_many;
GRANT SELECT ON w_many TO tg_watch_app;
SET stats_fetch_consistency = none;
CREATE FUNCTION keys_scans() RETURNS bigint LANGUAGE sql
  AS $$ SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_all_tables WHERE relid = 'tenant_guard.keys'::regclass $$;
SELECT keys_scans() AS scans_before \gset
SET ROLE tg_watch_app;
BEGIN;
SELECT tenant_guard.set_context(:'bypass') IS NULL AS bypass_set;
SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off;
SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT string_agg(tenant_id || ':' || n, ',' ORDER BY tenant_id) AS rows_by_tenant
  FROM (SELECT tenant_id, count(*) AS n FROM w_many GROUP BY tenant_id) t;
SELECT string_agg(tenant_id || ':' || n, ',' ORDER BY tenant_id) AS rows_by_tenant
  FROM (SELECT tenant_id, count(*) AS n FROM w_many GROUP BY tenant_id) t;
COMMIT;
RESET ROLE;
SELECT keys_scans() - :scans_before <= 50 AS ring_loaded_per_worker_not_per_row;
RESET stats_fetch_consistency;
DROP FUNCTION keys_scans();
DROP TABLE w_many;

SELECT tenant_guard.use_registry(NULL);
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'w_reg'::regclass;
-- No registry, nothing to report.
SELECT unwatched();

RESET tg.bypass;
DROP FUNCTION seen(), unwatched();
DROP TABLE w_items, w_reg;
DROP EXTENSION tenant_guard;
DROP ROLE tg_watch_app;
DROP ROLE tg_watch_owner;
