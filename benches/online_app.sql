-- The online scenario's application transaction (bench_app, 8 clients at a
-- steady total rate): a tenant's context, a read, and writes to the parent and
-- the child in that tenant. It names its tenant explicitly (the tables are not
-- protected yet when the run starts) and works the same once they are.
\set t random(1, 1000)
\set aid random(0, 999) * 1000 + :t
BEGIN;
SELECT tenant_guard.set_context(token) FROM online_tokens WHERE n = :t;
SELECT a.balance, (SELECT count(*) FROM live.orders o WHERE o.account_id = a.id)
  FROM live.accounts a WHERE a.id = :aid AND a.tenant_id = tenant_guard.tenant_id();
UPDATE live.accounts SET balance = balance + 1 WHERE id = :aid AND tenant_id = tenant_guard.tenant_id();
UPDATE live.orders SET amount = amount + 1 WHERE account_id = :aid;
INSERT INTO live.orders (tenant_id, account_id, amount) VALUES (tenant_guard.tenant_id(), :aid, 1);
COMMIT;
