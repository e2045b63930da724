"""Tokens minted by PyJWT, sent by psycopg 3 the way an application would.

Run by tests/clients/run, which provides:
  PGHOST / PGPORT      the server (libpq reads them)
  TG_CLIENTS_DB        database with tenant_guard created in it
  TG_CLIENTS_ROLE      the non-superuser application role to connect as
  TG_CLIENTS_KEYS      JSON list of {"kid", "alg", "secret_hex"} registered
                       with tenant_guard.add_key

Prints one line per check: "ok python <what>" or "not ok python <what>: <reason>".
Exits 1 if any check failed. Never prints a token or a secret.
"""

import base64
import json
import os
import re
import sys
import time
import traceback
import warnings

import jwt
import psycopg

LANG = "python"
KEYS = {k["alg"]: k for k in json.loads(os.environ["TG_CLIENTS_KEYS"])}
DB = os.environ["TG_CLIENTS_DB"]
ROLE = os.environ["TG_CLIENTS_ROLE"]

# Anything that must never reach the output; filled as tokens are minted.
SECRETS = [bytes.fromhex(k["secret_hex"]) for k in KEYS.values()]
SECRET_TEXTS = [k["secret_hex"] for k in KEYS.values()]
failures = 0


class CheckFailed(Exception):
    pass


