//! Compact JWS (RFC 7515) / JWT (RFC 7519) verification and signing with HMAC.
//!
//! This module is pure Rust: it knows nothing of PostgreSQL, so every rule
//! below is unit-tested with plain `#[test]`s and fuzzed directly.
//!
//! Invariants, each a security decision:
//! * The size limit is checked before any decoding, so an attacker cannot make
//!   the server decode or hash megabytes per call.
//! * Only `HS256`, `HS384` and `HS512` exist. `alg: none`, asymmetric
//!   algorithms (the classic "algorithm confusion" attack uses an RSA public
//!   key as an HMAC secret) and unknown names are refused, and the header's
//!   `alg` must equal the algorithm registered with the key: the token never
//!   chooses how it is checked.
//! * `crit` is refused outright: we implement no JWS extension, and RFC 7515
//!   §4.1.11 requires rejecting tokens whose critical extensions we do not
//!   understand.
//! * The MAC is compared in constant time (`Mac::verify_slice`).
//! * base64url is decoded strictly (no padding, no stray bits), so a token has
//!   exactly one encoding and a signature cannot be re-encoded.
//! * JSON objects with duplicate member names are refused (RFC 7515 §5.2 lets
//!   us; otherwise two parsers could disagree on which `tenant_id` counts), and
//!   so is any string containing U+0000, which neither a GUC nor `jsonb` can
//!   hold.
//! * Signature before claims: nothing in the payload is interpreted until the
//!   MAC has been verified.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};
use std::fmt;

/// The HMAC algorithms tenant_guard accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Hs256,
    Hs384,
    Hs512,
}

impl Alg {
    /// Parses a JOSE algorithm name exactly as written (`HS256`, not `hs256`).
    pub fn parse(name: &str) -> Option<Alg> {
        match name {
            "HS256" => Some(Alg::Hs256),
            "HS384" => Some(Alg::Hs384),
            "HS512" => Some(Alg::Hs512),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
        }
    }

    /// RFC 7518 §3.2: "A key of the same size as the hash output ... or
    /// larger MUST be used with this algorithm."
    pub fn min_key_len(self) -> usize {
        match self {
            Alg::Hs256 => 32,
            Alg::Hs384 => 48,
            Alg::Hs512 => 64,
        }
    }

    fn mac(self, secret: &[u8], input: &[u8]) -> Vec<u8> {
        match self {
            Alg::Hs256 => mac_with::<Hmac<Sha256>>(secret, input),
            Alg::Hs384 => mac_with::<Hmac<Sha384>>(secret, input),
            Alg::Hs512 => mac_with::<Hmac<Sha512>>(secret, input),
        }
    }

    fn verify(self, secret: &[u8], input: &[u8], sig: &[u8]) -> bool {
        match self {
            Alg::Hs256 => verify_with::<Hmac<Sha256>>(secret, input, sig),
            Alg::Hs384 => verify_with::<Hmac<Sha384>>(secret, input, sig),
            Alg::Hs512 => verify_with::<Hmac<Sha512>>(secret, input, sig),
        }
    }
}

fn mac_with<M: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length: new_from_slice cannot fail.
    let mut m = <M as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(input);
    m.finalize().into_bytes().to_vec()
}

fn verify_with<M: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &[u8], sig: &[u8]) -> bool {
    let mut m = <M as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(input);
    // Constant-time comparison; a wrong length is rejected without comparing.
    m.verify_slice(sig).is_ok()
}

/// Checks a secret proposed for a key. Returns the complaint, if any.
pub fn check_secret(alg: Alg, secret: &[u8]) -> Result<(), String> {
    if secret.len() < alg.min_key_len() {
        return Err(format!(
            "{} needs a secret of at least {} bytes (RFC 7518 section 3.2); this one has {}",
            alg.as_str(),
            alg.min_key_len(),
            secret.len()
        ));
    }
    Ok(())
}

/// A verification key as loaded from the key ring.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    pub alg: Alg,
    pub secret: Vec<u8>,
    /// Unix seconds after which the key verifies nothing; `None`: no expiry.
    pub expires_at: Option<f64>,
}

impl fmt::Debug for Key {
    // Never print the secret, not even in a test failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("secret", &"<hidden>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Key {
    /// Whether the key verifies anything at `now` (not expired).
    pub fn active_at(&self, now: f64) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }
}

