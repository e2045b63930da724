//! `rollout(phase, schema)`: a staged rollout over a whole schema.
//!
//! * `prepare`: every tenant table protected `permissive`, not forced. The
//!   application starts calling `set_context`; rows without a tenant stay
//!   readable; table owners are not yet bound.
//! * `tighten`: `strict` policies (NULL-tenant rows disappear).
//! * `enforce`: the tenant column NOT NULL, composite foreign keys, and
//!   FORCE ROW LEVEL SECURITY.
//!
//! Before `tighten` and `enforce` the audits must be clean for the schema:
//! no NULL tenants, no orphan tenants (with a registry), no cross-tenant
//! references. Otherwise `55000` with every blocker in DETAIL, and nothing
//! is changed (the check comes before the first statement). A table the
//! caller may not read in full (the audit views skip it with a WARNING),
//! and a cross-tenant count no owner could run safely, are blockers too.
//!
//! Whose rights: the audits run with the caller's rights (pinned
//! `search_path`); the DDL on each table runs as that table's owner
//! (through `protect` and the integrity generators); only the owner of every
//! table (or a superuser) can roll a schema out.

use crate::error::{invalid_parameter, spi, Code, Failure};
use crate::integrity_sql;
use crate::policy::{Mode, Options};
use crate::privileged::pinned;
use crate::protect::{protect_oid, tables_with_column, tenant_column};
use pgrx::iter::SetOfIterator;
use pgrx::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prepare,
    Tighten,
    Enforce,
}

impl Phase {
    pub fn parse(s: &str) -> Option<Phase> {
        match s {
            "prepare" => Some(Phase::Prepare),
            "tighten" => Some(Phase::Tighten),
            "enforce" => Some(Phase::Enforce),
            _ => None,
        }
    }

    /// Whether the audits must be clean before this phase.
    pub fn needs_clean_data(self) -> bool {
        self != Phase::Prepare
    }

    pub fn protect_options(self) -> Options {
        match self {
            Phase::Prepare => Options {
                mode: Mode::Permissive,
                force: false,
            },
            Phase::Tighten => Options {
                mode: Mode::Strict,
                force: false,
            },
            Phase::Enforce => Options {
                mode: Mode::Strict,
                force: true,
            },
        }
    }
}

/// Formats the blockers for the DETAIL: one line each, sorted.
pub fn blocker_detail(mut blockers: Vec<String>) -> String {
    blockers.sort();
    blockers.join("\n")
}

