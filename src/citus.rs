//! What tenant_guard does differently on a Citus cluster (docs/citus.md).
//!
//! * **The context reaches the workers as its token.** Citus forwards the
//!   text of `SET LOCAL` statements run in a transaction block to every
//!   worker connection of the transaction, also to those it opens later
//!   (with `citus.propagate_set_commands = local`). `set_context` therefore
//!   also runs `SET LOCAL tenant_guard.forwarded_token` through SPI; a node
//!   that finds that setting changed verifies the token against its own key
//!   ring and makes it the context (`context::adopt_forwarded`). Nothing a
//!   worker is sent is trusted without the signature check.
//! * **Policies that survive Citus.** Citus re-creates a table's policies on
//!   its shards without `AS RESTRICTIVE`; with Citus installed, `protect`
//!   renders the tenant rules as per-command PERMISSIVE policies and no
//!   `USING (true)` policy ([`crate::policy::Shape::Citus`]), so a shard
//!   means what the coordinator's table means, after every shard move.
//! * **DDL on distributed tables** runs with `citus.enable_unsafe_triggers`
//!   (tenant_guard's triggers only raise errors, on every shard), and the
//!   tenant column's default is set on the coordinator only: Citus refuses
//!   `ALTER … SET DEFAULT` on the distribution column, and it evaluates an
//!   INSERT's default on the coordinator to route the row anyway.

use crate::error::spi;
use crate::privileged::pinned;
use pgrx::prelude::*;
use std::cell::Cell;

thread_local! {
    static LOADED: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Whether Citus is loaded in this backend. Citus loads only through
/// `shared_preload_libraries`, so the answer never changes once a query
/// has run: it is looked up once (the context reads call this).
pub fn loaded() -> bool {
    if let Some(known) = LOADED.with(Cell::get) {
        return known;
    }
    // A setting Citus defines, and not a placeholder that any role can make
    // with `SET citus.propagate_set_commands = …` where Citus is absent.
    let name = c"citus.propagate_set_commands";
    // SAFETY: a NUL-terminated name; missing_ok = true returns 0 for an
    // unknown setting instead of raising.
    let flags = unsafe { pg_sys::GetConfigOptionFlags(name.as_ptr(), true) };
    let found =
        setting(name, |_| ()).is_some() && flags & pg_sys::GUC_CUSTOM_PLACEHOLDER as i32 == 0;
    LOADED.with(|l| l.set(Some(found)));
    found
}

/// `f` applied to the current value of the setting `name` (`None`: no such
/// setting, e.g. Citus' settings where Citus is not loaded).
fn setting<R>(name: &std::ffi::CStr, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    // SAFETY: a NUL-terminated name; missing_ok = true returns NULL for an
    // unknown setting instead of raising.
    let p = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    if p.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string owned by the GUC machinery, read before
    // anything could change the setting.
    Some(f(unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes()))
}

/// Whether the `citus` extension is installed in this database (then
/// `protect` renders the Citus policy shape).
pub fn installed() -> bool {
    loaded()
        && pinned(|| {
            Spi::get_one::<bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension \
                  WHERE extname OPERATOR(pg_catalog.=) 'citus'::pg_catalog.name)",
            )
        })
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Refuses (0A000) a change of context where Citus would not carry it to
/// every node alike:
/// * on one of Citus' own connections (`application_name` starting
///   `citus_internal`: a query the coordinator pushed down to a worker), where
///   a context would outlive the coordinator's transaction on a cached
///   connection and serve the next one;
/// * inside a subtransaction (a savepoint, a PL/pgSQL exception block), whose
///   `SET LOCAL`s Citus drops from what it replays on connections opened
///   after `RELEASE`, so workers and coordinator would disagree.
pub fn require_context_change_allowed(what: &str) {
    if !loaded() {
        return;
    }
    let internal = setting(c"application_name", |v| v.starts_with(b"citus_internal")) == Some(true);
    if internal {
        crate::error::Failure::new(
            crate::error::Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("tenant_guard.{what} cannot run inside a query Citus sends to a worker"),
        )
        .detail("On a worker connection a context would outlive the coordinator's transaction.")
        .hint(
            "Call it on its own, on the coordinator: BEGIN; SELECT tenant_guard.set_context($1); …",
        )
        .raise();
    }
    // SAFETY: no arguments; reads this backend's transaction state.
    if unsafe { pg_sys::GetCurrentTransactionNestLevel() } > 1 {
        crate::error::Failure::new(
            crate::error::Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("tenant_guard.{what} cannot run inside a savepoint on a Citus cluster"),
        )
        .detail("Citus forgets the SET LOCAL that carries the context to the workers when a savepoint is released.")
        .hint("Call it at the top level of the transaction, before any SAVEPOINT (or nested atomic block).")
        .raise();
    }
}