/// The checks a deployment configures (the `tenant_guard.*` settings).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub tenant_claim: String,
    pub leeway: f64,
    pub require_exp: bool,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Longest accepted `exp - iat` (or `exp - now` without `iat`), seconds.
    pub max_lifetime: Option<f64>,
    pub max_bytes: usize,
    /// Name of the claim listing the tenants a token may read.
    pub tenants_claim: String,
    /// Longest accepted lifetime of a bypass token, seconds.
    pub max_bypass_lifetime: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            tenant_claim: "tenant_id".into(),
            leeway: 30.0,
            require_exp: true,
            issuer: None,
            audience: None,
            max_lifetime: None,
            max_bytes: 8192,
            tenants_claim: "tenants".into(),
            max_bypass_lifetime: 900.0,
        }
    }
}

/// What a valid token establishes.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub kid: String,
    /// The tenant the token writes to (required unless `bypass`).
    pub tenant: Option<String>,
    /// The tenants the token reads: the `tenants` claim, or just `tenant`.
    /// Empty for a bypass token, which reads every tenant.
    pub tenants: Vec<String>,
    /// `bypass: true`: a short-lived cross-tenant token.
    pub bypass: bool,
    pub user: Option<String>,
    /// Every claim, as a JSON object.
    pub claims: Map<String, Value>,
    /// The payload as it was signed: JSON text of `claims`.
    pub payload: String,
}

/// Why a token was refused. `Display` is the one-line reason; `detail` the why.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    TooLarge {
        len: usize,
        max: usize,
    },
    Malformed(String),
    AlgNone,
    UnsupportedAlg(String),
    Crit,
    NoKeys,
    AmbiguousKey {
        active: usize,
    },
    UnknownKey(String),
    AlgMismatch {
        token: String,
        key: Alg,
    },
    BadSignature,
    BadClaim {
        claim: String,
        expected: &'static str,
    },
    MissingExp,
    Expired {
        exp: f64,
        now: f64,
        leeway: f64,
    },
    NotYetValid {
        nbf: f64,
        now: f64,
        leeway: f64,
    },
    IssuedInFuture {
        iat: f64,
        now: f64,
        leeway: f64,
    },
    LifetimeTooLong {
        lifetime: f64,
        max: f64,
    },
    WrongIssuer {
        got: Option<String>,
    },
    WrongAudience,
    MissingTenant {
        claim: String,
    },
    TenantNotInSet {
        tenant: String,
        claim: String,
    },
    BypassTooLong {
        lifetime: Option<f64>,
        max: f64,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Rejection::*;
        let s = match self {
            TooLarge { .. } => "token is too large",
            Malformed(_) => "token is malformed",
            AlgNone => "unsigned tokens (alg \"none\") are not accepted",
            UnsupportedAlg(_) => "token algorithm is not supported",
            Crit => "token header lists critical extensions",
            NoKeys => "no signing key is active",
            AmbiguousKey { .. } => "token header has no kid",
            UnknownKey(_) => "token key is unknown, retired or expired",
            AlgMismatch { .. } => "token algorithm does not match its key",
            BadSignature => "token signature does not match",
            BadClaim { .. } => "token claim has the wrong type",
            MissingExp => "token has no exp claim",
            Expired { .. } => "token has expired",
            NotYetValid { .. } => "token is not yet valid",
            IssuedInFuture { .. } => "token was issued in the future",
            LifetimeTooLong { .. } => "token lifetime is too long",
            WrongIssuer { .. } => "token issuer is not accepted",
            WrongAudience => "token audience is not accepted",
            MissingTenant { .. } => "token has no tenant claim",
            TenantNotInSet { .. } => "token tenant is not in its tenant set",
            BypassTooLong { .. } => "bypass token lifetime is too long",
        };
        f.write_str(s)
    }
}

