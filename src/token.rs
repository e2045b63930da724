//! Compact JWS (RFC 7515) / JWT (RFC 7519) verification (HMAC, RSA, ECDSA,
//! Ed25519), HMAC signing, JWK (RFC 7517) import and revocation checks.
//!
//! This module is pure Rust: it knows nothing of PostgreSQL, so every rule
//! below is unit-tested with plain `#[test]`s and fuzzed directly.
//!
//! Invariants, each a security decision:
//! * The size limit is checked before any decoding, so an attacker cannot make
//!   the server decode or hash megabytes per call.
//! * The algorithms are `HS256/384/512`, `RS256/384/512`, `PS256/384/512`,
//!   `ES256`, `ES384` and `EdDSA` (Ed25519). `alg: none` and unknown names
//!   are refused, and the header's `alg` must equal the one algorithm
//!   registered with the key: the token never chooses how it is checked, so
//!   an RSA public key can never be used as an HMAC secret (the classic
//!   "algorithm confusion" attack), nor an RS256 key for PS256.
//! * Public-key signatures are verified with `ring` (verification-only APIs):
//!   RSA moduli of 2048 to 8192 bits, ECDSA P-256/P-384 in the fixed-width
//!   JWS encoding (r || s, each exactly the curve's size), Ed25519 with the
//!   canonical-`S` check.
//! * The header's `jwk`, `jku`, `x5u`, `x5c` and `x5t` are never read: a key
//!   comes only from the key ring, never from the token it would verify.
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
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

/// The algorithms tenant_guard accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Hs256,
    Hs384,
    Hs512,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

/// The kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A shared secret (`oct`).
    Hmac,
    /// An RSA public key.
    Rsa,
    /// An EC public key on NIST P-256 or P-384.
    Ec,
    /// An Ed25519 public key (`OKP`).
    Okp,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Hmac => "hmac",
            KeyKind::Rsa => "rsa",
            KeyKind::Ec => "ec",
            KeyKind::Okp => "okp",
        }
    }
}

/// Every algorithm, in the order the messages list them.
pub const ALGS: [Alg; 12] = [
    Alg::Hs256,
    Alg::Hs384,
    Alg::Hs512,
    Alg::Rs256,
    Alg::Rs384,
    Alg::Rs512,
    Alg::Ps256,
    Alg::Ps384,
    Alg::Ps512,
    Alg::Es256,
    Alg::Es384,
    Alg::EdDsa,
];

/// Smallest and largest RSA modulus accepted, in bits.
pub const RSA_MIN_BITS: usize = 2048;
pub const RSA_MAX_BITS: usize = 8192;

