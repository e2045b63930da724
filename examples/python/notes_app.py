"""A multi-tenant notes service on tenant_guard, with psycopg 3 and PyJWT.

The whole pattern, per request:

    token = sign_token(user, tenant)            # the backend vouches for the tenant
    with conn.transaction():                    # BEGIN
        conn.execute("SELECT tenant_guard.set_context(%s)", (token,))
        ...the request's queries...             # row-level security filters them
                                                # COMMIT: the context ends here

The queries never say `WHERE tenant_id = ...`: the database adds it, so a
forgotten filter cannot leak another tenant's rows, and a forgotten
set_context is an error rather than an empty (or full) result.

Settings (environment):
    PGHOST, PGPORT     the server (read by libpq)
    NOTES_DB           an existing database to set the demo up in (default notes_demo)
    NOTES_ADMIN_USER   a superuser, for the one-time setup (default postgres)
    NOTES_APP_USER     the application's role, created if missing (default notes_app)

Run by examples/run; by hand, see examples/README.md. Prints what happens
("# ..." lines) and one line per check, "ok python <what>" or
"not ok python <what>: <reason>"; exits 1 if a check failed. It never prints
a token or the secret.
"""

import os
import secrets
import sys
import time
from contextlib import contextmanager

import jwt  # PyJWT
import psycopg
from psycopg import errors, sql

DB = os.environ.get("NOTES_DB", "notes_demo")
ADMIN_USER = os.environ.get("NOTES_ADMIN_USER", "postgres")
APP_USER = os.environ.get("NOTES_APP_USER", "notes_app")

# The secret the backend shares with the database. In production it comes
# from your secret store, and the DBA registers it once with add_key; this
# demo makes a fresh one per run. HS256 needs at least 32 random bytes.
JWT_SECRET = secrets.token_bytes(32)
JWT_KID = "notes-" + secrets.token_hex(4)  # names the key; a kid is never reused
TOKEN_LIFETIME = 60  # seconds: a token only has to outlive one request


