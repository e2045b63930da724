//! Passing executor and utility hook calls on, unguarded.
//!
//! tenant_guard's executor and `ProcessUtility` hooks have work to do only
//! in some backends: `bypass` while this backend has switched to
//! `tenant_guard.bypass_role`, `tenant_stats` while `tenant_guard.track_tenants`
//! is on. Every other query (nearly all of them) only has its call passed on
//! to the next hook or to PostgreSQL's `standard_*` function. A guarded
//! Rust hook pays for that with two `sigsetjmp` frames and a thread check
//! per call, about a third of tenant_guard's whole cost on a one-row
//! transaction (callgrind, PostgreSQL 15).
//!
//! The functions here make the plain call: they are `extern "C-unwind"`
//! frames that own nothing, so an ERROR raised below them (a `longjmp`)
//! crosses them exactly as it crosses a C hook's frame. Rust allows a
//! `longjmp` over such plain frames (no destructors, nothing to unwind); the
//! hooks call them before creating any Rust value that would need one. The
//! `standard_*` functions are declared here rather than taken from `pg_sys`,
//! whose wrappers add the guard; [`check_signatures`] makes the compiler
//! compare each declaration with PostgreSQL's hook type. A hook that has
//! work to do calls the same functions inside pgrx's FFI boundary (its own
//! frame is guarded then).

use pgrx::pg_sys;

mod raw {
    use pgrx::pg_sys;
    unsafe extern "C-unwind" {
        pub fn standard_ExecutorStart(query_desc: *mut pg_sys::QueryDesc, eflags: i32);
        #[cfg(not(feature = "pg18"))]
        pub fn standard_ExecutorRun(
            query_desc: *mut pg_sys::QueryDesc,
            direction: pg_sys::ScanDirection::Type,
            count: u64,
            execute_once: bool,
        );
        #[cfg(feature = "pg18")]
        pub fn standard_ExecutorRun(
            query_desc: *mut pg_sys::QueryDesc,
            direction: pg_sys::ScanDirection::Type,
            count: u64,
        );
        pub fn standard_ExecutorFinish(query_desc: *mut pg_sys::QueryDesc);
        pub fn standard_ExecutorEnd(query_desc: *mut pg_sys::QueryDesc);
        #[allow(clippy::too_many_arguments)]
        pub fn standard_ProcessUtility(
            pstmt: *mut pg_sys::PlannedStmt,
            query_string: *const std::ffi::c_char,
            read_only_tree: bool,
            context: pg_sys::ProcessUtilityContext::Type,
            params: pg_sys::ParamListInfo,
            query_env: *mut pg_sys::QueryEnvironment,
            dest: *mut pg_sys::DestReceiver,
            qc: *mut pg_sys::QueryCompletion,
        );
    }
}

/// Compile-time only: each declaration above has the type of the hook it
/// stands for (a mismatch does not compile).
#[allow(dead_code)]
fn check_signatures() {
    let _: pg_sys::ExecutorStart_hook_type = Some(raw::standard_ExecutorStart);
    let _: pg_sys::ExecutorRun_hook_type = Some(raw::standard_ExecutorRun);
    let _: pg_sys::ExecutorFinish_hook_type = Some(raw::standard_ExecutorFinish);
    let _: pg_sys::ExecutorEnd_hook_type = Some(raw::standard_ExecutorEnd);
    let _: pg_sys::ProcessUtility_hook_type = Some(raw::standard_ProcessUtility);
}

/// `previous(query_desc, eflags)`, or PostgreSQL's own when there is none.
///
/// # Safety
/// The executor's own arguments, from inside an `ExecutorStart` hook whose
/// frame holds nothing to drop.
#[inline(always)]
pub unsafe fn executor_start(
    previous: pg_sys::ExecutorStart_hook_type,
    query_desc: *mut pg_sys::QueryDesc,
    eflags: i32,
) {
    // SAFETY: the caller's arguments, passed on unchanged (see above).
    unsafe {
        match previous {
            Some(p) => p(query_desc, eflags),
            None => raw::standard_ExecutorStart(query_desc, eflags),
        }
    }
}

/// `previous(...)` for `ExecutorRun`, or PostgreSQL's own.
///
/// # Safety
/// As [`executor_start`].
#[cfg(not(feature = "pg18"))]
#[inline(always)]
pub unsafe fn executor_run(
    previous: pg_sys::ExecutorRun_hook_type,
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
    execute_once: bool,
) {
    // SAFETY: as in executor_start.
    unsafe {
        match previous {
            Some(p) => p(query_desc, direction, count, execute_once),
            None => raw::standard_ExecutorRun(query_desc, direction, count, execute_once),
        }
    }
}

/// `previous(...)` for `ExecutorRun`, or PostgreSQL's own.
///
/// # Safety
/// As [`executor_start`].
#[cfg(feature = "pg18")]
#[inline(always)]
pub unsafe fn executor_run(
    previous: pg_sys::ExecutorRun_hook_type,
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
) {
    // SAFETY: as in executor_start.
    unsafe {
        match previous {
            Some(p) => p(query_desc, direction, count),
            None => raw::standard_ExecutorRun(query_desc, direction, count),
        }
    }
}

/// `previous(query_desc)` for `ExecutorFinish`, or PostgreSQL's own.
///
/// # Safety
/// As [`executor_start`].
#[inline(always)]
pub unsafe fn executor_finish(
    previous: pg_sys::ExecutorFinish_hook_type,
    query_desc: *mut pg_sys::QueryDesc,
) {
    // SAFETY: as in executor_start.
    unsafe {
        match previous {
            Some(p) => p(query_desc),
            None => raw::standard_ExecutorFinish(query_desc),
        }
    }
}

/// `previous(query_desc)` for `ExecutorEnd`, or PostgreSQL's own.
///
/// # Safety
/// As [`executor_start`].
#[inline(always)]
pub unsafe fn executor_end(
    previous: pg_sys::ExecutorEnd_hook_type,
    query_desc: *mut pg_sys::QueryDesc,
) {
    // SAFETY: as in executor_start.
    unsafe {
        match previous {
            Some(p) => p(query_desc),
            None => raw::standard_ExecutorEnd(query_desc),
        }
    }
}

/// `previous(...)` for `ProcessUtility`, or PostgreSQL's own.
///
/// # Safety
/// As [`executor_start`], for a `ProcessUtility` hook.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub unsafe fn process_utility(
    previous: pg_sys::ProcessUtility_hook_type,
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: as in executor_start.
    unsafe {
        match previous {
            Some(p) => p(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
            None => raw::standard_ProcessUtility(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
        }
    }
}
