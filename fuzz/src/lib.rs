//! Shared code for the fuzz targets.
//!
//! `token` is the extension's own `src/token.rs`, compiled here as is, without
//! pgrx, so what is fuzzed is exactly the module the extension ships. Nothing
//! here reimplements verification: the helpers are independent oracles (an
//! HMAC recomputed with the `hmac` crate directly, a JSON tree that keeps
//! duplicate members) and the fixed key ring.

#[path = "../../src/token.rs"]
#[allow(dead_code)]
pub mod token;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};
use std::fmt;
use std::sync::OnceLock;
pub use token::{Alg, Key, KeyKind, Rejection, Rules, Verified};

/// The clock every target verifies at (2030-03-17).
pub const NOW: f64 = 1_900_000_000.0;

/// The fixed key ring: one key per algorithm plus an expired one. Secrets are
/// distinct; two are printable ASCII (so a leak would be visible as text), two
/// are not valid UTF-8 (a leak could only be an encoding: hex or base64).
pub fn ring() -> &'static [Key] {
    static RING: OnceLock<Vec<Key>> = OnceLock::new();
    RING.get_or_init(|| {
        let bin = |len: usize, seed: u8| -> Vec<u8> {
            (0..len)
                .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) | 0x80)
                .collect()
        };
        vec![
            Key {
                kid: "k256".into(),
                alg: Alg::Hs256,
                secret: b"tg-fuzz-HS256-secret-0123456789!".to_vec(),
                expires_at: None,
                issuer: None,
            },
            Key {
                kid: "k384".into(),
                alg: Alg::Hs384,
                secret: bin(48, 3),
                expires_at: None,
                issuer: None,
            },
            Key {
                kid: "k512".into(),
                alg: Alg::Hs512,
                secret: b"tg-fuzz-HS512-secret-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNO".to_vec(),
                expires_at: None,
                issuer: None,
            },
            Key {
                kid: "old".into(),
                alg: Alg::Hs256,
                secret: bin(32, 11),
                expires_at: Some(NOW - 10.0),
                issuer: None,
            },
            public_key("rs256", Alg::Rs256),
            public_key("ps256", Alg::Ps256),
            public_key("es256", Alg::Es256),
            public_key("es384", Alg::Es384),
            public_key("ed", Alg::EdDsa),
        ]
    })
}

/// The private halves of the ring's public keys (test-only keys: RSA from
/// tests/fixtures, Ed25519 from a fixed seed, EC made once per process), for
/// signing seeds and genuine tokens.
pub enum Private {
    Rsa(ring::signature::RsaKeyPair),
    Ec(ring::signature::EcdsaKeyPair),
    Ed(ring::signature::Ed25519KeyPair),
}

/// The process's P-256/P-384 PKCS#8 document (ring takes no raw scalars;
/// made once, so every use in a run sees the same key).
fn ec_pkcs8(alg: Alg) -> Vec<u8> {
    use ring::signature as rs;
    static P256: OnceLock<Vec<u8>> = OnceLock::new();
    static P384: OnceLock<Vec<u8>> = OnceLock::new();
    let (cell, a) = if alg == Alg::Es256 {
        (&P256, &rs::ECDSA_P256_SHA256_FIXED_SIGNING)
    } else {
        (&P384, &rs::ECDSA_P384_SHA384_FIXED_SIGNING)
    };
    cell.get_or_init(|| {
        rs::EcdsaKeyPair::generate_pkcs8(a, &ring::rand::SystemRandom::new())
            .unwrap()
            .as_ref()
            .to_vec()
    })
    .clone()
}

