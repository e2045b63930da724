//! `add_tenant_fk`, `upgrade_foreign_keys`, `enforce_not_null` and
//! `scope_unique`: catalog reads and execution around the pure renderers in
//! `integrity` (the backfills, which share the checks below: `backfill`).
//!
//! Whose rights:
//! * catalog reads: the caller's, `search_path` pinned (`privileged::pinned`);
//! * everything that touches a user table (violation counts and samples,
//!   NULL counts, backfill batches, and the DDL: ADD CONSTRAINT, VALIDATE,
//!   CREATE INDEX, SET NOT NULL, DROP/RENAME) runs as **that table's owner**
//!   (`privileged::as_table_owner`, restricted, RLS not forced on the
//!   owner), so a trigger, CHECK, index expression, cast or operator the
//!   owner wrote never runs with the caller's (a DBA's) rights;
//! * before that, the caller must own the table (or be a member of its
//!   owner, or a superuser) for DDL, exactly as if it ran the DDL itself
//!   (42501 otherwise); a dry run only needs to be able to read every row;
//! * a statement run as one table's owner that reads another role's table
//!   (the parent in a backfill, a violation count, VALIDATE) runs only when
//!   that runs none of the other role's code: SELECT, no row-level
//!   security applying to the reader (policies are the other role's code),
//!   compared or cast columns of built-in types, built-in operators
//!   ([`require_safe_read`]; 42501 "give both tables the same owner");
//! * a table written or validated as its owner must have no partition or
//!   inheritance child of another owner, whose triggers, CHECKs and index
//!   expressions would run with the first owner's rights
//!   ([`require_owned_tree`]; 42501 naming the partition).
//!
//! All of them are all-or-nothing (one transaction: an error undoes every
//! step), and never modify user rows except the tenant column in
//! `backfill_tenant`.

use crate::catalog::{column, relation, require_table, Relation};
use crate::error::{invalid_parameter, one, spi, Code, Failure};
use crate::integrity::{self, FkSpec, EQ};
use crate::privileged::{self, as_table_owner, pinned};
use crate::protect::tenant_column;
use crate::quote::ident;
use pgrx::iter::SetOfIterator;
use pgrx::prelude::*;

type Oid = pg_sys::Oid;

fn names(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> Vec<Vec<String>> {
    pinned(|| {
        Spi::connect(|c| {
            spi(c.select(sql, None, args))
                .filter_map(|row| spi(row.get::<Vec<String>>(1)))
                .collect()
        })
    })
}

fn not_null(oid: Oid, col: &str) -> bool {
    pinned(|| {
        one::<bool>(
            "SELECT a.attnotnull FROM pg_catalog.pg_attribute a \
              WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name",
            &[oid.into(), col.into()],
        )
    })
    .unwrap_or(false)
}

fn relname(oid: Oid) -> String {
    pinned(|| {
        one::<String>(
            "SELECT c.relname::pg_catalog.text FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
            &[oid.into()],
        )
    })
    .unwrap_or_else(|| crate::error::internal(format!("relation {} not found", u32::from(oid))))
}

/// The schema (`nspname`, unquoted) of a relation.
fn schema_of(oid: Oid) -> String {
    pinned(|| {
        one::<String>(
            "SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_class c \
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
              WHERE c.oid OPERATOR(pg_catalog.=) $1",
            &[oid.into()],
        )
    })
    .unwrap_or_else(|| crate::error::internal(format!("relation {} not found", u32::from(oid))))
}

/// The equality operator a foreign key from a `child_type` column to a
/// `parent_type` column would use (the parent type's default btree
/// family, as PostgreSQL picks it), rendered schema-qualified. Falls back
/// to `pg_catalog.=` (which then resolves among the catalog's operators
/// only, never the search_path's).
fn eq_operator(parent_type: Oid, child_type: Oid) -> String {
    let found = pinned(|| {
        Spi::connect(|c| {
            let rows = spi(c.select(
                "SELECT n.nspname::pg_catalog.text, o.oprname::pg_catalog.text \
                   FROM pg_catalog.pg_opclass oc \
                   JOIN pg_catalog.pg_amop ao ON ao.amopfamily OPERATOR(pg_catalog.=) oc.opcfamily \
                   JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) ao.amopopr \
                   JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace \
                  WHERE oc.opcmethod OPERATOR(pg_catalog.=) 403::pg_catalog.oid AND oc.opcdefault \
                    AND oc.opcintype OPERATOR(pg_catalog.=) $1 \
                    AND ao.amopstrategy OPERATOR(pg_catalog.=) 3::pg_catalog.int2 /* btree equal */ \
                    AND ao.amoplefttype OPERATOR(pg_catalog.=) $1 \
                    AND (ao.amoprighttype OPERATOR(pg_catalog.=) $2 OR ao.amoprighttype OPERATOR(pg_catalog.=) $1) \
                  ORDER BY ao.amoprighttype OPERATOR(pg_catalog.=) $2 DESC LIMIT 1",
                None,
                &[parent_type.into(), child_type.into()],
            ));
            rows.into_iter().next().map(|r| {
                (
                    crate::error::present(r.get::<String>(1), "pg_namespace.nspname"),
                    crate::error::present(r.get::<String>(2), "pg_operator.oprname"),
                )
            })
        })
    });
    found
        .and_then(|(n, o)| integrity::operator(&n, &o))
        .unwrap_or_else(|| EQ.to_owned())
}

/// A foreign key's own equality operators (`conpfeqop`), rendered.
pub(crate) fn constraint_ops(nsps: &[String], oprs: &[String]) -> Vec<String> {
    nsps.iter()
        .zip(oprs)
        .map(|(n, o)| {
            integrity::operator(n, o).unwrap_or_else(|| {
                Failure::new(
                    Code::ERRCODE_INTERNAL_ERROR,
                    format!("unexpected operator name \"{o}\""),
                )
                .raise()
            })
        })
        .collect()
}

/// Whether the current user has the rights of `rel`'s owner (owner, member
/// of the owning role, or superuser): what running DDL on it takes.
pub(crate) fn caller_owns(rel: Oid) -> bool {
    let owner = privileged::table_owner(rel);
    // SAFETY: plain OIDs by value, no pointers; has_privs_of_role only
    // reads the catalog (an unknown role is simply not a member).
    unsafe { pg_sys::has_privs_of_role(pg_sys::GetUserId(), owner) }
}

/// 42501 unless the caller may run DDL on `rel` (see [`caller_owns`]).
fn require_owner(rel: Oid) {
    if !caller_owns(rel) {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be owner of table {}", privileged::qualified_name(rel)),
        )
        .detail("This function changes the table's definition, which only its owner may do.")
        .raise();
    }
}

