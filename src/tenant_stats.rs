//! `tenant_guard.tenant_stats`: what each tenant's context did (the
//! counters are in `tenant_counts`), with `tenant_guard.track_tenants` on.
//!
//! What is counted, and when:
//! * A statement counts when it is **top-level** (not run from inside
//!   another query's execution: a function's queries called by a statement
//!   are part of that statement; the statements of a `DO` block, a
//!   procedure `CALL`, an SQL `EXECUTE` or `EXPLAIN ANALYZE` count, no query
//!   encloses them), goes through the executor (`SELECT`, `INSERT`,
//!   `UPDATE`, `DELETE`, `MERGE`, `CREATE TABLE AS`…; not utility commands,
//!   not `EXPLAIN` without `ANALYZE`), and **started under a context** with
//!   a tenant. It is the tenant's at the statement's start, as the setting
//!   names it (read from the setting, not verified again: a context that
//!   lapses within the transaction still counts under its tenant, though it
//!   reads nothing). Without a context (or a bypass context without a
//!   tenant) nothing is counted.
//! * `statements`, `rows_returned`, `rows_written` and `total_exec_time`
//!   count the statements that ran to their end (`ExecutorEnd`); a
//!   statement that fails counts in none of them.
//! * `denials`: every denial of `tenant_guard.stats` (`stats::bump`) while
//!   a context with a tenant is set, under that tenant.
//! * `transactions`: every transaction (committed or rolled back) in which
//!   a statement started under the tenant's context or a write of it was
//!   denied: a transaction that switches tenants counts for each.
//!
//! Cost: each backend adds up its transaction's activity per tenant in its
//! own memory; the table is written once per transaction that has any, at
//! its end (pre-commit, pre-prepare or abort): one shared `LWLock` and one
//! hash look-up per tenant of the transaction (the exclusive lock only to
//! add a tenant, evict, or reset). The tenant is read from the context
//! setting once per change of it (`gucs::context_epoch`).
//!
//! Where the table lives:
//! * With `tenant_guard` in `shared_preload_libraries`: a hash table in
//!   shared memory of `tenant_guard.tenant_stats_max` rows (a
//!   postmaster-level setting), keyed by database, tenant id length and a
//!   SipHash of the tenant id under a key drawn at server start (so ids
//!   cannot be chosen to collide); the first `tenant_counts::TENANT_BYTES`
//!   bytes of the id are kept for display. When it is full, the least
//!   active rows make room (`tenant_counts::victims`).
//! * Otherwise: in each backend, a table of the same bound, and the view
//!   says so with a NOTICE.

use crate::error::{Code, Failure};
use crate::gucs;
use crate::hooks;
use crate::tenant_counts::{self, Activity, Usage, TENANT_BYTES};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_void, CStr};
use std::ptr::{self, null_mut};
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

const NAME: &CStr = c"tenant_guard tenant_stats";
const HEADER_NAME: &CStr = c"tenant_guard tenant_stats header";

/// A row's key in the shared table (16 bytes, no padding).
#[repr(C)]
#[derive(Clone, Copy)]
struct Key {
    db: u32,
    /// The tenant id's length in bytes (saturated).
    len: u32,
    /// SipHash-2-4 of the tenant id under the header's key.
    hash: u64,
}

/// A row of the shared table. Its counters are atomics, added to under the
/// shared lock; the row itself is created and removed under the exclusive
/// lock.
#[repr(C)]
struct Entry {
    key: Key,
    tenant_len: u32,
    tenant: [u8; TENANT_BYTES],
    transactions: AtomicU64,
    statements: AtomicU64,
    rows_returned: AtomicU64,
    rows_written: AtomicU64,
    exec_us: AtomicU64,
    denials: AtomicU64,
    last_seen: AtomicI64,
    usage: AtomicU64,
}

/// The shared table's header.
#[repr(C)]
struct Header {
    lock: *mut pg_sys::LWLock,
    reset_at: AtomicI64,
    k0: u64,
    k1: u64,
    max: i64,
}

/// Set in the postmaster at shared memory start-up (inherited by every
/// backend it forks); null without `shared_preload_libraries`.
static HEADER: AtomicPtr<Header> = AtomicPtr::new(null_mut());
static TABLE: AtomicPtr<pg_sys::HTAB> = AtomicPtr::new(null_mut());

