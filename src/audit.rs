//! The counts behind the audit views (`null_tenant_rows`,
//! `orphan_tenant_rows`, `cross_tenant_references`).
//!
//! Whose rights: the caller must be able to read every row of each table it
//! audits (`privileged::require_full_read`: SELECT, and row-level security
//! does not restrict it), else 42501; an auditor restricted by row-level
//! security gets an error, not the counts of every tenant. The counts then
//! run as **the table's owner** (`privileged::as_table_owner`), because they
//! evaluate the table's column types (casts to text, equality) which the
//! owner may have written: a cast `WITH FUNCTION` runs with the owner's
//! rights, which it has anyway, never with the auditor's (a DBA's).
//! The registry configuration is read as the extension owner; the
//! registry's ids as the registry table's owner.

use crate::error::{one, spi, Code, Failure};
use crate::integrity;
use crate::privileged::{
    self, as_extension_owner, as_role, as_table_owner, pinned, qualified_name, require_full_read,
};
use crate::quote::ident;
use pgrx::iter::TableIterator;
use pgrx::prelude::*;

type Oid = pg_sys::Oid;

/// `"schema"."table"`, owner and the column's type, in one catalog read;
/// 42703 when the column does not exist.
fn table_and_column(rel: Oid, col: &str) -> (String, Oid, Oid) {
    // Locked before it is named, the name read after schema names are
    // pinned: the statements run by that name as the owner run on this
    // table (a schema's owner could otherwise drop it, or rename the
    // schema, and put a look-alike under the name).
    crate::privileged::lock_then_name(rel, pg_sys::AccessShareLock as i32);
    let class = crate::privileged::class_row(rel);
    let ccol = crate::error::c_string(col);
    // SAFETY: syscache look-ups of a locked relation's attribute.
    let ty = unsafe {
        let attnum = pg_sys::get_attnum(rel, ccol.as_ptr());
        if attnum > 0 {
            pg_sys::get_atttype(rel, attnum)
        } else {
            Oid::INVALID
        }
    };
    match class {
        Some(c) if ty != Oid::INVALID => (c.name, c.owner, ty),
        _ => Failure::new(
            Code::ERRCODE_UNDEFINED_COLUMN,
            format!(
                "column \"{col}\" of relation {} does not exist",
                qualified_name(rel)
            ),
        )
        .raise(),
    }
}

/// [`table_and_column`] from an open relation, without SPI (syscache
/// look-ups only: the audit views call this once per table).
fn open_table_and_column(rel: &pgrx::PgRelation, col: &str) -> (String, Oid, Oid) {
    // The name is parsed again by the statement run as the owner: the
    // table stays locked after pgrx closes it (which releases its own
    // lock), and schema names stay as they are.
    crate::privileged::lock_then_name(rel.oid(), pg_sys::AccessShareLock as i32);
    crate::privileged::pin_schema_names();
    let name = format!("{}.{}", ident(rel.namespace()), ident(rel.name()));
    // SAFETY: rd_rel of an open relation is valid while it is open.
    let owner = unsafe { (*rel.rd_rel).relowner };
    let ccol = crate::error::c_string(col);
    // SAFETY: syscache look-ups of an open relation's attribute.
    let ty = unsafe {
        let attnum = pg_sys::get_attnum(rel.oid(), ccol.as_ptr());
        if attnum > 0 {
            pg_sys::get_atttype(rel.oid(), attnum)
        } else {
            Oid::INVALID
        }
    };
    if ty == Oid::INVALID {
        Failure::new(
            Code::ERRCODE_UNDEFINED_COLUMN,
            format!("column \"{col}\" of relation {name} does not exist"),
        )
        .raise();
    }
    (name, owner, ty)
}

/// Counts the rows of `tbl` whose `tenant_column` is NULL, as the table's
/// owner, after checking the caller may read every row: 42501 otherwise,
/// or, with `skip_unreadable`, a WARNING and NULL (what the view does,
/// without the cost of an exception block per table).
#[pg_extern(stable, parallel_unsafe, schema = "tenant_guard_internal")]
fn count_null_tenant_rows(
    tbl: pgrx::PgRelation,
    tenant_column: &str,
    skip_unreadable: default!(bool, false),
) -> Option<i64> {
    let oid = tbl.oid();
    let (name, owner, _) = open_table_and_column(&tbl, tenant_column);
    drop(tbl);
    if skip_unreadable && !privileged::can_read_all(oid) {
        ereport!(
            WARNING,
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied to audit {name}"),
            "null_tenant_rows skipped this table."
        );
        return None;
    }
    require_full_read(oid);
    let sql = format!(
        "SELECT pg_catalog.count(*) FROM {name} x WHERE x.{} IS NULL",
        ident(tenant_column)
    );
    Some(as_role(owner, || one::<i64>(&sql, &[])).unwrap_or(0))
}

