//! `tenant_guard.as_tenant`: act as a tenant without a token, for test
//! suites (pgTAP, pytest, Jest) and a DBA's checks. The rules (who, which
//! read set, the log line) are pure, in `as_tenant`; the context it writes
//! and how the per-statement check recognises it, in `context`.
//!
//! Runs with the caller's rights and checks the current user: a superuser,
//! or a role with the privileges of `tenant_guard.as_tenant_role`
//! (`PGC_SUSET`, empty: superusers only). `EXECUTE` is revoked from PUBLIC
//! as well (`sql/finalize.sql`). The context it makes is marked as made by
//! `as_tenant` and by whom; the setting itself stays writable only by
//! superusers, and a marked value this backend did not make fails closed.
//! No bypass context is offered. On a Citus cluster it is refused (0A000):
//! the workers verify a forwarded token, and there is none.

use crate::as_tenant::{self, Caller};
use crate::error::{log_line, Code, Failure};
use crate::gucs;
use pgrx::prelude::*;
use std::ffi::CStr;

/// The name of a role, or "" for one that is gone.
fn role_name(oid: pg_sys::Oid) -> String {
    // SAFETY: GetUserNameFromId with noerr returns NULL for an unknown role,
    // else a palloc'd NUL-terminated string.
    unsafe {
        let p = pg_sys::GetUserNameFromId(oid, true);
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// Refuses a caller that may not act as a tenant (42501), else says how
/// it may (for the log line).
fn require_permitted(user: &str) -> String {
    // SAFETY: no arguments; reads the backend's security context.
    if unsafe { pg_sys::InSecurityRestrictedOperation() } {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "tenant_guard.as_tenant cannot run inside a security-restricted operation",
        )
        .detail("Maintenance commands (VACUUM, ANALYZE, CREATE INDEX, REFRESH MATERIALIZED VIEW) run a table owner's code.")
        .raise();
    }
    let role = gucs::text(&gucs::AS_TENANT_ROLE);
    // SAFETY: no arguments; superuser() checks the current user.
    let superuser = unsafe { pg_sys::superuser() };
    let (role_exists, member) = match &role {
        Some(name) => {
            let c = crate::error::c_string(name);
            // SAFETY: a valid C string; missing_ok = true returns InvalidOid.
            let oid = unsafe { pg_sys::get_role_oid(c.as_ptr(), true) };
            if oid == pg_sys::Oid::INVALID {
                (false, false)
            } else {
                // SAFETY: two role OIDs; a catalog look-up.
                (true, unsafe {
                    pg_sys::has_privs_of_role(pg_sys::GetUserId(), oid)
                })
            }
        }
        None => (false, false),
    };
    as_tenant::permitted(&Caller {
        user,
        superuser,
        role: role.as_deref(),
        role_exists,
        member,
    })
    .unwrap_or_else(|d| {
        Failure::new(Code::ERRCODE_INSUFFICIENT_PRIVILEGE, d.message)
            .detail(d.detail)
            .hint(d.hint)
            .raise()
    })
}

/// Makes `tenant` the context without a token, for a test suite or a
/// DBA's check: reads `tenant` and `tenants`, writes `tenant`, with
/// `user_id` as `tenant_guard.user_id()`. `is_local => true` (the default)
/// lasts until the end of the transaction and must be called inside one;
/// `false` lasts for the session. Superusers and members of
/// `tenant_guard.as_tenant_role` only (42501); the registry's rules apply
/// (28000); refused on a Citus cluster (0A000). Logged at LOG, counted in
/// `tenant_guard.stats`. Returns the tenant.
///
/// Runs with the caller's rights (the current user is the one checked).
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn as_tenant(
    tenant: Option<&str>,
    tenants: default!(Option<Vec<Option<String>>>, "NULL"),
    user_id: default!(Option<&str>, "NULL"),
    is_local: default!(Option<bool>, true),
) -> String {
    // SAFETY: no arguments; the current user's OID.
    let user = role_name(unsafe { pg_sys::GetUserId() });
    let how = require_permitted(&user);
    let Some(is_local) = is_local else {
        crate::error::invalid_parameter("is_local must not be NULL").raise()
    };
    // SAFETY: no arguments; reads this backend's transaction state.
    if is_local && !unsafe { pg_sys::IsTransactionBlock() } {
        Failure::new(
            Code::ERRCODE_NO_ACTIVE_SQL_TRANSACTION,
            "as_tenant with is_local => true must be called inside a transaction block",
        )
        .detail("Outside BEGIN ... COMMIT the context would end with this statement.")
        .hint("Run BEGIN first, or pass is_local => false for a session context.")
        .raise();
    }
    if crate::citus::loaded() {
        Failure::new(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            "tenant_guard.as_tenant is not available on a Citus cluster",
        )
        .detail("Citus workers take their context from a forwarded token, which they verify; as_tenant makes a context without one.")
        .hint("Sign a token for the test with tenant_guard.sign and call tenant_guard.set_context(token) instead.")
        .raise();
    }
    let read = as_tenant::read_set(tenant, tenants.as_deref())
        .unwrap_or_else(|why| crate::error::invalid_parameter(why).raise());
    if let Some(u) = user_id {
        if !as_tenant::is_id(u) {
            crate::error::invalid_parameter(
                "user_id must be a non-empty id without control characters",
            )
            .raise();
        }
    }
    crate::context::establish_as(&read, user_id, &user, is_local);
    crate::stats::bump(crate::metrics::Counter::AsTenantContexts);
    // SAFETY: no arguments; the session user's OID.
    let session_user = role_name(unsafe { pg_sys::GetSessionUserId() });
    // Every use, whatever tenant_guard.log_context says.
    log_line(as_tenant::log_line(
        &read,
        user_id,
        &user,
        &how,
        &session_user,
        is_local,
    ));
    read[0].clone()
}