impl Alg {
    /// Parses a JOSE algorithm name exactly as written (`HS256`, not `hs256`).
    pub fn parse(name: &str) -> Option<Alg> {
        ALGS.iter().copied().find(|a| a.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub fn kind(self) -> KeyKind {
        match self {
            Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => KeyKind::Hmac,
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                KeyKind::Rsa
            }
            Alg::Es256 | Alg::Es384 => KeyKind::Ec,
            Alg::EdDsa => KeyKind::Okp,
        }
    }

    /// RFC 7518 §3.2: "A key of the same size as the hash output ... or
    /// larger MUST be used with this algorithm." (0 for public-key
    /// algorithms, whose keys are checked by [`public_key_from_jwk`].)
    pub fn min_key_len(self) -> usize {
        match self {
            Alg::Hs256 => 32,
            Alg::Hs384 => 48,
            Alg::Hs512 => 64,
            _ => 0,
        }
    }

    /// The HMAC of `input`; empty for a public-key algorithm (a public key
    /// signs nothing, and an empty signature never verifies).
    fn mac(self, secret: &[u8], input: &[u8]) -> Vec<u8> {
        match self {
            Alg::Hs256 => mac_with::<Hmac<Sha256>>(secret, input),
            Alg::Hs384 => mac_with::<Hmac<Sha384>>(secret, input),
            Alg::Hs512 => mac_with::<Hmac<Sha512>>(secret, input),
            _ => Vec::new(),
        }
    }

    /// Whether `sig` is this algorithm's signature of `input` under `key`
    /// (an HMAC secret, or the public key as [`Key::secret`] describes).
    fn verify(self, key: &[u8], input: &[u8], sig: &[u8]) -> bool {
        use ring::signature as rs;
        let public: &'static dyn rs::VerificationAlgorithm = match self {
            Alg::Hs256 => return verify_with::<Hmac<Sha256>>(key, input, sig),
            Alg::Hs384 => return verify_with::<Hmac<Sha384>>(key, input, sig),
            Alg::Hs512 => return verify_with::<Hmac<Sha512>>(key, input, sig),
            Alg::Rs256 => &rs::RSA_PKCS1_2048_8192_SHA256,
            Alg::Rs384 => &rs::RSA_PKCS1_2048_8192_SHA384,
            Alg::Rs512 => &rs::RSA_PKCS1_2048_8192_SHA512,
            Alg::Ps256 => &rs::RSA_PSS_2048_8192_SHA256,
            Alg::Ps384 => &rs::RSA_PSS_2048_8192_SHA384,
            Alg::Ps512 => &rs::RSA_PSS_2048_8192_SHA512,
            Alg::Es256 => &rs::ECDSA_P256_SHA256_FIXED,
            Alg::Es384 => &rs::ECDSA_P384_SHA384_FIXED,
            Alg::EdDsa => &rs::ED25519,
        };
        rs::UnparsedPublicKey::new(public, key)
            .verify(input, sig)
            .is_ok()
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
    if alg.kind() != KeyKind::Hmac {
        return Err(format!(
            "{} is a public-key algorithm; its keys are imported with tenant_guard.add_jwks",
            alg.as_str()
        ));
    }
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
    /// The only algorithm this key verifies.
    pub alg: Alg,
    /// HMAC: the secret. RSA: the public key as a DER `RSAPublicKey`
    /// (PKCS#1). EC: the SEC1 uncompressed point (`04 || x || y`). Ed25519:
    /// the 32-byte public key.
    pub secret: Vec<u8>,
    /// Unix seconds after which the key verifies nothing; `None`: no expiry.
    pub expires_at: Option<f64>,
    /// The issuer whose rules apply to tokens this key verifies (keys
    /// imported with `add_jwks`); `None`: the deployment's settings.
    pub issuer: Option<Arc<Issuer>>,
}

/// One issuer's rules (`tenant_guard.issuers`). Unset members fall back to
/// the deployment's settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Issuer {
    /// The exact `iss` its tokens must carry.
    pub name: String,
    pub audience: Option<String>,
    pub leeway: Option<f64>,
    pub tenant_claim: Option<String>,
    pub tenants_claim: Option<String>,
    pub user_claim: Option<String>,
    /// A column of the tenant registry holding this issuer's organisation
    /// ids: the tenant claims name organisations, mapped to the registry's
    /// tenant ids by `set_context`.
    pub org_column: Option<String>,
}

impl fmt::Debug for Key {
    // Never print the secret, not even in a test failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("secret", &"<hidden>")
            .field("expires_at", &self.expires_at)
            .field("issuer", &self.issuer.as_ref().map(|i| &i.name))
            .finish()
    }
}

