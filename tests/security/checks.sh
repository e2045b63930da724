# Sourced by tests/security/run: one function per group of checks.
# shellcheck shell=bash disable=SC2016

# Domains named like the built-in types, in the caller's pg_temp (found
# before pg_catalog for types), each with a CHECK calling pwn().
temp_domains() {
  local t
  for t in float8 text int8 int4 int2 bool bytea name oid timestamptz jsonb numeric regclass varchar; do
    echo "CREATE DOMAIN pg_temp.$t AS pg_catalog.$t CHECK (pg_temp.pwn());"
  done
}

# Tables an application typically owns (in schema $1, quoted).
app_tables() {
  local s=$1
  cat <<SQL
CREATE TABLE $s.accounts (id text PRIMARY KEY, active boolean NOT NULL DEFAULT true);
INSERT INTO $s.accounts VALUES ('acme', true), ('globex', true), ('initech', false);
CREATE TABLE $s.orders (id int PRIMARY KEY, tenant_id text, code text, CONSTRAINT orders_code_key UNIQUE (code));
INSERT INTO $s.orders VALUES (1, 'acme', 'a1'), (2, 'globex', 'g1'), (3, NULL, 'n1'), (4, 'orphan', 'o1');
CREATE TABLE $s.lines (id int PRIMARY KEY, tenant_id text,
  order_id int CONSTRAINT lines_order_id_fkey REFERENCES $s.orders (id));
INSERT INTO $s.lines VALUES (1, 'acme', 1), (2, 'acme', 2), (3, NULL, 1), (4, NULL, 2);
CREATE TABLE $s.projects (id int PRIMARY KEY, tenant_id text NOT NULL);
INSERT INTO $s.projects VALUES (1, 'acme'), (2, 'globex');
CREATE TABLE $s.tasks (id int PRIMARY KEY, tenant_id text NOT NULL,
  project_id int CONSTRAINT tasks_project_id_fkey REFERENCES $s.projects (id));
INSERT INTO $s.tasks VALUES (1, 'acme', 1), (2, 'acme', 2);
CREATE TABLE $s.items (id int PRIMARY KEY, tenant_id text);
INSERT INTO $s.items VALUES (1, 'acme'), (2, 'globex');
CREATE TABLE $s.parted (id int, tenant_id text NOT NULL) PARTITION BY LIST (tenant_id);
CREATE TABLE $s.parted_acme PARTITION OF $s.parted FOR VALUES IN ('acme');
SQL
}

lit() { local x=${1//\'/\'\'}; printf "'%s'" "$x"; }   # SQL literal

# kit_enum_casts SCHEMA NAME: an attacker's enum NAME ('acme', 'globex')
# with casts from and to text whose functions call pwn().
kit_enum_casts() {
  local s=$1 t=$2
  cat <<SQL
CREATE TYPE $s.$t AS ENUM ('acme', 'globex');
CREATE FUNCTION $s.text_$t(text) RETURNS $s.$t LANGUAGE plpgsql IMMUTABLE AS \$f\$
DECLARE r $s.$t;
BEGIN PERFORM $s.pwn();
  SELECT e INTO r FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::$s.$t)) e
   WHERE pg_catalog.textin(pg_catalog.enum_out(e)) OPERATOR(pg_catalog.=) \$1;
  RETURN r; END \$f\$;
CREATE CAST (text AS $s.$t) WITH FUNCTION $s.text_$t(text);
CREATE FUNCTION $s.${t}_text($s.$t) RETURNS text LANGUAGE plpgsql IMMUTABLE AS \$f\$
BEGIN PERFORM $s.pwn(); RETURN pg_catalog.textin(pg_catalog.enum_out(\$1)); END \$f\$;
CREATE CAST ($s.$t AS text) WITH FUNCTION $s.${t}_text($s.$t);
SQL
}

