"""Concurrent application clients behind PgBouncer (pool_mode = transaction).

Run by tests/pooler/run, which provides:
  TG_POOLER_HOST / TG_POOLER_PORT   PgBouncer's unix socket directory and port
  TG_POOLER_DB                      database (the PgBouncer entry of the same name)
  TG_POOLER_ROLE                    non-superuser application role
  TG_POOLER_POOL_SIZE               server connections PgBouncer may open (2)
and optionally TG_POOLER_TENANT_CLIENTS (10), TG_POOLER_NOCTX_CLIENTS (4),
TG_POOLER_TENANT_TX (240 per client), TG_POOLER_NOCTX_TX (200 per client),
TG_POOLER_HAZARD_TX (150 per client).

Part 1, the supported pattern: every tenant transaction starts with
set_context(token) (is_local => true), context-less clients share the same
two server connections. Rows of another tenant, or any row without a
context, fail the run.

Part 2, documentation: set_context(token, is_local => false) behind
transaction pooling. The numbers of leaked session contexts are reported
on an "ok" line whatever they are; only a broken measurement fails.

Prints "ok pooler <what>" or "not ok pooler <what>: <reason>" per check and
exits 1 if any check failed. Never prints a token.
"""

import os
import re
import sys
import threading
import time
import traceback

import psycopg
from psycopg import errors

HOST = os.environ["TG_POOLER_HOST"]
PORT = int(os.environ["TG_POOLER_PORT"])
DB = os.environ["TG_POOLER_DB"]
ROLE = os.environ["TG_POOLER_ROLE"]
POOL_SIZE = int(os.environ.get("TG_POOLER_POOL_SIZE", "2"))
TENANT_CLIENTS = int(os.environ.get("TG_POOLER_TENANT_CLIENTS", "10"))
NOCTX_CLIENTS = int(os.environ.get("TG_POOLER_NOCTX_CLIENTS", "4"))
TENANT_TX = int(os.environ.get("TG_POOLER_TENANT_TX", "240"))
NOCTX_TX = int(os.environ.get("TG_POOLER_NOCTX_TX", "200"))
HAZARD_TX = int(os.environ.get("TG_POOLER_HAZARD_TX", "150"))
MIN_CLIENTS = 10
MIN_TX = 3000

failures = 0


def redact(text):
    # Anything shaped like a compact JWS (a JSON header encodes to "eyJ...").
    return re.sub(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*", "<token>", text)


def report(what, reason=None):
    global failures
    if reason is None:
        print(f"ok pooler {what}", flush=True)
    else:
        failures += 1
        print(f"not ok pooler {what}: {redact(' '.join(str(reason).split()))}", flush=True)


def connect():
    # prepare_threshold=None: never a named server-side prepared statement,
    # which PgBouncer 1.18 cannot follow across server connections in
    # transaction mode. Statements still use the extended protocol, so the
    # token travels as a bind parameter.
    return psycopg.connect(
        host=HOST, port=PORT, dbname=DB, user=ROLE,
        autocommit=True, prepare_threshold=None, connect_timeout=10,
    )


def describe(exc):
    return f"{type(exc).__name__} {getattr(exc, 'sqlstate', None) or ''} {exc}".strip()


class Stats:
    """Counters of one client thread; merged after the threads end."""

    FIELDS = (
        "tx", "committed", "rolled_back", "aborted", "rows", "foreign_rows",
        "wrong_tenant", "wrong_count", "denied", "empty", "rows_no_ctx",
        "tx_with_rows", "ctx_seen", "inherited", "errors", "own_ctx", "other_ctx", "no_ctx",
    )

    def __init__(self):
        for f in self.FIELDS:
            setattr(self, f, 0)
        self.pids = set()
        self.tenants_seen = set()
        self.first_error = None

    def error(self, exc):
        self.errors += 1
        if self.first_error is None:
            self.first_error = describe(exc)

    def merge(self, other):
        for f in self.FIELDS:
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.pids |= other.pids
        self.tenants_seen |= other.tenants_seen
        if self.first_error is None:
            self.first_error = other.first_error


class Abort(Exception):
    pass


def run_clients(workers):
    """Connects every client first, then starts them together."""
    conns = [connect() for _ in workers]
    barrier = threading.Barrier(len(workers))
    stats = [Stats() for _ in workers]

    def body(i):
        try:
            barrier.wait(timeout=30)
            workers[i](conns[i], stats[i])
        except Exception as exc:  # a crashed client is a failure, not a hang
            stats[i].error(exc)
            traceback.print_exc(file=sys.stderr)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(workers))]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    for c in conns:
        c.close()
    return stats, elapsed