pub fn private(alg: Alg) -> Private {
    use ring::signature as rs;
    match alg.kind() {
        KeyKind::Rsa => Private::Rsa(
            rs::RsaKeyPair::from_pkcs8(include_bytes!("../../tests/fixtures/rsa2048.pk8")).unwrap(),
        ),
        KeyKind::Ec => {
            let a = if alg == Alg::Es256 {
                &rs::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &rs::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            Private::Ec(
                rs::EcdsaKeyPair::from_pkcs8(a, &ec_pkcs8(alg), &ring::rand::SystemRandom::new())
                    .unwrap(),
            )
        }
        _ => Private::Ed(rs::Ed25519KeyPair::from_seed_unchecked(&[42u8; 32]).unwrap()),
    }
}

/// Signs `input` for `alg` with the ring's private key of that kind.
pub fn sign_public(alg: Alg, input: &[u8]) -> Vec<u8> {
    use ring::signature as rs;
    let rng = ring::rand::SystemRandom::new();
    match private(alg) {
        Private::Rsa(k) => {
            let enc: &'static dyn rs::RsaEncoding =
                if alg == Alg::Ps256 { &rs::RSA_PSS_SHA256 } else { &rs::RSA_PKCS1_SHA256 };
            let mut sig = vec![0; k.public().modulus_len()];
            k.sign(enc, &rng, input, &mut sig).unwrap();
            sig
        }
        Private::Ec(k) => k.sign(&rng, input).unwrap().as_ref().to_vec(),
        Private::Ed(k) => k.sign(input).as_ref().to_vec(),
    }
}

fn public_key(kid: &str, alg: Alg) -> Key {
    use ring::signature::KeyPair;
    let secret = match private(alg) {
        Private::Rsa(k) => k.public().as_ref().to_vec(),
        Private::Ec(k) => k.public_key().as_ref().to_vec(),
        Private::Ed(k) => k.public_key().as_ref().to_vec(),
    };
    Key { kid: kid.into(), alg, secret, expires_at: None, issuer: None }
}

/// The ring's shared-secret keys (the first four).
pub fn hmac_keys() -> &'static [Key] {
    &ring()[..4]
}

/// HMAC computed here with the `hmac` crate, independently of `token`.
pub fn hmac(alg: Alg, secret: &[u8], input: &[u8]) -> Vec<u8> {
    fn go<M: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &[u8]) -> Vec<u8> {
        let mut m = <M as Mac>::new_from_slice(secret).unwrap();
        m.update(input);
        m.finalize().into_bytes().to_vec()
    }
    match alg {
        Alg::Hs256 => go::<Hmac<Sha256>>(secret, input),
        Alg::Hs384 => go::<Hmac<Sha384>>(secret, input),
        Alg::Hs512 => go::<Hmac<Sha512>>(secret, input),
        // A public key makes no MAC.
        _ => Vec::new(),
    }
}

/// The three segments of a compact JWS, if the token has exactly that shape.
pub fn segments(token: &[u8]) -> Option<[&[u8]; 3]> {
    let mut it = token.split(|&b| b == b'.');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(h), Some(p), Some(s), None) => Some([h, p, s]),
        _ => None,
    }
}