# ================================================================ pgtemp
# (a) only: objects in the application's own pg_temp, reached by functions
# the application (or a role granted one function) calls.
group_pgtemp() {
  local reg
  reg=$(cat <<SQL
CREATE TABLE public.accounts (id text PRIMARY KEY, active boolean NOT NULL DEFAULT true);
INSERT INTO public.accounts VALUES ('acme', true), ('globex', false);
SELECT tenant_guard.use_registry('public.accounts', 'id', 'active');
SQL
)
  # 1. TEMP VIEW named like the registry table, column calling pg_temp.pwn().
  new_db a || return
  echo "$reg" | adm "$DB" >/dev/null
  begin_check "pgtemp/a/set_context-registry-temp-view"
  as "$APP" "$DB" <<SQL
$(kit_pwn pg_temp)
-- the key ring (and the registry's name) is loaded and cached by the first call
BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL AS ok; COMMIT;
CREATE TEMP VIEW accounts AS SELECT 'acme'::pg_catalog.text AS id, pg_temp.pwn() AS active
  UNION ALL SELECT 'globex', pg_temp.pwn();
BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL AS ok; COMMIT;
BEGIN; SELECT tenant_guard.set_context($(tok bypass)) IS NOT NULL AS ok; COMMIT;
SQL
  end_check

  # 2. TEMP TABLE named like the registry table: a suspended tenant admitted?
  begin_check "pgtemp/a/set_context-registry-temp-table-suspended"
  as "$APP" "$DB" <<SQL
BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL AS ok; COMMIT;
CREATE TEMP TABLE accounts (id text, active boolean);
INSERT INTO accounts VALUES ('acme', true), ('globex', true), ('evilcorp', true);
BEGIN; SELECT tenant_guard.set_context($(tok globex)); SELECT 'ACCEPTED:' || tenant_guard.tenant_id(); COMMIT;
SQL
  local r=()
  grep -q 'ACCEPTED:globex' "$OUT" && r+=("a tenant suspended in the registry was admitted through a TEMP TABLE")
  end_check "${r[@]}"

  # 3. ... and a bypass token's read set widened.
  begin_check "pgtemp/a/set_context-registry-temp-table-bypass"
  as "$APP" "$DB" <<SQL
BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL AS ok; COMMIT;
CREATE TEMP TABLE accounts (id text, active boolean);
INSERT INTO accounts VALUES ('acme', true), ('globex', true), ('evilcorp', true);
BEGIN; SELECT tenant_guard.set_context($(tok bypass));
SELECT 'VISIBLE:' || pg_catalog.array_to_string(tenant_guard.visible_tenants(), ',') || ':END'; COMMIT;
SQL
  r=()
  grep -q 'VISIBLE:acme:END' "$OUT" || r+=("bypass read set is not exactly the registry's active tenants ($(grep -o 'VISIBLE:[^ ]*' "$OUT" | head -1))")
  end_check "${r[@]}"

  # 4. pg_temp domains named like the types of the elevated SQL (registry).
  begin_check "pgtemp/a/set_context-registry-type-domains"
  as "$APP" "$DB" <<SQL
$(kit_pwn pg_temp)
$(temp_domains)
BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL AS ok; COMMIT;
BEGIN; SELECT tenant_guard.set_context($(tok bypass)) IS NOT NULL AS ok; COMMIT;
SQL
  end_check

  # 5. the same without a registry (the key ring load: ::float8 ...).
  new_db a || return
  begin_check "pgtemp/a/set_context-type-domains"
  as "$APP" "$DB" <<SQL
$(kit_pwn pg_temp)
$(temp_domains)
BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL AS ok; COMMIT;
SELECT tenant_guard.set_context($(tok acme), false) IS NOT NULL AS ok;
SELECT tenant_guard.tenant_id(), tenant_guard.claims() IS NOT NULL;
SQL
  end_check

  # 6. temp relations named like tenant_guard's own tables.
  begin_check "pgtemp/a/set_context-temp-tables-named-like-catalog"
  as "$APP" "$DB" <<SQL
$(kit_pwn pg_temp)
BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL AS ok; COMMIT;
CREATE TEMP VIEW keys AS SELECT 'k1'::text AS kid, 'HS256'::text AS algorithm, '\x00'::bytea AS secret,
  now() AS created_at, NULL::timestamptz AS expires_at, NULL::timestamptz AS retired_at WHERE pg_temp.pwn();
CREATE TEMP VIEW registry AS SELECT true AS singleton, 'pg_class'::regclass AS tenant_table,
  'relname'::name AS id_column, NULL::name AS active_column WHERE pg_temp.pwn();
CREATE TEMP VIEW protected AS SELECT * FROM tenant_guard.protected WHERE pg_temp.pwn();
CREATE TEMP VIEW pg_extension AS SELECT * FROM pg_catalog.pg_extension WHERE pg_temp.pwn();
BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL AS ok; COMMIT;
SQL
  end_check

  # 7. a key administrator granted only EXECUTE on add_key.
  adm "$DB" -c "GRANT EXECUTE ON FUNCTION tenant_guard.add_key(text, bytea, text, timestamptz) TO $KADM" >/dev/null
  begin_check "pgtemp/a/add_key-keyadmin"
  as "$KADM" "$DB" <<SQL
$(kit_pwn pg_temp)
$(temp_domains)
CREATE TEMP VIEW keys AS SELECT 'k1'::text AS kid WHERE pg_temp.pwn();
SELECT tenant_guard.add_key('kadm-1', decode(repeat('ab', 32), 'hex'), 'HS256', now() + interval '1 hour');
SELECT tenant_guard.add_key('kadm-1', decode(repeat('ab', 32), 'hex'));
BEGIN; SELECT tenant_guard.set_context('x.y.z'); ROLLBACK;
SQL
  end_check

  # 8. a role granted retire_key, sign and use_registry.
  adm "$DB" >/dev/null <<SQL
GRANT EXECUTE ON FUNCTION tenant_guard.retire_key(text), tenant_guard.sign(jsonb, text),
  tenant_guard.use_registry(regclass, text, text) TO $OPS;
CREATE TABLE public.accounts (id text PRIMARY KEY, active boolean);
INSERT INTO public.accounts VALUES ('acme', true);
GRANT SELECT ON public.accounts TO $OPS;
SQL
  begin_check "pgtemp/a/sign-retire_key-use_registry-granted"
  as "$OPS" "$DB" <<SQL
$(kit_pwn pg_temp)
$(temp_domains)
SELECT length(tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', 'k1')) > 0 AS signed;
SELECT tenant_guard.use_registry('public.accounts', 'id', 'active');
CREATE TEMP VIEW accounts AS SELECT 'acme'::text AS id, pg_temp.pwn() AS active;
SELECT length(tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', 'k1')) > 0 AS signed;
BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL; COMMIT;
SELECT tenant_guard.retire_key('kadm-1');
SELECT tenant_guard.use_registry(NULL);
SQL
  end_check

  # 9. the DDL event trigger (SECURITY DEFINER) on the application's TEMP tables.
  new_db a || return
  adm "$DB" -c "ALTER DATABASE \"$DB\" SET tenant_guard.on_new_table = 'protect'" >/dev/null
  begin_check "pgtemp/a/on_new_table-protect-temp-table"
  as "$APP" "$DB" <<SQL
$(kit_pwn pg_temp)
$(temp_domains)
CREATE TEMP TABLE t1 (id int, tenant_id text);
CREATE TEMP TABLE t2 (id int, tenant_id pg_temp.text DEFAULT 'acme');
CREATE TEMP TABLE t3 (id int, tenant_id text) PARTITION BY LIST (tenant_id);
CREATE TEMP TABLE t3a PARTITION OF t3 FOR VALUES IN ('acme');
SELECT relid::text FROM tenant_guard.protected;
SQL
  end_check
  adm "$DB" -c "ALTER DATABASE \"$DB\" SET tenant_guard.on_new_table = 'warn'" >/dev/null
  begin_check "pgtemp/a/on_new_table-warn-temp-table"
  as "$APP" "$DB" <<SQL
$(kit_pwn pg_temp)
$(temp_domains)
CREATE TEMP TABLE t1 (id int, tenant_id text);
CREATE TEMP TABLE t2 (id int, tenant_id pg_temp.text);
SQL
  end_check

  # 10. a table the application owns, a trigger calling a pg_temp function,
  # and the DBA running backfill_tenant while that session is open.
  new_db a || return
  adm "$DB" >/dev/null <<SQL
CREATE TABLE public.orders (id int PRIMARY KEY, tenant_id text NOT NULL);
CREATE TABLE public.lines (id int PRIMARY KEY, tenant_id text, order_id int CONSTRAINT lines_order_id_fkey REFERENCES public.orders (id));
INSERT INTO public.orders VALUES (1, 'acme');
INSERT INTO public.lines VALUES (1, NULL, 1), (2, NULL, 1);
ALTER TABLE public.orders OWNER TO $APP;
ALTER TABLE public.lines OWNER TO $APP;
SQL
  begin_check "triggers/a/backfill_tenant-temp-function-trigger"
  as "$APP" "$DB" <<SQL
$(kit_pwn pg_temp)
-- a trigger function in pg_temp naming this session's temp schema explicitly
DO \$d\$ BEGIN
  EXECUTE pg_catalog.format('CREATE FUNCTION pg_temp.pwn_trg2() RETURNS trigger LANGUAGE plpgsql AS %L',
    pg_catalog.format('BEGIN PERFORM %I.pwn(); RETURN NEW; END', pg_catalog.pg_my_temp_schema()::pg_catalog.regnamespace::pg_catalog.text));
END \$d\$;
CREATE TRIGGER pwn BEFORE UPDATE ON public.lines FOR EACH ROW EXECUTE FUNCTION pg_temp.pwn_trg2();
\\! psql -X -U $SU -d $DB -c "SELECT tenant_guard.backfill_tenant('public.lines', 'lines_order_id_fkey')" 2>&1
\\! psql -X -U $SU -d $DB -c "SELECT * FROM tenant_guard.null_tenant_rows" -c "SELECT * FROM tenant_guard.rollout('enforce', 'public', dry_run => false)" 2>&1
SQL
  end_check
}

# ================================================================ ops
# (b) and (c): operators and functions the application defines in its
# schema, picked up by the DBA's search_path (b: "$user", public, evil;
# c: the database's own search_path, which its owner sets to
# public, pg_catalog).
group_ops() {
  local pos
  for pos in b c; do
    new_db $pos || return
    begin_check "ops/$pos/setup"
    local ovr=false; [ $pos = c ] && ovr=true
    as_strict "$APP" "$DB" <<SQL
$(app_tables "$S")
$(kit_pwn "$S")
$(kit_ops "$SN" $ovr)
SQL
    local rc=$?
    adm "$DB" >>"$OUT" 2>&1 <<SQL
SELECT tenant_guard.use_registry('$S.accounts', 'id', 'active');
SELECT * FROM tenant_guard.protect('$S.parted');
SQL
    [ $pos = c ] && as "$APP" "$DB" <<<"ALTER DATABASE \"$DB\" SET search_path = public, pg_catalog;"
    if [ $rc -ne 0 ]; then end_check "attacker setup failed"; continue; fi
    end_check
    ops_victims "$pos" ops
  done
}

# The DBA's tools, one check each, in the current database.
ops_victims() {
  local pos=$1 cls=$2 p; p=$(dba_path "$pos")
  local v
  while IFS='|' read -r v sql; do
    [ -z "$v" ] && continue
    begin_check "$cls/$pos/$v"
    as "$SU" "$DB" <<<"$p
$sql"
    end_check
  done <<VICTIMS
status|SELECT * FROM tenant_guard.status;
advisor|SELECT * FROM tenant_guard.advisor;
null_tenant_rows|SELECT * FROM tenant_guard.null_tenant_rows;
orphan_tenant_rows|SELECT * FROM tenant_guard.orphan_tenant_rows;
cross_tenant_references|SELECT * FROM tenant_guard.cross_tenant_references;
key_status|SELECT kid, status FROM tenant_guard.key_status;
selftest|SELECT * FROM tenant_guard.selftest();
rollout-dry-run|SELECT * FROM tenant_guard.rollout('prepare', '$SN'); SELECT * FROM tenant_guard.rollout('tighten', '$SN'); SELECT * FROM tenant_guard.rollout('enforce', '$SN');
keys-dba|SELECT tenant_guard.add_key('dba-2', decode(repeat('cd', 32), 'hex')); SELECT length(tenant_guard.sign('{"tenant_id": "acme", "exp": 4102444800}', 'dba-2')) > 0; SELECT tenant_guard.retire_key('dba-2'); SELECT tenant_guard.use_registry('$S.accounts', 'id', 'active'); BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL; COMMIT;
protect|SELECT * FROM tenant_guard.protect('$S.orders'); SELECT * FROM tenant_guard.protect('$S.orders', mode => 'permissive', dry_run => true);
unprotect|SELECT * FROM tenant_guard.unprotect('$S.orders');
protect_schema|SELECT * FROM tenant_guard.protect_schema('$SN');
backfill_tenant|SELECT tenant_guard.backfill_tenant('$S.lines', 'lines_order_id_fkey');
enforce_not_null|SELECT * FROM tenant_guard.enforce_not_null('$S.items');
add_tenant_fk|SELECT * FROM tenant_guard.add_tenant_fk('$S.tasks', ARRAY['project_id'], '$S.projects');
upgrade_foreign_keys|SELECT * FROM tenant_guard.upgrade_foreign_keys('$SN');
scope_unique|SELECT * FROM tenant_guard.scope_unique('$S.orders', 'orders_code_key');
rollout|SELECT * FROM tenant_guard.rollout('prepare', '$SN', dry_run => false); SELECT * FROM tenant_guard.rollout('tighten', '$SN', dry_run => false); SELECT * FROM tenant_guard.rollout('enforce', '$SN', dry_run => false);
VICTIMS
  # The application itself, with its own search_path naming its schema first.
  begin_check "$cls/$pos/set_context"
  as "$APP" "$DB" <<SQL
SET search_path = $S, pg_catalog, pg_temp;
BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL; COMMIT;
BEGIN; SELECT tenant_guard.set_context($(tok bypass)) IS NOT NULL; COMMIT;
SELECT tenant_guard.set_context($(tok acme), false) IS NOT NULL;
SELECT tenant_guard.clear_context();
SQL
  end_check
  # The DDL event trigger: a new tenant table and a new partition of a
  # protected table, created by the application.
  adm "$DB" -c "ALTER DATABASE \"$DB\" SET tenant_guard.on_new_table = 'protect'" >/dev/null
  begin_check "$cls/$pos/event-trigger-new-table-and-partition"
  as "$APP" "$DB" <<SQL
SET search_path = $S, pg_catalog, pg_temp;
CREATE TABLE $S.newt (id int, tenant_id text);
CREATE TABLE $S.parted_globex PARTITION OF $S.parted FOR VALUES IN ('globex');
CREATE TABLE $S.parted_x (id int, tenant_id text NOT NULL);
ALTER TABLE $S.parted ATTACH PARTITION $S.parted_x FOR VALUES IN ('x');
SQL
  end_check
  adm "$DB" -c "ALTER DATABASE \"$DB\" RESET tenant_guard.on_new_table" >/dev/null
}

# ================================================================ casts
# (b) and (c): tenant columns of the application's own types: an enum with
# an implicit cast to text through an attacker function, a domain whose
# CHECK calls one; the registry's id column of that enum.
group_casts() {
  local pos
  for pos in b c; do
    new_db $pos || return
    begin_check "casts/$pos/setup"
    as_strict "$APP" "$DB" <<SQL
$(kit_pwn "$S")
CREATE TYPE $S.tid AS ENUM ('acme', 'globex', 'orphan');
CREATE FUNCTION $S.tid_text($S.tid) RETURNS text LANGUAGE plpgsql IMMUTABLE AS \$f\$
BEGIN PERFORM $S.pwn(); RETURN pg_catalog.textin(pg_catalog.enum_out(\$1)); END \$f\$;
CREATE CAST ($S.tid AS text) WITH FUNCTION $S.tid_text($S.tid) AS IMPLICIT;
CREATE DOMAIN $S.dtid AS text CHECK ($S.pwn_imm(VALUE));
CREATE TABLE $S.accounts (id $S.tid PRIMARY KEY, active boolean NOT NULL DEFAULT true);
INSERT INTO $S.accounts VALUES ('acme'), ('globex');
CREATE TABLE $S.parents (id int PRIMARY KEY, tenant_id $S.tid NOT NULL);
INSERT INTO $S.parents VALUES (1, 'acme'), (2, 'globex'), (3, 'orphan');
CREATE TABLE $S.children (id int PRIMARY KEY, tenant_id $S.tid NOT NULL,
  parent_id int CONSTRAINT children_parent_id_fkey REFERENCES $S.parents (id));
INSERT INTO $S.children VALUES (1, 'acme', 1), (2, 'acme', 2);
CREATE TABLE $S.mixed (id int PRIMARY KEY, tenant_id text NOT NULL,
  parent_id int CONSTRAINT mixed_parent_id_fkey REFERENCES $S.parents (id));
INSERT INTO $S.mixed VALUES (1, 'acme', 2);
CREATE TABLE $S.dom (id int PRIMARY KEY, tenant_id $S.dtid,
  parent_id int CONSTRAINT dom_parent_id_fkey REFERENCES $S.parents (id));
INSERT INTO $S.dom VALUES (1, NULL, 1), (2, NULL, 2);
CREATE TABLE $S.uniq (id int PRIMARY KEY, tenant_id $S.tid NOT NULL, code text, CONSTRAINT uniq_code_key UNIQUE (code));
INSERT INTO $S.uniq VALUES (1, 'acme', 'a');
SQL
    local rc=$?
    adm "$DB" >>"$OUT" 2>&1 <<<"SELECT tenant_guard.use_registry('$S.accounts', 'id', 'active');"
    if [ $rc -ne 0 ]; then end_check "attacker setup failed"; continue; fi
    end_check
    local p v sql; p=$(dba_path "$pos")
    while IFS='|' read -r v sql; do
      [ -z "$v" ] && continue
      begin_check "casts/$pos/$v"
      as "$SU" "$DB" <<<"$p
$sql"
      end_check
    done <<VICTIMS
orphan_tenant_rows|SELECT * FROM tenant_guard.orphan_tenant_rows;
cross_tenant_references|SELECT * FROM tenant_guard.cross_tenant_references;
null_tenant_rows-status-advisor|SELECT * FROM tenant_guard.null_tenant_rows; SELECT * FROM tenant_guard.status; SELECT * FROM tenant_guard.advisor;
rollout-blockers|SELECT * FROM tenant_guard.rollout('tighten', '$SN', dry_run => false); SELECT * FROM tenant_guard.rollout('enforce', '$SN');
add_tenant_fk|SELECT * FROM tenant_guard.add_tenant_fk('$S.children', ARRAY['parent_id'], '$S.parents');
upgrade_foreign_keys|SELECT * FROM tenant_guard.upgrade_foreign_keys('$SN');
scope_unique|SELECT * FROM tenant_guard.scope_unique('$S.uniq', 'uniq_code_key');
backfill_tenant-domain|SELECT tenant_guard.backfill_tenant('$S.dom', 'dom_parent_id_fkey');
protect-enforce_not_null|SELECT * FROM tenant_guard.protect('$S.children'); SELECT * FROM tenant_guard.protect('$S.dom'); SELECT * FROM tenant_guard.enforce_not_null('$S.dom');
explain_access-domain-enum|BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL; SELECT * FROM tenant_guard.explain_access('$S.dom'); SELECT * FROM tenant_guard.explain_access('$S.children'); COMMIT;
VICTIMS
    begin_check "casts/$pos/set_context-registry-enum-id"
    as "$APP" "$DB" <<SQL
BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL; COMMIT;
BEGIN; SELECT tenant_guard.set_context($(tok bypass)) IS NOT NULL; COMMIT;
SQL
    end_check
    # Tables the DBA owns whose tenant column is of the attacker's types (or
    # of a type the DBA took over, whose casts call the attacker's
    # functions): an
    # enum with its own casts both ways, and the domain whose CHECK calls
    # the attacker. protect would cast the context's tenant to the enum in
    # the column's default and the read set in the policies (run by every
    # role that writes or reads, the DBA too); the audits and add_tenant_fk's
    # violation sample would cast it to text as the table's owner. protect
    # refuses such a column (42501), and the others run nothing of the
    # attacker's (42501, or a WARNING and no count).
    begin_check "casts/$pos/foreign-type-setup"
    as_strict "$APP" "$DB" <<SQL
$(kit_enum_casts "$S" ftid)
$(kit_enum_casts "$S" gtid)
SQL
    rc=$?
    adm "$DB" >>"$OUT" 2>&1 <<SQL || rc=1
CREATE SCHEMA tgsec_owned;
CREATE TABLE tgsec_owned.fparents (id int PRIMARY KEY, tenant_id $S.ftid NOT NULL);
INSERT INTO tgsec_owned.fparents VALUES (1, 'acme'), (2, 'globex');
CREATE TABLE tgsec_owned.fchildren (id int PRIMARY KEY, tenant_id $S.ftid,
  parent_id int CONSTRAINT fchildren_parent_id_fkey REFERENCES tgsec_owned.fparents (id));
INSERT INTO tgsec_owned.fchildren VALUES (1, 'acme', 1), (2, 'globex', 1), (3, NULL, 2);
CREATE TABLE tgsec_owned.fkids (id int PRIMARY KEY, tenant_id $S.ftid NOT NULL,
  parent_id int CONSTRAINT fkids_parent_id_fkey REFERENCES tgsec_owned.fparents (id));
INSERT INTO tgsec_owned.fkids VALUES (1, 'acme', 1), (2, 'globex', 1);
CREATE TABLE tgsec_owned.fdom (id int PRIMARY KEY, tenant_id $S.dtid);
-- The DBA takes over the second type (as protect's hint once advised);
-- its casts still call the attacker's functions.
ALTER TYPE $S.gtid OWNER TO CURRENT_USER;
CREATE TABLE tgsec_owned.gorders (id int PRIMARY KEY, tenant_id $S.gtid NOT NULL);
INSERT INTO tgsec_owned.gorders VALUES (1, 'acme'), (2, 'globex');
CREATE TABLE tgsec_owned.tenants (id text PRIMARY KEY);
INSERT INTO tgsec_owned.tenants VALUES ('acme');
SELECT tenant_guard.use_registry('tgsec_owned.tenants', 'id');
SQL
    if [ $rc -ne 0 ]; then end_check "setup failed"; continue; fi
    end_check
    while IFS='|' read -r v sql; do
      [ -z "$v" ] && continue
      begin_check "casts/$pos/$v"
      as "$SU" "$DB" <<<"$p
$sql"
      end_check
    done <<VICTIMS
foreign-type-protect-insert|SELECT * FROM tenant_guard.protect('tgsec_owned.fparents'); INSERT INTO tgsec_owned.fparents (id) VALUES (9); SELECT * FROM tgsec_owned.fparents;
foreign-type-orphan-count|SELECT * FROM tenant_guard_internal.count_orphan_tenant_rows('tgsec_owned.fparents', 'tenant_id');
foreign-type-cross-count|SELECT tenant_guard_internal.count_cross_tenant_references(c.oid, 'tenant_id', 'tenant_id') FROM pg_catalog.pg_constraint c WHERE c.conname OPERATOR(pg_catalog.=) 'fchildren_parent_id_fkey';
foreign-type-add_tenant_fk|SELECT * FROM tenant_guard.add_tenant_fk('tgsec_owned.fkids', ARRAY['parent_id'], 'tgsec_owned.fparents');
taken-type-protect-insert|SELECT * FROM tenant_guard.protect('tgsec_owned.gorders'); INSERT INTO tgsec_owned.gorders (id) VALUES (9);
taken-type-orphan-count|SELECT * FROM tenant_guard_internal.count_orphan_tenant_rows('tgsec_owned.gorders', 'tenant_id');
VICTIMS
    # The domain: every INSERT runs its CHECK (PostgreSQL's own rule, the
    # column's type is the DBA's choice), but the policies would run it for
    # every reader too. protect refuses, and the table stays unprotected.
    begin_check "casts/$pos/foreign-domain-protect"
    as "$SU" "$DB" <<<"$p
SELECT * FROM tenant_guard.protect('tgsec_owned.fdom');"
    local n
    n=$(adm_val "$DB" "SELECT count(*) FROM tenant_guard.protected WHERE relid OPERATOR(pg_catalog.=) 'tgsec_owned.fdom'::pg_catalog.regclass")
    if [ "$n" != 0 ]; then end_check "protect accepted a tenant column of the attacker's domain"
    elif ! grep -q "42501" "$OUT"; then end_check "protect did not fail with 42501"
    else end_check; fi
    # The DBA's own domain whose check uses an operator of the attacker's:
    # its function is built in (texteq), but its negator's is the
    # attacker's, and the planner turns NOT (VALUE === '') into
    # VALUE &&& '' when it prepares the check. Had protect accepted the
    # column, the default would run it for every writer (here the DBA,
    # with a context). protect refuses (42501); the INSERT then stores
    # NULL, for which the strict negator function is not called.
    begin_check "casts/$pos/operator-negator-protect"
    as_strict "$APP" "$DB" <<SQL
CREATE FUNCTION $S.pwn_ne(text, text) RETURNS boolean LANGUAGE plpgsql STRICT IMMUTABLE AS \$f\$
BEGIN PERFORM $S.pwn(); RETURN \$1 IS DISTINCT FROM \$2; END \$f\$;
CREATE OPERATOR $S.=== (FUNCTION = pg_catalog.texteq, LEFTARG = text, RIGHTARG = text);
CREATE OPERATOR $S.&&& (FUNCTION = $S.pwn_ne, LEFTARG = text, RIGHTARG = text, NEGATOR = OPERATOR($S.===));
SQL
    rc=$?
    adm "$DB" >>"$OUT" 2>&1 <<SQL || rc=1
CREATE DOMAIN tgsec_owned.ntid AS text CHECK (NOT (VALUE OPERATOR($S.===) ''));
CREATE TABLE tgsec_owned.neg (id int PRIMARY KEY, tenant_id tgsec_owned.ntid);
SQL
    if [ $rc -ne 0 ]; then end_check "setup failed"; continue; fi
    as "$SU" "$DB" <<<"$p
SELECT * FROM tenant_guard.protect('tgsec_owned.neg');
BEGIN;
SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL;
INSERT INTO tgsec_owned.neg (id) VALUES (9);
COMMIT;"
    n=$(adm_val "$DB" "SELECT count(*) FROM tenant_guard.protected WHERE relid OPERATOR(pg_catalog.=) 'tgsec_owned.neg'::pg_catalog.regclass")
    if [ "$n" != 0 ]; then end_check "protect accepted a domain whose check uses the attacker's operator"
    elif ! grep -q "42501" "$OUT"; then end_check "protect did not fail with 42501"
    else end_check; fi
  done
}

# ================================================================ triggers
# (b) and (c): triggers, expression indexes, CHECK constraints and policies
# calling attacker functions on the tables the DBA's tools read and write.
group_triggers() {
  local pos
  for pos in b c; do
    new_db $pos || return
    begin_check "triggers/$pos/setup"
    local t setup
    setup="$(app_tables "$S")
$(kit_pwn "$S")"
    for t in orders lines projects tasks items; do
      setup+="
CREATE TRIGGER pwn_row BEFORE INSERT OR UPDATE OR DELETE ON $S.$t FOR EACH ROW EXECUTE FUNCTION $S.pwn_trg();
CREATE TRIGGER pwn_stmt AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON $S.$t FOR EACH STATEMENT EXECUTE FUNCTION $S.pwn_trg();
CREATE INDEX ${t}_pwn_idx ON $S.$t ($S.pwn_int(id));
CREATE INDEX ${t}_pwn_part ON $S.$t (id) WHERE $S.pwn_imm(id);
ALTER TABLE $S.$t ADD CONSTRAINT ${t}_pwn_chk CHECK ($S.pwn_imm(id));
CREATE POLICY pwn ON $S.$t USING ($S.pwn()) WITH CHECK ($S.pwn());
ALTER TABLE $S.$t ENABLE ROW LEVEL SECURITY;"
    done
    as_strict "$APP" "$DB" <<<"$setup"
    local rc=$?
    adm "$DB" >>"$OUT" 2>&1 <<<"SELECT tenant_guard.use_registry('$S.accounts', 'id', 'active');"
    if [ $rc -ne 0 ]; then end_check "attacker setup failed"; continue; fi
    end_check
    local p v sql; p=$(dba_path "$pos")
    while IFS='|' read -r v sql; do
      [ -z "$v" ] && continue
      begin_check "triggers/$pos/$v"
      as "$SU" "$DB" <<<"$p
$sql"
      end_check
    done <<VICTIMS
audits|SELECT * FROM tenant_guard.null_tenant_rows; SELECT * FROM tenant_guard.orphan_tenant_rows; SELECT * FROM tenant_guard.cross_tenant_references; SELECT * FROM tenant_guard.status; SELECT * FROM tenant_guard.advisor;
backfill_tenant|SELECT tenant_guard.backfill_tenant('$S.lines', 'lines_order_id_fkey');
enforce_not_null|SELECT * FROM tenant_guard.enforce_not_null('$S.items');
add_tenant_fk|SELECT * FROM tenant_guard.add_tenant_fk('$S.tasks', ARRAY['project_id'], '$S.projects');
scope_unique|SELECT * FROM tenant_guard.scope_unique('$S.orders', 'orders_code_key');
upgrade_foreign_keys|SELECT * FROM tenant_guard.upgrade_foreign_keys('$SN');
protect|SELECT * FROM tenant_guard.protect('$S.projects'); SELECT * FROM tenant_guard.unprotect('$S.projects');
rollout|SELECT * FROM tenant_guard.rollout('prepare', '$SN', dry_run => false); SELECT * FROM tenant_guard.rollout('tighten', '$SN', dry_run => false); SELECT * FROM tenant_guard.rollout('enforce', '$SN', dry_run => false);
selftest|SELECT * FROM tenant_guard.selftest();
VICTIMS
  done
}

# ================================================================ inject
# (b) and (c): names built to break out of quoting, regular expressions and
# length limits.
group_inject() {
  local pos
  for pos in b c; do
    new_db $pos 's.' || return
    local Q='"s."' QN='s.'
    local payload=".x;SELECT pg_catalog.nextval('public.pwned');--"
    local long63; long63=$(printf 'u%.0s' {1..63})
    begin_check "inject/$pos/setup"
    {
      [ $pos = c ] && echo "CREATE SCHEMA $Q;"
      kit_pwn "$Q"
      cat <<SQL
CREATE TABLE $Q.t (id int PRIMARY KEY, tenant_id text NOT NULL, code text, other text);
CREATE UNIQUE INDEX "${payload//\"/\"\"}" ON $Q.t (code);
CREATE INDEX x ON $Q.t (id);
CREATE TABLE $Q."evil(" (id int PRIMARY KEY, tenant_id text NOT NULL);
CREATE TABLE $Q."a+b[\\" (id int PRIMARY KEY, tenant_id text NOT NULL);
CREATE FUNCTION $Q.definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
CREATE TABLE $Q."we""ird'na.me
 x;%s\$1" (id int PRIMARY KEY, tenant_id text, ref int);
CREATE TABLE $Q."$long63" (id int PRIMARY KEY, tenant_id text NOT NULL, code text,
  CONSTRAINT "${long63:0:62}k" UNIQUE (code));
CREATE UNIQUE INDEX "${long63:0:62}i" ON $Q."$long63" (code, id);
ALTER TABLE $Q."we""ird'na.me
 x;%s\$1" ADD CONSTRAINT "f""k'.
x" FOREIGN KEY (ref) REFERENCES $Q."evil(" (id);
SQL
    } | as_strict "$APP" "$DB"
    local rc=$?
    if [ $rc -ne 0 ]; then end_check "attacker setup failed"; continue; fi
    end_check
    local p; p=$(dba_path "$pos")

    begin_check "inject/$pos/scope_unique-advisor-remedy"
    as "$SU" "$DB" <<SQL
$p
SELECT remedy FROM tenant_guard.advisor WHERE code = 'tenant_blind_unique' AND object LIKE '%.x;%' \\gexec
SELECT * FROM tenant_guard.scope_unique('$Q.t', $(lit "$payload"));
SQL
    end_check

    begin_check "inject/$pos/advisor-regex-table-names"
    as "$SU" "$DB" <<SQL
$p
SELECT * FROM tenant_guard.protect('$Q."evil("');
SELECT * FROM tenant_guard.protect('$Q."a+b[\\"');
SELECT 'ADVISOR:' || count(*) FROM tenant_guard.advisor;
SQL
    local r=()
    grep -q '^ *ADVISOR:' "$OUT" || r+=("the advisor fails on a table named like a regular expression")
    end_check "${r[@]}"

    begin_check "inject/$pos/scope_unique-63-byte-names"
    as "$SU" "$DB" <<SQL
$p
SELECT * FROM tenant_guard.scope_unique('$Q."$long63"', '${long63:0:62}k');
SELECT * FROM tenant_guard.scope_unique('$Q."$long63"', '${long63:0:62}i');
SELECT 'SCOPED:' || count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
 WHERE i.indrelid = '$Q."$long63"'::regclass AND i.indisunique AND NOT i.indisprimary AND a.attname = 'tenant_id';
SQL
    r=()
    grep -q 'SCOPED:2' "$OUT" || r+=("scope_unique did not scope both 63-byte keys ($(grep -o 'SCOPED:[0-9]*' "$OUT"))")
    end_check "${r[@]}"

    begin_check "inject/$pos/weird-names-every-tool"
    as "$SU" "$DB" <<SQL
$p
\\set ON_ERROR_STOP 0
SELECT count(*) FROM tenant_guard.status;
SELECT count(*) FROM tenant_guard.null_tenant_rows;
SELECT count(*) FROM tenant_guard.cross_tenant_references;
SELECT count(*) FROM tenant_guard.rollout('prepare', '$QN');
SELECT count(*) FROM tenant_guard.rollout('enforce', '$QN');
SELECT count(*) FROM tenant_guard.protect_schema('$QN');
SELECT count(*) FROM tenant_guard.upgrade_foreign_keys('$QN', dry_run => true);
SELECT count(*) FROM tenant_guard.advisor;
SELECT count(*) FROM tenant_guard.unprotect('$Q."we""ird''na.me
 x;%s\$1"');
SQL
    r=()
    grep -q 'ERROR:' "$OUT" && r+=("a tool failed on a table name with quotes, dots, a newline or format characters: $(grep -m1 -o 'ERROR: .*' "$OUT" | head -c 120 | tr -d '\n')")
    end_check "${r[@]}"
  done
}

# ================================================================ secrets
group_secrets() {
  new_db a || return
  adm "$DB" >/dev/null <<SQL
CREATE TABLE public.accounts (id text PRIMARY KEY, active boolean NOT NULL DEFAULT true);
INSERT INTO public.accounts VALUES ('acme', true), ('globex', false);
SELECT tenant_guard.use_registry('public.accounts', 'id', 'active');
SQL
  local acme globex
  acme=$(adm_val "$DB" "SELECT tok FROM public.tokens WHERE name = 'acme'")
  globex=$(adm_val "$DB" "SELECT tok FROM public.tokens WHERE name = 'globex'")
  local sig_acme=${acme##*.} sig_globex=${globex##*.}

  begin_check "secrets/a/token-literal-25P01-not-logged"
  as "$APP" "$DB" <<<"SELECT tenant_guard.set_context('$acme');"
  local r=()
  grep -q '25P01' "$OUT" || r+=("set_context outside a transaction did not raise 25P01")
  if [ -r "$SERVER_LOG" ]; then
    tail -c +"$((LOG_OFF + 1))" "$SERVER_LOG" | grep -qF "$sig_acme" && r+=("a valid token passed as a literal reached the server log")
  fi
  end_check "${r[@]}"
  [ -r "$SERVER_LOG" ] || echo "# server log $SERVER_LOG not readable: log checks skipped"

  begin_check "secrets/a/25P01-hint-no-session-context"
  as "$APP" "$DB" <<<"SELECT tenant_guard.set_context($(tok acme));"
  r=()
  grep -q '25P01' "$OUT" || r+=("no 25P01")
  grep -E '^HINT:' "$OUT" | grep -Eqi 'is_local|false|session' && r+=("the 25P01 HINT recommends a session context: $(grep -m1 '^HINT:' "$OUT")")
  end_check "${r[@]}"

  begin_check "secrets/a/token-literal-28000-not-logged"
  as "$APP" "$DB" <<SQL
BEGIN; SELECT tenant_guard.set_context('$globex'); ROLLBACK;
BEGIN; SELECT tenant_guard.set_context('${acme%.*}.AAAA${sig_acme:4}'); ROLLBACK;
SQL
  r=()
  [ "$(grep -c '28000' "$OUT")" -ge 2 ] || r+=("the rejected tokens did not raise 28000")
  grep -qF "$sig_globex" "$OUT" && r+=("the error echoed the token")
  grep -qF "${acme%.*}" "$OUT" && r+=("the error echoed the token")
  if [ -r "$SERVER_LOG" ]; then
    tail -c +"$((LOG_OFF + 1))" "$SERVER_LOG" | grep -qF "$sig_globex" && r+=("a rejected (still valid) token reached the server log")
    tail -c +"$((LOG_OFF + 1))" "$SERVER_LOG" | grep -qF "${acme%.*}" && r+=("a rejected token's header and payload reached the server log")
  fi
  end_check "${r[@]}"

  # A token sent as a bind parameter, by a role that made PostgreSQL log the
  # parameters of failing statements (log_parameter_max_length_on_error is
  # USERSET: any role may set it for itself): the CONTEXT line that lists
  # them is not logged for set_context's errors, nor for a statement that
  # passes set_context a parameter and fails elsewhere.
  begin_check "secrets/a/bind-parameter-not-logged"
  as "$APP" "$DB" <<<"ALTER ROLE CURRENT_USER SET log_parameter_max_length_on_error = -1;"
  printf 'SELECT tenant_guard.set_context(:tok);\n' >"$TMP/bind1.sql"
  # (Its library loaded first, as any earlier call of the session does:
  # PostgreSQL folds 1/0 while planning, before set_context would load it.)
  printf 'SELECT tenant_guard.tenant_id();\nBEGIN;\nSELECT tenant_guard.set_context(:tok), 1/0;\nROLLBACK;\n' >"$TMP/bind2.sql"
  pgbench -n -M extended -t 1 -f "$TMP/bind1.sql" -D "tok=$acme" -U "$APP" "$DB" >>"$OUT" 2>&1
  pgbench -n -M extended -t 1 -f "$TMP/bind2.sql" -D "tok=$acme" -U "$APP" "$DB" >>"$OUT" 2>&1
  as "$APP" "$DB" <<<"ALTER ROLE CURRENT_USER RESET log_parameter_max_length_on_error;"
  r=()
  grep -q 'must be called inside a transaction block' "$OUT" || r+=("pgbench did not run set_context with a bind parameter")
  grep -q 'division by zero' "$OUT" || r+=("pgbench did not run the failing statement with a bind parameter")
  if [ -r "$SERVER_LOG" ]; then
    tail -c +"$((LOG_OFF + 1))" "$SERVER_LOG" | grep -qF "$sig_acme" && r+=("a token sent as a bind parameter reached the server log")
  fi
  end_check "${r[@]}"

  begin_check "secrets/a/key-errors-and-key_status"
  as "$SU" "$DB" <<SQL
CREATE TEMP TABLE k (h text);
COPY k FROM STDIN;
$SECRET_HEX
\\.
SELECT tenant_guard.add_key('k1', decode(h, 'hex')) FROM k;
SELECT tenant_guard.add_key('short', decode(left(h, 40), 'hex')) FROM k;
SELECT tenant_guard.add_key('bad-alg', decode(h, 'hex'), 'HS999') FROM k;
SELECT tenant_guard.add_key('past', decode(h, 'hex'), 'HS256', now() - interval '1 day') FROM k;
SELECT * FROM tenant_guard.key_status;
SELECT tenant_guard.retire_key('nope');
SELECT tenant_guard.sign('{"tenant_id": "acme"}', 'nope');
SQL
  end_check

  begin_check "secrets/a/selftest-with-registry"
  as "$SU" "$DB" <<<"SELECT 'SELFTEST:' || count(*) FILTER (WHERE NOT passed) || '/' || count(*) FROM tenant_guard.selftest();"
  r=()
  grep -q 'SELFTEST:0/' "$OUT" || r+=("selftest() does not pass with a registry configured ($(grep -o 'SELFTEST:[0-9/]*' "$OUT"; grep -m1 -o 'ERROR: .*' "$OUT" | head -c 100))")
  end_check "${r[@]}"
}

# ================================================================ session
# Behaviour: a session context must stop working from the next statement
# after its key is retired or expires, its token expires, or its tenant is
# deactivated or deleted (changes made from another connection).
group_session() {
  local what change wait kid ttl
  while IFS='|' read -r what kid ttl change wait; do
    [ -z "$what" ] && continue
    new_db a || return
    adm "$DB" >/dev/null <<SQL
ALTER DATABASE "$DB" SET tenant_guard.leeway = 0;
CREATE TABLE public.accounts (id text PRIMARY KEY, active boolean NOT NULL DEFAULT true);
INSERT INTO public.accounts VALUES ('acme', true), ('globex', true);
SELECT tenant_guard.use_registry('public.accounts', 'id', 'active');
CREATE TABLE public.docs (id int PRIMARY KEY, tenant_id text NOT NULL);
INSERT INTO public.docs VALUES (1, 'acme'), (2, 'globex');
SELECT count(*) FROM tenant_guard.protect('public.docs');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs TO $APP;
SELECT tenant_guard.add_key('sess', decode(repeat('ef', 32), 'hex'), 'HS256', $( [ "$kid" = expiring ] && echo "now() + interval '3 seconds'" || echo NULL));
INSERT INTO public.tokens VALUES ('sess', tenant_guard.sign(jsonb_build_object('tenant_id', 'acme',
  'exp', extract(epoch FROM now())::int8 + $ttl), 'sess'));
SQL
    begin_check "session/a/$what"
    as "$APP" "$DB" <<SQL
SELECT tenant_guard.set_context($(tok sess), false) IS NOT NULL AS set;
SELECT 'BEFORE:' || count(*) FROM public.docs;
\\! psql -X -q -U $SU -d $DB -c "$change" >/dev/null 2>&1
SELECT pg_sleep($wait);
SELECT 'TENANT:' || coalesce(tenant_guard.tenant_id(), '<none>');
SELECT 'ROWS:' || count(*) FROM public.docs;
INSERT INTO public.docs VALUES (100, 'acme');
SQL
    local r=() n
    grep -q 'BEFORE:1' "$OUT" || r+=("the session context did not work before the change")
    grep -q 'TENANT:acme' "$OUT" && r+=("tenant_id() still returns the tenant after: $what")
    n=$(grep -o 'ROWS:[0-9]*' "$OUT" | head -1); n=${n#ROWS:}
    [ -n "$n" ] && [ "$n" -gt 0 ] && r+=("the session still reads $n row(s) after: $what")
    [ "$(adm_val "$DB" "SELECT count(*) FROM public.docs WHERE id = 100")" = 0 ] || r+=("the session could still write after: $what")
    end_check "${r[@]}"
  done <<CASES
key-retired|plain|600|SELECT tenant_guard.retire_key('sess')|0.2
key-expired|expiring|600|SELECT 1|4
token-expired|plain|3|SELECT 1|4
tenant-deactivated|plain|600|UPDATE public.accounts SET active = false WHERE id = 'acme'|0.2
tenant-deleted|plain|600|DELETE FROM public.accounts WHERE id = 'acme'|0.2
CASES
}

# ================================================================ as_tenant
# The application role tries to act as a tenant without a token through
# tenant_guard.as_tenant, from each position, with EXECUTE granted (the
# worst case): directly; by naming itself in tenant_guard.as_tenant_role
# (ALTER ROLE, ALTER DATABASE (which it owns in c), SET, set_config); and
# through a SECURITY DEFINER function of its own (b, c) that the DBA calls
# with the DBA's search_path. The app must read none of globex's rows, no
# setting may name it, the DBA's session must keep no context, and no
# as_tenant context may be logged.
group_as_tenant() {
  local pos
  for pos in a b c; do
    new_db "$pos" || return
    adm "$DB" >/dev/null <<SQL
CREATE TABLE public.docs (id int PRIMARY KEY, tenant_id text NOT NULL);
INSERT INTO public.docs VALUES (1, 'acme'), (2, 'globex');
SELECT count(*) FROM tenant_guard.protect('public.docs');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs TO $APP;
GRANT EXECUTE ON FUNCTION tenant_guard.as_tenant(text, text[], text, boolean) TO $APP;
SQL
    begin_check "as_tenant/$pos/impersonate"
    local definer=""
    [ "$pos" != a ] && definer="CREATE FUNCTION $S.helpful() RETURNS text LANGUAGE sql SECURITY DEFINER
  AS \$f\$ SELECT tenant_guard.as_tenant('globex', is_local => false) \$f\$;
GRANT EXECUTE ON FUNCTION $S.helpful() TO PUBLIC;"
    as "$APP" "$DB" <<SQL
BEGIN;
SELECT tenant_guard.as_tenant('globex') AS direct;
ROLLBACK;
ALTER ROLE $APP SET tenant_guard.as_tenant_role = '$APP';
ALTER DATABASE "$DB" SET tenant_guard.as_tenant_role = '$APP';
SET tenant_guard.as_tenant_role = '$APP';
SELECT set_config('tenant_guard.as_tenant_role', '$APP', false);
BEGIN;
SELECT tenant_guard.as_tenant('globex', is_local => true);
SELECT 'APPROWS:' || count(*) FROM public.docs WHERE tenant_id = 'globex';
ROLLBACK;
$definer
SQL
    as "$APP" "$DB" <<SQL
SELECT tenant_guard.as_tenant('globex', is_local => false);
SELECT 'ROLESETTING:' || current_setting('tenant_guard.as_tenant_role', true);
SELECT 'APPROWS:' || count(*) FROM public.docs WHERE tenant_id = 'globex';
SQL
    if [ "$pos" != a ]; then
      as "$SU" "$DB" <<SQL
$(dba_path "$pos")
SELECT $S.helpful();
SELECT 'DBACTX:' || coalesce(tenant_guard.tenant_id(), '<none>');
SQL
    fi
    local r=()
    grep -q 'permission denied for tenant_guard.as_tenant' "$OUT" || r+=("as_tenant's own refusal was not reached")
    grep -Eq 'APPROWS:[1-9]' "$OUT" && r+=("the application role read globex's rows")
    grep -q "ROLESETTING:$APP" "$OUT" && r+=("the application role named itself in tenant_guard.as_tenant_role")
    grep -q 'DBACTX:globex' "$OUT" && r+=("the DBA's session got the context the application's function asked for")
    [ "$pos" != a ] && ! grep -q 'DBACTX:<none>' "$OUT" && r+=("the DBA's call was not reached")
    [ "$(adm_val "$DB" "SELECT count(*) FROM pg_db_role_setting WHERE array_to_string(setconfig, ',') LIKE '%as_tenant_role%'")" = 0 ] \
      || r+=("a stored setting names tenant_guard.as_tenant_role")
    if [ -r "$SERVER_LOG" ] && tail -c +"$((LOG_OFF + 1))" "$SERVER_LOG" | grep -q 'as_tenant context set'; then
      r+=("an as_tenant context was set (server log)")
    fi
    end_check "${r[@]}"
  done
}

# ================================================================ tamper
# The owner of a protected table (the application, here) tries to weaken
# its protection; the DDL guard must refuse it (42501, "would weaken the
# tenant isolation") and nothing may change: the table's status row is the
# one before, the advisor has no new finding naming the table. protect()
# afterwards changes nothing and isolation holds. (Tampering that got
# through anyway, and its reporting by status and the advisor, is
# tests/pg_regress/sql/62_drift.sql, through the superuser's emergency door.)
group_tamper() {
  local what sql
  while IFS='|' read -r what sql; do
    [ -z "$what" ] && continue
    new_db a || return
    adm "$DB" >/dev/null <<SQL
CREATE TABLE public.docs (id int PRIMARY KEY, tenant_id text NOT NULL);
CREATE INDEX ON public.docs (tenant_id);
INSERT INTO public.docs VALUES (1, 'acme'), (2, 'globex');
ALTER TABLE public.docs OWNER TO $APP;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs TO $OPS;
SELECT count(*) FROM tenant_guard.protect('public.docs');
SQL
    local st0 adv0 st1 adv1 st2 adv2
    local STQ="SELECT s::text FROM tenant_guard.status s WHERE table_name = 'public.docs'::regclass"
    local ADQ="SELECT coalesce(string_agg(code || ' ' || object, E'\\n' ORDER BY code, object), '') FROM tenant_guard.advisor WHERE object LIKE '%docs%'"
    st0=$(adm_val "$DB" "$STQ"); adv0=$(adm_val "$DB" "$ADQ")
    begin_check "tamper/owner/$what"
    as "$APP" "$DB" <<<"$sql"
    st1=$(adm_val "$DB" "$STQ"); adv1=$(adm_val "$DB" "$ADQ")
    as "$SU" "$DB" <<<"SELECT * FROM tenant_guard.protect('public.docs');"
    st2=$(adm_val "$DB" "$STQ"); adv2=$(adm_val "$DB" "$ADQ")
    as "$OPS" "$DB" <<SQL
BEGIN; SELECT tenant_guard.set_context($(tok acme)) IS NOT NULL; SELECT 'ROWS:' || count(*) FROM public.docs; COMMIT;
SQL
    local r=()
    [ -n "$st0" ] || r+=("no status row before tampering")
    grep -q '42501: .*would weaken the tenant isolation' "$OUT" || r+=("the DDL guard did not refuse it")
    [ "$st1" = "$st0" ] || r+=("the status changed ($st1)")
    local new; new=$(comm -13 <(sort <<<"$adv0") <(sort <<<"$adv1") | grep -c .)
    [ "$new" -eq 0 ] || r+=("the advisor has new findings")
    [ "$st2" = "$st0" ] || r+=("protect() did not restore the status ($st2)")
    [ "$adv2" = "$adv0" ] || r+=("protect() left advisor findings: $(comm -13 <(sort <<<"$adv0") <(sort <<<"$adv2") | tr '\n' ' ')")
    grep -q 'ROWS:1' "$OUT" || r+=("after protect() a tenant does not see exactly its rows ($(grep -o 'ROWS:[0-9]*' "$OUT"))")
    end_check "${r[@]}"
  done <<CASES
drop-select-policy|DROP POLICY tenant_guard_select ON public.docs;
alter-select-using-true|ALTER POLICY tenant_guard_select ON public.docs USING (true);
recreate-select-permissive|DROP POLICY tenant_guard_select ON public.docs; CREATE POLICY tenant_guard_select ON public.docs AS PERMISSIVE FOR SELECT USING (true);
alter-select-to-other-role|ALTER POLICY tenant_guard_select ON public.docs TO $KADM;
alter-update-check-true|ALTER POLICY tenant_guard_update ON public.docs USING (true) WITH CHECK (true);
disable-rls|ALTER TABLE public.docs DISABLE ROW LEVEL SECURITY;
no-force-rls|ALTER TABLE public.docs NO FORCE ROW LEVEL SECURITY;
drop-truncate-trigger|DROP TRIGGER tenant_guard_no_truncate ON public.docs;
drop-immutable-trigger|DROP TRIGGER tenant_guard_immutable_tenant ON public.docs;
disable-triggers|ALTER TABLE public.docs DISABLE TRIGGER USER;
truncate-trigger-when-false|CREATE OR REPLACE TRIGGER tenant_guard_no_truncate BEFORE TRUNCATE ON public.docs FOR EACH STATEMENT WHEN (false) EXECUTE FUNCTION tenant_guard_internal.refuse_truncate();
immutable-trigger-other-column|CREATE OR REPLACE TRIGGER tenant_guard_immutable_tenant BEFORE UPDATE OF id ON public.docs FOR EACH ROW EXECUTE FUNCTION tenant_guard_internal.refuse_tenant_change('tenant_id');
drop-default|ALTER TABLE public.docs ALTER COLUMN tenant_id DROP DEFAULT;
CASES
}
