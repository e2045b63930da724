#!/usr/bin/env python3
"""Writes idp_fixtures.sql: key sets and tokens for the spec 12_identity_providers.

Keys are made fresh on every run (only public keys and tokens are written, never
a private key); the spec's expected output does not depend on them. Needs the
`cryptography` package. Run: python3 make_idp_fixtures.py > idp_fixtures.sql
"""
import base64, hashlib, hmac, json
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISS = "https://idp.example.com/"
EXP = 4102444800          # 2100-01-01
IAT = 1700000000          # 2023-11-14: before any revocation the spec makes


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def uint(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def rsa_jwk(k, kid, alg=None, private=False):
    pn = k.public_key().public_numbers()
    j = {"kty": "RSA", "kid": kid, "use": "sig", "n": b64(uint(pn.n)), "e": b64(uint(pn.e))}
    if alg:
        j["alg"] = alg
    if private:
        j["d"] = b64(uint(k.private_numbers().d))
    return j


def ec_jwk(k, kid, crv=None):
    pn = k.public_key().public_numbers()
    size = (k.curve.key_size + 7) // 8
    return {"kty": "EC", "kid": kid, "crv": crv or {256: "P-256", 384: "P-384"}[k.curve.key_size],
            "x": b64(pn.x.to_bytes(size, "big")), "y": b64(pn.y.to_bytes(size, "big"))}


def ed_jwk(k, kid):
    raw = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(raw)}


def sign(alg, key, data):
    h = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
    if alg.startswith("RS"):
        return key.sign(data, padding.PKCS1v15(), h[alg[2:]])
    if alg.startswith("PS"):
        hh = h[alg[2:]]
        return key.sign(data, padding.PSS(padding.MGF1(hh), hh.digest_size), hh)
    if alg.startswith("ES"):
        der = key.sign(data, ec.ECDSA(h[alg[2:]]))
        r, s = decode_dss_signature(der)
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg == "EdDSA":
        return key.sign(data)
    if alg.startswith("HS"):
        return hmac.new(key, data, {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[2:]]).digest()
    raise ValueError(alg)


def token(alg, key, claims, **header):
    h = {"alg": alg, "typ": "JWT", **header}
    inp = b64(json.dumps(h).encode()) + "." + b64(json.dumps(claims).encode())
    return inp + "." + b64(sign(alg, key, inp.encode()))


def claims(**extra):
    c = {"iss": ISS, "aud": "api", "sub": "user-1", "iat": IAT, "exp": EXP, "org_id": "acme"}
    c.update(extra)
    return c


rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_key2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
p256 = ec.generate_private_key(ec.SECP256R1())
p384 = ec.generate_private_key(ec.SECP384R1())
ed = ed25519.Ed25519PrivateKey.generate()
ed2 = ed25519.Ed25519PrivateKey.generate()
attacker = ed25519.Ed25519PrivateKey.generate()
short = rsa.generate_private_key(public_exponent=65537, key_size=1024)

out = {}
keys = [rsa_jwk(rsa_key, "rs256", "RS256"), rsa_jwk(rsa_key, "rs384", "RS384"),
        rsa_jwk(rsa_key, "rs512", "RS512"), rsa_jwk(rsa_key2, "ps256", "PS256"),
        rsa_jwk(rsa_key2, "ps384", "PS384"), rsa_jwk(rsa_key2, "ps512", "PS512"),
        ec_jwk(p256, "es256"), ec_jwk(p384, "es384"), ed_jwk(ed, "ed-1"),
        {**rsa_jwk(rsa_key2, "enc-1"), "use": "enc"}]