# ----------------------------------------------------------------- setup
def setup_demo(admin):
    """What a DBA (or a migration) runs once, on a superuser connection."""
    admin.execute("CREATE EXTENSION IF NOT EXISTS tenant_guard")
    # The secret travels as a bind parameter, never inside the SQL text.
    admin.execute("SELECT tenant_guard.add_key(%s, %s, 'HS256')", (JWT_KID, JWT_SECRET))

    admin.execute("DROP TABLE IF EXISTS notes")
    admin.execute(
        """
        CREATE TABLE notes (
            id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id  text NOT NULL,
            author     text NOT NULL DEFAULT tenant_guard.user_id(),  -- the token's sub
            body       text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    admin.execute("CREATE INDEX ON notes (tenant_id, id)")
    # Row-level security policies, a tenant_id default taken from the
    # context, and triggers that keep a row's tenant fixed.
    admin.execute("SELECT * FROM tenant_guard.protect('notes')")

    # The application connects as an ordinary role: superusers and BYPASSRLS
    # roles are not subject to row-level security.
    app = sql.Identifier(APP_USER)
    if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_USER,)).fetchone() is None:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(app))
    admin.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO {}").format(app))


# ---------------------------------------------------- the request path
def sign_token(user, tenant, secret=JWT_SECRET):
    """A short-lived token saying "this request works for `tenant`".

    Call it only after your login/session layer has established that `user`
    belongs to `tenant`: whoever holds the secret can name any tenant.
    """
    now = int(time.time())
    claims = {"tenant_id": tenant, "sub": user, "iat": now, "exp": now + TOKEN_LIFETIME}
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": JWT_KID})


@contextmanager
def tenant_transaction(conn, user, tenant):
    """BEGIN; set_context(token); ... COMMIT (ROLLBACK if the block raises)."""
    token = sign_token(user, tenant)
    with conn.transaction():
        # psycopg 3 sends parameters separately from the statement, so the
        # token is a bind parameter and never part of a logged SQL text.
        conn.execute("SELECT tenant_guard.set_context(%s)", (token,))
        yield conn


def handle_request(conn, user, tenant, action, payload=None):
    """One web request of the notes service."""
    with tenant_transaction(conn, user, tenant) as tx:
        if action == "create_note":
            # Neither tenant_id nor author: the defaults fill them from the context.
            return tx.execute(
                "INSERT INTO notes (body) VALUES (%s) RETURNING id, tenant_id, author",
                (payload["body"],),
            ).fetchone()
        if action == "list_notes":
            # No WHERE tenant_id = ...: row-level security adds it.
            return tx.execute("SELECT id, tenant_id, author, body FROM notes ORDER BY id").fetchall()
        raise ValueError(f"unknown action {action!r}")


# ------------------------------------------------------------ the demo
failures = 0


def check(what, ok, reason=""):
    global failures
    if ok:
        print(f"ok python {what}", flush=True)
    else:
        failures += 1
        print(f"not ok python {what}: {reason}", flush=True)


def sqlstate_of(fn):
    """Runs fn; returns the SQLSTATE it failed with, or None if it succeeded."""
    try:
        fn()
    except psycopg.Error as e:
        return e.sqlstate
    return None


def main():
    with psycopg.connect(dbname=DB, user=ADMIN_USER, autocommit=True) as admin:
        setup_demo(admin)
    print(f"# set up database {DB}: key {JWT_KID}, protected table notes, role {APP_USER}")

    # One connection serves every request, whichever the tenant (as a pooled
    # connection would): the context never outlives its transaction.
    with psycopg.connect(dbname=DB, user=APP_USER, autocommit=True) as conn:
        a1 = handle_request(conn, "alice", "acme", "create_note", {"body": "Q3 roadmap"})
        g1 = handle_request(conn, "grace", "globex", "create_note", {"body": "Globex launch plan"})
        a2 = handle_request(conn, "arthur", "acme", "create_note", {"body": "Offsite in May"})
        for note in (a1, g1, a2):
            print(f"# note {note[0]} created for tenant {note[1]} by {note[2]}")
        check(
            "a new note takes its tenant and author from the token",
            (a1[1:], g1[1:], a2[1:]) == (("acme", "alice"), ("globex", "grace"), ("acme", "arthur")),
            f"got {a1[1:]}, {g1[1:]}, {a2[1:]}",
        )

        acme = handle_request(conn, "alice", "acme", "list_notes")
        globex = handle_request(conn, "grace", "globex", "list_notes")
        print(f"# acme lists {[n[3] for n in acme]}; globex lists {[n[3] for n in globex]}")
        check(
            "acme lists exactly its own notes",
            [n[0] for n in acme] == [a1[0], a2[0]] and {n[1] for n in acme} == {"acme"},
            f"got {acme}",
        )
        check(
            "globex lists exactly its own notes",
            [n[0] for n in globex] == [g1[0]] and {n[1] for n in globex} == {"globex"},
            f"got {globex}",
        )

        def read_globex_note_as_acme():
            with tenant_transaction(conn, "alice", "acme") as tx:
                return tx.execute("SELECT body FROM notes WHERE id = %s", (g1[0],)).fetchall()

        check(
            "acme cannot read a globex note even by its id",
            read_globex_note_as_acme() == [],
            "the globex note was returned",
        )

        def insert_for_globex_as_acme():
            with tenant_transaction(conn, "alice", "acme") as tx:
                tx.execute("INSERT INTO notes (tenant_id, body) VALUES ('globex', 'spam')")

        state = sqlstate_of(insert_for_globex_as_acme)
        check("acme cannot write a note for globex (42501)", state == "42501", f"SQLSTATE {state}")

        # The bug tenant_guard is for: a code path that forgot set_context.
        def forgot_set_context():
            with conn.transaction():
                conn.execute("SELECT count(*) FROM notes").fetchone()

        state = sqlstate_of(forgot_set_context)
        check("a request without set_context fails with 42501", state == "42501", f"SQLSTATE {state}")

        (tenant,) = conn.execute("SELECT tenant_guard.tenant_id()").fetchone()
        check("no context is left on the connection between requests", tenant is None, f"tenant_id() is {tenant!r}")

        # A token the backend did not sign (another secret) is refused.
        def forged_token():
            with conn.transaction():
                token = sign_token("mallory", "globex", secret=secrets.token_bytes(32))
                conn.execute("SELECT tenant_guard.set_context(%s)", (token,))

        state = sqlstate_of(forged_token)
        check("a token signed with another secret is refused (28000)", state == "28000", f"SQLSTATE {state}")

    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
