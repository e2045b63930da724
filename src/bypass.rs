//! Bypass through a role. With `tenant_guard.bypass_role` naming a role
//! that has `BYPASSRLS` (and is not a superuser), a verified bypass token
//! makes the rest of its transaction run as that role: row-level security
//! does not apply to it at all, so a support session reads a table as fast
//! as the table's owner would, whatever the number of tenants, and never
//! materialises the registry. Without the setting, bypass tokens keep the
//! registry's read set (`context::bypass_set`).
//!
//! Entering and leaving:
//! * `set_context` with a bypass token (transaction-local only, at the top
//!   level of the transaction: a subtransaction's commit would restore the
//!   read-write state it began with and keep the user) switches the
//!   current user to the role, keeping the security context flags, like
//!   `SET LOCAL ROLE` would without needing membership in it, and makes the
//!   transaction read-only (`SET LOCAL transaction_read_only = on`, which
//!   PostgreSQL does not let it undo): nothing created, granted or written
//!   as the role outlives the token, and code the session runs (a view, a
//!   function of another owner) cannot copy rows out through a write.
//! * Any later change of the context setting to a value that is not a bypass
//!   context (`set_context` with another token, `clear_context`, `RESET`)
//!   switches back at once (the setting's assign hook).
//! * The end of the transaction switches back (commit, through a
//!   transaction callback; `PREPARE TRANSACTION` is refused, since a
//!   prepared transaction keeps its locks beyond the session; an
//!   abort is undone by PostgreSQL itself, which restores the user it
//!   saved).
//! * Every query the executor starts or runs as the role, and every utility
//!   command (`COPY`, `FETCH`, DDL) but transaction control, `CLOSE` and
//!   `DEALLOCATE`, checks first that the context is still a valid bypass
//!   context, against the clock at that moment (the token may expire within
//!   the transaction, or within a long `DO` block): if not, it fails with
//!   `42501`.
//!
//! * Once the transaction has left its bypass context (the context changed,
//!   `SET ROLE`/`RESET ROLE`), it
//!   can only end: every query and every utility command but transaction
//!   control, `CLOSE` and `DEALLOCATE` fails with `42501` until then. Plans
//!   made as the role have no row-level security quals, and PostgreSQL
//!   keeps some beyond the statement that made them (an open cursor or
//!   portal, the rows a set-returning function has stored; before
//!   PostgreSQL 18, the plans of a SQL function called from PL/pgSQL, kept
//!   for the transaction), so they would read every tenant under the next
//!   context. A rollback to a savepoint that brings the bypass context back
//!   lifts the refusal. A
//!   `SECURITY DEFINER` function (and tenant_guard's own privileged work)
//!   called while the bypass context is in force runs as usual, and the
//!   token is checked before each of its queries too.
//! * No cursor `WITH HOLD` gets rows read as the role: its rows are kept past
//!   the commit, where no check runs. `DECLARE … WITH HOLD` is refused in a
//!   transaction that entered a bypass context, a bypass context cannot be
//!   entered in a transaction that declared one (PostgreSQL fills holdable
//!   cursors at `COMMIT`, before the transaction callbacks switch back, and
//!   the fill may itself call `set_context`), and running such a cursor as
//!   the role fails.
//!
//! PostgreSQL re-plans a cached plan made under a `BYPASSRLS` role before
//! another role runs it (`RLS_NONE_ENV`), so plans never cross over.

use crate::error::Failure;
use crate::hooks;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering::Relaxed};

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

/// `SWITCHED` is set: the hooks' test (a plain load, no thread-local look-up).
/// Backends are single-threaded; the atomic only makes the static safe.
static ENTERED: AtomicBool = AtomicBool::new(false);

/// A `DECLARE … WITH HOLD` ran in this transaction (set by the utility
/// hook, cleared at the end of the transaction): such a cursor is filled at
/// `COMMIT`, and a bypass context entered in this transaction (also from
/// inside that fill) would put rows read as the role into it.
static HOLD_DECLARED: AtomicBool = AtomicBool::new(false);

/// Statements that may write, running now (executor queries that modify
/// or lock rows or fill a new table, and utility commands but the few that
/// only run other statements or read): a bypass context entered inside one
/// would let it go on writing as the role, since PostgreSQL checks that a
/// transaction is read-only when a statement starts.
///
/// Each is counted in with a small memory context (a [`Tracker`]) created
/// when it starts, beside the executor's own state: a child of the context
/// current then, as the executor's is. A callback counts it out when that
/// context goes: deleted at the statement's end (`ExecutorEnd`, the utility
/// command's return), or with its parent when an error abandons the
/// statement. A statement still running keeps its executor's state, so its
/// tracker too: it cannot be counted out early. One abandoned with its
/// parent kept (rare) stays counted: a refusal, until the transaction ends.
static WRITING: AtomicU32 = AtomicU32::new(0);
/// The setting nest level this transaction pushed when it first entered the
/// role (0: none). Every setting changed after that, also for the session
/// (`SET`, `set_config(…, false)`), is undone before the commit: a value
/// computed from rows read as the role would otherwise outlive the
/// transaction and serve the next request on the connection.
static GUC_LEVEL: AtomicI32 = AtomicI32::new(0);

/// Counts transactions: a tracker whose context outlives its transaction
/// counts nothing out in the next one.
static XACT_GEN: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// The trackers of the writing queries running now, by QueryDesc.
    static LIVE: std::cell::RefCell<Vec<(usize, pg_sys::MemoryContext)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Lives in its own memory context (see [`WRITING`]).
