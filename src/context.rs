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

use crate::error::{rejected, Code, Failure};
use crate::gucs;
use crate::keys;
use crate::registry;
use crate::token::{self, Rejection, Rules, Verified};
use pgrx::prelude::*;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::rc::Rc;

const SEP: char = '\u{1f}';

/// Packs the context into the setting's value:
/// `tenant SEP mark SEP scope SEP claims`. `mark` is empty when the context
/// reads exactly its tenant (the common case, which the policies then serve
/// without parsing anything), `s` when the scope holds a read set or bypass.
pub fn pack(tenant: &str, scope: &str, claims: &str, simple: bool) -> String {
    let mut s = String::with_capacity(tenant.len() + scope.len() + claims.len() + 4);
    s.push_str(tenant);
    s.push(SEP);
    if !simple {
        s.push('s');
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
}

/// Verified tokens, so a token presented again (a JWT usually serves many
/// requests) costs a hash look-up instead of base64, JSON and HMAC work.
///
/// Safe because: the entry is keyed by the whole token text; the cache is
/// emptied whenever the key ring is reloaded (any change to keys or registry
/// settings, see `keys`) or a verification setting differs; and every hit
/// re-checks what depends on the clock (`exp`, `nbf`, `iat`, key expiry).
struct VerifyCache {
    generation: u64,
    rules: Option<Rules>,
    map: HashMap<String, Rc<Cached>>,
}

/// A verified token and, unless it is a bypass token (whose read set comes
/// from the registry at each use), the setting value it produces.
struct Cached {
    v: Verified,
    packed: Option<String>,
}

fn scope_of(v: &Verified, visible: &[String]) -> Scope {
    let tenant = v.tenant.as_deref().unwrap_or("");
    Scope {
        kid: v.kid.clone(),
        user: v.user.clone(),
        // The read set is only stored when it says more than the tenant.
        read: (v.bypass || visible.len() != 1 || visible[0] != tenant).then(|| visible.to_vec()),
        bypass: v.bypass,
    }
}

fn packed_value(v: &Verified, visible: &[String]) -> String {
    let scope = scope_of(v, visible);
    let simple = scope.read.is_none() && !scope.bypass;
    let scope = serde_json::to_string(&scope).unwrap_or_default();
    pack(
        v.tenant.as_deref().unwrap_or(""),
        &scope,
        &v.payload,
        simple,
    )
}

const VERIFY_CACHE_SIZE: usize = 4096;

thread_local! {
    static VERIFIED: RefCell<VerifyCache> = RefCell::new(VerifyCache {
        generation: 0,
        rules: None,
        map: HashMap::new(),
    });
}

fn verify_cached(
    token: &str,
    ring: &keys::Ring,
    rules: &Rules,
    now: f64,
) -> Result<Rc<Cached>, Rejection> {
    let hit = VERIFIED.with(|c| {
        let mut c = c.borrow_mut();
        if c.generation != ring.generation || c.rules.as_ref() != Some(rules) {
            c.map.clear();
            c.generation = ring.generation;
            c.rules = Some(rules.clone());
        }
        c.map.get(token).cloned()
    });
    if let Some(c) = hit {
        let key_ok = ring
            .keys
            .iter()
            .any(|k| k.kid == c.v.kid && k.active_at(now));
        if key_ok && token::check_times(&c.v.claims, rules, now).is_ok() {
            return Ok(c);
        }
        // Expired since: verify again, which says exactly why it fails.
    }
    let v = token::verify(token.as_bytes(), &ring.keys, rules, now)?;
    let packed = (!v.bypass).then(|| packed_value(&v, &v.tenants));
    let v = Rc::new(Cached { v, packed });
    VERIFIED.with(|c| {
        let mut c = c.borrow_mut();
        if c.map.len() >= VERIFY_CACHE_SIZE {
            c.map.clear();
        }
        c.map.insert(token.to_owned(), v.clone());
    });
    Ok(v)
}

fn rules() -> Rules {
    let lifetime = gucs::MAX_TOKEN_LIFETIME.get();
    Rules {
        tenant_claim: gucs::text(&gucs::TENANT_CLAIM).unwrap_or_else(|| "tenant_id".into()),
        leeway: f64::from(gucs::LEEWAY.get()),
        require_exp: gucs::REQUIRE_EXP.get(),
        issuer: gucs::text(&gucs::ISSUER),
        audience: gucs::text(&gucs::AUDIENCE),
        max_lifetime: (lifetime > 0).then_some(f64::from(lifetime)),
        max_bytes: usize::try_from(gucs::MAX_TOKEN_BYTES.get()).unwrap_or(8192),
        tenants_claim: gucs::text(&gucs::TENANTS_CLAIM).unwrap_or_else(|| "tenants".into()),
        max_bypass_lifetime: f64::from(gucs::MAX_BYPASS_LIFETIME.get()),
    }
}

/// Writes one context setting with superuser rights (the caller has been
/// authenticated by the token, not by its role).
fn put(name: &CStr, value: &str, is_local: bool) {
    // Claims and ids were checked free of NUL characters by the parser.
    let value = CString::new(value).unwrap_or_default();
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

fn refuse(r: &Rejection, kid: Option<&str>) -> ! {
    // Logged for the DBA (server log only at the default client_min_messages);
    // never the token itself.
    log!(
        "tenant_guard: token rejected: {r} (kid \"{}\"): {}",
        token::clip(kid.unwrap_or("")),
        r.detail()
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

/// Best-effort `kid` of a rejected token, for the log line.
fn header_kid(token: &str) -> Option<String> {
    use base64::Engine;
    let h = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h)
        .ok()?;
    let header = token::parse_object(&bytes, "header").ok()?;
    header.get("kid")?.as_str().map(str::to_owned)
}

/// Verifies a signed token and makes its tenant the context.
///
/// Returns the tenant id. `is_local => true` (the default) lasts until the
/// end of the current transaction, like `SET LOCAL`, and must be called
/// inside one. `is_local => false` lasts for the session.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn set_context(token: Option<&str>, is_local: default!(Option<bool>, true)) -> String {
    let Some(is_local) = is_local else {
        crate::error::invalid_parameter("is_local must not be NULL").raise()
    };
    // SAFETY: reads transaction state.
    if is_local && !unsafe { pg_sys::IsTransactionBlock() } {
        Failure::new(
            Code::ERRCODE_NO_ACTIVE_SQL_TRANSACTION,
            "set_context with is_local => true must be called inside a transaction block",
        )
        .detail("Outside BEGIN ... COMMIT the context would end with this statement.")
        .hint("Run BEGIN first, or pass is_local => false for a session-wide context.")
        .raise();
    }
    let Some(token) = token else {
        refuse(&Rejection::Malformed("the token is NULL".into()), None)
    };
    let rules = rules();
    // Size limit before anything else reads the token (header_kid included).
    if token.len() > rules.max_bytes {
        refuse(
            &Rejection::TooLarge {
                len: token.len(),
                max: rules.max_bytes,
            },
            None,
        );
    }
    let ring = keys::ring();
    let cached = verify_cached(token, &ring, &rules, keys::now())
        .unwrap_or_else(|r| refuse(&r, header_kid(token).as_deref()));
    let v = &cached.v;
    let refuse_tenant = |why: String| -> ! {
        log!(
            "tenant_guard: token rejected: tenant not accepted (kid \"{}\"): {why}",
            v.kid
        );
        rejected("token tenant is not accepted").detail(why).raise()
    };
    if let Some(reg) = &ring.registry {
        // Checked at every use, cached or not: deactivating a tenant takes
        // effect at once.
        let named = v.tenant.iter().chain(if v.bypass {
            [].iter()
        } else {
            v.tenants.iter()
        });
        for t in named {
            if let Err(why) = registry::check(reg, t) {
                refuse_tenant(why);
            }
        }
    }
    let (value, readable) = match &cached.packed {
        Some(p) => (std::borrow::Cow::Borrowed(p.as_str()), v.tenants.len()),
        None => {
            // A bypass token reads every tenant of the registry: the policy
            // stays `tenant = ANY (visible set)`, so ordinary tenant queries
            // keep their index scans and never pay for an `OR bypass` branch.
            let Some(reg) = &ring.registry else {
                log!(
                    "tenant_guard: token rejected: bypass without a registry (kid \"{}\")",
                    v.kid
                );
                rejected("bypass tokens need a tenant registry")
                    .detail("a bypass token reads every tenant listed in the registry")
                    .hint("Configure one with tenant_guard.use_registry, or give a support role BYPASSRLS.")
                    .raise()
            };
            let all = registry::all_tenants(reg);
            (std::borrow::Cow::Owned(packed_value(v, &all)), all.len())
        }
    };
    put(gucs::CONTEXT_NAME, &value, is_local);
    let tenant = v.tenant.clone().unwrap_or_default();
    let lasts = if is_local { "transaction" } else { "session" };
    if v.bypass {
        // Every use of a bypass token is logged, whatever log_context says.
        log!(
            "tenant_guard: bypass context set: user \"{}\", kid \"{}\", {readable} tenants readable, {lasts}",
            v.user.as_deref().unwrap_or(""),
            v.kid,
        );
    } else if gucs::LOG_CONTEXT.get() {
        log!(
            "tenant_guard: context set: tenant \"{tenant}\", user \"{}\", kid \"{}\", {lasts}",
            v.user.as_deref().unwrap_or(""),
            v.kid,
        );
    }
    tenant
}

/// Drops the context (for the rest of the session; a rollback restores it).
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn clear_context() {
    put(gucs::CONTEXT_NAME, "", false);
}

/// The context setting's current value, borrowed (no copy): valid until the
/// setting next changes, so use it at once.
fn raw_context() -> Option<&'static str> {
    // SAFETY: the GUC machinery keeps the pointer valid until the value is
    // replaced; nothing below changes it while the borrow is in use.
    unsafe {
        let p = *gucs::CONTEXT.as_ptr();
        if p.is_null() {
            return None;
        }
        CStr::from_ptr(p).to_str().ok().filter(|s| !s.is_empty())
    }
}

/// The current tenant (the writing one), if any.
fn current_tenant() -> Option<&'static str> {
    raw_context().map(|v| unpack(v).0).filter(|t| !t.is_empty())
}