/// Independent authenticity check for a token `verify` accepted: the key it
/// names is in `keys`, active, of the header's algorithm, and the signature is
/// the HMAC of the signing input under that key's secret.
pub fn assert_authentic(token: &[u8], keys: &[Key], rules: &Rules, v: &Verified) {
    assert!(token.len() <= rules.max_bytes, "accepted an oversized token");
    let [h, p, s] = segments(token).expect("accepted a token that is not three segments");
    let key = keys
        .iter()
        .find(|k| k.kid == v.kid)
        .expect("accepted with a kid that is not in the ring");
    assert!(key.expires_at.is_none_or(|e| NOW < e), "accepted with an expired key");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
    assert_eq!(header["alg"], key.alg.as_str(), "accepted under an algorithm the key is not registered for");
    let input = &token[..h.len() + 1 + p.len()];
    let sig = URL_SAFE_NO_PAD.decode(s).expect("accepted a signature that is not base64url");
    if key.alg.kind() == KeyKind::Hmac {
        assert!(sig == hmac(key.alg, &key.secret, input), "FORGERY: accepted a signature that is not the HMAC of the input");
    } else {
        // Checked again through ring's API directly, not through token.rs.
        use ring::signature as rs;
        let a: &dyn rs::VerificationAlgorithm = match key.alg {
            Alg::Rs256 => &rs::RSA_PKCS1_2048_8192_SHA256,
            Alg::Ps256 => &rs::RSA_PSS_2048_8192_SHA256,
            Alg::Es256 => &rs::ECDSA_P256_SHA256_FIXED,
            Alg::Es384 => &rs::ECDSA_P384_SHA384_FIXED,
            Alg::EdDsa => &rs::ED25519,
            other => panic!("accepted under {other:?}, which no ring key has"),
        };
        assert!(
            rs::UnparsedPublicKey::new(a, &key.secret).verify(input, &sig).is_ok(),
            "FORGERY: accepted a signature that does not verify"
        );
    }
    // Canonical encoding: re-encoding the signature gives the same segment.
    assert_eq!(URL_SAFE_NO_PAD.encode(&sig).as_bytes(), s, "accepted a non-canonical signature encoding");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    assert_eq!(claims, Value::Object(v.claims.clone()), "claims differ from the signed payload");
    // `payload` is the signed JSON text, byte for byte.
    assert_eq!(v.payload.as_bytes(), URL_SAFE_NO_PAD.decode(p).unwrap(), "payload is not the signed text");
}

/// With `TG_FUZZ_TRACE` set, prints each verification outcome to stderr (to
/// see what a corpus file exercises: run the target binary on the file).
pub fn trace(token: &[u8], outcome: &Result<Verified, Rejection>) {
    static ON: OnceLock<bool> = OnceLock::new();
    if !*ON.get_or_init(|| std::env::var_os("TG_FUZZ_TRACE").is_some()) {
        return;
    }
    match outcome {
        Ok(v) => eprintln!(
            "TRACE accepted kid={} tenant={:?} tenants={:?} bypass={} claims={}",
            v.kid,
            v.tenant,
            v.tenants,
            v.bypass,
            Value::Object(v.claims.clone())
        ),
        Err(e) => eprintln!("TRACE rejected {e}: {} [{}]", e.detail(), String::from_utf8_lossy(token)),
    }
}

