"""The protocol's function call message ('F'), which libraries do not send:
written here by hand (socket + struct), as an attacker's client would.

A function call runs a function without the executor or a utility command,
so no query hook sees it. tenant_guard must judge it in set_context itself:
a transaction that left its bypass context (SET ROLE, clear_context) cannot
enter one again, whichever message carries the call.

Run by tests/clients/run, which provides PGHOST (a socket directory), PGPORT,
TG_CLIENTS_DB, TG_CLIENTS_ROLE (the application role) and TG_CLIENTS_ADMIN
(a superuser, for the setup). The cluster trusts local connections.

Prints one line per check: "ok protocol <what>" or "not ok protocol <what>:
<reason>". Exits 1 if any check failed. Never prints a token.
"""

import os
import re
import socket
import struct
import sys
import time
import traceback

import psycopg

LANG = "protocol"
DB = os.environ["TG_CLIENTS_DB"]
ROLE = os.environ["TG_CLIENTS_ROLE"]
ADMIN = os.environ["TG_CLIENTS_ADMIN"]
SOCKET = f"{os.environ['PGHOST']}/.s.PGSQL.{os.environ.get('PGPORT', '5432')}"
BYPASS_ROLE = "tg_clients_support"
failures = 0


def redact(text):
    return re.sub(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*", "<token>", text)


def report(what, reason=None):
    global failures
    if reason is None:
        print(f"ok {LANG} {what}", flush=True)
    else:
        failures += 1
        print(f"not ok {LANG} {what}: {redact(' '.join(str(reason).split()))}", flush=True)


class Wire:
    """A frontend of protocol 3.0 over the unix socket, trust authentication."""

    def __init__(self, user, dbname):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(20)
        self.s.connect(SOCKET)
        params = b"user\0" + user.encode() + b"\0database\0" + dbname.encode() + b"\0\0"
        self.s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        while True:
            kind, body = self.read()
            if kind == b"R" and struct.unpack("!i", body[:4])[0] != 0:
                raise RuntimeError("the server asked for a password: trust expected")
            if kind == b"E":
                raise RuntimeError(self.error(body))
            if kind == b"Z":
                return

    def exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("the server closed the connection")
            buf += chunk
        return buf

    def read(self):
        kind = self.exact(1)
        (length,) = struct.unpack("!i", self.exact(4))
        return kind, self.exact(length - 4)

    @staticmethod
    def error(body):
        fields = {chr(p[0]): p[1:].decode(errors="replace") for p in body.split(b"\0") if p}
        return fields.get("C"), fields.get("M")

    def until_ready(self):
        """(rows, error) up to ReadyForQuery; error is (SQLSTATE, message)."""
        rows, error = [], None
        while True:
            kind, body = self.read()
            if kind == b"D":
                (n,) = struct.unpack("!h", body[:2])
                pos, row = 2, []
                for _ in range(n):
                    (ln,) = struct.unpack("!i", body[pos:pos + 4])
                    pos += 4
                    row.append(None if ln < 0 else body[pos:pos + ln].decode())
                    pos += max(ln, 0)
                rows.append(tuple(row))
            elif kind == b"V":
                (ln,) = struct.unpack("!i", body[:4])
                rows.append((None if ln < 0 else body[4:4 + ln].decode(),))
            elif kind == b"E":
                error = self.error(body)
            elif kind == b"Z":
                return rows, error

    def query(self, sql):
        b = sql.encode() + b"\0"
        self.s.sendall(b"Q" + struct.pack("!i", len(b) + 4) + b)
        return self.until_ready()

    def function_call(self, oid, args):
        """FunctionCall: text arguments, a text result."""
        body = struct.pack("!ihhh", oid, 1, 0, len(args))
        for a in args:
            ab = a.encode()
            body += struct.pack("!i", len(ab)) + ab
        body += struct.pack("!h", 0)
        self.s.sendall(b"F" + struct.pack("!i", len(body) + 4) + body)
        return self.until_ready()

    def close(self):
        self.s.sendall(b"X" + struct.pack("!i", 4))
        self.s.close()


def admin(*statements):
    with psycopg.connect(dbname=DB, user=ADMIN, autocommit=True, connect_timeout=10) as c:
        results = []
        for s in statements:
            cur = c.execute(s)
            results.append(cur.fetchall() if cur.description else None)
        return results


def main():
    now = int(time.time())
    admin(
        f"CREATE ROLE {BYPASS_ROLE} NOLOGIN BYPASSRLS",
        "CREATE TABLE protocol_tickets (id int PRIMARY KEY, tenant_id text NOT NULL)",
        "INSERT INTO protocol_tickets VALUES (1, 'acme'), (2, 'globex')",
        f"GRANT SELECT ON protocol_tickets TO {ROLE}, {BYPASS_ROLE}",
        "SELECT count(*) FROM tenant_guard.protect('protocol_tickets')",
        f'ALTER DATABASE "{DB}" SET tenant_guard.bypass_role = {BYPASS_ROLE}',
    )
    try:
        [[(bypass,)], [(oid,)]] = admin(
            "SELECT tenant_guard.sign(jsonb_build_object('bypass', true, 'sub', 'support', "
            f"'iat', {now}, 'exp', {now + 300}), kid => 'clients-hs256')",
            "SELECT 'tenant_guard.set_context(text, boolean)'::regprocedure::oid",
        )
        oid = int(oid)

        def entered_by_function_call():
            # The message itself works: a function call enters a bypass context.
            w = Wire(ROLE, DB)
            try:
                w.query("BEGIN")
                _, err = w.function_call(oid, [bypass, "true"])
                if err:
                    raise AssertionError(f"the function call failed: {err}")
                rows, err = w.query("SELECT current_user, count(*) FROM protocol_tickets")
                if err or rows != [(BYPASS_ROLE, "2")]:
                    raise AssertionError(f"after entering: {rows} {err}")
                w.query("ROLLBACK")
            finally:
                w.close()

        def not_entered_again(leave):
            def run():
                w = Wire(ROLE, DB)
                try:
                    w.query("BEGIN")
                    _, err = w.query(f"SELECT tenant_guard.set_context('{bypass}') IS NOT NULL")
                    if err:
                        raise AssertionError(f"set_context failed: {err}")
                    _, err = w.query(leave)
                    if err:
                        raise AssertionError(f"{leave} failed: {err}")
                    _, err = w.function_call(oid, [bypass, "true"])
                    if err is None:
                        rows, _ = w.query("SELECT current_user, count(*) FROM protocol_tickets")
                        raise AssertionError(f"entered again; then read {rows}")
                    if err[0] != "42501" or "left its bypass context" not in err[1]:
                        raise AssertionError(f"refused with {err}, want 42501 (left its bypass context)")
                    w.query("ROLLBACK")
                finally:
                    w.close()

            return run

        def revocation_stops_the_next_query():
            # Another session revokes the subject while a bypass transaction
            # reads through a cursor: its next FETCH (no new lock, so nothing
            # makes PostgreSQL read invalidations) is refused.
            app = psycopg.connect(dbname=DB, user=ROLE, autocommit=True, connect_timeout=10)
            try:
                app.execute("BEGIN")
                app.execute("SELECT tenant_guard.set_context(%s)", (bypass,))
                app.execute("DECLARE c CURSOR FOR SELECT tenant_id FROM protocol_tickets ORDER BY id")
                row = app.execute("FETCH 1 FROM c").fetchone()
                if row != ("acme",):
                    raise AssertionError(f"the bypass transaction fetched {row}, want ('acme',)")
                admin("SELECT tenant_guard.revoke_subject('support', now() + interval '1 second')")
                try:
                    row = app.execute("FETCH 1 FROM c").fetchone()
                except psycopg.Error as e:
                    if e.sqlstate != "42501" or "no longer holds" not in (e.diag.message_primary or ""):
                        raise AssertionError(f"refused with {e.sqlstate} {e.diag.message_primary}")
                else:
                    raise AssertionError(f"after the revocation the next FETCH returned {row}")
                app.execute("ROLLBACK")
            finally:
                app.close()

        for what, fn in [
            ("a function call message enters a bypass context", entered_by_function_call),
            (
                "after SET ROLE a function call message cannot enter a bypass context again",
                not_entered_again(f"SET ROLE {ROLE}"),
            ),
            (
                "after clear_context a function call message cannot enter a bypass context again",
                not_entered_again("SELECT tenant_guard.clear_context()"),
            ),
            # Last: the revocation stays for the rest of this database's life.
            (
                "revoke_subject in another session stops the next query of a running bypass transaction",
                revocation_stops_the_next_query,
            ),
        ]:
            try:
                fn()
            except Exception as e:
                report(what, f"{type(e).__name__}: {e}")
            else:
                report(what)
    finally:
        admin(
            f'ALTER DATABASE "{DB}" RESET tenant_guard.bypass_role',
            "DROP TABLE protocol_tickets",
            f"DROP ROLE {BYPASS_ROLE}",
        )
    sys.exit(1 if failures else 0)


try:
    main()
except SystemExit:
    raise
except BaseException:
    print(f"protocol client crashed:\n{redact(traceback.format_exc())}", file=sys.stderr)
    sys.exit(2)