/// The current tenant, or NULL without a context.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn tenant_id() -> Option<String> {
    current_tenant().map(str::to_owned)
}

/// The current tenant, or an error (42501) when there is no context.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn require_tenant_id() -> String {
    current_tenant().map(str::to_owned).unwrap_or_else(|| {
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
    let raw = unpack(raw_context()?).1;
    Some(SCOPE_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != raw {
            // Written by set_context from a Scope: always parses.
            let parsed: Scope = serde_json::from_str(raw).unwrap_or_default();
            *c = (raw.to_owned(), Rc::new(parsed));
        }
        c.1.clone()
    }))
}

/// The token's `sub` claim, or NULL.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn user_id() -> Option<String> {
    scope().and_then(|s| s.user.clone())
}

/// Every verified claim of the current context, or NULL.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn claims() -> Option<pgrx::JsonB> {
    let text = unpack(raw_context()?).2;
    serde_json::from_str(text).ok().map(pgrx::JsonB)
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
        .hint("Call tenant_guard.set_context(token) in this transaction first.")
        .raise(),
    }
}

/// The tenants the current context may read.
fn visible_set() -> Vec<String> {
    if let Some(read) = scope().and_then(|s| s.read.clone()) {
        return read;
    }
    match current_tenant() {
        Some(t) => vec![t.to_owned()],
        None => no_context(),
    }
}