/// Independent re-check of what an accepted token must satisfy under `rules`
/// at `NOW` (times, issuer, audience, tenant, tenant set, bypass), written
/// from the documented rules rather than from the code.
pub fn assert_semantics(v: &Verified, rules: &Rules) {
    let c = &v.claims;
    let time = |n: &str| {
        c.get(n)
            .map(|x| x.as_f64().unwrap_or_else(|| panic!("accepted a non-numeric {n}: {x}")))
    };
    let (exp, nbf, iat) = (time("exp"), time("nbf"), time("iat"));
    let leeway = rules.leeway;
    match exp {
        Some(e) => assert!(NOW <= e + leeway, "accepted an expired token (exp {e})"),
        None => assert!(
            !rules.require_exp && rules.max_lifetime.is_none(),
            "accepted a token without exp"
        ),
    }
    if let Some(n) = nbf {
        assert!(n <= NOW + leeway, "accepted a token before its nbf {n}");
    }
    if let Some(i) = iat {
        assert!(i <= NOW + leeway, "accepted a token issued in the future ({i})");
    }
    if let (Some(max), Some(e)) = (rules.max_lifetime, exp) {
        assert!(e - iat.unwrap_or(NOW) <= max, "accepted a token living longer than {max}");
    }
    if let Some(iss) = &rules.issuer {
        assert_eq!(c.get("iss").and_then(Value::as_str), Some(iss.as_str()), "accepted a wrong iss");
    }
    if let Some(aud) = &rules.audience {
        let ok = match c.get("aud") {
            Some(Value::String(s)) => s == aud,
            Some(Value::Array(a)) => a.iter().all(Value::is_string) && a.iter().any(|x| x == aud.as_str()),
            _ => false,
        };
        assert!(ok, "accepted a wrong aud: {:?}", c.get("aud"));
    }
    let id = |x: &Value| -> Option<String> {
        match x {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            _ => None,
        }
    };
    let claim_id = |name: &str| {
        c.get(name)
            .map(|x| id(x).unwrap_or_else(|| panic!("accepted claim {name} of the wrong type: {x}")))
    };
    assert_eq!(v.tenant, claim_id(&rules.tenant_claim), "tenant is not the tenant claim");
    assert_eq!(v.user, claim_id("sub"), "user is not the sub claim");
    let bypass = match c.get("bypass") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(x) => panic!("accepted a non-boolean bypass: {x}"),
    };
    assert_eq!(v.bypass, bypass, "bypass flag differs from the claim");
    let set: Option<Vec<String>> = c.get(&rules.tenants_claim).map(|x| match x {
        Value::Array(items) => {
            let mut out: Vec<String> = Vec::new();
            for it in items {
                let s = id(it).unwrap_or_else(|| panic!("accepted a tenant set with {it}"));
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            out
        }
        _ => panic!("accepted a tenant set that is not an array: {x}"),
    });
    if bypass {
        assert!(v.tenants.is_empty(), "a bypass token lists tenants");
        let e = exp.expect("accepted a bypass token without exp");
        assert!(
            e - iat.unwrap_or(NOW) <= rules.max_bypass_lifetime,
            "accepted a bypass token living longer than {}",
            rules.max_bypass_lifetime
        );
    } else {
        let t = v.tenant.as_ref().expect("accepted a non-bypass token without a tenant");
        match set {
            None => assert_eq!(v.tenants, vec![t.clone()]),
            Some(set) => {
                assert!(set.contains(t), "accepted a tenant outside its tenant set");
                assert_eq!(v.tenants, set, "tenants differ from the tenant set claim");
            }
        }
    }
}