/// Runs `SET LOCAL tenant_guard.forwarded_token` (preceded, when needed, by
/// `SET LOCAL citus.propagate_set_commands = local`) through SPI, where
/// Citus' utility hook sees it and forwards it to the workers. `token` is
/// empty to clear the workers' context. Only inside a transaction block
/// (Citus forwards nothing else).
pub fn forward(token: &str) {
    // SAFETY: no arguments; reads this backend's transaction state.
    if !unsafe { pg_sys::IsTransactionBlock() } {
        return;
    }
    let local = setting(c"citus.propagate_set_commands", |v| v == b"local") == Some(true);
    let mut stmts = Vec::with_capacity(2);
    if !local {
        stmts.push("SET LOCAL citus.propagate_set_commands TO 'local'".to_owned());
    }
    // A token is base64url and dots only (checked by the parser before it
    // verified); quoted anyway.
    stmts.push(format!(
        "SET LOCAL tenant_guard.forwarded_token TO {}",
        crate::quote::literal(token)
    ));
    // Not `pinned`: the settings must outlive this call (SET LOCAL lasts
    // until the end of the transaction; a pinned scope's nest level would
    // roll them back on exit). No name in the statements is resolved
    // through the search_path.
    for stmt in &stmts {
        spi(Spi::run(stmt));
    }
    begin_coordinated();
}