/// 42501 unless the caller owns `rel` or may read every row of it (what a
/// dry run, which only counts, needs).
fn require_read_or_own(rel: Oid) {
    if !caller_owns(rel) {
        privileged::require_full_read(rel);
    }
}

/// Whether `role` holds `mode` on `rel`.
fn role_has(role: Oid, rel: Oid, mode: u32) -> bool {
    // SAFETY: plain OIDs and a mode by value, no pointers; the ACL check
    // reads the catalog and raises (never returns garbage) for a relation
    // that does not exist.
    unsafe {
        pg_sys::pg_class_aclcheck(rel, role, mode as pg_sys::AclMode)
            == pg_sys::AclResult::ACLCHECK_OK
    }
}

/// 42501 unless the owner of `table` (the role its statements run as)
/// holds `mode` (named `what`) on `other`.
pub(crate) fn require_owner_privilege(table: Oid, other: Oid, mode: u32, what: &str, why: &str) {
    let owner = privileged::table_owner(table);
    if !role_has(owner, other, mode) {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "owner \"{}\" of table {} lacks {what} on table {}",
                privileged::role_name(owner),
                privileged::qualified_name(table),
                privileged::qualified_name(other)
            ),
        )
        .detail(format!(
            "tenant_guard runs {why} as the owner of {}.",
            privileged::qualified_name(table)
        ))
        .hint(format!(
            "GRANT {what} ON {} TO {};",
            privileged::qualified_name(other),
            ident(&privileged::role_name(owner))
        ))
        .raise();
    }
}

/// Whether comparing or casting values of type `ty` runs no role's code:
/// a built-in type, or a domain or array over one (enums, composites,
/// ranges and other user-defined types carry their creator's operators
/// and casts). Base types cannot be created without superuser rights, so
/// a non-built-in base type with an element type is an array type.
fn is_safe_type(ty: Oid) -> bool {
    let mut ty = ty;
    for _ in 0..16 {
        if ty == Oid::INVALID {
            return false;
        }
        if u32::from(ty) < privileged::FIRST_NORMAL_OBJECT_ID {
            return true;
        }
        let row = pinned(|| {
            Spi::connect(|c| {
                let rows = spi(c.select(
                    "SELECT t.typtype::pg_catalog.text, t.typbasetype, t.typelem \
                       FROM pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) $1",
                    None,
                    &[ty.into()],
                ));
                rows.into_iter().next().map(|r| {
                    (
                        crate::error::present(r.get::<String>(1), "pg_type.typtype"),
                        crate::error::present(r.get::<Oid>(2), "pg_type.typbasetype"),
                        crate::error::present(r.get::<Oid>(3), "pg_type.typelem"),
                    )
                })
            })
        });
        match row {
            Some((k, base, _)) if k == "d" => ty = base,
            Some((k, _, elem)) if k == "b" && elem != Oid::INVALID => ty = elem,
            _ => return false,
        }
    }
    false
}

fn type_name(ty: Oid) -> String {
    pinned(|| one::<String>("SELECT pg_catalog.format_type($1, NULL)", &[ty.into()]))
        .unwrap_or_else(|| u32::from(ty).to_string())
}

/// 42501 unless statements that run as the owner of `table` may read
/// `other` (compare its columns `cols` with the operators `ops`, rendered)
/// without running code of `other`'s owner with the rights of `table`'s:
/// nothing to check when one role owns both; otherwise that owner must
/// hold SELECT on `other`, row-level security of `other` must not apply to
/// it (its policies are the other owner's code), every column compared or
/// cast must be of a built-in type (or a domain or array over one), and
/// every operator built in (`pg_catalog`). `why` names the statements.
pub(crate) fn require_safe_read(
    table: Oid,
    other: Oid,
    cols: &[String],
    ops: &[String],
    why: &str,
) {
    let reader = privileged::table_owner(table);
    let owner = privileged::table_owner(other);
    // Whoever owns the tables, a column type of a third role runs that
    // role's code.
    let mut reasons = Vec::new();
    let mut flagged = Vec::new();
    for c in cols {
        let found = privileged::untrusted_columns(other, std::slice::from_ref(c), reader);
        if !found.is_empty() {
            flagged.push(c.clone());
            reasons.extend(found);
        }
    }
    let other_name = privileged::qualified_name(other);
    if reader != owner {
        if !role_has(reader, other, pg_sys::ACL_SELECT) {
            reasons.push(format!(
                "\"{}\" lacks SELECT on it",
                privileged::role_name(reader)
            ));
        }
        // SAFETY: a catalog look-up for an existing role and relation; noError.
        let rls = unsafe { pg_sys::check_enable_rls(other, reader, true) };
        if rls == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32 {
            reasons.push(format!(
                "its row-level security applies to \"{}\" (its policies would run as that role)",
                privileged::role_name(reader)
            ));
        }
        for c in cols.iter().filter(|c| !flagged.contains(c)) {
            let ty = privileged::column_type(other, c);
            if !is_safe_type(ty) {
                reasons.push(format!(
                    "its column \"{c}\" is of the user-defined type {} (its operators and casts would run as \"{}\")",
                    type_name(ty),
                    privileged::role_name(reader)
                ));
            }
        }
        for op in ops {
            if !(op.starts_with("OPERATOR(pg_catalog.")
                || op.starts_with("OPERATOR(\"pg_catalog\"."))
            {
                reasons.push(format!(
                    "the key compares with the user-defined operator {op}"
                ));
            }
        }
    }
    if reasons.is_empty() {
        return;
    }
    Failure::new(
        Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!(
            "tenant_guard will not read table {other_name} (owner \"{}\") as \"{}\", the owner of table {}",
            privileged::role_name(owner),
            privileged::role_name(reader),
            privileged::qualified_name(table)
        ),
    )
    .detail(format!(
        "tenant_guard runs {why} as the owner of {}, and {}: {}.",
        privileged::qualified_name(table),
        if reader == owner {
            "code of another role would run with that owner's rights".to_owned()
        } else {
            format!("{other_name} belongs to another role")
        },
        reasons.join("; ")
    ))
    .hint(if reader == owner {
        "Use built-in types, or types of the tables' owner whose casts to and from text and whose checks call only built-in functions."
    } else {
        "Give both tables the same owner (ALTER TABLE ... OWNER TO ...), or lift the condition named."
    })
    .raise();
}

