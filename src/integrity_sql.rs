//! `add_tenant_fk`, `upgrade_foreign_keys`, `backfill_tenant`,
//! `enforce_not_null` and `scope_unique`: catalog reads and execution around
//! the pure renderers in `integrity`.
//!
//! All of them run their DDL with the caller's rights (the table owner),
//! are all-or-nothing (one transaction: an error undoes every step), and
//! never modify user rows except the tenant column in `backfill_tenant`.
//! Counting violations and NULLs runs with the extension owner's rights so
//! that row-level security cannot hide dirty rows from the check.

use crate::catalog::{as_owner, column, relation, require_table, Relation};
use crate::error::{invalid_parameter, one, spi, Code, Failure};
use crate::integrity::{self, FkSpec};
use crate::protect::tenant_column;
use crate::quote::ident;
use pgrx::iter::SetOfIterator;
use pgrx::prelude::*;

type Oid = pg_sys::Oid;

fn names(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> Vec<Vec<String>> {
    Spi::connect(|c| {
        spi(c.select(sql, None, args))
            .filter_map(|row| spi(row.get::<Vec<String>>(1)))
            .collect()
    })
}

fn not_null(oid: Oid, col: &str) -> bool {
    one::<bool>(
        "SELECT attnotnull FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attname = $2",
        &[oid.into(), col.into()],
    )
    .unwrap_or(false)
}

fn relname(oid: Oid) -> String {
    one::<String>(
        "SELECT relname::text FROM pg_catalog.pg_class WHERE oid = $1",
        &[oid.into()],
    )
    .unwrap_or_default()
}

/// Column lists of the table's unique, non-partial, plain-column indexes.
fn unique_keys(oid: Oid) -> Vec<Vec<String>> {
    names(
        "SELECT ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY k(n, o) \
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o) \
           FROM pg_catalog.pg_index i \
          WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL",
        &[oid.into()],
    )
}

/// Column lists of all the table's indexes (for "is there an index led by").
fn index_keys(oid: Oid) -> Vec<Vec<String>> {
    names(
        "SELECT ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY k(n, o) \
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o) \
           FROM pg_catalog.pg_index i WHERE i.indrelid = $1 AND i.indpred IS NULL",
        &[oid.into()],
    )
}

fn primary_key(oid: Oid) -> Vec<String> {
    names(
        "SELECT ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY k(n, o) \
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o) \
           FROM pg_catalog.pg_constraint c WHERE c.conrelid = $1 AND c.contype = 'p'",
        &[oid.into()],
    )
    .into_iter()
    .next()
    .unwrap_or_default()
}

/// A foreign key as the catalog describes it.
#[derive(Debug, Clone)]
struct FkRow {
    name: String,
    child: Oid,
    parent: Oid,
    cols: Vec<String>,
    pcols: Vec<String>,
    on_update: char,
    on_delete: char,
    deferrable: bool,
    deferred: bool,
    validated: bool,
    index: Oid,
}

const FK_SELECT: &str = "SELECT c.conname::text, c.conrelid, c.confrelid, \
      ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY k(n, o) \
              JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o), \
      ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(c.confkey) WITH ORDINALITY k(n, o) \
              JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o), \
      c.confupdtype::text, c.confdeltype::text, c.condeferrable, c.condeferred, c.convalidated, c.conindid, \
      c.contype::text \
    FROM pg_catalog.pg_constraint c ";

fn fk_rows(filter: &str, args: &[pgrx::datum::DatumWithOid]) -> Vec<(FkRow, char)> {
    Spi::connect(|c| {
        spi(c.select(&format!("{FK_SELECT} {filter}"), None, args))
            .map(|row| {
                let ch = |i: usize| {
                    spi(row.get::<String>(i))
                        .and_then(|s| s.chars().next())
                        .unwrap_or('a')
                };
                (
                    FkRow {
                        name: spi(row.get(1)).unwrap_or_default(),
                        child: spi(row.get(2)).unwrap_or(Oid::INVALID),
                        parent: spi(row.get(3)).unwrap_or(Oid::INVALID),
                        cols: spi(row.get(4)).unwrap_or_default(),
                        pcols: spi(row.get(5)).unwrap_or_default(),
                        on_update: ch(6),
                        on_delete: ch(7),
                        deferrable: spi(row.get(8)).unwrap_or(false),
                        deferred: spi(row.get(9)).unwrap_or(false),
                        validated: spi(row.get(10)).unwrap_or(true),
                        index: spi(row.get(11)).unwrap_or(Oid::INVALID),
                    },
                    ch(12),
                )
            })
            .collect()
    })
}

fn run(ddl: &[String]) {
    for s in ddl {
        spi(Spi::run(s));
    }
}

fn wrong_type(msg: String) -> Failure {
    Failure::new(Code::ERRCODE_WRONG_OBJECT_TYPE, msg)
}

/// Options carried over from an existing key (or the defaults).
#[derive(Clone, Copy)]
struct Actions {
    on_update: char,
    on_delete: char,
    deferrable: bool,
    deferred: bool,
}

const DEFAULT_ACTIONS: Actions = Actions {
    on_update: 'a',
    on_delete: 'a',
    deferrable: false,
    deferred: false,
};

/// Adds (or completes) a composite tenant key. Returns the DDL and whether
/// the key ends up validated.
#[allow(clippy::too_many_arguments)]
fn add_fk_core(
    child: Oid,
    cols: &[String],
    parent: Oid,
    pcols: Option<Vec<String>>,
    tenant: &str,
    actions: Actions,
    name: Option<String>,
    validate: bool,
    dry: bool,
    assume_not_null: bool,
) -> (Vec<String>, bool, String) {
    let rc = relation(child);
    let rp = relation(parent);
    require_table(&rc);
    require_table(&rp);
    column(child, &rc, tenant);
    // A NULL tenant would switch a MATCH SIMPLE key off for that row.
    if !assume_not_null && !not_null(child, tenant) {
        Failure::new(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("column \"{tenant}\" of \"{}\" allows NULL", rc.display),
        )
        .detail("A composite foreign key is not checked for rows whose tenant is NULL.")
        .hint("Run tenant_guard.enforce_not_null first (after tenant_guard.backfill_tenant).")
        .raise();
    }
    column(parent, &rp, tenant);
    for c in cols {
        column(child, &rc, c);
    }
    let pcols = pcols.unwrap_or_else(|| {
        let pk: Vec<String> = primary_key(parent)
            .into_iter()
            .filter(|c| c != tenant)
            .collect();
        if pk.is_empty() {
            Failure::new(
                Code::ERRCODE_INVALID_COLUMN_REFERENCE,
                format!("\"{}\" has no primary key to reference", rp.display),
            )
            .hint("Name the referenced columns with parent_columns => ARRAY['...'].")
            .raise()
        }
        pk
    });
    for c in &pcols {
        column(parent, &rp, c);
    }
    if cols.is_empty() || cols.len() != pcols.len() {
        Failure::new(
            Code::ERRCODE_INVALID_FOREIGN_KEY,
            format!(
                "{} referencing column(s) but {} referenced column(s)",
                cols.len(),
                pcols.len()
            ),
        )
        .raise();
    }
    if cols.iter().any(|c| c == tenant) || pcols.iter().any(|c| c == tenant) {
        invalid_parameter(format!(
            "list the key columns without the tenant column \"{tenant}\""
        ))
        .detail("The tenant column is added to both sides of the key.")
        .raise();
    }
    let mut all = vec![tenant.to_owned()];
    all.extend(cols.iter().cloned());
    let mut pall = vec![tenant.to_owned()];
    pall.extend(pcols.iter().cloned());
    let spec = FkSpec {
        name: name.unwrap_or_else(|| {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            integrity::object_name(&relname(child), &refs, "fkey")
        }),
        child: rc.name.clone(),
        parent: rp.name.clone(),
        tenant: tenant.to_owned(),
        cols: cols.to_vec(),
        pcols: pcols.clone(),
        on_update: actions.on_update,
        on_delete: actions.on_delete,
        deferrable: actions.deferrable,
        deferred: actions.deferred,
    };
    let mut ddl = Vec::new();
    let existing = fk_rows(
        "WHERE c.contype = 'f' AND c.conrelid = $1 AND c.confrelid = $2",
        &[child.into(), parent.into()],
    )
    .into_iter()
    .map(|(f, _)| f)
    .find(|f| f.cols == all && f.pcols == pall);
    let fk_name = match &existing {
        Some(f) if f.validated || !validate => return (ddl, f.validated, f.name.clone()),
        Some(f) => f.name.clone(),
        None => {
            let mut set = pall.clone();
            set.sort();
            let has_unique = unique_keys(parent).into_iter().any(|mut k| {
                k.sort();
                k == set
            });
            if !has_unique {
                let refs: Vec<&str> = pall.iter().map(String::as_str).collect();
                ddl.push(integrity::render_unique(
                    &rp.name,
                    &integrity::object_name(&relname(parent), &refs, "key"),
                    tenant,
                    &pcols,
                    false,
                    None,
                ));
            }
            let has_index = index_keys(child)
                .into_iter()
                .any(|k| k.len() >= all.len() && k[..all.len()] == all[..]);
            if !has_index {
                let refs: Vec<&str> = all.iter().map(String::as_str).collect();
                ddl.push(format!(
                    "CREATE INDEX {} ON {} ({})",
                    ident(&integrity::object_name(&relname(child), &refs, "idx")),
                    rc.name,
                    all.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
                ));
            }
            ddl.push(integrity::render_fk(&spec));
            spec.name.clone()
        }
    };
    if !dry {
        run(&ddl);
    }
    if !validate {
        return (ddl, false, fk_name);
    }
    let (count_sql, sample_sql) = integrity::violation_queries(&spec);
    let bad = as_owner(|| one::<i64>(&count_sql, &[])).unwrap_or(0);
    if bad > 0 {
        let sample = as_owner(|| one::<String>(&sample_sql, &[])).unwrap_or_default();
        ereport!(
            NOTICE,
            PgSqlErrorCode::ERRCODE_FOREIGN_KEY_VIOLATION,
            format!(
                "{bad} row(s) of {} violate {}; the key stays NOT VALID",
                rc.display, fk_name
            ),
            format!(
                "Keys ({}) without a parent of the same tenant: {sample}",
                all.join(", ")
            )
        );
        return (ddl, false, fk_name);
    }
    let v = format!(
        "ALTER TABLE {} VALIDATE CONSTRAINT {}",
        rc.name,
        ident(&fk_name)
    );
    if !dry {
        spi(Spi::run(&v));
    }
    ddl.push(v);
    (ddl, true, fk_name)
}

/// Adds a composite foreign key `(tenant, child_columns) REFERENCES parent
/// (tenant, parent_columns)`, creating the parent's unique key and the
/// child's index when missing. Validated unless existing rows violate it
/// (then it stays NOT VALID, enforced for new rows, and a NOTICE lists up to
/// 10 offending keys). Returns the DDL.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn add_tenant_fk(
    child: pgrx::PgRelation,
    child_columns: Vec<String>,
    parent: pgrx::PgRelation,
    parent_columns: default!(Option<Vec<String>>, "NULL"),
    tenant_column: default!(Option<&str>, "NULL"),
    validate: default!(Option<bool>, true),
    dry_run: default!(Option<bool>, false),
) -> SetOfIterator<'static, String> {
    let (c, p) = (child.oid(), parent.oid());
    drop(child);
    drop(parent);
    let tenant = self::tenant_column(tenant_column);
    let (ddl, _, _) = add_fk_core(
        c,
        &child_columns,
        p,
        parent_columns,
        &tenant,
        DEFAULT_ACTIONS,
        None,
        validate.unwrap_or(true),
        dry_run.unwrap_or(false),
        false,
    );
    SetOfIterator::new(ddl)
}

