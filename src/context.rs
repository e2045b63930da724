//! `set_context` and the context accessors: thin SQL wrappers over `token`.
//!
//! The context is one `PGC_SUSET` setting, `tenant_guard.context` (see
//! `gucs`), holding the tenant, a small JSON "scope" (key, user, read set,
//! bypass flag) and the claims, separated by U+001F (which no tenant id and
//! no JSON text can contain: the verifier refuses control characters in ids,
//! and JSON escapes them). One setting, so `set_context` costs one
//! `set_config_option`. `set_context` writes it after a token verifies, with `GUC_ACTION_LOCAL` (like
//! `SET LOCAL`, gone at the end of the transaction: a transaction pooler
//! cannot hand it to the next client) or `GUC_ACTION_SET` (session). Being
//! settings, they revert with a rolled-back transaction or savepoint, are
//! cleared by `RESET ALL` / `DISCARD ALL`, and are copied to parallel workers.
//!
//! A context holds only while what it was verified with holds: its key
//! active and unexpired, its token unexpired (`exp` + leeway), its tenants
//! active in the registry. The setting carries nothing for that; the facts
//! (kid, `exp`, tenants) are read from its value (or kept by `set_context`)
//! and checked again once per statement, never per row: see [`context_valid`].
//! A context that no longer holds reads nothing and writes nothing, the
//! accessors return NULL, and one WARNING says why.

use crate::error::{log_line, rejected, Code, Failure};
use crate::gucs;
use crate::keys;
use crate::metrics::clip_claim;
use crate::registry;
use crate::token::{self, Rejection, Rules, Verified};
use pgrx::prelude::*;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::rc::Rc;

const SEP: char = '\u{1f}';

/// What the mark of a packed value says: which reader needs the scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The context reads exactly its tenant (the common case, which the
    /// policies then serve without parsing anything): an empty mark.
    Simple,
    /// The scope holds a read set: `s`.
    Scoped,
    /// A bypass context: `b`. Read by the setting's assign hook, which must
    /// tell at every change whether to leave the bypass role and should not
    /// parse JSON for it. Only `set_context` (and a superuser) writes the
    /// setting; a mark that disagrees with the scope fails closed, because
    /// every query as the bypass role checks the parsed scope
    /// (`bypass_holds`).
    Bypass,
}

/// Packs the context into the setting's value:
/// `tenant SEP mark SEP scope SEP claims` (see [`Mark`]).
pub fn pack(tenant: &str, scope: &str, claims: &str, mark: Mark) -> String {
    let mut s = String::with_capacity(tenant.len() + scope.len() + claims.len() + 4);
    s.push_str(tenant);
    s.push(SEP);
    match mark {
        Mark::Simple => {}
        Mark::Scoped => s.push('s'),
        Mark::Bypass => s.push('b'),
    }
    s.push(SEP);
    s.push_str(scope);
    s.push(SEP);
    s.push_str(claims);
    s
}

/// `(tenant, scope JSON, claims JSON)` of a packed value (empty parts when
/// there is no context).
pub fn unpack(v: &str) -> (&str, &str, &str) {
    let mut it = v.splitn(4, SEP);
    let tenant = it.next().unwrap_or("");
    let _mark = it.next();
    (tenant, it.next().unwrap_or(""), it.next().unwrap_or(""))
}

/// The tenant of a packed value, when that tenant is all the context reads
/// (the fast path of the policies): bytes before the first separator,
/// followed by an empty mark.
pub fn simple_tenant(v: &[u8]) -> Option<&[u8]> {
    let sep = SEP as u8;
    let i = v.iter().position(|&b| b == sep)?;
    (i > 0 && v.get(i + 1) == Some(&sep)).then(|| &v[..i])
}

/// What the scope part holds.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
struct Scope {
    kid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    /// The tenants readable, when that is more than the tenant itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    read: Option<Vec<String>>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    bypass: bool,
    /// A context made by `tenant_guard.as_tenant` (no token): the role that
    /// made it. Only trusted when this backend made that exact value (see
    /// [`AS_MADE`]): written by hand, it fails closed.
    #[serde(rename = "as", skip_serializing_if = "Option::is_none", default)]
    made_by: Option<String>,
}

/// Verified tokens, so a token presented again (a JWT usually serves many
/// requests) costs a hash look-up instead of base64, JSON and HMAC work.
///
/// Safe because: the entry is keyed by the whole token text; the cache is
/// emptied whenever the key ring is reloaded (any change to keys or registry
/// settings, see `keys`) or a verification setting differs; and every hit
/// re-checks what depends on the clock (`exp`, `nbf`, `iat`, key expiry).
///
/// Bounded by `tenant_guard.token_cache_bytes` (what the entries hold, see
/// [`footprint`]) and by [`VERIFY_CACHE_SIZE`] entries, whichever is hit
/// first, with least-recently-used eviction ([`Lru`]).
struct VerifyCache {
    generation: u64,
    rules: Option<Rc<Rules>>,
    map: Lru<Rc<Cached>>,
}

/// The token cache's hasher: a key's length and its last 32 bytes, mixed.
/// Only verified tokens are cached, and a verified token ends with its
/// signature, which nobody can choose without the key: the entries spread
/// like random keys. (SipHash over the whole token, the default, cost about
/// 1,000 instructions per look-up of a 170-byte token in callgrind.) A
/// token made to end like a cached one costs one more comparison of the two
/// at its look-up, and is never inserted unless it verifies.
#[derive(Default)]
struct TailHasher(u64);

