//! The one place that turns a failure into a PostgreSQL error with a SQLSTATE.
//!
//! Messages follow PostgreSQL's style: lowercase, no trailing period, values
//! in double quotes; the why goes in DETAIL and the next step in HINT. No
//! message, DETAIL or HINT ever contains a token, a signature or a secret.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

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
        let mut r = ErrorReport::new(self.code, self.message, "tenant_guard");
        if let Some(d) = self.detail {
            r = r.set_detail(d);
        }
        if let Some(h) = self.hint {
            r = r.set_hint(h);
        }
        r.report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
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

/// Unwraps an SPI result: SPI failures here are internal errors.
pub fn spi<T>(r: Result<T, pgrx::spi::Error>) -> T {
    r.unwrap_or_else(|e| {
        Failure::new(Code::ERRCODE_INTERNAL_ERROR, format!("tenant_guard: {e}")).raise()
    })
}

/// Runs a query expected to return at most one row of one column: `None`
/// for no row or a NULL value. SPI failures are internal errors.
pub fn one<T: pgrx::FromDatum + pgrx::IntoDatum>(
    sql: &str,
    args: &[pgrx::datum::DatumWithOid],
) -> Option<T> {
    match Spi::get_one_with_args::<T>(sql, args) {
        Ok(v) => v,
        Err(pgrx::spi::Error::InvalidPosition) => None,
        Err(e) => spi(Err(e)),
    }
}