#[repr(C)]
struct Tracker {
    callback: pg_sys::MemoryContextCallback,
    generation: u32,
    context: pg_sys::MemoryContext,
}

/// Counts a statement that may write in, until its tracker (returned) goes.
///
/// # Safety
/// Inside a transaction, with a valid `CurrentMemoryContext`.
unsafe fn track_writer() -> pg_sys::MemoryContext {
    // SAFETY: a small child of the current context, a struct allocated in
    // it, and a callback registered on it that PostgreSQL calls before the
    // context's memory is released (reset or delete).
    unsafe {
        let context = pg_sys::AllocSetContextCreateInternal(
            pg_sys::CurrentMemoryContext,
            c"tenant_guard writing statement".as_ptr(),
            pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
            pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
            pg_sys::ALLOCSET_SMALL_MAXSIZE as usize,
        );
        let t =
            pg_sys::MemoryContextAlloc(context, std::mem::size_of::<Tracker>()).cast::<Tracker>();
        t.write(Tracker {
            callback: pg_sys::MemoryContextCallback {
                func: Some(writer_done),
                arg: t.cast(),
                next: std::ptr::null_mut(),
            },
            generation: XACT_GEN.load(Relaxed),
            context,
        });
        pg_sys::MemoryContextRegisterResetCallback(context, &raw mut (*t).callback);
        WRITING.fetch_add(1, Relaxed);
        context
    }
}

/// A tracker's context is going: its statement ended or was abandoned.
/// Never raises.
unsafe extern "C-unwind" fn writer_done(arg: *mut std::ffi::c_void) {
    // SAFETY: `arg` is the Tracker, still allocated while its context's
    // callbacks run.
    let (generation, context) = unsafe {
        let t = arg.cast::<Tracker>();
        ((*t).generation, (*t).context)
    };
    if generation == XACT_GEN.load(Relaxed) {
        let _ = WRITING.fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }
    LIVE.with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.retain(|(_, c)| *c != context);
        }
    });
}

/// Ends a tracker (the callback counts its statement out).
///
/// # Safety
/// `context` is a live tracker context of this transaction.
unsafe fn untrack_writer(context: pg_sys::MemoryContext) {
    // SAFETY: as documented; deleting it runs writer_done.
    unsafe { pg_sys::MemoryContextDelete(context) };
}

/// The role of `SWITCHED` (0 if none): [`active`]'s test, without a
/// thread-local look-up.
static ROLE: AtomicU32 = AtomicU32::new(0);

fn record_switch(s: Option<Switched>) {
    ENTERED.store(s.is_some(), Relaxed);
    ROLE.store(s.map_or(0, |s| s.role.to_u32()), Relaxed);
    SWITCHED.set(s);
}

/// Whether the context setting holds a bypass context now (its mark).
fn context_is_bypass() -> bool {
    // SAFETY: `CONTEXT` is a registered string setting; its pointer is NULL
    // or a NUL-terminated string owned by the GUC machinery, read at once.
    unsafe {
        let p = *crate::gucs::CONTEXT.as_ptr();
        !p.is_null() && crate::context::is_bypass_value(std::ffi::CStr::from_ptr(p).to_bytes())
    }
}

/// Whether this transaction entered the bypass role and has left its
/// bypass context: the context is no longer a bypass context (another
/// token, `clear_context`), or the
/// current user is neither the role nor one set for the length of a call
/// (`SET ROLE`/`RESET ROLE` change the user for good; a `SECURITY DEFINER`
/// function or tenant_guard's own privileged work only for the call, and
/// run with the bypass context still in force).
fn left() -> bool {
    if !ENTERED.load(Relaxed) {
        return false;
    }
    if !context_is_bypass() {
        return true;
    }
    // SAFETY: reads of the backend's security context.
    let for_a_call =
        unsafe { pg_sys::InLocalUserIdChange() || pg_sys::InSecurityRestrictedOperation() };
    !active() && !for_a_call
}

/// Raises 42501 for any query in a transaction that has left its bypass
/// context (see the module's documentation; also a query with nothing but
/// an empty `FROM`: a function in its select list can hand out rows it
/// stored as the role, as a cursor over `SELECT srf()` read through
/// `cursor_to_xml` does), and for any query run as the role on behalf of a
/// cursor `WITH HOLD`.
fn require_allowed() {
    require_not_left();
    // SAFETY: ActivePortal is NULL or the portal being run (PortalStart,
    // PortalRun, PortalRunFetch and PersistHoldablePortal set it).
    // A query portal with a hold store is being filled to be kept: a cursor
    // WITH HOLD at COMMIT, or a PL/pgSQL loop's portal at a COMMIT inside a
    // procedure (before PostgreSQL marks it autoHeld).
    let holdable = active()
        && unsafe {
            let p = pg_sys::ActivePortal;
            !p.is_null()
                && ((*p).cursorOptions & pg_sys::CURSOR_OPT_HOLD as i32 != 0
                    || ((*p).strategy == pg_sys::PortalStrategy::PORTAL_ONE_SELECT
                        && !(*p).holdStore.is_null()))
        };
    if holdable {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "a cursor WITH HOLD cannot run in a bypass context",
        )
        .detail("Its rows would be kept past the end of the transaction, where the bypass context no longer holds.")
        .hint("Close the cursor before set_context with the bypass token, or declare it without WITH HOLD.")
        .raise();
    }
}