/// 42501 unless the owner of `rel` also owns every partition and
/// inheritance child of it (recursively): statements that write or
/// validate `rel` as its owner reach them, and their triggers, CHECK
/// constraints and index expressions would run with that owner's rights.
/// `why` names the statements.
pub(crate) fn require_owned_tree(rel: Oid, why: &str) {
    let owner = privileged::table_owner(rel);
    let other = pinned(|| {
        Spi::connect(|c| {
            let rows = spi(c.select(
                "WITH RECURSIVE t(relid) AS ( \
                     SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent OPERATOR(pg_catalog.=) $1 \
                     UNION \
                     SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN t ON i.inhparent OPERATOR(pg_catalog.=) t.relid) \
                 SELECT k.oid, k.relowner, k.relispartition FROM t \
                   JOIN pg_catalog.pg_class k ON k.oid OPERATOR(pg_catalog.=) t.relid \
                  WHERE k.relowner OPERATOR(pg_catalog.<>) $2 \
                  ORDER BY k.relname LIMIT 1",
                None,
                &[rel.into(), owner.into()],
            ));
            rows.into_iter().next().map(|r| {
                (
                    crate::error::present(r.get::<Oid>(1), "pg_class.oid"),
                    crate::error::present(r.get::<Oid>(2), "pg_class.relowner"),
                    crate::error::present(r.get::<bool>(3), "pg_class.relispartition"),
                )
            })
        })
    });
    if let Some((child, child_owner, partition)) = other {
        let what = if partition {
            "partition"
        } else {
            "inheritance child"
        };
        let child_name = privileged::qualified_name(child);
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "{what} {child_name} of table {} belongs to \"{}\", not to \"{}\"",
                privileged::qualified_name(rel),
                privileged::role_name(child_owner),
                privileged::role_name(owner)
            ),
        )
        .detail(format!(
            "tenant_guard runs {why} as \"{}\"; the triggers, CHECK constraints and index expressions of {child_name} would run with that role's rights.",
            privileged::role_name(owner)
        ))
        .hint(format!(
            "Give it the same owner: ALTER TABLE {child_name} OWNER TO {};",
            ident(&privileged::role_name(owner))
        ))
        .raise();
    }
}

/// Runs statements as the owner of `rel`.
fn run_as_owner(rel: Oid, ddl: &[String]) {
    as_table_owner(rel, || {
        for s in ddl {
            spi(Spi::run(s));
        }
    })
}

/// The lock discipline of the DDL helpers (add_tenant_fk,
/// upgrade_foreign_keys, enforce_not_null, scope_unique, protect,
/// protect_schema, unprotect, rollout): before any DDL, a helper takes every
/// table lock its statements need, at the strongest mode any of them takes,
/// in one order (the order given: referenced tables first, then by OID; each
/// table with its partitions). It never waits for a lock while it holds
/// another one it took here: it waits for one (at most [`SLICE_MS`] at a
/// time, so clients queued behind it are not held longer), then tries the
/// others without waiting; when one is busy it lets go of all of them
/// (a subtransaction, rolled back) and waits for that one first. So it
/// cannot deadlock with the application (the measured case: ACCESS
/// EXCLUSIVE on the child, then waiting for the parent the application held
/// while the application waited for the child). After
/// `tenant_guard.lock_timeout` it fails with 55P03 naming the table it
/// waited for; nothing was changed, since no DDL ran yet.
pub mod locks {
    use super::Oid;
    use crate::error::{spi, Code, Failure};
    use crate::privileged::{self, pinned};
    use pgrx::prelude::*;

    pub const ACCESS_SHARE: i32 = pg_sys::AccessShareLock as i32;
    pub const ROW_SHARE: i32 = pg_sys::RowShareLock as i32;
    pub const SHARE_UPDATE_EXCLUSIVE: i32 = pg_sys::ShareUpdateExclusiveLock as i32;
    pub const SHARE_ROW_EXCLUSIVE: i32 = pg_sys::ShareRowExclusiveLock as i32;
    pub const ACCESS_EXCLUSIVE: i32 = pg_sys::AccessExclusiveLock as i32;

    /// Longest single wait in a lock queue (clients asking for the table
    /// after the helper queue behind it meanwhile).
    pub const SLICE_MS: i64 = 500;
    /// Pause after letting go, so the clients queued behind get through.
    const BACKOFF_US: i64 = 50_000;

