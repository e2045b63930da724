# The online scenario of ./scripts/bench (TG_BENCH=online ./scripts/bench):
# each tenant_guard helper runs while an application works at a steady rate.
# Sourced by scripts/bench after the cluster is up (PGHOST, PGDATABASE=bench,
# role bench_app, $DIR, $PGBENCH, $ROOT set); the cluster logs with
# log_line_prefix '%n|%e|%u|' (epoch, SQLSTATE, user), which this reads.
#
# Per step: a fresh pgbench (bench_app, TG_ONLINE_CLIENTS=8 clients, 2
# threads, --rate TG_ONLINE_RATE=80 transactions/s in total, --latency-limit
# 1000 ms, per-transaction log -l) starts; after 3 s the helper runs in its
# own psql (as the superuser owning the tables), timed from the shell; 5 s
# later pgbench is stopped (SIGTERM: the log's last unflushed lines, all
# after the step, are lost). Figures for the step come from the transactions
# whose span (scheduled start .. end) overlaps the helper's run:
#   tx      transactions in that window; late: took > 1 s; skipped: pgbench
#           dropped them because they were already > 1 s behind schedule
#   errors  bench_app ERROR lines in the server log while that pgbench ran,
#           by SQLSTATE (40P01 deadlock, 55P03 lock timeout, ...), plus
#           clients pgbench reports as aborted
#   p99/max latency in ms, from the scheduled start (so waiting in a lock
#           queue and falling behind schedule both count)
#   time    the helper's wall-clock time (psql, start to commit)

ONLINE_CLIENTS=${TG_ONLINE_CLIENTS:-8}
ONLINE_RATE=${TG_ONLINE_RATE:-80}
ODIR="$DIR/online"
mkdir -p "$ODIR"; chmod 777 "$ODIR"
SERVER_LOG="$DIR/pg/server.log"

now() { date +%s.%N; }

# online_window LOGPREFIX FROM TO: "tx late skipped failed p99 max" for
# transactions overlapping [FROM, TO] (epoch seconds).
online_window() {
  cat "$1".* 2>/dev/null | awk -v s="$2" -v e="$3" '
    # client tx time script epoch usec [lag]; time is "skipped"/"failed"/"deadlock"/... when not run
    {
      end = $5 + $6 / 1e6
      if ($3 ~ /^[0-9]+$/) {
        begin = end - $3 / 1e6
        if (end >= s && begin <= e) { n++; if ($3 > 1e6) late++; print $3 / 1000 > "/dev/stderr" }
      } else if (end >= s && end <= e + 1) {
        if ($3 == "skipped") skipped++; else failed++
      }
    }
    END { printf "%d %d %d %d\n", n, late, skipped, failed }' 2>"$ODIR/lat.txt" | {
    read -r n late skipped failed
    sort -n "$ODIR/lat.txt" | awk -v n="$n" -v late="$late" -v skipped="$skipped" -v failed="$failed" '
      { v[NR] = $1 }
      END {
        i = int((NR * 99 + 99) / 100); if (i > NR) i = NR   # ceil(0.99 NR)
        p99 = NR ? v[i] : 0
        printf "%d %d %d %d %.0f %.0f\n", n, late, skipped, failed, p99, NR ? v[NR] : 0
      }'
  }
}

# online_errors FROM TO: bench_app errors in the server log between two
# epochs, "N (SQLSTATE xN, ...)" or "0".
online_errors() {
  awk -F '|' -v s="$1" -v e="$2" '
    $3 == "bench_app" && $4 ~ /^(ERROR|FATAL):/ && $1 >= s && $1 <= e { n++; c[$2]++ }
    END {
      if (!n) { print 0; exit }
      out = ""; for (k in c) out = out (out ? ", " : "") k " x" c[k]
      print n " (" out ")"
    }' "$SERVER_LOG"
}