impl Key {
    /// Whether the key verifies anything at `now` (not expired).
    pub fn active_at(&self, now: f64) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }

    /// The rules for tokens this key verifies: the deployment's, with its
    /// issuer's (if any) in place of theirs. The issuer of an issuer's key
    /// is always required: a key never verifies another issuer's tokens.
    pub fn rules(&self, rules: &Rules) -> Rules {
        let Some(i) = &self.issuer else {
            return rules.clone();
        };
        Rules {
            issuer: Some(i.name.clone()),
            audience: i.audience.clone().or_else(|| rules.audience.clone()),
            leeway: i.leeway.unwrap_or(rules.leeway),
            tenant_claim: i
                .tenant_claim
                .clone()
                .unwrap_or_else(|| rules.tenant_claim.clone()),
            tenants_claim: i
                .tenants_claim
                .clone()
                .unwrap_or_else(|| rules.tenants_claim.clone()),
            user_claim: i
                .user_claim
                .clone()
                .unwrap_or_else(|| rules.user_claim.clone()),
            ..rules.clone()
        }
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
    /// Path of the claim naming the user (`user_id()`).
    pub user_claim: String,
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
            user_claim: "sub".into(),
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
    /// `issuer`: the audience in effect is the one `set_issuer` gave the
    /// key's issuer (`None`: `tenant_guard.audience`).
    WrongAudience {
        issuer: Option<String>,
    },
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
    /// A token verified by an issuer's key (`add_jwks`) claims bypass.
    BypassFromIssuer {
        issuer: String,
    },
    /// The token's issuer is not the one its key was imported for.
    WrongIssuerForKey {
        kid: String,
        want: String,
        got: Option<String>,
    },
    Revoked(String),
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
            WrongAudience { .. } => "token audience is not accepted",
            MissingTenant { .. } => "token has no tenant claim",
            TenantNotInSet { .. } => "token tenant is not in its tenant set",
            BypassTooLong { .. } => "bypass token lifetime is too long",
            BypassFromIssuer { .. } => "bypass tokens are not accepted from this issuer",
            WrongIssuerForKey { .. } => "token issuer does not match its key",
            Revoked(_) => "token has been revoked",
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
                "the header says alg \"{}\"; accepted: {}",
                clip(a),
                ALGS.map(Alg::as_str).join(", ")
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
            BadSignature => "the signature does not verify with the key named by the token".into(),
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
            WrongAudience { issuer: None } => {
                "aud does not contain the value of tenant_guard.audience".into()
            }
            WrongAudience { issuer: Some(i) } => format!(
                "aud does not contain the audience set for issuer \"{}\" (tenant_guard.set_issuer)",
                clip(i)
            ),
            MissingTenant { claim } => format!(
                "claim path \"{}\" (the tenant claim) is missing from the token",
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
            BypassFromIssuer { issuer } => format!(
                "the key that verified the token was imported for issuer \"{}\"; only keys added with add_key may verify bypass tokens",
                clip(issuer)
            ),
            WrongIssuerForKey { kid, want, got: Some(g) } => format!(
                "iss \"{}\" is not \"{}\", the issuer key \"{}\" was imported for",
                clip(g),
                clip(want),
                clip(kid)
            ),
            WrongIssuerForKey { kid, want, got: None } => format!(
                "the token has no iss; key \"{}\" verifies tokens of \"{}\" only",
                clip(kid),
                clip(want)
            ),
            Revoked(why) => why.clone(),
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

/// One JSON Pointer reference token, unescaped (`~1` is `/`, `~0` is `~`).
fn unescape_pointer(seg: &str) -> String {
    seg.replace("~1", "/").replace("~0", "~")
}

/// An array index of a JSON Pointer: digits, no leading zero.
fn array_index(seg: &str) -> Option<usize> {
    let ok = !seg.is_empty()
        && seg.bytes().all(|b| b.is_ascii_digit())
        && (seg == "0" || !seg.starts_with('0'));
    ok.then(|| seg.parse().ok()).flatten()
}

/// Reads an identifier claim (a [`claim_path`]) that may be a string or an
/// integer.
pub fn id_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, Rejection> {
    let bad = || Rejection::BadClaim {
        claim: name.into(),
        expected: "a non-empty string without control characters, or an integer",
    };
    let Some(found) = claim_path(claims, name) else {
        return Ok(None);
    };
    if found.through_array {
        // One id, not a list: a path through an array names no tenant.
        return Err(bad());
    }
    match found.values.as_slice() {
        [Value::String(s)] if is_id(s) => Ok(Some(s.clone())),
        [Value::Number(n)] if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        _ => Err(bad()),
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

    // Authentic from here on; now check what it claims, by the rules of
    // the key's issuer (if it was imported for one).
    let payload_bytes = b64(p64, "payload")?;
    let claims = parse_object(&payload_bytes, "payload")?;
    // parse_object accepted it, so it is UTF-8.
    let payload = String::from_utf8(payload_bytes).unwrap_or_default();
    let own_rules;
    let rules = match &key.issuer {
        None => rules,
        Some(issuer) => {
            let got = match claims.get("iss") {
                Some(Value::String(g)) => Some(g.as_str()),
                Some(_) => {
                    return Err(Rejection::BadClaim {
                        claim: "iss".into(),
                        expected: "a string",
                    })
                }
                None => None,
            };
            if got != Some(issuer.name.as_str()) {
                return Err(Rejection::WrongIssuerForKey {
                    kid: key.kid.clone(),
                    want: issuer.name.clone(),
                    got: got.map(str::to_owned),
                });
            }
            own_rules = key.rules(rules);
            &own_rules
        }
    };
    check_times(&claims, rules, now)?;
    check_issuer_audience(&claims, rules).map_err(|r| match (r, &key.issuer) {
        // The audience in effect came from the issuer's rules: say so.
        (Rejection::WrongAudience { .. }, Some(i)) if i.audience.is_some() => {
            Rejection::WrongAudience {
                issuer: Some(i.name.clone()),
            }
        }
        (r, _) => r,
    })?;
    let tenant = id_claim(&claims, &rules.tenant_claim)?;
    let user = id_claim(&claims, &rules.user_claim)?;
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
    if bypass {
        if let Some(issuer) = &key.issuer {
            // An identity provider's users may shape some of their claims
            // (profile metadata): cross-tenant access is never taken from
            // them.
            return Err(Rejection::BypassFromIssuer {
                issuer: issuer.name.clone(),
            });
        }
    }
    // A read set from an identity provider's token only through a claim its
    // issuer names (`set_issuer(…, tenants_claim)`), never through the
    // setting's default: its users may shape claims the provider does not
    // check (the same reason it never grants bypass).
    let set = match &key.issuer {
        Some(i) if i.tenants_claim.is_none() => None,
        _ => tenant_set(&claims, &rules.tenants_claim)?,
    };
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

/// What a claim path names: the values, and whether the path went through
/// an array.
pub struct Found<'c> {
    pub values: Vec<&'c Value>,
    pub through_array: bool,
}

/// The values a claim path names.
///
/// A path that starts with `/` is a JSON Pointer (RFC 6901). Any other path
/// is first looked up as one member name, so names with dots or
/// slashes work as written (`https://example.com/tenant_id`, Auth0's
/// namespaced claims); otherwise it is split on `.` and followed through
/// nested objects (`o.id`, Clerk's organisation). Walking into an array
/// applies the rest of the path to each element (`orgs.id` over
/// `{"orgs": [{"id": "a"}, {"id": "b"}]}` names `a` and `b`). `None`: the
/// path names nothing.
pub fn claim_path<'c>(claims: &'c Map<String, Value>, path: &str) -> Option<Found<'c>> {
    if let Some(pointer) = path.strip_prefix('/') {
        // An RFC 6901 JSON Pointer (`/https:~1~1example.com~1tenant_id`,
        // `/orgs/0/id`): exactly one value, never through an array's
        // elements all at once.
        let mut v = claims.get(&unescape_pointer(pointer.split('/').next()?))?;
        for seg in pointer.split('/').skip(1) {
            let seg = unescape_pointer(seg);
            v = match v {
                Value::Object(m) => m.get(&seg)?,
                Value::Array(items) => items.get(array_index(&seg)?)?,
                _ => return None,
            };
        }
        return Some(Found {
            values: vec![v],
            through_array: false,
        });
    }
    if let Some(v) = claims.get(path) {
        return Some(Found {
            values: vec![v],
            through_array: false,
        });
    }
    let mut segments = path.split('.');
    let first = segments.next()?;
    if !path.contains('.') {
        return None;
    }
    let mut current: Vec<&Value> = vec![claims.get(first)?];
    let mut through_array = false;
    for seg in segments {
        let mut next = Vec::with_capacity(current.len());
        for v in current {
            match v {
                Value::Object(m) => next.extend(m.get(seg)),
                Value::Array(items) => {
                    through_array = true;
                    next.extend(items.iter().filter_map(|i| i.as_object()?.get(seg)));
                }
                _ => {}
            }
        }
        current = next;
    }
    if current.is_empty() && !through_array {
        return None;
    }
    Some(Found {
        values: current,
        through_array,
    })
}

/// Reads the optional tenant-set claim: an array of tenant ids, deduplicated.
fn tenant_set(claims: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, Rejection> {
    let bad = || Rejection::BadClaim {
        claim: name.into(),
        expected: "an array of non-empty strings or integers",
    };
    let Some(found) = claim_path(claims, name) else {
        return Ok(None);
    };
    // A plain array, or the values collected through arrays of objects.
    let items: Vec<&Value> = if found.through_array {
        found.values
    } else {
        match found.values.as_slice() {
            [Value::Array(items)] => items.iter().collect(),
            _ => return Err(bad()),
        }
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
    check_times_at(&Times::of(claims)?, rules, now)
}

/// A token's `exp`, `nbf` and `iat` (Unix seconds), each if present.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Times {
    pub exp: Option<f64>,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
}

impl Times {
    /// Reads them from the claims; a present one must be a number (RFC 7519
    /// NumericDate).
    pub fn of(claims: &Map<String, Value>) -> Result<Times, Rejection> {
        Ok(Times {
            exp: numeric_date(claims, "exp")?,
            nbf: numeric_date(claims, "nbf")?,
            iat: numeric_date(claims, "iat")?,
        })
    }
}

/// [`check_times`] on times already read.
pub fn check_times_at(t: &Times, rules: &Rules, now: f64) -> Result<(), Rejection> {
    let leeway = rules.leeway;
    let Times { exp, nbf, iat } = *t;
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
            return Err(Rejection::WrongAudience { issuer: None });
        }
    }
    Ok(())
}

