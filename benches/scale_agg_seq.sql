-- scale_agg.sql through a sequential scan (the rule as a filter, every row
-- looked up in the context's hashed set): count and sum over the rows of
-- the context's tenants.
BEGIN;
SELECT tenant_guard.set_context(:token) IS NULL;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_indexonlyscan = off;
SET LOCAL enable_bitmapscan = off;
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT count(*), sum(v) FROM sc_items;
COMMIT;
