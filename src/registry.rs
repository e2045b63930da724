//! Optional tenant registry: `set_context` refuses tenants that do not exist
//! there, or that are inactive.
//!
//! The registry table is the application's own (`tenants`, `accounts`, ...).
//! The look-up runs with the extension owner's rights (see `as_owner`), so
//! application roles need no grant on it and its row-level security, if
//! any, does not hide tenants from the check. The id is compared in the
//! column's own type so the primary key index is used; an id that cannot be
//! of that type (`abc` for a bigint column) is unknown without a query.

use crate::catalog::as_owner;
use crate::error::{invalid_parameter, one, spi, Code, Failure};
use crate::quote;
use pgrx::prelude::*;

/// How the registry's id column is compared with a tenant id (a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Integer,
    Uuid,
    Text,
    /// Any other type: compared as text (no index).
    Other,
}

impl IdKind {
    /// Classifies a type by its `format_type` name.
    pub fn of(type_name: &str) -> IdKind {
        match type_name {
            "smallint" | "integer" | "bigint" => IdKind::Integer,
            "uuid" => IdKind::Uuid,
            "text" | "name" => IdKind::Text,
            t if t.starts_with("character varying") || t.starts_with("character(") => IdKind::Text,
            _ => IdKind::Other,
        }
    }

    /// Whether `id` can be a value of this kind at all.
    pub fn admits(self, id: &str) -> bool {
        match self {
            IdKind::Integer => id.parse::<i64>().is_ok(),
            IdKind::Uuid => is_uuid(id),
            IdKind::Text | IdKind::Other => true,
        }
    }
}