    pub fn mode_name(m: i32) -> &'static str {
        match m {
            1 => "ACCESS SHARE",
            2 => "ROW SHARE",
            3 => "ROW EXCLUSIVE",
            4 => "SHARE UPDATE EXCLUSIVE",
            5 => "SHARE",
            6 => "SHARE ROW EXCLUSIVE",
            7 => "EXCLUSIVE",
            _ => "ACCESS EXCLUSIVE",
        }
    }

    /// A mode that covers both `a` and `b` (holding it, a later request
    /// for either is granted without waiting).
    pub fn combine(a: i32, b: i32) -> i32 {
        if a == b || a.max(b) <= pg_sys::RowExclusiveLock as i32 {
            a.max(b)
        } else {
            a.max(b).max(SHARE_ROW_EXCLUSIVE)
        }
    }

    /// `rel` and every partition or inheritance child of it, parent first.
    pub fn tree(rel: Oid) -> Vec<Oid> {
        let mut out = vec![rel];
        out.extend(pinned(|| {
            Spi::connect(|c| {
                spi(c.select(
                    "WITH RECURSIVE t(relid, depth) AS ( \
                         SELECT i.inhrelid, 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent OPERATOR(pg_catalog.=) $1 \
                         UNION \
                         SELECT i.inhrelid, t.depth OPERATOR(pg_catalog.+) 1 FROM pg_catalog.pg_inherits i \
                           JOIN t ON i.inhparent OPERATOR(pg_catalog.=) t.relid) \
                     SELECT t.relid FROM t ORDER BY t.depth, t.relid",
                    None,
                    &[rel.into()],
                ))
                .filter_map(|r| spi(r.get::<Oid>(1)))
                .collect::<Vec<_>>()
            })
        }));
        out
    }

    /// A lock set: first position kept, modes combined.
    #[derive(Default)]
    pub struct LockSet(Vec<(Oid, i32)>);

    impl LockSet {
        pub fn add(&mut self, rel: Oid, mode: i32) {
            match self.0.iter_mut().find(|(r, _)| *r == rel) {
                Some(e) => e.1 = combine(e.1, mode),
                None => self.0.push((rel, mode)),
            }
        }
        /// `rel` and its partitions / inheritance children.
        pub fn add_tree(&mut self, rel: Oid, mode: i32) {
            for r in tree(rel) {
                self.add(r, mode);
            }
        }
        pub fn take(&self, why: &str) {
            take(&self.0, why)
        }
    }

    /// Restores `CurrentMemoryContext` and `CurrentResourceOwner` after a
    /// subtransaction, as PL/pgSQL's exception blocks do.
    struct Saved(pg_sys::MemoryContext, pg_sys::ResourceOwner);

    /// One attempt inside a subtransaction: wait (at most `wait_ms`) for
    /// `order[first]`, then take the others without waiting. `Err(i)`:
    /// lock `i` was busy; every lock of this attempt is released again.
    fn attempt(order: &[(Oid, i32)], first: usize, wait_ms: i64) -> Result<(), usize> {
        // SAFETY: the subtransaction is always ended below (released on
        // success, rolled back otherwise), the memory context and resource
        // owner restored, as PL/pgSQL's exec_stmt_block does; the only
        // error caught (55P03, our own lock wait timing out) is cleaned up
        // by the rollback (LockErrorCleanup).
        unsafe {
            let saved = Saved(pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner);
            pg_sys::BeginInternalSubTransaction(std::ptr::null());
            pg_sys::MemoryContextSwitchTo(saved.0);
            let level = pg_sys::NewGUCNestLevel();
            let v = crate::error::c_string(&format!("{wait_ms}ms"));
            pg_sys::set_config_option(
                c"lock_timeout".as_ptr(),
                v.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
            // Any other error (a cancel, a statement timeout, a deadlock
            // while waiting) is caught too, so the subtransaction is always
            // ended here, and then raised again in the caller's transaction.
            let got: Result<(), Result<usize, Box<pgrx::pg_sys::panic::CaughtError>>> =
                pgrx::PgTryBuilder::new(|| {
                    let (rel, mode) = order[first];
                    pg_sys::LockRelationOid(rel, mode);
                    for (i, &(rel, mode)) in order.iter().enumerate() {
                        if i != first && !pg_sys::ConditionalLockRelationOid(rel, mode) {
                            return Err(Ok(i));
                        }
                    }
                    Ok(())
                })
                .catch_when(PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE, |_| {
                    Err(Ok(first))
                })
                .catch_others(|e| Err(Err(Box::new(e))))
                .execute();
            pg_sys::MemoryContextSwitchTo(saved.0);
            pg_sys::AtEOXact_GUC(false, level);
            if got.is_ok() {
                pg_sys::ReleaseCurrentSubTransaction();
            } else {
                pg_sys::RollbackAndReleaseCurrentSubTransaction();
            }
            pg_sys::MemoryContextSwitchTo(saved.0);
            pg_sys::CurrentResourceOwner = saved.1;
            match got {
                Ok(()) => Ok(()),
                Err(Ok(busy)) => Err(busy),
                Err(Err(e)) => e.rethrow(),
            }
        }
    }

    /// Takes every lock of `wanted` (see the module) or fails with 55P03
    /// once `tenant_guard.lock_timeout` has passed. `why` names the helper.
    pub fn take(wanted: &[(Oid, i32)], why: &str) {
        if wanted.is_empty() {
            return;
        }
        let limit = i64::from(crate::gucs::LOCK_TIMEOUT.get());
        let start = std::time::Instant::now();
        let mut first = 0usize;
        loop {
            let spent = start.elapsed().as_millis() as i64;
            let wait = if limit == 0 {
                SLICE_MS
            } else {
                (limit - spent).min(SLICE_MS)
            };
            if wait <= 0 {
                let (rel, mode) = wanted[first];
                Failure::new(
                    Code::ERRCODE_LOCK_NOT_AVAILABLE,
                    format!(
                        "could not lock table {} within tenant_guard.lock_timeout ({limit}ms)",
                        privileged::qualified_name(rel)
                    ),
                )
                .detail(format!(
                    "{why} needs a {} lock on it; another transaction holds a conflicting lock. Nothing was changed.",
                    mode_name(mode)
                ))
                .hint("Run it again when the table is quieter, raise tenant_guard.lock_timeout (SET tenant_guard.lock_timeout = '30s'), or run the dry run's statements one per transaction.")
                .raise();
            }
            match attempt(wanted, first, wait) {
                Ok(()) => {
                    // A table dropped before its lock was granted: a
                    // look-alike may have its name now (a schema's owner
                    // may drop any table in it), and what was built from
                    // that name would run on the look-alike.
                    for &(rel, _) in wanted {
                        if !privileged::relation_exists(rel) {
                            Failure::new(
                                Code::ERRCODE_UNDEFINED_TABLE,
                                format!(
                                    "relation with OID {} was dropped while {why} waited for its lock",
                                    u32::from(rel)
                                ),
                            )
                            .detail("Nothing was changed.")
                            .raise();
                        }
                    }
                    return;
                }
                Err(i) => {
                    first = i;
                    // SAFETY: a plain sleep; interrupts are checked after.
                    unsafe { pg_sys::pg_usleep(BACKOFF_US as _) };
                    pgrx::check_for_interrupts!();
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn combined_modes_cover_both() {
            assert_eq!(combine(ROW_SHARE, ROW_SHARE), ROW_SHARE);
            assert_eq!(
                combine(SHARE_UPDATE_EXCLUSIVE, pg_sys::ShareLock as i32),
                SHARE_ROW_EXCLUSIVE
            );
            assert_eq!(
                combine(SHARE_ROW_EXCLUSIVE, ACCESS_EXCLUSIVE),
                ACCESS_EXCLUSIVE
            );
            assert_eq!(
                combine(ROW_SHARE, SHARE_UPDATE_EXCLUSIVE),
                SHARE_ROW_EXCLUSIVE
            );
            assert_eq!(mode_name(ACCESS_EXCLUSIVE), "ACCESS EXCLUSIVE");
        }
    }
}

const KEY_COLS_OF_INDEX: &str = crate::catalog::column_names!("i.indrelid", "i.indkey");

/// Column lists of the table's valid unique, non-partial, plain-column
/// indexes. An invalid index (left by an interrupted `CREATE INDEX
/// CONCURRENTLY`) enforces nothing and does not count.
fn unique_keys(oid: Oid) -> Vec<Vec<String>> {
    names(
        &format!(
            "SELECT {KEY_COLS_OF_INDEX} FROM pg_catalog.pg_index i \
              WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND i.indisunique AND i.indisvalid \
                AND i.indpred IS NULL AND i.indexprs IS NULL"
        ),
        &[oid.into()],
    )
}

/// Column lists of all the table's valid indexes (for "is there an index
/// led by").
fn index_keys(oid: Oid) -> Vec<Vec<String>> {
    names(
        &format!(
            "SELECT {KEY_COLS_OF_INDEX} FROM pg_catalog.pg_index i \
              WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND i.indisvalid AND i.indpred IS NULL"
        ),
        &[oid.into()],
    )
}

/// `DROP INDEX [CONCURRENTLY] "nsp"."name"` when the table has an
/// **invalid** index of that name: what an interrupted `CREATE INDEX
/// CONCURRENTLY` of an earlier dry run's statements leaves behind. Dropped
/// first, the build can run again, so an interrupted online run resumes by
/// running the dry run once more. A valid index, or another relation, of
/// that name is left alone (the build then fails with `42P07`).
fn drop_invalid_index(table: Oid, name: &str, concurrently: bool) -> Option<String> {
    let found = pinned(|| {
        one::<bool>(
            "SELECT true FROM pg_catalog.pg_index i \
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid \
              WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND NOT i.indisvalid \
                AND c.relname OPERATOR(pg_catalog.=) $2::pg_catalog.name",
            &[table.into(), name.into()],
        )
    })
    .unwrap_or(false);
    found.then(|| {
        format!(
            "DROP INDEX {}{}.{}",
            if concurrently { "CONCURRENTLY " } else { "" },
            ident(&schema_of(table)),
            ident(name)
        )
    })
}

fn primary_key(oid: Oid) -> Vec<String> {
    names(
        concat!(
            "SELECT ",
            crate::catalog::column_names!("c.conrelid", "c.conkey"),
            " FROM pg_catalog.pg_constraint c \
              WHERE c.conrelid OPERATOR(pg_catalog.=) $1 AND c.contype OPERATOR(pg_catalog.=) 'p'::pg_catalog.\"char\""
        ),
        &[oid.into()],
    )
    .into_iter()
    .next()
    // No primary key: meant (the callers then ask for parent_columns, 42P10).
    .unwrap_or_default()
}

/// A foreign key as the catalog describes it.
#[derive(Debug, Clone)]
pub(crate) struct FkRow {
    name: String,
    pub(crate) child: Oid,
    pub(crate) parent: Oid,
    pub(crate) cols: Vec<String>,
    pub(crate) pcols: Vec<String>,
    on_update: char,
    on_delete: char,
    deferrable: bool,
    deferred: bool,
    validated: bool,
    index: Oid,
    /// `conpfeqop`, rendered (empty for other constraints).
    pub(crate) ops: Vec<String>,
    /// The schemas of `conpfeqop`'s operators, in key order.
    pub(crate) op_schemas: Vec<String>,
}

/// Every constraint fact the generators and the audits read, in one query
/// (the audits' cross-tenant count reads a foreign key through
/// [`foreign_key`]).
const FK_SELECT: &str = concat!(
    "SELECT c.conname::pg_catalog.text, c.conrelid, c.confrelid, ",
    crate::catalog::column_names!("c.conrelid", "c.conkey"),
    ", ",
    crate::catalog::column_names!("c.confrelid", "c.confkey"),
    ", \
      c.confupdtype::pg_catalog.text, c.confdeltype::pg_catalog.text, c.condeferrable, c.condeferred, \
      c.convalidated, c.conindid, c.contype::pg_catalog.text, \
      ARRAY(SELECT n.nspname::pg_catalog.text FROM pg_catalog.unnest(c.conpfeqop) WITH ORDINALITY k(op, o) \
              JOIN pg_catalog.pg_operator x ON x.oid OPERATOR(pg_catalog.=) k.op \
              JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) x.oprnamespace ORDER BY k.o), \
      ARRAY(SELECT x.oprname::pg_catalog.text FROM pg_catalog.unnest(c.conpfeqop) WITH ORDINALITY k(op, o) \
              JOIN pg_catalog.pg_operator x ON x.oid OPERATOR(pg_catalog.=) k.op ORDER BY k.o) \
    FROM pg_catalog.pg_constraint c "
);

/// `contype = 'f'`, written search-path proof.
const IS_FK: &str = "c.contype OPERATOR(pg_catalog.=) 'f'::pg_catalog.\"char\"";

fn fk_rows(filter: &str, args: &[pgrx::datum::DatumWithOid]) -> Vec<(FkRow, char)> {
    let raw: Vec<(FkRow, char, Vec<String>, Vec<String>)> = pinned(|| {
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
                            name: crate::error::present(row.get(1), "pg_constraint.conname"),
                            child: crate::error::present(row.get(2), "pg_constraint.conrelid"),
                            parent: crate::error::present(row.get(3), "pg_constraint.confrelid"),
                            cols: crate::error::present(row.get(4), "foreign key columns"),
                            pcols: crate::error::present(
                                row.get(5),
                                "foreign key referenced columns",
                            ),
                            on_update: ch(6),
                            on_delete: ch(7),
                            deferrable: crate::error::present(
                                row.get(8),
                                "pg_constraint.condeferrable",
                            ),
                            deferred: crate::error::present(
                                row.get(9),
                                "pg_constraint.condeferred",
                            ),
                            validated: crate::error::present(
                                row.get(10),
                                "pg_constraint.convalidated",
                            ),
                            index: crate::error::present(row.get(11), "pg_constraint.conindid"),
                            ops: Vec::new(),
                            op_schemas: Vec::new(),
                        },
                        ch(12),
                        crate::error::present(
                            row.get::<Vec<String>>(13),
                            "foreign key operator schemas",
                        ),
                        crate::error::present(row.get::<Vec<String>>(14), "foreign key operators"),
                    )
                })
                .collect()
        })
    });
    raw.into_iter()
        .map(|(mut f, k, nsps, oprs)| {
            f.ops = constraint_ops(&nsps, &oprs);
            f.op_schemas = nsps;
            (f, k)
        })
        .collect()
}