/// Raises 42501 when this transaction has left its bypass context (a
/// utility command then, like a query, cannot read anything: `COPY` of a
/// table reads it without the executor).
fn require_not_left() {
    if left() {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "this transaction left its bypass context: it can only end",
        )
        .detail("Plans made as the bypass role have no row-level security, and some outlive their statement (an open cursor, a SQL function's plans, rows a set-returning function stored); they must not run in another context.")
        .hint("End the transaction (COMMIT or ROLLBACK) and set the next context in a new one.")
        .raise();
    }
}

/// Whether a utility statement is `DECLARE … WITH HOLD`.
///
/// # Safety
/// `pstmt` is the valid PlannedStmt of a utility command.
unsafe fn declares_holdable(pstmt: *const pg_sys::PlannedStmt) -> bool {
    // SAFETY: utilityStmt is a node; a DeclareCursorStmt's options are an int.
    unsafe {
        let stmt = (*pstmt).utilityStmt;
        !stmt.is_null()
            && (*stmt).type_ == pg_sys::NodeTag::T_DeclareCursorStmt
            && (*stmt.cast::<pg_sys::DeclareCursorStmt>()).options & pg_sys::CURSOR_OPT_HOLD as i32
                != 0
    }
}

/// The configured bypass role's name, if any.
pub fn configured() -> Option<String> {
    crate::gucs::text(&crate::gucs::BYPASS_ROLE)
}

thread_local! {
    /// The last role [`resolve`] accepted: its name and OID. Dropped by any
    /// change to any role (`pg_authid` invalidation, [`init`]), so a role
    /// that loses `BYPASSRLS` or becomes a superuser is checked again at the
    /// next use; saves four catalog look-ups per bypass context.
    static RESOLVED: std::cell::RefCell<Option<(String, pg_sys::Oid)>> =
        const { std::cell::RefCell::new(None) };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_role_inval(_arg: pg_sys::Datum, _cacheid: i32, _hash: u32) {
    // Must not run SQL or raise here.
    RESOLVED.with(|r| r.borrow_mut().take());
}

/// Resolves the configured role: it must exist, have `BYPASSRLS` and not be
/// a superuser (`42704`/`42501` otherwise).
pub fn resolve(name: &str) -> pg_sys::Oid {
    let hit = RESOLVED.with(|r| {
        r.borrow()
            .as_ref()
            .filter(|(n, _)| n == name)
            .map(|(_, oid)| *oid)
    });
    if let Some(oid) = hit {
        return oid;
    }
    let oid = resolve_uncached(name);
    RESOLVED.with(|r| *r.borrow_mut() = Some((name.to_owned(), oid)));
    oid
}

fn resolve_uncached(name: &str) -> pg_sys::Oid {
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
    // SAFETY: catalog look-ups of an existing role.
    let (createrole, replication) = unsafe {
        (
            pg_sys::has_createrole_privilege(oid),
            pg_sys::has_rolreplication(oid),
        )
    };
    if createrole || replication {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("tenant_guard.bypass_role \"{name}\" has CREATEROLE or REPLICATION"),
        )
        .detail("A bypass token must not let its holder create roles or read the whole cluster.")
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
    // SAFETY: reads the backend's transaction state.
    if unsafe { pg_sys::GetCurrentTransactionNestLevel() } > 1 {
        // A subtransaction's commit (RELEASE, the normal end of a PL/pgSQL
        // EXCEPTION block) restores the read-only flag it began with but
        // keeps the user: the role would be current in a read-write
        // transaction. And a subtransaction is how a block gets into a
        // transaction of a procedure or DO block that can COMMIT (and keep
        // a loop's rows, read as the role, past it).
        Failure::new(
            Code::ERRCODE_ACTIVE_SQL_TRANSACTION,
            "a bypass context cannot be entered inside a subtransaction",
        )
        .detail("Inside a savepoint or a PL/pgSQL block with an EXCEPTION clause, the transaction would not stay read-only.")
        .hint("Call tenant_guard.set_context with the bypass token at the top level of the transaction, before any SAVEPOINT.")
        .raise();
    }
    if WRITING.load(Relaxed) > 0 {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "a bypass context cannot be entered inside a statement that may write",
        )
        .detail("PostgreSQL checks that a transaction is read-only when a statement starts: one already running (an INSERT, UPDATE, DELETE or MERGE, a locking SELECT, CREATE TABLE AS, COPY FROM, ALTER TABLE…) would go on writing as the bypass role.")
        .hint("Call tenant_guard.set_context with the bypass token in a SELECT of its own.")
        .raise();
    }
    if left() {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "this transaction left its bypass context: it can only end",
        )
        .hint("End the transaction (COMMIT or ROLLBACK) and set the next context in a new one.")
        .raise();
    }
    if HOLD_DECLARED.load(Relaxed) {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "a bypass context cannot be entered in a transaction that declared a cursor WITH HOLD",
        )
        .detail("The cursor is filled at COMMIT, and rows read as the bypass role would outlive the transaction.")
        .hint("Set the bypass context in a transaction of its own.")
        .raise();
    }
}