/// A public key read from a JWK (RFC 7517), ready for the key ring.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicKey {
    pub kid: String,
    pub alg: Alg,
    /// The key material as [`Key::secret`] describes it.
    pub material: Vec<u8>,
    /// Size in bits (RSA modulus, curve order, 256 for Ed25519).
    pub bits: usize,
}

/// Members of a JWK that only a private or secret key has (RFC 7518 §6.2.2,
/// §6.3.2, §6.4; RFC 8037 §2).
pub const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The result of reading one member of a key set.
#[derive(Debug, Clone, PartialEq)]
pub enum JwkOutcome {
    /// A signature-verification key.
    Key(PublicKey),
    /// A key for something else (`use` other than `sig`, or `key_ops`
    /// without `verify`): not imported. (kid, why)
    Skipped(String, String),
}

fn jwk_str<'a>(jwk: &'a Map<String, Value>, name: &str, kid: &str) -> Result<&'a str, String> {
    match jwk.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!(
            "key \"{}\": member \"{name}\" is not a string",
            clip(kid)
        )),
        None => Err(format!(
            "key \"{}\": member \"{name}\" is missing",
            clip(kid)
        )),
    }
}

fn jwk_b64(jwk: &Map<String, Value>, name: &str, kid: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(jwk_str(jwk, name, kid)?)
        .map_err(|_| {
            format!(
                "key \"{}\": member \"{name}\" is not valid unpadded base64url",
                clip(kid)
            )
        })
}

