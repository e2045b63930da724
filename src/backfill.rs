//! Backfills: fill NULL tenant ids of a child table from the parent row its
//! foreign key points at.
//!
//! * `backfill_batch` does one batch (a range of the child's blocks) and
//!   returns where the next starts; `CALL tenant_guard.backfill(...)`
//!   (PL/pgSQL, `sql/backfill.sql`) loops over it and COMMITs after every
//!   batch, retrying a batch that hit 40P01/55P03. A killed or cancelled
//!   run keeps its committed batches; running it again only touches rows
//!   whose tenant is still NULL, so it continues where it stopped.
//! * `backfill_tenant` (0.1.0) walks the whole table in one call, one
//!   transaction: every batch's row locks are held to the end.
//!
//! Cost: each batch reads its block range of the child (a TID range scan)
//! and finds the parent of each row with a NULL tenant through the
//! parent's unique key index (the foreign key's own index): hash and merge
//! joins are switched off for the batch statement, so a parent whose
//! statistics are stale (filled after its last ANALYZE) is never scanned
//! whole per batch. The cost depends on the child's size only.
//!
//! Whose rights: the caller needs UPDATE on the child and SELECT on the
//! parent, and row-level security must restrict it on neither (unless it
//! owns the table); the batches and counts run as the child's **owner**
//! (`privileged::as_table_owner`), which must own every partition of the
//! child (`require_owned_tree`) and may read a parent of another owner only
//! when that runs none of that owner's code (`require_safe_read`).

use crate::catalog::{column, relation, require_table, Relation};
use crate::error::{invalid_parameter, one, spi, Code, Failure};
use crate::integrity::{self, EQ};
use crate::integrity_sql::{
    caller_owns, find_constraint, require_owned_tree, require_owner_privilege, require_safe_read,
    wrong_type,
};
use crate::privileged::{self, as_table_owner, pinned};
use crate::protect::tenant_column;
use crate::quote::ident;
use pgrx::iter::TableIterator;
use pgrx::prelude::*;

type Oid = pg_sys::Oid;

/// A checked backfill: the child, its parent and the statements to run.
struct Backfill {
    child: Oid,
    rc: Relation,
    tenant: String,
    /// Child and parent key columns (without the tenant) and operators.
    cols: Vec<String>,
    pcols: Vec<String>,
    ops: Vec<String>,
    parent_name: String,
}

/// Resolves and checks a backfill of `child` through `via_constraint`
/// (see the module docs for the rights); raises on any failure.
fn prepare(oid: Oid, via_constraint: &str, tenant_column: Option<&str>) -> Backfill {
    let tenant = self::tenant_column(tenant_column);
    // The child and the parent are locked (in the modes the batches take)
    // before their names are read: the names stay theirs (a locked table
    // cannot be dropped and a look-alike put under its name; `relation`
    // keeps schemas from being renamed), for every statement built from
    // them.
    privileged::lock_then_name(oid, pg_sys::RowExclusiveLock as i32);
    let rc = relation(oid);
    require_table(&rc);
    let (fk, kind) = find_constraint(oid, &rc, via_constraint);
    if kind != 'f' {
        wrong_type(format!(
            "constraint \"{via_constraint}\" is not a foreign key"
        ))
        .raise();
    }
    privileged::lock_then_name(fk.parent, pg_sys::AccessShareLock as i32);
    let rp = relation(fk.parent);
    column(oid, &rc, &tenant);
    column(fk.parent, &rp, &tenant);
    privileged::require_privilege(oid, pg_sys::ACL_UPDATE, "UPDATE");
    privileged::require_privilege(fk.parent, pg_sys::ACL_SELECT, "SELECT");
    for rel in [oid, fk.parent] {
        // (The owner of a table whose row-level security is forced may fill
        // it: it could switch row-level security off anyway.)
        if privileged::rls_restricts_caller(rel) && !caller_owns(rel) {
            Failure::new(
                Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!("permission denied to backfill {}", privileged::qualified_name(rel)),
            )
            .detail("Row-level security restricts this role on the table; a backfill fills the rows of every tenant.")
            .hint("Run it as the table's owner, a superuser, or a role with BYPASSRLS.")
            .raise();
        }
    }
    require_owner_privilege(oid, fk.parent, pg_sys::ACL_SELECT, "SELECT", "the backfill");
    // A composite key already carries the tenant: follow the other columns.
    let triples: Vec<(String, String, String)> = fk
        .cols
        .iter()
        .cloned()
        .zip(fk.pcols.iter().cloned())
        .zip(
            fk.ops
                .iter()
                .cloned()
                .chain(std::iter::repeat(EQ.to_owned())),
        )
        .filter(|((c, _), _)| c != &tenant)
        .map(|((c, p), o)| (c, p, o))
        .collect();
    let cols: Vec<String> = triples.iter().map(|t| t.0.clone()).collect();
    let pcols: Vec<String> = triples.iter().map(|t| t.1.clone()).collect();
    let ops: Vec<String> = triples.iter().map(|t| t.2.clone()).collect();
    // The batches update the child (and its partitions) as its owner and
    // read the parent's key and tenant as that owner too.
    require_owned_tree(oid, "the backfill");
    let mut own_cols = cols.clone();
    own_cols.push(tenant.clone());
    privileged::require_trusted_columns(
        oid,
        &own_cols,
        privileged::table_owner(oid),
        "the backfill",
    );
    let mut read_cols = pcols.clone();
    read_cols.push(tenant.clone());
    require_safe_read(oid, fk.parent, &read_cols, &ops, "the backfill");
    Backfill {
        child: oid,
        rc,
        tenant,
        cols,
        pcols,
        ops,
        parent_name: rp.name,
    }
}

