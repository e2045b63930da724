//! tenant_guard: multi-tenant isolation inside PostgreSQL.
//!
//! Module map (every module; `src/lib.rs` declares them below):
//! * `token`: pure JWS/JWT verification, no pgrx (unit tests in
//!   `token_tests.rs`; also compiled by `fuzz/`).
//! * `gucs`: every setting and its name; the context setting's storage.
//! * `error`: SQLSTATEs, the one way errors are raised; statements hidden.
//! * `quote`: identifier and literal quoting.
//! * `privileged`: the one door for SQL run with rights other than the
//!   caller's (pinned `search_path`, restricted table-owner and
//!   extension-owner scopes).
//! * `keys`: key ring, its per-backend cache and invalidation.
//! * `registry`: the optional tenant registry.
//! * `context`: `set_context`, the accessors, `visible_tenants` /
//!   `writable_tenants` (plain C functions the policies call).
//! * `catalog`: catalog look-ups shared by the generators.
//! * `policy` (pure rendering) and `protect` (catalog reads, DDL, drift):
//!   the row-level security generator.
//! * `triggers`: the tenant-keeping row trigger (C).
//! * `integrity` (pure rendering) and `integrity_sql` (catalog reads, locks,
//!   DDL): composite keys, NOT NULL, scoped uniques.
//! * `backfill`: `backfill_batch`, `backfill_tenant` (the procedure
//!   `backfill` is `sql/backfill.sql`).
//! * `audit`: row counts behind the audit views, as each table's owner.
//! * `rollout`: staged rollout.
//! * `ddl_guard`: what the DDL guard (event triggers in `sql/finalize.sql`)
//!   refuses on a protected table.
//! * `metrics` (pure: counter names, rejection reasons, the log's rate
//!   limit) and `stats` (shared-memory or per-backend counters,
//!   `tenant_guard.stats`, the rejection log line's limits).
//! * `tenant_counts` (pure: per-tenant counters, eviction) and
//!   `tenant_stats` (executor hooks, the per-tenant table in shared memory
//!   or per backend, `tenant_guard.tenant_stats`).
//! * `bypass`: bypass tokens through a `BYPASSRLS` role
//!   (`tenant_guard.bypass_role`).
//! * `as_tenant` (pure: who may, read sets, the log line) and `impersonate`
//!   (`tenant_guard.as_tenant`): a tenant context without a token, for test
//!   suites.
//!
//! Hand-written SQL is in `sql/` (bootstrap, audit, selftest, backfill,
//! explain, finalize); the schema `tenant_guard` holds the documented API only,
//! `tenant_guard_internal` the machinery.

use pgrx::prelude::*;

mod as_tenant;
mod audit;
mod backfill;
mod bypass;
mod catalog;
mod citus;
mod context;
mod ddl_guard;
mod error;
mod gucs;
mod hooks;
mod impersonate;
mod integrity;
mod integrity_sql;
mod keys;
mod metrics;
mod policy;
mod privileged;
mod protect;
mod quote;
mod registry;
mod rollout;
mod scan;
mod stats;
mod tenant_counts;
mod tenant_stats;
pub mod token;
mod triggers;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);

/// The API schema, created by `sql/bootstrap.sql`. Declared so that
/// `#[pg_extern(schema = "tenant_guard")]` can name it (pgrx requires a
/// `#[pg_schema]` module for every schema named there).
#[pg_schema]
mod tenant_guard {}

/// The machinery's schema (trigger functions, helpers behind the views),
/// also created by `sql/bootstrap.sql`, before anything pgrx generates.
#[pg_schema]
mod tenant_guard_internal {}
extension_sql_file!(
    "../sql/audit.sql",
    name = "audit",
    requires = [
        "bootstrap",
        protect::protection_drift,
        protect::default_tenant_column,
        protect::policy_names,
        audit::count_null_tenant_rows,
        audit::count_orphan_tenant_rows,
        audit::count_cross_tenant_references
    ]
);
extension_sql_file!(
    "../sql/selftest.sql",
    name = "selftest",
    requires = ["bootstrap"]
);
extension_sql_file!(
    "../sql/explain.sql",
    name = "explain",
    requires = ["bootstrap"]
);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    keys::init();
    context::init();
    bypass::init();
    scan::init();
    stats::init();
}

/// The version of the loaded tenant_guard library.
#[pg_extern(immutable, parallel_safe, schema = "tenant_guard")]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[cfg(test)]
mod unit {
    #[test]
    fn version_is_semver() {
        // The control file's default_version and the upgrade script names
        // are derived from it: MAJOR.MINOR.PATCH, numbers only.
        let parts: Vec<&str> = super::version().split('.').collect();
        assert_eq!(parts.len(), 3, "{}", super::version());
        assert!(
            parts.iter().all(|p| p.parse::<u32>().is_ok()),
            "{}",
            super::version()
        );
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

    #[pg_test(error = "permission denied to set parameter \"tenant_guard.context\"")]
    fn context_settings_are_superuser_only() {
        Spi::run("CREATE ROLE tg_pg_test_app").unwrap();
        Spi::run("SET ROLE tg_pg_test_app").unwrap();
        Spi::run("SELECT set_config('tenant_guard.context', 'victim', true)").unwrap();
    }

    #[pg_test]
    fn verification_settings_are_superuser_only() {
        let user_settable = Spi::get_one::<String>(
            "SELECT string_agg(name, ',' ORDER BY name) FROM pg_settings \
              WHERE name LIKE 'tenant_guard.%' AND context = 'user'",
        )
        .unwrap();
        // Only the helpers' own lock wait, which limits nobody but the
        // caller. Even the generators' default column name is trusted by
        // code that runs with the extension owner's rights (the DDL guard).
        assert_eq!(user_settable.as_deref(), Some("tenant_guard.lock_timeout"));
        let superuser = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_settings WHERE name LIKE 'tenant_guard.%' AND context = 'superuser'",
        )
        .unwrap();
        assert!(superuser.unwrap_or(0) >= 12, "{superuser:?}");
    }

    #[pg_test(error = "invalid configuration parameter name \"tenant_guard.no_such_setting\"")]
    fn prefix_is_reserved() {
        Spi::run("SET tenant_guard.no_such_setting = 'x'").unwrap();
    }

    #[pg_test]
    fn signed_token_round_trips_through_set_context() {
        Spi::run("SELECT tenant_guard.add_key('t', decode(repeat('ab', 32), 'hex'))").unwrap();
        let t = Spi::get_one::<String>(
            "SELECT tenant_guard.set_context(tenant_guard.sign('{\"tenant_id\": \"acme\", \"exp\": 4102444800}'), false)",
        )
        .unwrap();
        assert_eq!(t.as_deref(), Some("acme"));
        assert_eq!(
            Spi::get_one::<String>("SELECT tenant_guard.tenant_id()")
                .unwrap()
                .as_deref(),
            Some("acme")
        );
        Spi::run("SELECT tenant_guard.clear_context()").unwrap();
        assert_eq!(
            Spi::get_one::<String>("SELECT tenant_guard.tenant_id()").unwrap(),
            None
        );
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
