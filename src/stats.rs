//! `tenant_guard.stats`: counters of `set_context` outcomes, token
//! rejections by reason and denied cross-tenant writes, and the rate limit
//! of the rejection log. What each counter counts is in `metrics`.
//!
//! Where the counters live:
//! * With `tenant_guard` in `shared_preload_libraries`: one block of shared
//!   memory (atomic words, no lock), so the view shows the whole cluster and
//!   the log's rate limit holds for the whole cluster.
//! * Otherwise: in each backend (shared memory can only be reserved at
//!   server start). The view then shows the backend it runs in, and says so
//!   with a NOTICE; the rate limit holds per backend.
//!
//! Where they are incremented:
//! * `set_context` (`context`): calls, verifications, cache hits, contexts
//!   set, rejections (at the rejection, before the error is raised).
//! * The triggers (`triggers`): tenant changes and TRUNCATEs refused.
//! * The log hook (`error`): a new row refused by one of the generated
//!   policies (`new row violates row-level security policy
//!   "tenant_guard_insert"` / `"tenant_guard_update"`, raised by
//!   PostgreSQL's `ExecWithCheckOptions`). PostgreSQL raises those itself,
//!   in the executor, so they are counted when the error is reported: one
//!   that a PL/pgSQL `EXCEPTION` block (or any other handler inside the
//!   session) catches is never reported and not counted, nor is anything
//!   while `log_min_messages` is above `error` (the hook runs only for
//!   messages sent to the server log), nor a message translated with other
//!   quotes than `"` (`lc_messages`). `INSERT … ON CONFLICT DO UPDATE`
//!   refused by the update policy's `USING` (PostgreSQL names no policy
//!   there) is not counted either.

use crate::error::{log_line, Code, Failure};
use crate::gucs;
use crate::metrics::{self, Counter, COUNTERS, REASONS};
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgAtomic};
use std::cell::Cell;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// The counters and the log limiter's state, in shared memory or per backend.
pub struct Block {
    counters: [AtomicU64; COUNTERS],
    /// `TimestampTz` of the last reset (or of the block's creation).
    reset_at: AtomicI64,
    /// Per reason: the rate limit's window and lines in it (`metrics::admit`).
    windows: [AtomicU64; REASONS],
    /// Per reason: rejections seen (for sampling).
    seen: [AtomicU64; REASONS],
    /// Per reason: rejections left out of the log since its last line.
    skipped: [AtomicU64; REASONS],
}

// SAFETY: only atomics, no pointers: valid in every process that maps it.
unsafe impl PGRXSharedMemory for Block {}