impl std::hash::Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut h = (self.0 ^ bytes.len() as u64).wrapping_mul(K);
        for chunk in bytes[bytes.len().saturating_sub(32)..].chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = (h.rotate_left(23) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        // MurmurHash3's finaliser: every input bit reaches the top bits
        // (hashbrown's tags) and the low bits (its bucket index).
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

type TokenMap<V> = HashMap<String, (V, usize), std::hash::BuildHasherDefault<TailHasher>>;

/// A cache bounded in bytes and entries with approximate LRU eviction, in
/// two generations: entries go into `young`; when `young` holds half the
/// budget (bytes or entries), `old` is dropped and `young` becomes `old`. A
/// hit in `old` moves the entry back to `young`. So the cache never holds
/// more than the budget, every entry used within the last half-budget of
/// insertions stays, and every operation is O(1). The entry last found is
/// found again without hashing its key (a connection presenting the same
/// token at every transaction).
struct Lru<V> {
    young: TokenMap<V>,
    old: TokenMap<V>,
    young_bytes: usize,
    old_bytes: usize,
    max_bytes: usize,
    max_entries: usize,
    /// The last hit, while it is in `young`: dropped by every change but
    /// a hit in `young`. Its key is in `last_key` (a buffer kept and
    /// reused, so remembering a hit allocates nothing).
    last: Option<V>,
    last_key: String,
}

impl<V: Clone> Lru<V> {
    fn new(max_bytes: usize, max_entries: usize) -> Self {
        Lru {
            young: TokenMap::default(),
            old: TokenMap::default(),
            young_bytes: 0,
            old_bytes: 0,
            max_bytes,
            max_entries,
            last: None,
            last_key: String::new(),
        }
    }

    fn clear(&mut self) {
        self.last = None;
        self.young = TokenMap::default();
        self.old = TokenMap::default();
        self.young_bytes = 0;
        self.old_bytes = 0;
    }

    /// Changes the budget; a smaller one empties the cache.
    fn set_limits(&mut self, max_bytes: usize, max_entries: usize) {
        if max_bytes < self.max_bytes || max_entries < self.max_entries {
            self.clear();
        }
        self.max_bytes = max_bytes;
        self.max_entries = max_entries;
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.young_bytes + self.old_bytes
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    fn get(&mut self, key: &str) -> Option<V> {
        if let Some(v) = &self.last {
            if self.last_key == key {
                return Some(v.clone());
            }
        }
        if let Some((v, _)) = self.young.get(key) {
            let v = v.clone();
            self.last_key.clear();
            self.last_key.push_str(key);
            self.last = Some(v.clone());
            return Some(v);
        }
        let (key, (v, size)) = self.old.remove_entry(key)?;
        self.old_bytes -= size;
        let out = v.clone();
        self.put(key, v, size);
        Some(out)
    }

    /// Caches `v` under `key`, counted as `size` bytes. An entry bigger
    /// than half the budget is not cached.
    fn insert(&mut self, key: String, v: V, size: usize) {
        self.last = None;
        if let Some((_, s)) = self.young.remove(&key) {
            self.young_bytes -= s;
        }
        if let Some((_, s)) = self.old.remove(&key) {
            self.old_bytes -= s;
        }
        self.put(key, v, size);
    }

    fn put(&mut self, key: String, v: V, size: usize) {
        let (half_bytes, half_entries) = (self.max_bytes / 2, self.max_entries / 2);
        if self.max_bytes == 0 || size > half_bytes || half_entries == 0 {
            return;
        }
        if self.young_bytes + size > half_bytes || self.young.len() + 1 > half_entries {
            self.last = None;
            self.old = std::mem::take(&mut self.young);
            self.old_bytes = std::mem::replace(&mut self.young_bytes, 0);
        }
        self.young_bytes += size;
        self.young.insert(key, (v, size));
    }
}

/// What a cache entry holds, in bytes (an estimate that errs high): the
/// token (the key), the claims as text and parsed (a JSON map takes about
/// twice its text), the setting value, the tenant ids, and the overhead of
/// the entry and its allocations.
fn footprint(token: &str, c: &Cached) -> usize {
    const OVERHEAD: usize = 512;
    token.len()
        + 3 * c.v.payload.len()
        + c.packed.len()
        + c.v.tenants.iter().map(|t| t.len() + 32).sum::<usize>()
        + c.facts.tenants.iter().map(|t| t.len() + 32).sum::<usize>()
        + c.v.kid.len()
        + c.v.user.as_ref().map_or(0, String::len)
        + OVERHEAD
}

/// A verified token and what each use of it needs, computed once when it
/// is verified (a cache hit then does no parsing and few allocations).
struct Cached {
    v: Verified,
    packed: String,
    /// `packed` as a C string for the setting (`None`: it holds a NUL,
    /// which the parser never lets through).
    packed_c: Option<CString>,
    /// What the per-statement validity check compares with.
    facts: Rc<Facts>,
    /// The rules of the issuer whose key verified it (its leeway), if the
    /// key has an issuer. Valid as long as the entry: the cache is emptied
    /// when the key ring or the settings change.
    issuer_rules: Option<Rules>,
    /// `exp`, `nbf` and `iat`, read once (a hit re-checks them against the
    /// clock).
    times: token::Times,
}

impl Cached {
    fn new(v: Verified, packed: String, ring: &keys::Ring, issuer_rules: Option<Rules>) -> Cached {
        let issuer = ring
            .keys
            .iter()
            .find(|k| k.kid == v.kid)
            .and_then(|k| k.issuer.clone());
        let facts = Rc::new(facts_of_verified(&v, issuer));
        // Verified: its times were read once already, without error.
        let times = token::Times::of(&v.claims).unwrap_or_default();
        let packed_c = CString::new(packed.as_str()).ok();
        Cached {
            v,
            packed,
            packed_c,
            facts,
            issuer_rules,
            times,
        }
    }
}

fn scope_of(v: &Verified, visible: &[String]) -> Scope {
    let tenant = v.tenant.as_deref().unwrap_or("");
    Scope {
        kid: v.kid.clone(),
        user: v.user.clone(),
        // The read set is only stored when it says more than the tenant. A
        // bypass token stores none: it reads the registry's tenants as they
        // are at each statement (see `bypass_set`).
        read: (!v.bypass && (visible.len() != 1 || visible[0] != tenant)).then(|| visible.to_vec()),
        bypass: v.bypass,
        made_by: None,
    }
}

fn packed_value(v: &Verified, visible: &[String]) -> String {
    let scope = scope_of(v, visible);
    let mark = if scope.bypass {
        Mark::Bypass
    } else if scope.read.is_some() {
        Mark::Scoped
    } else {
        Mark::Simple
    };
    // A struct of strings, string lists and a flag always serializes
    // (serde_json fails only for maps with non-string keys or a failing
    // Serialize impl). Kept free of the server's error path so the unit
    // tests that pack values link without PostgreSQL.
    #[allow(clippy::expect_used)]
    let scope = serde_json::to_string(&scope).expect("a context scope always serializes");
    pack(v.tenant.as_deref().unwrap_or(""), &scope, &v.payload, mark)
}

/// Most entries the verified-token cache holds, whatever their size.
const VERIFY_CACHE_SIZE: usize = 4096;

thread_local! {
    static VERIFIED: RefCell<VerifyCache> = RefCell::new(VerifyCache {
        generation: 0,
        rules: None,
        map: Lru::new(gucs::TOKEN_CACHE_BYTES_DEFAULT as usize, VERIFY_CACHE_SIZE),
    });
}

fn cache_budget() -> usize {
    usize::try_from(gucs::TOKEN_CACHE_BYTES.get()).unwrap_or(0)
}

fn verify_cached(
    token: &str,
    ring: &keys::Ring,
    rules: &Rc<Rules>,
    now: f64,
) -> Result<Rc<Cached>, Rejection> {
    let hit = VERIFIED.with(|c| {
        let mut c = c.borrow_mut();
        let same_rules = c
            .rules
            .as_ref()
            .is_some_and(|r| Rc::ptr_eq(r, rules) || **r == **rules);
        if c.generation != ring.generation || !same_rules {
            c.map.clear();
            c.generation = ring.generation;
            c.rules = Some(rules.clone());
        }
        c.map.set_limits(cache_budget(), VERIFY_CACHE_SIZE);
        c.map.get(token)
    });
    if let Some(c) = hit {
        let active = ring
            .keys
            .iter()
            .any(|k| k.kid == c.v.kid && k.active_at(now));
        // An issuer's key: its leeway (kept in the entry).
        let rules = c.issuer_rules.as_ref().unwrap_or(rules);
        if active && token::check_times_at(&c.times, rules, now).is_ok() {
            crate::stats::bump(crate::metrics::Counter::TokenCacheHits);
            return Ok(c);
        }
        // Expired or retired since: verify again, which says exactly why it fails.
    }
    let v = token::verify(token.as_bytes(), &ring.keys, rules, now)?;
    crate::stats::bump(crate::metrics::Counter::TokensVerified);
    let packed = packed_value(&v, &v.tenants);
    let issuer_rules = ring
        .keys
        .iter()
        .find(|k| k.kid == v.kid && k.issuer.is_some())
        .map(|k| k.rules(rules));
    let v = Rc::new(Cached::new(v, packed, ring, issuer_rules));
    let size = footprint(token, &v);
    VERIFIED.with(|c| c.borrow_mut().map.insert(token.to_owned(), v.clone(), size));
    Ok(v)
}

/// What a context value was verified with, checked again at every statement.
#[derive(Debug, Clone, PartialEq, Default)]
struct Facts {
    kid: String,
    /// The token's `exp` (Unix seconds), if it had one.
    exp: Option<f64>,
    /// The tenants that must stay active in the registry: the tenant and the
    /// read set of a multi-tenant token. (A bypass token's read set is every
    /// active tenant when it was set; only its own tenant is re-checked.)
    tenants: Vec<String>,
    /// What revocations name: `jti`, `sub` and `iat` of the token.
    revocable: serde_json::Map<String, serde_json::Value>,
    /// The rules of the key's issuer it was verified under (`Some(None)`:
    /// a key without an issuer); `None`: not known (a value this backend
    /// did not set), not compared.
    issuer: Option<Option<std::sync::Arc<token::Issuer>>>,
    /// The value says `tenant_guard.as_tenant` made it (no key, no token).
    as_claimed: bool,
    /// This backend's `as_tenant` made it, called by this role: then no key
    /// or expiry applies (the registry still does). `None` with
    /// `as_claimed`: a value written by hand, which fails closed.
    made_by: Option<String>,
    /// A bypass context.
    bypass: bool,
}

/// The claims a revocation can name (`jti`, `sub`, `iat`), copied out.
fn revocable(
    claims: &serde_json::Map<String, serde_json::Value>,
    user: Option<&str>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m: serde_json::Map<String, serde_json::Value> = ["jti", "sub", "iat"]
        .iter()
        .filter_map(|k| claims.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    if let Some(u) = user {
        m.insert(REVOCABLE_USER.to_owned(), u.into());
    }
    m
}

/// The key under which [`revocable`] keeps the token's user (as
/// `tenant_guard.user_claim` names it; not a claim name a token can use
/// here, since only `jti`, `sub` and `iat` are copied from the claims).
const REVOCABLE_USER: &str = "\u{0}user";

/// The user [`revocable`] kept.
fn revocable_user(m: &serde_json::Map<String, serde_json::Value>) -> Option<&str> {
    m.get(REVOCABLE_USER).and_then(serde_json::Value::as_str)
}

/// `first` (if any) then `rest`, each once, in order (a hash set, so a read
/// set of thousands of tenants costs linear time).
fn distinct_tenants<'a>(
    first: Option<&'a str>,
    rest: impl Iterator<Item = &'a str>,
) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    first
        .into_iter()
        .chain(rest)
        .filter(|t| seen.insert(*t))
        .map(str::to_owned)
        .collect()
}

fn facts_of_verified(v: &Verified, issuer: Option<std::sync::Arc<token::Issuer>>) -> Facts {
    let rest = v.tenants.iter().filter(|_| !v.bypass).map(String::as_str);
    let tenants = distinct_tenants(v.tenant.as_deref(), rest);
    Facts {
        kid: v.kid.clone(),
        exp: v.claims.get("exp").and_then(serde_json::Value::as_f64),
        tenants,
        revocable: revocable(&v.claims, v.user.as_deref()),
        issuer: Some(issuer),
        as_claimed: false,
        made_by: None,
        bypass: v.bypass,
    }
}

/// The facts of a packed value (a value this backend did not set itself: a
/// parallel worker's copy, or one restored by a rollback). A value that does
/// not parse yields no kid, which no key has: it fails closed.
fn facts_of(value: &str) -> Facts {
    let (tenant, scope, claims) = unpack(value);
    // Meant: an unparsable scope has no kid, which fails closed (above).
    let scope: Scope = serde_json::from_str(scope).unwrap_or_default();
    let claims = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(claims)
        .unwrap_or_default();
    let exp = claims.get("exp").and_then(serde_json::Value::as_f64);
    // No read set (meant): the context reads its tenant only.
    let read = if scope.bypass {
        Vec::new()
    } else {
        scope.read.clone().unwrap_or_default()
    };
    let tenants = distinct_tenants(
        Some(tenant).filter(|t| !t.is_empty()),
        read.iter().map(String::as_str),
    );
    Facts {
        kid: scope.kid,
        exp,
        tenants,
        revocable: revocable(&claims, scope.user.as_deref()),
        issuer: None,
        // Whoever the value names, it is not trusted from the value: see
        // `facts_of_value`.
        as_claimed: scope.made_by.is_some(),
        made_by: None,
        bypass: scope.bypass,
    }
}

thread_local! {
    /// The context values this backend's `as_tenant` made, with the role
    /// that made each (the most recent [`AS_MADE_KEPT`]). A value is
    /// recognised again after PostgreSQL restored it (a rollback to a
    /// savepoint, the end of a transaction-local context over a session
    /// one); a value with the `as_tenant` mark that is not here was written
    /// by hand (by a superuser, or a role granted SET on the setting), and
    /// fails closed. A parallel worker has no such record: there it fails
    /// closed too, which is why `as_tenant` turns parallel query off.
    static AS_MADE: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// How many `as_tenant` values a backend recognises.
const AS_MADE_KEPT: usize = 64;

/// [`facts_of`], with the `as_tenant` mark trusted only for a value this
/// backend made.
fn facts_of_value(value: &str) -> Facts {
    let mut f = facts_of(value);
    if f.as_claimed {
        f.made_by = AS_MADE.with(|m| {
            m.borrow()
                .iter()
                .rev()
                .find(|(v, _)| v == value)
                .map(|(_, by)| by.clone())
        });
    }
    f
}

/// Why a context verified with `f` no longer holds at `now` (the start of
/// the statement), as far as the key ring and the clock tell: `keys` are the
/// unretired keys. `None`: it still holds.
fn lapsed(f: &Facts, keys: &[token::Key], now: f64, leeway: f64) -> Option<String> {
    if f.as_claimed {
        // No key, no token: it holds while the registry admits its tenants
        // (checked by the caller), if this backend's as_tenant made it.
        return match f.made_by {
            Some(_) => None,
            None => Some(
                "the value says tenant_guard.as_tenant made it, and this session's as_tenant did not (it was written by hand)".into(),
            ),
        };
    }
    // Only for the messages (clipping costs as much as the checks).
    let kid = || token::clip(&f.kid);
    let Some(key) = keys.iter().find(|k| k.kid == f.kid) else {
        return Some(format!("key \"{}\" has been retired", kid()));
    };
    if let Some(was) = &f.issuer {
        if *was != key.issuer {
            // set_issuer changed the audience, the claim paths, the leeway
            // or the organisation mapping it was verified under.
            let name = key
                .issuer
                .as_ref()
                .or(was.as_ref())
                .map_or("", |i| i.name.as_str());
            return Some(format!(
                "the rules of issuer \"{}\" changed since it was verified",
                token::clip(name)
            ));
        }
    }
    let leeway = key.issuer.as_ref().and_then(|i| i.leeway).unwrap_or(leeway);
    if !key.active_at(now) {
        // Inactive but not retired means expired: expires_at is set (the
        // default only shapes the message).
        let at = key.expires_at.map(token::utc).unwrap_or_default();
        return Some(format!("key \"{}\" expired at {at}", kid()));
    }
    match f.exp {
        // The verifier's rule (token::check_times): expired once now > exp + leeway.
        Some(exp) if now > exp + leeway => {
            Some(format!("the token expired at {}", token::utc(exp)))
        }
        _ => None,
    }
}

/// PostgreSQL's `TimestampTz` (microseconds since 2000-01-01) as Unix seconds.
fn unix_seconds(ts: i64) -> f64 {
    ts as f64 / 1_000_000.0 + 946_684_800.0
}

/// Identifies a transaction: the backend's local transaction id (a new one
/// for every transaction, also several in one simple-protocol message, which
/// share their timestamps) and its start (`now()`).
pub type Transaction = (u32, i64);

/// Identifies a statement: its transaction and its start
/// (`statement_timestamp()`).
type Statement = (Transaction, i64);

/// This backend's local transaction id.
fn local_transaction_id() -> u32 {
    // SAFETY: MyProc is this backend's PGPROC (NULL only before it has one);
    // a plain read of one of its fields.
    unsafe {
        let p = pg_sys::MyProc;
        if p.is_null() {
            return 0;
        }
        #[cfg(feature = "pg18")]
        {
            (*p).vxid.lxid
        }
        #[cfg(not(feature = "pg18"))]
        {
            (*p).lxid
        }
    }
}

/// The running transaction's identity (see [`Transaction`]).
pub fn this_transaction() -> Transaction {
    this_statement().0
}

mod plain {
    // Two reads of backend fields that never raise: called without the
    // guard pgrx wraps around `pg_sys` functions (they run several times
    // per statement).
    unsafe extern "C-unwind" {
        pub fn GetCurrentTransactionStartTimestamp() -> pgrx::pg_sys::TimestampTz;
        pub fn GetCurrentStatementStartTimestamp() -> pgrx::pg_sys::TimestampTz;
    }
}

fn this_statement() -> Statement {
    // SAFETY: no arguments; both return a backend-local timestamp by value
    // and only need a transaction, which every SQL function call runs in.
    // Neither can raise an error.
    let (xact, stmt) = unsafe {
        (
            plain::GetCurrentTransactionStartTimestamp(),
            plain::GetCurrentStatementStartTimestamp(),
        )
    };
    ((local_transaction_id(), xact), stmt)
}

/// Whether the registry must be asked again about a value set by
/// `set_context` in `set` (if this backend set it), at statement `now`:
/// not in the statement that set it, nor for a transaction-local context
/// within the transaction that set it (it ends there); otherwise once per
/// statement.
fn registry_due(set: Option<(Statement, bool)>, now: Statement) -> bool {
    match set {
        Some((at, _)) if at == now => false,
        Some((at, true)) if at.0 == now.0 => false,
        _ => true,
    }
}

/// The verdict on the current context value, kept per backend.
struct Checked {
    /// `gucs::context_epoch()` of the value judged.
    epoch: u64,
    facts: Option<Rc<Facts>>,
    /// Set by this backend's `set_context`: where, and whether local.
    set: Option<(Statement, bool)>,
    /// The statement and key ring generation of the verdict.
    at: (Statement, u64),
    valid: bool,
    warned: bool,
    /// A registry look-up is running (its policies may call back in).
    checking: bool,
}

thread_local! {
    static CHECKED: RefCell<Checked> = const { RefCell::new(Checked {
        epoch: u64::MAX,
        facts: None,
        set: None,
        at: (((0, 0), 0), 0),
        valid: false,
        warned: false,
        checking: false,
    }) };
}

/// Records what `set_context` just verified the current value with.
fn remember_set(f: Rc<Facts>, is_local: bool, generation: u64) {
    let epoch = gucs::context_epoch();
    let now = this_statement();
    CHECKED.with(|c| {
        *c.borrow_mut() = Checked {
            epoch,
            facts: Some(f),
            set: Some((now, is_local)),
            at: (now, generation),
            valid: true,
            warned: false,
            checking: false,
        }
    });
}

/// Whether the context in the setting (`value`, not empty) still holds.
///
/// Cost: per call, a counter, two timestamps and the cached key ring are
/// compared with the last verdict. Once per statement (or when the key ring
/// was reloaded: any change to keys or registry settings, in any session,
/// reaches this backend at its next command): the key is looked up in the
/// ring and the times compared with the statement's start, which is free;
/// with a registry configured, each of the context's tenants is looked up
/// there (one indexed query per tenant), except in the statement that
/// called `set_context`, and for a transaction-local context within its
/// transaction.
fn context_valid(value: &CStr) -> bool {
    let epoch = gucs::context_epoch();
    let ring = keys::ring();
    let now = this_statement();
    let at = (now, ring.generation);
    let known = CHECKED.with(|c| {
        let c = c.borrow();
        if c.checking {
            // Called back from the registry look-up below: fail closed.
            Some(false)
        } else {
            (c.epoch == epoch && c.at == at).then_some(c.valid)
        }
    });
    if let Some(valid) = known {
        return valid;
    }
    let (facts, set, warned) = CHECKED.with(|c| {
        let mut c = c.borrow_mut();
        if c.epoch != epoch {
            c.epoch = epoch;
            c.facts = None;
            c.set = None;
            c.warned = false;
        }
        (c.facts.clone(), c.set, c.warned)
    });
    let facts = facts.unwrap_or_else(|| {
        let f = Rc::new(facts_of_value(value.to_str().unwrap_or("")));
        CHECKED.with(|c| c.borrow_mut().facts = Some(f.clone()));
        f
    });
    let leeway = f64::from(gucs::LEEWAY.get());
    let mut why = lapsed(&facts, &ring.keys, unix_seconds(now.1), leeway).or_else(|| {
        // Revocations name tokens; an as_tenant context has none.
        if facts.as_claimed {
            return None;
        }
        ring.revoked.check(
            &facts.revocable,
            revocable_user(&facts.revocable),
            facts.tenants.iter().map(String::as_str),
        )
    });
    if why.is_none() {
        if let Some(reg) = ring.registry.as_ref().filter(|_| registry_due(set, now)) {
            struct Checking;
            impl Drop for Checking {
                fn drop(&mut self) {
                    CHECKED.with(|c| c.borrow_mut().checking = false);
                }
            }
            CHECKED.with(|c| c.borrow_mut().checking = true);
            let _checking = Checking;
            why = registry::check_all(reg, &facts.tenants).err();
        }
    }
    let valid = why.is_none();
    // A parallel worker stays silent: its leader judges the same value.
    // SAFETY: ParallelWorkerNumber is a plain int of this backend, set once
    // when a worker starts; reading it has no other precondition.
    let worker = unsafe { pg_sys::ParallelWorkerNumber } >= 0;
    let warn = !valid && !warned && !worker;
    CHECKED.with(|c| {
        let mut c = c.borrow_mut();
        if c.epoch == epoch {
            c.at = at;
            c.valid = valid;
            // Valid again (a reactivated tenant): warn again should it lapse.
            c.warned = !valid && (c.warned || warn);
        }
    });
    if let (true, Some(why)) = (warn, why) {
        Failure::new(Code::ERRCODE_WARNING, "the tenant context is no longer valid")
            .detail(why)
            .hint("From this statement on it reads and writes nothing; call tenant_guard.set_context with a new token.")
            .report(PgLogLevel::WARNING);
    }
    valid
}

thread_local! {
    /// The verification settings last read ([`rules`]).
    static RULES: RefCell<Option<Rc<Rules>>> = const { RefCell::new(None) };
}

/// The verification settings. Read once and kept while every setting is
/// unchanged: a call compares them with the settings as they are now
/// (string settings in place, without copying), so a `SET` takes effect at
/// the next call.
fn rules() -> Rc<Rules> {
    let lifetime = gucs::MAX_TOKEN_LIFETIME.get();
    let leeway = f64::from(gucs::LEEWAY.get());
    let require_exp = gucs::REQUIRE_EXP.get();
    let max_lifetime = (lifetime > 0).then_some(f64::from(lifetime));
    let max_bytes = usize::try_from(gucs::MAX_TOKEN_BYTES.get()).unwrap_or(8192);
    let max_bypass_lifetime = f64::from(gucs::MAX_BYPASS_LIFETIME.get());
    let kept = RULES.with(|r| r.borrow().clone()).filter(|r| {
        r.leeway == leeway
            && r.require_exp == require_exp
            && r.max_lifetime == max_lifetime
            && r.max_bytes == max_bytes
            && r.max_bypass_lifetime == max_bypass_lifetime
            && gucs::text_is(&gucs::TENANT_CLAIM, "tenant_id", Some(&r.tenant_claim))
            && gucs::text_is(&gucs::TENANTS_CLAIM, "tenants", Some(&r.tenants_claim))
            && gucs::text_is(&gucs::USER_CLAIM, "sub", Some(&r.user_claim))
            && gucs::text_is(&gucs::ISSUER, "", r.issuer.as_deref())
            && gucs::text_is(&gucs::AUDIENCE, "", r.audience.as_deref())
    });
    if let Some(r) = kept {
        return r;
    }
    let r = Rc::new(Rules {
        tenant_claim: gucs::text(&gucs::TENANT_CLAIM).unwrap_or_else(|| "tenant_id".into()),
        leeway,
        require_exp,
        issuer: gucs::text(&gucs::ISSUER),
        audience: gucs::text(&gucs::AUDIENCE),
        max_lifetime,
        max_bytes,
        tenants_claim: gucs::text(&gucs::TENANTS_CLAIM).unwrap_or_else(|| "tenants".into()),
        max_bypass_lifetime,
        user_claim: gucs::text(&gucs::USER_CLAIM).unwrap_or_else(|| "sub".into()),
    });
    RULES.with(|c| *c.borrow_mut() = Some(r.clone()));
    r
}

/// Writes one context setting with superuser rights (the caller has been
/// authenticated by the token, not by its role).
fn put(name: &CStr, value: &str, is_local: bool) {
    // Claims and ids were checked free of NUL characters by the parser.
    put_c(name, &crate::error::c_string(value), is_local);
}

/// [`put`] of a value already in C form.
fn put_c(name: &CStr, value: &CStr, is_local: bool) {
    let action = if is_local {
        pg_sys::GucAction::GUC_ACTION_LOCAL
    } else {
        pg_sys::GucAction::GUC_ACTION_SET
    };
    // SAFETY: valid C strings; elevel ERROR makes failures raise.
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
            action,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
}

/// With `tenant_guard.log_rejections = sampled`: at most one rejection line
/// per backend in this many seconds.
pub const SAMPLE_SECONDS: f64 = 10.0;

/// Rate limit of the sampled rejection lines (per backend).
#[derive(Debug, Default, Clone, PartialEq)]
struct Sampler {
    /// When the last line was written (Unix seconds), if ever.
    last: Option<f64>,
    /// Lines skipped since.
    skipped: u64,
}

impl Sampler {
    /// Whether to write a line at `now`: `Some(n)` with the number of lines
    /// skipped before it, or `None` (counted as skipped).
    fn admit(&mut self, now: f64, every: f64) -> Option<u64> {
        match self.last {
            // A clock that went back also lets a line through.
            Some(t) if now >= t && now - t < every => {
                self.skipped += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.skipped))
            }
        }
    }
}

