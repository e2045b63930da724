//! `protect`, `unprotect` and `protect_schema`: read the catalog into a
//! [`TableState`], render the DDL with `policy`, run it as the caller, and
//! keep `tenant_guard.protected` (the registry `pg_dump` keeps) up to date.
//!
//! The DDL runs with the caller's rights: only a table's owner (or a
//! superuser) can protect or unprotect it. The registry is written with the
//! extension owner's rights, so application roles cannot edit it.

use crate::catalog::{as_owner, column, relation, require_table, Relation};
use crate::error::{invalid_parameter, one, spi};
use crate::gucs;
use crate::policy::{self, Before, Mode, Options, TableState};
use pgrx::iter::SetOfIterator;
use pgrx::prelude::*;

/// The tenant column: the argument, or the `tenant_guard.tenant_column` setting.
pub fn tenant_column(arg: Option<&str>) -> String {
    arg.map(str::to_owned)
        .or_else(|| gucs::text(&gucs::TENANT_COLUMN))
        .unwrap_or_else(|| "tenant_id".into())
}

/// The options of protect/protect_schema (NULL means the default).
fn options(mode: Option<&str>, force: Option<bool>) -> Options {
    Options {
        mode: parse_mode(mode),
        force: force.unwrap_or(true),
    }
}

fn parse_mode(mode: Option<&str>) -> Mode {
    let m = mode.unwrap_or("strict");
    Mode::parse(m).unwrap_or_else(|| {
        invalid_parameter(format!("unknown mode \"{m}\""))
            .hint("Use 'strict' or 'permissive'.")
            .raise()
    })
}

fn names(sql: &str, oid: pg_sys::Oid) -> Vec<String> {
    one::<Vec<String>>(sql, &[oid.into()]).unwrap_or_default()
}

/// What `tenant_guard.protected` says about a table.
struct Recorded {
    column: String,
    opts: Options,
    before: Before,
}

fn recorded(oid: pg_sys::Oid) -> Option<Recorded> {
    Spi::connect(|c| {
        let rows = spi(c.select(
            "SELECT tenant_column::text, mode, force, rls_was_enabled, rls_was_forced, previous_default \
               FROM tenant_guard.protected WHERE relid = $1",
            None,
            &[oid.into()],
        ));
        rows.into_iter().next().map(|row| Recorded {
            column: spi(row.get(1)).unwrap_or_default(),
            opts: Options {
                mode: Mode::parse(&spi(row.get::<String>(2)).unwrap_or_default())
                    .unwrap_or(Mode::Strict),
                force: spi(row.get(3)).unwrap_or(true),
            },
            before: Before {
                rls_was_enabled: spi(row.get(4)).unwrap_or(false),
                rls_was_forced: spi(row.get(5)).unwrap_or(false),
                previous_default: spi(row.get(6)),
            },
        })
    })
}

fn state(
    oid: pg_sys::Oid,
    r: &Relation,
    col: &str,
    col_type: String,
    default: &Option<String>,
) -> TableState {
    TableState {
        name: r.name.clone(),
        column: col.to_owned(),
        col_type,
        is_partition: r.is_partition,
        partitioned: r.relkind == b'p',
        rls_enabled: r.rls_enabled,
        rls_forced: r.rls_forced,
        policies: names(
            "SELECT pg_catalog.array_agg(polname::text) FROM pg_catalog.pg_policy \
              WHERE polrelid = $1 AND polname LIKE 'tenant\\_guard\\_%'",
            oid,
        ),
        triggers: names(
            "SELECT pg_catalog.array_agg(tgname::text) FROM pg_catalog.pg_trigger \
              WHERE tgrelid = $1 AND tgname LIKE 'tenant\\_guard\\_%' AND tgparentid = 0 AND NOT tgisinternal",
            oid,
        ),
        default_is_ours: default.as_deref().is_some_and(|d| d.contains("tenant_guard.tenant_id()")),
        recorded: None,
    }
}

fn direct_partitions(oid: pg_sys::Oid) -> Vec<pg_sys::Oid> {
    Spi::connect(|c| {
        spi(c.select(
            "SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid \
              WHERE i.inhparent = $1 AND c.relispartition ORDER BY c.relname",
            None,
            &[oid.into()],
        ))
        .filter_map(|row| spi(row.get::<pg_sys::Oid>(1)))
        .collect()
    })
}

thread_local! {
    static BUSY: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Marks this backend as running protect's own DDL, so the DDL guard does
/// not react to it (protect handles the partitions itself).
struct Busy;
impl Busy {
    fn enter() -> Busy {
        BUSY.with(|b| b.set(b.get() + 1));
        Busy
    }
}
impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.with(|b| b.set(b.get().saturating_sub(1)));
    }
}

/// Whether protect or unprotect is running DDL in this backend (for the
/// DDL event trigger).
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn in_protect() -> bool {
    BUSY.with(|b| b.get() > 0)
}

fn run(ddl: &[String]) {
    for stmt in ddl {
        spi(Spi::run(stmt));
    }
}