impl Block {
    fn new() -> Self {
        Block {
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            reset_at: AtomicI64::new(now()),
            windows: std::array::from_fn(|_| AtomicU64::new(0)),
            seen: std::array::from_fn(|_| AtomicU64::new(0)),
            skipped: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

fn now() -> i64 {
    // SAFETY: reads the clock; no preconditions.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

// SAFETY: the name is ours alone (prefixed with the extension's name).
static SHARED: PgAtomic<Block> = unsafe { PgAtomic::new(c"tenant_guard stats") };
/// Set in `_PG_init` when loaded through `shared_preload_libraries`
/// (inherited by every backend the postmaster forks).
static PRELOADED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static LOCAL: Block = Block::new();
    /// The last rejection of this backend was left out of the log: so is
    /// the ERROR that follows it (see [`on_error_report`]).
    static QUIET_ERROR: Cell<bool> = const { Cell::new(false) };
}

/// Reserves the shared block when loaded at server start, and sets up
/// `tenant_stats` (its hooks, its shared table). Called once per process
/// from `_PG_init`.
// The macro tests features of pgrx's own (pg13, pg14) that this crate
// does not declare.
#[allow(unexpected_cfgs)]
pub fn init() {
    // SAFETY: a plain read of a flag PostgreSQL sets while loading
    // shared_preload_libraries in the postmaster.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(SHARED = Block::new());
        PRELOADED.store(true, Relaxed);
    }
    crate::tenant_stats::init();
}

fn shared() -> bool {
    PRELOADED.load(Relaxed)
}

fn with<R>(f: impl FnOnce(&Block) -> R) -> R {
    if shared() {
        f(SHARED.get())
    } else {
        LOCAL.with(f)
    }
}

/// Counts one event (a denial also under the context's tenant in
/// `tenant_guard.tenant_stats`, see `tenant_stats`).
pub fn bump(c: Counter) {
    with(|b| b.counters[c.index()].fetch_add(1, Relaxed));
    if c.is_denial() {
        crate::tenant_stats::denied();
    }
}

fn notice_if_local() {
    if !shared() {
        Failure::new(
            Code::ERRCODE_WARNING,
            "tenant_guard.stats counts this backend only",
        )
        .detail("tenant_guard is not in shared_preload_libraries, so no shared memory holds cluster-wide counters.")
        .hint("Add tenant_guard to shared_preload_libraries and restart the server.")
        .report(PgLogLevel::NOTICE);
    }
}

fn timestamptz(ts: i64) -> Option<pgrx::datum::TimestampWithTimeZone> {
    pgrx::datum::TimestampWithTimeZone::try_from(ts).ok()
}

/// The rows of `tenant_guard.stats`.
#[pg_extern(volatile, parallel_restricted, schema = "tenant_guard_internal")]
#[allow(clippy::type_complexity)]
fn stats_rows() -> TableIterator<
    'static,
    (
        name!(metric, String),
        name!(reason, Option<String>),
        name!(value, i64),
        name!(stats_reset, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(scope, String),
    ),
> {
    notice_if_local();
    let scope = if shared() { "cluster" } else { "backend" };
    let rows: Vec<_> = with(|b| {
        let reset = timestamptz(b.reset_at.load(Relaxed));
        metrics::ALL
            .iter()
            .map(|c| {
                let (metric, reason) = c.name();
                let v = b.counters[c.index()].load(Relaxed);
                (
                    metric.to_owned(),
                    reason.map(str::to_owned),
                    i64::try_from(v).unwrap_or(i64::MAX),
                    reset,
                    scope.to_owned(),
                )
            })
            .collect()
    });
    TableIterator::new(rows)
}

/// Sets every counter of `tenant_guard.stats` to zero and `stats_reset` to
/// now (the cluster's counters, or this backend's without
/// `shared_preload_libraries`). Returns the new `stats_reset`.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn reset_stats() -> Option<pgrx::datum::TimestampWithTimeZone> {
    notice_if_local();
    let at = now();
    with(|b| {
        for c in &b.counters {
            c.store(0, Relaxed);
        }
        for s in b.seen.iter().chain(&b.skipped) {
            s.store(0, Relaxed);
        }
        b.reset_at.store(at, Relaxed);
    });
    timestamptz(at)
}

extension_sql!(
    r#"
CREATE VIEW tenant_guard.stats AS
  SELECT metric, reason, value, stats_reset, scope
    FROM tenant_guard_internal.stats_rows();
COMMENT ON VIEW tenant_guard.stats IS
  'tenant_guard counters, one row per counter (Prometheus names; reason is the label): set_context calls, verifications, cache hits, rejections by reason, denied cross-tenant writes, rejection log lines';
COMMENT ON FUNCTION tenant_guard_internal.stats_rows() IS 'the rows of tenant_guard.stats';
COMMENT ON FUNCTION tenant_guard.reset_stats() IS
  'sets the counters of tenant_guard.stats to zero and stats_reset to now; returns stats_reset';
REVOKE ALL ON tenant_guard.stats FROM PUBLIC;
GRANT SELECT ON tenant_guard.stats TO pg_monitor;
REVOKE ALL ON FUNCTION tenant_guard_internal.stats_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard_internal.stats_rows() TO pg_monitor;
REVOKE ALL ON FUNCTION tenant_guard.reset_stats() FROM PUBLIC;
"#,
    name = "stats_view",
    requires = ["bootstrap", stats_rows, reset_stats]
);

/// A token rejection: counts it under its reason and writes (or leaves out)
/// its LOG line as `tenant_guard.log_rejections`,
/// `tenant_guard.log_rejections_sample` and
/// `tenant_guard.log_rejections_per_minute` say. `line` builds the message
/// (only called when a line is written).
pub fn rejection(c: Counter, line: impl FnOnce() -> String) {
    bump(c);
    let Some(slot) = c.reason_slot() else {
        return;
    };
    let mode = gucs::LOG_REJECTIONS.get();
    if mode == gucs::LogRejections::Off {
        QUIET_ERROR.with(|q| q.set(false));
        return;
    }
    let every = u32::try_from(gucs::LOG_REJECTIONS_SAMPLE.get()).unwrap_or(1);
    let per_minute = u32::try_from(gucs::LOG_REJECTIONS_PER_MINUTE.get()).unwrap_or(0);
    let minute = (crate::keys::now() / 60.0) as u32;
    let (admitted, skipped) = with(|b| {
        let nth = b.seen[slot].fetch_add(1, Relaxed) + 1;
        let mut ok = metrics::sampled(nth, every)
            && (mode != gucs::LogRejections::Sampled || crate::context::sampler_admits());
        if ok {
            ok = b.windows[slot]
                .fetch_update(Relaxed, Relaxed, |s| {
                    let (next, admit) = metrics::admit(s, minute, per_minute);
                    admit.then_some(next)
                })
                .is_ok();
        }
        if ok {
            (true, b.skipped[slot].swap(0, Relaxed))
        } else {
            b.skipped[slot].fetch_add(1, Relaxed);
            (false, 0)
        }
    });
    QUIET_ERROR.with(|q| q.set(!admitted));
    if !admitted {
        bump(Counter::RejectionLogSuppressed);
        return;
    }
    bump(Counter::RejectionLogLines);
    let mut message = line();
    if skipped > 0 {
        let reason = c.name().1.unwrap_or("");
        message.push_str(&format!(
            " ({skipped} more rejected for reason \"{reason}\" since the last line, not logged: \
             tenant_guard.log_rejections_per_minute / log_rejections_sample)"
        ));
    }
    log_line(message);
}

/// Who asked, for a rejection line: the current role and the client
/// address (`inet_client_addr()`; empty for a Unix socket or a background
/// process).
pub fn who() -> (String, String) {
    // SAFETY: GetUserId reads the backend's current user; GetUserNameFromId
    // with noerr returns NULL for a dropped role, else a palloc'd string.
    let role = unsafe {
        let role = pg_sys::GetUserNameFromId(pg_sys::GetUserId(), true);
        if role.is_null() {
            String::new()
        } else {
            CStr::from_ptr(role).to_string_lossy().into_owned()
        }
    };
    // SAFETY: inet_client_addr takes no argument and returns NULL or an
    // inet; inet_out takes that inet and returns a cstring.
    let client = unsafe {
        pgrx::direct_function_call_as_datum(pg_sys::inet_client_addr, &[])
            .and_then(|addr| pgrx::direct_function_call::<&CStr>(pg_sys::inet_out, &[Some(addr)]))
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    (role, client)
}

/// Called by the log hook for every message sent to the server log: counts
/// the denials PostgreSQL reports (see the module header), and keeps the
/// ERROR of a rejection whose LOG line was left out of the log out of it
/// too.
///
/// # Safety
/// `e` is the `ErrorData` being emitted.
pub unsafe fn on_error_report(e: &mut pg_sys::ErrorData, ours: bool) {
    if e.elevel < pg_sys::PGERROR as i32 {
        return;
    }
    if ours && e.sqlerrcode == Code::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION as i32 {
        if QUIET_ERROR.with(|q| q.replace(false)) {
            e.output_to_server = false;
        }
        return;
    }
    if e.sqlerrcode != Code::ERRCODE_INSUFFICIENT_PRIVILEGE as i32 || e.message.is_null() {
        return;
    }
    // SAFETY: funcname and message are NULL or NUL-terminated strings of
    // this ErrorData (caller).
    let (funcname, message) = unsafe {
        if e.funcname.is_null() {
            return;
        }
        (CStr::from_ptr(e.funcname), CStr::from_ptr(e.message))
    };
    let (Ok(funcname), Ok(message)) = (funcname.to_str(), message.to_str()) else {
        return;
    };
    if let Some(c) = metrics::denial_counter(funcname, message) {
        bump(c);
    }
}