# online_statements TAG DRYRUN_SQL: the way the README recommends for live
# tables: run each statement DRYRUN_SQL returns in its own transaction, in
# order, with lock_timeout 2s, retrying one that fails with 55P03 (up to 10
# times; CONCURRENTLY builds run without lock_timeout: a failed one would
# leave an invalid index behind).
online_statements() {
  local tag=$1 st try
  psql -X -At -0 -v ON_ERROR_STOP=1 -c "$2" >"$tag.stmts" || return 1
  while IFS= read -r -d '' st; do
    for ((try = 1; ; try++)); do
      if [[ "$st" == *CONCURRENTLY* ]]; then
        psql -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate -c "$st" >>"$tag.helper" 2>&1 && break
        return 1
      fi
      psql -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate -c "SET lock_timeout = '2s'" -c "$st" \
        >>"$tag.helper" 2>&1 && break
      if [ "$try" -lt 10 ] && tail -1 "$tag.helper" | grep -q 55P03; then
        echo "retry $try: $st" >>"$tag.helper"; sleep 0.2
      else
        return 1
      fi
    done
  done <"$tag.stmts"
}

# online_step NAME SQL [statements]: run SQL (one psql, autocommit) under the
# workload; with "statements", run the statements SQL returns one by one.
online_step() {
  local name=$1 sql=$2 tag
  tag="$ODIR/step$((++ONLINE_STEP))"
  local p0 t0 t1 p1 rc=0
  p0=$(now)
  "$PGBENCH" -n -M prepared -U bench_app -c "$ONLINE_CLIENTS" -j 2 --rate "$ONLINE_RATE" \
    --latency-limit 1000 --failures-detailed -l --log-prefix "$tag" -T 3600 \
    -f "$ROOT/benches/online_app.sql" >"$tag.out" 2>"$tag.err" &
  local bench=$!
  sleep 3
  t0=$(now)
  if [ "${3:-}" = statements ]; then
    online_statements "$tag" "$sql" || rc=$?
  else
    psql -X -q -v ON_ERROR_STOP=1 >"$tag.helper" 2>&1 <<SQL || rc=$?
SET client_min_messages = warning;
\set VERBOSITY sqlstate
$sql
SQL
  fi
  t1=$(now)
  sleep 5
  kill "$bench" 2>/dev/null || true
  wait "$bench" 2>/dev/null || true
  p1=$(now)
  local n late skipped failed p99 max errs aborted helper
  read -r n late skipped failed p99 max < <(online_window "$tag" "$t0" "$t1")
  errs=$(online_errors "$p0" "$p1")
  aborted=$(grep -c 'aborted' "$tag.err" || true)
  if [ "$rc" = 0 ]; then helper=ok; else helper="FAILED: $(grep -m1 -E 'ERROR' "$tag.helper" | tr -s ' ')"; fi
  if [ -f "$tag.stmts" ]; then
    helper="$helper ($(tr -cd '\0' <"$tag.stmts" | wc -c) statements, $(grep -c '^retry' "$tag.helper" || true) retries)"
  fi
  printf '%-34s %7.2f s  tx %4d  late %3d  skipped %3d  errors %s%s  p99 %5s ms  max %5s ms  helper %s\n' \
    "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$n" "$late" "$skipped" "$errs" \
    "$([ "$failed$aborted" = 00 ] || echo " [pgbench: $failed failed, $aborted clients aborted]")" \
    "$p99" "$max" "$helper"
  ONLINE_LAST_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}

# online_quiet NAME SQL: the same SQL timed without any workload.
online_quiet() {
  local t0 t1
  t0=$(now)
  psql -X -q -v ON_ERROR_STOP=1 >"$ODIR/quiet.helper" 2>&1 <<SQL
SET client_min_messages = warning;
$2
SQL
  t1=$(now)
  ONLINE_LAST_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  printf '%-34s %7.2f s  (no workload)\n' "$1" "$ONLINE_LAST_SECS"
}