/// The tenants the current context may write: its tenant claim (a bypass
/// token without one may write every tenant it reads).
fn writable_set() -> Vec<String> {
    if let Some(t) = current_tenant() {
        return vec![t.to_owned()];
    }
    match scope() {
        Some(s) if s.bypass => s.read.clone().unwrap_or_default(),
        _ => no_context(),
    }
}

/// A one-dimensional `text[]` of `ids`, laid out by hand in one allocation
/// (the policies build one per scan; `construct_array` costs several times
/// more). Layout of `ArrayType` (`utils/array.h`): varlena header, `ndim`,
/// `dataoffset` (0: no NULLs), element type, then `dims[ndim]` and
/// `lbound[ndim]`, then the elements from a MAXALIGNed offset, each a
/// varlena with a 4-byte header, INTALIGNed. An empty array has `ndim = 0`.
unsafe fn text_array(ids: &[&[u8]]) -> pg_sys::Datum {
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
    let p = pg_sys::palloc0(size) as *mut u8;
    let put = |at: usize, v: u32| std::ptr::write_unaligned(p.add(at) as *mut u32, v);
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
        std::ptr::copy_nonoverlapping(id.as_ptr(), p.add(at + 4), id.len());
        at += 4 + id.len();
    }
    pg_sys::Datum::from(p)
}

/// The `text[]` of the visible (or writable) tenants.
unsafe fn tenant_array(writable: bool) -> pg_sys::Datum {
    // Fast path: a context that reads exactly its tenant (and writes it).
    let raw = *gucs::CONTEXT.as_ptr();
    if !raw.is_null() {
        if let Some(t) = simple_tenant(CStr::from_ptr(raw).to_bytes()) {
            return text_array(&[t]);
        }
    }
    // Read sets, bypass, no context (which may raise).
    let ids = if writable {
        writable_set()
    } else {
        visible_set()
    };
    let refs: Vec<&[u8]> = ids.iter().map(|s| s.as_bytes()).collect();
    text_array(&refs)
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
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    tenant_array(false)
}

/// `tenant_guard.writable_tenants() RETURNS text[]`: the tenants the current
/// context may write; the write rule of the generated policies.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn tg_writable_tenants(
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    tenant_array(true)
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
    fn pack_and_unpack() {
        let v = pack("acme", "{\"kid\":\"k\"}", "{\"tenant_id\":\"acme\"}", true);
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
            false,
        );
        assert_eq!(simple_tenant(v.as_bytes()), None);
        assert_eq!(unpack(&v).0, "acme");
        // A bypass token without a tenant.
        let v = pack("", "{\"kid\":\"k\",\"bypass\":true}", "{}", false);
        assert_eq!(unpack(&v).0, "");
        assert_eq!(simple_tenant(v.as_bytes()), None);
        // JSON escapes the separator, so claims holding it survive.
        let claims = serde_json::json!({"x": "a\u{1f}b"}).to_string();
        assert!(!claims.contains('\u{1f}'));
        assert_eq!(unpack(&pack("t", "{}", &claims, true)).2, claims);
    }
}