impl Rejection {
    /// The DETAIL line. Never contains the token, a signature or a secret;
    /// claim values echoed back are clipped.
    pub fn detail(&self) -> String {
        use Rejection::*;
        match self {
            TooLarge { len, max } => {
                format!("the token is {len} bytes; tenant_guard.max_token_bytes is {max}")
            }
            Malformed(why) => why.clone(),
            AlgNone => "the header says alg \"none\"".into(),
            UnsupportedAlg(a) => format!(
                "the header says alg \"{}\"; only HS256, HS384 and HS512 are accepted",
                clip(a)
            ),
            Crit => "no JWS extension is supported, so a token with \"crit\" is refused".into(),
            NoKeys => "the key ring has no active key".into(),
            AmbiguousKey { active } => {
                format!("{active} keys are active, so the header must name one with \"kid\"")
            }
            UnknownKey(kid) => format!("no active key has kid \"{}\"", clip(kid)),
            AlgMismatch { token, key } => format!(
                "the header says alg \"{}\" but the key is registered for {}",
                clip(token),
                key.as_str()
            ),
            BadSignature => "the HMAC does not verify with the key named by the token".into(),
            BadClaim { claim, expected } => {
                format!("claim \"{}\" must be {expected}", clip(claim))
            }
            MissingExp => "tenant_guard.require_exp is on, so every token needs exp".into(),
            Expired { exp, leeway, .. } => {
                format!("exp {} has passed (leeway {leeway} s)", utc(*exp))
            }
            NotYetValid { nbf, leeway, .. } => {
                format!("nbf {} is in the future (leeway {leeway} s)", utc(*nbf))
            }
            IssuedInFuture { iat, leeway, .. } => {
                format!("iat {} is in the future (leeway {leeway} s)", utc(*iat))
            }
            LifetimeTooLong { lifetime, max } => {
                format!("the token lives {lifetime} s; tenant_guard.max_token_lifetime is {max} s")
            }
            WrongIssuer { got: Some(g) } => format!(
                "iss \"{}\" is not the value of tenant_guard.issuer",
                clip(g)
            ),
            WrongIssuer { got: None } => {
                "tenant_guard.issuer is set but the token has no iss".into()
            }
            WrongAudience => "aud does not contain the value of tenant_guard.audience".into(),
            MissingTenant { claim } => format!(
                "claim \"{}\" (tenant_guard.tenant_claim) is required",
                clip(claim)
            ),
            TenantNotInSet { tenant, claim } => format!(
                "the tenant \"{}\" must be one of the claim \"{}\"",
                clip(tenant),
                clip(claim)
            ),
            BypassTooLong { lifetime: Some(l), max } => format!(
                "a bypass token may live {max} s (tenant_guard.max_bypass_lifetime); this one lives {l} s"
            ),
            BypassTooLong { lifetime: None, max } => format!(
                "a bypass token needs exp, and may live {max} s (tenant_guard.max_bypass_lifetime)"
            ),
        }
    }
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian).
/// Out-of-range values are shown as the raw number.
pub fn utc(t: f64) -> String {
    if !(-62_135_596_800.0..=253_402_300_799.0).contains(&t) {
        return format!("{t}");
    }
    let secs = t.floor() as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Values from the token shown back in messages are clipped to 64 characters.
/// Control characters become `?`, so a value taken from an unverified token
/// cannot start a forged line in the server log.
pub fn clip(s: &str) -> String {
    const MAX: usize = 64;
    let cut = match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    };
    cut.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn malformed(why: impl Into<String>) -> Rejection {
    Rejection::Malformed(why.into())
}

/// Decodes one base64url segment (no padding, canonical trailing bits).
fn b64(part: &[u8], what: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| malformed(format!("the {what} is not valid unpadded base64url")))
}

/// Parses a JSON object, refusing duplicate member names and U+0000.
pub fn parse_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, Rejection> {
    match serde_json::from_slice::<Strict>(bytes) {
        Ok(Strict(Value::Object(m))) => Ok(m),
        Ok(_) => Err(malformed(format!("the {what} is not a JSON object"))),
        Err(e) => {
            let msg = e.to_string();
            if let Some(rest) = msg.strip_prefix(DUP_PREFIX) {
                let name = rest.split(" at line").next().unwrap_or(rest);
                Err(malformed(format!(
                    "the {what} has duplicate member {}",
                    clip(name)
                )))
            } else if msg.starts_with(NUL_MSG) {
                Err(malformed(format!("the {what} contains a NUL character")))
            } else {
                Err(malformed(format!("the {what} is not valid JSON")))
            }
        }
    }
}

const DUP_PREFIX: &str = "duplicate member ";
const NUL_MSG: &str = "string contains NUL";

/// A `serde_json::Value` that refuses duplicate keys and NUL characters.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

fn no_nul<E: de::Error>(s: &str) -> Result<(), E> {
    if s.contains('\0') {
        Err(E::custom(NUL_MSG))
    } else {
        Ok(())
    }
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        no_nul(v)?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        no_nul(&v)?;
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(Strict(x)) = seq.next_element()? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            no_nul(&k)?;
            if m.contains_key(&k) {
                return Err(de::Error::custom(format!("{DUP_PREFIX}\"{k}\"")));
            }
            let Strict(v) = map.next_value()?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

/// Reads an optional NumericDate claim (RFC 7519 §2: a JSON number).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(Rejection::BadClaim {
            claim: name.into(),
            expected: "a number of seconds since 1970",
        }),
        Some(_) => Err(Rejection::BadClaim {
            claim: name.into(),
            expected: "a number of seconds since 1970",
        }),
    }
}