/// The foreign key `con` (any constraint of another kind, or none: `None`).
pub(crate) fn foreign_key(con: Oid) -> Option<FkRow> {
    fk_rows(
        &format!("WHERE c.oid OPERATOR(pg_catalog.=) $1 AND {IS_FK}"),
        &[con.into()],
    )
    .into_iter()
    .next()
    .map(|(f, _)| f)
}

pub(crate) fn wrong_type(msg: String) -> Failure {
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
///
/// Rights: the caller must own the child (and the parent when its unique
/// key is missing), as for running the DDL itself; a dry run needs to read
/// every row of both instead. The DDL, the violation count and the sample
/// run as the child's owner (the parent's unique key as the parent's
/// owner), which needs REFERENCES and SELECT on the parent (42501 naming
/// the missing grant otherwise); the count, sample and VALIDATE read the
/// parent as the child's owner, so a parent of another owner must pass
/// [`require_safe_read`], and the child (and the parent, when its unique
/// key is created) must own all its partitions ([`require_owned_tree`]).
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
    let ops: Vec<String> = all
        .iter()
        .zip(&pall)
        .map(|(c, p)| {
            eq_operator(
                privileged::column_type(parent, p),
                privileged::column_type(child, c),
            )
        })
        .collect();
    let mut spec = FkSpec {
        name: name.unwrap_or_else(|| {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            integrity::object_name(&relname(child), &refs, "fkey")
        }),
        child: rc.name.clone(),
        parent: rp.name.clone(),
        tenant: tenant.to_owned(),
        cols: cols.to_vec(),
        pcols: pcols.clone(),
        ops,
        on_update: actions.on_update,
        on_delete: actions.on_delete,
        deferrable: actions.deferrable,
        deferred: actions.deferred,
    };
    // Who may do this: DDL takes the child's owner rights; a dry run only
    // reads (counts and samples every tenant's rows).
    if dry {
        require_read_or_own(child);
        require_read_or_own(parent);
    } else {
        require_owner(child);
        require_owned_tree(child, "the foreign key's DDL and its validation");
    }
    // The key's columns are compared, indexed and cast to text (the
    // violation sample) as each table's owner: their types must be that
    // owner's or a superuser's.
    privileged::require_trusted_columns(
        child,
        &all,
        privileged::table_owner(child),
        "the foreign key's index, violation count and validation",
    );
    privileged::require_trusted_columns(
        parent,
        &pall,
        privileged::table_owner(parent),
        "the parent key's unique index",
    );
    let mut ddl = Vec::new();
    let existing = fk_rows(
        &format!(
            "WHERE {IS_FK} AND c.conrelid OPERATOR(pg_catalog.=) $1 AND c.confrelid OPERATOR(pg_catalog.=) $2"
        ),
        &[child.into(), parent.into()],
    )
    .into_iter()
    .map(|(f, _)| f)
    .find(|f| f.cols == all && f.pcols == pall);
    let mut parent_ddl = Vec::new();
    let mut child_drops = false;
    let fk_name = match &existing {
        Some(f) if f.validated || !validate => return (ddl, f.validated, f.name.clone()),
        Some(f) => {
            if f.ops.len() == all.len() {
                spec.ops = f.ops.clone();
            }
            f.name.clone()
        }
        None => {
            let mut set = pall.clone();
            set.sort();
            let has_unique = unique_keys(parent).into_iter().any(|mut k| {
                k.sort();
                k == set
            });
            if !has_unique {
                let refs: Vec<&str> = pall.iter().map(String::as_str).collect();
                let key = integrity::object_name(&relname(parent), &refs, "key");
                parent_ddl.extend(drop_invalid_index(parent, &key, dry && rp.relkind != b'p'));
                parent_ddl.extend(integrity::unique_steps(
                    &rp.name,
                    &key,
                    tenant,
                    &pcols,
                    false,
                    None,
                    rp.relkind == b'p',
                    dry,
                ));
                if !dry {
                    require_owner(parent);
                    require_owned_tree(parent, "the parent's new unique key");
                }
            }
            let has_index = index_keys(child)
                .into_iter()
                .any(|k| k.len() >= all.len() && k[..all.len()] == all[..]);
            if !has_index {
                let refs: Vec<&str> = all.iter().map(String::as_str).collect();
                let idx = integrity::object_name(&relname(child), &refs, "idx");
                let concurrently = dry && rc.relkind != b'p';
                let drop = drop_invalid_index(child, &idx, concurrently);
                child_drops |= drop.is_some();
                ddl.extend(drop);
                ddl.push(integrity::render_index(&rc.name, &idx, &all, concurrently));
            }
            ddl.push(integrity::render_fk(&spec));
            if !dry {
                require_owner_privilege(
                    child,
                    parent,
                    pg_sys::ACL_REFERENCES,
                    "REFERENCES",
                    "the foreign key's DDL",
                );
            }
            spec.name.clone()
        }
    };
    if validate {
        // The violation count reads the parent as the child's owner.
        require_owner_privilege(
            child,
            parent,
            pg_sys::ACL_SELECT,
            "SELECT",
            "the violation count",
        );
    }
    if !dry {
        // Every lock up front, the referenced table first (see `locks`):
        // the parent's new unique key takes ACCESS EXCLUSIVE, the foreign
        // key SHARE ROW EXCLUSIVE on both tables, VALIDATE alone SHARE
        // UPDATE EXCLUSIVE on the child and ROW SHARE on the parent.
        let mut set = locks::LockSet::default();
        let pmode = if !parent_ddl.is_empty() {
            locks::ACCESS_EXCLUSIVE
        } else if !ddl.is_empty() {
            locks::SHARE_ROW_EXCLUSIVE
        } else {
            locks::ROW_SHARE
        };
        set.add_tree(parent, pmode);
        set.add_tree(
            child,
            if child_drops {
                // DROP INDEX of an interrupted build's leftover.
                locks::ACCESS_EXCLUSIVE
            } else if ddl.is_empty() {
                locks::SHARE_UPDATE_EXCLUSIVE
            } else {
                locks::SHARE_ROW_EXCLUSIVE
            },
        );
        set.take("add_tenant_fk");
        run_as_owner(parent, &parent_ddl);
        run_as_owner(child, &ddl);
    }
    parent_ddl.extend(ddl);
    let mut ddl = parent_ddl;
    if !validate {
        return (ddl, false, fk_name);
    }
    // The key just added compares with the operators of the parent's
    // unique index (its operator class), which VALIDATE will use: count
    // with those.
    if !dry && existing.is_none() {
        if let Some((f, _)) = fk_rows(
            &format!(
                "WHERE {IS_FK} AND c.conrelid OPERATOR(pg_catalog.=) $1 AND c.conname OPERATOR(pg_catalog.=) $2::pg_catalog.name"
            ),
            &[child.into(), fk_name.as_str().into()],
        )
        .into_iter()
        .next()
        {
            if f.ops.len() == all.len() {
                spec.ops = f.ops;
            }
        }
    }
    // The count, the sample and VALIDATE read the parent as the child's
    // owner: only when that runs none of the parent owner's code.
    require_safe_read(
        child,
        parent,
        &pall,
        &spec.ops,
        "the violation count and the validation of the foreign key",
    );
    let (count_sql, sample_sql) = integrity::violation_queries(&spec);
    // Both tables are named in the queries; a dry run has locked neither.
    privileged::lock_named(parent, &spec.parent);
    let bad = as_table_owner(child, || one::<i64>(&count_sql, &[])).unwrap_or(0);
    if bad > 0 {
        // The NOTICE's sample only: rows changed since the count may leave
        // none, and then the NOTICE shows an empty sample (meant).
        let sample = as_table_owner(child, || one::<String>(&sample_sql, &[])).unwrap_or_default();
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
        require_owner(child);
        run_as_owner(child, std::slice::from_ref(&v));
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
    if !dry_run.unwrap_or(false) {
        crate::error::require_writable(c"tenant_guard.add_tenant_fk()");
    }
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
    privileged::column_type(oid, col) != Oid::INVALID
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
    let tmp = integrity::with_suffix(&f.name, "tenant");
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
            require_owner(f.child);
            run_as_owner(f.child, std::slice::from_ref(&drop_old));
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
        require_owner(f.child);
        run_as_owner(f.child, &steps);
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
    if !dry_run.unwrap_or(false) {
        crate::error::require_writable(c"tenant_guard.upgrade_foreign_keys()");
    }
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
    let fks = blind_fks(schema, tenant);
    if !dry {
        fk_locks(
            fks.iter()
                .filter(|f| assume_not_null || not_null(f.child, tenant)),
        )
        .take("upgrade_foreign_keys");
    }
    let ddl: Vec<String> = fks
        .iter()
        .flat_map(|f| upgrade_one(f, tenant, dry, assume_not_null))
        .collect();
    ddl
}

/// Foreign keys of `schema` between tenant tables that leave the tenant
/// column out, by table and constraint name.
fn blind_fks(schema: &str, tenant: &str) -> Vec<FkRow> {
    fk_rows(
        &format!(
            "JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) c.conrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) r.relnamespace \
            WHERE {IS_FK} AND n.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name \
              AND c.conparentid OPERATOR(pg_catalog.=) 0::pg_catalog.oid \
            ORDER BY r.relname, c.conname"
        ),
        &[schema.into()],
    )
    .into_iter()
    .map(|(f, _)| f)
    .filter(|f| {
        has_column(f.child, tenant)
            && has_column(f.parent, tenant)
            && !f.cols.iter().any(|c| c == tenant)
    })
    .collect()
}

/// The locks replacing foreign keys takes: ACCESS EXCLUSIVE on both tables
/// (dropping the old key drops its triggers on the referenced table too),
/// the referenced tables first, then the referencing ones, each by OID.
fn fk_locks<'a>(fks: impl Iterator<Item = &'a FkRow>) -> locks::LockSet {
    let mut pairs: Vec<(Oid, Oid)> = fks.map(|f| (f.parent, f.child)).collect();
    let mut set = locks::LockSet::default();
    pairs.sort_by_key(|p| u32::from(p.0));
    for (p, _) in &pairs {
        set.add_tree(*p, locks::ACCESS_EXCLUSIVE);
    }
    pairs.sort_by_key(|p| u32::from(p.1));
    for (_, c) in &pairs {
        set.add_tree(*c, locks::ACCESS_EXCLUSIVE);
    }
    set
}