/// A bypass token that arrived through `tenant_guard.forwarded_token` (a
/// Citus node) on a node where `tenant_guard.bypass_role` is set: taken only
/// when the current role has `BYPASSRLS` (a worker connection of a
/// coordinator transaction that switched to the bypass role runs as it),
/// and then makes this node's transaction read-only. Anyone else could have
/// written the token there with `SET LOCAL`, and a forwarded bypass is read
/// in registry mode, which is not read-only: that is refused (`42501`) after
/// `log` has logged the rejection.
pub fn require_forwarded_by_role(log: impl FnOnce(&str)) {
    // SAFETY: reads the backend's current user and a catalog flag of it
    // (a syscache look-up; an existing role, the current user).
    if unsafe { pg_sys::has_bypassrls_privilege(pg_sys::GetUserId()) } {
        // The worker side of a bypass transaction: read-only like the
        // coordinator's, on the same conditions as entering the role (top
        // level, no statement that may write running, …). The context is
        // registry-mode and would let code of other roles run on this
        // node, such as an application-owned SECURITY DEFINER function
        // that Citus pushed down, write every tenant's rows: the worker's
        // transaction was read-write.
        require_switchable();
        // SAFETY: a plain bool of this backend, set inside a transaction at
        // its top level (checked just above), as in `enter`.
        unsafe { pg_sys::XactReadOnly = true };
        return;
    }
    const WHY: &str = "tenant_guard.forwarded_token holds a bypass token and the current role does not have BYPASSRLS: with tenant_guard.bypass_role set, a bypass context reaches a node only as that role.";
    log(WHY);
    Failure::new(
        Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
        "a forwarded bypass token is accepted only as the bypass role",
    )
    .detail(WHY)
    .hint("Call tenant_guard.set_context with the bypass token on the coordinator, inside BEGIN … COMMIT; its worker connections run as tenant_guard.bypass_role.")
    .raise();
}

/// Makes `role` the current user until the transaction ends (or the context
/// changes).
pub fn enter(role: pg_sys::Oid) {
    if GUC_LEVEL.load(Relaxed) == 0 {
        // SAFETY: inside a transaction; a level pushed here is popped at
        // PRE_COMMIT (`undo_settings`), or by PostgreSQL at abort.
        let level = unsafe { pg_sys::NewGUCNestLevel() };
        if level != 2 {
            // SAFETY: pops the level just pushed, nothing set at it.
            unsafe { pg_sys::AtEOXact_GUC(false, level) };
            Failure::new(
                Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                "a bypass context cannot be entered inside a function with a SET clause",
            )
            .detail("The function's settings end with the call; those changed as the bypass role must end with the transaction.")
            .hint("Call tenant_guard.set_context with the bypass token directly, or from a function without SET.")
            .raise();
        }
        GUC_LEVEL.store(level, Relaxed);
    }
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
    record_switch(Some(record));
    // Read-only for the rest of the transaction, as `SET LOCAL
    // transaction_read_only = on` makes it (the setting's variable, with no
    // assign hook): entered at the top level only (`require_switchable`),
    // so no subtransaction restores it, and PostgreSQL refuses to make it
    // read-write again once a query ran (as one has, to call set_context);
    // the next transaction starts from default_transaction_read_only.
    // SAFETY: a plain bool of this backend, set inside a transaction.
    unsafe { pg_sys::XactReadOnly = true };
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
    let role = ROLE.load(Relaxed);
    // SAFETY: a read of the backend's user id.
    role != 0 && unsafe { pg_sys::GetUserId() }.to_u32() == role
}

/// The context setting changed: leave the role unless the new value is a
/// bypass context. Called from the setting's assign hook; never raises.
pub fn context_assigned(is_bypass: bool) {
    if !is_bypass {
        leave();
    }
}

/// A prepared transaction keeps its locks (transaction-level advisory
/// locks, whose keys code run as the role chose) until someone commits or
/// rolls it back, beyond the session: `0A000`.
#[pg_guard]
unsafe extern "C-unwind" fn refuse_prepare() {
    Failure::new(
        Code::ERRCODE_FEATURE_NOT_SUPPORTED,
        "PREPARE TRANSACTION cannot prepare a bypass transaction",
    )
    .detail("A prepared transaction keeps its locks, and what they name, beyond the session and the token.")
    .hint("End the bypass transaction with COMMIT or ROLLBACK.")
    .raise();
}

/// Undoes every setting changed since the transaction entered the role,
/// also those set for the session (see `GUC_LEVEL`), as a function's `SET`
/// clause is undone when it returns.
#[pg_guard]
unsafe extern "C-unwind" fn undo_settings() {
    let level = GUC_LEVEL.swap(0, Relaxed);
    // SAFETY: the level this transaction pushed in `enter`, still open: it
    // was pushed at the top level of the transaction, with none above it
    // (checked there), and every function call, subtransaction and index
    // build since has popped its own, higher, levels by the commit.
    unsafe { pg_sys::AtEOXact_GUC(false, level) };
}

unsafe extern "C-unwind" fn at_transaction_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    if event == XACT_EVENT_PRE_COMMIT && GUC_LEVEL.load(Relaxed) != 0 {
        // SAFETY: a guarded function; pre-commit callbacks may fail the
        // commit.
        unsafe { undo_settings() };
    }
    if event == XACT_EVENT_PRE_PREPARE && ENTERED.load(Relaxed) {
        // SAFETY: a guarded function that raises; PostgreSQL lets
        // pre-prepare callbacks fail the PREPARE TRANSACTION.
        unsafe { refuse_prepare() };
    }
    if matches!(
        event,
        XACT_EVENT_COMMIT
            | XACT_EVENT_ABORT
            | XACT_EVENT_PREPARE
            | XACT_EVENT_PARALLEL_COMMIT
            | XACT_EVENT_PARALLEL_ABORT
    ) {
        leave();
        record_switch(None);
        HOLD_DECLARED.store(false, Relaxed);
        GUC_LEVEL.store(0, Relaxed);
        XACT_GEN.fetch_add(1, Relaxed);
        WRITING.store(0, Relaxed);
        LIVE.with(|l| {
            if let Ok(mut l) = l.try_borrow_mut() {
                l.clear();
            }
        });
    }
    if matches!(event, XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT) {
        crate::context::reset_planning();
    }
}

