//! Bypass through a role. With `tenant_guard.bypass_role` naming a role
//! that has `BYPASSRLS` (and is not a superuser), a verified bypass token
//! makes the rest of its transaction run as that role: row-level security
//! does not apply to it at all, so a support session reads a table as fast
//! as the table's owner would, whatever the number of tenants, and never
//! materialises the registry. Without the setting, bypass tokens keep the
//! registry's read set (`context::bypass_set`).
//!
//! Entering and leaving:
//! * `set_context` with a bypass token (transaction-local only) switches the
//!   current user to the role, keeping the security context flags, like
//!   `SET LOCAL ROLE` would without needing membership in it.
//! * Any later change of the context setting to a value that is not a bypass
//!   context (`set_context` with another token, `clear_context`, `RESET`)
//!   switches back at once (the setting's assign hook).
//! * The end of the transaction switches back (commit and prepare through
//!   a transaction callback; an abort or a rollback to a savepoint is
//!   undone by PostgreSQL itself, which restores the user it saved).
//! * Every query the executor starts as the role checks that the context is
//!   still a valid bypass context (the token may expire within the
//!   transaction): if not, the query fails with `42501`.
//!
//! PostgreSQL re-plans a cached plan made under a `BYPASSRLS` role before
//! another role runs it (`RLS_NONE_ENV`), so plans never cross over.

use crate::error::Failure;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;
use std::cell::Cell;

/// A switch made in this transaction: the role entered and whom to return to.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Switched {
    role: pg_sys::Oid,
    saved_user: pg_sys::Oid,
    saved_sec: i32,
}

thread_local! {
    /// Kept until the transaction ends, also after switching back early,
    /// because a rollback to a savepoint can make the role current again.
    static SWITCHED: Cell<Option<Switched>> = const { Cell::new(None) };
}

/// The configured bypass role's name, if any.
pub fn configured() -> Option<String> {
    crate::gucs::text(&crate::gucs::BYPASS_ROLE)
}

/// Resolves the configured role: it must exist, have `BYPASSRLS` and not be
/// a superuser (`42704`/`42501` otherwise).
pub fn resolve(name: &str) -> pg_sys::Oid {
    let cname = std::ffi::CString::new(name).unwrap_or_else(|_| {
        crate::error::invalid_parameter("tenant_guard.bypass_role contains a NUL character").raise()
    });
    // SAFETY: a valid C string; missing_ok = true returns InvalidOid.
    let oid = unsafe { pg_sys::get_role_oid(cname.as_ptr(), true) };
    if oid == pg_sys::Oid::INVALID {
        Failure::new(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("tenant_guard.bypass_role \"{name}\" does not exist"),
        )
        .hint("Create it: CREATE ROLE support_bypass NOLOGIN BYPASSRLS; and grant it what support may read.")
        .raise();
    }
    // SAFETY: catalog look-ups of an existing role.
    let (superuser, bypassrls) = unsafe {
        (
            pg_sys::superuser_arg(oid),
            pg_sys::has_bypassrls_privilege(oid),
        )
    };
    if superuser {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("tenant_guard.bypass_role \"{name}\" is a superuser"),
        )
        .detail("A bypass token must not make its holder a superuser.")
        .hint("Use a NOLOGIN role with BYPASSRLS and only the privileges support needs.")
        .raise();
    }
    if !bypassrls {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("tenant_guard.bypass_role \"{name}\" does not have BYPASSRLS"),
        )
        .hint("ALTER ROLE … BYPASSRLS (as a superuser).")
        .raise();
    }
    oid
}

/// Refuses to enter the role where PostgreSQL would undo or forbid a user
/// switch: inside a `SECURITY DEFINER` function or a security-restricted
/// operation (`42501`).
pub fn require_switchable() {
    // SAFETY: reads of the backend's security context.
    let (local, restricted) = unsafe {
        (
            pg_sys::InLocalUserIdChange(),
            pg_sys::InSecurityRestrictedOperation(),
        )
    };
    if local || restricted {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "a bypass context cannot be entered inside a SECURITY DEFINER function or a restricted operation",
        )
        .hint("Call tenant_guard.set_context with the bypass token directly.")
        .raise();
    }
}

/// Makes `role` the current user until the transaction ends (or the context
/// changes).
pub fn enter(role: pg_sys::Oid) {
    let mut user = pg_sys::Oid::INVALID;
    let mut sec = 0;
    // SAFETY: plain reads of the backend's current user and context.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut sec) };
    let record = match SWITCHED.get() {
        // Entered earlier in this transaction: return to the same user.
        Some(s) if user == s.role || user == s.saved_user => Switched { role, ..s },
        _ => Switched {
            role,
            saved_user: user,
            saved_sec: sec,
        },
    };
    SWITCHED.set(Some(record));
    // SAFETY: an existing role (resolved just before); the flags are the
    // caller's. Undone by leave(), the transaction callback, or by
    // PostgreSQL's own restore on (sub)transaction abort.
    unsafe { pg_sys::SetUserIdAndSecContext(role, sec) };
}

/// Switches back if the bypass role is the current user. Never raises (it
/// runs in an assign hook and at the end of transactions).
pub fn leave() {
    if let Some(s) = SWITCHED.get() {
        // SAFETY: reads and sets the backend's user id to the one saved.
        unsafe {
            if pg_sys::GetUserId() == s.role {
                pg_sys::SetUserIdAndSecContext(s.saved_user, s.saved_sec);
            }
        }
    }
}

/// Whether the bypass role entered by this backend is the current user.
pub fn active() -> bool {
    // SAFETY: a read of the backend's user id.
    SWITCHED
        .get()
        .is_some_and(|s| unsafe { pg_sys::GetUserId() } == s.role)
}

/// The context setting changed: leave the role unless the new value is a
/// bypass context. Called from the setting's assign hook; never raises.
pub fn context_assigned(is_bypass: bool) {
    if !is_bypass {
        leave();
    }
}

unsafe extern "C-unwind" fn at_transaction_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    if matches!(
        event,
        XACT_EVENT_COMMIT
            | XACT_EVENT_ABORT
            | XACT_EVENT_PREPARE
            | XACT_EVENT_PARALLEL_COMMIT
            | XACT_EVENT_PARALLEL_ABORT
    ) {
        leave();
        SWITCHED.set(None);
    }
}

static mut PREVIOUS_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;

/// Every query started as the bypass role: the context must still be a
/// valid bypass context, or the query fails.
#[pg_guard]
unsafe extern "C-unwind" fn executor_start(query_desc: *mut pg_sys::QueryDesc, eflags: i32) {
    if active() && !crate::context::bypass_holds() {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "the bypass context no longer holds",
        )
        .detail("Its token expired, or its key was retired, within the transaction.")
        .hint("End the transaction; a new bypass context needs a new token.")
        .raise();
    }
    // SAFETY: the executor's arguments, passed on unchanged.
    unsafe {
        match PREVIOUS_EXECUTOR_START {
            Some(previous) => previous(query_desc, eflags),
            None => pg_sys::standard_ExecutorStart(query_desc, eflags),
        }
    }
}

/// Registers the transaction callback and the executor hook (once per
/// process, from `_PG_init`).
pub fn init() {
    // SAFETY: _PG_init runs once per process; the previous hook is kept and
    // called; the callback has no argument.
    unsafe {
        pg_sys::RegisterXactCallback(Some(at_transaction_end), std::ptr::null_mut());
        PREVIOUS_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
    }
}