thread_local! {
    static SAMPLER: RefCell<Sampler> = RefCell::new(Sampler::default());
}

/// With `tenant_guard.log_rejections = sampled`: whether this backend's
/// sampler lets a line through now (at most one every [`SAMPLE_SECONDS`]).
pub fn sampler_admits() -> bool {
    SAMPLER.with(|s| s.borrow_mut().admit(keys::now(), SAMPLE_SECONDS).is_some())
}

/// What a rejection line says about the token beyond its reason: its kid,
/// and the issuer and tenant it claims (unverified, clipped; never the
/// token), with the role and client address that presented it.
#[derive(Default)]
struct Claimed {
    kid: Option<String>,
    issuer: Option<String>,
    tenant: Option<String>,
}

impl Claimed {
    /// Best effort from a token's header and payload, neither verified.
    fn of(token: &str, tenant_claim: &str) -> Self {
        use base64::Engine;
        let mut parts = token.split('.');
        let b64 = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .ok()
        };
        let kid = parts
            .next()
            .and_then(b64)
            .and_then(|b| token::parse_object(&b, "header").ok())
            .and_then(|h| h.get("kid")?.as_str().map(str::to_owned));
        let payload = parts
            .next()
            .and_then(b64)
            .and_then(|b| token::parse_object(&b, "payload").ok());
        let claim = |name: &str| {
            payload.as_ref().and_then(|p| match p.get(name)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        Claimed {
            kid,
            issuer: claim("iss"),
            tenant: claim(tenant_claim),
        }
    }

    fn line(&self, what: &str, detail: &str, reason: &str) -> String {
        let (role, client) = crate::stats::who();
        let q = |v: &Option<String>| crate::metrics::clip_claim(v.as_deref().unwrap_or(""));
        format!(
            "tenant_guard: token rejected: {what} (kid \"{}\"): {detail}; reason \"{reason}\", issuer \"{}\", claimed tenant \"{}\", role \"{}\", client \"{}\"",
            q(&self.kid),
            q(&self.issuer),
            q(&self.tenant),
            crate::metrics::clip_claim(&role),
            crate::metrics::clip_claim(&client),
        )
    }
}

/// Counts a rejection and writes its LOG line as the
/// `tenant_guard.log_rejections*` settings say (see `stats::rejection`).
fn log_rejection(counter: crate::metrics::Counter, claimed: &Claimed, what: &str, detail: &str) {
    crate::stats::rejection(counter, || {
        claimed.line(what, detail, counter.name().1.unwrap_or(""))
    });
}

fn refuse(r: &Rejection, claimed: &Claimed) -> ! {
    // Logged for the DBA (server log only at the default client_min_messages);
    // never the token itself.
    log_rejection(
        crate::metrics::rejection_counter(r),
        claimed,
        &r.to_string(),
        &r.detail(),
    );
    let f = rejected(r.to_string()).detail(r.detail());
    match r {
        Rejection::NoKeys => f.hint("Add a key with tenant_guard.add_key.").raise(),
        Rejection::MissingExp => f
            .hint("Give the token an exp claim (or set tenant_guard.require_exp = off).")
            .raise(),
        _ => f.raise(),
    }
}

/// The registry column the key's issuer maps organisations through, if any.
fn org_column(ring: &keys::Ring, kid: &str) -> Option<String> {
    ring.keys
        .iter()
        .find(|k| k.kid == kid)
        .and_then(|k| k.issuer.as_ref())
        .and_then(|i| i.org_column.clone())
}

/// `v` with its tenant and read set mapped from organisation ids to the
/// registry's tenant ids (refused when one is not there).
fn map_to_tenants(ring: &keys::Ring, column: &str, v: &Verified, claimed: &Claimed) -> Cached {
    let refuse_map = |why: String| -> ! {
        log_rejection(
            crate::metrics::Counter::RejectedTenant,
            claimed,
            "organisation not mapped",
            &why,
        );
        rejected("token organisation is not accepted")
            .detail(why)
            .raise()
    };
    let Some(reg) = &ring.registry else {
        refuse_map(
            "the issuer maps organisations through the registry, and none is configured".into(),
        )
    };
    let mut mapped = v.clone();
    if let Some(t) = &v.tenant {
        mapped.tenant = Some(
            registry::map_orgs(reg, column, std::slice::from_ref(t))
                .unwrap_or_else(|w| refuse_map(w))
                .remove(0),
        );
    }
    let set = registry::map_orgs(reg, column, &v.tenants).unwrap_or_else(|w| refuse_map(w));
    mapped.tenants = distinct_tenants(None, set.iter().map(String::as_str));
    let packed = packed_value(&mapped, &mapped.tenants);
    Cached::new(mapped, packed, ring, None)
}

/// Verifies a signed token and makes its tenant the context.
///
/// Returns the tenant id. `is_local => true` (the default) lasts until the
/// end of the current transaction, like `SET LOCAL`, and must be called
/// inside one. `is_local => false` lasts for the session, as long as the
/// token, its key and its tenants stay valid (checked at every statement).
///
/// Runs with the caller's rights; the key ring and the registry are read
/// inside `keys` / `registry` with theirs. No error or log line it causes
/// carries the statement (which may hold the token).
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn set_context(token: Option<&str>, is_local: default!(Option<bool>, true)) -> String {
    crate::stats::bump(crate::metrics::Counter::SetContextCalls);
    crate::error::hide_statement(|| set_context_inner(token, is_local))
}

fn set_context_inner(token: Option<&str>, is_local: Option<bool>) -> String {
    let Some(is_local) = is_local else {
        crate::error::invalid_parameter("is_local must not be NULL").raise()
    };
    // SAFETY: no arguments; returns a bool from this backend's transaction
    // state, which a running function call always has.
    if is_local && !unsafe { pg_sys::IsTransactionBlock() } {
        Failure::new(
            Code::ERRCODE_NO_ACTIVE_SQL_TRANSACTION,
            "set_context with is_local => true must be called inside a transaction block",
        )
        .detail("Outside BEGIN ... COMMIT the context would end with this statement.")
        .hint("Run BEGIN first and call set_context inside the transaction: a context that outlives the transaction would serve the next request on a pooled connection.")
        .raise();
    }
    let Some(token) = token else {
        refuse(
            &Rejection::Malformed("the token is NULL".into()),
            &Claimed::default(),
        )
    };
    crate::citus::require_context_change_allowed("set_context");
    let tenant = establish(token, is_local, false);
    if crate::citus::loaded() {
        // The workers get the token of a transaction-local context (and
        // verify it themselves); a session context is not forwarded, so
        // they are told to drop the transaction's earlier one.
        crate::citus::forward(if is_local { token } else { "" });
        FORWARD.with(|f| f.set((gucs::forward_epoch(), 0)));
    }
    tenant
}

thread_local! {
    /// A forwarded token (Citus): the `forward_epoch` last acted on, and the
    /// `context_epoch` right after the context adopted from it was set (0:
    /// the context is not one adopted from a forwarded token).
    static FORWARD: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// On a Citus node, makes a newly forwarded token the context of this
/// transaction (verified like `set_context(token)` would, against this
/// node's key ring), or drops the context adopted from an earlier one when
/// the coordinator cleared it. Called before the context is read; costs a
/// counter comparison when nothing was forwarded.
fn adopt_forwarded() {
    if !crate::citus::loaded() {
        return;
    }
    let epoch = gucs::forward_epoch();
    let (seen, adopted) = FORWARD.with(Cell::get);
    if seen == epoch {
        return;
    }
    // Marked first: a failed verification is not retried within the value
    // (the context stays unset: fail closed), and the look-ups below cannot
    // come back here.
    FORWARD.with(|f| f.set((epoch, adopted)));
    // A value set in an earlier transaction (a session-level SET, restored
    // when a SET LOCAL over it ended) is no context: Citus forwards with SET
    // LOCAL, in the transaction that uses it.
    let forwarded =
        gucs::text(&gucs::FORWARDED_TOKEN).filter(|_| gucs::forward_xact() == this_transaction());
    match forwarded {
        None => {
            if adopted != 0 && adopted == gucs::context_epoch() {
                put(gucs::CONTEXT_NAME, "", true);
                FORWARD.with(|f| f.set((epoch, 0)));
            }
        }
        Some(token) => {
            crate::error::hide_statement(|| establish(&token, true, true));
            FORWARD.with(|f| f.set((epoch, gucs::context_epoch())));
        }
    }
}

/// Verifies `token` and makes it the context: `set_context`'s work after
/// its argument checks. `forwarded`: the token arrived through
/// `tenant_guard.forwarded_token` (a Citus worker), so a bypass token reads
/// the registry's tenants even where `tenant_guard.bypass_role` is set
/// (the role switch belongs to the coordinator's transaction).
fn establish(token: &str, is_local: bool, forwarded: bool) -> String {
    let rules = rules();
    // Size limit before anything else reads the token (header_kid included).
    if token.len() > rules.max_bytes {
        refuse(
            &Rejection::TooLarge {
                len: token.len(),
                max: rules.max_bytes,
            },
            &Claimed::default(),
        );
    }
    let ring = keys::ring();
    let cached = verify_cached(token, &ring, &rules, keys::now())
        .unwrap_or_else(|r| refuse(&r, &Claimed::of(token, &rules.tenant_claim)));
    let v = &cached.v;
    let verified_claims = || Claimed {
        kid: Some(v.kid.clone()),
        issuer: v
            .claims
            .get("iss")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        tenant: v.tenant.clone(),
    };
    // An issuer whose tenant claims name organisations: mapped to tenant ids
    // through the registry, at every use (the registry may change).
    let mapped;
    let mut unmapped: Option<&Verified> = None;
    let cached: &Cached = match org_column(&ring, &cached.v.kid) {
        None => &cached,
        Some(column) => {
            mapped = map_to_tenants(&ring, &column, &cached.v, &verified_claims());
            unmapped = Some(&cached.v);
            &mapped
        }
    };
    let v = &cached.v;
    // Revocations, on every use (a cached verification included). With an
    // organisation mapping, a revocation may name the tenant id or the
    // organisation id the token carries.
    let named = v
        .tenant
        .iter()
        .chain(v.tenants.iter())
        .chain(
            unmapped
                .iter()
                .flat_map(|u| u.tenant.iter().chain(u.tenants.iter())),
        )
        .map(String::as_str);
    if let Some(why) = ring.revoked.check(&v.claims, v.user.as_deref(), named) {
        refuse(&Rejection::Revoked(why), &verified_claims());
    }
    let refuse_tenant = |why: String| -> ! {
        log_rejection(
            crate::metrics::Counter::RejectedTenant,
            &verified_claims(),
            "tenant not accepted",
            &why,
        );
        rejected("token tenant is not accepted").detail(why).raise()
    };
    if let Some(reg) = &ring.registry {
        // Checked at every use, cached or not: deactivating a tenant takes
        // effect at once.
        let named: Vec<String> = v
            .tenant
            .iter()
            .chain(if v.bypass {
                [].iter()
            } else {
                v.tenants.iter()
            })
            .cloned()
            .collect();
        if let Err(why) = registry::check_all(reg, &named) {
            refuse_tenant(why);
        }
    }
    // A forwarded bypass token (Citus) is read in registry mode, which may
    // write. Where tenant_guard.bypass_role makes bypass read-only, a session
    // could write a bypass token into tenant_guard.forwarded_token itself and
    // get that writable bypass: there it is taken only by a session whose
    // role has BYPASSRLS (a worker connection of a coordinator transaction
    // that switched to the bypass role), which it gives nothing it lacks.
    if forwarded && v.bypass && crate::bypass::configured().is_some() {
        crate::bypass::require_forwarded_by_role(|why| {
            log_rejection(
                crate::metrics::Counter::RejectedBypass,
                &verified_claims(),
                "forwarded bypass token refused",
                why,
            )
        });
    }
    // With tenant_guard.bypass_role, a bypass token switches to that role
    // for the rest of the transaction (checked before anything is set).
    let bypass_role = if v.bypass && !forwarded {
        crate::bypass::configured().map(|name| {
            if !is_local {
                Failure::new(
                    Code::ERRCODE_FEATURE_NOT_SUPPORTED,
                    "a bypass context with tenant_guard.bypass_role is transaction-local",
                )
                .hint("Call set_context(token) with is_local => true inside BEGIN … COMMIT.")
                .raise();
            }
            crate::bypass::require_switchable();
            (name.clone(), crate::bypass::resolve(&name))
        })
    } else {
        None
    };
    if v.bypass && bypass_role.is_none() && ring.registry.is_none() {
        // A bypass token reads every tenant of the registry (looked up at
        // each statement, never copied into the setting): the policy stays
        // `tenant = ANY (visible set)`, so ordinary tenant queries keep their
        // index scans and never pay for an `OR bypass` branch.
        log_rejection(
            crate::metrics::Counter::RejectedBypass,
            &verified_claims(),
            "bypass without a registry",
            "a bypass token reads every tenant listed in the registry",
        );
        rejected("bypass tokens need a tenant registry")
            .detail("a bypass token reads every tenant listed in the registry")
            .hint("Configure one with tenant_guard.use_registry, or give a support role BYPASSRLS.")
            .raise()
    }
    match &cached.packed_c {
        Some(value) => put_c(gucs::CONTEXT_NAME, value, is_local),
        None => put(gucs::CONTEXT_NAME, &cached.packed, is_local),
    }
    remember_set(cached.facts.clone(), is_local, ring.generation);
    if let Some((_, role)) = &bypass_role {
        crate::bypass::enter(*role);
    }
    crate::stats::bump(crate::metrics::Counter::ContextsSet);
    if v.bypass {
        crate::stats::bump(crate::metrics::Counter::BypassContexts);
    } else if v.tenants.iter().any(|t| Some(t) != v.tenant.as_ref()) {
        crate::stats::bump(crate::metrics::Counter::MultiTenantContexts);
    }
    // A bypass token may carry no tenant (meant): set_context returns ''.
    let tenant = v.tenant.clone().unwrap_or_default();
    let lasts = if is_local { "transaction" } else { "session" };
    if v.bypass {
        // Every use of a bypass token is logged, whatever log_context says.
        // Quotes, backslashes and control characters in the quoted fields
        // are written as `?` (and long values clipped), so a claim cannot
        // make the line read as other fields.
        let user = clip_claim(v.user.as_deref().unwrap_or(""));
        let kid = clip_claim(&v.kid);
        log_line(match &bypass_role {
            Some((name, _)) => format!(
                "tenant_guard: bypass context set: user \"{user}\", kid \"{kid}\", as role \"{}\", {lasts}",
                clip_claim(name)
            ),
            None => format!(
                "tenant_guard: bypass context set: user \"{user}\", kid \"{kid}\", every tenant of the registry readable, {lasts}"
            ),
        });
    } else if gucs::LOG_CONTEXT.get() {
        log_line(format!(
            "tenant_guard: context set: tenant \"{}\", user \"{}\", kid \"{}\", {lasts}",
            clip_claim(&tenant),
            clip_claim(v.user.as_deref().unwrap_or("")),
            clip_claim(&v.kid),
        ));
    }
    tenant
}

/// Makes `read[0]` the context without a token, reading `read` (the
/// checked read set, tenant first): `tenant_guard.as_tenant`'s work once
/// `impersonate` has checked the caller. The value carries the `as_tenant`
/// mark (`by`, the role that called it) and no kid; this backend records
/// it (see [`AS_MADE`]) and its facts, so the per-statement check accepts
/// it here and nowhere else. The registry's rules apply as to a token
/// naming these tenants (28000). Parallel query is turned off with it
/// (`max_parallel_workers_per_gather = 0`, as long as the context): a
/// worker cannot tell this value from a forged one and would read nothing.
pub fn establish_as(read: &[String], user: Option<&str>, by: &str, is_local: bool) {
    let tenant = read.first().map(String::as_str).unwrap_or("");
    let ring = keys::ring();
    if let Some(reg) = &ring.registry {
        if let Err(why) = registry::check_all(reg, read) {
            rejected("tenant is not accepted")
                .detail(why)
                .hint("tenant_guard.as_tenant follows the registry like set_context: only active tenants of tenant_guard.use_registry's table.")
                .raise();
        }
    }
    let scope = Scope {
        kid: String::new(),
        user: user.map(str::to_owned),
        read: (read.len() > 1).then(|| read.to_vec()),
        bypass: false,
        made_by: Some(by.to_owned()),
    };
    let mark = if scope.read.is_none() {
        Mark::Simple
    } else {
        Mark::Scoped
    };
    // What a token would carry: the tenant, the read set and the user
    // under the configured claim names.
    let mut claims = serde_json::Map::new();
    let r = rules();
    claims.insert(r.tenant_claim.clone(), tenant.into());
    if read.len() > 1 {
        claims.insert(r.tenants_claim.clone(), read.to_vec().into());
    }
    if let Some(u) = user {
        claims.insert(r.user_claim.clone(), u.into());
    }
    let scope = serde_json::to_string(&scope)
        .unwrap_or_else(|e| crate::error::internal(format!("a context scope: {e}")));
    let value = pack(
        tenant,
        &scope,
        &serde_json::Value::Object(claims).to_string(),
        mark,
    );
    AS_MADE.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= AS_MADE_KEPT {
            m.remove(0);
        }
        m.push((value.clone(), by.to_owned()));
    });
    put(gucs::CONTEXT_NAME, &value, is_local);
    put(c"max_parallel_workers_per_gather", "0", is_local);
    remember_set(
        Rc::new(Facts {
            kid: String::new(),
            exp: None,
            tenants: read.to_vec(),
            revocable: serde_json::Map::new(),
            issuer: None,
            as_claimed: true,
            made_by: Some(by.to_owned()),
            bypass: false,
        }),
        is_local,
        ring.generation,
    );
}

