-- Hand-written: an unverified setting and a current_setting() policy, then
-- the same point lookup.
\set id random(1, 2000)
BEGIN;
SELECT set_config('app.current_tenant_id', :tenant, true) IS NULL;
SELECT payload FROM idp_items_hr WHERE id = :id;
COMMIT;