/// The foreign keys `upgrade_schema` would replace (for `rollout`'s locks).
pub fn tenant_blind_fks(schema: &str, tenant: &str) -> Vec<(Oid, Oid)> {
    blind_fks(schema, tenant)
        .into_iter()
        .map(|f| (f.parent, f.child))
        .collect()
}

pub(crate) fn find_constraint(table: Oid, r: &Relation, name: &str) -> (FkRow, char) {
    fk_rows(
        "WHERE c.conrelid OPERATOR(pg_catalog.=) $1 AND c.conname OPERATOR(pg_catalog.=) $2::pg_catalog.name",
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

/// Makes the tenant column NOT NULL in lock-friendly steps. Refuses (55000)
/// while NULLs remain. Returns the DDL.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn enforce_not_null(
    tbl: pgrx::PgRelation,
    tenant_column: default!(Option<&str>, "NULL"),
    dry_run: default!(Option<bool>, false),
) -> SetOfIterator<'static, String> {
    if !dry_run.unwrap_or(false) {
        crate::error::require_writable(c"tenant_guard.enforce_not_null()");
    }
    let oid = tbl.oid();
    drop(tbl);
    let tenant = self::tenant_column(tenant_column);
    SetOfIterator::new(not_null_core(oid, &tenant, dry_run.unwrap_or(false)))
}