/// Drops the context (for the rest of the session; a rollback restores it).
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn clear_context() {
    crate::citus::require_context_change_allowed("clear_context");
    put(gucs::CONTEXT_NAME, "", false);
    if crate::citus::loaded() {
        crate::citus::forward("");
        FORWARD.with(|f| f.set((gucs::forward_epoch(), 0)));
    }
}

/// A copy of the context setting's current value, if it is set (not
/// validated). Copied at once: PostgreSQL frees the string when the setting
/// changes, and the checks that follow run SQL.
fn context_value() -> Option<CString> {
    adopt_forwarded();
    // SAFETY: `CONTEXT` is a registered string setting; its pointer is NULL
    // or a NUL-terminated string owned by the GUC machinery, valid until the
    // setting next changes. It is copied before anything else runs.
    unsafe {
        let p = *gucs::CONTEXT.as_ptr();
        if p.is_null() || *p == 0 {
            return None;
        }
        Some(CStr::from_ptr(p).to_owned())
    }
}

/// The context setting's value, owned. `None` without a context, and for a
/// context that no longer holds ([`context_valid`]).
fn raw_context() -> Option<String> {
    let v = context_value()?;
    if !context_valid(&v) {
        return None;
    }
    v.into_string().ok()
}

/// The current tenant (the writing one), if any.
fn current_tenant() -> Option<String> {
    raw_context()
        .map(|v| unpack(&v).0.to_owned())
        .filter(|t| !t.is_empty())
}

/// Whether a valid tenant or bypass context is set (`tenant_id() IS NOT
/// NULL OR is_bypass()`, for the TRUNCATE trigger).
pub fn tenant_or_bypass() -> bool {
    current_tenant().is_some() || scope().is_some_and(|s| s.bypass)
}

/// The current tenant, or NULL without a context.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn tenant_id() -> Option<String> {
    current_tenant()
}

/// The current tenant, or an error (42501) when there is no context.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn require_tenant_id() -> String {
    current_tenant().unwrap_or_else(|| {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "no tenant context is set",
        )
        .hint("Call tenant_guard.set_context(token) in this transaction first.")
        .raise()
    })
}

thread_local! {
    /// The last parsed scope: (the setting's text, its value). Policies call
    /// `visible_tenants()` once per scan, or once per row in a sequential
    /// scan, so a read set of a thousand tenants is not re-parsed per row.
    static SCOPE_CACHE: RefCell<(String, Rc<Scope>)> = RefCell::new((String::new(), Rc::new(Scope::default())));
}

fn scope() -> Option<Rc<Scope>> {
    let value = raw_context()?;
    let raw = unpack(&value).1;
    Some(SCOPE_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != raw {
            // Written by set_context from a Scope, so it always parses; if
            // it did not, the value was not ours: a bug, not "no scope".
            let parsed: Scope = serde_json::from_str(raw).unwrap_or_else(|e| {
                crate::error::internal(format!("unreadable context scope: {e}"))
            });
            *c = (raw.to_owned(), Rc::new(parsed));
        }
        c.1.clone()
    }))
}

/// Whether a context setting value is a bypass context's, by its mark (for
/// the setting's assign hook: no errors, no allocation, no parse).
pub fn is_bypass_value(v: &[u8]) -> bool {
    let sep = SEP as u8;
    let mut parts = v.splitn(3, |&b| b == sep);
    let _tenant = parts.next();
    parts.next() == Some(b"b") && parts.next().is_some()
}

/// Whether the current context is a bypass context that still holds (key,
/// expiry and registry checks of [`context_valid`]).
///
/// Also judged against the clock at this moment, not only at the start of
/// the statement: a `DO` block or a procedure keeps starting queries long
/// after its statement began.
pub fn bypass_holds() -> bool {
    // Runs before every query of a bypass transaction (executor start and
    // run). Once judged to hold, the same value under the same key ring and
    // leeway holds until its token or its key expires: only the clock is
    // read again (`HOLDS`).
    let epoch = gucs::context_epoch();
    let ring = keys::ring();
    let leeway = f64::from(gucs::LEEWAY.get());
    // SAFETY: no arguments; reads the clock.
    let now = unix_seconds(unsafe { pg_sys::GetCurrentTimestamp() });
    let h = HOLDS.get();
    if h.epoch == epoch
        && h.generation == ring.generation
        && h.leeway == leeway
        && now <= h.token_until
        && now < h.key_until
    {
        return true;
    }
    let Some(until) = bypass_holds_until(&ring, leeway, now) else {
        return false;
    };
    HOLDS.set(Holds {
        epoch,
        generation: ring.generation,
        leeway,
        token_until: until.0,
        key_until: until.1,
    });
    true
}

/// A bypass context judged to hold: its setting's epoch, the key ring's
/// generation and the leeway it was judged under, and until when it holds
/// (Unix seconds: while `now <= token_until` and `now < key_until`, the
/// rules of `lapsed`). Everything else `context_valid` and `lapsed` judge
/// (retired keys, changed issuer rules, revocations) is part of the ring.
#[derive(Clone, Copy)]
struct Holds {
    epoch: u64,
    generation: u64,
    leeway: f64,
    token_until: f64,
    key_until: f64,
}

thread_local! {
    static HOLDS: Cell<Holds> = const {
        Cell::new(Holds {
            epoch: u64::MAX,
            generation: u64::MAX,
            leeway: f64::NAN,
            token_until: f64::NEG_INFINITY,
            key_until: f64::NEG_INFINITY,
        })
    };
}

/// The full judgement of [`bypass_holds`]: `None` if the context is not a
/// bypass context that holds at `now`, else until when it holds (see
/// [`Holds`]), or `(-inf, -inf)` (judged again at the next call) for a
/// context whose validity also depends on the registry (it names tenants).
fn bypass_holds_until(ring: &keys::Ring, leeway: f64, now: f64) -> Option<(f64, f64)> {
    let value = context_value()?;
    if !context_valid(&value) {
        return None;
    }
    let epoch = gucs::context_epoch();
    let facts = CHECKED
        .with(|c| {
            let c = c.borrow();
            (c.epoch == epoch).then(|| c.facts.clone()).flatten()
        })
        .unwrap_or_else(|| Rc::new(facts_of(value.to_str().unwrap_or(""))));
    if !facts.bypass || lapsed(&facts, &ring.keys, now, leeway).is_some() {
        return None;
    }
    if facts.as_claimed || !facts.tenants.is_empty() {
        return Some((f64::NEG_INFINITY, f64::NEG_INFINITY));
    }
    let key = ring.keys.iter().find(|k| k.kid == facts.kid)?;
    let leeway = key.issuer.as_ref().and_then(|i| i.leeway).unwrap_or(leeway);
    Some((
        facts.exp.map_or(f64::INFINITY, |exp| exp + leeway),
        key.expires_at.unwrap_or(f64::INFINITY),
    ))
}

/// Resets the planner depth (after an error, should a hook called below
/// ours have skipped the unwinding that restores it).
pub fn reset_planning() {
    PLANNING.with(|p| p.set(0));
}

/// The token's `sub` claim, or NULL.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn user_id() -> Option<String> {
    scope().and_then(|s| s.user.clone())
}

/// Every verified claim of the current context, or NULL.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn claims() -> Option<pgrx::JsonB> {
    let value = raw_context()?;
    serde_json::from_str(unpack(&value).2).ok().map(pgrx::JsonB)
}

/// Whether the current context may see every tenant.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn is_bypass() -> bool {
    scope().is_some_and(|s| s.bypass)
}

fn no_context() -> Vec<String> {
    match gucs::MISSING_CONTEXT.get() {
        gucs::MissingContext::Empty => Vec::new(),
        gucs::MissingContext::Error => Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "no tenant context is set",
        )
        .detail(
            "The table is protected by tenant_guard; rows are visible only under a tenant context.",
        )
        .hint(if crate::citus::loaded() {
            "Call tenant_guard.set_context(token) in this transaction first. On a Citus cluster the \
             workers get the context of set_context(token) inside BEGIN … COMMIT (is_local => true) \
             only: a session context does not reach them."
        } else {
            "Call tenant_guard.set_context(token) in this transaction first."
        })
        .raise(),
    }
}

/// What a bypass read set was read for: (transaction start, context epoch,
/// key ring generation).
type BypassKey = (Transaction, u64, u64);

thread_local! {
    /// A bypass context's read set: the registry's tenants, read at the
    /// first statement of a transaction that needs them, and again when the
    /// context, the key ring or the registry settings change.
    static BYPASS_SET: RefCell<Option<(BypassKey, Rc<Vec<String>>)>> = const { RefCell::new(None) };
}

/// Every tenant of the registry (read as the registry table's owner; empty
/// without a registry).
fn bypass_set() -> Rc<Vec<String>> {
    bypass_set_kept().0
}

/// [`bypass_set`], and whether it is the set the key ring keeps: read once
/// for every statement and transaction of the session until the ring is
/// dropped, which a watched registry's every change does
/// (`registry::watch_sql`: an invalidation sent at its commit, and at once
/// to the session that made it). The set is read through a snapshot taken
/// after the session read the invalidations sent so far (as PostgreSQL
/// reads its catalogs), so it holds every change those announced. An
/// unwatched registry is read again by each statement, through its
/// snapshot.
fn bypass_set_kept() -> (Rc<Vec<String>>, bool) {
    // SAFETY: reads the invalidations other sessions sent (what taking a
    // lock does); a change to a watched registry drops the ring.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    let ring = keys::ring();
    if let Some(reg) = ring.registry.as_ref().filter(|r| r.watched) {
        if let Some(kept) = ring.bypass.borrow().clone() {
            return (kept, true);
        }
        if keys::fresh_reads() && keys::current_generation() == Some(ring.generation) {
            // SAFETY: pushed and popped around the read (an error pops it
            // with the transaction's or subtransaction's abort); not in
            // parallel mode (fresh_reads).
            let all = unsafe {
                pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot());
                let all = registry::all_tenants(reg);
                pg_sys::PopActiveSnapshot();
                Rc::new(all)
            };
            // Kept only if no invalidation dropped the ring meanwhile.
            if keys::current_generation() == Some(ring.generation) {
                *ring.bypass.borrow_mut() = Some(all.clone());
                return (all, true);
            }
        }
    }
    (bypass_set_of_transaction(&ring), false)
}

/// The registry's tenants as this transaction first read them.
fn bypass_set_of_transaction(ring: &keys::Ring) -> Rc<Vec<String>> {
    let key = (this_statement().0, gucs::context_epoch(), ring.generation);
    if let Some(hit) = BYPASS_SET.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }) {
        return hit;
    }
    let all = Rc::new(
        ring.registry
            .as_ref()
            .map(registry::all_tenants)
            .unwrap_or_default(),
    );
    BYPASS_SET.with(|c| *c.borrow_mut() = Some((key, all.clone())));
    all
}