fn has_column(oid: Oid, col: &str) -> bool {
    one::<bool>(
        "SELECT true FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped",
        &[oid.into(), col.into()],
    )
    .is_some()
}

/// Replaces one single-column (tenant-blind) key by the composite one under
/// the same name. Keeps the old key when the new one cannot be validated.
fn upgrade_one(f: &FkRow, tenant: &str, dry: bool, assume_not_null: bool) -> Vec<String> {
    if !assume_not_null && !not_null(f.child, tenant) {
        notice!(
            "tenant_guard: left \"{}\" on {} as it is: its tenant column \"{tenant}\" allows NULL (run enforce_not_null first)",
            f.name,
            relation(f.child).display
        );
        return Vec::new();
    }
    let tmp = integrity::truncate_name(&format!("{}_tenant", f.name));
    let actions = Actions {
        on_update: f.on_update,
        on_delete: f.on_delete,
        deferrable: f.deferrable,
        deferred: f.deferred,
    };
    let (mut ddl, ok, name) = add_fk_core(
        f.child,
        &f.cols,
        f.parent,
        Some(f.pcols.clone()),
        tenant,
        actions,
        Some(tmp.clone()),
        true,
        dry,
        assume_not_null,
    );
    let rc = relation(f.child);
    if name != tmp && ok {
        // An equivalent composite key exists already: the old one just goes.
        let drop_old = format!("ALTER TABLE {} DROP CONSTRAINT {}", rc.name, ident(&f.name));
        if !dry {
            run(std::slice::from_ref(&drop_old));
        }
        ddl.push(drop_old);
        return ddl;
    }
    if !ok {
        notice!(
            "tenant_guard: kept \"{}\" on {} beside the new NOT VALID key \"{tmp}\" until the data is fixed",
            f.name,
            rc.display
        );
        return ddl;
    }
    let steps = [
        format!("ALTER TABLE {} DROP CONSTRAINT {}", rc.name, ident(&f.name)),
        format!(
            "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
            rc.name,
            ident(&tmp),
            ident(&f.name)
        ),
    ];
    if !dry {
        run(&steps);
    }
    ddl.extend(steps);
    ddl
}