/// Runs `f` with `tenant_guard.tenant_column` set to `col` (the audit views
/// read it), restoring the caller's value afterwards, like a function's
/// `SET` clause does. Set with superuser context: the setting is
/// superuser-only, and a non-superuser administrator granted `rollout`
/// passes `tenant_column => …` instead (the value only lives for this call).
fn with_tenant_column<R>(col: &str, f: impl FnOnce() -> R) -> R {
    let value = crate::error::c_string(col);
    // SAFETY: opens a GUC nest level; it is closed by AtEOXact_GUC below,
    // or, when `f` raises, by the (sub)transaction's abort.
    let level = unsafe { pg_sys::NewGUCNestLevel() };
    // SAFETY: NUL-terminated name and value that outlive the call;
    // GUC_ACTION_SAVE ties the value to the nest level opened above, and
    // elevel ERROR makes a failure raise instead of returning.
    unsafe {
        pg_sys::set_config_option(
            crate::gucs::TENANT_COLUMN_NAME.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
    let r = f();
    // SAFETY: pops exactly the nest level opened above (f returned, so
    // every level it opened was closed), restoring the caller's value.
    unsafe { pg_sys::AtEOXact_GUC(true, level) };
    r
}

/// Every audit finding in `schema` that blocks a strict phase. The audits
/// run with the caller's rights and `search_path` pinned (they count rows as
/// each table's owner themselves, after checking that the caller could have
/// read every row); tables are named from `nspname`/`relname`.
fn blockers(schema: &str, col: &str) -> Vec<String> {
    let queries = [
        "SELECT pg_catalog.format('%I.%I: %s row(s) with a NULL %I', ns.nspname, c.relname, n.null_rows, n.tenant_column) \
           FROM tenant_guard.null_tenant_rows n \
           JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) n.table_name::pg_catalog.oid \
           JOIN pg_catalog.pg_namespace ns ON ns.oid OPERATOR(pg_catalog.=) c.relnamespace \
          WHERE ns.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
        "SELECT pg_catalog.format('%I.%I: %s row(s) of tenant %L, which is not in the registry', \
                                 ns.nspname, c.relname, o.\"rows\", o.tenant_id) \
           FROM tenant_guard.orphan_tenant_rows o \
           JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) o.table_name::pg_catalog.oid \
           JOIN pg_catalog.pg_namespace ns ON ns.oid OPERATOR(pg_catalog.=) c.relnamespace \
          WHERE ns.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
        "SELECT CASE WHEN x.mismatched_rows IS NULL \
                    THEN pg_catalog.format('%I.%I: references to %I.%I through %I were not counted (neither owner may read the other table without running the other''s code)', \
                                           ns.nspname, c.relname, pns.nspname, pc.relname, x.constraint_name) \
                    ELSE pg_catalog.format('%I.%I: %s row(s) reference a row of %I.%I of another tenant through %I', \
                                           ns.nspname, c.relname, x.mismatched_rows, pns.nspname, pc.relname, x.constraint_name) END \
           FROM tenant_guard.cross_tenant_references x \
           JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) x.child_table::pg_catalog.oid \
           JOIN pg_catalog.pg_namespace ns ON ns.oid OPERATOR(pg_catalog.=) c.relnamespace \
           JOIN pg_catalog.pg_class pc ON pc.oid OPERATOR(pg_catalog.=) x.parent_table::pg_catalog.oid \
           JOIN pg_catalog.pg_namespace pns ON pns.oid OPERATOR(pg_catalog.=) pc.relnamespace \
          WHERE ns.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
        // The audit views skip (with a WARNING) a table the caller may not
        // read in full: such a table blocks the rollout instead, since its
        // rows were not counted. (The condition of
        // `privileged::require_full_read` and `count_null_tenant_rows`.)
        "SELECT DISTINCT pg_catalog.format('%I.%I: not audited: this role lacks SELECT on it or row-level security restricts it', ns.nspname, c.relname) \
           FROM (SELECT tt.table_name::pg_catalog.oid AS relid, tt.table_name::pg_catalog.oid AS scoped \
                   FROM tenant_guard_internal.tenant_tables() tt \
                 UNION \
                 SELECT b.child_table::pg_catalog.oid, b.child_table::pg_catalog.oid \
                   FROM tenant_guard_internal.tenant_blind_foreign_keys() b \
                 UNION \
                 SELECT b.parent_table::pg_catalog.oid, b.child_table::pg_catalog.oid \
                   FROM tenant_guard_internal.tenant_blind_foreign_keys() b) t \
           JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) t.scoped \
           JOIN pg_catalog.pg_namespace sns ON sns.oid OPERATOR(pg_catalog.=) s.relnamespace \
           JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid \
           JOIN pg_catalog.pg_namespace ns ON ns.oid OPERATOR(pg_catalog.=) c.relnamespace \
          WHERE sns.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name \
            AND (NOT pg_catalog.has_table_privilege(t.relid, 'SELECT'::pg_catalog.text) \
                 OR (pg_catalog.row_security_active(t.relid::pg_catalog.regclass) \
                     AND NOT pg_catalog.pg_has_role(c.relowner, 'USAGE'::pg_catalog.text)))",
    ];
    with_tenant_column(col, || {
        pinned(|| {
            Spi::connect(|c| {
                queries
                    .iter()
                    .flat_map(|q| {
                        spi(c.select(*q, None, &[schema.into()]))
                            .filter_map(|row| spi(row.get::<String>(1)))
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
        })
    })
}

/// Moves every tenant table of `schema` to `phase`. Refuses (55000), listing
/// every blocker and changing nothing, while the audits are not clean.
/// Returns the DDL run or, with `dry_run` (the default), that would run.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn rollout(
    phase: &str,
    schema: default!(&str, "'public'"),
    tenant_column: default!(Option<&str>, "NULL"),
    dry_run: default!(Option<bool>, true),
) -> SetOfIterator<'static, String> {
    if !dry_run.unwrap_or(true) {
        crate::error::require_writable(c"tenant_guard.rollout()");
    }
    let p = Phase::parse(phase).unwrap_or_else(|| {
        invalid_parameter(format!("unknown rollout phase \"{phase}\""))
            .hint("Use 'prepare', 'tighten' or 'enforce', in that order.")
            .raise()
    });
    let dry = dry_run.unwrap_or(true);
    let col = self::tenant_column(tenant_column);
    let tables = tables_with_column(schema, &col);
    if p.needs_clean_data() {
        let found = blockers(schema, &col);
        if !found.is_empty() {
            Failure::new(
                Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("rollout of schema \"{schema}\" to \"{phase}\" is blocked by {} finding(s)", found.len()),
            )
            .detail(blocker_detail(found))
            .hint("Fix the data (tenant_guard.backfill_tenant, the registry, the rows named) and run rollout again; nothing was changed.")
            .raise();
        }
    }
    // Rows without a tenant that `prepare` shares read-only, counted before
    // the locks are taken (NOTICE per table afterwards).
    let shared: Vec<Option<i64>> = tables
        .iter()
        .map(|&t| {
            (p == Phase::Prepare && !dry)
                .then(|| crate::protect::shared_rows(t, &col, "rollout"))
                .flatten()
        })
        .collect();
    if !dry {
        // Every lock up front (see `integrity_sql::locks`): ACCESS
        // EXCLUSIVE on every table of the phase (protect's DDL, and for
        // `enforce` the NOT NULL steps and the DROP of each old foreign
        // key), the tables the foreign keys reference first, then the
        // schema's tables, each by OID.
        let mut set = crate::integrity_sql::locks::LockSet::default();
        let mut first: Vec<pg_sys::Oid> = Vec::new();
        if p == Phase::Enforce {
            first = integrity_sql::tenant_blind_fks(schema, &col)
                .into_iter()
                .map(|(parent, _)| parent)
                .collect();
        }
        first.sort_by_key(|o| u32::from(*o));
        let mut rest = tables.clone();
        rest.sort_by_key(|o| u32::from(*o));
        for t in first.into_iter().chain(rest) {
            set.add_tree(t, crate::integrity_sql::locks::ACCESS_EXCLUSIVE);
        }
        set.take("rollout");
    }
    let mut ddl = Vec::new();
    if p == Phase::Enforce {
        for &oid in &tables {
            ddl.extend(integrity_sql::not_null_core(oid, &col, dry));
        }
        // A dry run cannot make the columns NOT NULL first: render the keys
        // as they will be once it has.
        ddl.extend(integrity_sql::upgrade_schema(schema, &col, dry, dry));
    }
    for &oid in &tables {
        ddl.extend(protect_oid(oid, &col, p.protect_options(), dry, None));
    }
    for (&oid, n) in tables.iter().zip(shared) {
        crate::protect::notice_shared_rows(oid, n);
    }
    SetOfIterator::new(ddl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_in_order() {
        assert_eq!(Phase::parse("prepare"), Some(Phase::Prepare));
        assert_eq!(Phase::parse("enforce"), Some(Phase::Enforce));
        assert_eq!(Phase::parse("Enforce"), None);
        assert!(!Phase::Prepare.needs_clean_data());
        assert!(Phase::Tighten.needs_clean_data());
        let o = Phase::Prepare.protect_options();
        assert_eq!((o.mode, o.force), (Mode::Permissive, false));
        let o = Phase::Tighten.protect_options();
        assert_eq!((o.mode, o.force), (Mode::Strict, false));
        let o = Phase::Enforce.protect_options();
        assert_eq!((o.mode, o.force), (Mode::Strict, true));
    }

    #[test]
    fn blockers_are_listed_one_per_line_sorted() {
        let d = blocker_detail(vec!["public.b: 2".into(), "public.a: 1".into()]);
        assert_eq!(d, "public.a: 1\npublic.b: 2");
    }
}