static mut PREVIOUS_SHMEM_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREVIOUS_SHMEM_STARTUP: pg_sys::shmem_startup_hook_type = None;
static mut PREVIOUS_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREVIOUS_EXECUTOR_RUN: pg_sys::ExecutorRun_hook_type = None;
static mut PREVIOUS_EXECUTOR_FINISH: pg_sys::ExecutorFinish_hook_type = None;
static mut PREVIOUS_EXECUTOR_END: pg_sys::ExecutorEnd_hook_type = None;

fn now() -> i64 {
    // SAFETY: reads the clock; no preconditions.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

fn max_rows() -> usize {
    usize::try_from(gucs::TENANT_STATS_MAX.get())
        .unwrap_or(1)
        .max(1)
}

fn shared() -> Option<(&'static Header, *mut pg_sys::HTAB)> {
    let h = HEADER.load(Relaxed);
    let t = TABLE.load(Relaxed);
    if h.is_null() || t.is_null() {
        return None;
    }
    // SAFETY: set once at shared memory start-up to a struct in shared
    // memory that lives as long as the server.
    Some((unsafe { &*h }, t))
}

fn shared_size() -> usize {
    // SAFETY: plain arithmetic on sizes; no preconditions.
    unsafe {
        pg_sys::add_size(
            std::mem::size_of::<Header>(),
            pg_sys::hash_estimate_size(
                max_rows() as std::ffi::c_long,
                std::mem::size_of::<Entry>(),
            ),
        )
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_request() {
    // SAFETY: called by the postmaster in its shared memory request phase;
    // the previous hook is called first (hooks chain).
    unsafe {
        if let Some(previous) = PREVIOUS_SHMEM_REQUEST {
            pg_sys::ffi::pg_guard_ffi_boundary(|| previous());
        }
        pg_sys::RequestAddinShmemSpace(shared_size());
        pg_sys::RequestNamedLWLockTranche(NAME.as_ptr(), 1);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    // SAFETY: called once shared memory exists, in the postmaster (and in
    // each backend on EXEC_BACKEND builds); the structures are created
    // under AddinShmemInitLock as PostgreSQL's own modules do, with the
    // space and tranche requested in shmem_request.
    unsafe {
        if let Some(previous) = PREVIOUS_SHMEM_STARTUP {
            pg_sys::ffi::pg_guard_ffi_boundary(|| previous());
        }
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let h = pg_sys::ShmemInitStruct(
            HEADER_NAME.as_ptr(),
            std::mem::size_of::<Header>(),
            &mut found,
        )
        .cast::<Header>();
        if !found {
            let mut k = [0u64; 2];
            if !pg_sys::pg_strong_random(k.as_mut_ptr().cast(), std::mem::size_of_val(&k)) {
                // Still a working table; only the collision resistance
                // against chosen ids depends on the key.
                k = [now() as u64, std::process::id() as u64];
            }
            ptr::write(
                h,
                Header {
                    lock: &raw mut (*pg_sys::GetNamedLWLockTranche(NAME.as_ptr())).lock,
                    reset_at: AtomicI64::new(now()),
                    k0: k[0],
                    k1: k[1],
                    max: max_rows() as i64,
                },
            );
        }
        let mut info = pg_sys::HASHCTL {
            keysize: std::mem::size_of::<Key>(),
            entrysize: std::mem::size_of::<Entry>(),
            ..Default::default()
        };
        let rows = (*h).max as std::ffi::c_long;
        let t = pg_sys::ShmemInitHash(
            NAME.as_ptr(),
            rows,
            rows,
            &mut info,
            (pg_sys::HASH_ELEM | pg_sys::HASH_BLOBS) as i32,
        );
        pg_sys::LWLockRelease(init_lock);
        HEADER.store(h, Relaxed);
        TABLE.store(t, Relaxed);
    }
}

/// Installs the executor hooks and the transaction callback, and, when
/// loaded through `shared_preload_libraries`, requests the shared table.
/// Called once per process from `_PG_init` (through `stats::init`).
pub fn init() {
    // SAFETY: _PG_init runs once per process; every previous hook is kept
    // and called (hooks chain); the callback takes no argument.
    unsafe {
        if pg_sys::process_shared_preload_libraries_in_progress {
            PREVIOUS_SHMEM_REQUEST = pg_sys::shmem_request_hook;
            pg_sys::shmem_request_hook = Some(shmem_request);
            PREVIOUS_SHMEM_STARTUP = pg_sys::shmem_startup_hook;
            pg_sys::shmem_startup_hook = Some(shmem_startup);
        }
        PREVIOUS_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREVIOUS_EXECUTOR_RUN = pg_sys::ExecutorRun_hook;
        pg_sys::ExecutorRun_hook = Some(executor_run);
        PREVIOUS_EXECUTOR_FINISH = pg_sys::ExecutorFinish_hook;
        pg_sys::ExecutorFinish_hook = Some(executor_finish);
        PREVIOUS_EXECUTOR_END = pg_sys::ExecutorEnd_hook;
        pg_sys::ExecutorEnd_hook = Some(executor_end);
        pg_sys::RegisterXactCallback(Some(at_transaction_end), null_mut());
    }
}

/// This backend's running account.
struct State {
    /// Depth of `ExecutorRun` / `ExecutorFinish` calls: 0 at top level.
    depth: u32,
    /// Top-level queries started under a tenant and not yet ended: the
    /// query (by address) and its tenant's index in `tenants`.
    running: Vec<(usize, usize)>,
    /// This transaction's activity, per tenant.
    tenants: Vec<(Rc<str>, Activity)>,
    /// The tenant of the context setting at `gucs::context_epoch`.
    cached: Option<(u64, Option<Rc<str>>)>,
}

thread_local! {
    static STATE: RefCell<State> = const { RefCell::new(State {
        depth: 0,
        running: Vec::new(),
        tenants: Vec::new(),
        cached: None,
    }) };
    /// Without shared memory: this backend's table and its reset time.
    static LOCAL: RefCell<(LocalTable, i64)> = RefCell::new((HashMap::new(), now()));
}

/// The per-backend table: by (database, tenant id).
type LocalTable = HashMap<(u32, String), LocalRow>;

#[derive(Default)]
struct LocalRow {
    transactions: u64,
    a: Activity,
    last_seen: i64,
    usage: u64,
}

fn tracking() -> bool {
    // SAFETY: ParallelWorkerNumber is a plain int of this backend, set once
    // when a worker starts. Workers count nothing: their leader counts its
    // statement.
    gucs::TRACK_TENANTS.get() && unsafe { pg_sys::ParallelWorkerNumber } < 0
}

/// The tenant named by the context setting (not verified again; see the
/// module header), read once per change of the setting.
fn context_tenant(s: &mut State) -> Option<Rc<str>> {
    let epoch = gucs::context_epoch();
    if let Some((e, t)) = &s.cached {
        if *e == epoch {
            return t.clone();
        }
    }
    // SAFETY: `CONTEXT` is a registered string setting; its pointer is NULL
    // or a NUL-terminated string owned by the GUC machinery, read (and
    // copied) at once.
    let value = unsafe {
        let p = *gucs::CONTEXT.as_ptr();
        (!p.is_null()).then(|| CStr::from_ptr(p))
    };
    let tenant = value
        .and_then(|v| v.to_str().ok())
        .map(|v| crate::context::unpack(v).0)
        .filter(|t| !t.is_empty())
        .map(Rc::<str>::from);
    s.cached = Some((epoch, tenant.clone()));
    tenant
}

/// The index of the current context's tenant in this transaction's
/// account (added if new), or `None` without a tenant.
fn current_slot(s: &mut State) -> Option<usize> {
    let tenant = context_tenant(s)?;
    if let Some(i) = s
        .tenants
        .iter()
        .position(|(t, _)| Rc::ptr_eq(t, &tenant) || **t == *tenant)
    {
        return Some(i);
    }
    s.tenants.push((tenant, Activity::default()));
    Some(s.tenants.len() - 1)
}

/// A write of the current context was denied (called by `stats::bump` for
/// every denial counter).
pub fn denied() {
    if !tracking() {
        return;
    }
    STATE.with(|s| {
        // Called from the log hook too: never panic on a busy state.
        if let Ok(mut s) = s.try_borrow_mut() {
            if let Some(i) = current_slot(&mut s) {
                s.tenants[i].1.denials += 1;
            }
        }
    });
}

/// The slot of a top-level query being run, if it is counted.
fn running_slot(query_desc: *mut pg_sys::QueryDesc) -> Option<usize> {
    STATE.with(|s| {
        let s = s.borrow();
        if s.depth != 0 {
            return None;
        }
        s.running
            .iter()
            .rev()
            .find(|(q, _)| *q == query_desc as usize)
            .map(|&(_, slot)| slot)
    })
}

/// Runs `f` one level deeper (restored however `f` ends) and, for a
/// counted top-level query, adds its time to the query's tenant.
fn nested(query_desc: *mut pg_sys::QueryDesc, f: impl FnOnce()) {
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            STATE.with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    s.depth = s.depth.saturating_sub(1);
                }
            });
        }
    }
    let slot = running_slot(query_desc);
    let start = slot.map(|_| Instant::now());
    STATE.with(|s| s.borrow_mut().depth += 1);
    {
        let _depth = Depth;
        f();
    }
    if let (Some(slot), Some(start)) = (slot, start) {
        let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        STATE.with(|s| {
            if let Some((_, a)) = s.borrow_mut().tenants.get_mut(slot) {
                a.exec_us = a.exec_us.saturating_add(us);
            }
        });
    }
}

