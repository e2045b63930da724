-- 10,000 parents across 1,000 tenants; 1,000,000 children without a tenant.
CREATE TABLE bf_parent (id int PRIMARY KEY, tenant_id text NOT NULL);
INSERT INTO bf_parent SELECT g, 'tenant-' || (g % 1000) FROM generate_series(1, 10000) g;
CREATE TABLE bf_child (id int PRIMARY KEY, tenant_id text, parent_id int
                       CONSTRAINT bf_child_parent_fkey REFERENCES bf_parent (id), payload int);
INSERT INTO bf_child SELECT g, NULL, 1 + g % 10000, g FROM generate_series(1, 1000000) g;
VACUUM ANALYZE bf_parent, bf_child;
