-- scale_agg_literal.sql through a sequential scan (PostgreSQL hashes the
-- constant array): the same rows for a superuser.
BEGIN;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_indexonlyscan = off;
SET LOCAL enable_bitmapscan = off;
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT count(*), sum(v) FROM sc_items WHERE tenant_id = ANY (CAST(:tenants AS text[]));
COMMIT;