/// Most top-level queries kept track of at once (portals of one
/// transaction; more only when queries fail, which are never ended).
const MAX_RUNNING: usize = 64;

/// The installed hooks: with `tenant_guard.track_tenants` off (the default)
/// a call is only passed on, unguarded (see `hooks`): this frame holds
/// nothing. Turning the setting on inside a running statement counts the
/// statements started after it (a nested one as if it were top-level).
unsafe extern "C-unwind" fn executor_start(query_desc: *mut pg_sys::QueryDesc, eflags: i32) {
    // SAFETY: the executor's arguments, passed on unchanged.
    unsafe {
        if !gucs::TRACK_TENANTS.get() {
            return hooks::executor_start(PREVIOUS_EXECUTOR_START, query_desc, eflags);
        }
        executor_start_counted(query_desc, eflags)
    }
}

#[cfg(not(feature = "pg18"))]
unsafe extern "C-unwind" fn executor_run(
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
    execute_once: bool,
) {
    // SAFETY: as in executor_start.
    unsafe {
        if !gucs::TRACK_TENANTS.get() {
            return hooks::executor_run(
                PREVIOUS_EXECUTOR_RUN,
                query_desc,
                direction,
                count,
                execute_once,
            );
        }
        executor_run_counted(query_desc, direction, count, execute_once)
    }
}