/// Replaces every foreign key between two tenant tables of `schema` that
/// leaves the tenant column out by the composite key, keeping its name,
/// actions and deferrability. Returns the DDL.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn upgrade_foreign_keys(
    schema: default!(&str, "'public'"),
    tenant_column: default!(Option<&str>, "NULL"),
    dry_run: default!(Option<bool>, false),
) -> SetOfIterator<'static, String> {
    let tenant = self::tenant_column(tenant_column);
    SetOfIterator::new(upgrade_schema(
        schema,
        &tenant,
        dry_run.unwrap_or(false),
        false,
    ))
}

/// `upgrade_foreign_keys` for `rollout`. `assume_not_null`: render as if the
/// tenant columns were NOT NULL already (a dry run of `enforce`, whose
/// NOT NULL steps come first when it runs for real).
pub fn upgrade_schema(schema: &str, tenant: &str, dry: bool, assume_not_null: bool) -> Vec<String> {
    crate::catalog::require_schema(schema);
    let fks: Vec<FkRow> = fk_rows(
        "JOIN pg_catalog.pg_class r ON r.oid = c.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace \
         WHERE c.contype = 'f' AND n.nspname = $1 AND c.conparentid = 0 ORDER BY r.relname, c.conname",
        &[schema.into()],
    )
    .into_iter()
    .map(|(f, _)| f)
    .filter(|f| has_column(f.child, tenant) && has_column(f.parent, tenant) && !f.cols.iter().any(|c| c == tenant))
    .collect();
    let ddl: Vec<String> = fks
        .iter()
        .flat_map(|f| upgrade_one(f, tenant, dry, assume_not_null))
        .collect();
    ddl
}