/// A DER INTEGER holding the unsigned big-endian `bytes` (no leading zeros).
fn der_uint(bytes: &[u8], out: &mut Vec<u8>) {
    let pad = bytes.first().is_some_and(|b| b & 0x80 != 0);
    der_tlv(
        0x02,
        &[if pad { &[0u8][..] } else { &[][..] }, bytes].concat(),
        out,
    );
}

fn der_tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = n.to_be_bytes();
        let skip = len.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (len.len() - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(content);
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().take_while(|x| **x == 0).count();
    &b[i..]
}

/// Reads one JWK. `default_rsa` is the algorithm an RSA key without `alg`
/// is registered for. Refuses private keys, unknown key types and curves,
/// RSA moduli outside 2048..8192 bits, EC points of the wrong size or not on
/// their curve, and an `alg` that does not fit the key.
pub fn public_key_from_jwk(
    jwk: &Map<String, Value>,
    default_rsa: Alg,
) -> Result<JwkOutcome, String> {
    let kid = match jwk.get("kid") {
        Some(Value::String(k)) if is_id(k) && k.len() <= 256 => k.clone(),
        Some(Value::String(_)) => {
            return Err(
                "a key's \"kid\" must be 1 to 256 characters without control characters".into(),
            )
        }
        Some(_) => return Err("a key's \"kid\" is not a string".into()),
        None => return Err("a key has no \"kid\" (keys are imported by kid)".into()),
    };
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(format!(
            "key \"{}\" has the private member \"{m}\": a key set for verification holds public keys only",
            clip(&kid)
        ));
    }
    match jwk.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(Value::String(u)) => {
            return Ok(JwkOutcome::Skipped(kid, format!("use \"{}\"", clip(u))))
        }
        Some(_) => return Err(format!("key \"{}\": \"use\" is not a string", clip(&kid))),
    }
    match jwk.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) if ops.iter().any(|o| o.as_str() == Some("verify")) => {}
        Some(Value::Array(_)) => {
            return Ok(JwkOutcome::Skipped(
                kid,
                "key_ops without \"verify\"".into(),
            ))
        }
        Some(_) => {
            return Err(format!(
                "key \"{}\": \"key_ops\" is not an array",
                clip(&kid)
            ))
        }
    }
    let kty = jwk_str(jwk, "kty", &kid)?;
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(a)) => Some(Alg::parse(a).ok_or_else(|| {
            format!(
                "key \"{}\": alg \"{}\" is not supported (accepted: {})",
                clip(&kid),
                clip(a),
                ALGS[3..]
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?),
        Some(_) => return Err(format!("key \"{}\": \"alg\" is not a string", clip(&kid))),
    };
    let mismatch = |a: Alg, what: &str| {
        format!(
            "key \"{}\": alg {} does not fit a {what} key",
            clip(&kid),
            a.as_str()
        )
    };
    let (alg, material, bits) = match kty {
        "RSA" => {
            let alg = alg.unwrap_or(default_rsa);
            if alg.kind() != KeyKind::Rsa {
                return Err(mismatch(alg, "RSA"));
            }
            let n = jwk_b64(jwk, "n", &kid)?;
            let e = jwk_b64(jwk, "e", &kid)?;
            let (n, e) = (strip_zeros(&n), strip_zeros(&e));
            // An empty (or all-zero) modulus has 0 bits: refused below.
            let bits = n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize);
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                return Err(format!(
                    "key \"{}\": the RSA modulus has {bits} bits; {RSA_MIN_BITS} to {RSA_MAX_BITS} are accepted",
                    clip(&kid)
                ));
            }
            if n.last().is_some_and(|b| b & 1 == 0) {
                return Err(format!("key \"{}\": the RSA modulus is even", clip(&kid)));
            }
            // ring's limits: an odd exponent from 3 to 2^33 - 1.
            let e_ok = !e.is_empty()
                && e.len() <= 5
                && e.last().is_some_and(|b| b & 1 == 1)
                && (e.len() > 1 || e[0] >= 3)
                && (e.len() < 5 || e[0] < 2);
            if !e_ok {
                return Err(format!(
                    "key \"{}\": the RSA exponent must be odd, at least 3 and below 2^33",
                    clip(&kid)
                ));
            }
            let mut body = Vec::with_capacity(n.len() + e.len() + 16);
            der_uint(n, &mut body);
            der_uint(e, &mut body);
            let mut der = Vec::with_capacity(body.len() + 8);
            der_tlv(0x30, &body, &mut der);
            (alg, der, bits)
        }
        "EC" => {
            let crv = jwk_str(jwk, "crv", &kid)?;
            let (curve_alg, size, agreement): (Alg, usize, &'static ring::agreement::Algorithm) =
                match crv {
                    "P-256" => (Alg::Es256, 32, &ring::agreement::ECDH_P256),
                    "P-384" => (Alg::Es384, 48, &ring::agreement::ECDH_P384),
                    other => {
                        return Err(format!(
                            "key \"{}\": curve \"{}\" is not supported (P-256 for ES256, P-384 for ES384)",
                            clip(&kid),
                            clip(other)
                        ))
                    }
                };
            let alg = alg.unwrap_or(curve_alg);
            if alg != curve_alg {
                return Err(mismatch(alg, crv));
            }
            let x = jwk_b64(jwk, "x", &kid)?;
            let y = jwk_b64(jwk, "y", &kid)?;
            if x.len() != size || y.len() != size {
                return Err(format!(
                    "key \"{}\": x and y of a {crv} key are {size} bytes each",
                    clip(&kid)
                ));
            }
            let point = [&[4u8][..], &x, &y].concat();
            if !ec_point_valid(agreement, &point) {
                return Err(format!(
                    "key \"{}\": the point is not on curve {crv}",
                    clip(&kid)
                ));
            }
            (alg, point, size * 8)
        }
        "OKP" => {
            let crv = jwk_str(jwk, "crv", &kid)?;
            if crv != "Ed25519" {
                return Err(format!(
                    "key \"{}\": OKP curve \"{}\" is not supported (Ed25519 for EdDSA)",
                    clip(&kid),
                    clip(crv)
                ));
            }
            let alg = alg.unwrap_or(Alg::EdDsa);
            if alg != Alg::EdDsa {
                return Err(mismatch(alg, crv));
            }
            let x = jwk_b64(jwk, "x", &kid)?;
            if x.len() != 32 {
                return Err(format!(
                    "key \"{}\": x of an Ed25519 key is 32 bytes",
                    clip(&kid)
                ));
            }
            (alg, x, 256)
        }
        "oct" => {
            return Err(format!(
                "key \"{}\" is a symmetric key (kty \"oct\"): add shared secrets with tenant_guard.add_key",
                clip(&kid)
            ))
        }
        other => {
            return Err(format!(
                "key \"{}\": key type \"{}\" is not supported (RSA, EC, OKP)",
                clip(&kid),
                clip(other)
            ))
        }
    };
    Ok(JwkOutcome::Key(PublicKey {
        kid,
        alg,
        material,
        bits,
    }))
}