#[cfg(feature = "pg18")]
unsafe extern "C-unwind" fn executor_run(
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
) {
    // SAFETY: as in executor_start.
    unsafe {
        if !gucs::TRACK_TENANTS.get() {
            return hooks::executor_run(PREVIOUS_EXECUTOR_RUN, query_desc, direction, count);
        }
        executor_run_counted(query_desc, direction, count)
    }
}

unsafe extern "C-unwind" fn executor_finish(query_desc: *mut pg_sys::QueryDesc) {
    // SAFETY: as in executor_start.
    unsafe {
        if !gucs::TRACK_TENANTS.get() {
            return hooks::executor_finish(PREVIOUS_EXECUTOR_FINISH, query_desc);
        }
        executor_finish_counted(query_desc)
    }
}

/// With the setting off, a query counted when it started is not counted
/// at its end (the transaction's end forgets it).
unsafe extern "C-unwind" fn executor_end(query_desc: *mut pg_sys::QueryDesc) {
    // SAFETY: as in executor_start.
    unsafe {
        if !gucs::TRACK_TENANTS.get() {
            return hooks::executor_end(PREVIOUS_EXECUTOR_END, query_desc);
        }
        executor_end_counted(query_desc)
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn executor_start_counted(
    query_desc: *mut pg_sys::QueryDesc,
    eflags: i32,
) {
    // SAFETY: the executor's arguments, passed on unchanged; an error in a
    // hook below ours is caught at the FFI boundary.
    unsafe {
        pg_sys::ffi::pg_guard_ffi_boundary(|| {
            hooks::executor_start(PREVIOUS_EXECUTOR_START, query_desc, eflags)
        })
    }
    if !tracking() || eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 {
        return;
    }
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.depth != 0 {
            return;
        }
        if let Some(slot) = current_slot(&mut s) {
            if s.running.len() >= MAX_RUNNING {
                s.running.remove(0);
            }
            s.running.push((query_desc as usize, slot));
        }
    });
}

