-- The online scenario's schema (./scripts/bench, section "online"): an
-- application half-way through adopting tenant_guard.
--   live.accounts  1,000,000 rows, 1,000 tenants; two tenant-blind unique keys,
--                  code (for scope_unique) and email (for its dry run's statements)
--   live.orders    1,000,000 rows with a NULL tenant (to backfill), a tenant-blind
--                  foreign key to accounts (each account has one order, ids shuffled)
--   live.payments    200,000 rows, tenant filled but the column nullable, a
--                  tenant-blind foreign key to orders (left for rollout('enforce'))
--   side.payments  200,000 rows, tenant NOT NULL, a tenant-blind foreign key to
--                  live.orders (for upgrade_foreign_keys' dry run's statements)
--   calm.orders    a copy of live.orders, backfilled without traffic for comparison
--   online_tokens  one signed token per tenant (not a tenant table)
-- Tables are owned by the superuser running the helpers; the application role
-- bench_app owns nothing and has only the rights its transactions need.
CREATE SCHEMA live;
CREATE SCHEMA calm;
CREATE SCHEMA side;

CREATE TABLE online_tokens (n int PRIMARY KEY, tenant text NOT NULL, token text NOT NULL);
INSERT INTO online_tokens
SELECT n, 'tenant-' || lpad(n::text, 4, '0'),
       tenant_guard.sign(jsonb_build_object('tenant_id', 'tenant-' || lpad(n::text, 4, '0'),
                                            'sub', 'u' || n, 'exp', 4102444800))
  FROM generate_series(1, 1000) n;

-- Account id a belongs to tenant ((a - 1) % 1000) + 1.
CREATE TABLE live.accounts (
  id bigint PRIMARY KEY,
  tenant_id text NOT NULL,
  code text NOT NULL CONSTRAINT accounts_code_key UNIQUE,
  email text NOT NULL CONSTRAINT accounts_email_key UNIQUE,
  balance bigint NOT NULL DEFAULT 0);
INSERT INTO live.accounts
SELECT a, 'tenant-' || lpad((((a - 1) % 1000) + 1)::text, 4, '0'), 'C' || a, 'u' || a || '@example.com', 0
  FROM generate_series(1, 1000000) a;

-- Order o belongs to account ((o - 1) * 7919 % 1,000,000) + 1 (a permutation:
-- the backfill's parent look-ups are spread over the whole parent).
CREATE TABLE live.orders (
  id bigserial PRIMARY KEY,
  tenant_id text,
  account_id bigint NOT NULL CONSTRAINT orders_account_id_fkey REFERENCES live.accounts (id),
  amount int NOT NULL);
INSERT INTO live.orders (id, tenant_id, account_id, amount)
SELECT o, NULL, ((o - 1) * 7919 % 1000000) + 1, 1 FROM generate_series(1::bigint, 1000000) o;
SELECT setval('live.orders_id_seq', 1000000);
CREATE INDEX orders_account_id_idx ON live.orders (account_id);

CREATE TABLE calm.orders (LIKE live.orders INCLUDING INDEXES);
ALTER TABLE calm.orders ADD CONSTRAINT calm_orders_account_id_fkey
  FOREIGN KEY (account_id) REFERENCES live.accounts (id);
INSERT INTO calm.orders SELECT * FROM live.orders;

-- Payment p of order ((p - 1) * 5 + 1): the same tenant as that order's account.
CREATE TABLE live.payments (
  id bigint PRIMARY KEY,
  tenant_id text,
  order_id bigint NOT NULL CONSTRAINT payments_order_id_fkey REFERENCES live.orders (id),
  amount int NOT NULL);
INSERT INTO live.payments
SELECT p, 'tenant-' || lpad((((((p - 1) * 5) * 7919 % 1000000) % 1000) + 1)::text, 4, '0'), (p - 1) * 5 + 1, 1
  FROM generate_series(1::bigint, 200000) p;
CREATE INDEX payments_order_id_idx ON live.payments (order_id);

CREATE TABLE side.payments (LIKE live.payments INCLUDING INDEXES);
ALTER TABLE side.payments ALTER tenant_id SET NOT NULL,
  ADD CONSTRAINT side_payments_order_id_fkey FOREIGN KEY (order_id) REFERENCES live.orders (id);
INSERT INTO side.payments SELECT * FROM live.payments;

VACUUM ANALYZE online_tokens, live.accounts, live.orders, live.payments, side.payments, calm.orders;

GRANT SELECT ON online_tokens TO bench_app;
GRANT USAGE ON SCHEMA live TO bench_app;
GRANT SELECT, UPDATE ON live.accounts TO bench_app;
GRANT SELECT, INSERT, UPDATE ON live.orders TO bench_app;
GRANT USAGE ON SEQUENCE live.orders_id_seq TO bench_app;
