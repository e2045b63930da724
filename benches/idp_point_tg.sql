-- An identity-provider token presented again (a cache hit), then a point
-- lookup in a table protected by tenant_guard.
\set id random(1, 2000)
BEGIN;
SELECT tenant_guard.set_context(:token) IS NULL;
SELECT payload FROM idp_items_tg WHERE id = :id;
COMMIT;