#[cfg(not(feature = "pg18"))]
#[pg_guard]
unsafe extern "C-unwind" fn executor_run_counted(
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
    execute_once: bool,
) {
    nested(query_desc, || {
        // SAFETY: as in executor_start.
        unsafe {
            pg_sys::ffi::pg_guard_ffi_boundary(|| {
                hooks::executor_run(
                    PREVIOUS_EXECUTOR_RUN,
                    query_desc,
                    direction,
                    count,
                    execute_once,
                )
            })
        }
    });
}

#[cfg(feature = "pg18")]
#[pg_guard]
unsafe extern "C-unwind" fn executor_run_counted(
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
) {
    nested(query_desc, || {
        // SAFETY: as in executor_start.
        unsafe {
            pg_sys::ffi::pg_guard_ffi_boundary(|| {
                hooks::executor_run(PREVIOUS_EXECUTOR_RUN, query_desc, direction, count)
            })
        }
    });
}

#[pg_guard]
unsafe extern "C-unwind" fn executor_finish_counted(query_desc: *mut pg_sys::QueryDesc) {
    nested(query_desc, || {
        // SAFETY: as in executor_start.
        unsafe {
            pg_sys::ffi::pg_guard_ffi_boundary(|| {
                hooks::executor_finish(PREVIOUS_EXECUTOR_FINISH, query_desc)
            })
        }
    });
}

#[pg_guard]
unsafe extern "C-unwind" fn executor_end_counted(query_desc: *mut pg_sys::QueryDesc) {
    let counted = STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.depth != 0 {
            return None;
        }
        let i = s
            .running
            .iter()
            .rposition(|(q, _)| *q == query_desc as usize)?;
        Some(s.running.remove(i).1)
    });
    if let Some(slot) = counted {
        // SAFETY: the query being ended: its estate is still there (it is
        // freed by standard_ExecutorEnd, below).
        let (operation, processed) = unsafe {
            let e = (*query_desc).estate;
            (
                (*query_desc).operation,
                if e.is_null() { 0 } else { (*e).es_processed },
            )
        };
        STATE.with(|s| {
            if let Some((_, a)) = s.borrow_mut().tenants.get_mut(slot) {
                a.statements += 1;
                use pg_sys::CmdType::*;
                match operation {
                    CMD_SELECT => a.rows_returned = a.rows_returned.saturating_add(processed),
                    CMD_INSERT | CMD_UPDATE | CMD_DELETE | CMD_MERGE => {
                        a.rows_written = a.rows_written.saturating_add(processed)
                    }
                    _ => {}
                }
            }
        });
    }
    // SAFETY: as in executor_start.
    unsafe {
        pg_sys::ffi::pg_guard_ffi_boundary(|| {
            hooks::executor_end(PREVIOUS_EXECUTOR_END, query_desc)
        })
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn at_transaction_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    if !matches!(
        event,
        XACT_EVENT_PRE_COMMIT | XACT_EVENT_PRE_PREPARE | XACT_EVENT_ABORT
    ) {
        return;
    }
    let tenants = STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.running.clear();
        std::mem::take(&mut s.tenants)
    });
    if !tenants.is_empty() {
        flush(tenants);
    }
}

/// Adds a transaction's activity to the table: one transaction per tenant.
/// Never raises (it runs at abort too).
fn flush(tenants: Vec<(Rc<str>, Activity)>) {
    // SAFETY: a plain read of this backend's database.
    let db = unsafe { pg_sys::MyDatabaseId }.to_u32();
    let at = now();
    match shared() {
        Some((h, table)) => flush_shared(h, table, db, &tenants, at),
        None => LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            let max = max_rows();
            for (t, a) in &tenants {
                let key = (db, t.to_string());
                if !l.0.contains_key(&key) && l.0.len() >= max {
                    evict_local(&mut l.0, max);
                }
                let row = l.0.entry(key).or_default();
                row.transactions += 1;
                row.a.add(a);
                row.last_seen = at;
                row.usage += tenant_counts::usage_of(1);
            }
        }),
    }
}

