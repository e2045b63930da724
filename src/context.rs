//! `set_context` and the context accessors: thin SQL wrappers over `token`.
//!
//! The context is three `PGC_SUSET` settings (see `gucs`): the tenant, the
//! claims, and a small JSON "scope" (key, user, read set, bypass flag).
//! `set_context` writes them after a token verifies, with `GUC_ACTION_LOCAL` (like
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

/// What `context_scope` holds.
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
    map: HashMap<String, Rc<Verified>>,
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
) -> Result<Rc<Verified>, Rejection> {
    let hit = VERIFIED.with(|c| {
        let mut c = c.borrow_mut();
        if c.generation != ring.generation || c.rules.as_ref() != Some(rules) {
            c.map.clear();
            c.generation = ring.generation;
            c.rules = Some(rules.clone());
        }
        c.map.get(token).cloned()
    });
    if let Some(v) = hit {
        let key_ok = ring.keys.iter().any(|k| k.kid == v.kid && k.active_at(now));
        if key_ok && token::check_times(&v.claims, rules, now).is_ok() {
            return Ok(v);
        }
        // Expired since: verify again, which says exactly why it fails.
    }
    let v = Rc::new(token::verify(token.as_bytes(), &ring.keys, rules, now)?);
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
        kid.unwrap_or(""),
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
    let v = verify_cached(token, &ring, &rules, keys::now())
        .unwrap_or_else(|r| refuse(&r, header_kid(token).as_deref()));
    let refuse_tenant = |why: String| -> ! {
        log!(
            "tenant_guard: token rejected: tenant not accepted (kid \"{}\"): {why}",
            v.kid
        );
        rejected("token tenant is not accepted").detail(why).raise()
    };
    let visible = if v.bypass {
        // A bypass token reads every tenant of the registry: the policy stays
        // `tenant = ANY (visible set)`, so ordinary tenant queries keep their
        // index scans and never pay for an `OR bypass` branch.
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
        registry::all_tenants(reg)
    } else {
        if let Some(reg) = &ring.registry {
            for t in &v.tenants {
                if let Err(why) = registry::check(reg, t) {
                    refuse_tenant(why);
                }
            }
        }
        v.tenants.clone()
    };
    if let (true, Some(t), Some(reg)) = (v.bypass, &v.tenant, &ring.registry) {
        if let Err(why) = registry::check(reg, t) {
            refuse_tenant(why);
        }
    }
    let tenant = v.tenant.clone().unwrap_or_default();
    let scope = Scope {
        kid: v.kid.clone(),
        user: v.user.clone(),
        // The read set is only stored when it says more than the tenant.
        read: (v.bypass || visible.len() != 1 || visible[0] != tenant).then(|| visible.clone()),
        bypass: v.bypass,
    };
    put(gucs::CONTEXT_TENANT_NAME, &tenant, is_local);
    put(gucs::CONTEXT_CLAIMS_NAME, &v.payload, is_local);
    put(
        gucs::CONTEXT_SCOPE_NAME,
        &serde_json::to_string(&scope).unwrap_or_default(),
        is_local,
    );
    let lasts = if is_local { "transaction" } else { "session" };
    if v.bypass {
        // Every use of a bypass token is logged, whatever log_context says.
        log!(
            "tenant_guard: bypass context set: user \"{}\", kid \"{}\", {} tenants readable, {lasts}",
            v.user.as_deref().unwrap_or(""),
            v.kid,
            visible.len()
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
    for name in [
        gucs::CONTEXT_TENANT_NAME,
        gucs::CONTEXT_CLAIMS_NAME,
        gucs::CONTEXT_SCOPE_NAME,
    ] {
        put(name, "", false);
    }
}

/// The current tenant, or NULL without a context.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn tenant_id() -> Option<String> {
    gucs::text(&gucs::CONTEXT_TENANT)
}

/// The current tenant, or an error (42501) when there is no context.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn require_tenant_id() -> String {
    gucs::text(&gucs::CONTEXT_TENANT).unwrap_or_else(|| {
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
    let raw = gucs::text(&gucs::CONTEXT_SCOPE)?;
    Some(SCOPE_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != raw {
            // Written by set_context from a Scope: always parses.
            let parsed: Scope = serde_json::from_str(&raw).unwrap_or_default();
            *c = (raw, Rc::new(parsed));
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
    let text = gucs::text(&gucs::CONTEXT_CLAIMS)?;
    serde_json::from_str(&text).ok().map(pgrx::JsonB)
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

/// The tenants the current context may read; used by the policies that
/// `protect` generates (`tenant = ANY (tenant_guard.visible_tenants())`).
/// Without a context: an error (42501) or, with
/// `tenant_guard.missing_context = empty`, an empty array.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn visible_tenants() -> Vec<String> {
    if let Some(read) = scope().and_then(|s| s.read.clone()) {
        return read;
    }
    match gucs::text(&gucs::CONTEXT_TENANT) {
        Some(t) => vec![t],
        None => no_context(),
    }
}

/// The tenants the current context may write: its tenant claim (a bypass
/// token without one may write every tenant it reads).
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn writable_tenants() -> Vec<String> {
    if let Some(t) = gucs::text(&gucs::CONTEXT_TENANT) {
        return vec![t];
    }
    match scope() {
        Some(s) if s.bypass => s.read.clone().unwrap_or_default(),
        _ => no_context(),
    }
}