/// Protects one table and, recursively, its partitions. Returns the DDL.
pub fn protect_oid(
    oid: pg_sys::Oid,
    col: &str,
    opts: Options,
    dry_run: bool,
    parent: Option<pg_sys::Oid>,
) -> Vec<String> {
    let r = relation(oid);
    require_table(&r);
    let (col_type, default) = column(oid, &r, col);
    let rec = recorded(oid);
    // A partition protected on its own (by the DDL guard) still records the
    // protected parent it belongs to.
    let parent = parent.or_else(|| {
        r.is_partition
            .then(|| {
                one::<pg_sys::Oid>(
                    "SELECT p.relid::oid FROM pg_catalog.pg_inherits i \
                       JOIN tenant_guard.protected p ON p.relid::oid = i.inhparent \
                      WHERE i.inhrelid = $1",
                    &[oid.into()],
                )
            })
            .flatten()
    });
    if let Some(rec) = &rec {
        if rec.column != col {
            invalid_parameter(format!(
                "\"{}\" is protected on column \"{}\", not \"{col}\"",
                r.display, rec.column
            ))
            .hint("Run tenant_guard.unprotect first to change the tenant column.")
            .raise();
        }
    }
    let mut st = state(oid, &r, col, col_type, &default);
    st.recorded = rec.as_ref().map(|x| x.opts);
    let mut ddl = policy::render_protect(&st, opts);
    if !dry_run {
        // Recorded first: the DDL below fires the DDL event trigger, which
        // must see this table as protected already.
        let previous_default = if st.default_is_ours { None } else { default };
        as_owner(|| {
            spi(Spi::run_with_args(
                "INSERT INTO tenant_guard.protected AS p \
                   (relid, parent, tenant_column, mode, force, rls_was_enabled, rls_was_forced, previous_default) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (relid) DO UPDATE SET mode = excluded.mode, force = excluded.force, \
                   parent = excluded.parent",
                &[
                    oid.into(),
                    parent.into(),
                    col.into(),
                    opts.mode.as_str().into(),
                    opts.force.into(),
                    r.rls_enabled.into(),
                    r.rls_forced.into(),
                    previous_default.into(),
                ],
            ))
        });
        let _busy = Busy::enter();
        run(&ddl);
    }
    if r.relkind == b'p' {
        for child in direct_partitions(oid) {
            ddl.extend(protect_oid(child, col, opts, dry_run, Some(oid)));
        }
    }
    ddl
}

/// Enables (and forces) row-level security on a table and installs the
/// tenant policies, default and triggers; partitions too. Idempotent:
/// running it again with the same options changes nothing, with other
/// options converges. Returns the DDL run (or, with `dry_run`, that would
/// run).
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn protect(
    tbl: pgrx::PgRelation,
    tenant_column: default!(Option<&str>, "NULL"),
    mode: default!(Option<&str>, "'strict'"),
    force: default!(Option<bool>, true),
    dry_run: default!(Option<bool>, false),
) -> SetOfIterator<'static, String> {
    let opts = options(mode, force);
    let col = self::tenant_column(tenant_column);
    // Close the relation: ALTER TABLE refuses a table this session holds open.
    let oid = tbl.oid();
    drop(tbl);
    SetOfIterator::new(protect_oid(oid, &col, opts, dry_run.unwrap_or(false), None))
}

/// The tables of `schema` (not partitions) that have the column `col`, by
/// name; 3F000 when the schema does not exist.
pub fn tables_with_column(schema: &str, col: &str) -> Vec<pg_sys::Oid> {
    crate::catalog::require_schema(schema);
    Spi::connect(|c| {
        spi(c.select(
            "SELECT c.oid FROM pg_catalog.pg_class c \
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid \
                             AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped) \
              ORDER BY c.relname",
            None,
            &[schema.into(), col.into()],
        ))
        .filter_map(|row| spi(row.get::<pg_sys::Oid>(1)))
        .collect()
    })
}

/// Protects every table of a schema that has the tenant column (partitions
/// through their parent). Returns the DDL.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn protect_schema(
    schema: &str,
    tenant_column: default!(Option<&str>, "NULL"),
    mode: default!(Option<&str>, "'strict'"),
    force: default!(Option<bool>, true),
    dry_run: default!(Option<bool>, false),
) -> SetOfIterator<'static, String> {
    let opts = options(mode, force);
    let col = self::tenant_column(tenant_column);
    let tables = tables_with_column(schema, &col);
    let dry = dry_run.unwrap_or(false);
    let ddl: Vec<String> = tables
        .into_iter()
        .flat_map(|oid| protect_oid(oid, &col, opts, dry, None))
        .collect();
    SetOfIterator::new(ddl)
}

/// Removes exactly what `protect` added (policies, triggers, default, and
/// row-level security if protect turned it on), from the table and the
/// partitions protected with it. Returns the DDL.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn unprotect(
    tbl: pgrx::PgRelation,
    dry_run: default!(Option<bool>, false),
) -> SetOfIterator<'static, String> {
    let dry = dry_run.unwrap_or(false);
    let root = tbl.oid();
    let display = tbl.name().to_owned();
    drop(tbl);
    let tables: Vec<pg_sys::Oid> = Spi::connect(|c| {
        spi(c.select(
            "SELECT p.relid::oid FROM tenant_guard.protected p \
              WHERE p.relid::oid IN (SELECT relid FROM pg_catalog.pg_partition_tree($1)) \
                 OR p.relid::oid = $1 \
              ORDER BY (p.relid::oid = $1) DESC, p.relid::oid",
            None,
            &[root.into()],
        ))
        .filter_map(|row| spi(row.get::<pg_sys::Oid>(1)))
        .collect()
    });
    if tables.is_empty() {
        notice!("\"{display}\" is not protected by tenant_guard");
        return SetOfIterator::new(Vec::new());
    }
    let mut ddl = Vec::new();
    for oid in tables {
        let r = relation(oid);
        let Some(rec) = recorded(oid) else { continue };
        let (col_type, default) = column(oid, &r, &rec.column);
        let st = state(oid, &r, &rec.column, col_type, &default);
        let mut mine = policy::render_unprotect(&st, &rec.before);
        if !dry {
            let _busy = Busy::enter();
            run(&mine);
            as_owner(|| {
                spi(Spi::run_with_args(
                    "DELETE FROM tenant_guard.protected WHERE relid = $1",
                    &[oid.into()],
                ))
            });
        }
        ddl.append(&mut mine);
    }
    SetOfIterator::new(ddl)
}