/// A set of tenant ids, borrowed where it is kept already (a read set in
/// the parsed scope, a bypass set), so building the policy's array does not
/// copy a thousand strings first.
enum TenantSet {
    Own(Vec<String>),
    Registry(Rc<Vec<String>>),
    Read(Rc<Scope>),
}

impl TenantSet {
    fn ids(&self) -> &[String] {
        match self {
            TenantSet::Own(v) => v,
            TenantSet::Registry(v) => v,
            TenantSet::Read(s) => s.read.as_deref().unwrap_or_default(),
        }
    }
}

/// The tenants the current context may read.
fn visible_set() -> TenantSet {
    match scope() {
        Some(s) if s.bypass => return TenantSet::Registry(bypass_set()),
        Some(s) if s.read.is_some() => return TenantSet::Read(s),
        _ => {}
    }
    match current_tenant() {
        Some(t) => TenantSet::Own(vec![t]),
        None => TenantSet::Own(no_context()),
    }
}

/// The tenants the current context may write: its tenant claim (a bypass
/// token without one may write every tenant it reads).
fn writable_set() -> TenantSet {
    if let Some(t) = current_tenant() {
        return TenantSet::Own(vec![t]);
    }
    match scope() {
        Some(s) if s.bypass => TenantSet::Registry(bypass_set()),
        _ => TenantSet::Own(no_context()),
    }
}

/// A one-dimensional `text[]` of `ids`, laid out by hand in one allocation
/// (the policies build one per scan; `construct_array` costs several times
/// more). Layout of `ArrayType` (`utils/array.h`): varlena header, `ndim`,
/// `dataoffset` (0: no NULLs), element type, then `dims[ndim]` and
/// `lbound[ndim]`, then the elements from a MAXALIGNed offset, each a
/// varlena with a 4-byte header, INTALIGNed. An empty array has `ndim = 0`.
fn text_array(ids: &[&[u8]]) -> pg_sys::Datum {
    fn intalign(n: usize) -> usize {
        (n + 3) & !3
    }
    // SET_VARSIZE for a 4-byte header.
    fn varsize(len: usize) -> u32 {
        if cfg!(target_endian = "little") {
            (len as u32) << 2
        } else {
            (len as u32) & 0x3FFF_FFFF
        }
    }
    const HEADER: usize = 16;
    let data_start = if ids.is_empty() {
        HEADER
    } else {
        (HEADER + 8 + 7) & !7
    };
    let mut size = data_start;
    for id in ids {
        size = intalign(size) + 4 + id.len();
    }
    // SAFETY: palloc0 returns `size` zeroed bytes in the current memory
    // context (or raises); PostgreSQL frees them with that context.
    let p = unsafe { pg_sys::palloc0(size) } as *mut u8;
    let put = |at: usize, v: u32| {
        // SAFETY: every caller below passes an offset with `at + 4 <= size`
        // (the layout computed above); unaligned writes need no alignment.
        unsafe { std::ptr::write_unaligned(p.add(at) as *mut u32, v) }
    };
    put(0, varsize(size));
    put(4, if ids.is_empty() { 0 } else { 1 });
    put(8, 0);
    put(12, u32::from(pg_sys::TEXTOID));
    if !ids.is_empty() {
        put(16, ids.len() as u32);
        put(20, 1);
    }
    let mut at = data_start;
    for id in ids {
        at = intalign(at);
        put(at, varsize(4 + id.len()));
        // SAFETY: `at + 4 + id.len() <= size` (the loop computing `size`
        // walked the same offsets); `id` is a Rust slice, not inside `p`.
        unsafe { std::ptr::copy_nonoverlapping(id.as_ptr(), p.add(at + 4), id.len()) };
        at += 4 + id.len();
    }
    pg_sys::Datum::from(p)
}

thread_local! {
    /// How many `planner()` calls of this backend are running (nested
    /// planning counts once per level).
    static PLANNING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

static mut PREVIOUS_PLANNER_HOOK: pg_sys::planner_hook_type = None;

/// Installs the planner hook that makes plans independent of the context
/// that planned them (see [`tenant_array`]). Called once per process from
/// `_PG_init`; hooks chain.
pub fn init() {
    // SAFETY: _PG_init runs once per process; the previous hook is kept and
    // called from ours.
    unsafe {
        PREVIOUS_PLANNER_HOOK = pg_sys::planner_hook;
        pg_sys::planner_hook = Some(plan_query);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn plan_query(
    parse: *mut pg_sys::Query,
    query_string: *const std::ffi::c_char,
    cursor_options: std::ffi::c_int,
    bound_params: pg_sys::ParamListInfo,
) -> *mut pg_sys::PlannedStmt {
    struct Planning;
    impl Drop for Planning {
        fn drop(&mut self) {
            PLANNING.with(|p| p.set(p.get().saturating_sub(1)));
        }
    }
    PLANNING.with(|p| p.set(p.get() + 1));
    let _planning = Planning;
    // SAFETY: the arguments are the planner's, passed on unchanged. An
    // error is caught at the FFI boundary and unwinds through `_planning`,
    // which restores the count.
    unsafe {
        let stmt = match PREVIOUS_PLANNER_HOOK {
            Some(previous) => pg_sys::ffi::pg_guard_ffi_boundary(|| {
                previous(parse, query_string, cursor_options, bound_params)
            }),
            None => pg_sys::standard_planner(parse, query_string, cursor_options, bound_params),
        };
        crate::scan::hash_tenant_filters(stmt);
        stmt
    }
}

/// Whether this call comes from the planner (estimating an expression's
/// selectivity), not from a query's execution.
fn planning() -> bool {
    PLANNING.with(std::cell::Cell::get) > 0
}

/// What `tenant_array` keeps in `fn_extra` (allocated in `fn_mcxt`, so it
/// lives as long as the expression that calls it: one query).
#[repr(C)]
struct ArrayCache {
    /// `gucs::context_epoch()` when built: the same epoch is the same value.
    epoch: u64,
    /// The statement it was built in (a bypass read set is the registry as
    /// of the statement; a context's validity is judged per statement).
    statement: Statement,
    array: pg_sys::Datum,
}

/// `fn_extra` after a first call whose array was not kept (see
/// [`tenant_array`]).
static CALLED_ONCE: u8 = 0;

fn called_once() -> *mut std::ffi::c_void {
    (&raw const CALLED_ONCE).cast_mut().cast()
}

/// What an [`ArrayCache`] is valid for: the context's epoch and the
/// statement.
type ArrayKey = (u64, Statement);

fn array_key() -> ArrayKey {
    (gucs::context_epoch(), this_statement())
}

/// The result type of the call `flinfo` describes: `text[]`, unless the
/// planner gave the call the column's array type (`scan`'s
/// `retype_tenant_arrays`; a FuncExpr's own field, read without a function
/// call: this runs once per scan of a protected table).
///
/// # Safety
/// `flinfo` is NULL or a valid FmgrInfo.
unsafe fn result_type(flinfo: *mut pg_sys::FmgrInfo) -> pg_sys::Oid {
    // SAFETY: as documented; fn_expr is NULL or an expression node.
    unsafe {
        let expr = if flinfo.is_null() {
            std::ptr::null_mut()
        } else {
            (*flinfo).fn_expr
        };
        if !expr.is_null() && (*expr).type_ == pg_sys::NodeTag::T_FuncExpr {
            (*(expr as *mut pg_sys::FuncExpr)).funcresulttype
        } else {
            pg_sys::TEXTARRAYOID
        }
    }
}

/// The array of the visible (or writable) tenants: `text[]`, or the
/// column's array type where the planner gave the call that result type.
///
/// Kept in `fn_extra` (an [`ArrayCache`]) for the rest of the statement,
/// and rebuilt when the context changes (the epoch): a filter calls this
/// once per row. A read set, the registry and a conversion to the column's
/// type are kept from the first call; a one-tenant `text[]`, cheaper to
/// build than to keep where it is read once per scan (an index condition),
/// from the expression's second call on.
///
/// # Safety
/// `fcinfo` is the call's valid `FunctionCallInfo`.
unsafe fn tenant_array(fcinfo: pg_sys::FunctionCallInfo, writable: bool) -> pg_sys::Datum {
    let planning = planning();
    // SAFETY: fcinfo is valid (caller): its flinfo, when set, is the
    // expression's FmgrInfo, whose fn_extra is NULL, `called_once()` (never
    // read through) or the ArrayCache that `finish` allocated in fn_mcxt
    // (fully written before fn_extra points to it).
    let (flinfo, rettype, extra) = unsafe {
        let flinfo = (*fcinfo).flinfo;
        let extra = if flinfo.is_null() {
            std::ptr::null_mut()
        } else {
            (*flinfo).fn_extra
        };
        (flinfo, result_type(flinfo), extra)
    };
    // The key is read before anything else: what follows may run SQL.
    let key =
        (!planning && !flinfo.is_null() && (rettype != pg_sys::TEXTARRAYOID || !extra.is_null()))
            .then(array_key);
    if let Some(key) = key {
        if !extra.is_null() && extra != called_once() {
            // SAFETY: an ArrayCache (see above).
            let cache = unsafe { &*(extra as *const ArrayCache) };
            if (cache.epoch, cache.statement) == key {
                return cache.array;
            }
        }
    }
    // Fast path: a context that reads exactly its tenant (and writes it).
    // The value is a copy: the validity check runs SQL.
    let value = context_value();
    if let Some(value) = &value {
        // No longer valid: reads nothing, writes nothing.
        let valid = context_valid(value);
        let single = if valid {
            simple_tenant(value.to_bytes())
        } else {
            None
        };
        if !valid || single.is_some() {
            if key.is_none() && !planning && !flinfo.is_null() {
                // SAFETY: flinfo is valid (above); marks a first call.
                unsafe { (*flinfo).fn_extra = called_once() };
            }
            let ids: &[&[u8]] = match &single {
                Some(t) => std::slice::from_ref(t),
                None => &[],
            };
            // SAFETY: fcinfo is this call's valid FunctionCallInfo (caller).
            return unsafe { finish(fcinfo, rettype, ids, key) };
        }
    }
    // While planning, a read set (or a bypass context's registry) is
    // not built: the planner evaluates the policy's array only to
    // estimate how many rows match, and is given the context's own
    // tenant, which every kind of context reads and writes. So a plan
    // is the plan of a one-tenant query whoever planned it (a cached
    // plan made under a 1,000-tenant token keeps its index scan for the
    // next single-tenant request), and planning costs nothing more for
    // large sets. Only an estimate: the executor calls this again and
    // gets the real set. A context without a tenant (bypass without a
    // tenant claim) estimates as an empty set.
    if planning {
        return match current_tenant() {
            // SAFETY: fcinfo is this call's valid FunctionCallInfo (caller).
            Some(t) => unsafe { finish(fcinfo, rettype, &[t.as_bytes()], None) },
            // SAFETY: as above.
            None if value.is_none() => unsafe {
                tenant_array_unplanned(fcinfo, rettype, writable, None)
            },
            // SAFETY: as above.
            None => unsafe { finish(fcinfo, rettype, &[], None) },
        };
    }
    // A read set, the registry, or no context (which may raise): kept at
    // once, under the key read first.
    let key = key.or_else(|| (!flinfo.is_null()).then(array_key));
    // SAFETY: fcinfo is this call's valid FunctionCallInfo (caller).
    unsafe { tenant_array_unplanned(fcinfo, rettype, writable, key) }
}

/// `tenant_array` for a read set, a bypass context or no context (which
/// may raise): the real set.
///
/// # Safety
/// `fcinfo` is the call's valid `FunctionCallInfo`.
unsafe fn tenant_array_unplanned(
    fcinfo: pg_sys::FunctionCallInfo,
    rettype: pg_sys::Oid,
    writable: bool,
    key: Option<ArrayKey>,
) -> pg_sys::Datum {
    let ids = if writable {
        writable_set()
    } else {
        visible_set()
    };
    let refs: Vec<&[u8]> = ids.ids().iter().map(|s| s.as_bytes()).collect();
    // SAFETY: fcinfo is this call's valid FunctionCallInfo (caller).
    unsafe { finish(fcinfo, rettype, &refs, key) }
}

/// The array of `ids` as `rettype` (`text[]` or the column's array type),
/// kept in `fn_extra` under `key` when there is one (execution, with an
/// FmgrInfo).
///
/// # Safety
/// `fcinfo` is the call's valid `FunctionCallInfo`; `key` is `None`
/// without an FmgrInfo.
unsafe fn finish(
    fcinfo: pg_sys::FunctionCallInfo,
    rettype: pg_sys::Oid,
    ids: &[&[u8]],
    key: Option<ArrayKey>,
) -> pg_sys::Datum {
    // SAFETY: fcinfo is valid (caller). The memory context switched to is
    // switched back before returning; an ERROR in between (a tenant the
    // column's type does not accept) resets it anyway. An earlier array
    // is not freed: an index scan may still hold pointers into it (its
    // array keys); it goes with the query.
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        let old = key.map(|_| pg_sys::MemoryContextSwitchTo((*flinfo).fn_mcxt));
        let array = if rettype == pg_sys::TEXTARRAYOID {
            text_array(ids)
        } else {
            typed_array(ids, rettype)
        };
        if let (Some((epoch, statement)), Some(old)) = (key, old) {
            let mut c = (*flinfo).fn_extra as *mut ArrayCache;
            if c.is_null() || c.cast() == called_once() {
                c = pg_sys::palloc(std::mem::size_of::<ArrayCache>()) as *mut ArrayCache;
                (*flinfo).fn_extra = c.cast();
            }
            c.write(ArrayCache {
                epoch,
                statement,
                array,
            });
            pg_sys::MemoryContextSwitchTo(old);
        }
        array
    }
}

/// `ids` as an array of `array_type`'s elements, each read by the element
/// type's input function with no type modifier: what the policy's I/O cast
/// (`::uuid[]`, `::bigint[]`) does to each element of the `text[]`, done
/// once per statement instead of once per row.
///
/// # Safety
/// `array_type` is an array type; called inside a transaction.
unsafe fn typed_array(ids: &[&[u8]], array_type: pg_sys::Oid) -> pg_sys::Datum {
    // SAFETY: catalog look-ups of an existing type and its input function,
    // called as PostgreSQL's own I/O coercion calls it; the C strings live
    // until the calls return; construct_array copies the elements.
    unsafe {
        let elem = pg_sys::get_element_type(array_type);
        if elem == pg_sys::InvalidOid {
            crate::error::internal(format!(
                "tenant array of type {array_type:?}, not an array type"
            ));
        }
        let (mut input, mut ioparam) = (pg_sys::InvalidOid, pg_sys::InvalidOid);
        pg_sys::getTypeInputInfo(elem, &mut input, &mut ioparam);
        let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
        pg_sys::get_typlenbyvalalign(elem, &mut len, &mut byval, &mut align);
        let mut finfo = pg_sys::FmgrInfo::default();
        pg_sys::fmgr_info(input, &mut finfo);
        let mut datums: Vec<pg_sys::Datum> = Vec::with_capacity(ids.len());
        for id in ids {
            let c = CString::new(*id)
                .unwrap_or_else(|_| crate::error::internal("a tenant id holds a NUL byte"));
            datums.push(pg_sys::InputFunctionCall(
                &mut finfo,
                c.as_ptr().cast_mut(),
                ioparam,
                -1,
            ));
        }
        pg_sys::Datum::from(pg_sys::construct_array(
            datums.as_mut_ptr(),
            datums.len() as i32,
            elem,
            len.into(),
            byval,
            align,
        ))
    }
}

/// `tenant_guard.visible_tenants() RETURNS text[]`: the tenants the current
/// context may read; the read rule of the policies `protect` generates
/// (`tenant = ANY (tenant_guard.visible_tenants())`). Without a context: an
/// error (42501) or, with `tenant_guard.missing_context = empty`, an empty
/// array. A plain V1 C function (declared in `sql/bootstrap.sql`): it runs
/// for every scan of a protected table, so it skips pgrx's argument and
/// result machinery.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn tg_visible_tenants(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL passes this call's valid fcinfo.
    unsafe { tenant_array(fcinfo, false) }
}

/// `tenant_guard.writable_tenants() RETURNS text[]`: the tenants the current
/// context may write; the write rule of the generated policies.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn tg_writable_tenants(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL passes this call's valid fcinfo.
    unsafe { tenant_array(fcinfo, true) }
}