impl Backfill {
    fn join(&self) -> String {
        let c: Vec<&str> = self.cols.iter().map(String::as_str).collect();
        let p: Vec<&str> = self.pcols.iter().map(String::as_str).collect();
        integrity::key_join(&c, &p, &self.ops)
    }

    /// One batch for the committing driver: fill the rows with a NULL
    /// tenant stored in blocks [$1, $2) whose parent has a tenant, skipping
    /// rows another transaction has locked (they stay NULL for a later
    /// walk): the batch never waits for an application's row lock, so it
    /// cannot close a deadlock through one. `tableoid` with `ctid`: a
    /// partitioned child repeats ctids across partitions.
    fn batch_sql(&self) -> String {
        let t = ident(&self.tenant);
        format!(
            "WITH todo AS ( \
               SELECT c.tableoid AS rel, c.ctid AS row, p.{t} AS tenant \
                 FROM {child} c JOIN {parent} p ON {join} \
                WHERE c.ctid OPERATOR(pg_catalog.>=) $1::pg_catalog.tid AND c.ctid OPERATOR(pg_catalog.<) $2::pg_catalog.tid \
                  AND c.{t} IS NULL AND p.{t} IS NOT NULL \
                  FOR UPDATE OF c SKIP LOCKED) \
             UPDATE {child} c SET {t} = todo.tenant FROM todo \
              WHERE c.tableoid OPERATOR(pg_catalog.=) todo.rel AND c.ctid OPERATOR(pg_catalog.=) todo.row \
                AND c.{t} IS NULL",
            child = self.rc.name,
            parent = self.parent_name,
            join = self.join(),
        )
    }

    /// Rows of the child with a NULL tenant (as its owner).
    fn null_rows(&self) -> i64 {
        let t = ident(&self.tenant);
        as_table_owner(self.child, || {
            one::<i64>(
                &format!(
                    "SELECT pg_catalog.count(*) FROM {} c WHERE c.{t} IS NULL",
                    self.rc.name
                ),
                &[],
            )
        })
        .unwrap_or(0)
    }

    /// (rows with a NULL tenant, of which rows whose parent has a tenant:
    /// what another walk would fill), as the child's owner, the parent
    /// probed through its key per row.
    fn rows_left(&self) -> (i64, i64) {
        let t = ident(&self.tenant);
        as_table_owner(self.child, || {
            pin_plan();
            Spi::connect(|c| {
                let row = spi(c.select(
                    &format!(
                        "SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE EXISTS \
                                (SELECT FROM {parent} p WHERE {join} AND p.{t} IS NOT NULL)) \
                           FROM {child} c WHERE c.{t} IS NULL",
                        parent = self.parent_name,
                        join = self.join(),
                        child = self.rc.name
                    ),
                    Some(1),
                    &[],
                ))
                .first();
                (
                    spi(row.get::<i64>(1)).unwrap_or(0),
                    spi(row.get::<i64>(2)).unwrap_or(0),
                )
            })
        })
    }

    /// The NOTICE about rows no walk can fill.
    fn report_unfillable(&self, n: i64, via_constraint: &str, prefix: &str) {
        if n > 0 {
            notice!(
                "{prefix}: {n} row(s) of {} still have no tenant: their parent through \"{via_constraint}\" has none, or they have no parent",
                self.rc.display
            );
        }
    }
}