/// Whether a query may write: it modifies rows (or has a data-modifying
/// `WITH`), locks them, or sends its rows into a new table (`CREATE TABLE
/// AS` under `EXPLAIN ANALYZE`, which runs no utility command).
///
/// # Safety
/// `query_desc` is the executor's valid QueryDesc.
unsafe fn query_may_write(query_desc: *const pg_sys::QueryDesc) -> bool {
    // SAFETY: a started query's descriptor has its PlannedStmt.
    unsafe {
        let stmt = (*query_desc).plannedstmt;
        (*query_desc).operation != pg_sys::CmdType::CMD_SELECT
            || stmt.is_null()
            || (*stmt).hasModifyingCTE
            || !(*stmt).rowMarks.is_null()
            || fills_new_table(query_desc)
    }
}

/// Whether a query sends its rows into a new table (`CREATE TABLE AS`,
/// `CREATE MATERIALIZED VIEW`, `REFRESH MATERIALIZED VIEW`).
///
/// # Safety
/// `query_desc` is the executor's valid QueryDesc.
unsafe fn fills_new_table(query_desc: *const pg_sys::QueryDesc) -> bool {
    // SAFETY: the destination is NULL only if never set.
    unsafe {
        let dest = (*query_desc).dest;
        !dest.is_null()
            && matches!(
                (*dest).mydest,
                pg_sys::CommandDest::DestIntoRel | pg_sys::CommandDest::DestTransientRel
            )
    }
}

/// Whether a utility command may write (all but those that only run other
/// statements, which are counted themselves, or only read).
///
/// # Safety
/// `pstmt` is the valid PlannedStmt of a utility command.
unsafe fn utility_may_write(pstmt: *const pg_sys::PlannedStmt) -> bool {
    // SAFETY: utilityStmt is a node; a CopyStmt's is_from is a bool.
    unsafe {
        let stmt = (*pstmt).utilityStmt;
        if stmt.is_null() {
            return true;
        }
        match (*stmt).type_ {
            pg_sys::NodeTag::T_DoStmt
            | pg_sys::NodeTag::T_CallStmt
            | pg_sys::NodeTag::T_ExplainStmt
            | pg_sys::NodeTag::T_ExecuteStmt
            | pg_sys::NodeTag::T_DeclareCursorStmt
            | pg_sys::NodeTag::T_FetchStmt
            | pg_sys::NodeTag::T_VariableShowStmt
            | pg_sys::NodeTag::T_TransactionStmt
            | pg_sys::NodeTag::T_ClosePortalStmt
            | pg_sys::NodeTag::T_DeallocateStmt => false,
            pg_sys::NodeTag::T_CopyStmt => (*stmt.cast::<pg_sys::CopyStmt>()).is_from,
            _ => true,
        }
    }
}

static mut PREVIOUS_EXECUTOR_END: pg_sys::ExecutorEnd_hook_type = None;

/// Counts a writing query out when it ends (see `WRITING`).
unsafe extern "C-unwind" fn executor_end(query_desc: *mut pg_sys::QueryDesc) {
    // SAFETY: the executor's argument, passed on unchanged; the tracker
    // found is live (a dead one's callback removed it from LIVE).
    unsafe {
        hooks::executor_end(PREVIOUS_EXECUTOR_END, query_desc);
        let tracker = LIVE.with(|l| {
            let mut l = l.borrow_mut();
            l.iter()
                .rposition(|(q, _)| *q == query_desc as usize)
                .map(|i| l.remove(i).1)
        });
        if let Some(context) = tracker {
            untrack_writer(context);
        }
    }
}

thread_local! {
    /// The check below is running (it may run queries: the key ring, the
    /// registry), so the hooks let those through.
    static CHECKING: Cell<bool> = const { Cell::new(false) };
}

/// Raises 42501 when the bypass role is the current user but the context is
/// no longer a valid bypass context.
fn require_bypass_holds() {
    // As the role, always: the context must be a bypass context that still
    // holds (a context changed inside a SECURITY DEFINER call leaves the
    // role current when the call returns). As another user (a SECURITY
    // DEFINER call, SET ROLE) while the bypass context is in force: the
    // token must still hold. A left context is refused by `require_allowed`
    // and `require_not_left`.
    if !ENTERED.load(Relaxed) || CHECKING.get() || (!active() && !context_is_bypass()) {
        return;
    }
    // As the role the transaction is read-only (`enter`). Should anything
    // ever make it read-write again (a subtransaction's commit restores the
    // flag it began with), fail closed.
    // SAFETY: a read of the backend's flag.
    if active() && !unsafe { pg_sys::XactReadOnly } {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "the bypass context needs a read-only transaction",
        )
        .detail("The transaction is no longer read-only while it runs as the bypass role.")
        .hint("End the transaction; a new bypass context needs a new one.")
        .raise();
    }
    struct Checking;
    impl Drop for Checking {
        fn drop(&mut self) {
            CHECKING.set(false);
        }
    }
    CHECKING.set(true);
    let holds = {
        let _checking = Checking;
        // Another session's retire_key, revoke_* or registry change reaches
        // this backend as an invalidation, which PostgreSQL reads only at
        // certain points (a new lock); read them now, so the next query
        // sees the change (nothing to read is one flag's test).
        // SAFETY: no arguments; may run invalidation callbacks (ours drop
        // the cached key ring), which is what is wanted here.
        unsafe { pg_sys::AcceptInvalidationMessages() };
        crate::context::bypass_holds()
    };
    if !holds {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "the bypass context no longer holds",
        )
        .detail("Its token expired, or its key was retired, within the transaction.")
        .hint("End the transaction; a new bypass context needs a new token.")
        .raise();
    }
}