/// What `tenant_member` keeps for one calling expression (owned by its
/// `fn_mcxt`, dropped with it).
struct MemberCache {
    /// A zero-argument call of `tenant_array` whose FmgrInfo (`fn_extra`:
    /// the [`ArrayCache`]) and `fn_expr` (a FuncExpr giving the column's
    /// array type) are this expression's own, in `fn_mcxt`.
    call: pg_sys::FunctionCallInfo,
    /// The array the set was read from (`0`: none kept). Only an array
    /// kept by `tenant_array` under its key is remembered: it is never freed
    /// before the expression, so an address names one array.
    array: pg_sys::Datum,
    /// The statement (and context) for which `set` holds the images of the
    /// registry set the key ring keeps (see [`kept_images`]).
    shared: Option<ArrayKey>,
    /// The statement (and context) for which [`kept_images`] was last
    /// asked, whatever it answered: asked once per statement, not once per
    /// row where the answer is no (a parallel worker, which cannot keep
    /// the key ring, would otherwise load the ring for every row).
    asked: Option<ArrayKey>,
    elem: pg_sys::Oid,
    typlen: i16,
    typbyval: bool,
    typalign: std::ffi::c_char,
    /// How values are compared: by their bytes, or by the type's functions.
    set: MemberSet,
    /// The element type's equality and hash functions (its default hash
    /// operator class): what the rewritten rule's `=` is (`scan`). Used
    /// where equality is not equality of bytes.
    eq: pg_sys::FmgrInfo,
    hash: pg_sys::FmgrInfo,
}

/// A set of tenants, in the column's type.
enum MemberSet {
    /// Where two values are equal exactly when their bytes are (see
    /// [`image_equality`]): each element's bytes, compared without calling
    /// PostgreSQL.
    Images(Rc<ImageSet>),
    /// Otherwise: the elements (pointing into the kept array), and their
    /// positions by the type's hash, for more than [`LINEAR_MAX`] elements.
    Values {
        elems: Vec<pg_sys::Datum>,
        index: Option<HashMap<u32, Vec<u32>>>,
    },
}

/// Element images: a list, or hashed for more than [`LINEAR_MAX`].
enum ImageSet {
    Few(Vec<Box<[u8]>>),
    /// Hashed with the standard library's keyed hash (random keys per
    /// process): a registry's ids are the application's, which could pick
    /// ids that collide under a fixed hash. Short images are kept in the
    /// table itself, so a look-up reads one place in memory, not a table
    /// entry and then the bytes it points to; and as small as their length
    /// allows, so a set of 100,000 tenants stays within the processor's
    /// caches as far as it can (a filter looks up every row, in no order):
    /// up to 8 bytes (integers, `oid`, short text ids) as one word and up
    /// to 16 (`uuid`) as two, in the set of their length (so `ab` and
    /// `ab\0` stay apart), up to [`INLINE_MAX`] in a fixed-size slot.
    Many {
        /// Images of 0 to 8 bytes, zero-padded, by length.
        words: Vec<HashSet<u64>>,
        /// Images of 9 to 16 bytes, zero-padded, by length less 9.
        pairs: Vec<HashSet<u128>>,
        short: HashSet<Inline>,
        long: HashSet<Box<[u8]>>,
    },
}

/// Up to this many bytes an image is kept inline.
const INLINE_MAX: usize = 23;

/// An image of at most [`INLINE_MAX`] bytes, zero-padded, and its length.
#[derive(PartialEq, Eq, Hash)]
struct Inline([u8; INLINE_MAX + 1]);

impl Inline {
    fn of(image: &[u8]) -> Option<Inline> {
        (image.len() <= INLINE_MAX).then(|| {
            let mut b = padded::<{ INLINE_MAX + 1 }>(image);
            b[INLINE_MAX] = image.len() as u8;
            Inline(b)
        })
    }
}

/// `image` (at most `N` bytes) followed by zeros, `N` bytes in all.
fn padded<const N: usize>(image: &[u8]) -> [u8; N] {
    let mut b = [0u8; N];
    b[..image.len()].copy_from_slice(image);
    b
}

/// An image of at most 8 bytes as a zero-padded word.
fn word(image: &[u8]) -> u64 {
    u64::from_ne_bytes(padded(image))
}

/// An image of at most 16 bytes as a zero-padded double word.
fn pair(image: &[u8]) -> u128 {
    u128::from_ne_bytes(padded(image))
}

impl ImageSet {
    fn of(images: Vec<Box<[u8]>>) -> ImageSet {
        if images.len() <= LINEAR_MAX {
            return ImageSet::Few(images);
        }
        // Sized first: a set grown by doubling would be built several times.
        let mut counts = [0usize; 17];
        for i in &images {
            if i.len() <= 16 {
                counts[i.len()] += 1;
            }
        }
        let mut words: Vec<HashSet<u64>> = counts[..9]
            .iter()
            .map(|&n| HashSet::with_capacity(n))
            .collect();
        let mut pairs: Vec<HashSet<u128>> = counts[9..]
            .iter()
            .map(|&n| HashSet::with_capacity(n))
            .collect();
        let mut short = HashSet::new();
        let mut long = HashSet::new();
        for i in images {
            match i.len() {
                n @ 0..=8 => {
                    words[n].insert(word(&i));
                }
                n @ 9..=16 => {
                    pairs[n - 9].insert(pair(&i));
                }
                _ => match Inline::of(&i) {
                    Some(k) => {
                        short.insert(k);
                    }
                    None => {
                        long.insert(i);
                    }
                },
            }
        }
        ImageSet::Many {
            words,
            pairs,
            short,
            long,
        }
    }

    fn contains(&self, image: &[u8]) -> bool {
        match self {
            ImageSet::Few(v) => v.iter().any(|e| **e == *image),
            ImageSet::Many {
                words,
                pairs,
                short,
                long,
            } => match image.len() {
                n @ 0..=8 => words[n].contains(&word(image)),
                n @ 9..=16 => pairs[n - 9].contains(&pair(image)),
                _ => match Inline::of(image) {
                    Some(k) => short.contains(&k),
                    None => long.contains(image),
                },
            },
        }
    }
}

/// Up to this many tenants are compared one by one (as PostgreSQL does
/// for constant arrays of fewer than nine elements).
const LINEAR_MAX: usize = 8;

/// Whether values of `elem` compared under `collation` are equal (by the
/// type's default equality) exactly when their bytes are: the built-in
/// types tenant ids are kept in (integers, `oid`, `uuid`, enums), and
/// `text`/`varchar` under a deterministic collation. Not `numeric` (`1.0 =
/// 1.00`), `char(n)` (trailing blanks), nondeterministic collations or
/// anything user-defined: those are compared with the type's functions.
///
/// # Safety
/// Called inside a transaction; `elem` is an existing type.
unsafe fn image_equality(elem: pg_sys::Oid, collation: pg_sys::Oid) -> bool {
    // SAFETY: catalog look-ups of an existing type and collation.
    unsafe {
        match elem {
            pg_sys::INT2OID
            | pg_sys::INT4OID
            | pg_sys::INT8OID
            | pg_sys::OIDOID
            | pg_sys::UUIDOID => true,
            pg_sys::TEXTOID | pg_sys::VARCHAROID => {
                collation != pg_sys::InvalidOid && pg_sys::get_collation_isdeterministic(collation)
            }
            _ => pg_sys::type_is_enum(elem),
        }
    }
}

/// Whether the context may read (or write) the tenant `value`, a value of
/// the argument's type: `value = ANY (tenant_guard.visible_tenants()::T[])`
/// with the type's own equality, where the set is searched through a hash
/// once it has more than eight tenants. The planner puts this call in
/// place of the policies' rule where the rule is a filter (`scan`'s
/// `hash_tenant_filters`): a sequential scan under a 1,000-tenant context,
/// or under a bypass context reading the registry, looks each row up in a
/// hash instead of comparing it with every tenant. The set is the one
/// `visible_tenants()` gives (built once per statement, rebuilt when the
/// context changes); it is read into the hash once per set. Where equality
/// is equality of bytes ([`image_equality`]), a row is compared without a
/// call back into PostgreSQL.
///
/// # Safety
/// `fcinfo` is the call's valid `FunctionCallInfo`, with one non-NULL
/// argument (the function is strict).
unsafe fn tenant_member(fcinfo: pg_sys::FunctionCallInfo, writable: bool) -> pg_sys::Datum {
    // SAFETY: fcinfo is valid (caller); flinfo and fn_expr are the
    // executor's (or fmgr's) for this expression; fn_extra is NULL or the
    // MemberCache this function leaked into fn_mcxt.
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        if flinfo.is_null() || (*flinfo).fn_expr.is_null() {
            crate::error::internal("tenant_guard.is_visible() called without its expression");
        }
        let collation = (*fcinfo).fncollation;
        let mut cache = (*flinfo).fn_extra as *mut MemberCache;
        if cache.is_null() {
            cache = member_cache(flinfo, collation);
            (*flinfo).fn_extra = cache.cast();
        }
        let c = &mut *cache;
        let value = (*fcinfo).args.as_slice(1)[0].value;
        if matches!(c.set, MemberSet::Images(_)) && !planning() {
            let key = array_key();
            if c.asked != Some(key) {
                c.asked = Some(key);
                c.shared = None;
                if let Some(set) = kept_images(c, writable, collation) {
                    c.set = MemberSet::Images(set);
                    c.array = pg_sys::Datum::from(0usize);
                    c.shared = Some(key);
                }
            }
            if c.shared.is_some() {
                return pg_sys::Datum::from(c.contains(value, collation));
            }
        }
        let array = tenant_array(c.call, writable);
        let kept = {
            let extra = (*(*c.call).flinfo).fn_extra;
            !extra.is_null()
                && extra != called_once()
                && (*(extra as *const ArrayCache)).array == array
        };
        if !kept || array != c.array {
            c.load(array, collation);
            c.array = if kept {
                array
            } else {
                pg_sys::Datum::from(0usize)
            };
        }
        let found = c.contains(value, collation);
        if !kept {
            // A set not kept (the first call of a one-tenant context, or
            // while planning) lives in the caller's memory: not read again.
            if let MemberSet::Values { elems, index } = &mut c.set {
                elems.clear();
                *index = None;
            }
        }
        pg_sys::Datum::from(found)
    }
}

/// The images of the registry set the key ring keeps, for (the set itself,
/// compared by address, the element type, the collation).
type KeptImages = (Rc<Vec<String>>, pg_sys::Oid, pg_sys::Oid, Rc<ImageSet>);

thread_local! {
    /// [`KeptImages`], shared by every statement of the session until the
    /// ring drops the set.
    static KEPT_IMAGES: RefCell<Option<KeptImages>> = const { RefCell::new(None) };
}

/// For a bypass context reading a registry whose set the key ring keeps
/// (`bypass_set_kept`), that set's images in `c`'s type: hashed once for
/// the session, not once per statement. `None` otherwise (another context,
/// one no longer valid, an unwatched registry): `tenant_member` then reads
/// the statement's array. Called once per statement and expression; the
/// context is checked as `tenant_array` checks it.
///
/// # Safety
/// `c` is a valid MemberCache comparing images.
unsafe fn kept_images(
    c: &mut MemberCache,
    writable: bool,
    collation: pg_sys::Oid,
) -> Option<Rc<ImageSet>> {
    let value = context_value()?;
    if !context_valid(&value) || simple_tenant(value.to_bytes()).is_some() {
        return None;
    }
    let scope = scope()?;
    if !scope.bypass || (writable && current_tenant().is_some()) {
        return None;
    }
    let (set, kept) = bypass_set_kept();
    if !kept {
        return None;
    }
    let hit = KEPT_IMAGES.with(|k| {
        k.borrow()
            .as_ref()
            .filter(|(s, elem, coll, _)| {
                Rc::ptr_eq(s, &set) && *elem == c.elem && *coll == collation
            })
            .map(|(_, _, _, images)| images.clone())
    });
    if hit.is_some() {
        return hit;
    }
    // SAFETY: c.call is this expression's inner call (member_cache); the
    // array it returns (the same kept set, in c's type) is valid for the
    // statement, and load copies the images.
    unsafe {
        let array = tenant_array(c.call, writable);
        c.load(array, collation);
    }
    let MemberSet::Images(images) = &c.set else {
        return None;
    };
    let images = images.clone();
    KEPT_IMAGES.with(|k| *k.borrow_mut() = Some((set, c.elem, collation, images.clone())));
    Some(images)
}

/// Builds the [`MemberCache`] of an expression calling `tenant_member`
/// with an argument of some type: the inner call gets that type's array as
/// its result type (`text[]` for `text`).
///
/// # Safety
/// `flinfo` is a valid FmgrInfo with an `fn_expr`.
unsafe fn member_cache(flinfo: *mut pg_sys::FmgrInfo, collation: pg_sys::Oid) -> *mut MemberCache {
    // SAFETY: catalog look-ups of the argument's (existing) type; palloc0
    // in fn_mcxt of a FmgrInfo and a zero-argument FunctionCallInfo, both
    // fully initialised before use; fmgr_info_cxt fills the FmgrInfos.
    unsafe {
        let mcxt = (*flinfo).fn_mcxt;
        let arg_type = pg_sys::getBaseType(pg_sys::get_fn_expr_argtype(flinfo, 0));
        let array_type = if arg_type == pg_sys::TEXTOID {
            pg_sys::TEXTARRAYOID
        } else {
            pg_sys::get_array_type(arg_type)
        };
        let tce = pg_sys::lookup_type_cache(
            arg_type,
            (pg_sys::TYPECACHE_EQ_OPR | pg_sys::TYPECACHE_HASH_PROC) as i32,
        );
        if array_type == pg_sys::InvalidOid
            || tce.is_null()
            || (*tce).eq_opr == pg_sys::InvalidOid
            || (*tce).hash_proc == pg_sys::InvalidOid
        {
            Failure::new(
                Code::ERRCODE_UNDEFINED_FUNCTION,
                "tenant ids cannot be compared with values of this type",
            )
            .detail("the type needs a default hash operator class")
            .raise()
        }
        let old = pg_sys::MemoryContextSwitchTo(mcxt);
        let inner =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::FmgrInfo>()) as *mut pg_sys::FmgrInfo;
        (*inner).fn_mcxt = mcxt;
        (*inner).fn_oid = (*flinfo).fn_oid;
        (*inner).fn_expr = pg_sys::makeFuncExpr(
            (*flinfo).fn_oid,
            array_type,
            std::ptr::null_mut(),
            pg_sys::InvalidOid,
            pg_sys::InvalidOid,
            pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
        )
        .cast();
        let call = pg_sys::palloc0(std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>())
            as pg_sys::FunctionCallInfo;
        (*call).flinfo = inner;
        (*call).fncollation = pg_sys::InvalidOid;
        pg_sys::MemoryContextSwitchTo(old);
        let (mut typlen, mut typbyval, mut typalign) = (0i16, false, 0 as std::ffi::c_char);
        pg_sys::get_typlenbyvalalign(arg_type, &mut typlen, &mut typbyval, &mut typalign);
        let mut eq = pg_sys::FmgrInfo::default();
        pg_sys::fmgr_info_cxt(pg_sys::get_opcode((*tce).eq_opr), &mut eq, mcxt);
        let mut hash = pg_sys::FmgrInfo::default();
        pg_sys::fmgr_info_cxt((*tce).hash_proc, &mut hash, mcxt);
        let set = if image_equality(arg_type, collation) {
            MemberSet::Images(Rc::new(ImageSet::Few(Vec::new())))
        } else {
            MemberSet::Values {
                elems: Vec::new(),
                index: None,
            }
        };
        let cache = MemberCache {
            call,
            array: pg_sys::Datum::from(0usize),
            shared: None,
            asked: None,
            elem: arg_type,
            typlen,
            typbyval,
            typalign,
            set,
            eq,
            hash,
        };
        pgrx::PgMemoryContexts::For(mcxt).leak_and_drop_on_delete(cache)
    }
}

