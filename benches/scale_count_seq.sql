-- scale_count.sql through a sequential scan, one process: a full count
-- under :token ('none': no context, as a superuser).
BEGIN;
SELECT tenant_guard.set_context(NULLIF(:token, 'none')) IS NULL WHERE :token <> 'none';
SET LOCAL enable_indexscan = off;
SET LOCAL enable_indexonlyscan = off;
SET LOCAL enable_bitmapscan = off;
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT count(*) FROM sc_items;
COMMIT;