ONLINE_STEP=0
echo "bench: online: loading accounts 1,000,000, orders 1,000,000 (NULL tenant) + a copy, payments 200,000"
start=$(now)
psql -X -q -v ON_ERROR_STOP=1 -f "$ROOT/benches/online_setup.sql" >/dev/null
echo "bench: online: loaded in $(awk -v s="$start" -v e="$(now)" 'BEGIN { printf "%.0f", e - s }') s;" \
  "workload: $ONLINE_CLIENTS clients, $ONLINE_RATE tx/s in total (set_context, a read, 2 UPDATEs, an INSERT);" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %9s  %s\n' "step" "time" "client transactions overlapping the step"

# Both backfills start with the parent and its key index in shared buffers
# (pg_prewarm, where installed), so that the first does not warm the cache
# for the second.
if [ "$(psql -X -At -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_prewarm'")" = 1 ]; then
  psql -X -q -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" >/dev/null
  PREWARM="SELECT pg_prewarm('live.accounts'), pg_prewarm('live.accounts_pkey');"
  prewarm() { echo "SELECT pg_prewarm('$1');"; }
else
  PREWARM=""; prewarm() { :; }
fi
online_quiet "backfill calm.orders (no workload)" "$PREWARM $(prewarm calm.orders) CHECKPOINT;
CALL tenant_guard.backfill('calm.orders', 'calm_orders_account_id_fkey', 10000);"
quiet_secs=$ONLINE_LAST_SECS
psql -X -q -c "SET client_min_messages = warning" -c "DROP SCHEMA calm CASCADE" -c "$PREWARM $(prewarm live.orders) CHECKPOINT;" >/dev/null

online_step "no helper (pg_sleep 5)" "SELECT pg_sleep(5);"
online_step "CALL backfill (1M orders)" "CALL tenant_guard.backfill('live.orders', 'orders_account_id_fkey', 10000);"
live_secs=$ONLINE_LAST_SECS
online_step "protect(live.orders)" "SELECT count(*) FROM tenant_guard.protect('live.orders');"
online_step "enforce_not_null(live.orders)" "SELECT count(*) FROM tenant_guard.enforce_not_null('live.orders');"
online_step "upgrade_foreign_keys('live')" "SELECT count(*) FROM tenant_guard.upgrade_foreign_keys('live');"
online_step "scope_unique(accounts_code_key)" "SELECT count(*) FROM tenant_guard.scope_unique('live.accounts', 'accounts_code_key');"
online_step "scope_unique(accounts_email_key) *" \
  "SELECT * FROM tenant_guard.scope_unique('live.accounts', 'accounts_email_key', dry_run => true)" statements
online_step "rollout('enforce', 'live')" "SELECT count(*) FROM tenant_guard.rollout('enforce', 'live', dry_run => false);"
online_step "upgrade_foreign_keys('side') *" \
  "SELECT * FROM tenant_guard.upgrade_foreign_keys('side', dry_run => true)" statements
echo "* the dry run's statements, one per transaction (lock_timeout 2s, retried on 55P03), as the README recommends on live tables"
printf '%-60s %s s with the workload / %s s without = %s (target <= 2)\n' "backfill of 1,000,000 children under a 1,000,000-row parent" \
  "$live_secs" "$quiet_secs" "$(awk -v a="$live_secs" -v b="$quiet_secs" 'BEGIN { printf "%.2f", a / b }')"
psql -X -At -c "SELECT 'bench: online: after the run: ' || (SELECT count(*) FROM live.orders WHERE tenant_id IS NULL) || ' orders without a tenant, '
  || (SELECT count(*) FROM live.orders) || ' orders, ' || (SELECT count(*) FROM tenant_guard.protected) || ' protected tables, '
  || (SELECT count(*) FROM tenant_guard_internal.tenant_blind_foreign_keys()) || ' tenant-blind keys left'"
echo "bench: online: load average $(cut -d' ' -f1-3 /proc/loadavg); logs in $ODIR (removed with the cluster)"