thread_local! {
    /// Citus' `UseCoordinatedTransaction`, looked up once (NULL: absent).
    static USE_COORDINATED: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Makes this transaction a Citus coordinated transaction now, so that every
/// worker connection it opens starts with `BEGIN` and the forwarded
/// `SET LOCAL`s. Citus starts one lazily for most statements, but not for
/// `COPY … TO` of a distributed table: as the transaction's first
/// distributed statement, its connections would carry no context (the
/// workers fail closed). Citus' own exported `UseCoordinatedTransaction`
/// (stable since Citus 9) is called through PostgreSQL's
/// `load_external_function`; without it, nothing is done.
fn begin_coordinated() {
    let f = USE_COORDINATED.with(|c| {
        if let Some(f) = c.get() {
            return f;
        }
        // SAFETY: NUL-terminated names; signalNotFound = false returns NULL
        // when the library or the symbol is missing (the library is loaded
        // already: Citus is in shared_preload_libraries).
        let p = unsafe {
            pg_sys::load_external_function(
                c"$libdir/citus".as_ptr(),
                c"UseCoordinatedTransaction".as_ptr(),
                false,
                std::ptr::null_mut(),
            )
        };
        let f = p as usize;
        c.set(Some(f));
        f
    });
    if f == 0 {
        return;
    }
    // SAFETY: the symbol is Citus' `void UseCoordinatedTransaction(void)`;
    // it raises an ERROR (longjmp) only in a broken transaction state, which
    // the `C-unwind` ABI and pg_guard_ffi_boundary carry to PostgreSQL.
    unsafe {
        let use_coordinated: unsafe extern "C-unwind" fn() = std::mem::transmute(f);
        pg_sys::ffi::pg_guard_ffi_boundary(|| use_coordinated());
    }
}

/// tenant_guard's own tables that every node of a Citus cluster needs the
/// same: the key ring (workers verify forwarded tokens themselves) and the
/// registry settings (workers check a token's tenants).
pub const NODE_STATE_TABLES: [&str; 2] = ["keys", "registry"];

/// Copies the coordinator's key ring and registry settings to every worker
/// (Citus' `run_command_on_workers`, as the caller): afterwards each worker
/// holds exactly these rows, and its sessions reload them at their next
/// statement. Run it after `add_key`, `retire_key` or `use_registry`, and
/// after adding a node. One row per worker; `success` false names what went
/// wrong on that node (the others are copied anyway).
///
/// Rights: revoked from PUBLIC; the caller must be able to run
/// `tenant_guard_internal.load_node_state` on the workers (superuser or the
/// extension's owner). The rows are read here as the extension's owner. HMAC
/// secrets travel inside the command text to the workers (over Citus' own
/// connections); a worker with `log_statement = all` would log them.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn sync_nodes() -> TableIterator<
    'static,
    (
        name!(nodename, String),
        name!(nodeport, i32),
        name!(success, bool),
        name!(result, String),
    ),
> {
    crate::error::require_writable(c"tenant_guard.sync_nodes()");
    if !installed() {
        crate::error::Failure::new(
            crate::error::Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            "tenant_guard.sync_nodes needs Citus",
        )
        .detail("The citus extension is not installed in this database.")
        .raise();
    }
    let parts: Vec<String> = NODE_STATE_TABLES
        .iter()
        .map(|t| {
            format!(
                "{}, (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)), '[]'::pg_catalog.jsonb) FROM tenant_guard.{} r)",
                crate::quote::literal(t),
                crate::quote::ident(t)
            )
        })
        .collect();
    let state = crate::privileged::as_extension_owner(|| {
        crate::error::one::<String>(
            &format!(
                "SELECT pg_catalog.jsonb_build_object({})::pg_catalog.text",
                parts.join(", ")
            ),
            &[],
        )
    })
    .unwrap_or_else(|| crate::error::internal("reading the key ring returned NULL"));
    let command = format!(
        "SELECT tenant_guard_internal.load_node_state({}::pg_catalog.jsonb)",
        crate::quote::literal(&state)
    );
    let rows: Vec<(String, i32, bool, String)> = crate::error::hide_statement(|| {
        pinned(|| {
            Spi::connect(|c| {
                spi(c.select(
                    "SELECT w.nodename::pg_catalog.text, w.nodeport, w.success, w.result \
                       FROM pg_catalog.run_command_on_workers($1::pg_catalog.text) w \
                      ORDER BY 1, 2",
                    None,
                    &[command.as_str().into()],
                ))
                .map(|row| {
                    (
                        spi(row.get::<String>(1)).unwrap_or_default(),
                        spi(row.get::<i32>(2)).unwrap_or_default(),
                        spi(row.get::<bool>(3)).unwrap_or(false),
                        spi(row.get::<String>(4)).unwrap_or_default(),
                    )
                })
                .collect()
            })
        })
    });
    TableIterator::new(rows)
}

/// `tenant_guard_internal.load_node_state(state jsonb)`: on a worker, makes
/// tenant_guard's node tables ([`NODE_STATE_TABLES`]) hold exactly the rows
/// of `state` (written by `sync_nodes` on the coordinator). Revoked from
/// PUBLIC; runs as the extension's owner. Its statement carries the key
/// ring: no error it raises shows the statement.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard_internal")]
fn load_node_state(state: pgrx::JsonB) {
    crate::error::hide_statement(|| {
        crate::error::require_writable(c"tenant_guard_internal.load_node_state()");
        let text = state.0.to_string();
        crate::privileged::as_extension_owner(|| {
            for name in NODE_STATE_TABLES {
                let t = crate::quote::ident(name);
                spi(Spi::run(&format!("DELETE FROM tenant_guard.{t}")));
                spi(Spi::run_with_args(
                    &format!(
                        "INSERT INTO tenant_guard.{t} SELECT * FROM pg_catalog.jsonb_populate_recordset(NULL::tenant_guard.{t}, \
                           $1::pg_catalog.jsonb OPERATOR(pg_catalog.->) $2::pg_catalog.text)"
                    ),
                    &[text.as_str().into(), name.into()],
                ));
            }
        });
    })
}