/// A usable id: not empty, no control characters (the context setting
/// separates its parts with one).
fn is_id(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_control)
}

/// Reads an identifier claim that may be a string or an integer.
pub fn id_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, Rejection> {
    let bad = || Rejection::BadClaim {
        claim: name.into(),
        expected: "a non-empty string without control characters, or an integer",
    };
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if is_id(s) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(bad()),
    }
}

/// Splits a compact JWS into its three segments, checking the shape only.
fn split(token: &[u8]) -> Result<[&[u8]; 3], Rejection> {
    let mut parts = token.split(|&b| b == b'.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        // An empty signature is let through so that an unsigned token is
        // reported as `alg: none` rather than as a shape error; it can never
        // verify (HMAC output is never empty).
        (Some(h), Some(p), Some(s), None) if !h.is_empty() => Ok([h, p, s]),
        _ => Err(malformed(
            "expected a compact JWS: three base64url segments separated by two dots",
        )),
    }
}

/// Verifies `token` against the active keys and the deployment's rules at
/// time `now` (Unix seconds). Returns the established identity or why not.
pub fn verify(token: &[u8], keys: &[Key], rules: &Rules, now: f64) -> Result<Verified, Rejection> {
    // Size first: nothing is decoded or hashed for an oversized token.
    if token.len() > rules.max_bytes {
        return Err(Rejection::TooLarge {
            len: token.len(),
            max: rules.max_bytes,
        });
    }
    let [h64, p64, s64] = split(token)?;
    let header = parse_object(&b64(h64, "header")?, "header")?;

    let alg_name = match header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        Some(_) => return Err(malformed("the header's \"alg\" is not a string")),
        None => return Err(malformed("the header has no \"alg\"")),
    };
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(Rejection::AlgNone);
    }
    let token_alg =
        Alg::parse(alg_name).ok_or_else(|| Rejection::UnsupportedAlg(alg_name.into()))?;
    if header.contains_key("crit") {
        return Err(Rejection::Crit);
    }

    let key = pick_key(&header, keys, now)?;
    if key.alg != token_alg {
        return Err(Rejection::AlgMismatch {
            token: alg_name.into(),
            key: key.alg,
        });
    }
    let sig = b64(s64, "signature")?;
    let signing_input = &token[..h64.len() + 1 + p64.len()];
    if !key.alg.verify(&key.secret, signing_input, &sig) {
        return Err(Rejection::BadSignature);
    }

    // Authentic from here on; now check what it claims.
    let payload_bytes = b64(p64, "payload")?;
    let claims = parse_object(&payload_bytes, "payload")?;
    // parse_object accepted it, so it is UTF-8.
    let payload = String::from_utf8(payload_bytes).unwrap_or_default();
    check_times(&claims, rules, now)?;
    check_issuer_audience(&claims, rules)?;
    let tenant = id_claim(&claims, &rules.tenant_claim)?;
    let user = id_claim(&claims, "sub")?;
    let bypass = match claims.get("bypass") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => {
            return Err(Rejection::BadClaim {
                claim: "bypass".into(),
                expected: "true or false",
            })
        }
    };
    let set = tenant_set(&claims, &rules.tenants_claim)?;
    let tenants = if bypass {
        // Cross-tenant access must be short-lived, whatever require_exp says.
        let exp = numeric_date(&claims, "exp")?;
        let iat = numeric_date(&claims, "iat")?;
        let lifetime = exp.map(|e| e - iat.unwrap_or(now));
        if lifetime.is_none_or(|l| l > rules.max_bypass_lifetime) {
            return Err(Rejection::BypassTooLong {
                lifetime,
                max: rules.max_bypass_lifetime,
            });
        }
        Vec::new()
    } else {
        let Some(t) = &tenant else {
            return Err(Rejection::MissingTenant {
                claim: rules.tenant_claim.clone(),
            });
        };
        match set {
            None => vec![t.clone()],
            Some(set) if set.contains(t) => set,
            Some(_) => {
                return Err(Rejection::TenantNotInSet {
                    tenant: t.clone(),
                    claim: rules.tenants_claim.clone(),
                })
            }
        }
    };
    Ok(Verified {
        kid: key.kid.clone(),
        tenant,
        tenants,
        bypass,
        user,
        claims,
        payload,
    })
}