fn is_uuid(s: &str) -> bool {
    // PostgreSQL also accepts braces and missing hyphens; tokens are expected
    // to carry the canonical form, anything else is simply not found.
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Builds the look-up: one row (`active`) when the tenant exists.
pub fn lookup_sql(
    table: &str,
    id_column: &str,
    kind: IdKind,
    active_column: Option<&str>,
) -> String {
    let id = quote::ident(id_column);
    let active = active_column.map_or("true".to_string(), |a| {
        format!("coalesce({}, false)", quote::ident(a))
    });
    let cond = match kind {
        IdKind::Integer => format!("{id} = $1::pg_catalog.int8"),
        IdKind::Uuid => format!("{id} = $1::pg_catalog.uuid"),
        IdKind::Text => format!("{id} = $1::pg_catalog.text"),
        IdKind::Other => format!("{id}::pg_catalog.text = $1::pg_catalog.text"),
    };
    format!("SELECT {active} FROM {table} WHERE {cond} LIMIT 1")
}

/// Lists every active tenant id, as text (what a bypass token reads).
pub fn all_sql(table: &str, id_column: &str, active_column: Option<&str>) -> String {
    let id = quote::ident(id_column);
    let filter = active_column.map_or(String::new(), |a| format!(" WHERE {}", quote::ident(a)));
    format!("SELECT {id}::pg_catalog.text FROM {table}{filter} ORDER BY 1")
}

/// The configured registry, as cached in the key ring.
#[derive(Debug, Clone)]
pub struct Registry {
    pub table: String,
    pub kind: IdKind,
    pub sql: String,
    pub all_sql: String,
}

/// Reads the registry configuration (inside `as_owner`).
pub fn load() -> Option<Registry> {
    Spi::connect(|c| {
        let rows = spi(c.select(
            "SELECT r.tenant_table::pg_catalog.text, r.id_column::pg_catalog.text, \
                    r.active_column::pg_catalog.text, \
                    pg_catalog.format_type(a.atttypid, a.atttypmod) \
               FROM tenant_guard.registry r \
               LEFT JOIN pg_catalog.pg_attribute a \
                 ON a.attrelid = r.tenant_table AND a.attname = r.id_column AND NOT a.attisdropped",
            None,
            &[],
        ));
        rows.into_iter().next().map(|row| {
            let table: String = spi(row.get(1)).unwrap_or_default();
            let id: String = spi(row.get(2)).unwrap_or_default();
            let active: Option<String> = spi(row.get(3));
            let ty: String = spi(row.get(4)).unwrap_or_default();
            let kind = IdKind::of(&ty);
            Registry {
                sql: lookup_sql(&table, &id, kind, active.as_deref()),
                all_sql: all_sql(&table, &id, active.as_deref()),
                table,
                kind,
            }
        })
    })
}

/// Whether a tenant may be used: `Ok(())`, or the reason for refusing it.
pub fn check(reg: &Registry, tenant: &str) -> Result<(), String> {
    if !reg.kind.admits(tenant) {
        return Err(format!(
            "tenant \"{tenant}\" is not in the registry {}",
            reg.table
        ));
    }
    let found = as_owner(|| one::<bool>(&reg.sql, &[tenant.into()]));
    match found {
        None => Err(format!(
            "tenant \"{tenant}\" is not in the registry {}",
            reg.table
        )),
        Some(false) => Err(format!(
            "tenant \"{tenant}\" is inactive in the registry {}",
            reg.table
        )),
        Some(true) => Ok(()),
    }
}

/// Every active tenant of the registry (for a bypass token).
pub fn all_tenants(reg: &Registry) -> Vec<String> {
    as_owner(|| {
        Spi::connect(|c| {
            spi(c.select(&reg.all_sql, None, &[]))
                .filter_map(|row| spi(row.get::<String>(1)))
                .collect()
        })
    })
}

/// Makes `set_context` refuse tenants that are not rows of `tenant_table`
/// (or whose `active_column` is not true). `tenant_table => NULL` turns the
/// check off.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn use_registry(
    tenant_table: Option<pgrx::PgRelation>,
    id_column: default!(Option<&str>, "'id'"),
    active_column: default!(Option<&str>, "NULL"),
) {
    let Some(rel) = tenant_table else {
        as_owner(|| spi(Spi::run("DELETE FROM tenant_guard.registry")));
        return;
    };
    let table = rel.oid();
    let Some(id_column) = id_column else {
        invalid_parameter("id_column must not be NULL").raise()
    };
    let relkind = one::<i8>(
        "SELECT relkind::\"char\" FROM pg_catalog.pg_class WHERE oid = $1",
        &[table.into()],
    );
    if !matches!(relkind.map(|k| k as u8), Some(b'r') | Some(b'p')) {
        Failure::new(
            Code::ERRCODE_WRONG_OBJECT_TYPE,
            "the tenant registry must be a table",
        )
        .raise();
    }
    let column_type = |col: &str| {
        one::<String>(
            "SELECT pg_catalog.format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute \
              WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped",
            &[table.into(), col.into()],
        )
    };
    let missing = |col: &str| {
        Failure::new(
            Code::ERRCODE_UNDEFINED_COLUMN,
            format!("column \"{col}\" does not exist in the registry table"),
        )
        .raise()
    };
    if column_type(id_column).is_none() {
        missing(id_column);
    }
    if let Some(a) = active_column {
        match column_type(a) {
            None => missing(a),
            Some(t) if t != "boolean" => {
                invalid_parameter(format!("column \"{a}\" must be boolean, not {t}")).raise()
            }
            Some(_) => {}
        }
    }
    as_owner(|| {
        spi(Spi::run("DELETE FROM tenant_guard.registry"));
        spi(Spi::run_with_args(
            "INSERT INTO tenant_guard.registry (tenant_table, id_column, active_column) VALUES ($1, $2, $3)",
            &[
                pgrx::datum::DatumWithOid::from(table),
                id_column.into(),
                active_column.into(),
            ],
        ));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(IdKind::of("bigint"), IdKind::Integer);
        assert_eq!(IdKind::of("uuid"), IdKind::Uuid);
        assert_eq!(IdKind::of("character varying(40)"), IdKind::Text);
        assert_eq!(IdKind::of("citext"), IdKind::Other);
        assert!(IdKind::Integer.admits("-42"));
        assert!(!IdKind::Integer.admits("42abc"));
        assert!(!IdKind::Integer.admits("99999999999999999999"));
        assert!(IdKind::Uuid.admits("0b9e7c2a-54d1-4f3a-9c51-6f1e2d3c4b5a"));
        assert!(!IdKind::Uuid.admits("0b9e7c2a54d14f3a9c516f1e2d3c4b5a"));
        assert!(!IdKind::Uuid.admits("zb9e7c2a-54d1-4f3a-9c51-6f1e2d3c4b5a"));
    }

    #[test]
    fn lookup_is_quoted_and_typed() {
        assert_eq!(
            lookup_sql(
                "public.\"Tenants\"",
                "tenantId",
                IdKind::Integer,
                Some("is\"active")
            ),
            "SELECT coalesce(\"is\"\"active\", false) FROM public.\"Tenants\" \
             WHERE \"tenantId\" = $1::pg_catalog.int8 LIMIT 1"
        );
        assert_eq!(
            all_sql("public.\"Tenants\"", "tenantId", Some("is\"active")),
            "SELECT \"tenantId\"::pg_catalog.text FROM public.\"Tenants\" WHERE \"is\"\"active\" ORDER BY 1"
        );
        assert_eq!(
            lookup_sql("t", "id", IdKind::Other, None),
            "SELECT true FROM t WHERE \"id\"::pg_catalog.text = $1::pg_catalog.text LIMIT 1"
        );
    }
}
