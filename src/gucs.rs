//! Every `tenant_guard.*` setting, registered in one place, with its name
//! defined once (the `*_NAME` constants).
//!
//! * **Verification rules** (`tenant_claim`, `tenants_claim`, `user_claim`, `leeway`,
//!   `require_exp`, `issuer`, `audience`, `max_token_lifetime`,
//!   `max_token_bytes`, `max_bypass_lifetime`): `PGC_SUSET`, so only a
//!   superuser (or a role granted `SET` on the parameter) can loosen them;
//!   an application role cannot switch off `exp` checking for itself.
//! * **Behaviour and operations** (`missing_context`, `tenant_column`,
//!   `on_new_table`, `bypass_role`, `as_tenant_role`, `log_context`,
//!   `log_rejections`, `token_cache_bytes`): also `PGC_SUSET`; code running
//!   with the extension owner's rights (the DDL guard) trusts
//!   `tenant_column`, `bypass_role` names the role a verified bypass token
//!   switches to, and `as_tenant_role` the role whose members may act as a
//!   tenant without a token.
//! * **Per-tenant statistics**: `track_tenants` (`PGC_SUSET`, off by
//!   default) and `tenant_stats_max` (`PGC_POSTMASTER`: it sizes shared
//!   memory; defined only with `shared_preload_libraries`, since PostgreSQL
//!   refuses postmaster-level settings defined later).
//! * **`lock_timeout`**: the only user-settable one (`PGC_USERSET`); it
//!   bounds the caller's own helper calls and nothing else.
//! * **The context** (`tenant_guard.context`): the verified tenant, scope
//!   (key, user, read set, bypass) and claims of this session, in one
//!   setting so that set_context writes once. `PGC_SUSET`: a non-superuser's
//!   `SET`, `set_config`, `ALTER ROLE ... SET` and function `SET` clauses are
//!   all refused by PostgreSQL itself, and only `set_context` (which verifies
//!   a token first) and `clear_context` write it, through
//!   `set_config_option` with `PGC_SUSET` rights. It may not be put in a
//!   configuration file (a tenant for everyone), is hidden from `SHOW ALL`,
//!   and is not excluded from `RESET ALL`, so `RESET ALL` / `DISCARD ALL`
//!   clear it: clearing only ever fails closed.
//!
//! The prefix is reserved (`MarkGUCPrefixReserved`), which also discards any
//! placeholder a session `SET` before this library was loaded.
//!
//! `init` also installs the log hook of `error` (statements of tenant_guard's
//! messages are never logged), being the one call `_PG_init` makes first.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};
use pgrx::pg_sys;
use std::ffi::{CStr, CString};

pub static TENANT_CLAIM: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"tenant_id"));
pub static LEEWAY: GucSetting<i32> = GucSetting::<i32>::new(30);
pub static REQUIRE_EXP: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static ISSUER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static AUDIENCE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static MAX_TOKEN_LIFETIME: GucSetting<i32> = GucSetting::<i32>::new(0);
pub static MAX_TOKEN_BYTES: GucSetting<i32> = GucSetting::<i32>::new(8192);
pub static LOG_CONTEXT: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static TENANTS_CLAIM: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"tenants"));
pub static MAX_BYPASS_LIFETIME: GucSetting<i32> = GucSetting::<i32>::new(900);
pub static USER_CLAIM: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"sub"));
pub static MISSING_CONTEXT: GucSetting<MissingContext> =
    GucSetting::<MissingContext>::new(MissingContext::Error);
pub static TENANT_COLUMN: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(crate::policy::DEFAULT_TENANT_COLUMN_C));
pub static ON_NEW_TABLE: GucSetting<OnNewTable> = GucSetting::<OnNewTable>::new(OnNewTable::Off);
pub static LOG_REJECTIONS: GucSetting<LogRejections> =
    GucSetting::<LogRejections>::new(LogRejections::All);