fn find_constraint(table: Oid, r: &Relation, name: &str) -> (FkRow, char) {
    fk_rows(
        "WHERE c.conrelid = $1 AND c.conname = $2",
        &[table.into(), name.into()],
    )
    .into_iter()
    .next()
    .unwrap_or_else(|| {
        Failure::new(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!(
                "constraint \"{name}\" of relation \"{}\" does not exist",
                r.display
            ),
        )
        .raise()
    })
}

/// Fills NULL tenant ids of `child` from the parent row reached through the
/// foreign key `via_constraint`, about `batch_size` rows per statement, with
/// a progress NOTICE per batch. Returns the number of rows updated; rows
/// whose parent has no tenant stay NULL and are reported.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn backfill_tenant(
    child: pgrx::PgRelation,
    via_constraint: &str,
    batch_size: default!(Option<i32>, 10000),
    tenant_column: default!(Option<&str>, "NULL"),
) -> i64 {
    let oid = child.oid();
    drop(child);
    let batch = batch_size.unwrap_or(10000);
    if batch <= 0 {
        invalid_parameter(format!("batch_size must be positive, not {batch}")).raise();
    }
    let tenant = self::tenant_column(tenant_column);
    let rc = relation(oid);
    require_table(&rc);
    let (fk, kind) = find_constraint(oid, &rc, via_constraint);
    if kind != 'f' {
        wrong_type(format!(
            "constraint \"{via_constraint}\" is not a foreign key"
        ))
        .raise();
    }
    let rp = relation(fk.parent);
    column(oid, &rc, &tenant);
    column(fk.parent, &rp, &tenant);
    // A composite key already carries the tenant: follow the other columns.
    let pairs: Vec<(String, String)> = fk
        .cols
        .iter()
        .cloned()
        .zip(fk.pcols.iter().cloned())
        .filter(|(c, _)| c != &tenant)
        .collect();
    let (cols, pcols): (Vec<String>, Vec<String>) = pairs.into_iter().unzip();
    let join = cols
        .iter()
        .zip(&pcols)
        .map(|(c, p)| format!("p.{} = c.{}", ident(p), ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let t = ident(&tenant);
    let todo = one::<i64>(
        &format!(
            "SELECT pg_catalog.count(*) FROM {} c JOIN {} p ON {join} WHERE c.{t} IS NULL AND p.{t} IS NOT NULL",
            rc.name, rp.name
        ),
        &[],
    )
    .unwrap_or(0);
    let sql = integrity::backfill_batch_sql(&rc.name, &rp.name, &tenant, &cols, &pcols);
    // Blocks to walk (the largest partition for a partitioned table) and
    // blocks per batch from the table's average rows per block.
    let (nblocks, per_block) = Spi::connect(|c| {
        let row = spi(c.select(
            "SELECT max(pg_catalog.pg_relation_size(t.relid) / pg_catalog.current_setting('block_size')::int8), \
                    max(CASE WHEN k.relpages > 0 AND k.reltuples > 0 THEN k.reltuples / k.relpages END)::float8 \
               FROM (SELECT $1::pg_catalog.regclass AS relid \
                     UNION SELECT relid FROM pg_catalog.pg_partition_tree($1)) t \
               JOIN pg_catalog.pg_class k ON k.oid = t.relid",
            Some(1),
            &[oid.into()],
        ))
        .first();
        (
            spi(row.get::<i64>(1)).unwrap_or(0),
            spi(row.get::<f64>(2)).unwrap_or(100.0).max(1.0),
        )
    });
    let step = ((f64::from(batch) / per_block).ceil() as i64).max(1);
    let mut done: i64 = 0;
    let mut n_batch = 0;
    let mut block: i64 = 0;
    while block < nblocks && done < todo {
        let (lo, hi) = (format!("({block},0)"), format!("({},0)", block + step));
        let n = Spi::connect_mut(|c| {
            spi(c.update(&sql, None, &[lo.as_str().into(), hi.as_str().into()])).len()
        }) as i64;
        block += step;
        if n == 0 {
            continue;
        }
        done += n;
        n_batch += 1;
        notice!(
            "backfill_tenant: batch {n_batch}: {n} rows, {done} done, {} remaining",
            (todo - done).max(0)
        );
    }
    let left = one::<i64>(
        &format!(
            "SELECT pg_catalog.count(*) FROM {} c WHERE c.{t} IS NULL",
            rc.name
        ),
        &[],
    )
    .unwrap_or(0);
    if left > 0 {
        notice!(
            "backfill_tenant: {left} row(s) of {} still have no tenant: their parent through \"{via_constraint}\" has none, or they have no parent",
            rc.display
        );
    }
    done
}

/// Makes the tenant column NOT NULL in lock-friendly steps. Refuses (55000)
/// while NULLs remain. Returns the DDL.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn enforce_not_null(
    tbl: pgrx::PgRelation,
    tenant_column: default!(Option<&str>, "NULL"),
    dry_run: default!(Option<bool>, false),
) -> SetOfIterator<'static, String> {
    let oid = tbl.oid();
    drop(tbl);
    let tenant = self::tenant_column(tenant_column);
    SetOfIterator::new(not_null_core(oid, &tenant, dry_run.unwrap_or(false)))
}