/// Whether `point` (SEC1 uncompressed) is a valid public key on the curve:
/// ring checks a peer's point fully before an ECDH agreement, so one with a
/// throwaway key tells.
fn ec_point_valid(alg: &'static ring::agreement::Algorithm, point: &[u8]) -> bool {
    let rng = ring::rand::SystemRandom::new();
    let Ok(mine) = ring::agreement::EphemeralPrivateKey::generate(alg, &rng) else {
        return false;
    };
    let peer = ring::agreement::UnparsedPublicKey::new(alg, point);
    ring::agreement::agree_ephemeral(mine, &peer, |_| ()).is_ok()
}

/// Reads a key set (RFC 7517 §5: `{"keys": [...]}`). Any key that cannot be
/// imported refuses the whole set (nothing is half-imported); keys for
/// other uses are skipped. Kids must be distinct.
pub fn parse_jwks(doc: &Value, default_rsa: Alg) -> Result<Vec<JwkOutcome>, String> {
    if default_rsa.kind() != KeyKind::Rsa {
        return Err(format!(
            "the default algorithm for RSA keys must be RS256/384/512 or PS256/384/512, not {}",
            default_rsa.as_str()
        ));
    }
    let Some(Value::Array(keys)) = doc.as_object().and_then(|o| o.get("keys")) else {
        return Err("a key set is a JSON object with a \"keys\" array (RFC 7517 section 5)".into());
    };
    if keys.len() > 1000 {
        return Err(format!(
            "the key set has {} keys; at most 1000 are accepted",
            keys.len()
        ));
    }
    let mut out = Vec::with_capacity(keys.len());
    let mut seen = HashSet::new();
    for (i, k) in keys.iter().enumerate() {
        let Value::Object(jwk) = k else {
            return Err(format!("keys[{i}] is not a JSON object"));
        };
        let outcome = public_key_from_jwk(jwk, default_rsa)?;
        let kid = match &outcome {
            JwkOutcome::Key(k) => &k.kid,
            JwkOutcome::Skipped(kid, _) => kid,
        };
        if !seen.insert(kid.clone()) {
            return Err(format!(
                "kid \"{}\" appears twice in the key set",
                clip(kid)
            ));
        }
        out.push(outcome);
    }
    Ok(out)
}