/// The registry's table and id column, read as the extension owner.
fn registry() -> Option<(Oid, String)> {
    as_extension_owner(|| {
        Spi::connect(|c| {
            let rows = spi(c.select(
                "SELECT r.tenant_table::pg_catalog.oid, r.id_column::pg_catalog.text \
                   FROM tenant_guard.registry r LIMIT 1",
                None,
                &[],
            ));
            rows.into_iter()
                .next()
                .and_then(|r| Some((spi(r.get::<Oid>(1))?, spi(r.get::<String>(2))?)))
        })
    })
}

/// Rows of `tbl` whose tenant id is not in the registry, per tenant id (as
/// text), ordered by it; nothing when no registry is configured. The
/// registry's ids are read as the registry table's owner, the child's
/// tenant values grouped as the child's owner, the two joined as text
/// (a hash anti-join against the ids passed as one `text[]`).
#[pg_extern(stable, parallel_unsafe, schema = "tenant_guard_internal")]
fn count_orphan_tenant_rows(
    tbl: pgrx::PgRelation,
    tenant_column: &str,
) -> TableIterator<'static, (name!(tenant_id, Option<String>), name!(rows, i64))> {
    let oid = tbl.oid();
    let (name, owner, _) = open_table_and_column(&tbl, tenant_column);
    drop(tbl);
    require_full_read(oid);
    // The tenant values are cast to text as the table's owner.
    privileged::require_trusted_columns(
        oid,
        &[tenant_column.to_owned()],
        owner,
        "the orphan count",
    );
    let Some((reg, id_col)) = registry() else {
        return TableIterator::new(Vec::new());
    };
    // The caller learns which ids the registry lacks: it must be able to
    // read the registry itself (else anyone could probe it for tenant ids).
    require_full_read(reg);
    crate::privileged::lock_then_name(reg, pg_sys::AccessShareLock as i32);
    let reg_sql = format!(
        "SELECT r.{id}::pg_catalog.text FROM {} r WHERE r.{id} IS NOT NULL",
        qualified_name(reg),
        id = ident(&id_col)
    );
    let ids: Vec<Option<String>> = as_table_owner(reg, || {
        Spi::connect(|c| {
            spi(c.select(&reg_sql, None, &[]))
                .map(|row| spi(row.get::<String>(1)))
                .collect()
        })
    });
    let ids: Vec<Option<String>> = ids.into_iter().filter(Option::is_some).collect();
    let col = ident(tenant_column);
    let sql = format!(
        "SELECT x.t, pg_catalog.count(*) \
           FROM (SELECT c.{col}::pg_catalog.text AS t FROM {} c WHERE c.{col} IS NOT NULL) x \
          WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.unnest($1::pg_catalog.text[]) r(id) \
                             WHERE r.id OPERATOR(pg_catalog.=) x.t) \
          GROUP BY x.t ORDER BY x.t",
        name
    );
    let rows: Vec<(Option<String>, i64)> = as_role(owner, || {
        Spi::connect(|c| {
            spi(c.select(&sql, None, &[ids.into()]))
                .map(|row| {
                    (
                        spi(row.get::<String>(1)),
                        spi(row.get::<i64>(2)).unwrap_or(0),
                    )
                })
                .collect()
        })
    });
    TableIterator::new(rows)
}

/// The foreign key `con` (the generators' catalog query), or 42704.
fn foreign_key(con: Oid) -> crate::integrity_sql::FkRow {
    crate::integrity_sql::foreign_key(con).unwrap_or_else(|| {
        Failure::new(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("foreign key with OID {} does not exist", u32::from(con)),
        )
        .raise()
    })
}

/// The tenant column of a table: its protection's, else the setting's.
fn tenant_column_of(rel: Oid) -> String {
    pinned(|| {
        one::<String>(
            "SELECT p.tenant_column::pg_catalog.text FROM tenant_guard.protected p \
              WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
            &[rel.into()],
        )
    })
    .unwrap_or_else(|| crate::protect::tenant_column(None))
}

/// Whether `role` may read every row of `rel`: SELECT, and row-level
/// security does not filter it (its own tables count as unfiltered: the
/// counts run with `SECURITY_NOFORCE_RLS`).
fn role_reads_all(role: Oid, rel: Oid) -> bool {
    // SAFETY: catalog look-ups for an existing role and relation.
    unsafe {
        if pg_sys::pg_class_aclcheck(rel, role, pg_sys::ACL_SELECT as pg_sys::AclMode)
            != pg_sys::AclResult::ACLCHECK_OK
        {
            return false;
        }
        if privileged::table_owner(rel) == role {
            return true;
        }
        pg_sys::check_enable_rls(rel, role, true)
            != pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
    }
}

