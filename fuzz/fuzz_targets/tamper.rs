//! (b) Structured: sign arbitrary claims with a ring key (`token::sign`), then
//! tamper with the token as an attacker would (bit flips, edits, spliced
//! segments from other genuine tokens, a rewritten header or payload, a
//! re-signature with keys an attacker can know, alg "none", non-canonical
//! base64, padding, ...) and verify it.
//!
//! Oracle:
//! * accepted => the token is byte-identical to one of the genuine tokens, its
//!   MAC recomputes independently, and its claims are what was signed (no
//!   forgery, no malleability), and they satisfy the rules (`assert_semantics`:
//!   times, iss, aud, tenant, tenant set, bypass lifetime);
//! * rejected => `Rejection::detail()` shows no secret, no MAC of the input
//!   and not the signature segment.
#![no_main]
#![allow(clippy::needless_update)]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tenant_guard_fuzz::token::{self, Alg, KeyKind, Rules};
use tenant_guard_fuzz::{assert_authentic, assert_no_leak, assert_semantics, hmac, ring, segments, trace, NOW};

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "api";

#[derive(Arbitrary, Debug)]
enum J {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn value(&self, depth: u32) -> Value {
        if depth > 8 {
            return Value::Null;
        }
        match self {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Int(i) => Value::from(*i),
            J::UInt(u) => Value::from(*u),
            J::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            J::Str(s) => Value::String(s.clone()),
            J::Arr(v) => Value::Array(v.iter().map(|x| x.value(depth + 1)).collect()),
            J::Obj(m) => Value::Object(
                m.iter().map(|(k, v)| (k.clone(), v.value(depth + 1))).collect(),
            ),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Time {
    /// NOW + n, as an integer.
    Rel(i32),
    /// NOW + x, as a float.
    RelF(f32),
    Abs(f64),
    Other(J),
}

impl Time {
    fn value(&self) -> Value {
        match self {
            Time::Rel(n) => Value::from(NOW as i64 + *n as i64),
            Time::RelF(x) => serde_json::Number::from_f64(NOW + *x as f64).map_or(Value::Null, Value::Number),
            Time::Abs(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Time::Other(j) => j.value(0),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Str {
    Canonical,
    Other(J),
}

#[derive(Arbitrary, Debug)]
enum Bypass {
    True,
    Other(J),
}

#[derive(Arbitrary, Debug)]
struct RulesChoice {
    tenant_claim: u8,
    leeway: u8,
    require_exp: bool,
    issuer: bool,
    audience: bool,
    max_lifetime: Option<u16>,
    max_bytes: u8,
    tenants_claim: bool,
    max_bypass_lifetime: u8,
}

impl RulesChoice {
    fn rules(&self) -> Rules {
        Rules {
            tenant_claim: ["tenant_id", "org", "sub"][self.tenant_claim as usize % 3].into(),
            leeway: [30.0, 0.0, 300.0][self.leeway as usize % 3],
            require_exp: self.require_exp,
            issuer: self.issuer.then(|| ISSUER.into()),
            audience: self.audience.then(|| AUDIENCE.into()),
            max_lifetime: self.max_lifetime.map(f64::from),
            max_bytes: [8192, 1024, 256][self.max_bytes as usize % 3],
            tenants_claim: if self.tenants_claim { "orgs" } else { "tenants" }.into(),
            max_bypass_lifetime: [900.0, 60.0, 0.0, 1e9][self.max_bypass_lifetime as usize % 4],
            // Fields added to Rules later keep their defaults.
            ..Rules::default()
        }
    }
}

#[derive(Arbitrary, Debug)]
enum AlgName {
    Hs256,
    Hs384,
    Hs512,
    None,
    NoneMixedCase,
    Rs256,
    Other(String),
    NotAString(J),
}

impl AlgName {
    fn value(&self) -> Value {
        match self {
            AlgName::Hs256 => "HS256".into(),
            AlgName::Hs384 => "HS384".into(),
            AlgName::Hs512 => "HS512".into(),
            AlgName::None => "none".into(),
            AlgName::NoneMixedCase => "nOnE".into(),
            AlgName::Rs256 => "RS256".into(),
            AlgName::Other(s) => s.as_str().into(),
            AlgName::NotAString(j) => j.value(0),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Kid {
    Ring(u8),
    Other(String),
    NotAString(J),
}

/// A header written member by member, so duplicates are possible.
#[derive(Arbitrary, Debug)]
struct Header {
    alg: Option<AlgName>,
    kid: Option<Kid>,
    typ: bool,
    crit: Option<J>,
    extra: Vec<(String, J)>,
    /// A second "alg" member after the first.
    dup_alg: Option<AlgName>,
}

impl Header {
    fn text(&self) -> String {
        let mut members: Vec<(String, Value)> = Vec::new();
        if let Some(a) = &self.alg {
            members.push(("alg".into(), a.value()));
        }
        if self.typ {
            members.push(("typ".into(), "JWT".into()));
        }
        match &self.kid {
            Some(Kid::Ring(i)) => members.push(("kid".into(), ring()[*i as usize % ring().len()].kid.as_str().into())),
            Some(Kid::Other(s)) => members.push(("kid".into(), s.as_str().into())),
            Some(Kid::NotAString(j)) => members.push(("kid".into(), j.value(0))),
            None => {}
        }
        if let Some(c) = &self.crit {
            members.push(("crit".into(), c.value(0)));
        }
        for (k, v) in &self.extra {
            members.push((k.clone(), v.value(0)));
        }
        if let Some(a) = &self.dup_alg {
            members.push(("alg".into(), a.value()));
        }
        let body: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

/// Keys an attacker can know without any ring secret.
#[derive(Arbitrary, Debug)]
enum AttackerKey {
    Empty,
    /// The kid of a ring key used as the secret.
    Kid(u8),
    /// The algorithm name as the secret.
    AlgName,
    /// A "public key" (algorithm confusion), or any bytes.
    Bytes(Vec<u8>),
    /// The key material of a ring key used as an HMAC secret: for a public
    /// key, the classic algorithm confusion.
    Material(u8),
}

#[derive(Arbitrary, Debug)]
enum Tamper {
    FlipBit { at: u16, bit: u8 },
    SetByte { at: u16, byte: u8 },
    Insert { at: u16, bytes: Vec<u8> },
    Remove { at: u16, len: u8 },
    Truncate { at: u16 },
    Append(Vec<u8>),
    /// Replace segment `seg` with the same segment of genuine token `from`.
    Splice { seg: u8, from: u8 },
    SwapSegments { a: u8, b: u8 },
    /// Drop the signature segment (`h.p.`) or all of it (`h.p`).
    DropSignature { keep_dot: bool },
    /// A new header (base64url of `Header::text`), payload and signature kept.
    ReplaceHeader(Header),
    /// Arbitrary header bytes, encoded.
    ReplaceHeaderRaw(Vec<u8>),
    /// Decode the payload, set one claim, re-encode; signature kept.
    EditClaim { name: u8, other: String, value: J },
    /// Arbitrary payload bytes, encoded; signature kept.
    ReplacePayloadRaw(Vec<u8>),
    /// Recompute the signature over the current `h.p` with an attacker key.
    Resign { key: AttackerKey, alg: u8 },
    /// Change the unused low bits of the last signature character.
    NonCanonicalSig { delta: u8 },
    /// Append base64 padding to a segment.
    Pad { seg: u8, n: u8 },
    /// Re-encode a segment with the standard alphabet (+ and /).
    StdAlphabet { seg: u8 },
    /// Whitespace or other bytes around the token.
    Wrap { before: Vec<u8>, after: Vec<u8> },
}

#[derive(Arbitrary, Debug)]
struct Input {
    signer: u8,
    other_signer: u8,
    claims: Vec<(String, J)>,
    exp: Option<Time>,
    nbf: Option<Time>,
    iat: Option<Time>,
    tenant: Option<J>,
    /// Which claim carries `tenant`: tenant_id, org or sub.
    tenant_name: u8,
    sub: Option<J>,
    /// The tenant-set claim ("tenants"; "orgs" when the rules say so).
    tenants: Option<Vec<J>>,
    tenants_as_orgs: bool,
    bypass: Option<Bypass>,
    iss: Option<Str>,
    aud: Option<Vec<Str>>,
    aud_single: bool,
    rules: RulesChoice,
    tamper: Vec<Tamper>,
}

fn claims_of(input: &Input) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in &input.claims {
        m.insert(k.clone(), v.value(0));
    }
    let s = |s: &Str, canonical: &str| match s {
        Str::Canonical => Value::from(canonical),
        Str::Other(j) => j.value(0),
    };
    let tenants_name = if input.tenants_as_orgs { "orgs" } else { "tenants" };
    let tenant_name = ["tenant_id", "org", "sub"][input.tenant_name as usize % 3];
    let set: [(&str, Option<Value>); 9] = [
        ("exp", input.exp.as_ref().map(Time::value)),
        ("nbf", input.nbf.as_ref().map(Time::value)),
        ("iat", input.iat.as_ref().map(Time::value)),
        ("sub", input.sub.as_ref().map(|j| j.value(0))),
        (tenant_name, input.tenant.as_ref().map(|j| j.value(0))),
        ("iss", input.iss.as_ref().map(|x| s(x, ISSUER))),
        (
            "aud",
            input.aud.as_ref().map(|aud| match (input.aud_single, aud.first()) {
                (true, Some(a)) => s(a, AUDIENCE),
                _ => Value::Array(aud.iter().map(|a| s(a, AUDIENCE)).collect()),
            }),
        ),
        (
            tenants_name,
            input.tenants.as_ref().map(|ts| Value::Array(ts.iter().map(|j| j.value(0)).collect())),
        ),
        (
            "bypass",
            input.bypass.as_ref().map(|b| match b {
                Bypass::True => Value::Bool(true),
                Bypass::Other(j) => j.value(0),
            }),
        ),
    ];
    for (k, v) in set {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    m
}

fn seg_range(t: &[u8], seg: u8) -> Option<std::ops::Range<usize>> {
    let dots: Vec<usize> = t.iter().enumerate().filter(|(_, &b)| b == b'.').map(|(i, _)| i).collect();
    let n = dots.len() + 1;
    let i = seg as usize % n;
    let start = if i == 0 { 0 } else { dots[i - 1] + 1 };
    let end = if i == n - 1 { t.len() } else { dots[i] };
    Some(start..end)
}

fn trim_zeros(b: &[u8]) -> &[u8] {
    let n = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
    &b[..n]
}

fuzz_target!(|input: Input| {
    let keys = ring();
    let rules = input.rules.rules();
    // Genuine tokens are signed with shared secrets (token::sign); the public
    // keys are in the ring for the attacker to name and to misuse as secrets.
    let signers = tenant_guard_fuzz::hmac_keys();
    let signer = &signers[input.signer as usize % signers.len()];
    let other = &signers[input.other_signer as usize % signers.len()];
    let claims = claims_of(&input);
    let mut claims2 = claims.clone();
    claims2.insert("tenant_id".into(), "someone-else".into());
    // The genuine tokens: the claims signed by the signer and by another ring
    // key, and other claims signed by the signer. Splices mix their segments.
    let genuine = [
        (token::sign(&claims, signer), &claims),
        (token::sign(&claims, other), &claims),
        (token::sign(&claims2, signer), &claims2),
    ];
    let mut t: Vec<u8> = genuine[0].0.clone().into_bytes();
    // Set when the attacker used a key equivalent to a ring secret (not a
    // forgery: HMAC keys are zero-padded, so only the padding can differ).
    let mut knows_secret = false;

    for op in input.tamper.iter().take(8) {
        let pos = |at: u16, len: usize| at as usize % (len + 1);
        match op {
            Tamper::FlipBit { at, bit } => {
                if !t.is_empty() {
                    let i = *at as usize % t.len();
                    t[i] ^= 1 << (bit % 8);
                }
            }
            Tamper::SetByte { at, byte } => {
                if !t.is_empty() {
                    let i = *at as usize % t.len();
                    t[i] = *byte;
                }
            }
            Tamper::Insert { at, bytes } => {
                let i = pos(*at, t.len());
                t.splice(i..i, bytes.iter().copied().take(64));
            }
            Tamper::Remove { at, len } => {
                let i = pos(*at, t.len());
                let j = (i + *len as usize).min(t.len());
                t.drain(i..j);
            }
            Tamper::Truncate { at } => {
                let i = pos(*at, t.len());
                t.truncate(i);
            }
            Tamper::Append(b) => t.extend(b.iter().take(64)),
            Tamper::Splice { seg, from } => {
                let src = genuine[*from as usize % 3].0.as_bytes();
                if let (Some(r), Some(rs)) = (seg_range(&t, *seg % 3), seg_range(src, *seg % 3)) {
                    t.splice(r, src[rs].iter().copied());
                }
            }
            Tamper::SwapSegments { a, b } => {
                let parts: Vec<Vec<u8>> = t.split(|&c| c == b'.').map(<[u8]>::to_vec).collect();
                let mut parts = parts;
                let n = parts.len();
                parts.swap(*a as usize % n, *b as usize % n);
                t = parts.join(&b'.');
            }
            Tamper::DropSignature { keep_dot } => {
                if let Some(i) = t.iter().rposition(|&b| b == b'.') {
                    t.truncate(if *keep_dot { i + 1 } else { i });
                }
            }
            Tamper::ReplaceHeader(h) => {
                if let Some(r) = seg_range(&t, 0) {
                    t.splice(r, URL_SAFE_NO_PAD.encode(h.text()).into_bytes());
                }
            }
            Tamper::ReplaceHeaderRaw(b) => {
                if let Some(r) = seg_range(&t, 0) {
                    t.splice(r, URL_SAFE_NO_PAD.encode(b).into_bytes());
                }
            }
            Tamper::EditClaim { name, other, value } => {
                if let Some(r) = seg_range(&t, 1) {
                    let decoded = URL_SAFE_NO_PAD.decode(&t[r.clone()]).ok();
                    let mut m: Map<String, Value> = decoded
                        .and_then(|d| serde_json::from_slice(&d).ok())
                        .unwrap_or_default();
                    let names = [
                        "tenant_id", "sub", "exp", "nbf", "iat", "iss", "aud", "org", "tenants", "orgs", "bypass",
                    ];
                    let n = names.get(*name as usize).copied().unwrap_or(other.as_str());
                    m.insert(n.into(), value.value(0));
                    t.splice(r, URL_SAFE_NO_PAD.encode(Value::Object(m).to_string()).into_bytes());
                }
            }
            Tamper::ReplacePayloadRaw(b) => {
                if let Some(r) = seg_range(&t, 1) {
                    t.splice(r, URL_SAFE_NO_PAD.encode(b).into_bytes());
                }
            }
            Tamper::Resign { key, alg } => {
                let alg = [Alg::Hs256, Alg::Hs384, Alg::Hs512][*alg as usize % 3];
                let secret: Vec<u8> = match key {
                    AttackerKey::Empty => Vec::new(),
                    AttackerKey::Kid(i) => keys[*i as usize % keys.len()].kid.clone().into_bytes(),
                    AttackerKey::AlgName => alg.as_str().as_bytes().to_vec(),
                    AttackerKey::Bytes(b) => b.clone(),
                    AttackerKey::Material(i) => keys[*i as usize % keys.len()].secret.clone(),
                };
                // Only a shared secret excuses an acceptance: public key
                // material is known to everyone.
                if keys
                    .iter()
                    .any(|k| k.alg.kind() == KeyKind::Hmac && trim_zeros(&k.secret) == trim_zeros(&secret))
                {
                    knows_secret = true;
                }
                if let Some(i) = t.iter().rposition(|&b| b == b'.') {
                    let sig = URL_SAFE_NO_PAD.encode(hmac(alg, &secret, &t[..i]));
                    t.truncate(i + 1);
                    t.extend(sig.into_bytes());
                }
            }
            Tamper::NonCanonicalSig { delta } => {
                if let Some(r) = seg_range(&t, 2) {
                    if let Some(last) = t[r].last().copied() {
                        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                        if let Some(v) = alphabet.iter().position(|&c| c == last) {
                            let n = t.len();
                            t[n - 1] = alphabet[(v + 1 + *delta as usize % 3) % 64];
                        }
                    }
                }
            }
            Tamper::Pad { seg, n } => {
                if let Some(r) = seg_range(&t, *seg) {
                    let pad = vec![b'='; 1 + *n as usize % 3];
                    t.splice(r.end..r.end, pad);
                }
            }
            Tamper::StdAlphabet { seg } => {
                if let Some(r) = seg_range(&t, *seg) {
                    for b in &mut t[r] {
                        *b = match *b {
                            b'-' => b'+',
                            b'_' => b'/',
                            x => x,
                        };
                    }
                }
            }
            Tamper::Wrap { before, after } => {
                let mut w: Vec<u8> = before.iter().copied().take(8).collect();
                w.extend_from_slice(&t);
                w.extend(after.iter().take(8));
                t = w;
            }
        }
    }

    let outcome = token::verify(&t, keys, &rules, NOW);
    trace(&t, &outcome);
    match outcome {
        Ok(v) => {
            assert_authentic(&t, keys, &rules, &v);
            assert_semantics(&v, &rules);
            if knows_secret {
                return;
            }
            let Some((_, signed)) = genuine.iter().find(|(g, _)| g.as_bytes() == t.as_slice()) else {
                panic!(
                    "FORGERY: accepted a token that is none of the genuine ones\n  accepted: {}\n  genuine:  {:?}",
                    String::from_utf8_lossy(&t),
                    genuine.iter().map(|g| &g.0).collect::<Vec<_>>()
                );
            };
            // The payload is exactly what was signed.
            let [_, p, _] = segments(&t).unwrap();
            let sent: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
            assert_eq!(Value::Object(v.claims.clone()), sent, "claims differ from the signed payload");
            assert!(
                same_up_to_float_rounding(&Value::Object(v.claims.clone()), &Value::Object((*signed).clone())),
                "claims differ from the map given to sign():\n  {:?}\n  {:?}",
                v.claims,
                signed
            );
        }
        Err(e) => assert_no_leak(&t, keys, &e),
    }
});

/// Structural equality where floats may differ in the last place (serde_json
/// without `float_roundtrip` parses floats on a fast, best-effort path).
fn same_up_to_float_rounding(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            // Relative to the larger value, and, for subnormal numbers (whose
            // precision is absolute), within a few of their steps.
            x == y
                || (x - y).abs() <= f64::EPSILON * 4.0 * x.abs().max(y.abs())
                || (x - y).abs() <= 4.0 * f64::MIN_POSITIVE * f64::EPSILON
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_up_to_float_rounding(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_up_to_float_rounding(v, w)))
        }
        _ => a == b,
    }
}