fn evict_local(rows: &mut LocalTable, max: usize) {
    let keys: Vec<(u32, String)> = rows.keys().cloned().collect();
    let usage: Vec<Usage> = keys
        .iter()
        .map(|k| Usage {
            usage: rows[k].usage,
            last_seen: rows[k].last_seen,
        })
        .collect();
    for i in tenant_counts::victims(&usage, max) {
        rows.remove(&keys[i]);
    }
    for r in rows.values_mut() {
        r.usage = tenant_counts::decay(r.usage);
    }
}

fn key_of(h: &Header, db: u32, tenant: &str) -> Key {
    use std::hash::Hasher;
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new_with_keys(h.k0, h.k1);
    hasher.write(tenant.as_bytes());
    Key {
        db,
        len: u32::try_from(tenant.len()).unwrap_or(u32::MAX),
        hash: hasher.finish(),
    }
}

fn add_to(e: &Entry, a: &Activity, at: i64) {
    e.transactions.fetch_add(1, Relaxed);
    e.statements.fetch_add(a.statements, Relaxed);
    e.rows_returned.fetch_add(a.rows_returned, Relaxed);
    e.rows_written.fetch_add(a.rows_written, Relaxed);
    e.exec_us.fetch_add(a.exec_us, Relaxed);
    e.denials.fetch_add(a.denials, Relaxed);
    e.last_seen.fetch_max(at, Relaxed);
    e.usage.fetch_add(tenant_counts::usage_of(1), Relaxed);
}