/// [`parse_jwks`] on JSON text, parsed strictly (duplicate members refused).
pub fn parse_jwks_bytes(bytes: &[u8], default_rsa: Alg) -> Result<Vec<JwkOutcome>, String> {
    let doc = parse_object(bytes, "key set").map_err(|r| r.detail())?;
    parse_jwks(&Value::Object(doc), default_rsa)
}

/// Revoked tokens, subjects and tenants (`tenant_guard.revocations`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Revocations {
    /// `jti` values.
    pub tokens: HashSet<String>,
    /// `sub` → tokens issued before this time (Unix seconds) are revoked.
    pub subjects: HashMap<String, f64>,
    /// tenant id → likewise, for tokens naming the tenant.
    pub tenants: HashMap<String, f64>,
}

impl Revocations {
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.subjects.is_empty() && self.tenants.is_empty()
    }

    /// Why a token with these claims, reading `tenants`, is revoked (`None`:
    /// it is not). A token without `iat` counts as issued before any time.
    /// A revoked subject is matched against the `sub` claim and against
    /// `user`, the token's user as `tenant_guard.user_claim` names it (what
    /// `tenant_guard.user_id()` reports), when that is another claim.
    pub fn check<'t>(
        &self,
        claims: &Map<String, Value>,
        user: Option<&str>,
        tenants: impl IntoIterator<Item = &'t str>,
    ) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        // A `jti` that is a number is named by its decimal text, as `sub`.
        let jti = match claims.get("jti") {
            Some(Value::String(s)) => Some(std::borrow::Cow::Borrowed(s.as_str())),
            Some(Value::Number(n)) => Some(std::borrow::Cow::Owned(n.to_string())),
            _ => None,
        };
        if let Some(jti) = jti {
            if self.tokens.contains(jti.as_ref()) {
                return Some(format!("jti \"{}\" has been revoked", clip(&jti)));
            }
        }
        let iat = claims.get("iat").and_then(Value::as_f64);
        let before = |cut: f64| iat.is_none_or(|i| i < cut);
        let sub = claims.get("sub").and_then(|s| match s {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        for sub in sub.into_iter().chain(user.map(str::to_owned)) {
            if let Some(cut) = self.subjects.get(&sub) {
                if before(*cut) {
                    return Some(format!(
                        "tokens of subject \"{}\" issued before {} have been revoked",
                        clip(&sub),
                        utc(*cut)
                    ));
                }
            }
        }
        for t in tenants {
            if let Some(cut) = self.tenants.get(t) {
                if before(*cut) {
                    return Some(format!(
                        "tokens for tenant \"{}\" issued before {} have been revoked",
                        clip(t),
                        utc(*cut)
                    ));
                }
            }
        }
        None
    }
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