/// `enforce_not_null` for `rollout`. The NULL count and the steps run as
/// the table's owner (the caller must own it; a dry run must read it all).
pub fn not_null_core(oid: Oid, tenant: &str, dry: bool) -> Vec<String> {
    let tenant = tenant.to_owned();
    let r = relation(oid);
    require_table(&r);
    column(oid, &r, &tenant);
    if not_null(oid, &tenant) {
        return Vec::new();
    }
    if dry {
        require_read_or_own(oid);
    } else {
        require_owner(oid);
        require_owned_tree(oid, "the NOT NULL steps");
        // ADD CONSTRAINT … CHECK and SET NOT NULL take ACCESS EXCLUSIVE.
        let mut set = locks::LockSet::default();
        set.add_tree(oid, locks::ACCESS_EXCLUSIVE);
        set.take("enforce_not_null");
    }
    let nulls = as_table_owner(oid, || {
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
        run_as_owner(oid, &steps);
    }
    steps
}

/// Rewrites a tenant-blind unique constraint or unique index as
/// `(tenant_column, ...)` under the same name, rebuilding the foreign keys
/// that depend on it as composite keys (or refusing, naming them, when a
/// referencing table has no tenant column). Returns the DDL.
///
/// Rights: the caller must own the table and every referencing table; the
/// DDL runs as each table's owner. Names travel as OIDs and catalog names,
/// never as a dotted string split again.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn scope_unique(
    tbl: pgrx::PgRelation,
    constraint_name: &str,
    tenant_column: default!(Option<&str>, "NULL"),
    dry_run: default!(Option<bool>, false),
) -> SetOfIterator<'static, String> {
    if !dry_run.unwrap_or(false) {
        crate::error::require_writable(c"tenant_guard.scope_unique()");
    }
    let oid = tbl.oid();
    drop(tbl);
    let dry = dry_run.unwrap_or(false);
    let tenant = self::tenant_column(tenant_column);
    let r = relation(oid);
    require_table(&r);
    column(oid, &r, &tenant);
    // A constraint of that name, or else a unique index of that name.
    let con = fk_rows(
        "WHERE c.conrelid OPERATOR(pg_catalog.=) $1 AND c.conname OPERATOR(pg_catalog.=) $2::pg_catalog.name",
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
            let idx = pinned(|| {
                one::<Oid>(
                    "SELECT i.indexrelid FROM pg_catalog.pg_index i \
                       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid \
                      WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND c.relname OPERATOR(pg_catalog.=) $2::pg_catalog.name",
                    &[oid.into(), constraint_name.into()],
                )
            })
            .unwrap_or_else(|| {
                Failure::new(
                    Code::ERRCODE_UNDEFINED_OBJECT,
                    format!("no constraint or index \"{constraint_name}\" on \"{}\"", r.display),
                )
                .raise()
            });
            let unique = pinned(|| {
                one::<bool>(
                    "SELECT i.indisunique FROM pg_catalog.pg_index i WHERE i.indexrelid OPERATOR(pg_catalog.=) $1",
                    &[idx.into()],
                )
            })
            .unwrap_or(false);
            if !unique {
                wrong_type(format!("index \"{constraint_name}\" is not unique")).raise();
            }
            (idx, false)
        }
    };
    // The predicate is deparsed under the pinned search_path, so every
    // function and operator in it comes out schema-qualified.
    let (cols, has_exprs, predicate) = pinned(|| {
        Spi::connect(|c| {
            let row = spi(c.select(
                &format!(
                    "SELECT {KEY_COLS_OF_INDEX}, i.indexprs IS NOT NULL, pg_catalog.pg_get_expr(i.indpred, i.indrelid) \
                       FROM pg_catalog.pg_index i WHERE i.indexrelid OPERATOR(pg_catalog.=) $1"
                ),
                Some(1),
                &[index.into()],
            ))
            .first();
            (
                crate::error::present(row.get::<Vec<String>>(1), "index key columns"),
                crate::error::present(row.get::<bool>(2), "pg_index.indexprs IS NOT NULL"),
                spi(row.get::<String>(3)),
            )
        })
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
    if dry {
        require_read_or_own(oid);
    } else {
        require_owner(oid);
        require_owned_tree(oid, "the new unique key");
    }
    // Foreign keys that reference this key must move to the new one.
    let deps: Vec<FkRow> = fk_rows(
        &format!("WHERE {IS_FK} AND c.conindid OPERATOR(pg_catalog.=) $1 ORDER BY c.conname"),
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
    if !dry {
        for f in &deps {
            require_owner(f.child);
            require_owned_tree(f.child, "the rebuilt foreign key");
        }
        // Every lock up front (see `locks`): the new unique key and the
        // DROP/RENAME take ACCESS EXCLUSIVE on the table, replacing each
        // foreign key ACCESS EXCLUSIVE on its table.
        let mut set = locks::LockSet::default();
        set.add_tree(oid, locks::ACCESS_EXCLUSIVE);
        let mut children: Vec<Oid> = deps.iter().map(|f| f.child).collect();
        children.sort_by_key(|c| u32::from(*c));
        for c in children {
            set.add_tree(c, locks::ACCESS_EXCLUSIVE);
        }
        set.take("scope_unique");
    }
    let tmp = integrity::with_suffix(constraint_name, "tenant");
    // The new key beside the old one; each foreign key then moves to it the
    // way upgrade_foreign_keys does (new key NOT VALID under a temporary
    // name, validated, the old key dropped, the new one renamed), so that
    // the dry run's statements keep every row checked when they run one per
    // transaction.
    let mut ddl: Vec<String> = drop_invalid_index(oid, &tmp, dry && r.relkind != b'p')
        .into_iter()
        .collect();
    ddl.extend(integrity::unique_steps(
        &r.name,
        &tmp,
        &tenant,
        &cols,
        !is_constraint,
        predicate.as_deref(),
        r.relkind == b'p',
        dry,
    ));
    if !dry {
        run_as_owner(oid, &ddl);
    }
    for f in &deps {
        let rc = relation(f.child);
        let ftmp = integrity::with_suffix(&f.name, "tenant");
        let actions = Actions {
            on_update: f.on_update,
            on_delete: f.on_delete,
            deferrable: f.deferrable,
            deferred: f.deferred,
        };
        let (mut more, ok, name) = add_fk_core(
            f.child,
            &f.cols,
            oid,
            Some(f.pcols.clone()),
            &tenant,
            actions,
            Some(ftmp.clone()),
            true,
            dry,
            false,
        );
        if dry {
            // The new key above does not exist yet in a dry run: the
            // foreign key will reference it, not a unique key of its own.
            more.retain(|st| {
                !(st.starts_with("CREATE UNIQUE INDEX")
                    || st.starts_with("DROP INDEX")
                    || st.contains(" UNIQUE USING INDEX ")
                    || st.contains(" UNIQUE ("))
            });
        }
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
        let mut steps = vec![format!(
            "ALTER TABLE {} DROP CONSTRAINT {}",
            rc.name,
            ident(&f.name)
        )];
        if name == ftmp {
            steps.push(format!(
                "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
                rc.name,
                ident(&ftmp),
                ident(&f.name)
            ));
        }
        if !dry {
            run_as_owner(f.child, &steps);
        }
        ddl.extend(steps);
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
        // The index lives in its table's schema: both names come from the
        // catalog (nspname, relname), quoted, never split from a string.
        let schema = ident(&schema_of(index));
        vec![
            format!(
                "DROP INDEX {}{}",
                if dry && r.relkind != b'p' {
                    "CONCURRENTLY "
                } else {
                    ""
                },
                privileged::qualified_name(index)
            ),
            format!(
                "ALTER INDEX {schema}.{} RENAME TO {}",
                ident(&tmp),
                ident(constraint_name)
            ),
        ]
    };
    if !dry {
        run_as_owner(oid, &finish);
    }
    ddl.extend(finish);
    SetOfIterator::new(ddl)
}