static mut PREVIOUS_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREVIOUS_EXECUTOR_RUN: pg_sys::ExecutorRun_hook_type = None;
static mut PREVIOUS_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// Every query started as the bypass role: the context must still be a
/// valid bypass context, or the query fails. Outside a bypass switch (all
/// other queries) the call is only passed on, unguarded (see `hooks`).
unsafe extern "C-unwind" fn executor_start(query_desc: *mut pg_sys::QueryDesc, eflags: i32) {
    // SAFETY: the executor's argument, read only.
    if unsafe { query_may_write(query_desc) } {
        // SAFETY: inside the executor's transaction.
        let context = unsafe { track_writer() };
        LIVE.with(|l| l.borrow_mut().push((query_desc as usize, context)));
    }
    if !ENTERED.load(Relaxed) {
        // SAFETY: the executor's arguments, passed on unchanged; this frame
        // holds nothing.
        return unsafe { hooks::executor_start(PREVIOUS_EXECUTOR_START, query_desc, eflags) };
    }
    // SAFETY: as above.
    unsafe { executor_start_checked(query_desc, eflags) }
}

#[pg_guard]
unsafe extern "C-unwind" fn executor_start_checked(
    query_desc: *mut pg_sys::QueryDesc,
    eflags: i32,
) {
    require_allowed();
    require_bypass_holds();
    // SAFETY: the executor's argument, read only.
    if unsafe { fills_new_table(query_desc) } {
        // PostgreSQL refuses CREATE TABLE AS in a read-only transaction,
        // but not under EXPLAIN ANALYZE (nor CREATE MATERIALIZED VIEW
        // there): the table, the role's, would keep what it read.
        Failure::new(
            Code::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            "a query that fills a new table cannot run in a bypass transaction",
        )
        .detail("CREATE TABLE AS and CREATE MATERIALIZED VIEW (also under EXPLAIN ANALYZE) would keep what they read, owned by the bypass role.")
        .raise();
    }
    // SAFETY: the executor's arguments, passed on unchanged; an error in a
    // hook below ours is caught at the FFI boundary.
    unsafe {
        pg_sys::ffi::pg_guard_ffi_boundary(|| {
            hooks::executor_start(PREVIOUS_EXECUTOR_START, query_desc, eflags)
        })
    }
    // PostgreSQL has refused any write to a permanent table (the
    // transaction is read-only); a temporary table may still be written
    // in a read-only transaction, and its rows would outlive it in the
    // session. (Plain EXPLAIN runs nothing.)
    // SAFETY: the executor's argument, read only.
    if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 == 0 && unsafe { query_may_write(query_desc) }
    {
        Failure::new(
            Code::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            "a bypass transaction cannot write, also not to a temporary table",
        )
        .detail("Rows written to a temporary table outlive the transaction in the session, where the bypass context no longer holds.")
        .hint("Write in a transaction without a bypass context.")
        .raise();
    }
}

/// Every run of a query as the bypass role (a portal started earlier and
/// run again by the extended protocol): the same check.
#[cfg(not(feature = "pg18"))]
unsafe extern "C-unwind" fn executor_run(
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
    execute_once: bool,
) {
    // SAFETY: as in executor_start.
    unsafe {
        if !ENTERED.load(Relaxed) {
            return hooks::executor_run(
                PREVIOUS_EXECUTOR_RUN,
                query_desc,
                direction,
                count,
                execute_once,
            );
        }
        executor_run_checked(query_desc, direction, count, execute_once)
    }
}

#[cfg(not(feature = "pg18"))]
#[pg_guard]
unsafe extern "C-unwind" fn executor_run_checked(
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
    execute_once: bool,
) {
    require_allowed();
    require_bypass_holds();
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
}

/// Every run of a query as the bypass role: the same check.
#[cfg(feature = "pg18")]
unsafe extern "C-unwind" fn executor_run(
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
) {
    // SAFETY: as in executor_start.
    unsafe {
        if !ENTERED.load(Relaxed) {
            return hooks::executor_run(PREVIOUS_EXECUTOR_RUN, query_desc, direction, count);
        }
        executor_run_checked(query_desc, direction, count)
    }
}

#[cfg(feature = "pg18")]
#[pg_guard]
unsafe extern "C-unwind" fn executor_run_checked(
    query_desc: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
) {
    require_allowed();
    require_bypass_holds();
    // SAFETY: as in executor_start.
    unsafe {
        pg_sys::ffi::pg_guard_ffi_boundary(|| {
            hooks::executor_run(PREVIOUS_EXECUTOR_RUN, query_desc, direction, count)
        })
    }
}

/// Every utility command as the bypass role (`COPY`, `FETCH`, DDL…), but
/// the ones that end or undo things: the same check.
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: as in executor_start; declares_holdable reads the statement.
    unsafe {
        if declares_holdable(pstmt) {
            HOLD_DECLARED.store(true, Relaxed);
        }
        // Counted out on return, or with the context it ran in when an
        // error abandons it (`WRITING`).
        let tracker = utility_may_write(pstmt).then(|| track_writer());
        if !ENTERED.load(Relaxed) {
            hooks::process_utility(
                PREVIOUS_PROCESS_UTILITY,
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            );
        } else {
            process_utility_checked(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            );
        }
        if let Some(context) = tracker {
            untrack_writer(context);
        }
    }
}