def redact(text):
    for s in SECRET_TEXTS:
        text = text.replace(s, "<redacted>")
    # Anything shaped like a compact JWS (a JSON header encodes to "eyJ...").
    return re.sub(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*", "<token>", text)


def report(what, reason=None):
    global failures
    if reason is None:
        print(f"ok {LANG} {what}", flush=True)
    else:
        failures += 1
        reason = redact(" ".join(str(reason).split()))
        print(f"not ok {LANG} {what}: {reason}", flush=True)


def check(what, fn):
    try:
        fn()
    except CheckFailed as e:
        report(what, e)
    except Exception as e:  # a crash inside one check fails that check only
        report(what, f"{type(e).__name__}: {e}")
    else:
        report(what)


def expect(cond, reason):
    if not cond:
        raise CheckFailed(reason)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(tenant, sub, **extra):
    now = int(time.time())
    return {"tenant_id": tenant, "sub": sub, "iat": now, "exp": now + 300, **extra}


def mint(claims, alg, *, kid=None, secret=None):
    key = KEYS[alg]
    headers = {"kid": kid if kid is not None else key["kid"]}
    secret = secret if secret is not None else bytes.fromhex(key["secret_hex"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a key-length warning is a test bug
        return jwt.encode(claims, secret, algorithm=alg, headers=headers)


conn = None


def connect():
    global conn
    conn = psycopg.connect(dbname=DB, user=ROLE, autocommit=True, connect_timeout=10)
    conn.execute("SET statement_timeout = '10s'")


def context_now():
    return conn.execute(
        "SELECT tenant_guard.tenant_id(), tenant_guard.user_id(), tenant_guard.claims()"
    ).fetchone()


def request(token):
    """One request-style transaction; returns what the context looked like."""
    conn.execute("BEGIN")
    try:
        (returned,) = conn.execute("SELECT tenant_guard.set_context(%s)", (token,)).fetchone()
        seen = context_now()
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return returned, seen


def accepted(what, token, claims):
    state = {}

    def run():
        returned, (tenant, user, got_claims) = request(token)
        state["committed"] = True
        want_tenant = str(claims["tenant_id"])
        expect(returned == want_tenant, f"set_context returned {returned!r}, want {want_tenant!r}")
        expect(tenant == want_tenant, f"tenant_id() is {tenant!r}, want {want_tenant!r}")
        expect(user == claims["sub"], f"user_id() is {user!r}, want {claims['sub']!r}")
        expect(got_claims == claims, f"claims() is {got_claims!r}, want {claims!r}")

    check(f"{what} accepted", run)

    def gone():
        expect(state.get("committed"), "the request transaction did not commit")
        tenant, user, got_claims = context_now()
        expect(tenant is None, f"tenant_id() after COMMIT is {tenant!r}, want NULL")
        expect(user is None, f"user_id() after COMMIT is {user!r}, want NULL")
        expect(got_claims is None, "claims() after COMMIT is not NULL")

    check(f"{what}: context gone after COMMIT", gone)


def rejected(what, token, message_pattern):
    def run():
        try:
            returned, _ = request(token)
        except psycopg.Error as e:
            state, msg = e.sqlstate, e.diag.message_primary or str(e)
            expect(state == "28000", f"SQLSTATE {state}, want 28000 ({msg})")
            expect(re.search(message_pattern, msg), f"rejected for another reason: {msg}")
        else:
            raise CheckFailed(f"accepted (tenant {returned!r}), want SQLSTATE 28000")
        (tenant,) = conn.execute("SELECT tenant_guard.tenant_id()").fetchone()
        expect(tenant is None, f"tenant_id() after the rejection is {tenant!r}, want NULL")

    check(f"{what} rejected", run)


def main():
    connect()

    def role_is_plain():
        (is_super,) = conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        expect(conn.info.user == ROLE, f"connected as {conn.info.user!r}, want {ROLE!r}")
        expect(is_super is False, "the application role is a superuser")

    check("connects as the non-superuser application role", role_is_plain)

    # Accepted: one per algorithm, each with its kid, plus an integer tenant.
    c = claims_for("acme", "user-256", role="reader")
    accepted("HS256 token with kid", mint(c, "HS256"), c)
    c = claims_for("globex", "user-384", scopes=["read", "write"])
    accepted("HS384 token with kid", mint(c, "HS384"), c)
    c = claims_for("initech", "user-512", name="Zo\u00eb M\u00fcller", nested={"a": [1, 2.5, None, True]})
    accepted("HS512 token with kid", mint(c, "HS512"), c)
    c = claims_for(4711, "user-int")
    accepted("integer tenant_id", mint(c, "HS256"), c)

    # Rejected.
    good = mint(claims_for("acme", "user-256"), "HS256")
    header, _, signature = good.split(".")
    forged = b64url(json.dumps(claims_for("evil-corp", "user-256"), separators=(",", ":")).encode())
    rejected("tampered payload", f"{header}.{forged}.{signature}", r"signature")

    wrong = bytes(range(32))
    assert wrong not in SECRETS, "the wrong secret must differ from the registered ones"
    rejected("wrong secret", mint(claims_for("acme", "user-256"), "HS256", secret=wrong), r"signature")

    none_token = jwt.encode(
        claims_for("acme", "user-256"), None, algorithm="none", headers={"kid": KEYS["HS256"]["kid"]}
    )
    # An unsigned JWT has an empty third segment, which tenant_guard refuses
    # as malformed before it reads the header; with a leftover signature
    # appended the header's alg "none" is what gets it refused.
    rejected("alg none", none_token, r"none|malformed")
    rejected("alg none with a leftover signature", none_token + signature, r"none")

    now = int(time.time())
    old = claims_for("acme", "user-256")
    old.update(iat=now - 7200, exp=now - 3600)
    rejected("expired token", mint(old, "HS256"), r"expired")

    # Header says HS256 and is correctly HMAC-SHA256-signed with the HS512
    # key's own secret, but that key is registered for HS512.
    mismatch = mint(
        claims_for("acme", "user-256"),
        "HS256",
        kid=KEYS["HS512"]["kid"],
        secret=bytes.fromhex(KEYS["HS512"]["secret_hex"]),
    )
    rejected("header alg mismatching the key", mismatch, r"algorithm")

    conn.close()
    sys.exit(1 if failures else 0)


try:
    main()
except SystemExit:
    raise
except BaseException:
    # Outside any check; the traceback shows source lines, never values, but
    # the message is redacted all the same.
    print(f"python client crashed:\n{redact(traceback.format_exc())}", file=sys.stderr)
    sys.exit(2)
