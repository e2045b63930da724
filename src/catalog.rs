//! Catalog look-ups shared by the modules (run through `privileged::pinned`).

use crate::error::{spi, Code, Failure};
use crate::privileged::pinned;
use pgrx::prelude::*;

/// A relation as the generators need it.
pub struct Relation {
    /// Schema-qualified, quoted: for DDL.
    pub name: String,
    /// The bare name: for messages (`relation "ServiceRequest"`).
    pub display: String,
    pub relkind: u8,
    pub is_partition: bool,
    pub rls_enabled: bool,
    pub rls_forced: bool,
}

pub fn relation(oid: pg_sys::Oid) -> Relation {
    let row = crate::privileged::class_row(oid)
        .unwrap_or_else(|| crate::error::internal("pg_class row of a known relation"));
    Relation {
        name: row.name,
        display: row.relname,
        relkind: row.relkind,
        is_partition: row.is_partition,
        rls_enabled: row.rls_enabled,
        rls_forced: row.rls_forced,
    }
}

/// 42809 unless `r` is a table or partitioned table.
pub fn require_table(r: &Relation) {
    let what = match r.relkind {
        b'r' | b'p' => return,
        b'v' => "a view",
        b'm' => "a materialized view",
        b'f' => "a foreign table",
        b'S' => "a sequence",
        b'i' | b'I' => "an index",
        _ => "not a table",
    };
    Failure::new(
        Code::ERRCODE_WRONG_OBJECT_TYPE,
        format!("\"{}\" is {what}", r.display),
    )
    .detail("Only tables and partitioned tables can be protected.")
    .raise();
}

/// SQL: the name of the type the tenant rules and the column default cast
/// tenant ids to, for the column `a` (a `pg_attribute` row): the column's
/// type, or for a domain the built-in or user-defined type at the bottom of
/// it, always **without a type modifier**.
///
/// * A modifier would make the cast cut or round the tenant id: an explicit
///   cast to `varchar(8)` truncates, so a tenant `acme-corporation` would
///   read and write the rows of `acme-cor`; `numeric(6,0)` rounds `41.6` to
///   `42`. Without it the comparison is exact (no row matches a longer id),
///   and the default's value is checked against the modifier when it is
///   stored (an error for a too long id; a rounded one then fails the
///   write rule).
/// * A domain's checks (and its base type's modifier) would run for every
///   reader, as part of the policy: the values stored already passed them,
///   so comparing in the base type matches the same rows. Writers still run
///   the checks: the default is assigned to the domain column.
/// * The modifier is given as -1, not NULL: `format_type(bpchar, NULL)` is
///   `character`, which the parser reads as `character(1)` (a cast to it
///   cuts `bob` to `b`, the rows of tenant `b`); with -1 it is `bpchar`,
///   and `bit` is `"bit"` (not `bit(1)`).
pub const TENANT_CAST_TYPE: &str = "pg_catalog.format_type(\
      (WITH RECURSIVE b(t, n) AS (\
          SELECT a.atttypid, 0 \
          UNION ALL \
          SELECT y.typbasetype, b.n OPERATOR(pg_catalog.+) 1 \
            FROM pg_catalog.pg_type y JOIN b ON y.oid OPERATOR(pg_catalog.=) b.t \
           WHERE y.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog.\"char\" AND b.n OPERATOR(pg_catalog.<) 100) \
       SELECT b.t FROM b ORDER BY b.n DESC LIMIT 1), -1)";

/// SQL: whether the column `a` is of a domain (its rules then cast the
/// column to [`TENANT_CAST_TYPE`] too: PostgreSQL finds no `=` between a
/// domain over an enum and that enum).
pub const TENANT_IS_DOMAIN: &str =
    "(SELECT y.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog.\"char\" \
       FROM pg_catalog.pg_type y WHERE y.oid OPERATOR(pg_catalog.=) a.atttypid)";

/// `(type, is a domain, default expression)` of the tenant column; 42703
/// when missing. The type is [`TENANT_CAST_TYPE`]'s.
pub fn column(oid: pg_sys::Oid, r: &Relation, col: &str) -> (String, bool, Option<String>) {
    column_if_any(oid, col).unwrap_or_else(|| {
        Failure::new(
            Code::ERRCODE_UNDEFINED_COLUMN,
            format!("column \"{col}\" of relation \"{}\" does not exist", r.display),
        )
        .hint("Name the tenant column with tenant_column => '...', or set tenant_guard.tenant_column.")
        .raise()
    })
}

/// [`column`], or `None` when the table has no such column (caller's
/// rights, pinned).
pub fn column_if_any(oid: pg_sys::Oid, col: &str) -> Option<(String, bool, Option<String>)> {
    pinned(|| {
        Spi::connect(|c| {
            let rows = spi(c.select(
            &format!("SELECT {TENANT_CAST_TYPE}, pg_catalog.pg_get_expr(d.adbin, d.adrelid), {TENANT_IS_DOMAIN} \
               FROM pg_catalog.pg_attribute a \
               LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) a.attrelid \
                                                AND d.adnum OPERATOR(pg_catalog.=) a.attnum \
              WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name \
                AND a.attnum OPERATOR(pg_catalog.>) 0::pg_catalog.int2 AND NOT a.attisdropped"),
            None,
            &[oid.into(), col.into()],
        ));
            rows.into_iter().next().map(|row| {
                (
                    crate::error::present(row.get::<String>(1), "format_type of the tenant column"),
                    spi(row.get::<bool>(3)).unwrap_or(false),
                    spi(row.get::<String>(2)),
                )
            })
        })
    })
}

/// 3F000 unless the schema exists.
pub fn require_schema(schema: &str) {
    let found = pinned(|| {
        crate::error::one::<bool>(
            "SELECT true FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
            &[schema.into()],
        )
    });
    if found.is_none() {
        Failure::new(
            Code::ERRCODE_INVALID_SCHEMA_NAME,
            format!("schema \"{schema}\" does not exist"),
        )
        .raise();
    }
}

/// `ARRAY(...)` (a `text[]`) of the names of relation `$rel`'s columns
/// numbered by `$attnums` (an `int2[]` or `int2vector` such as `conkey`,
/// `confkey` or `indkey`), in that order; expression columns (number 0)
/// are left out. The one definition of this catalog look-up for the Rust
/// side (constraints and indexes in `integrity_sql`, which the audits
/// reuse); `$rel` and `$attnums` are SQL expressions over the caller's
/// range table, as literals, so the result is a `&'static str`.
/// (`sql/audit.sql`'s `tenant_blind_foreign_keys` has the SQL side's one.)
macro_rules! column_names {
    ($rel:literal, $attnums:literal) => {
        concat!(
            "ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.unnest(",
            $attnums,
            ") WITH ORDINALITY k(n, o) \
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) ",
            $rel,
            " AND a.attnum OPERATOR(pg_catalog.=) k.n ORDER BY k.o)"
        )
    };
}
pub(crate) use column_names;