/// Rejection log lines per reason and minute (cluster-wide with the
/// library in `shared_preload_libraries`, per backend otherwise); 0: no
/// limit. See `stats`.
pub static LOG_REJECTIONS_PER_MINUTE: GucSetting<i32> = GucSetting::<i32>::new(60);
/// One rejection of every N (per reason) is considered for a log line.
pub static LOG_REJECTIONS_SAMPLE: GucSetting<i32> = GucSetting::<i32>::new(1);
/// Default bound of the verified-token cache: 4 MB per backend.
pub const TOKEN_CACHE_BYTES_DEFAULT: i32 = 4 * 1024 * 1024;
pub static TOKEN_CACHE_BYTES: GucSetting<i32> = GucSetting::<i32>::new(TOKEN_CACHE_BYTES_DEFAULT);
/// A role with BYPASSRLS that bypass tokens switch to for the rest of their
/// transaction (see `bypass`); empty: bypass tokens read the registry's
/// tenants through the policies.
pub static BYPASS_ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// The role whose members may call `tenant_guard.as_tenant` (act as a
/// tenant without a token, for test suites); empty: superusers only.
pub static AS_TENANT_ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// How long a DDL helper may wait for the locks it takes up front, in
/// milliseconds (0: no limit). See `integrity_sql::locks`.
pub static LOCK_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(5000);

/// The DDL guard (`sql/finalize.sql`, `src/ddl_guard.rs`): `off` lets DDL
/// that weakens a protected table through, logged at WARNING. Superuser
/// only: it is the emergency door, not a migration option.
pub static DDL_GUARD: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Per-tenant activity in `tenant_guard.tenant_stats` (see `tenant_stats`).
pub static TRACK_TENANTS: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Most tenants `tenant_guard.tenant_stats` keeps (postmaster-level: the
/// size of its shared memory).
pub static TENANT_STATS_MAX: GucSetting<i32> = GucSetting::<i32>::new(1000);

/// tenant_guard's own LOG line for a refused token.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogRejections {
    /// One line per refused token.
    #[name = c"all"]
    All,
    /// At most one line per backend every `context::SAMPLE_SECONDS`
    /// seconds, counting the lines skipped since the last one.
    #[name = c"sampled"]
    Sampled,
    /// None (the client still gets its 28000 error, which PostgreSQL logs
    /// according to `log_min_messages`).
    #[name = c"off"]
    Off,
}

/// What a protected table does for a session without a tenant context.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum MissingContext {
    /// Raise 42501 with a HINT naming set_context.
    #[name = c"error"]
    Error,
    /// Show no rows (and accept no writes).
    #[name = c"empty"]
    Empty,
}

/// What happens when a table with the tenant column is created.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum OnNewTable {
    #[name = c"off"]
    Off,
    #[name = c"warn"]
    Warn,
    #[name = c"protect"]
    Protect,
}

pub static CONTEXT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Name of the context setting.
pub const CONTEXT_NAME: &CStr = c"tenant_guard.context";

