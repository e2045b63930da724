//! `set_context` and the context accessors: thin SQL wrappers over `token`.
//!
//! The context is four `PGC_SUSET` settings (see `gucs`). `set_context`
//! writes them after a token verifies, with `GUC_ACTION_LOCAL` (like
//! `SET LOCAL`, gone at the end of the transaction: a transaction pooler
//! cannot hand it to the next client) or `GUC_ACTION_SET` (session). Being
//! settings, they revert with a rolled-back transaction or savepoint, are
//! cleared by `RESET ALL` / `DISCARD ALL`, and are copied to parallel workers.

use crate::error::{rejected, Code, Failure};
use crate::gucs;
use crate::keys;
use crate::registry;
use crate::token::{self, Rejection, Rules};
use pgrx::prelude::*;
use std::ffi::{CStr, CString};

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
    let v = token::verify(token.as_bytes(), &ring.keys, &rules, keys::now())
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
    let claims = serde_json::Value::Object(v.claims.clone()).to_string();
    let tenant = v.tenant.clone().unwrap_or_default();
    put(gucs::CONTEXT_TENANT_NAME, &tenant, is_local);
    put(
        gucs::CONTEXT_USER_NAME,
        v.user.as_deref().unwrap_or(""),
        is_local,
    );
    put(gucs::CONTEXT_CLAIMS_NAME, &claims, is_local);
    put(gucs::CONTEXT_KID_NAME, &v.kid, is_local);
    // The read set is only stored when it says more than the tenant itself.
    let set = if visible.len() == 1 && visible[0] == tenant {
        String::new()
    } else {
        serde_json::to_string(&visible).unwrap_or_default()
    };
    put(gucs::CONTEXT_TENANTS_NAME, &set, is_local);
    put(
        gucs::CONTEXT_BYPASS_NAME,
        if v.bypass { "on" } else { "" },
        is_local,
    );
    let scope = if is_local { "transaction" } else { "session" };
    if v.bypass {
        // Every use of a bypass token is logged, whatever log_context says.
        log!(
            "tenant_guard: bypass context set: user \"{}\", kid \"{}\", {} tenants readable, {scope}",
            v.user.as_deref().unwrap_or(""),
            v.kid,
            visible.len()
        );
    } else if gucs::LOG_CONTEXT.get() {
        log!(
            "tenant_guard: context set: tenant \"{tenant}\", user \"{}\", kid \"{}\", {scope}",
            v.user.as_deref().unwrap_or(""),
            v.kid,
        );
    }
    v.tenant.unwrap_or_default()
}

/// Drops the context (for the rest of the session; a rollback restores it).
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn clear_context() {
    for name in [
        gucs::CONTEXT_TENANT_NAME,
        gucs::CONTEXT_USER_NAME,
        gucs::CONTEXT_CLAIMS_NAME,
        gucs::CONTEXT_KID_NAME,
        gucs::CONTEXT_TENANTS_NAME,
        gucs::CONTEXT_BYPASS_NAME,
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

/// The token's `sub` claim, or NULL.
#[pg_extern(stable, parallel_safe, schema = "tenant_guard")]
fn user_id() -> Option<String> {
    gucs::text(&gucs::CONTEXT_USER)
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
    gucs::text(&gucs::CONTEXT_BYPASS).is_some()
}

thread_local! {
    /// The last parsed read set: (the setting's text, its ids). Policies call
    /// `visible_tenants()` once per scan, or once per row in a sequential
    /// scan, so a set of a thousand tenants is not re-parsed per row.
    static SET_CACHE: std::cell::RefCell<(String, Vec<String>)> =
        const { std::cell::RefCell::new((String::new(), Vec::new())) };
}

fn read_set() -> Option<Vec<String>> {
    let raw = gucs::text(&gucs::CONTEXT_TENANTS)?;
    SET_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != raw {
            // Written by set_context from a Vec<String>: always parses.
            let ids: Vec<String> = serde_json::from_str(&raw).unwrap_or_default();
            *c = (raw, ids);
        }
        Some(c.1.clone())
    })
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
    if let Some(set) = read_set() {
        return set;
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
    if is_bypass() {
        return read_set().unwrap_or_default();
    }
    no_context()
}
