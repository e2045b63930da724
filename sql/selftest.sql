-- tenant_guard.selftest(): try the main attacks against a scratch fixture,
-- as an ordinary role, and report one row per check. Everything it creates
-- (a key, roles, tables) is rolled back before it returns.

-- Runs one statement; returns its SQLSTATE, or '00000' when it succeeded.
CREATE FUNCTION tenant_guard_internal.selftest_try(stmt text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE stmt;
  RETURN '00000';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;

-- Runs one query returning a number; NULL when it failed.
CREATE FUNCTION tenant_guard_internal.selftest_count(query text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE n bigint;
BEGIN
  EXECUTE query INTO n;
  RETURN n;
EXCEPTION WHEN OTHERS THEN
  RETURN NULL;
END $$;

CREATE FUNCTION tenant_guard.selftest()
RETURNS TABLE ("check" text, passed boolean, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  names text[] := '{}';
  oks boolean[] := '{}';
  details text[] := '{}';
  acme text; globex text; expired text; tampered text; none_tok text; st text; n bigint;
  app name := 'tenant_guard_selftest_app';
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RAISE EXCEPTION 'tenant_guard.selftest() must be run by a superuser'
      USING ERRCODE = '42501', HINT = 'It creates a scratch key, role and tables, and rolls them back.';
  END IF;
  BEGIN
    -- The checks must not depend on how this database is configured: the
    -- scratch tenants are in no registry (with one configured, set_context
    -- would refuse them: 28000), and the settings the fixture relies on are
    -- pinned. All of it is undone with the rest below (the subtransaction
    -- rolls back the registry row and every set_config(..., true)).
    DELETE FROM tenant_guard.registry;
    PERFORM set_config('tenant_guard.tenant_column', 'tenant_id', true),
            set_config('tenant_guard.tenant_claim', 'tenant_id', true),
            set_config('tenant_guard.issuer', '', true),
            set_config('tenant_guard.audience', '', true),
            set_config('tenant_guard.missing_context', 'error', true),
            set_config('tenant_guard.on_new_table', 'off', true);
    -- Fixture: a key, an application role, a protected table with two
    -- tenants, a protected partitioned table, a composite foreign key.
    PERFORM tenant_guard.add_key('tenant_guard_selftest', gen_random_uuid()::text::bytea || gen_random_uuid()::text::bytea);
    EXECUTE format('CREATE ROLE %I NOLOGIN', app);
    CREATE TABLE pg_temp.selftest_parent (id int, tenant_id text NOT NULL, PRIMARY KEY (tenant_id, id));
    CREATE TABLE pg_temp.selftest_rows (id int PRIMARY KEY, tenant_id text NOT NULL, parent_id int, secret text);
    CREATE TABLE pg_temp.selftest_parts (tenant_id text NOT NULL, v int) PARTITION BY LIST (tenant_id);
    CREATE TABLE pg_temp.selftest_parts_acme PARTITION OF pg_temp.selftest_parts FOR VALUES IN ('acme');
    CREATE TABLE pg_temp.selftest_parts_globex PARTITION OF pg_temp.selftest_parts FOR VALUES IN ('globex');
    INSERT INTO pg_temp.selftest_parent VALUES (1, 'acme'), (2, 'globex');
    INSERT INTO pg_temp.selftest_rows VALUES (1, 'acme', 1, 'a'), (2, 'globex', 2, 'g');
    INSERT INTO pg_temp.selftest_parts VALUES ('acme', 1), ('globex', 2);
    PERFORM count(*) FROM tenant_guard.protect('pg_temp.selftest_parent');
    PERFORM count(*) FROM tenant_guard.protect('pg_temp.selftest_rows');
    PERFORM count(*) FROM tenant_guard.protect('pg_temp.selftest_parts');
    PERFORM count(*) FROM tenant_guard.add_tenant_fk('pg_temp.selftest_rows', ARRAY['parent_id'],
                                                     'pg_temp.selftest_parent', ARRAY['id']);
    -- (Every role with TEMP on the database may use this session's temp schema.)
    EXECUTE format('GRANT EXECUTE ON FUNCTION tenant_guard_internal.selftest_try(text), '
                   'tenant_guard_internal.selftest_count(text) TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON pg_temp.selftest_rows, pg_temp.selftest_parent, '
                   'pg_temp.selftest_parts, pg_temp.selftest_parts_acme, pg_temp.selftest_parts_globex TO %I', app);
    acme := tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', 'tenant_guard_selftest');
    globex := tenant_guard.sign('{"tenant_id": "globex", "exp": 4102444800}', 'tenant_guard_selftest');
    expired := tenant_guard.sign('{"tenant_id": "globex", "exp": 1000000000}', 'tenant_guard_selftest');
    tampered := split_part(acme, '.', 1) || '.' || split_part(globex, '.', 2) || '.' || split_part(acme, '.', 3);
    none_tok := 'eyJhbGciOiJub25lIn0.' || split_part(globex, '.', 2) || '.';

    -- From here on: the application role.
    PERFORM set_config('role', app, true);

    st := tenant_guard_internal.selftest_try($q$SELECT set_config('tenant_guard.context', 'globex', true)$q$);
    names := names || 'forged context (set_config)'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try($q$SET tenant_guard.context = 'globex'$q$);
    names := names || 'forged context (SET)'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try(format('SELECT tenant_guard.set_context(%L, false)', none_tok));
    names := names || 'unsigned token (alg none)'::text; oks := oks || (st = '28000'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try(format('SELECT tenant_guard.set_context(%L, false)', tampered));
    names := names || 'tampered token'::text; oks := oks || (st = '28000'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try(format('SELECT tenant_guard.set_context(%L, false)', expired));
    names := names || 'expired token'::text; oks := oks || (st = '28000'); details := details || ('SQLSTATE ' || st);

    st := tenant_guard_internal.selftest_try('SELECT count(*) FROM pg_temp.selftest_rows');
    names := names || 'no context, no rows'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);

    PERFORM tenant_guard.set_context(acme, false);
    n := tenant_guard_internal.selftest_count($q$SELECT count(*) FROM pg_temp.selftest_rows WHERE tenant_id <> 'acme'$q$);
    names := names || 'other tenant''s rows invisible'::text; oks := oks || (n = 0); details := details || (coalesce(n::text, 'error') || ' foreign rows seen');
    n := tenant_guard_internal.selftest_count('SELECT count(*) FROM pg_temp.selftest_rows');
    names := names || 'own rows visible'::text; oks := oks || (n = 1); details := details || (coalesce(n::text, 'error') || ' rows seen');
    st := tenant_guard_internal.selftest_try($q$INSERT INTO pg_temp.selftest_rows VALUES (3, 'globex', 2, 'x')$q$);
    names := names || 'insert into another tenant'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    n := tenant_guard_internal.selftest_count($q$WITH u AS (UPDATE pg_temp.selftest_rows SET secret = 'owned' WHERE id = 2 RETURNING 1) SELECT count(*) FROM u$q$);
    names := names || 'update another tenant''s row'::text; oks := oks || (n = 0); details := details || (coalesce(n::text, 'error') || ' rows updated');
    n := tenant_guard_internal.selftest_count($q$WITH d AS (DELETE FROM pg_temp.selftest_rows WHERE id = 2 RETURNING 1) SELECT count(*) FROM d$q$);
    names := names || 'delete another tenant''s row'::text; oks := oks || (n = 0); details := details || (coalesce(n::text, 'error') || ' rows deleted');
    st := tenant_guard_internal.selftest_try($q$UPDATE pg_temp.selftest_rows SET tenant_id = 'globex' WHERE id = 1$q$);
    names := names || 'move a row to another tenant'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try('TRUNCATE pg_temp.selftest_rows');
    names := names || 'TRUNCATE'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    n := tenant_guard_internal.selftest_count('SELECT count(*) FROM pg_temp.selftest_parts_globex');
    names := names || 'partition named directly'::text; oks := oks || (n = 0); details := details || (coalesce(n::text, 'error') || ' foreign rows seen');
    st := tenant_guard_internal.selftest_try($q$INSERT INTO pg_temp.selftest_rows VALUES (4, 'acme', 2, 'x')$q$);
    names := names || 'reference another tenant''s parent'::text; oks := oks || (st = '23503'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try('SELECT * FROM tenant_guard.unprotect(''pg_temp.selftest_rows'')');
    names := names || 'application role calls unprotect'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try('ALTER TABLE pg_temp.selftest_rows DISABLE ROW LEVEL SECURITY');
    names := names || 'application role disables row-level security'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    st := tenant_guard_internal.selftest_try('SELECT count(*) FROM tenant_guard.keys');
    names := names || 'application role reads the key ring'::text; oks := oks || (st = '42501'); details := details || ('SQLSTATE ' || st);
    PERFORM tenant_guard.clear_context();
    n := tenant_guard_internal.selftest_count('SELECT count(*) FROM pg_temp.selftest_rows');
    names := names || 'cleared context, no rows'::text; oks := oks || (n IS NULL); details := details || CASE WHEN n IS NULL THEN 'refused' ELSE n || ' rows seen' END;

    -- Undo every change (fixture, key, role, settings).
    RAISE EXCEPTION USING ERRCODE = 'TGST1', MESSAGE = 'tenant_guard selftest rollback';
  EXCEPTION WHEN SQLSTATE 'TGST1' THEN
    NULL;
  END;
  RETURN QUERY SELECT * FROM unnest(names, oks, details);
END $$;