// The settings' names, each written once for the Rust side. SQL reads the
// effective tenant column through tenant_guard_internal.tenant_column(); the
// DDL guard (sql/finalize.sql) reads on_new_table by name, and selftest
// (sql/selftest.sql) pins several settings by name for its fixture.
pub const TENANT_CLAIM_NAME: &CStr = c"tenant_guard.tenant_claim";
pub const LEEWAY_NAME: &CStr = c"tenant_guard.leeway";
pub const REQUIRE_EXP_NAME: &CStr = c"tenant_guard.require_exp";
pub const ISSUER_NAME: &CStr = c"tenant_guard.issuer";
pub const BYPASS_ROLE_NAME: &CStr = c"tenant_guard.bypass_role";
pub const AS_TENANT_ROLE_NAME: &CStr = c"tenant_guard.as_tenant_role";
pub const AUDIENCE_NAME: &CStr = c"tenant_guard.audience";
pub const MAX_TOKEN_LIFETIME_NAME: &CStr = c"tenant_guard.max_token_lifetime";
pub const MAX_TOKEN_BYTES_NAME: &CStr = c"tenant_guard.max_token_bytes";
pub const LOG_CONTEXT_NAME: &CStr = c"tenant_guard.log_context";
pub const TENANTS_CLAIM_NAME: &CStr = c"tenant_guard.tenants_claim";
pub const USER_CLAIM_NAME: &CStr = c"tenant_guard.user_claim";
pub const MAX_BYPASS_LIFETIME_NAME: &CStr = c"tenant_guard.max_bypass_lifetime";
pub const MISSING_CONTEXT_NAME: &CStr = c"tenant_guard.missing_context";
pub const TENANT_COLUMN_NAME: &CStr = c"tenant_guard.tenant_column";
pub const ON_NEW_TABLE_NAME: &CStr = c"tenant_guard.on_new_table";
pub const LOG_REJECTIONS_NAME: &CStr = c"tenant_guard.log_rejections";
pub const LOG_REJECTIONS_PER_MINUTE_NAME: &CStr = c"tenant_guard.log_rejections_per_minute";
pub const LOG_REJECTIONS_SAMPLE_NAME: &CStr = c"tenant_guard.log_rejections_sample";
pub const TOKEN_CACHE_BYTES_NAME: &CStr = c"tenant_guard.token_cache_bytes";
pub const LOCK_TIMEOUT_NAME: &CStr = c"tenant_guard.lock_timeout";
pub const DDL_GUARD_NAME: &CStr = c"tenant_guard.ddl_guard";
pub const FORWARDED_TOKEN_NAME: &CStr = c"tenant_guard.forwarded_token";
pub const TRACK_TENANTS_NAME: &CStr = c"tenant_guard.track_tenants";
pub const TENANT_STATS_MAX_NAME: &CStr = c"tenant_guard.tenant_stats_max";

/// On a Citus cluster: the token of the coordinator's transaction-local
/// context, which `set_context` writes with `SET LOCAL` so that Citus
/// forwards it to every worker connection of the transaction. A worker
/// verifies it against its own key ring before it is a context (a value
/// anybody may write: it is only ever a token to verify).
pub static FORWARDED_TOKEN: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

thread_local! {
    static FORWARD_EPOCH: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// The transaction in which `tenant_guard.forwarded_token` was last
    /// assigned: a value is a forwarded context only in that transaction.
    static FORWARD_XACT: std::cell::Cell<crate::context::Transaction> = const { std::cell::Cell::new((0, 0)) };
}

/// The transaction of the last assignment of `tenant_guard.forwarded_token`
/// (a value restored at the end of a transaction, such as a session-level
/// `SET` that a `SET LOCAL` had covered, belongs to the transaction that
/// ended, so it is never adopted later).
pub fn forward_xact() -> crate::context::Transaction {
    FORWARD_XACT.with(std::cell::Cell::get)
}

/// Bumped on every assignment of `tenant_guard.forwarded_token` (set, reset,
/// rollback, end of transaction): equal epochs mean the same value.
pub fn forward_epoch() -> u64 {
    FORWARD_EPOCH.with(std::cell::Cell::get)
}

unsafe extern "C-unwind" fn forwarded_assigned(
    _newval: *const std::ffi::c_char,
    _extra: *mut std::ffi::c_void,
) {
    FORWARD_EPOCH.with(|e| e.set(e.get().wrapping_add(1)));
    // Only when a transaction is running (a value applied while the library
    // loads, outside one, belongs to no transaction).
    // SAFETY: no arguments; reads this backend's transaction state.
    if unsafe { pg_sys::IsTransactionState() } {
        FORWARD_XACT.with(|x| x.set(crate::context::this_transaction()));
    }
}

