-- 10,000,000 rows, 1,000 tenants in a registry, 0.1% NULL tenants and 0.1%
-- orphans (tenant ids the registry does not know).
CREATE TABLE audit_tenants (id text PRIMARY KEY);
INSERT INTO audit_tenants SELECT 't' || g FROM generate_series(1, 1000) g;
SELECT tenant_guard.use_registry('audit_tenants');
CREATE TABLE audit_big (id bigint, tenant_id text, v int);
INSERT INTO audit_big
SELECT g, CASE WHEN g % 1000 = 0 THEN NULL WHEN g % 1000 = 1 THEN 'ghost' || (g % 7) ELSE 't' || (1 + g % 1000) END, 0
  FROM generate_series(1, 10000000) g;
CREATE INDEX ON audit_big (tenant_id);
VACUUM ANALYZE audit_big, audit_tenants;

-- Interleaved rounds; the median of the per-round ratios is printed.
CREATE FUNCTION pg_temp.rounds(a text, b text, n int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; ta float8; tb float8; r float8[] := '{}';
BEGIN
  EXECUTE a; EXECUTE b;   -- warm up: plan caches, catalog caches
  FOR i IN 1..n LOOP
    t0 := clock_timestamp(); EXECUTE a; ta := extract(epoch FROM clock_timestamp() - t0);
    t0 := clock_timestamp(); EXECUTE b; tb := extract(epoch FROM clock_timestamp() - t0);
    r := r || (ta / tb);
  END LOOP;
  RETURN format('median ratio %s (rounds: %s; last: %s ms vs %s ms)',
                round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(r) x)::numeric, 3),
                (SELECT string_agg(round(x::numeric, 3)::text, ' ') FROM unnest(r) x),
                round((ta * 1000)::numeric, 1), round((tb * 1000)::numeric, 1));
END $$;
SELECT 'null_tenant_rows vs hand-written count(*) ... IS NULL (target <= 1.5)',
       pg_temp.rounds('SELECT * FROM tenant_guard.null_tenant_rows',
                      'SELECT count(*) FROM audit_big WHERE tenant_id IS NULL', 21);
SELECT 'orphan_tenant_rows vs hand-written anti-join',
       pg_temp.rounds('SELECT * FROM tenant_guard.orphan_tenant_rows',
                      'SELECT tenant_id, count(*) FROM audit_big b WHERE tenant_id IS NOT NULL
                          AND NOT EXISTS (SELECT 1 FROM audit_tenants r WHERE r.id = b.tenant_id) GROUP BY 1', 3);