impl MemberCache {
    /// Reads the elements of `array` (an array of `self.elem`, no NULLs):
    /// their images, or the values and (for more than [`LINEAR_MAX`]) their
    /// hashes under `collation`, the expression's.
    ///
    /// # Safety
    /// `array` is a valid array datum of `self.elem` that outlives the use
    /// of the values kept (images are copies).
    unsafe fn load(&mut self, array: pg_sys::Datum, collation: pg_sys::Oid) {
        // SAFETY: per the caller; deconstruct_array's output is palloc'd in
        // the current context, copied and freed here; the element datums
        // point into `array`, and are uncompressed (an array built by
        // `tenant_array`).
        unsafe {
            let arr = array.cast_mut_ptr::<pg_sys::ArrayType>();
            let mut values: *mut pg_sys::Datum = std::ptr::null_mut();
            let mut n: i32 = 0;
            pg_sys::deconstruct_array(
                arr,
                self.elem,
                self.typlen.into(),
                self.typbyval,
                self.typalign,
                &mut values,
                std::ptr::null_mut(),
                &mut n,
            );
            let elems: Vec<pg_sys::Datum> = if n > 0 && !values.is_null() {
                std::slice::from_raw_parts(values, n as usize).to_vec()
            } else {
                Vec::new()
            };
            if !values.is_null() {
                pg_sys::pfree(values.cast());
            }
            let (typlen, typbyval) = (self.typlen, self.typbyval);
            match &mut self.set {
                MemberSet::Images(set) => {
                    let images = elems
                        .iter()
                        .map(|&e| {
                            image(e, typlen, typbyval, &mut [0; 8])
                                .map(Box::<[u8]>::from)
                                .unwrap_or_else(|| {
                                    crate::error::internal("a tenant array element is compressed")
                                })
                        })
                        .collect();
                    *set = Rc::new(ImageSet::of(images));
                }
                MemberSet::Values { elems: kept, index } => {
                    *index = None;
                    if elems.len() > LINEAR_MAX {
                        let hash = &raw mut self.hash;
                        let mut by_hash: HashMap<u32, Vec<u32>> =
                            HashMap::with_capacity(elems.len());
                        for (i, e) in elems.iter().enumerate() {
                            // Hashed with the comparison's collation, as the
                            // values looked up are: under a nondeterministic
                            // collation, values it calls equal hash alike.
                            let h = pg_sys::FunctionCall1Coll(hash, collation, *e).value() as u32;
                            by_hash.entry(h).or_default().push(i as u32);
                        }
                        *index = Some(by_hash);
                    }
                    *kept = elems;
                }
            }
        }
    }

    /// Whether `value` equals an element.
    ///
    /// # Safety
    /// `value` is a valid datum of `self.elem`; the values kept are valid.
    unsafe fn contains(&mut self, value: pg_sys::Datum, collation: pg_sys::Oid) -> bool {
        // SAFETY: the type's own equality and hash functions, called on
        // values of that type; a compressed or external value is expanded
        // by PostgreSQL (pg_detoast_datum_packed) before its bytes are read.
        unsafe {
            let (typlen, typbyval) = (self.typlen, self.typbyval);
            let mut word = [0u8; 8];
            match &self.set {
                MemberSet::Images(set) => match image(value, typlen, typbyval, &mut [0; 8]) {
                    Some(bytes) => set.contains(bytes),
                    None => {
                        let flat = pg_sys::pg_detoast_datum_packed(value.cast_mut_ptr());
                        let bytes = image(pg_sys::Datum::from(flat), typlen, typbyval, &mut word)
                            .unwrap_or_else(|| {
                                crate::error::internal("a detoasted value is compressed")
                            });
                        set.contains(bytes)
                    }
                },
                MemberSet::Values { elems, index } => {
                    let eq = &raw mut self.eq;
                    let equal = |e: pg_sys::Datum| {
                        pg_sys::FunctionCall2Coll(eq, collation, value, e).value() != 0
                    };
                    match index {
                        Some(index) => {
                            let h = pg_sys::FunctionCall1Coll(&raw mut self.hash, collation, value)
                                .value() as u32;
                            index
                                .get(&h)
                                .is_some_and(|at| at.iter().any(|&i| equal(elems[i as usize])))
                        }
                        None => elems.iter().any(|&e| equal(e)),
                    }
                }
            }
        }
    }
}

/// The bytes that make `value` what it is, for a type whose equality is
/// equality of bytes: a by-value datum's `typlen` low-order bytes (in
/// `word`), a fixed-length value's bytes, a varlena's data without its
/// header. `None` for a compressed or external (TOASTed) varlena, whose
/// bytes must be expanded first.
///
/// # Safety
/// `value` is a valid datum of a type of length `typlen`, by value or not.
unsafe fn image(
    value: pg_sys::Datum,
    typlen: i16,
    typbyval: bool,
    word: &mut [u8; 8],
) -> Option<&[u8]> {
    if typbyval {
        let len = usize::try_from(typlen).unwrap_or(8).clamp(1, 8);
        let v = value.value() as u64;
        let masked = if len == 8 {
            v
        } else {
            v & ((1u64 << (8 * len)) - 1)
        };
        *word = masked.to_le_bytes();
        return Some(&word[..len]);
    }
    // SAFETY: per the caller: a by-reference datum points to `typlen` bytes,
    // or to a varlena whose header says how many bytes follow.
    unsafe {
        let ptr = value.cast_mut_ptr::<u8>();
        if typlen > 0 {
            return Some(std::slice::from_raw_parts(ptr, typlen as usize));
        }
        let v = ptr as *const pg_sys::varlena;
        if pgrx::varlena::varatt_is_1b_e(v)
            || !(pgrx::varlena::varatt_is_1b(v) || pgrx::varlena::varatt_is_4b_u(v))
        {
            return None;
        }
        Some(std::slice::from_raw_parts(
            pgrx::varlena::vardata_any(v).cast(),
            pgrx::varlena::varsize_any_exhdr(v),
        ))
    }
}

/// `tenant_guard.is_visible(anyelement) RETURNS boolean`: whether the
/// current context may read the tenant given (see [`tenant_member`]).
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn tg_is_visible(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: PostgreSQL passes this call's valid fcinfo (strict: one
    // non-NULL argument).
    unsafe { tenant_member(fcinfo, false) }
}

/// `tenant_guard.is_writable(anyelement) RETURNS boolean`: whether the
/// current context may write the tenant given.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn tg_is_writable(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: as tg_is_visible.
    unsafe { tenant_member(fcinfo, true) }
}