#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility_checked(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    use pg_sys::NodeTag::*;
    // SAFETY: PostgreSQL passes a valid PlannedStmt whose utilityStmt is a
    // node; only its tag is read.
    let tag = unsafe {
        let stmt = (*pstmt).utilityStmt;
        (!stmt.is_null()).then(|| (*stmt).type_)
    };
    let ends_or_undoes = matches!(
        tag,
        Some(T_TransactionStmt | T_ClosePortalStmt | T_DeallocateStmt)
    );
    if !ends_or_undoes {
        require_not_left();
        require_bypass_holds();
    }
    // SAFETY: PostgreSQL passes a valid PlannedStmt.
    if unsafe { declares_holdable(pstmt) } {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "a cursor WITH HOLD cannot be declared in a bypass context",
        )
        .detail("Its rows would be kept past the end of the transaction, where the bypass context no longer holds.")
        .hint("Declare it in a transaction without a bypass context.")
        .raise();
    }
    // SAFETY: a CopyStmt's fields, read only.
    let copy_keeps = tag == Some(T_CopyStmt)
        && unsafe {
            let copy = (*pstmt).utilityStmt.cast::<pg_sys::CopyStmt>();
            (*copy).is_from || !(*copy).filename.is_null()
        };
    if copy_keeps || tag == Some(T_NotifyStmt) {
        // COPY FROM may fill a temporary table (the transaction is
        // read-only for all others); COPY TO a file or a program, and
        // NOTIFY, hand what was read to something that outlives it.
        Failure::new(
            Code::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            "COPY FROM, COPY TO a file or program, and NOTIFY cannot run in a bypass transaction",
        )
        .detail("What they write (a temporary table's rows, a server file, another session's notification) outlives the transaction, where the bypass context no longer holds.")
        .hint("Run them in a transaction without a bypass context.")
        .raise();
    }
    let maintains = matches!(tag, Some(T_VacuumStmt | T_ClusterStmt | T_ReindexStmt));
    if matches!(tag, Some(T_PrepareStmt | T_ExecuteStmt | T_ListenStmt)) {
        // Code run in the bypass context (a function of the application's)
        // could put rows into a statement's text or a channel's name, or
        // into how many times it executed a statement prepared earlier
        // (pg_prepared_statements counts plans, for the session).
        Failure::new(
            Code::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            "PREPARE, EXECUTE and LISTEN cannot run in a bypass transaction",
        )
        .detail("What they keep (a prepared statement and its text, its count of executions, a channel's name) outlives the transaction, where the bypass context no longer holds.")
        .hint("Prepare, execute or listen in a transaction without a bypass context; a client's protocol-level prepared statements are not affected.")
        .raise();
    }
    if maintains {
        // PostgreSQL lets them run in a read-only transaction, and they
        // write what they read: statistics of a permanent table (which,
        // for an inheritance parent, include the session's temporary
        // children), index contents.
        Failure::new(
            Code::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            "ANALYZE, VACUUM, CLUSTER and REINDEX cannot run in a bypass transaction",
        )
        .detail("They store what they read (statistics, index contents) beyond the transaction, where the bypass context no longer holds.")
        .hint("Run them in a transaction without a bypass context.")
        .raise();
    }
    // SAFETY: the arguments, passed on unchanged; an error in a hook below
    // ours is caught at the FFI boundary.
    unsafe {
        pg_sys::ffi::pg_guard_ffi_boundary(|| {
            hooks::process_utility(
                PREVIOUS_PROCESS_UTILITY,
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            )
        })
    }
}

static mut PREVIOUS_OBJECT_ACCESS: pg_sys::object_access_hook_type = None;

/// The built-in functions that keep something past the transaction, or
/// hand it to another session, even in a read-only transaction: a
/// notification, a session-level advisory lock taken or released (its key
/// is visible to every session in `pg_locks`), a sequence's value (of a
/// temporary sequence: others are refused by PostgreSQL), the session's
/// random seed, a large object (or a server file written from one). Their
/// names for the refusal.
fn outlives_transaction(function: pg_sys::Oid) -> Option<&'static str> {
    Some(match function.to_u32() {
        pg_sys::F_PG_NOTIFY => "pg_notify",
        pg_sys::F_PG_ADVISORY_LOCK_INT8
        | pg_sys::F_PG_ADVISORY_LOCK_SHARED_INT8
        | pg_sys::F_PG_TRY_ADVISORY_LOCK_INT8
        | pg_sys::F_PG_TRY_ADVISORY_LOCK_SHARED_INT8
        | pg_sys::F_PG_ADVISORY_LOCK_INT4_INT4
        | pg_sys::F_PG_ADVISORY_LOCK_SHARED_INT4_INT4
        | pg_sys::F_PG_TRY_ADVISORY_LOCK_INT4_INT4
        | pg_sys::F_PG_TRY_ADVISORY_LOCK_SHARED_INT4_INT4
        | pg_sys::F_PG_ADVISORY_UNLOCK_INT8
        | pg_sys::F_PG_ADVISORY_UNLOCK_SHARED_INT8
        | pg_sys::F_PG_ADVISORY_UNLOCK_INT4_INT4
        | pg_sys::F_PG_ADVISORY_UNLOCK_SHARED_INT4_INT4
        | pg_sys::F_PG_ADVISORY_UNLOCK_ALL => "taking or releasing a session-level advisory lock",
        pg_sys::F_SETSEED => "setseed",
        // random() (1598), random_normal() (6212, PostgreSQL 16 and later),
        // random(min, max) (6339-6341, PostgreSQL 17 and later): each draw
        // moves the session's sequence, which setseed makes known, so the
        // number of draws (chosen by code that read rows as the role) can
        // be counted back by a later transaction.
        1598 | 6212 | 6339..=6341 => "random()",
        pg_sys::F_NEXTVAL
        | pg_sys::F_SETVAL_REGCLASS_INT8
        | pg_sys::F_SETVAL_REGCLASS_INT8_BOOL => "nextval and setval",
        pg_sys::F_LO_CREATE
        | pg_sys::F_LO_CREAT
        | pg_sys::F_LO_FROM_BYTEA
        | pg_sys::F_LO_IMPORT_TEXT
        | pg_sys::F_LO_PUT
        | pg_sys::F_LOWRITE
        | pg_sys::F_LO_TRUNCATE
        | pg_sys::F_LO_TRUNCATE64
        | pg_sys::F_LO_UNLINK
        | pg_sys::F_LO_EXPORT => "a function that creates, writes or exports a large object",
        o if o == pg_sys::F_LO_IMPORT_TEXT_OID.to_u32() => {
            "a function that creates, writes or exports a large object"
        }
        _ => return None,
    })
}