fn flush_shared(
    h: &Header,
    table: *mut pg_sys::HTAB,
    db: u32,
    tenants: &[(Rc<str>, Activity)],
    at: i64,
) {
    let mut missing = Vec::new();
    // SAFETY: the table and its lock from shared memory; rows are read
    // under the lock; hash_search with HASH_FIND never raises.
    unsafe {
        pg_sys::LWLockAcquire(h.lock, pg_sys::LWLockMode::LW_SHARED);
        for (t, a) in tenants {
            let key = key_of(h, db, t);
            let e = pg_sys::hash_search(
                table,
                (&raw const key).cast::<c_void>(),
                pg_sys::HASHACTION::HASH_FIND,
                null_mut(),
            )
            .cast::<Entry>();
            if e.is_null() {
                missing.push((key, t, a));
            } else {
                add_to(&*e, a, at);
            }
        }
        pg_sys::LWLockRelease(h.lock);
    }
    if missing.is_empty() {
        return;
    }
    // SAFETY: as above, under the exclusive lock; HASH_ENTER_NULL returns
    // NULL instead of raising when shared memory is exhausted (the
    // transaction then goes uncounted).
    unsafe {
        pg_sys::LWLockAcquire(h.lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        for (key, t, a) in missing {
            let mut e = pg_sys::hash_search(
                table,
                (&raw const key).cast::<c_void>(),
                pg_sys::HASHACTION::HASH_FIND,
                null_mut(),
            )
            .cast::<Entry>();
            if e.is_null() {
                if pg_sys::hash_get_num_entries(table) >= h.max as std::ffi::c_long {
                    evict_shared(table, h.max as usize);
                }
                let mut found = false;
                e = pg_sys::hash_search(
                    table,
                    (&raw const key).cast::<c_void>(),
                    pg_sys::HASHACTION::HASH_ENTER_NULL,
                    &mut found,
                )
                .cast::<Entry>();
                if e.is_null() {
                    continue;
                }
                if !found {
                    let shown = tenant_counts::clip(t).as_bytes();
                    let mut tenant = [0u8; TENANT_BYTES];
                    tenant[..shown.len()].copy_from_slice(shown);
                    ptr::write(
                        e,
                        Entry {
                            key,
                            tenant_len: shown.len() as u32,
                            tenant,
                            transactions: AtomicU64::new(0),
                            statements: AtomicU64::new(0),
                            rows_returned: AtomicU64::new(0),
                            rows_written: AtomicU64::new(0),
                            exec_us: AtomicU64::new(0),
                            denials: AtomicU64::new(0),
                            last_seen: AtomicI64::new(at),
                            usage: AtomicU64::new(0),
                        },
                    );
                }
            }
            add_to(&*e, a, at);
        }
        pg_sys::LWLockRelease(h.lock);
    }
}

/// Every row of the shared table (the caller holds its lock).
///
/// # Safety
/// `table` is the shared table, locked by the caller.
unsafe fn entries(table: *mut pg_sys::HTAB) -> Vec<*mut Entry> {
    let mut out = Vec::new();
    // SAFETY: a complete sequential scan of a locked table.
    unsafe {
        let mut scan = pg_sys::HASH_SEQ_STATUS::default();
        pg_sys::hash_seq_init(&mut scan, table);
        loop {
            let e = pg_sys::hash_seq_search(&mut scan).cast::<Entry>();
            if e.is_null() {
                break;
            }
            out.push(e);
        }
    }
    out
}

/// Makes room in the full shared table (the caller holds the exclusive
/// lock): removes `tenant_counts::victims`, decays the rest.
///
/// # Safety
/// `table` is the shared table, locked exclusively by the caller.
unsafe fn evict_shared(table: *mut pg_sys::HTAB, max: usize) {
    // SAFETY: the caller holds the exclusive lock; the rows are valid until
    // removed, and each is removed once.
    unsafe {
        let rows = entries(table);
        let usage: Vec<Usage> = rows
            .iter()
            .map(|&e| Usage {
                usage: (*e).usage.load(Relaxed),
                last_seen: (*e).last_seen.load(Relaxed),
            })
            .collect();
        let victims = tenant_counts::victims(&usage, max);
        for &i in &victims {
            let key = (*rows[i]).key;
            pg_sys::hash_search(
                table,
                (&raw const key).cast::<c_void>(),
                pg_sys::HASHACTION::HASH_REMOVE,
                null_mut(),
            );
        }
        for (i, &e) in rows.iter().enumerate() {
            if !victims.contains(&i) {
                let u = (*e).usage.load(Relaxed);
                (*e).usage.store(tenant_counts::decay(u), Relaxed);
            }
        }
    }
}

fn notice_if_local() {
    if shared().is_none() {
        Failure::new(
            Code::ERRCODE_WARNING,
            "tenant_guard.tenant_stats counts this backend only",
        )
        .detail("tenant_guard is not in shared_preload_libraries, so no shared memory holds cluster-wide counters.")
        .hint("Add tenant_guard to shared_preload_libraries and restart the server.")
        .report(PgLogLevel::NOTICE);
    }
}

fn timestamptz(ts: i64) -> Option<pgrx::datum::TimestampWithTimeZone> {
    pgrx::datum::TimestampWithTimeZone::try_from(ts).ok()
}

fn database_name(db: u32) -> Option<String> {
    // SAFETY: a catalog look-up by oid; NULL for a dropped database, else a
    // palloc'd NUL-terminated name.
    unsafe {
        let p = pg_sys::get_database_name(pg_sys::Oid::from(db));
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

type Row = (
    String,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    f64,
    i64,
    Option<pgrx::datum::TimestampWithTimeZone>,
    Option<pgrx::datum::TimestampWithTimeZone>,
    String,
);

/// The rows of `tenant_guard.tenant_stats`.
#[pg_extern(volatile, parallel_restricted, schema = "tenant_guard_internal")]
#[allow(clippy::type_complexity)]
fn tenant_stats_rows() -> TableIterator<
    'static,
    (
        name!(tenant, String),
        name!(database, Option<String>),
        name!(transactions, i64),
        name!(statements, i64),
        name!(rows_returned, i64),
        name!(rows_written, i64),
        name!(total_exec_time, f64),
        name!(denials, i64),
        name!(last_seen, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(stats_reset, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(scope, String),
    ),
> {
    notice_if_local();
    // (database oid, row without the database name)
    let mut rows: Vec<(u32, Row)> = Vec::new();
    match shared() {
        Some((h, table)) => {
            let reset = timestamptz(h.reset_at.load(Relaxed));
            // SAFETY: the rows are copied under the shared lock.
            unsafe {
                pg_sys::LWLockAcquire(h.lock, pg_sys::LWLockMode::LW_SHARED);
                for e in entries(table) {
                    let e = &*e;
                    let len = (e.tenant_len as usize).min(TENANT_BYTES);
                    rows.push((
                        e.key.db,
                        (
                            String::from_utf8_lossy(&e.tenant[..len]).into_owned(),
                            None,
                            big(e.transactions.load(Relaxed)),
                            big(e.statements.load(Relaxed)),
                            big(e.rows_returned.load(Relaxed)),
                            big(e.rows_written.load(Relaxed)),
                            tenant_counts::exec_ms(e.exec_us.load(Relaxed)),
                            big(e.denials.load(Relaxed)),
                            timestamptz(e.last_seen.load(Relaxed)),
                            reset,
                            "cluster".to_owned(),
                        ),
                    ));
                }
                pg_sys::LWLockRelease(h.lock);
            }
        }
        None => LOCAL.with(|l| {
            let l = l.borrow();
            let reset = timestamptz(l.1);
            for ((db, tenant), r) in &l.0 {
                rows.push((
                    *db,
                    (
                        tenant_counts::clip(tenant).to_owned(),
                        None,
                        big(r.transactions),
                        big(r.a.statements),
                        big(r.a.rows_returned),
                        big(r.a.rows_written),
                        tenant_counts::exec_ms(r.a.exec_us),
                        big(r.a.denials),
                        timestamptz(r.last_seen),
                        reset,
                        "backend".to_owned(),
                    ),
                ));
            }
        }),
    }
    let mut names: HashMap<u32, Option<String>> = HashMap::new();
    let out: Vec<Row> = rows
        .into_iter()
        .map(|(db, mut r)| {
            r.1 = names.entry(db).or_insert_with(|| database_name(db)).clone();
            r
        })
        .collect();
    TableIterator::new(out)
}

/// Empties `tenant_guard.tenant_stats` (the cluster's, or this backend's
/// without `shared_preload_libraries`) and sets its `stats_reset` to now.
/// Returns the new `stats_reset`.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn reset_tenant_stats() -> Option<pgrx::datum::TimestampWithTimeZone> {
    notice_if_local();
    let at = now();
    match shared() {
        // SAFETY: rows removed under the exclusive lock, each once (removing
        // the row a scan just returned is allowed by dynahash).
        Some((h, table)) => unsafe {
            pg_sys::LWLockAcquire(h.lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
            for e in entries(table) {
                let key = (*e).key;
                pg_sys::hash_search(
                    table,
                    (&raw const key).cast::<c_void>(),
                    pg_sys::HASHACTION::HASH_REMOVE,
                    null_mut(),
                );
            }
            h.reset_at.store(at, Relaxed);
            pg_sys::LWLockRelease(h.lock);
        },
        None => LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            l.0.clear();
            l.1 = at;
        }),
    }
    timestamptz(at)
}

extension_sql!(
    r#"
CREATE VIEW tenant_guard.tenant_stats AS
  SELECT tenant, database, transactions, statements, rows_returned, rows_written,
         total_exec_time, denials, last_seen, stats_reset, scope
    FROM tenant_guard_internal.tenant_stats_rows();
COMMENT ON VIEW tenant_guard.tenant_stats IS
  'per tenant of the context (with tenant_guard.track_tenants on): transactions, top-level statements, rows returned and written, execution time (ms), write denials, last seen; tenant ids are business data: readable by pg_read_all_stats only';
COMMENT ON FUNCTION tenant_guard_internal.tenant_stats_rows() IS 'the rows of tenant_guard.tenant_stats';
COMMENT ON FUNCTION tenant_guard.reset_tenant_stats() IS
  'empties tenant_guard.tenant_stats and sets its stats_reset to now; returns stats_reset';
REVOKE ALL ON tenant_guard.tenant_stats FROM PUBLIC;
GRANT SELECT ON tenant_guard.tenant_stats TO pg_read_all_stats;
REVOKE ALL ON FUNCTION tenant_guard_internal.tenant_stats_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard_internal.tenant_stats_rows() TO pg_read_all_stats;
REVOKE ALL ON FUNCTION tenant_guard.reset_tenant_stats() FROM PUBLIC;
"#,
    name = "tenant_stats_view",
    requires = ["bootstrap", tenant_stats_rows, reset_tenant_stats]
);