/// Within an owner scope (whose settings are rolled back on exit): plan
/// the parent look-up as a nested loop over its key index, whatever its
/// statistics say.
fn pin_plan() {
    spi(Spi::run(
        "SELECT pg_catalog.set_config('enable_hashjoin'::pg_catalog.text, 'off'::pg_catalog.text, true), \
                pg_catalog.set_config('enable_mergejoin'::pg_catalog.text, 'off'::pg_catalog.text, true)",
    ));
}

/// The child's size in blocks (the largest partition for a partitioned
/// table), its rows per block from the statistics (NULL if never
/// analyzed) and whether any part of it was never analyzed.
fn walk_size(oid: Oid) -> (i64, Option<f64>, bool) {
    pinned(|| {
        Spi::connect(|c| {
            let row = spi(c.select(
                "SELECT pg_catalog.max(pg_catalog.pg_relation_size(t.relid) OPERATOR(pg_catalog./) \
                                       pg_catalog.current_setting('block_size'::pg_catalog.text)::pg_catalog.int8), \
                        pg_catalog.max(CASE WHEN k.relpages OPERATOR(pg_catalog.>) 0 AND k.reltuples OPERATOR(pg_catalog.>) 0::pg_catalog.float4 \
                                            THEN k.reltuples::pg_catalog.float8 OPERATOR(pg_catalog./) k.relpages::pg_catalog.float8 END), \
                        pg_catalog.bool_or(k.reltuples OPERATOR(pg_catalog.<) 0::pg_catalog.float4 \
                                           AND k.relkind OPERATOR(pg_catalog.=) 'r'::pg_catalog.\"char\") \
                   FROM (SELECT $1::pg_catalog.regclass AS relid \
                         UNION ALL SELECT p.relid FROM pg_catalog.pg_partition_tree($1::pg_catalog.regclass) p \
                                    WHERE p.relid OPERATOR(pg_catalog.<>) $1::pg_catalog.regclass) t \
                   JOIN pg_catalog.pg_class k ON k.oid OPERATOR(pg_catalog.=) t.relid::pg_catalog.oid",
                Some(1),
                &[oid.into()],
            ))
            .first();
            (
                spi(row.get::<i64>(1)).unwrap_or(0),
                spi(row.get::<f64>(2)),
                spi(row.get::<bool>(3)).unwrap_or(false),
            )
        })
    })
}

/// Blocks per batch for `batch` rows.
fn blocks_per_batch(batch: i32, per_block: Option<f64>) -> i64 {
    let per_block = per_block.unwrap_or(100.0).max(1.0);
    ((f64::from(batch) / per_block).ceil() as i64).max(1)
}

fn check_batch_size(batch: i32) {
    if batch <= 0 {
        invalid_parameter(format!("batch_size must be positive, not {batch}")).raise();
    }
}

/// One batch of a backfill, for a driver that commits between calls (the
/// procedure `tenant_guard.backfill`, or a client loop): fills the NULL
/// tenant ids of `child` stored from block `from_block` on, from the parent
/// reached through the foreign key `via_constraint`, and returns
/// `next_block`, where the next call starts (NULL once the walk has reached
/// the end of the table). Blocks without a row to fill are passed over in
/// the same call, so every call but the last fills at least one row.
/// Rows another transaction has locked are skipped (a later walk fills
/// them); rows already filled are never touched again, so a walk that was
/// killed is simply started again from block 0.
///
/// `blocks`: the child's size in blocks (the largest partition's), for
/// progress. `null_rows`: on the first call of a walk (`from_block` 0),
/// the child's rows with a NULL tenant before the batch; NULL on the
/// others. On the last call (`next_block` NULL), `null_rows_left`: rows
/// with a NULL tenant after it, and `fillable_rows_left`: of those, rows
/// whose parent has a tenant (what another walk would fill: rows that were
/// locked, or added behind the walk); NULL on the others.
///
/// On the first call, a child that was never analyzed is analyzed first
/// (as its owner), to size the batches.
///
/// Rights: as `backfill_tenant` (the caller needs UPDATE on the child and
/// SELECT on the parent, row-level security restricting it on neither);
/// the batch and the counts run as the child's **owner**.
// The named result columns are the SQL signature: no type alias here.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn backfill_batch(
    child: pgrx::PgRelation,
    via_constraint: &str,
    from_block: default!(i64, 0),
    batch_size: default!(Option<i32>, 10000),
    tenant_column: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(rows_updated, i64),
        name!(next_block, Option<i64>),
        name!(blocks, i64),
        name!(null_rows, Option<i64>),
        name!(null_rows_left, Option<i64>),
        name!(fillable_rows_left, Option<i64>),
    ),