def total(stats):
    s = Stats()
    for x in stats:
        s.merge(x)
    return s


# ---------------------------------------------------------------- clients
def tenant_client(tenant, token, expected_rows, n):
    """BEGIN; set_context(token); read orders; COMMIT (or ROLLBACK, or an error)."""

    def work(conn, st):
        for i in range(n):
            st.tx += 1
            ending = ("commit", "rollback", "error")[0 if i % 10 < 8 else i % 10 - 7]
            try:
                with conn.transaction():
                    got, pid = conn.execute(
                        "SELECT tenant_guard.set_context(%s), pg_backend_pid()", [token]
                    ).fetchone()
                    st.pids.add(pid)
                    if got != tenant:
                        st.wrong_tenant += 1
                    rows = conn.execute("SELECT id, tenant_id, item FROM orders").fetchall()
                    st.rows += len(rows)
                    for _id, row_tenant, item in rows:
                        if row_tenant != tenant or not item.startswith(tenant + ":"):
                            st.foreign_rows += 1
                            st.tenants_seen.add(row_tenant)
                    if len(rows) != expected_rows:
                        st.wrong_count += 1
                    if ending == "rollback":
                        raise psycopg.Rollback()
                    if ending == "error":
                        conn.execute("SELECT 1 / 0")
                st.committed += ending == "commit"
                st.rolled_back += ending == "rollback"
                if ending == "error":
                    raise Abort("SELECT 1 / 0 did not fail")
            except errors.DivisionByZero:
                st.aborted += 1
            except (psycopg.Error, Abort) as exc:
                st.error(exc)

    return work


def read_without_context(conn, st, i):
    """One context-less transaction: explicit BEGIN..COMMIT or a lone statement."""
    st.tx += 1
    try:
        if i % 2 == 0:
            with conn.transaction():
                pid, ctx = conn.execute(
                    "SELECT pg_backend_pid(), tenant_guard.tenant_id()"
                ).fetchone()
                st.pids.add(pid)
                rows = conn.execute("SELECT id, tenant_id, item FROM orders").fetchall()
        else:
            ctx = None
            rows = conn.execute(
                "SELECT id, tenant_id, item, pg_backend_pid() FROM orders"
            ).fetchall()
            st.pids.update(r[3] for r in rows)
    except errors.InsufficientPrivilege as exc:
        if "no tenant context" in str(exc):
            st.denied += 1
        else:
            st.error(exc)
        return
    except psycopg.Error as exc:
        st.error(exc)
        return
    if ctx is not None:
        st.ctx_seen += 1
        st.tenants_seen.add(ctx)
    if ctx is not None or rows:
        st.inherited += 1
    if rows:
        st.tx_with_rows += 1
        st.rows_no_ctx += len(rows)
        st.tenants_seen.update(r[1] for r in rows)
    else:
        st.empty += 1


def noctx_client(n):
    def work(conn, st):
        for i in range(n):
            read_without_context(conn, st, i)

    return work


def session_setter(tokens, n):
    """set_context(token, is_local => false) as its own (autocommitted)
    transaction, then a second transaction asking which context it runs in."""

    def work(conn, st):
        for i in range(n):
            tenant, token, _ = tokens[i % len(tokens)]
            st.tx += 2
            try:
                conn.execute("SELECT tenant_guard.set_context(%s, false)", [token])
                pid, ctx = conn.execute(
                    "SELECT pg_backend_pid(), tenant_guard.tenant_id()"
                ).fetchone()
            except psycopg.Error as exc:
                st.error(exc)
                continue
            st.pids.add(pid)
            if ctx == tenant:
                st.own_ctx += 1
            elif ctx is None:
                st.no_ctx += 1
            else:
                st.other_ctx += 1

    return work


def noctx_reader_later(n):
    def work(conn, st):
        time.sleep(0.05)  # let the setters go first
        for i in range(n):
            read_without_context(conn, st, 2 * i)  # always BEGIN..COMMIT: see tenant_id()

    return work


# ------------------------------------------------------------------- parts
def load_tokens():
    with connect() as conn:
        return conn.execute(
            "SELECT tenant, token, expected_rows FROM pooler_tokens ORDER BY tenant"
        ).fetchall()


