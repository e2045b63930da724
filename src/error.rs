//! The one place that turns a failure into a PostgreSQL error with a SQLSTATE.
//!
//! Messages follow PostgreSQL's style: lowercase, no trailing period, values
//! in double quotes; the why goes in DETAIL and the next step in HINT. No
//! message, DETAIL or HINT ever contains a token, a signature or a secret.
//!
//! The statement is never logged with them. A client that interpolates its
//! parameters (Django's default) sends `SELECT tenant_guard.set_context('eyJ…')`
//! as text, and PostgreSQL would print that text as the `STATEMENT:` line
//! under every ERROR and LOG message (`log_min_error_statement = error`, the
//! default): a still-valid token in the log. Every message tenant_guard emits
//! carries the text domain [`DOMAIN`], and an `emit_log_hook` ([`init`]) sets
//! `hide_stmt` on exactly those, which is what C code does with
//! `errhidestmt(true)`. (pgrx re-raises errors caught at a guard boundary
//! from a copy that keeps the domain but not `hide_stmt`, so calling
//! `errhidestmt` inside the report would be lost; the domain survives.)
//! [`hide_statement`] extends this to errors PostgreSQL itself raises while
//! `set_context` runs (an SPI failure, a statement timeout).

use pgrx::pg_sys::panic::{CaughtError, ErrorReport, ErrorReportWithLevel};
use pgrx::prelude::*;
use std::ffi::CStr;

pub use pgrx::PgSqlErrorCode as Code;

/// An error on its way to the client.
pub struct Failure {
    pub code: Code,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }
    /// Raises the error; never returns.
    pub fn raise(self) -> ! {
        self.report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }

    /// Emits the message at `level` (WARNING, LOG, ...), statement hidden.
    pub fn report(self, level: PgLogLevel) {
        let mut r = ErrorReport::new(self.code, self.message, "tenant_guard").set_domain(DOMAIN);
        if let Some(d) = self.detail {
            r = r.set_detail(d);
        }
        if let Some(h) = self.hint {
            r = r.set_hint(h);
        }
        r.report(level);
    }
}

/// The text domain of every message tenant_guard emits; the log hook hides
/// the statement of messages in it. (No translation catalog is installed
/// under this name, so messages stay as written.)
pub const DOMAIN: &str = "tenant_guard";

/// A LOG line for the DBA (server log only at the default
/// `client_min_messages`), without the statement that caused it.
///
/// Written straight through `errstart`/`errfinish` like C's
/// `ereport(LOG, errmsg_internal("%s", …))`: a bypass context writes one at
/// every use, so this is on the hot path of support sessions. When LOG is
/// not wanted (`log_min_messages`, `client_min_messages`) nothing is copied.
/// An interior NUL (possible in a claim) is written as U+FFFD rather than
/// cutting the line short.
pub fn log_line(message: impl AsRef<str>) {
    unsafe extern "C-unwind" {
        fn errstart(elevel: std::ffi::c_int, domain: *const std::ffi::c_char) -> bool;
        fn errcode(sqlerrcode: std::ffi::c_int) -> std::ffi::c_int;
        fn errmsg_internal(fmt: *const std::ffi::c_char, ...) -> std::ffi::c_int;
        fn errfinish(
            filename: *const std::ffi::c_char,
            lineno: std::ffi::c_int,
            funcname: *const std::ffi::c_char,
        );
    }
    let message = message.as_ref();
    // SAFETY: errstart only reads the level and keeps the static domain.
    // Both sides of the boundary hold no Rust value needing a destructor
    // except `text`, created and dropped inside it; an ERROR raised while
    // writing (out of memory, a failing log hook) is turned into a Rust
    // panic by the boundary and re-raised by pgrx's guard above us.
    unsafe {
        pgrx::pg_sys::ffi::pg_guard_ffi_boundary(|| {
            if !errstart(pgrx::pg_sys::LOG as std::ffi::c_int, DOMAIN_C.as_ptr()) {
                return;
            }
            let text = log_text(message);
            errcode(Code::ERRCODE_SUCCESSFUL_COMPLETION as std::ffi::c_int);
            errmsg_internal(c"%s".as_ptr(), text.as_ptr());
            drop(text);
            errfinish(c"tenant_guard".as_ptr(), 0, c"log_line".as_ptr());
        })
    }
}