out["jwks"] = {"keys": keys}
# Rotation: ed-1 gone, ed-2 new; everything else still published.
out["jwks_rotated"] = {"keys": [k for k in keys if k["kid"] != "ed-1"] + [ed_jwk(ed2, "ed-2")]}
out["jwks_private"] = {"keys": [rsa_jwk(rsa_key, "leak", "RS256", private=True)]}
out["jwks_short"] = {"keys": [rsa_jwk(short, "short", "RS256")]}
out["jwks_wrong_curve"] = {"keys": [ec_jwk(p256, "bent", crv="P-384")]}
out["jwks_es384_on_p256"] = {"keys": [{**ec_jwk(p256, "bent2"), "alg": "ES384"}]}
out["jwks_oct"] = {"keys": [{"kty": "oct", "kid": "sym", "k": b64(b"x" * 32)}]}

signers = {"RS256": ("rs256", rsa_key), "RS384": ("rs384", rsa_key), "RS512": ("rs512", rsa_key),
           "PS256": ("ps256", rsa_key2), "PS384": ("ps384", rsa_key2), "PS512": ("ps512", rsa_key2),
           "ES256": ("es256", p256), "ES384": ("es384", p384), "EdDSA": ("ed-1", ed)}
for alg, (kid, k) in signers.items():
    out["tok_" + alg.lower()] = token(alg, k, claims(jti="jti-" + kid), kid=kid)

der = rsa_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
out["tok_confusion_der"] = token("HS256", der, claims(), kid="rs256")
out["tok_confusion_pem"] = token("HS256", pem, claims(), kid="rs256")
out["tok_ps_on_rs_key"] = token("PS256", rsa_key, claims(), kid="rs256")
out["tok_rs_on_es_key"] = token("RS256", rsa_key, claims(), kid="es256")
out["tok_es256_by_p384"] = token("ES256", p384, claims(), kid="es256")
att_jwk = ed_jwk(attacker, "ed-1")
out["tok_embedded_jwk"] = token("EdDSA", attacker, claims(), kid="ed-1", jwk=att_jwk)
out["tok_embedded_jwk_nokid"] = token("EdDSA", attacker, claims(), jwk=att_jwk)
out["tok_jku"] = token("EdDSA", attacker, claims(), kid="ed-1", jku="https://attacker.example/jwks.json")
out["tok_other_issuer"] = token("ES256", p256, claims(iss="https://evil.example.com/"), kid="es256")
out["tok_no_issuer"] = token("ES256", p256, {k: v for k, v in claims().items() if k != "iss"}, kid="es256")
out["tok_wrong_aud"] = token("ES256", p256, claims(aud="other"), kid="es256")
out["tok_bypass"] = token("ES256", p256, claims(bypass=True), kid="es256")
out["tok_clerk"] = token("ES256", p256, claims(o={"id": "org_clerk", "rol": "admin"}), kid="es256")
out["tok_auth0"] = token("ES256", p256, claims(**{"https://example.com/tenant_id": "acme"}), kid="es256")
out["tok_orgs"] = token("ES256", p256, claims(o={"id": "a"}, orgs=[{"id": "a"}, {"id": "b"}]), kid="es256")
out["tok_no_org"] = token("ES256", p256, {k: v for k, v in claims().items() if k != "org_id"}, kid="es256")
out["tok_user2"] = token("EdDSA", ed, claims(sub="user-2", jti="jti-user-2"), kid="ed-1")
out["tok_globex"] = token("EdDSA", ed, claims(sub="user-3", org_id="globex", jti="jti-globex"), kid="ed-1")
out["tok_ed2"] = token("EdDSA", ed2, claims(jti="jti-ed-2"), kid="ed-2")
out["tok_old"] = token("ES256", p256, claims(iat=IAT - 10, jti="jti-old"), kid="es256")
out["tok_wide"] = token("ES256", p256, claims(tenants=["acme", "globex"], jti="jti-wide"), kid="es256")
out["tok_numjti"] = token("ES256", p256, claims(jti=12345), kid="es256")

print("-- Generated by make_idp_fixtures.py (public keys and tokens only). Do not edit.")
for name, v in out.items():
    text = v if isinstance(v, str) else json.dumps(v)
    assert "'" not in text
    print(f"\\set {name} '{text}'")