def part_transaction_scope(tokens):
    workers = [
        tenant_client(*tokens[i % len(tokens)], TENANT_TX) for i in range(TENANT_CLIENTS)
    ] + [noctx_client(NOCTX_TX) for _ in range(NOCTX_CLIENTS)]
    stats, elapsed = run_clients(workers)
    ten = total(stats[:TENANT_CLIENTS])
    noc = total(stats[TENANT_CLIENTS:])
    alltx = ten.tx + noc.tx
    clients = len(workers)

    what = (f"load: {clients} concurrent clients, {alltx} transactions "
            f"in {elapsed:.1f} s ({alltx / elapsed:.0f} tx/s)")
    if clients < MIN_CLIENTS or alltx < MIN_TX:
        report(what, f"want at least {MIN_CLIENTS} clients and {MIN_TX} transactions")
    else:
        report(what)

    pids = ten.pids | noc.pids
    shared = ten.pids & noc.pids
    what = (f"multiplexing: {clients} clients shared {len(pids)} server connections "
            f"(pool size {POOL_SIZE}); context-less transactions ran on "
            f"{len(shared)} of the backends that served tenant contexts")
    if not 1 <= len(pids) <= POOL_SIZE:
        report(what, f"expected at most {POOL_SIZE} server backends")
    elif not shared:
        report(what, "context-less and tenant transactions never shared a backend")
    else:
        report(what)

    what = (f"isolation: {ten.foreign_rows} rows of another tenant in {ten.tx} tenant "
            f"transactions ({ten.rows} rows read)")
    if ten.foreign_rows:
        report(what, f"leaked tenants: {sorted(map(str, ten.tenants_seen))}")
    elif ten.rows == 0:
        report(what, "no row was read at all")
    else:
        report(what)

    what = (f"tenant transactions: {ten.committed} committed, {ten.rolled_back} rolled "
            f"back, {ten.aborted} aborted by an error; each saw exactly its tenant's rows")
    problems = []
    if ten.errors:
        problems.append(f"{ten.errors} failed unexpectedly (first: {ten.first_error})")
    if ten.wrong_tenant:
        problems.append(f"{ten.wrong_tenant} set_context returned another tenant")
    if ten.wrong_count:
        problems.append(f"{ten.wrong_count} saw a wrong number of rows")
    if ten.committed + ten.rolled_back + ten.aborted != ten.tx:
        problems.append("transaction count mismatch")
    report(what, "; ".join(problems) or None)

    what = (f"no context: {noc.rows_no_ctx} rows seen in {noc.tx} context-less "
            f"transactions ({noc.denied} refused with 42501, {noc.empty} empty, "
            f"{noc.ctx_seen} saw a tenant context)")
    problems = []
    if noc.rows_no_ctx:
        problems.append(f"{noc.tx_with_rows} transactions saw rows of "
                        f"{sorted(map(str, noc.tenants_seen))}")
    if noc.ctx_seen:
        problems.append(f"{noc.ctx_seen} transactions inherited a tenant context")
    if noc.errors:
        problems.append(f"{noc.errors} failed unexpectedly (first: {noc.first_error})")
    if noc.denied + noc.empty + noc.tx_with_rows + noc.errors != noc.tx:
        problems.append("transaction count mismatch")
    report(what, "; ".join(problems) or None)


def part_session_scope(tokens):
    setters, readers = 2, 4
    workers = [session_setter(tokens[i::setters], HAZARD_TX) for i in range(setters)]
    workers += [noctx_reader_later(HAZARD_TX) for _ in range(readers)]
    stats, _ = run_clients(workers)
    st = total(stats[:setters])
    rd = total(stats[setters:])
    inherited = rd.inherited
    errs = st.errors + rd.errors
    if errs:
        first = st.first_error or rd.first_error
        report("session-scope hazard measurement", f"{errs} unexpected errors (first: {first})")
        return
    verb = "observed" if inherited else "not observed in this run"
    report(f"session-scope hazard {verb}: {inherited} of {rd.tx} context-less transactions "
           f"inherited a session context ({rd.rows_no_ctx} rows of "
           f"{len(rd.tenants_seen)} tenants read on {len(rd.pids)} server connections; "
           f"expected with pool_mode=transaction)")
    follow = st.own_ctx + st.other_ctx + st.no_ctx
    report(f"session-scope hazard, setter side: {st.other_ctx + st.no_ctx} of {follow} "
           f"transactions right after set_context(token, is_local => false) ran under "
           f"another tenant's context ({st.other_ctx}) or none ({st.no_ctx})")


def main():
    try:
        tokens = load_tokens()
    except psycopg.Error as exc:
        report("load tokens through pgbouncer", describe(exc))
        return 1
    if len(tokens) < 2:
        report("load tokens through pgbouncer", f"only {len(tokens)} tenants")
        return 1
    # Part 1 first: its server connections have never held a session context.
    part_transaction_scope(tokens)
    part_session_scope(tokens)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
