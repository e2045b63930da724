//! tenant_guard: multi-tenant isolation inside PostgreSQL.
//!
//! Module map: `token` (pure JWS/JWT verification), `gucs` (settings and the
//! context storage), `keys` (key ring and cache), `registry` (optional tenant
//! registry), `context` (set_context and accessors), `catalog` (definer
//! rights, catalog look-ups), `quote` (SQL quoting), `error` (SQLSTATEs).

use pgrx::prelude::*;

mod catalog;
mod context;
mod error;
mod gucs;
mod integrity;
mod integrity_sql;
mod keys;
mod policy;
mod protect;
mod quote;
mod registry;
mod rollout;
pub mod token;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!("../sql/audit.sql", name = "audit", requires = ["bootstrap"]);
extension_sql_file!(
    "../sql/selftest.sql",
    name = "selftest",
    requires = ["bootstrap"]
);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    keys::init();
}

/// The version of the loaded tenant_guard library.
#[pg_extern(immutable, parallel_safe, schema = "tenant_guard")]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[cfg(test)]
mod unit {
    #[test]
    fn version_is_the_crate_version() {
        assert_eq!(super::version(), env!("CARGO_PKG_VERSION"));
        assert!(super::version().split('.').count() == 3);
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn version_matches_the_control_file() {
        let v = Spi::get_one::<String>("SELECT tenant_guard.version()").unwrap();
        let installed = Spi::get_one::<String>(
            "SELECT extversion::text FROM pg_extension WHERE extname = 'tenant_guard'",
        )
        .unwrap();
        assert_eq!(v, installed);
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
