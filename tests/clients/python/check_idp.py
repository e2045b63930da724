"""Identity-provider tokens: keys made with `cryptography`, key sets written
by PyJWT (from those keys), imported with tenant_guard.add_jwks, tokens
minted by PyJWT for every public-key algorithm, sent by psycopg 3 as the
application role. Rotation and every kind of revocation, including a session
context that stops working after revoke_subject in another connection.

Run by tests/clients/run, which provides PGHOST/PGPORT, TG_CLIENTS_DB,
TG_CLIENTS_ROLE (the application role) and TG_CLIENTS_ADMIN (a superuser,
for add_jwks and the revocations, as an operator would run them).

Prints "ok python-idp <what>" / "not ok python-idp <what>: <reason>"; never
a token or a key.
"""

import json
import os
import re
import sys
import time
import traceback

import jwt
import psycopg
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

LANG = "python-idp"
DB = os.environ["TG_CLIENTS_DB"]
ROLE = os.environ["TG_CLIENTS_ROLE"]
ADMIN = os.environ["TG_CLIENTS_ADMIN"]
ISS = "https://py.idp.example/"
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


def check(what, fn):
    try:
        fn()
    except Exception as e:
        report(what, f"{type(e).__name__}: {e}")
    else:
        report(what)


def expect(cond, reason):
    if not cond:
        raise AssertionError(reason)


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEYS = {
    "RS256": RSA_KEY, "RS384": RSA_KEY, "RS512": RSA_KEY,
    "PS256": rsa.generate_private_key(public_exponent=65537, key_size=3072),
    "PS384": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "PS512": rsa.generate_private_key(public_exponent=65537, key_size=4096),
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "ES384": ec.generate_private_key(ec.SECP384R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate(),
}


def jwk_of(alg, key, kid):
    pub = key.public_key()
    if alg.startswith(("RS", "PS")):
        j = RSAAlgorithm.to_jwk(pub, as_dict=True)
    elif alg.startswith("ES"):
        j = ECAlgorithm.to_jwk(pub, as_dict=True)
    else:
        j = OKPAlgorithm.to_jwk(pub, as_dict=True)
    j.update({"kid": kid, "alg": alg, "use": "sig"})
    return j


def kid(alg):
    return f"py-{alg.lower()}"


def mint(alg, key=None, kid_=None, **claims):
    now = int(time.time())
    body = {"iss": ISS, "aud": "api", "sub": "py-user", "org_id": "acme", "iat": now,
            "exp": now + 300, "jti": f"py-{alg}-{time.monotonic_ns()}"}
    body.update(claims)
    return jwt.encode(body, key or KEYS[alg], algorithm=alg, headers={"kid": kid_ or kid(alg)}), body


admin = psycopg.connect(dbname=DB, user=ADMIN, autocommit=True, connect_timeout=10)
app = psycopg.connect(dbname=DB, user=ROLE, autocommit=True, connect_timeout=10)
app.execute("SET statement_timeout = '10s'")


def set_context(token):
    app.execute("BEGIN")
    try:
        (t,) = app.execute("SELECT tenant_guard.set_context(%s)", (token,)).fetchone()
        user = app.execute("SELECT tenant_guard.user_id()").fetchone()[0]
        app.execute("COMMIT")
        return t, user
    except BaseException:
        app.execute("ROLLBACK")
        raise


def refused(token, pattern):
    try:
        set_context(token)
    except psycopg.Error as e:
        expect(e.sqlstate == "28000", f"SQLSTATE {e.sqlstate}, want 28000")
        detail = (e.diag.message_primary or "") + " / " + (e.diag.message_detail or "")
        expect(re.search(pattern, detail), f"message {detail!r} does not match {pattern!r}")
        return
    raise AssertionError("accepted")


jwks = {"keys": [jwk_of(a, k, kid(a)) for a, k in KEYS.items()]}


def import_set():
    rows = admin.execute(
        "SELECT kid, algorithm, action FROM tenant_guard.add_jwks(%s::jsonb, %s) ORDER BY kid",
        (json.dumps(jwks), ISS)).fetchall()
    expect(len(rows) == 9 and all(r[2] == "added" for r in rows), f"add_jwks said {rows}")
    for k, alg, _ in rows:
        expect(k == kid(alg), f"{k} registered for {alg}")
    admin.execute("SELECT tenant_guard.set_issuer(%s, audience => 'api', tenant_claim => 'org_id')", (ISS,))


check("JWKS written by PyJWT from cryptography keys imported with add_jwks", import_set)

for alg in KEYS:
    def accept(alg=alg):
        token, _ = mint(alg)
        t, user = set_context(token)
        expect((t, user) == ("acme", "py-user"), f"context {t!r}, {user!r}")
    check(f"{alg} token minted by PyJWT accepted", accept)

    def forged(alg=alg):
        other = {"RS": rsa.generate_private_key(public_exponent=65537, key_size=2048),
                 "PS": rsa.generate_private_key(public_exponent=65537, key_size=2048),
                 "ES": ec.generate_private_key(ec.SECP256R1() if alg == "ES256" else ec.SECP384R1()),
                 "Ed": ed25519.Ed25519PrivateKey.generate()}[alg[:2]]
        token, _ = mint(alg, key=other)
        refused(token, "signature does not match")
    check(f"{alg} token signed by another key refused", forged)


def confusion():
    # HS256 with the RSA public key (PEM) as the secret, naming the RSA key.
    from cryptography.hazmat.primitives import serialization
    pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    body = {"iss": ISS, "aud": "api", "org_id": "acme", "exp": now + 60}
    import hmac, hashlib, base64
    b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
    inp = b(json.dumps({"alg": "HS256", "kid": kid("RS256")}).encode()) + "." + b(json.dumps(body).encode())
    token = inp + "." + b(hmac.new(pem, inp.encode(), hashlib.sha256).digest())
    refused(token, "does not match its key.*registered for RS256")


check("HS256 signed with the RSA public key refused (algorithm confusion)", confusion)
check("token of another issuer refused", lambda: refused(mint("ES256", iss="https://evil.example/")[0], "issuer"))
check("token for another audience refused", lambda: refused(mint("ES256", aud="web")[0], "audience"))


def rotation():
    global jwks
    new = ec.generate_private_key(ec.SECP256R1())
    rotated = {"keys": [k for k in jwks["keys"] if k["kid"] != kid("ES256")] + [jwk_of("ES256", new, "py-es256-b")]}
    rows = dict(admin.execute(
        "SELECT kid, action FROM tenant_guard.add_jwks(%s::jsonb, %s, grace => '0')",
        (json.dumps(rotated), ISS)).fetchall())
    expect(rows.get("py-es256") == "retiring" and rows.get("py-es256-b") == "added", f"add_jwks said {rows}")
    refused(mint("ES256")[0], "unknown, retired or expired")
    t, _ = set_context(mint("ES256", key=new, kid_="py-es256-b")[0])
    expect(t == "acme", f"new kid gave {t!r}")


check("rotation: old kid retired, new kid accepted", rotation)


def revoke_token():
    token, body = mint("EdDSA")
    set_context(token)  # verified and cached in this backend
    admin.execute("SELECT tenant_guard.revoke_token(%s)", (body["jti"],))
    refused(token, "revoked.*jti")


check("revoke_token: a cached token is refused", revoke_token)


def revoke_tenant():
    token, _ = mint("PS256", org_id="py-tenant")
    set_context(token)
    admin.execute("SELECT tenant_guard.revoke_tenant('py-tenant')")
    refused(token, "revoked.*tenant")
    time.sleep(1.1)  # iat is in whole seconds: a token issued after the cut
    fresh, _ = mint("PS256", org_id="py-tenant")
    t, _ = set_context(fresh)
    expect(t == "py-tenant", "a token issued after revoke_tenant was refused")


check("revoke_tenant: tokens issued before refused, later ones accepted", revoke_tenant)


def revoke_subject_session():
    token, _ = mint("RS384", sub="py-logout")
    (t,) = app.execute("SELECT tenant_guard.set_context(%s, false)", (token,)).fetchone()
    expect(t == "acme", f"session context {t!r}")
    expect(app.execute("SELECT tenant_guard.tenant_id()").fetchone()[0] == "acme", "no session context")
    admin.execute("SELECT tenant_guard.revoke_subject('py-logout')")
    started = time.monotonic()
    with warnings_captured() as notices:
        tenant = app.execute("SELECT tenant_guard.tenant_id()").fetchone()[0]
    elapsed = (time.monotonic() - started) * 1000
    expect(tenant is None, f"the session context still reads {tenant!r} after revoke_subject")
    expect(any("no longer valid" in n for n in notices), f"no WARNING ({notices})")
    print(f"# session context ended {elapsed:.1f} ms after revoke_subject committed", flush=True)
    app.execute("SELECT tenant_guard.clear_context()")
    refused(token, "revoked.*subject")


class warnings_captured:
    def __enter__(self):
        self.notices = []
        self.handler = lambda d: self.notices.append(d.message_primary or "")
        app.add_notice_handler(self.handler)
        return self.notices

    def __exit__(self, *exc):
        app.remove_notice_handler(self.handler)


check("revoke_subject: a session context in another backend stops at its next statement", revoke_subject_session)

app.close()
admin.close()
sys.exit(1 if failures else 0)