fn is_builtin(ty: Oid) -> bool {
    u32::from(ty) < privileged::FIRST_NORMAL_OBJECT_ID
}

/// Counts the rows of a foreign key's child whose parent row (through the
/// key, compared with the key's own equality operators) has another tenant
/// (both tenants non-NULL, compared as text). Tenant columns default to the
/// tables' protections, else `tenant_guard.tenant_column`.
///
/// Whose rights: the caller must read every row of both tables (42501).
/// The count runs as the child's owner when it owns the parent too or may
/// read all of it (and the parent's tenant column is of a built-in type,
/// so no cast written by another role runs), else as the parent's owner
/// under the mirror conditions; when neither owner can, the result is NULL
/// with a WARNING.
#[pg_extern(stable, parallel_unsafe, schema = "tenant_guard_internal")]
fn count_cross_tenant_references(
    constraint_oid: Oid,
    child_tenant: default!(Option<&str>, "NULL"),
    parent_tenant: default!(Option<&str>, "NULL"),
) -> Option<i64> {
    let fk = foreign_key(constraint_oid);
    let ct = child_tenant.map_or_else(|| tenant_column_of(fk.child), str::to_owned);
    let pt = parent_tenant.map_or_else(|| tenant_column_of(fk.parent), str::to_owned);
    let (child_name, co, ct_type) = table_and_column(fk.child, &ct);
    let (parent_name, po, pt_type) = table_and_column(fk.parent, &pt);
    require_full_read(fk.child);
    require_full_read(fk.parent);
    // Between two owners, the key's equality operators must be the
    // catalog's too: an operator class of the other owner's would run its
    // code as this one.
    let catalog_ops = fk.op_schemas.iter().all(|n| n == "pg_catalog");
    // Every column compared or cast must be of a type of the role the count
    // runs as, or of a superuser, whoever owns the tables (a third role's
    // type carries that role's casts and operators).
    let mut child_cols = fk.cols.clone();
    child_cols.push(ct.clone());
    let mut parent_cols = fk.pcols.clone();
    parent_cols.push(pt.clone());
    let types_of = |role: Oid| {
        privileged::untrusted_columns(fk.child, &child_cols, role).is_empty()
            && privileged::untrusted_columns(fk.parent, &parent_cols, role).is_empty()
    };
    let run_as = if (co == po
        || (catalog_ops && role_reads_all(co, fk.parent) && is_builtin(pt_type)))
        && types_of(co)
    {
        Some(co)
    } else if catalog_ops && role_reads_all(po, fk.child) && is_builtin(ct_type) && types_of(po) {
        Some(po)
    } else {
        None
    };
    let Some(role) = run_as else {
        ereport!(
            WARNING,
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "tenant_guard: cross-tenant references of {} to {} not counted",
                qualified_name(fk.child),
                qualified_name(fk.parent)
            ),
            "Neither table's owner may read all of the other table, or a compared column is of a user-defined type of another role: the count would run another role's code."
        );
        return None;
    };
    let ops = &fk.ops;
    let c: Vec<&str> = fk.cols.iter().map(String::as_str).collect();
    let p: Vec<&str> = fk.pcols.iter().map(String::as_str).collect();
    let sql = format!(
        "SELECT pg_catalog.count(*) FROM {child_name} c JOIN {parent_name} p ON {} \
          WHERE c.{ct}::pg_catalog.text OPERATOR(pg_catalog.<>) p.{pt}::pg_catalog.text",
        integrity::key_join(&c, &p, ops),
        ct = ident(&ct),
        pt = ident(&pt)
    );
    as_role(role, || one::<i64>(&sql, &[]))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION tenant_guard_internal.count_null_tenant_rows(regclass, text, boolean) IS
  'rows of a table with a NULL tenant (caller must read every row; counts as the table owner)';
COMMENT ON FUNCTION tenant_guard_internal.count_orphan_tenant_rows(regclass, text) IS
  'rows per tenant id not in the registry (caller must read every row; counts as the table owners)';
COMMENT ON FUNCTION tenant_guard_internal.count_cross_tenant_references(oid, text, text) IS
  'child rows of a foreign key whose parent has another tenant (caller must read both tables; counts as an owner)';
"#,
    name = "audit_count_comments",
    requires = [
        count_null_tenant_rows,
        count_orphan_tenant_rows,
        count_cross_tenant_references
    ]
);