> {
    let oid = child.oid();
    drop(child);
    let batch = batch_size.unwrap_or(10000);
    check_batch_size(batch);
    if from_block < 0 {
        invalid_parameter(format!("from_block must not be negative, not {from_block}")).raise();
    }
    let b = prepare(oid, via_constraint, tenant_column);
    let mut null_rows: Option<i64> = None;
    if from_block == 0 {
        if walk_size(oid).2 {
            as_table_owner(oid, || spi(Spi::run(&format!("ANALYZE {}", b.rc.name))));
        }
        null_rows = Some(b.null_rows());
    }
    let sql = b.batch_sql();
    let mut block = from_block;
    let mut n: i64 = 0;
    let mut nblocks;
    loop {
        // The size is read again each time: the table may grow meanwhile.
        let (size, per_block, _) = walk_size(oid);
        nblocks = size;
        if block >= nblocks {
            break;
        }
        let step = blocks_per_batch(batch, per_block);
        let (lo, hi) = (format!("({block},0)"), format!("({},0)", block + step));
        n = as_table_owner(oid, || {
            pin_plan();
            Spi::connect_mut(|c| {
                spi(c.update(&sql, None, &[lo.as_str().into(), hi.as_str().into()])).len()
            })
        }) as i64;
        block += step;
        if n > 0 {
            break;
        }
    }
    let (next, left, fillable) = if block >= nblocks {
        let (left, fillable) = b.rows_left();
        (None, Some(left), Some(fillable))
    } else {
        (Some(block), None, None)
    };
    TableIterator::once((n, next, nblocks, null_rows, left, fillable))
}

/// Fills NULL tenant ids of `child` from the parent row reached through the
/// foreign key `via_constraint`, about `batch_size` rows per statement, with
/// a progress NOTICE per batch, all in **one transaction** (every batch's
/// row locks are held to the end: on a table the application is writing,
/// use `CALL tenant_guard.backfill(...)`, which commits every batch).
/// Returns the number of rows updated; rows whose parent has no tenant stay
/// NULL and are reported.
///
/// Rights: the caller needs UPDATE on the child and SELECT on the parent,
/// and row-level security must restrict it on neither (it fills rows of
/// every tenant). The batches and counts run as the child's **owner**
/// (whose triggers and index expressions run with its own rights, and
/// whose forced row-level security does not hide rows from it); that owner
/// needs SELECT on the parent (42501 naming the grant otherwise), must own
/// every partition of the child, and may read a parent of another owner
/// only when that runs none of its code ([`require_safe_read`]: no
/// row-level security applying, built-in key and tenant types and
/// operators; 42501 otherwise).
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
    check_batch_size(batch);
    let b = prepare(oid, via_constraint, tenant_column);
    let t = ident(&b.tenant);
    let join = b.join();
    let todo = as_table_owner(oid, || {
        pin_plan();
        one::<i64>(
            &format!(
                "SELECT pg_catalog.count(*) FROM {} c JOIN {} p ON {join} WHERE c.{t} IS NULL AND p.{t} IS NOT NULL",
                b.rc.name, b.parent_name
            ),
            &[],
        )
    })
    .unwrap_or(0);
    let sql = integrity::backfill_batch_sql(
        &b.rc.name,
        &b.parent_name,
        &b.tenant,
        &b.cols,
        &b.pcols,
        &b.ops,
    );
    let (nblocks, per_block, _) = walk_size(oid);
    let step = blocks_per_batch(batch, per_block);
    let mut done: i64 = 0;
    let mut n_batch = 0;
    let mut block: i64 = 0;
    while block < nblocks && done < todo {
        let (lo, hi) = (format!("({block},0)"), format!("({},0)", block + step));
        let n = as_table_owner(oid, || {
            pin_plan();
            Spi::connect_mut(|c| {
                spi(c.update(&sql, None, &[lo.as_str().into(), hi.as_str().into()])).len()
            })
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
    b.report_unfillable(b.null_rows(), via_constraint, "backfill_tenant");
    done
}

extension_sql_file!(
    "../sql/backfill.sql",
    name = "backfill",
    requires = ["bootstrap", backfill_batch, backfill_tenant]
);