#[no_mangle]
pub extern "C" fn pg_finfo_tg_is_visible() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[no_mangle]
pub extern "C" fn pg_finfo_tg_is_writable() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[no_mangle]
pub extern "C" fn pg_finfo_tg_visible_tenants() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[no_mangle]
pub extern "C" fn pg_finfo_tg_writable_tenants() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn image_sets_find_exactly_their_members() {
        let ids = |r: std::ops::Range<u32>, pad: usize| -> Vec<Box<[u8]>> {
            r.map(|i| format!("s{i:0pad$}").into_bytes().into_boxed_slice())
                .collect()
        };
        // Images of every size class: one word (up to 8 bytes), two (9 to
        // 16), a fixed slot (17 to 23), a box; each boundary from both
        // sides.
        for (set, pad) in [
            (0..5, 6),
            (0..5000, 6),
            (0..300, 40),
            (0..50, 7),
            (0..50, 8),
            (0..50, 15),
            (0..50, 16),
            (0..50, 22),
            (0..50, 23),
        ] {
            let members = ids(set.clone(), pad);
            let s = ImageSet::of(members.clone());
            assert_eq!(matches!(s, ImageSet::Few(_)), members.len() <= LINEAR_MAX);
            for m in &members {
                assert!(s.contains(m));
            }
            let outside = ids(set.end..set.end + 50, pad);
            assert!(outside.iter().all(|o| !s.contains(o)));
            // A member's prefix or extension is not a member.
            let m = &members[0];
            assert!(!s.contains(&m[..m.len() - 1]));
            let mut longer = m.to_vec();
            longer.push(0);
            assert!(!s.contains(&longer));
        }
        assert!(!ImageSet::of(Vec::new()).contains(b""));
        // Zero-padding does not make images of different lengths equal:
        // `ab`, `ab\0`, `ab\0\0` and their 9- and 16-byte kin are
        // distinct members, and the empty image is one too.
        let mut kin: Vec<Box<[u8]>> = Vec::new();
        for n in [0usize, 1, 2, 3, 4, 8, 9, 10, 16, 17, 24] {
            let mut v = vec![0u8; n];
            if n >= 2 {
                v[..2].copy_from_slice(b"ab");
            }
            kin.push(v.into_boxed_slice());
        }
        for skip in 0..kin.len() {
            let mut members = kin.clone();
            let missing = members.remove(skip);
            let s = ImageSet::of(members.clone());
            assert!(matches!(s, ImageSet::Many { .. }));
            assert!(members.iter().all(|m| s.contains(m)));
            assert!(!s.contains(&missing), "{missing:?}");
        }
    }

    #[test]
    fn by_value_images_keep_the_type_length() {
        // SAFETY: by-value datums: no memory is read.
        unsafe {
            let mut w = [0u8; 8];
            // int4 -1 as PostgreSQL stores it in a Datum (sign-extended):
            // the four bytes of the value.
            let d = pg_sys::Datum::from(-1i64 as usize);
            assert_eq!(
                image(d, 4, true, &mut w),
                Some(&[0xff, 0xff, 0xff, 0xff][..])
            );
            let d = pg_sys::Datum::from(0x0102_0304_0506_0708usize);
            assert_eq!(
                image(d, 8, true, &mut w),
                Some(&[8, 7, 6, 5, 4, 3, 2, 1][..])
            );
            assert_eq!(image(d, 2, true, &mut w), Some(&[8, 7][..]));
        }
    }

    #[test]
    fn distinct_tenants_keep_order_and_drop_repeats() {
        let rest = ["b", "a", "c", "b", "a"];
        assert_eq!(
            distinct_tenants(Some("a"), rest.into_iter()),
            vec!["a", "b", "c"]
        );
        assert_eq!(
            distinct_tenants(None, rest.into_iter()),
            vec!["b", "a", "c"]
        );
        assert!(distinct_tenants(None, std::iter::empty()).is_empty());
        // Linear: ten thousand tenants, each twice.
        let many: Vec<String> = (0..20_000).map(|i| format!("t{}", i % 10_000)).collect();
        let out = distinct_tenants(Some("x"), many.iter().map(String::as_str));
        assert_eq!(out.len(), 10_001);
        assert_eq!(out[1], "t0");
    }

    #[test]
    fn bypass_values_are_recognised() {
        let bypass = pack("", "{\"kid\":\"k\",\"bypass\":true}", "{}", Mark::Bypass);
        let bypass_tenant = pack(
            "acme",
            "{\"kid\":\"k\",\"bypass\":true}",
            "{}",
            Mark::Bypass,
        );
        let multi = pack(
            "acme",
            "{\"kid\":\"k\",\"read\":[\"acme\",\"b\"]}",
            "{}",
            Mark::Scoped,
        );
        let simple = pack("acme", "{\"kid\":\"k\"}", "{}", Mark::Simple);
        assert!(is_bypass_value(bypass.as_bytes()));
        assert!(is_bypass_value(bypass_tenant.as_bytes()));
        assert!(!is_bypass_value(multi.as_bytes()));
        assert!(!is_bypass_value(simple.as_bytes()));
        assert!(!is_bypass_value(b""));
        // Only the mark is read: a bypass scope behind another mark is not
        // one here (the assign hook leaves the role if it is the current
        // user; only a superuser can write such a value), and neither is a
        // value cut short after the mark.
        assert!(!is_bypass_value(b"\x1fs\x1f{\"bypass\":true}\x1f{}"));
        assert!(!is_bypass_value(b"\x1f\x1f{\"bypass\":true}\x1f{}"));
        assert!(!is_bypass_value(b"acme\x1fb"));
        assert!(!is_bypass_value(b"b\x1f\x1f{}\x1f{}"));
        assert!(!is_bypass_value(&[0xff, 0xfe]));
        // The mark is what packed_value writes for a bypass token.
        assert_eq!(unpack(&bypass).1, "{\"kid\":\"k\",\"bypass\":true}");
        assert_eq!(bypass.split('\u{1f}').nth(1), Some("b"));
        assert_eq!(multi.split('\u{1f}').nth(1), Some("s"));
    }

    #[test]
    fn pack_and_unpack() {
        let v = pack(
            "acme",
            "{\"kid\":\"k\"}",
            "{\"tenant_id\":\"acme\"}",
            Mark::Simple,
        );
        assert_eq!(
            unpack(&v),
            ("acme", "{\"kid\":\"k\"}", "{\"tenant_id\":\"acme\"}")
        );
        assert_eq!(simple_tenant(v.as_bytes()), Some(&b"acme"[..]));
        assert_eq!(unpack(""), ("", "", ""));
        assert_eq!(simple_tenant(b""), None);
        // A read set: not the fast path.
        let v = pack(
            "acme",
            "{\"kid\":\"k\",\"read\":[\"acme\",\"b\"]}",
            "{}",
            Mark::Scoped,
        );
        assert_eq!(simple_tenant(v.as_bytes()), None);
        assert_eq!(unpack(&v).0, "acme");
        // A bypass token without a tenant.
        let v = pack("", "{\"kid\":\"k\",\"bypass\":true}", "{}", Mark::Bypass);
        assert_eq!(unpack(&v).0, "");
        assert_eq!(simple_tenant(v.as_bytes()), None);
        // JSON escapes the separator, so claims holding it survive.
        let claims = serde_json::json!({"x": "a\u{1f}b"}).to_string();
        assert!(!claims.contains('\u{1f}'));
        assert_eq!(unpack(&pack("t", "{}", &claims, Mark::Simple)).2, claims);
    }
    fn key(kid: &str, expires_at: Option<f64>) -> token::Key {
        token::Key {
            kid: kid.into(),
            alg: token::Alg::Hs256,
            secret: vec![0; 32],
            expires_at,
            issuer: None,
        }
    }

    #[test]
    fn facts_from_packed_values() {
        // The simple case: kid from the scope, exp from the claims.
        let v = pack(
            "acme",
            "{\"kid\":\"k1\"}",
            "{\"tenant_id\":\"acme\",\"exp\":1700000000}",
            Mark::Simple,
        );
        assert_eq!(
            facts_of(&v),
            Facts {
                kid: "k1".into(),
                exp: Some(1_700_000_000.0),
                tenants: vec!["acme".into()],
                revocable: Default::default(),
                issuer: None,
                as_claimed: false,
                made_by: None,
                bypass: false,
            }
        );
        // A read set: the tenant first, then the others, once each.
        let v = pack(
            "a",
            "{\"kid\":\"k\",\"read\":[\"b\",\"a\",\"c\"]}",
            "{}",
            Mark::Scoped,
        );
        assert_eq!(facts_of(&v).tenants, ["a", "b", "c"]);
        assert!(!facts_of(&v).bypass);
        assert_eq!(facts_of(&v).exp, None);
        // A bypass read set is not re-checked, its tenant is.
        let v = pack(
            "a",
            "{\"kid\":\"k\",\"read\":[\"a\",\"b\"],\"bypass\":true}",
            "{}",
            Mark::Bypass,
        );
        assert_eq!(facts_of(&v).tenants, ["a"]);
        assert!(facts_of(&v).bypass);
        let v = pack(
            "",
            "{\"kid\":\"k\",\"read\":[\"a\",\"b\"],\"bypass\":true}",
            "{}",
            Mark::Bypass,
        );
        assert!(facts_of(&v).tenants.is_empty());
        // A value that does not parse has no kid: no key matches it.
        assert_eq!(facts_of("garbage").kid, "");
        assert_eq!(
            lapsed(&facts_of("garbage"), &[key("k", None)], 0.0, 0.0).as_deref(),
            Some("key \"\" has been retired")
        );
    }

    #[test]
    fn lapsed_contexts() {
        let f = Facts {
            kid: "k".into(),
            exp: Some(1000.0),
            tenants: vec!["t".into()],
            revocable: Default::default(),
            issuer: None,
            as_claimed: false,
            made_by: None,
            bypass: false,
        };
        let keys = [key("k", Some(2000.0)), key("other", None)];
        assert_eq!(lapsed(&f, &keys, 999.0, 0.0), None);
        // exp is inclusive, as in the verifier; leeway extends it.
        assert_eq!(lapsed(&f, &keys, 1000.0, 0.0), None);
        assert!(lapsed(&f, &keys, 1000.5, 0.0)
            .unwrap()
            .starts_with("the token expired at 1970-01-01 00:16:40"));
        assert_eq!(lapsed(&f, &keys, 1020.0, 30.0), None);
        // The key: retired (not in the ring) or expired (exclusive).
        let retired = lapsed(&f, &keys[1..], 0.0, 0.0).unwrap();
        assert_eq!(retired, "key \"k\" has been retired");
        let f2 = Facts {
            exp: None,
            ..f.clone()
        };
        assert_eq!(lapsed(&f2, &keys, 1999.0, 0.0), None);
        assert!(lapsed(&f2, &keys, 2000.0, 0.0)
            .unwrap()
            .starts_with("key \"k\" expired at "));
        // Without exp (require_exp off) only the key limits it.
        assert_eq!(lapsed(&f2, &[key("k", None)], 1e12, 0.0), None);
        // A kid from the value is clipped in the message.
        let long = Facts {
            kid: "x".repeat(100),
            exp: None,
            tenants: vec![],
            revocable: Default::default(),
            issuer: None,
            as_claimed: false,
            made_by: None,
            bypass: false,
        };
        assert!(lapsed(&long, &[], 0.0, 0.0).unwrap().len() < 100);
        // Verified under an issuer's rules: they must be the same rules now.
        let rules = |aud: &str| {
            Some(std::sync::Arc::new(token::Issuer {
                name: "https://idp.example".into(),
                audience: Some(aud.into()),
                ..Default::default()
            }))
        };
        let mut idp = key("k", None);
        idp.issuer = rules("api");
        let f3 = Facts {
            issuer: Some(rules("api")),
            ..f2.clone()
        };
        assert_eq!(lapsed(&f3, std::slice::from_ref(&idp), 0.0, 0.0), None);
        idp.issuer = rules("api-v2");
        assert_eq!(
            lapsed(&f3, std::slice::from_ref(&idp), 0.0, 0.0).as_deref(),
            Some("the rules of issuer \"https://idp.example\" changed since it was verified")
        );
        // A key that had no issuer and has none: unchanged.
        let f4 = Facts {
            issuer: Some(None),
            ..f2.clone()
        };
        assert_eq!(lapsed(&f4, &[key("k", None)], 0.0, 0.0), None);
    }

    #[test]
    fn registry_checks_once_per_statement() {
        let t1 = (7, 10);
        let s1 = (t1, 11);
        // Not set here (a worker's copy, a restored value): every statement.
        assert!(registry_due(None, s1));
        // Not again in the statement that set it...
        assert!(!registry_due(Some((s1, false)), s1));
        assert!(!registry_due(Some((s1, true)), s1));
        // ...a session context at the next statement, same transaction or not...
        assert!(registry_due(Some((s1, false)), (t1, 12)));
        assert!(registry_due(Some((s1, false)), ((8, 20), 21)));
        // ...a transaction-local one not before its transaction ends.
        assert!(!registry_due(Some((s1, true)), (t1, 12)));
        assert!(registry_due(Some((s1, true)), ((8, 20), 21)));
        // Two transactions sent in one message share their timestamps, not
        // their local transaction id.
        assert!(registry_due(Some((s1, true)), ((8, 10), 11)));
        assert!(registry_due(Some((s1, false)), ((8, 10), 11)));
    }

    #[test]
    fn token_hasher_reads_the_length_and_the_tail() {
        use std::hash::BuildHasher;
        let b = std::hash::BuildHasherDefault::<TailHasher>::default();
        let head = "eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiJhY21lIn0.";
        let sig = "c2lnbmF0dXJlLW9mLXRoZS10b2tlbi13aXRoLTMyLWJ5dGVz";
        // Equal tails and lengths hash alike, whatever comes before.
        let other = format!("{}{sig}", "X".repeat(head.len()));
        assert_eq!(b.hash_one(format!("{head}{sig}")), b.hash_one(&other));
        // A different length, or a different byte in the last 32: not alike.
        assert_ne!(
            b.hash_one(format!("{head}{sig}")),
            b.hash_one(format!("{head}x{sig}"))
        );
        let mut changed = format!("{head}{sig}").into_bytes();
        let n = changed.len();
        changed[n - 32] ^= 1;
        assert_ne!(
            b.hash_one(format!("{head}{sig}")),
            b.hash_one(String::from_utf8(changed).unwrap())
        );
        // Tails like signatures (here: numbered) spread over the low bits
        // hashbrown indexes by and the top seven it tags with.
        let hashes: Vec<u64> = (0..4096u32)
            .map(|i| b.hash_one(format!("{head}{:032x}", u128::from(i) * 0x9e37_79b9)))
            .collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 4095).collect();
        let top: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(low.len() > 2400, "{} of 4096 low-bit values", low.len());
        assert_eq!(top.len(), 128);
    }

    #[test]
    fn lru_finds_keys_that_share_a_tail() {
        // Keys alike in their hash (same length and last 32 bytes) are told
        // apart by comparison.
        let mut c: Lru<u32> = Lru::new(1 << 20, 100);
        let tail = "s".repeat(40);
        for i in 0..50u32 {
            c.insert(format!("{i:04}{tail}"), i, 10);
        }
        for i in 0..50u32 {
            assert_eq!(c.get(&format!("{i:04}{tail}")), Some(i));
        }
        assert_eq!(c.get(&format!("9999{tail}")), None);
    }

    #[test]
    fn lru_stays_within_its_budget() {
        // 1000 bytes, 100 entries: each generation holds up to 500 bytes.
        let mut c: Lru<u32> = Lru::new(1000, 100);
        for i in 0..10_000u32 {
            c.insert(format!("t{i}"), i, 10 + (i as usize % 90));
            assert!(c.bytes() <= 1000, "{} bytes after {i}", c.bytes());
            assert!(c.len() <= 100);
        }
        // The most recent entries are there, old ones gone.
        assert_eq!(c.get("t9999"), Some(9999));
        assert_eq!(c.get("t0"), None);
        // Entry cap: many tiny entries.
        let mut c: Lru<u32> = Lru::new(1 << 20, 10);
        for i in 0..1000u32 {
            c.insert(i.to_string(), i, 1);
            assert!(c.len() <= 10);
        }
        // Too big for half the budget: not cached at all.
        let mut c: Lru<u32> = Lru::new(100, 10);
        c.insert("big".into(), 1, 51);
        assert_eq!((c.get("big"), c.bytes(), c.len()), (None, 0, 0));
        c.insert("fits".into(), 2, 50);
        assert_eq!(c.get("fits"), Some(2));
        // A zero budget caches nothing.
        let mut c: Lru<u32> = Lru::new(0, 10);
        c.insert("x".into(), 1, 0);
        assert_eq!(c.get("x"), None);
    }

    #[test]
    fn lru_last_hit_follows_the_entries() {
        // Budget 100 bytes: generations of 50, entries of 10.
        let mut c: Lru<u32> = Lru::new(100, 1000);
        c.insert("a".into(), 1, 10);
        assert_eq!(c.get("a"), Some(1));
        // Found again through the last hit, and not under another key.
        assert_eq!(c.get("a"), Some(1));
        assert_eq!(c.get("b"), None);
        // A new value under the same key replaces the remembered one.
        c.insert("a".into(), 2, 10);
        assert_eq!(c.get("a"), Some(2));
        // clear() forgets the last hit too.
        c.clear();
        assert_eq!(c.get("a"), None);
        // An entry dropped with the old generation is not found through the
        // last hit: "a" is hit, then two generations of others push it out.
        c.insert("a".into(), 3, 10);
        assert_eq!(c.get("a"), Some(3));
        for i in 0..10u32 {
            c.insert(format!("x{i}"), i, 10);
        }
        assert_eq!(c.get("a"), None);
        // A smaller budget empties the cache and the last hit with it.
        c.insert("k".into(), 4, 10);
        assert_eq!(c.get("k"), Some(4));
        c.set_limits(50, 1000);
        assert_eq!(c.get("k"), None);
    }

    #[test]
    fn lru_keeps_what_is_used() {
        // Budget 100 bytes: generations of 50, entries of 10 (5 per generation).
        let mut c: Lru<u32> = Lru::new(100, 1000);
        c.insert("hot".into(), 0, 10);
        for i in 1..1000u32 {
            // The hot token is used between every two new ones: never evicted.
            assert_eq!(c.get("hot"), Some(0), "evicted at {i}");
            c.insert(format!("cold{i}"), i, 10);
            assert!(c.bytes() <= 100);
        }
        // Re-inserting a key replaces it and counts it once.
        let mut c: Lru<u32> = Lru::new(100, 1000);
        c.insert("k".into(), 1, 10);
        c.insert("k".into(), 2, 20);
        assert_eq!((c.get("k"), c.bytes(), c.len()), (Some(2), 20, 1));
        // A smaller budget empties it; a larger one keeps it.
        c.set_limits(200, 1000);
        assert_eq!(c.len(), 1);
        c.set_limits(50, 1000);
        assert_eq!((c.len(), c.bytes()), (0, 0));
        // clear() returns the memory.
        c.insert("k".into(), 1, 10);
        c.clear();
        assert_eq!((c.get("k"), c.bytes()), (None, 0));
    }

    #[test]
    fn packed_values_carry_the_mark_their_scope_needs() {
        let v = |tenant: Option<&str>, tenants: &[&str], bypass: bool| Verified {
            kid: "k".into(),
            tenant: tenant.map(str::to_owned),
            tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
            bypass,
            user: None,
            claims: serde_json::Map::new(),
            payload: "{}".into(),
        };
        let mark = |v: &Verified| {
            packed_value(v, &v.tenants)
                .split('\u{1f}')
                .nth(1)
                .map(str::to_owned)
        };
        let single = v(Some("acme"), &["acme"], false);
        let multi = v(Some("acme"), &["acme", "globex"], false);
        let bypass = v(None, &[], true);
        let bypass_tenant = v(Some("acme"), &["acme"], true);
        assert_eq!(mark(&single).as_deref(), Some(""));
        assert_eq!(mark(&multi).as_deref(), Some("s"));
        assert_eq!(mark(&bypass).as_deref(), Some("b"));
        assert_eq!(mark(&bypass_tenant).as_deref(), Some("b"));
        for (x, is) in [
            (&single, false),
            (&multi, false),
            (&bypass, true),
            (&bypass_tenant, true),
        ] {
            let packed = packed_value(x, &x.tenants);
            assert_eq!(is_bypass_value(packed.as_bytes()), is, "{packed:?}");
            // The scope agrees with the mark.
            let scope: Scope = serde_json::from_str(unpack(&packed).1).unwrap_or_default();
            assert_eq!(scope.bypass, is);
        }
    }

    #[test]
    fn footprint_counts_what_an_entry_holds() {
        let big = "x".repeat(5000);
        let v = Verified {
            kid: "k".into(),
            tenant: Some("acme".into()),
            tenants: vec!["acme".into()],
            bypass: false,
            user: Some("u".into()),
            claims: serde_json::Map::new(),
            payload: big.clone(),
        };
        let packed = packed_value(&v, &v.tenants);
        let ring = keys::Ring {
            keys: Vec::new(),
            registry: None,
            revoked: Default::default(),
            generation: 0,
            bypass: Default::default(),
        };
        let c = Cached::new(v, packed, &ring, None);
        let token = "t".repeat(7700);
        let n = footprint(&token, &c);
        // Token, payload (text, parsed, in the setting value) and more.
        assert!(n >= 7700 + 3 * 5000, "{n}");
        assert!(n < 7700 + 5 * 5000, "{n}");
    }

    #[test]
    fn sampled_rejection_lines() {
        let mut s = Sampler::default();
        // The first line is written, then one per interval, each with the
        // count of lines skipped since the last.
        assert_eq!(s.admit(100.0, 10.0), Some(0));
        assert_eq!(s.admit(100.5, 10.0), None);
        assert_eq!(s.admit(109.9, 10.0), None);
        assert_eq!(s.admit(110.0, 10.0), Some(2));
        assert_eq!(s.admit(110.0, 10.0), None);
        assert_eq!(s.admit(500.0, 10.0), Some(1));
        assert_eq!(s.admit(500.1, 10.0), None);
        // A clock that went back lets a line through.
        assert_eq!(s.admit(50.0, 10.0), Some(1));
        // A burst of a million rejections within one interval: one line.
        let mut s = Sampler::default();
        let lines = (0..1_000_000)
            .filter(|i| s.admit(1000.0 + f64::from(*i) * 1e-6, 10.0).is_some())
            .count();
        assert_eq!(lines, 1);
    }

    #[test]
    fn timestamps() {
        assert_eq!(unix_seconds(0), 946_684_800.0);
        assert_eq!(unix_seconds(1_500_000), 946_684_801.5);
        assert_eq!(unix_seconds(-946_684_800_000_000), 0.0);
    }
}