/// [`DOMAIN`] as a C string (the text domain `errstart` records).
const DOMAIN_C: &CStr = c"tenant_guard";

/// `message` as a C string: interior NULs become U+FFFD.
fn log_text(message: &str) -> std::ffi::CString {
    std::ffi::CString::new(message).unwrap_or_else(|_| {
        let fixed = message.replace('\0', "\u{fffd}");
        // No NUL is left to refuse.
        std::ffi::CString::new(fixed).unwrap_or_default()
    })
}

static mut PREVIOUS_EMIT_LOG_HOOK: pg_sys::emit_log_hook_type = None;

/// Installs the log hook that hides the statement of tenant_guard's own
/// messages. Called once per process from `_PG_init` (through `gucs::init`).
pub fn init() {
    // SAFETY: _PG_init runs once per process, before any message of ours;
    // the previous hook is kept and called (hooks chain).
    unsafe {
        PREVIOUS_EMIT_LOG_HOOK = pg_sys::emit_log_hook;
        pg_sys::emit_log_hook = Some(hide_own_statements);
    }
}

/// Whether a statement's text holds something shaped like a compact JWS
/// (`eyJ…` base64url, a dot, base64url, a dot, base64url): such a statement
/// is never written to the server log by an error, whoever raised it.
pub fn carries_token(q: &[u8]) -> bool {
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let mut i = 0;
    while i + 3 <= q.len() {
        if &q[i..i + 3] == b"eyJ" && (i == 0 || !b64(q[i - 1])) {
            // Three non-empty base64url segments separated by two dots (the
            // last may be empty for an unsigned token).
            let mut j = i;
            let mut dots = 0;
            let mut seg = 0;
            while j < q.len() && (b64(q[j]) || q[j] == b'.') {
                if q[j] == b'.' {
                    if seg == 0 {
                        break;
                    }
                    dots += 1;
                    seg = 0;
                } else {
                    seg += 1;
                }
                j += 1;
            }
            if dots >= 2 && j - i >= 16 {
                return true;
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    false
}

/// Whether a statement's text calls `set_context` (any case), whose
/// argument may be a bind parameter.
pub fn names_set_context(q: &[u8]) -> bool {
    q.windows(11)
        .any(|w| w.eq_ignore_ascii_case(b"set_context"))
}

/// Whether a message's text domain is ours.
fn is_ours(domain: &[u8]) -> bool {
    domain == DOMAIN.as_bytes()
}

#[pg_guard]
unsafe extern "C-unwind" fn hide_own_statements(edata: *mut pg_sys::ErrorData) {
    // SAFETY: PostgreSQL passes the ErrorData being emitted; domain is a
    // NUL-terminated string or NULL (on_error_report reads its strings the
    // same way and may clear output_to_server, which a log hook may do).
    // Called before the server log line is written, which is where
    // hide_stmt is read.
    unsafe {
        if let Some(e) = edata.as_mut() {
            let ours = !e.domain.is_null() && is_ours(CStr::from_ptr(e.domain).to_bytes());
            // Counters of denials, and the rejection log's limit on ERRORs.
            crate::stats::on_error_report(e, ours);
            // The CONTEXT line is hidden with the statement: with
            // log_parameter_max_length_on_error (which any role may set for
            // itself) it lists the bind parameters, the token among them.
            if ours {
                e.hide_stmt = true;
                e.hide_ctx = true;
            } else if !pg_sys::debug_query_string.is_null() {
                // Someone else's error (a failed transaction, a bad
                // argument, 1/0 beside the call) in a statement whose text
                // carries a token, or that passes one to set_context as a
                // parameter: the STATEMENT or CONTEXT line would log it.
                let q = CStr::from_ptr(pg_sys::debug_query_string).to_bytes();
                if carries_token(q) || names_set_context(q) {
                    e.hide_stmt = true;
                    e.hide_ctx = true;
                }
            }
        }
        if let Some(previous) = PREVIOUS_EMIT_LOG_HOOK {
            previous(edata);
        }
    }
}

/// Runs `f`; an error raised inside (by PostgreSQL or by us) is re-raised
/// in tenant_guard's domain, so the statement that called `f` (which may
/// hold a token) is not logged with it. SQLSTATE, message, DETAIL and HINT
/// are kept.
pub fn hide_statement<R>(f: impl FnOnce() -> R) -> R {
    let payload = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => return r,
        Err(payload) => payload,
    };
    // What a raised error looks like while it unwinds: our own reports and
    // `ereport!` (ErrorReportWithLevel), PostgreSQL errors caught at an FFI
    // boundary (CaughtError), plain panics (a message).
    let retag = |e: &ErrorReportWithLevel| -> Option<Failure> {
        (!e.domain().is_some_and(|d| is_ours(d.as_bytes()))).then(|| Failure {
            code: e.sql_error_code(),
            message: e.message().to_owned(),
            detail: e.detail().map(str::to_owned),
            hint: e.hint().map(str::to_owned),
        })
    };
    let failure = if let Some(e) = payload.downcast_ref::<ErrorReportWithLevel>() {
        retag(e)
    } else if let Some(c) = payload.downcast_ref::<CaughtError>() {
        match c {
            CaughtError::PostgresError(e) | CaughtError::ErrorReport(e) => retag(e),
            CaughtError::RustPanic { ereport, .. } => retag(ereport),
        }
    } else if let Some(m) = payload.downcast_ref::<&str>() {
        Some(Failure::new(Code::ERRCODE_INTERNAL_ERROR, *m))
    } else {
        payload
            .downcast_ref::<String>()
            .map(|m| Failure::new(Code::ERRCODE_INTERNAL_ERROR, m.clone()))
    };
    match failure {
        Some(f) => f.raise(),
        None => std::panic::resume_unwind(payload),
    }
}

/// `22023`: an argument has a value the function cannot accept.
pub fn invalid_parameter(message: impl Into<String>) -> Failure {
    Failure::new(Code::ERRCODE_INVALID_PARAMETER_VALUE, message)
}

/// `28000`: a token or its tenant was refused.
pub fn rejected(message: impl Into<String>) -> Failure {
    Failure::new(Code::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, message)
}

/// `42704`: a named object (key, constraint) does not exist.
pub fn undefined_object(message: impl Into<String>) -> Failure {
    Failure::new(Code::ERRCODE_UNDEFINED_OBJECT, message)
}

/// `XX000`: something that cannot happen did (a bug, or a catalog edited
/// by hand). Raised rather than guessing a value.
pub fn internal(message: impl Into<String>) -> ! {
    Failure::new(
        Code::ERRCODE_INTERNAL_ERROR,
        format!("tenant_guard: {}", message.into()),
    )
    .raise()
}

/// A C string of `s`, for a PostgreSQL C API. Names and values that reach
/// here come from SQL text, which cannot hold a NUL byte: one would be a
/// bug, raised as `XX000` rather than silently truncated or emptied.
pub fn c_string(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap_or_else(|_| internal("a NUL byte in a name or setting value"))
}

/// A value the query guarantees (a `NOT NULL` catalog or table column, an
/// expression that cannot be NULL), from an SPI result: SPI failures and a
/// NULL are internal errors (`XX000`) naming `what`, never a default.
pub fn present<T>(r: Result<Option<T>, pgrx::spi::Error>, what: &str) -> T {
    spi(r).unwrap_or_else(|| internal(format!("unexpected NULL {what}")))
}

/// Unwraps an SPI result: SPI failures here are internal errors.
pub fn spi<T>(r: Result<T, pgrx::spi::Error>) -> T {
    r.unwrap_or_else(|e| {
        Failure::new(Code::ERRCODE_INTERNAL_ERROR, format!("tenant_guard: {e}")).raise()
    })
}

/// Runs a query expected to return at most one row of one column: `None`
/// for no row or a NULL value. SPI failures are internal errors.
///
/// For SELECTs only. It runs read-only while the transaction has written
/// nothing (like pgrx's `select`): it never assigns a transaction id, so a
/// look-up costs no commit record and works inside a parallel worker (the
/// context checks run there; `Spi::get_one` would assign one and fail).
pub fn one<T: pgrx::FromDatum + pgrx::IntoDatum>(
    sql: &str,
    args: &[pgrx::datum::DatumWithOid],
) -> Option<T> {
    match Spi::connect(|c| c.select(sql, Some(1), args)?.first().get_one::<T>()) {
        Ok(v) => v,
        Err(pgrx::spi::Error::InvalidPosition) => None,
        Err(e) => spi(Err(e)),
    }
}

/// `25006` unless the transaction may write: PostgreSQL's own check and
/// message ("cannot execute tenant_guard.add_key() in a read-only
/// transaction"), as `INSERT` gets it. Every transaction on a hot standby is
/// read-only, as is one after `SET TRANSACTION READ ONLY`.
///
/// Write-side functions call it first: otherwise, on a standby, their first
/// write fails inside pgrx (which asks for a transaction id before a
/// read-write SPI statement) with `XX000` "cannot assign TransactionIds
/// during recovery", and after `SET TRANSACTION READ ONLY` they would burn a
/// transaction id before PostgreSQL refuses the statement.
pub fn require_writable(function: &CStr) {
    // SAFETY: a NUL-terminated name; raises 25006 (an ERROR) or returns.
    unsafe { pg_sys::PreventCommandIfReadOnly(function.as_ptr()) }
}

/// `s` with its first letter in upper case (a reason that begins a DETAIL).
pub fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod token_shape {
    use super::carries_token;

    #[test]
    fn statements_with_tokens_are_recognised() {
        let t = "eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiJhY21lIn0.c2lnbmF0dXJlX2J5dGVz";
        assert!(carries_token(
            format!("SELECT tenant_guard.set_context('{t}')").as_bytes()
        ));
        assert!(carries_token(
            format!("SELECT tenant_guard.set_context('{t}'), 1/0").as_bytes()
        ));
        // An unsigned token (empty signature) too.
        assert!(carries_token(
            b"SELECT tenant_guard.set_context('eyJhbGciOiJub25lIn0.eyJhIjoxfQ.')"
        ));
    }

    #[test]
    fn ordinary_statements_are_not() {
        assert!(!carries_token(b"SELECT 1/0"));
        assert!(!carries_token(b"SELECT 'eyJ' || 'x'"));
        assert!(!carries_token(b"SELECT 'heyJude.a.b'"));
        assert!(!carries_token(b"SELECT 'eyJ..'"));
        assert!(!carries_token(b"SELECT tenant_guard.set_context($1)"));
    }

    #[test]
    fn statements_passing_a_parameter_to_set_context_are_recognised() {
        use super::names_set_context;
        assert!(names_set_context(b"SELECT tenant_guard.set_context($1)"));
        assert!(names_set_context(
            b"select TENANT_GUARD.SET_CONTEXT($1, false)"
        ));
        assert!(!names_set_context(b"SELECT tenant_guard.clear_context()"));
        assert!(!names_set_context(b"SELECT $1::text"));
    }

    #[test]
    fn log_lines_keep_what_follows_a_nul() {
        use super::log_text;
        assert_eq!(log_text("user \"a\"").to_bytes(), b"user \"a\"");
        // A claim holding U+0000 neither fails the line nor cuts it short.
        let t = log_text("user \"sup\0port\", kid \"k\"");
        assert_eq!(t.to_str().ok(), Some("user \"sup\u{fffd}port\", kid \"k\""));
        assert_eq!(log_text("\0\0").to_str().ok(), Some("\u{fffd}\u{fffd}"));
    }
}

#[cfg(test)]
mod detail_text {
    use super::capitalized;

    #[test]
    fn capitalizes_the_first_letter_only() {
        assert_eq!(
            capitalized("the type x belongs to role \"a\""),
            "The type x belongs to role \"a\""
        );
        assert_eq!(capitalized("élan"), "Élan");
        assert_eq!(capitalized(""), "");
        assert_eq!(capitalized("1 row"), "1 row");
    }
}