/// `enforce_not_null` for `rollout`.
pub fn not_null_core(oid: Oid, tenant: &str, dry: bool) -> Vec<String> {
    let tenant = tenant.to_owned();
    let r = relation(oid);
    require_table(&r);
    column(oid, &r, &tenant);
    if not_null(oid, &tenant) {
        return Vec::new();
    }
    let nulls = as_owner(|| {
        one::<i64>(
            &format!(
                "SELECT pg_catalog.count(*) FROM {} WHERE {} IS NULL",
                r.name,
                ident(&tenant)
            ),
            &[],
        )
    })
    .unwrap_or(0);
    if nulls > 0 {
        Failure::new(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "column \"{tenant}\" of \"{}\" still has NULL values",
                r.display
            ),
        )
        .detail(format!("{nulls} row(s) have no tenant."))
        .hint("Fill them first, e.g. with tenant_guard.backfill_tenant.")
        .raise();
    }
    let check = integrity::object_name(&relname(oid), &[&tenant], "not_null");
    let steps = integrity::not_null_steps(&r.name, &tenant, &check);
    if !dry {
        run(&steps);
    }
    steps
}

/// Rewrites a tenant-blind unique constraint or unique index as
/// `(tenant_column, ...)` under the same name, rebuilding the foreign keys
/// that depend on it as composite keys (or refusing, naming them, when a
/// referencing table has no tenant column). Returns the DDL.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn scope_unique(
    tbl: pgrx::PgRelation,
    constraint_name: &str,
    tenant_column: default!(Option<&str>, "NULL"),
    dry_run: default!(Option<bool>, false),
) -> SetOfIterator<'static, String> {
    let oid = tbl.oid();
    drop(tbl);
    let dry = dry_run.unwrap_or(false);
    let tenant = self::tenant_column(tenant_column);
    let r = relation(oid);
    require_table(&r);
    column(oid, &r, &tenant);
    // A constraint of that name, or else a unique index of that name.
    let con = fk_rows(
        "WHERE c.conrelid = $1 AND c.conname = $2",
        &[oid.into(), constraint_name.into()],
    )
    .into_iter()
    .next();
    let (index, is_constraint) = match &con {
        Some((_, 'u')) => (con.as_ref().map(|(f, _)| f.index).unwrap_or(Oid::INVALID), true),
        Some((_, 'p')) => wrong_type(format!("\"{constraint_name}\" is the primary key of \"{}\"", r.display))
            .hint("Primary keys stay as they are; add_tenant_fk creates the UNIQUE (tenant, key) a composite key needs.")
            .raise(),
        Some(_) => wrong_type(format!("constraint \"{constraint_name}\" is not a unique constraint")).raise(),
        None => {
            let idx = one::<Oid>(
                "SELECT i.indexrelid FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
                  WHERE i.indrelid = $1 AND c.relname = $2",
                &[oid.into(), constraint_name.into()],
            )
            .unwrap_or_else(|| {
                Failure::new(
                    Code::ERRCODE_UNDEFINED_OBJECT,
                    format!("no constraint or index \"{constraint_name}\" on \"{}\"", r.display),
                )
                .raise()
            });
            let unique = one::<bool>("SELECT indisunique FROM pg_catalog.pg_index WHERE indexrelid = $1", &[idx.into()]).unwrap_or(false);
            if !unique {
                wrong_type(format!("index \"{constraint_name}\" is not unique")).raise();
            }
            (idx, false)
        }
    };
    let (cols, has_exprs, predicate) = Spi::connect(|c| {
        let row = spi(c.select(
            "SELECT ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY k(n, o) \
                            JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o), \
                    i.indexprs IS NOT NULL, pg_catalog.pg_get_expr(i.indpred, i.indrelid) \
               FROM pg_catalog.pg_index i WHERE i.indexrelid = $1",
            Some(1),
            &[index.into()],
        ))
        .first();
        (
            spi(row.get::<Vec<String>>(1)).unwrap_or_default(),
            spi(row.get::<bool>(2)).unwrap_or(false),
            spi(row.get::<String>(3)),
        )
    });
    if has_exprs {
        Failure::new(
            Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("\"{constraint_name}\" has expression columns"),
        )
        .hint("Recreate it by hand with the tenant column first.")
        .raise();
    }
    if cols.contains(&tenant) {
        return SetOfIterator::new(Vec::new());
    }
    // Foreign keys that reference this key must move to the new one.
    let deps: Vec<FkRow> = fk_rows(
        "WHERE c.contype = 'f' AND c.conindid = $1 ORDER BY c.conname",
        &[index.into()],
    )
    .into_iter()
    .map(|(f, _)| f)
    .collect();
    let blind: Vec<String> = deps
        .iter()
        .filter(|f| !has_column(f.child, &tenant))
        .map(|f| format!("\"{}\" on {}", f.name, relation(f.child).display))
        .collect();
    if !blind.is_empty() {
        Failure::new(
            Code::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
            format!("foreign keys without a tenant column depend on \"{constraint_name}\""),
        )
        .detail(format!("Referencing: {}.", blind.join(", ")))
        .hint("Add the tenant column to the referencing tables first, or keep this constraint.")
        .raise();
    }
    let tmp = integrity::truncate_name(&format!("{constraint_name}_tenant"));
    let mut ddl = vec![integrity::render_unique(
        &r.name,
        &tmp,
        &tenant,
        &cols,
        !is_constraint,
        predicate.as_deref(),
    )];
    if !dry {
        run(&ddl);
    }
    for f in &deps {
        let rc = relation(f.child);
        let drop_old = format!("ALTER TABLE {} DROP CONSTRAINT {}", rc.name, ident(&f.name));
        if !dry {
            run(std::slice::from_ref(&drop_old));
        }
        ddl.push(drop_old);
        let actions = Actions {
            on_update: f.on_update,
            on_delete: f.on_delete,
            deferrable: f.deferrable,
            deferred: f.deferred,
        };
        let (more, ok, _) = add_fk_core(
            f.child,
            &f.cols,
            oid,
            Some(f.pcols.clone()),
            &tenant,
            actions,
            Some(f.name.clone()),
            true,
            dry,
            false,
        );
        if !ok && !dry {
            Failure::new(
                Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("rows of {} reference another tenant's row of {}", rc.display, r.display),
            )
            .detail(format!("The composite key replacing \"{}\" cannot be validated; nothing was changed.", f.name))
            .hint("See tenant_guard.cross_tenant_references, fix the rows, and run scope_unique again.")
            .raise();
        }
        ddl.extend(more);
    }
    let finish = if is_constraint {
        vec![
            format!(
                "ALTER TABLE {} DROP CONSTRAINT {}",
                r.name,
                ident(constraint_name)
            ),
            format!(
                "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                r.name,
                ident(&tmp),
                ident(constraint_name)
            ),
        ]
    } else {
        let schema_q = r.name.split('.').next().unwrap_or_default().to_owned();
        vec![
            format!("DROP INDEX {schema_q}.{}", ident(constraint_name)),
            format!(
                "ALTER INDEX {schema_q}.{} RENAME TO {}",
                ident(&tmp),
                ident(constraint_name)
            ),
        ]
    };
    if !dry {
        run(&finish);
    }
    ddl.extend(finish);
    SetOfIterator::new(ddl)
}