/// Reads the optional tenant-set claim: an array of tenant ids, deduplicated.
fn tenant_set(claims: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, Rejection> {
    let bad = || Rejection::BadClaim {
        claim: name.into(),
        expected: "an array of non-empty strings or integers",
    };
    let Some(v) = claims.get(name) else {
        return Ok(None);
    };
    let Value::Array(items) = v else {
        return Err(bad());
    };
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    // Duplicates dropped through a hash set: linear in the claim's size.
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for item in items {
        let id = match item {
            Value::String(s) if is_id(s) => s.clone(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            _ => return Err(bad()),
        };
        if seen.insert(id.clone()) {
            out.push(id);
        }
    }
    Ok(Some(out))
}

fn pick_key<'k>(
    header: &Map<String, Value>,
    keys: &'k [Key],
    now: f64,
) -> Result<&'k Key, Rejection> {
    match header.get("kid") {
        Some(Value::String(kid)) => keys
            .iter()
            .find(|k| &k.kid == kid && k.active_at(now))
            .ok_or_else(|| Rejection::UnknownKey(kid.clone())),
        Some(_) => Err(malformed("the header's \"kid\" is not a string")),
        None => {
            let mut active = keys.iter().filter(|k| k.active_at(now));
            match (active.next(), active.next()) {
                (Some(k), None) => Ok(k),
                (None, _) => Err(Rejection::NoKeys),
                (Some(_), Some(_)) => Err(Rejection::AmbiguousKey {
                    active: keys.iter().filter(|k| k.active_at(now)).count(),
                }),
            }
        }
    }
}

/// The time rules (`exp`, `nbf`, `iat`, lifetime) at `now`. Public so a
/// cached verification can be re-checked against the clock.
pub fn check_times(claims: &Map<String, Value>, rules: &Rules, now: f64) -> Result<(), Rejection> {
    let leeway = rules.leeway;
    let exp = numeric_date(claims, "exp")?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    match exp {
        Some(exp) if now > exp + leeway => return Err(Rejection::Expired { exp, now, leeway }),
        None if rules.require_exp || rules.max_lifetime.is_some() => {
            return Err(Rejection::MissingExp)
        }
        _ => {}
    }
    if let Some(nbf) = nbf {
        if nbf > now + leeway {
            return Err(Rejection::NotYetValid { nbf, now, leeway });
        }
    }
    if let Some(iat) = iat {
        if iat > now + leeway {
            return Err(Rejection::IssuedInFuture { iat, now, leeway });
        }
    }
    if let (Some(max), Some(exp)) = (rules.max_lifetime, exp) {
        let lifetime = exp - iat.unwrap_or(now);
        if lifetime > max {
            return Err(Rejection::LifetimeTooLong { lifetime, max });
        }
    }
    Ok(())
}

fn check_issuer_audience(claims: &Map<String, Value>, rules: &Rules) -> Result<(), Rejection> {
    if let Some(want) = &rules.issuer {
        match claims.get("iss") {
            Some(Value::String(got)) if got == want => {}
            Some(Value::String(got)) => {
                return Err(Rejection::WrongIssuer {
                    got: Some(got.clone()),
                })
            }
            Some(_) => {
                return Err(Rejection::BadClaim {
                    claim: "iss".into(),
                    expected: "a string",
                })
            }
            None => return Err(Rejection::WrongIssuer { got: None }),
        }
    }
    if let Some(want) = &rules.audience {
        // RFC 7519 §4.1.3: a string or an array of strings.
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => a == want,
            Some(Value::Array(items)) => {
                if items.iter().any(|v| !v.is_string()) {
                    return Err(Rejection::BadClaim {
                        claim: "aud".into(),
                        expected: "a string or an array of strings",
                    });
                }
                items.iter().any(|v| v.as_str() == Some(want))
            }
            Some(_) => {
                return Err(Rejection::BadClaim {
                    claim: "aud".into(),
                    expected: "a string or an array of strings",
                })
            }
            None => false,
        };
        if !ok {
            return Err(Rejection::WrongAudience);
        }
    }
    Ok(())
}

/// Mints a compact JWS over `claims` with `key`. The header names the key.
pub fn sign(claims: &Map<String, Value>, key: &Key) -> String {
    let header = serde_json::json!({"alg": key.alg.as_str(), "typ": "JWT", "kid": key.kid});
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string());
    let input = format!("{h}.{p}");
    let s = URL_SAFE_NO_PAD.encode(key.alg.mac(&key.secret, input.as_bytes()));
    format!("{input}.{s}")
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
