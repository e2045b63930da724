#!/usr/bin/env python3
"""Prints a JWK set and one token per public-key algorithm for the bench's
identity-provider section: first line the JWKS (JSON), then "ALG TOKEN" lines.
Keys are made fresh (never written anywhere); tokens expire in 2100. Needs the
`cryptography` package."""
import base64, json
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
uint = lambda n: n.to_bytes((n.bit_length() + 7) // 8, "big")
ISS = "https://bench.idp.example/"
rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
p256 = ec.generate_private_key(ec.SECP256R1())
ed = ed25519.Ed25519PrivateKey.generate()
pn, en = rs.public_key().public_numbers(), p256.public_key().public_numbers()
jwks = {"keys": [
    {"kty": "RSA", "kid": "b-rs256", "alg": "RS256", "n": b64(uint(pn.n)), "e": b64(uint(pn.e))},
    {"kty": "EC", "kid": "b-es256", "crv": "P-256", "x": b64(en.x.to_bytes(32, "big")), "y": b64(en.y.to_bytes(32, "big"))},
    {"kty": "OKP", "kid": "b-eddsa", "crv": "Ed25519",
     "x": b64(ed.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))},
]}
print(json.dumps(jwks))


def sign(alg, data):
    if alg == "RS256":
        return rs.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if alg == "ES256":
        r, s = decode_dss_signature(p256.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return ed.sign(data)


claims = {"iss": ISS, "tenant_id": "tenant-42", "sub": "u1", "exp": 4102444800}
for alg, kid in [("RS256", "b-rs256"), ("ES256", "b-es256"), ("EdDSA", "b-eddsa")]:
    inp = b64(json.dumps({"alg": alg, "kid": kid}).encode()) + "." + b64(json.dumps(claims).encode())
    print(alg, inp + "." + b64(sign(alg, inp.encode())))