/// Every string (member names and string values) of a JSON text, parsed
/// leniently (duplicates and NUL kept). Empty if it is not JSON.
pub fn json_strings(bytes: &[u8]) -> Vec<String> {
    fn walk(t: &Tree, out: &mut Vec<String>) {
        match t {
            Tree::Str(s) => out.push(s.clone()),
            Tree::Arr(v) => v.iter().for_each(|x| walk(x, out)),
            Tree::Obj(m) => {
                for (k, v) in m {
                    out.push(k.clone());
                    walk(v, out);
                }
            }
            Tree::Scalar(_) => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(t) = serde_json::from_slice::<Tree>(bytes) {
        walk(&t, &mut out);
    }
    out
}

/// Checks that a rejection's DETAIL (and message) leaks neither a secret of
/// `keys`, nor the correct MAC of the token's signing input under any key, nor
/// the token's signature segment. Text the token itself carries in its header
/// or payload (which the detail may echo, clipped) is not a leak.
pub fn assert_no_leak(token: &[u8], keys: &[Key], e: &Rejection) {
    let detail = e.detail();
    let shown = format!("{e}: {detail}");
    // Every needle below is 12+ characters without whitespace: skip the
    // (HMAC-heavy) checks when the text has no such run.
    let longest_run = shown
        .split(|c: char| c.is_whitespace())
        .map(str::len)
        .max()
        .unwrap_or(0);
    if longest_run < 12 {
        return;
    }
    // What the token carries in its header and payload (decoded bytes and JSON
    // strings): the detail may echo that, clipped, and it is not a leak.
    let segs = segments(token);
    let mut decoded: Vec<String> = Vec::new();
    if let Some([h, p, _]) = segs {
        for seg in [h, p] {
            if let Ok(bytes) = URL_SAFE_NO_PAD.decode(seg) {
                decoded.push(String::from_utf8_lossy(&bytes).into_owned());
                decoded.extend(json_strings(&bytes));
            }
        }
    }
    // For secrets, anything the caller sent counts as carried: echoing the
    // caller's own bytes reveals nothing.
    let mut carried = decoded.clone();
    carried.push(String::from_utf8_lossy(token).into_owned());
    let check = |needle: &str, what: &str, explained_by: &[String]| {
        if shown.contains(needle) && !explained_by.iter().any(|c| c.contains(needle)) {
            panic!("LEAK: the rejection {e:?} shows {what} ({needle:?}): {shown:?}");
        }
    };
    let encodings = |bytes: &[u8]| -> Vec<String> {
        vec![
            hex(bytes),
            hex(bytes).to_uppercase(),
            STANDARD.encode(bytes),
            STANDARD_NO_PAD.encode(bytes),
            URL_SAFE.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
        ]
    };
    // Public keys are public: only shared secrets can leak.
    for k in keys.iter().filter(|k| k.alg.kind() == KeyKind::Hmac) {
        let what = format!("the secret of key {}", k.kid);
        for enc in encodings(&k.secret) {
            // Any 16-character window of an encoding is already a leak.
            for w in enc.as_bytes().windows(16) {
                check(std::str::from_utf8(w).unwrap(), &what, &carried);
            }
        }
        if let Ok(s) = std::str::from_utf8(&k.secret) {
            for w in s.as_bytes().windows(12) {
                check(std::str::from_utf8(w).unwrap(), &what, &carried);
            }
        }
    }
    if let Some([h, p, s]) = segs {
        // The correct MAC of this signing input under any ring secret and any
        // algorithm (a signing oracle), in any encoding, first 12 characters.
        let input = &token[..h.len() + 1 + p.len()];
        for k in keys.iter().filter(|k| k.alg.kind() == KeyKind::Hmac) {
            for alg in [Alg::Hs256, Alg::Hs384, Alg::Hs512] {
                let mac = hmac(alg, &k.secret, input);
                let what = format!("the {alg:?} MAC of the input under key {}", k.kid);
                for enc in encodings(&mac) {
                    check(&enc[..12], &what, &decoded);
                }
            }
        }
        // The signature segment as sent (12+ characters), unless the header or
        // payload carries the same text.
        if s.len() >= 12 {
            check(&String::from_utf8_lossy(s), "the signature segment", &decoded);
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A JSON value that keeps objects as member lists, duplicates included: an
/// oracle for `token::parse_object` that shares no code with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    Scalar(Value),
    Str(String),
    Arr(Vec<Tree>),
    Obj(Vec<(String, Tree)>),
}

impl Tree {
    /// True if some object (at any depth) has two members with the same name.
    pub fn has_duplicate(&self) -> bool {
        match self {
            Tree::Scalar(_) | Tree::Str(_) => false,
            Tree::Arr(v) => v.iter().any(Tree::has_duplicate),
            Tree::Obj(m) => {
                let mut names: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
                names.sort_unstable();
                names.windows(2).any(|w| w[0] == w[1]) || m.iter().any(|(_, v)| v.has_duplicate())
            }
        }
    }

    /// True if a member name or string anywhere contains U+0000.
    pub fn has_nul(&self) -> bool {
        match self {
            Tree::Scalar(_) => false,
            Tree::Str(s) => s.contains('\0'),
            Tree::Arr(v) => v.iter().any(Tree::has_nul),
            Tree::Obj(m) => m.iter().any(|(k, v)| k.contains('\0') || v.has_nul()),
        }
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tree;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
                Ok(Tree::Scalar(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
                Ok(Tree::Scalar(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
                Ok(Tree::Scalar(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
                Ok(Tree::Scalar(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
                Ok(Tree::Str(v.to_owned()))
            }
            fn visit_unit<E>(self) -> Result<Tree, E> {
                Ok(Tree::Scalar(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(Tree::Arr(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
                let mut m = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Tree>()? {
                    m.push((k, v));
                }
                Ok(Tree::Obj(m))
            }
        }
        d.deserialize_any(V)
    }
}
