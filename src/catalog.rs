//! Catalog look-ups and the definer-rights helper shared by the modules.

use crate::error::{spi, Code, Failure};
use crate::quote::ident;
use pgrx::prelude::*;

/// Runs `f` as the extension's owner, like a `SECURITY DEFINER` function.
///
/// Why: the key ring and the registry must be readable by the verification
/// path but by no application role. `SECURITY_RESTRICTED_OPERATION` is added
/// so nothing reached from here can `SET ROLE`, create temporary objects or
/// otherwise act on the elevated identity. Every query run inside names its
/// objects schema-qualified, so `search_path` cannot redirect it. If `f`
/// errors, PostgreSQL's (sub)transaction abort restores the previous user; on
/// the normal path the guard below does.
pub fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    as_user(crate::keys::ring().owner, f)
}

/// Runs `f` as `owner` (see [`as_owner`]).
pub fn as_user<R>(owner: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_sec: i32 = 0;
    // SAFETY: plain reads/writes of the backend's current user id.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_sec) };
    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
        }
    }
    let _restore = Restore(saved_user, saved_sec);
    let flags = saved_sec
        | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
        | pg_sys::SECURITY_RESTRICTED_OPERATION as i32;
    unsafe { pg_sys::SetUserIdAndSecContext(owner, flags) };
    f()
}

/// The role that owns the extension (whoever ran `CREATE EXTENSION`).
pub fn extension_owner() -> pg_sys::Oid {
    spi(Spi::get_one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'tenant_guard'",
    ))
    .unwrap_or(pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID))
}

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
    Spi::connect(|c| {
        let row = spi(c.select(
            "SELECT n.nspname::text, c.relname::text, c.relkind::text, c.relispartition, \
                    c.relrowsecurity, c.relforcerowsecurity, c.relname::text \
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.oid = $1",
            Some(1),
            &[oid.into()],
        ))
        .first();
        let nsp: String = spi(row.get(1)).unwrap_or_default();
        let rel: String = spi(row.get(2)).unwrap_or_default();
        let kind: String = spi(row.get(3)).unwrap_or_default();
        Relation {
            name: format!("{}.{}", ident(&nsp), ident(&rel)),
            display: spi(row.get(7)).unwrap_or_default(),
            relkind: kind.bytes().next().unwrap_or(b'?'),
            is_partition: spi(row.get(4)).unwrap_or(false),
            rls_enabled: spi(row.get(5)).unwrap_or(false),
            rls_forced: spi(row.get(6)).unwrap_or(false),
        }
    })
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

/// `(type, default expression)` of the tenant column; 42703 when missing.
pub fn column(oid: pg_sys::Oid, r: &Relation, col: &str) -> (String, Option<String>) {
    let found = Spi::connect(|c| {
        let rows = spi(c.select(
            "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod), pg_catalog.pg_get_expr(d.adbin, d.adrelid) \
               FROM pg_catalog.pg_attribute a \
               LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
              WHERE a.attrelid = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            None,
            &[oid.into(), col.into()],
        ));
        rows.into_iter().next().map(|row| {
            (
                spi(row.get::<String>(1)).unwrap_or_default(),
                spi(row.get::<String>(2)),
            )
        })
    });
    found.unwrap_or_else(|| {
        Failure::new(
            Code::ERRCODE_UNDEFINED_COLUMN,
            format!("column \"{col}\" of relation \"{}\" does not exist", r.display),
        )
        .hint("Name the tenant column with tenant_column => '...', or set tenant_guard.tenant_column.")
        .raise()
    })
}

/// 3F000 unless the schema exists.
pub fn require_schema(schema: &str) {
    let found = crate::error::one::<bool>(
        "SELECT true FROM pg_catalog.pg_namespace WHERE nspname = $1",
        &[schema.into()],
    );
    if found.is_none() {
        Failure::new(
            Code::ERRCODE_INVALID_SCHEMA_NAME,
            format!("schema \"{schema}\" does not exist"),
        )
        .raise();
    }
}