/// Every function an expression or `CALL` is about to call (PostgreSQL
/// runs this hook when it prepares the call, at each execution): in a
/// transaction that entered the bypass role, the functions of
/// [`outlives_transaction`] are refused (`25006`). Outside one, only
/// passed on, unguarded (see `hooks`).
unsafe extern "C-unwind" fn object_access(
    access: pg_sys::ObjectAccessType::Type,
    class_id: pg_sys::Oid,
    object_id: pg_sys::Oid,
    sub_id: std::ffi::c_int,
    arg: *mut std::ffi::c_void,
) {
    // SAFETY: the hook's arguments, passed on unchanged; this frame holds
    // nothing that needs dropping.
    unsafe {
        if let Some(previous) = PREVIOUS_OBJECT_ACCESS {
            previous(access, class_id, object_id, sub_id, arg);
        }
        if access == pg_sys::ObjectAccessType::OAT_FUNCTION_EXECUTE
            && ENTERED.load(Relaxed)
            && outlives_transaction(object_id).is_some()
        {
            refuse_function(object_id);
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn refuse_function(function: pg_sys::Oid) {
    let what = outlives_transaction(function).unwrap_or("this function");
    Failure::new(
        Code::ERRCODE_READ_ONLY_SQL_TRANSACTION,
        format!("{what} cannot run in a bypass transaction"),
    )
    .detail("What it changes (a notification, a session-level advisory lock, a sequence's value, the random seed or the position in its sequence, a large object) outlives the transaction or reaches another session, where the bypass context no longer holds.")
    .hint("Call it in a transaction without a bypass context.")
    .raise();
}

/// Registers the transaction callback, the executor hooks and the role
/// invalidation callback (once per process, from `_PG_init`).
pub fn init() {
    // SAFETY: _PG_init runs once per process; the previous hook is kept and
    // called; the callback has no argument.
    unsafe {
        pg_sys::RegisterXactCallback(Some(at_transaction_end), std::ptr::null_mut());
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::AUTHOID as i32,
            Some(on_role_inval),
            pg_sys::Datum::from(0),
        );
        PREVIOUS_EXECUTOR_END = pg_sys::ExecutorEnd_hook;
        pg_sys::ExecutorEnd_hook = Some(executor_end);
        PREVIOUS_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREVIOUS_EXECUTOR_RUN = pg_sys::ExecutorRun_hook;
        pg_sys::ExecutorRun_hook = Some(executor_run);
        PREVIOUS_OBJECT_ACCESS = pg_sys::object_access_hook;
        pg_sys::object_access_hook = Some(object_access);
        PREVIOUS_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_that_outlive_the_transaction() {
        for f in [
            pg_sys::F_PG_NOTIFY,
            pg_sys::F_PG_ADVISORY_LOCK_INT8,
            pg_sys::F_PG_ADVISORY_UNLOCK_ALL,
            pg_sys::F_NEXTVAL,
            pg_sys::F_SETVAL_REGCLASS_INT8_BOOL,
            pg_sys::F_SETSEED,
            pg_sys::F_LO_CREATE,
            pg_sys::F_LO_FROM_BYTEA,
        ] {
            assert!(outlives_transaction(pg_sys::Oid::from(f)).is_some(), "{f}");
        }
        // random() and the functions drawing from its sequence: the OIDs
        // the match names are PostgreSQL's.
        #[cfg(not(feature = "pg18"))]
        assert!(outlives_transaction(pg_sys::Oid::from(pg_sys::F_RANDOM)).is_some());
        #[cfg(not(feature = "pg15"))]
        assert!(outlives_transaction(pg_sys::Oid::from(pg_sys::F_RANDOM_NORMAL)).is_some());
        #[cfg(feature = "pg18")]
        for f in [
            pg_sys::F_RANDOM_,
            pg_sys::F_RANDOM_INT4_INT4,
            pg_sys::F_RANDOM_INT8_INT8,
            pg_sys::F_RANDOM_NUMERIC_NUMERIC,
        ] {
            assert!(outlives_transaction(pg_sys::Oid::from(f)).is_some(), "{f}");
        }
        assert!(outlives_transaction(pg_sys::F_LO_IMPORT_TEXT_OID).is_some());
        // Those that end with the transaction, or only read.
        for f in [
            pg_sys::F_PG_ADVISORY_XACT_LOCK_INT8,
            pg_sys::F_PG_TRY_ADVISORY_XACT_LOCK_INT4_INT4,
            pg_sys::F_LO_OPEN,
            pg_sys::F_LO_TELL,
        ] {
            assert!(outlives_transaction(pg_sys::Oid::from(f)).is_none(), "{f}");
        }
    }
}