thread_local! {
    static CONTEXT_EPOCH: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Bumped on every assignment of the context setting: equal epochs mean the
/// same value (GUC strings are never changed in place).
pub fn context_epoch() -> u64 {
    CONTEXT_EPOCH.with(std::cell::Cell::get)
}

unsafe extern "C-unwind" fn context_assigned(
    newval: *const std::ffi::c_char,
    _extra: *mut std::ffi::c_void,
) {
    CONTEXT_EPOCH.with(|e| e.set(e.get().wrapping_add(1)));
    // SAFETY: the new value is NULL or a NUL-terminated string owned by the
    // GUC machinery for the duration of the call.
    let is_bypass = !newval.is_null()
        && crate::context::is_bypass_value(unsafe { CStr::from_ptr(newval) }.to_bytes());
    crate::bypass::context_assigned(is_bypass);
}

pub fn init() {
    let rules = GucFlags::default();
    GucRegistry::define_string_guc(
        TENANT_CLAIM_NAME,
        c"Name of the token claim that holds the tenant id.",
        c"A string or integer claim; required in every non-bypass token.",
        &TENANT_CLAIM,
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_int_guc(
        LEEWAY_NAME,
        c"Clock skew tolerated when checking exp, nbf and iat.",
        c"",
        &LEEWAY,
        0,
        3600,
        GucContext::Suset,
        rules | GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        REQUIRE_EXP_NAME,
        c"Refuse tokens without an exp claim.",
        c"",
        &REQUIRE_EXP,
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_string_guc(
        BYPASS_ROLE_NAME,
        c"Role (BYPASSRLS, not superuser) a bypass token switches to for the rest of its transaction.",
        c"Empty: a bypass token reads every tenant of the registry through the policies.",
        &BYPASS_ROLE,
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_string_guc(
        AS_TENANT_ROLE_NAME,
        c"Role whose members may act as a tenant without a token (tenant_guard.as_tenant, for test suites).",
        c"Empty: superusers only. Superuser-only, so a member cannot name a role of its own.",
        &AS_TENANT_ROLE,
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_string_guc(
        ISSUER_NAME,
        c"When set, a token's iss claim must equal it.",
        c"",
        &ISSUER,
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_string_guc(
        AUDIENCE_NAME,
        c"When set, a token's aud claim (string or array) must contain it.",
        c"",
        &AUDIENCE,
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_int_guc(
        MAX_TOKEN_LIFETIME_NAME,
        c"Longest accepted token lifetime (exp - iat); 0 means no limit.",
        c"",
        &MAX_TOKEN_LIFETIME,
        0,
        i32::MAX,
        GucContext::Suset,
        rules | GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        MAX_TOKEN_BYTES_NAME,
        c"Tokens longer than this are refused before any decoding.",
        c"",
        &MAX_TOKEN_BYTES,
        64,
        1024 * 1024,
        GucContext::Suset,
        rules | GucFlags::UNIT_BYTE,
    );
    GucRegistry::define_bool_guc(
        LOG_CONTEXT_NAME,
        c"Log every accepted set_context at LOG, not only rejections.",
        c"",
        &LOG_CONTEXT,
        GucContext::Suset,
        rules,
    );

    GucRegistry::define_string_guc(
        TENANTS_CLAIM_NAME,
        c"Name of the token claim listing the tenants a token may read.",
        c"An array; the tenant claim names the one it writes to and must be in it.",
        &TENANTS_CLAIM,
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_string_guc(
        USER_CLAIM_NAME,
        c"Claim path of the user a token names (tenant_guard.user_id()).",
        c"A member name, a dotted path or a JSON Pointer.",
        &USER_CLAIM,
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_int_guc(
        MAX_BYPASS_LIFETIME_NAME,
        c"Longest accepted lifetime of a bypass token (bypass: true).",
        c"",
        &MAX_BYPASS_LIFETIME,
        1,
        86400,
        GucContext::Suset,
        rules | GucFlags::UNIT_S,
    );
    GucRegistry::define_enum_guc(
        MISSING_CONTEXT_NAME,
        c"What a protected table does without a tenant context: error or empty.",
        c"error raises 42501 naming set_context; empty shows no rows. Both fail closed.",
        &MISSING_CONTEXT,
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_string_guc(
        TENANT_COLUMN_NAME,
        c"Default tenant column name for the generators, audits and new-table guard.",
        c"",
        &TENANT_COLUMN,
        // Superuser-only: the generators, audits and the DDL guard (which
        // runs with the extension owner's rights) trust it, so a database
        // owner's `ALTER DATABASE … SET` must not be able to point them at
        // another column, or at none (a trailing blank) to switch them off.
        // A DBA sets it once per database; a non-superuser administrator
        // passes `tenant_column => …` or is granted SET on the parameter.
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_enum_guc(
        ON_NEW_TABLE_NAME,
        c"When a table with the tenant column is created: off, warn or protect.",
        c"",
        &ON_NEW_TABLE,
        GucContext::Suset,
        rules,
    );

    GucRegistry::define_enum_guc(
        LOG_REJECTIONS_NAME,
        c"tenant_guard's LOG line for refused tokens: all, sampled or off.",
        c"sampled writes at most one line per backend every 10 seconds, with the count of lines skipped since. \
          PostgreSQL still logs each ERROR according to log_min_messages.",
        &LOG_REJECTIONS,
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_int_guc(
        LOG_REJECTIONS_PER_MINUTE_NAME,
        c"Most rejection log lines per reason and minute; 0 means no limit.",
        c"Cluster-wide with tenant_guard in shared_preload_libraries, per backend otherwise. \
          A rejection left out of the log also keeps its ERROR out of the server log (the client still gets it); \
          tenant_guard.stats counts both.",
        &LOG_REJECTIONS_PER_MINUTE,
        0,
        i32::MAX,
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_int_guc(
        LOG_REJECTIONS_SAMPLE_NAME,
        c"Log one rejection of every N (per reason), within tenant_guard.log_rejections_per_minute.",
        c"",
        &LOG_REJECTIONS_SAMPLE,
        1,
        i32::MAX,
        GucContext::Suset,
        rules,
    );
    GucRegistry::define_int_guc(
        TOKEN_CACHE_BYTES_NAME,
        c"Memory bound of each backend's cache of verified tokens; 0 disables the cache.",
        c"Counts the tokens and the values they produce; least recently used tokens are dropped first.",
        &TOKEN_CACHE_BYTES,
        0,
        1024 * 1024 * 1024,
        GucContext::Suset,
        rules | GucFlags::UNIT_BYTE,
    );
    GucRegistry::define_int_guc(
        LOCK_TIMEOUT_NAME,
        c"How long a DDL helper waits for the table locks it takes up front; 0 means no limit.",
        c"The helpers (add_tenant_fk, upgrade_foreign_keys, enforce_not_null, scope_unique, protect, \
          protect_schema, unprotect, rollout) take every lock first, never waiting while holding another, \
          and fail with 55P03 naming the table, changing nothing, when this time has passed. \
          Any role may set it: it only bounds its own helper calls.",
        &LOCK_TIMEOUT,
        0,
        i32::MAX,
        // User-settable: a shorter or longer wait only affects the caller's
        // own helper call (0 waits as PostgreSQL would, without limit).
        GucContext::Userset,
        rules | GucFlags::UNIT_MS,
    );
    GucRegistry::define_bool_guc(
        DDL_GUARD_NAME,
        c"Refuse DDL that would weaken the protection of a protected table.",
        c"off lets a superuser's DDL through in an emergency; each statement let through is logged at WARNING. \
          The way to change a protected table on purpose is tenant_guard.unprotect, then protect.",
        &DDL_GUARD,
        // Superuser only: a table owner must not switch its own guard off.
        GucContext::Suset,
        rules,
    );

    // tenant_guard.tenant_stats. Tracking is the superuser's: tenant ids are
    // business data, and the hot path's cost is a cluster-wide choice.
    GucRegistry::define_bool_guc(
        TRACK_TENANTS_NAME,
        c"Count each tenant's transactions, statements, rows, execution time and denials in tenant_guard.tenant_stats.",
        c"Counts top-level statements started under a context with a tenant; nothing without a context.",
        &TRACK_TENANTS,
        GucContext::Suset,
        rules,
    );
    // Postmaster-level (it sizes shared memory), which PostgreSQL allows
    // only while loading shared_preload_libraries; without that, each
    // backend keeps the default bound.
    // SAFETY: a plain read of a flag PostgreSQL sets while loading
    // shared_preload_libraries in the postmaster.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        GucRegistry::define_int_guc(
            TENANT_STATS_MAX_NAME,
            c"Most tenants tenant_guard.tenant_stats keeps; the least active make room for new ones.",
            c"Sizes the shared memory tenant_guard reserves at server start (about 300 bytes per tenant).",
            &TENANT_STATS_MAX,
            1,
            1_000_000,
            GucContext::Postmaster,
            rules,
        );
    }

    // Context: written only by set_context / clear_context. The assign hook
    // counts every change (set, reset, rollback, end of transaction), so the
    // context checks know when the value they verified was replaced.
    let ctx = GucFlags::DISALLOW_IN_FILE | GucFlags::DISALLOW_IN_AUTO_FILE | GucFlags::NO_SHOW_ALL;
    // SAFETY: a static setting; the hook cannot fail (it bumps a counter and
    // may switch the user back from the bypass role).
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            CONTEXT_NAME,
            c"Verified tenant context of this session: tenant, scope and claims.",
            c"Set only by tenant_guard.set_context after verifying a signed token.",
            &CONTEXT,
            GucContext::Suset,
            ctx,
            None,
            Some(context_assigned),
            None,
        )
    };

    // Forwarded token (Citus): user-settable, because Citus replays the
    // coordinator's `SET LOCAL` on each worker connection as the connected
    // role. Hidden from SHOW ALL and never in a configuration file.
    // SAFETY: a static setting; the hook cannot fail (it bumps a counter).
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            FORWARDED_TOKEN_NAME,
            c"On a Citus cluster: the token of the transaction's context, forwarded to the workers.",
            c"Written by tenant_guard.set_context with SET LOCAL on a Citus coordinator; a node verifies it \
              against its own key ring before it becomes the context. Setting it by hand is like calling \
              set_context with that token for the rest of the transaction.",
            &FORWARDED_TOKEN,
            GucContext::Userset,
            ctx,
            None,
            Some(forwarded_assigned),
            None,
        )
    };

    // The log hook hiding the statement of tenant_guard's messages.
    crate::error::init();

    // SAFETY: called from _PG_init with a static, NUL-terminated prefix.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"tenant_guard".as_ptr()) };
}

/// Whether a string setting reads as `expected`, where unset and empty read
/// as `default` (and an empty `default` as `None`), like [`text`] with
/// `default` applied. Compared in place: no copy, no allocation.
pub fn text_is(
    setting: &GucSetting<Option<CString>>,
    default: &str,
    expected: Option<&str>,
) -> bool {
    // SAFETY: the setting's variable is NULL or a NUL-terminated string
    // owned by the GUC machinery, read at once (this backend's only thread).
    let raw = unsafe {
        let p = *setting.as_ptr();
        if p.is_null() {
            &[][..]
        } else {
            std::ffi::CStr::from_ptr(p).to_bytes()
        }
    };
    let effective = if !raw.is_empty() {
        raw
    } else {
        default.as_bytes()
    };
    match expected {
        Some(e) => !e.is_empty() && effective == e.as_bytes(),
        None => effective.is_empty(),
    }
}

/// Reads a string setting, treating unset and empty alike.
pub fn text(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .and_then(|c| c.into_string().ok())
        .filter(|s| !s.is_empty())
}
