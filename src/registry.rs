//! Optional tenant registry: `set_context` refuses tenants that do not exist
//! there, or that are inactive.
//!
//! The registry table is the application's own (`tenants`, `accounts`, ...),
//! possibly owned by the application role. The look-up therefore runs as
//! **the registry table's owner** (`privileged::as_role`: restricted,
//! `search_path` pinned, forced row-level security not applied), never as
//! the extension owner: whatever the table's owner attached to it runs with
//! the owner's rights only. Application roles need no grant on it. The
//! table is named from `nspname`/`relname`, the id is compared in the
//! column's own (built-in) type with `OPERATOR(pg_catalog.=)` so the primary
//! key index is used; an id that cannot be of that type (`abc` for a bigint
//! column) is unknown without a query. Only integer, uuid and text-like id
//! columns (or domains over them) are accepted: comparing any other type
//! would mean casting a user-defined type.

use crate::error::{invalid_parameter, one, spi, Code, Failure};
use crate::privileged::{as_extension_owner, as_role, pinned};
use crate::quote;
use pgrx::prelude::*;
use std::ffi::CStr;

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

    /// The `pg_catalog` type ids of this kind are compared in. Never
    /// reached with `Other` (refused by use_registry and load): text keeps
    /// the statement well-formed.
    pub fn catalog_type(self) -> &'static str {
        match self {
            IdKind::Integer => "int8",
            IdKind::Uuid => "uuid",
            IdKind::Text | IdKind::Other => "text",
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
    let ty = kind.catalog_type();
    format!("SELECT {active} FROM {table} WHERE {id} OPERATOR(pg_catalog.=) $1::pg_catalog.{ty} LIMIT 1")
}

/// [`lookup_sql`] that also says where the row version it read lives (its
/// table, `ctid` and inserting transaction), so a later check of the same
/// tenant can see, without a query, that this version is still the visible
/// one (see [`still_seen`]). System columns: no user column can take these
/// names.
pub fn seen_sql(table: &str, id_column: &str, kind: IdKind, active_column: Option<&str>) -> String {
    let id = quote::ident(id_column);
    let active = active_column.map_or("true".to_string(), |a| {
        format!("coalesce({}, false)", quote::ident(a))
    });
    let ty = kind.catalog_type();
    format!(
        "SELECT {active}, tableoid, ctid, xmin::pg_catalog.text FROM {table} \
          WHERE {id} OPERATOR(pg_catalog.=) $1::pg_catalog.{ty} LIMIT 1"
    )
}

/// Builds the look-up of a set of ids (`$1`, a text array): how many
/// distinct active ids of the set the registry holds. One statement for a
/// multi-tenant context, whatever its size.
pub fn lookup_many_sql(
    table: &str,
    id_column: &str,
    kind: IdKind,
    active_column: Option<&str>,
) -> String {
    let id = quote::ident(id_column);
    let ty = kind.catalog_type();
    let active = active_column.map_or(String::new(), |a| {
        format!(" AND coalesce({}, false)", quote::ident(a))
    });
    format!(
        "SELECT pg_catalog.count(DISTINCT {id}) FROM {table} \
          WHERE {id} OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]::pg_catalog.{ty}[]){active}"
    )
}

/// Lists every active tenant id, as text (what a bypass token reads).
pub fn all_sql(table: &str, id_column: &str, active_column: Option<&str>) -> String {
    let id = quote::ident(id_column);
    let filter = active_column.map_or(String::new(), |a| format!(" WHERE {}", quote::ident(a)));
    format!(
        "SELECT {id}::pg_catalog.text FROM {table}{filter} ORDER BY 1 USING OPERATOR(pg_catalog.<)"
    )
}

/// The configured registry, as cached in the key ring.
#[derive(Debug, Clone)]
pub struct Registry {
    /// `"schema"."table"`, from the catalog at load time.
    pub table: String,
    pub relid: pg_sys::Oid,
    /// Whose rights the look-ups run with.
    pub owner: pg_sys::Oid,
    pub kind: IdKind,
    /// The id column's name (for the organisation mapping).
    pub id_column: String,
    pub sql: String,
    /// `sql` with the row version's address (see [`seen_sql`]).
    pub seen_sql: String,
    /// The table's schema (its changes drop the key ring: `keys::ring`).
    pub namespace: pg_sys::Oid,
    /// Whether a unique index (immediate, valid, not partial, on the id
    /// column alone) makes the look-up's row the only one with its id: only
    /// then is a row remembered (see [`still_seen`]).
    pub unique_id: bool,
    pub many_sql: String,
    pub all_sql: String,
    /// Whether every change to the registry's ids or active flags drops the
    /// key ring in every session ([`watched`]): then the set a bypass
    /// context reads is kept with the ring, across statements and
    /// transactions, instead of being read again by every statement.
    pub watched: bool,
}

/// The trigger `use_registry` puts on the registry table.
pub const WATCH_TRIGGER: &str = "tenant_guard_registry_changed";

/// The statements that make every change to the registry's ids or active
/// flags drop the key ring in every session: an AFTER row trigger calling
/// `tenant_guard_internal.config_changed(id, active)` (a relation-cache
/// invalidation of the table, sent at commit), enabled ALWAYS so that it
/// also fires under `session_replication_role = replica` (logical
/// replication's apply fires row triggers only, and only those enabled
/// ALWAYS or REPLICA). It fires on every UPDATE, not `UPDATE OF` the two
/// columns: PostgreSQL fires a column trigger only for columns the SET
/// list names, so a change a BEFORE trigger makes (`active` derived from a
/// `status`) would not reach it; the function compares the two columns of
/// the stored row with the old one instead. TRUNCATE needs no trigger: it
/// gives the table new storage, which invalidates it already. `table` is
/// quoted; the column names are passed as string literals.
pub fn watch_sql(table: &str, id_column: &str, active_column: Option<&str>) -> [String; 2] {
    let columns = std::iter::once(id_column)
        .chain(active_column)
        .map(crate::quote::literal)
        .collect::<Vec<_>>()
        .join(", ");
    [
        format!(
            "CREATE OR REPLACE TRIGGER \"{WATCH_TRIGGER}\" AFTER INSERT OR UPDATE OR DELETE \
             ON {table} FOR EACH ROW EXECUTE FUNCTION tenant_guard_internal.config_changed({columns})"
        ),
        format!("ALTER TABLE {table} ENABLE ALWAYS TRIGGER \"{WATCH_TRIGGER}\""),
    ]
}

/// Whether `rel` carries the trigger [`watch_sql`] creates, unchanged in
/// what matters: the same function with the id and active columns' names
/// as its arguments, AFTER, FOR EACH ROW, on INSERT, UPDATE (of every
/// column: no column list) and DELETE, enabled ALWAYS, without a WHEN
/// condition; and whether every
/// change reaches it: a plain table (rows routed through a partitioned
/// parent, or inherited by a child, would not fire it). Its owner may drop,
/// disable or replace the trigger (that invalidates the table, so the ring
/// is read again): the set is then read by every statement, as without it.
///
/// # Safety
/// `rel` is an open relation.
unsafe fn watched(rel: pg_sys::Relation, id_column: &str, active_column: Option<&str>) -> bool {
    // SAFETY: the relation's cached form and trigger descriptor, read while
    // it is open; catalog look-ups of an existing function.
    unsafe {
        let form = (*rel).rd_rel;
        if (*form).relkind != pg_sys::RELKIND_RELATION as std::ffi::c_char
            || (*form).relispartition
            || (*form).relhassubclass
        {
            return false;
        }
        let desc = (*rel).trigdesc;
        if desc.is_null() || (*desc).numtriggers <= 0 || (*desc).triggers.is_null() {
            return false;
        }
        let triggers = std::slice::from_raw_parts((*desc).triggers, (*desc).numtriggers as usize);
        let events = (pg_sys::TRIGGER_TYPE_INSERT
            | pg_sys::TRIGGER_TYPE_UPDATE
            | pg_sys::TRIGGER_TYPE_DELETE) as i16;
        triggers.iter().any(|t| {
            !t.tgname.is_null()
                && CStr::from_ptr(t.tgname).to_bytes() == WATCH_TRIGGER.as_bytes()
                && t.tgenabled as u8 == pg_sys::TRIGGER_FIRES_ALWAYS
                && t.tgtype & pg_sys::TRIGGER_TYPE_LEVEL_MASK as i16
                    == pg_sys::TRIGGER_TYPE_ROW as i16
                && t.tgtype & pg_sys::TRIGGER_TYPE_TIMING_MASK as i16
                    == pg_sys::TRIGGER_TYPE_AFTER as i16
                && t.tgtype & events == events
                && t.tgqual.is_null()
                && t.tgnattr == 0
                && trigger_args(t).is_some_and(|args| {
                    args.iter()
                        .copied()
                        .eq(std::iter::once(id_column).chain(active_column))
                })
                && is_config_changed(t.tgfoid)
        })
    }
}

/// A trigger's arguments, as UTF-8 (None if one is not).
///
/// # Safety
/// `t` is a trigger of an open relation's descriptor.
unsafe fn trigger_args(t: &pg_sys::Trigger) -> Option<Vec<&str>> {
    if t.tgnargs <= 0 {
        return Some(Vec::new());
    }
    if t.tgargs.is_null() {
        return None;
    }
    // SAFETY: tgnargs C strings, kept with the descriptor (caller).
    unsafe {
        std::slice::from_raw_parts(t.tgargs, t.tgnargs as usize)
            .iter()
            .map(|&a| CStr::from_ptr(a).to_str().ok())
            .collect()
    }
}

/// Whether `func` is `tenant_guard_internal.config_changed()`.
fn is_config_changed(func: pg_sys::Oid) -> bool {
    // SAFETY: catalog cache look-ups; the names are palloc'd C strings or
    // NULL.
    unsafe {
        let name = pg_sys::get_func_name(func);
        if name.is_null() || CStr::from_ptr(name).to_bytes() != b"config_changed" {
            return false;
        }
        let schema = pg_sys::get_namespace_name(pg_sys::get_func_namespace(func));
        !schema.is_null() && CStr::from_ptr(schema).to_bytes() == b"tenant_guard_internal"
    }
}

/// The id column's type name, a domain resolved to its base type.
const COLUMN_TYPE_SQL: &str = "SELECT pg_catalog.format_type(\
        CASE WHEN t.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog.\"char\" \
             THEN t.typbasetype ELSE a.atttypid END, \
        CASE WHEN t.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog.\"char\" \
             THEN t.typtypmod ELSE a.atttypmod END) \
   FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid \
  WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name \
    AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped";

/// What [`load`] needs of the registry table, read from the relation cache
/// and the system caches, which follow every committed change they have
/// been told of (an invalidation), never from the statement's snapshot:
/// read through SQL, a table renamed after the statement began would keep
/// its old name, and the look-up would later read whatever then has that
/// name. Takes `ACCESS SHARE` on the table, as the look-up does.
struct Described {
    /// `"schema"."table"`.
    table: String,
    owner: pg_sys::Oid,
    namespace: pg_sys::Oid,
    /// The id column's type name (`format_type`), a domain resolved to its
    /// base type; empty when there is no such column.
    id_type: String,
    /// A unique index makes the id column unique: immediate (a deferred
    /// one allows duplicates until commit), valid, not partial, not on an
    /// expression, on that column alone, in the column's collation.
    unique_id: bool,
    /// See [`watched`].
    watched: bool,
}

fn describe(relid: pg_sys::Oid, id_column: &str, active_column: Option<&str>) -> Option<Described> {
    // SAFETY: the relation is opened with a lock (or not at all: NULL) and
    // closed when `rel` is dropped, the lock kept to the end of the
    // transaction; the names and the index tuple are read while it is
    // open; every syscache entry found is released.
    unsafe {
        let raw = pg_sys::try_relation_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        if raw.is_null() {
            return None;
        }
        let rel = pgrx::PgRelation::from_pg_owned(raw);
        // Named as every privileged statement names a table (the same
        // text `guarded` compares with later).
        let class = crate::privileged::class_row_unpinned(relid)?;
        let (table, owner, namespace) = (class.name, class.owner, class.namespace);
        let column = rel
            .tuple_desc()
            .iter()
            .find(|a| !a.attisdropped && a.attnum > 0 && a.name() == id_column)
            .map(|a| (a.attnum, a.atttypid, a.atttypmod, a.attcollation));
        let Some((attnum, typid, typmod, collation)) = column else {
            return Some(Described {
                table,
                owner,
                namespace,
                id_type: String::new(),
                unique_id: false,
                watched: false,
            });
        };
        let active_attnum = active_column.map(|name| {
            rel.tuple_desc()
                .iter()
                .find(|a| !a.attisdropped && a.attnum > 0 && a.name() == name)
                .map_or(0, |a| a.attnum)
        });
        let mut attnums = vec![attnum];
        attnums.extend(active_attnum);
        let watched = !attnums.contains(&0) && watched(raw, id_column, active_column);
        let mut base_typmod = typmod;
        let base = pg_sys::getBaseTypeAndTypmod(typid, &mut base_typmod);
        let name = pg_sys::format_type_with_typemod(base, base_typmod);
        let id_type = std::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned();
        let indexes = pgrx::PgList::<pg_sys::Oid>::from_pg(pg_sys::RelationGetIndexList(raw));
        let unique_id = indexes.iter_oid().any(|index| {
            let tuple = pg_sys::SearchSysCache1(
                pg_sys::SysCacheIdentifier::INDEXRELID as i32,
                pg_sys::Datum::from(index),
            );
            if tuple.is_null() {
                return false;
            }
            let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_index>(tuple);
            let unique = (*form).indisunique
                && (*form).indimmediate
                && (*form).indisvalid
                && (*form).indnkeyatts == 1
                && *(*form).indkey.values.as_ptr() == attnum
                && pg_sys::heap_attisnull(
                    tuple,
                    pg_sys::Anum_pg_index_indpred as i32,
                    std::ptr::null_mut(),
                )
                && pg_sys::heap_attisnull(
                    tuple,
                    pg_sys::Anum_pg_index_indexprs as i32,
                    std::ptr::null_mut(),
                )
                && {
                    // The look-up compares in the column's collation: an
                    // index in another (a "C" index on a case-insensitive
                    // column) lets ids repeat under the look-up's `=`.
                    let mut null = false;
                    let v = pg_sys::SysCacheGetAttr(
                        pg_sys::SysCacheIdentifier::INDEXRELID as i32,
                        tuple,
                        pg_sys::Anum_pg_index_indcollation as pg_sys::AttrNumber,
                        &mut null,
                    );
                    !null && *(*v.cast_mut_ptr::<pg_sys::oidvector>()).values.as_ptr() == collation
                };
            pg_sys::ReleaseSysCache(tuple);
            unique
        });
        Some(Described {
            table,
            owner,
            namespace,
            id_type,
            unique_id,
            watched,
        })
    }
}

/// Reads the registry configuration: the settings row as the extension
/// owner, then the table's name, owner and id type from the catalog.
pub fn load() -> Option<Registry> {
    let conf: Option<(pg_sys::Oid, String, Option<String>)> = as_extension_owner(|| {
        Spi::connect(|c| {
            let rows = spi(c.select(
                "SELECT r.tenant_table::pg_catalog.oid, r.id_column::pg_catalog.text, \
                        r.active_column::pg_catalog.text FROM tenant_guard.registry r",
                None,
                &[],
            ));
            rows.into_iter().next().map(|row| {
                (
                    crate::error::present(
                        row.get::<pg_sys::Oid>(1),
                        "tenant_guard.registry.tenant_table",
                    ),
                    crate::error::present(row.get::<String>(2), "tenant_guard.registry.id_column"),
                    spi(row.get::<String>(3)),
                )
            })
        })
    });
    let (relid, id, active) = conf?;
    let found = describe(relid, &id, active.as_deref());
    // A registry whose table was dropped (or whose id column is gone) fails
    // closed: every tenant is refused until use_registry is run again.
    let Some(Described {
        table,
        owner,
        namespace,
        id_type: ty,
        unique_id,
        watched,
    }) = found
    else {
        return Some(Registry {
            table: format!("with OID {}", u32::from(relid)),
            relid,
            owner: pg_sys::Oid::INVALID,
            kind: IdKind::Other,
            id_column: id,
            sql: String::new(),
            seen_sql: String::new(),
            namespace: pg_sys::Oid::INVALID,
            unique_id: false,
            many_sql: String::new(),
            all_sql: String::new(),
            watched: false,
        });
    };
    let kind = IdKind::of(&ty);
    Some(Registry {
        sql: lookup_sql(&table, &id, kind, active.as_deref()),
        seen_sql: seen_sql(&table, &id, kind, active.as_deref()),
        namespace,
        unique_id,
        many_sql: lookup_many_sql(&table, &id, kind, active.as_deref()),
        all_sql: all_sql(&table, &id, active.as_deref()),
        watched,
        id_column: id,
        table,
        relid,
        owner,
        kind,
    })
}

/// Maps an issuer's organisation ids to tenant ids through the registry
/// column `column` (text-like), as the registry table's owner: one indexed
/// look-up per organisation. An organisation that no row names, or that
/// several rows name, is refused.
pub fn map_orgs(reg: &Registry, column: &str, orgs: &[String]) -> Result<Vec<String>, String> {
    if reg.owner == pg_sys::Oid::INVALID || reg.kind == IdKind::Other {
        return Err(format!(
            "the registry {} cannot be used; run tenant_guard.use_registry again",
            reg.table
        ));
    }
    let ty = pinned(|| one::<String>(COLUMN_TYPE_SQL, &[reg.relid.into(), column.into()]));
    if ty.as_deref().map(IdKind::of) != Some(IdKind::Text) {
        return Err(format!(
            "the registry {} has no text column \"{}\" of organisation ids",
            reg.table,
            crate::token::clip(column)
        ));
    }
    let sql = format!(
        "SELECT {}::pg_catalog.text FROM {} WHERE {} OPERATOR(pg_catalog.=) $1::pg_catalog.text LIMIT 2",
        quote::ident(&reg.id_column),
        reg.table,
        quote::ident(column)
    );
    orgs.iter()
        .map(|org| {
            let found: Vec<String> = guarded(reg, || {
                as_role(reg.owner, || {
                    Spi::connect(|c| {
                        spi(c.select(&sql, None, &[org.as_str().into()]))
                            .filter_map(|row| spi(row.get::<String>(1)))
                            .collect()
                    })
                })
            })?;
            match found.as_slice() {
                [t] => Ok(t.clone()),
                [] => Err(format!(
                    "organisation \"{}\" is not in the registry {}",
                    crate::token::clip(org),
                    reg.table
                )),
                _ => Err(format!(
                    "organisation \"{}\" names several tenants in the registry {}",
                    crate::token::clip(org),
                    reg.table
                )),
            }
        })
        .collect()
}

/// Runs `f`, a statement naming the registry table, with that name held to
/// the table the settings describe: schema names pinned for the length of
/// `f` (a `SHARE` lock on `pg_namespace`, taken only if free at once, and
/// released after), the table locked (`ACCESS SHARE`, as the statement
/// takes it), and its current name checked against the settings' after
/// reading pending invalidations. Otherwise a role owning the table's
/// schema could drop the table (a schema's owner may) or rename the schema
/// and put a look-alike, whose policies or view would run as the registry
/// table's owner, under the name the settings hold. `Err`: the reason the
/// registry could not be read (a refusal: it fails closed).
fn guarded<R>(reg: &Registry, f: impl FnOnce() -> R) -> Result<R, String> {
    // SAFETY: locks by OID and a cache read; the pin taken here is released
    // here on the normal path (an error releases it with the transaction or
    // subtransaction, as every lock).
    unsafe {
        let pin = !pg_sys::RecoveryInProgress();
        if pin
            && !pg_sys::ConditionalLockRelationOid(
                pg_sys::NamespaceRelationId,
                pg_sys::ShareLock as pg_sys::LOCKMODE,
            )
        {
            return Err(format!(
                "the registry {} cannot be read while a schema is being changed in another transaction; try again",
                reg.table
            ));
        }
        let unpin = || {
            if pin {
                pg_sys::UnlockRelationOid(
                    pg_sys::NamespaceRelationId,
                    pg_sys::ShareLock as pg_sys::LOCKMODE,
                );
            }
        };
        pg_sys::LockRelationOid(reg.relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        pg_sys::AcceptInvalidationMessages();
        let current = crate::privileged::class_row_unpinned(reg.relid).map(|c| c.name);
        if current.as_deref() != Some(reg.table.as_str()) {
            unpin();
            return Err(format!(
                "the registry table {} was renamed, moved or dropped while it was read; try again",
                reg.table
            ));
        }
        let r = f();
        unpin();
        Ok(r)
    }
}

/// Whether a tenant may be used: `Ok(())`, or the reason for refusing it.
pub fn check(reg: &Registry, tenant: &str) -> Result<(), String> {
    if reg.owner == pg_sys::Oid::INVALID {
        return Err(format!(
            "the registry table {} no longer exists; run tenant_guard.use_registry again",
            reg.table
        ));
    }
    if reg.kind == IdKind::Other {
        return Err(format!(
            "the registry {} has no id column of an integer, uuid or text type; run tenant_guard.use_registry again",
            reg.table
        ));
    }
    if !reg.kind.admits(tenant) {
        return Err(format!(
            "tenant \"{tenant}\" is not in the registry {}",
            reg.table
        ));
    }
    if still_seen(reg, tenant) {
        return Ok(());
    }
    let found = guarded(reg, || look_up(reg, tenant))?;
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

/// Whether every tenant of `tenants` may be used: one statement for the
/// whole set; on failure, the first refused tenant's reason.
pub fn check_all(reg: &Registry, tenants: &[String]) -> Result<(), String> {
    // A token's tenant is usually its only read tenant too (["a", "a"]).
    if tenants.iter().all(|t| *t == tenants[0]) {
        return tenants.first().map_or(Ok(()), |t| check(reg, t));
    }
    // Every tenant found active before, by row versions still visible (the
    // first miss ends the probe).
    if reg.owner != pg_sys::Oid::INVALID && tenants.iter().all(|t| still_seen(reg, t)) {
        return Ok(());
    }
    if reg.owner == pg_sys::Oid::INVALID
        || reg.kind == IdKind::Other
        || !tenants.iter().all(|t| reg.kind.admits(t))
    {
        return tenants.iter().try_for_each(|t| check(reg, t));
    }
    let distinct = distinct_ids(reg.kind, tenants);
    let found = guarded(reg, || {
        as_role(reg.owner, || {
            one::<i64>(&reg.many_sql, &[tenants.to_vec().into()])
        })
    })?
    .unwrap_or(0);
    if usize::try_from(found).unwrap_or(0) >= distinct {
        Ok(())
    } else {
        // Which one: the slow path runs only when a tenant is refused.
        tenants.iter().try_for_each(|t| check(reg, t))
    }
}

/// The registry's answer for one tenant (`None`: no row), as the table's
/// owner. Where the answer is "active" and the row is one of the registry
/// table itself, remembers the row version it came from (see
/// [`still_seen`]).
fn look_up(reg: &Registry, tenant: &str) -> Option<bool> {
    // Not on a Citus node: there the registry may be a Citus table, whose
    // rows live on other nodes (the row addresses would be theirs).
    if crate::citus::loaded() {
        return as_role(reg.owner, || one::<bool>(&reg.sql, &[tenant.into()]));
    }
    let generation = crate::keys::current_generation();
    type Row = (
        Option<bool>,
        Option<pg_sys::Oid>,
        Option<pg_sys::ItemPointerData>,
        Option<String>,
    );
    let row: Option<Row> = as_role(reg.owner, || {
        Spi::connect(|c| {
            let rows = spi(c.select(&reg.seen_sql, Some(1), &[tenant.into()]));
            rows.into_iter().next().map(|r| {
                (
                    spi(r.get::<bool>(1)),
                    spi(r.get::<pg_sys::Oid>(2)),
                    spi(r.get::<pg_sys::ItemPointerData>(3)),
                    spi(r.get::<String>(4)),
                )
            })
        })
    });
    let (active, tableoid, tid, xmin) = row?;
    // The look-up may have read invalidations (a changed key ring or
    // registry table): then what it read is not remembered under the old
    // generation.
    if let (Some(true), Some(tableoid), Some(tid), Some(xmin), Some(generation)) = (
        active,
        tableoid,
        tid,
        xmin.and_then(|x| x.parse::<u32>().ok()),
        generation,
    ) {
        if tableoid == reg.relid
            && reg.unique_id
            && crate::keys::current_generation() == Some(generation)
        {
            remember(generation, reg.relid, tenant, SeenRow { tid, xmin });
        }
    }
    active.or(Some(false))
}

/// (Without a unique id, another row with the same id may come first in a
/// later look-up: nothing is remembered then.)
///
/// Where a row version found active lives: its `ctid` and the transaction
/// that inserted it (`xmin`, as stored: freezing keeps it).
#[derive(Clone, Copy)]
struct SeenRow {
    tid: pg_sys::ItemPointerData,
    xmin: u32,
}

/// Tenants found active, by id as the token names it, under one key ring
/// (`generation`, which changes whenever the registry settings, or the
/// registry table's definition or storage, are invalidated: `keys::ring`
/// watches it) and one registry table.
struct Seen {
    generation: u64,
    relid: pg_sys::Oid,
    rows: std::collections::HashMap<String, SeenRow>,
}

/// At most this many tenants are remembered per backend (then it starts
/// over): about 80 bytes each.
const SEEN_MAX: usize = 4096;

thread_local! {
    static SEEN: std::cell::RefCell<Seen> = std::cell::RefCell::new(Seen {
        generation: u64::MAX,
        relid: pg_sys::Oid::INVALID,
        rows: std::collections::HashMap::new(),
    });
}

fn remember(generation: u64, relid: pg_sys::Oid, tenant: &str, row: SeenRow) {
    SEEN.with(|s| {
        let mut s = s.borrow_mut();
        if s.generation != generation || s.relid != relid || s.rows.len() >= SEEN_MAX {
            s.rows.clear();
            s.generation = generation;
            s.relid = relid;
        }
        s.rows.insert(tenant.to_owned(), row);
    });
}

/// Whether `tenant` was found active by an earlier look-up whose row
/// version is still the one this statement's look-up would read: the same
/// version (same address, same inserting transaction) visible to the
/// snapshot that look-up would use. Any change to the row (deactivating,
/// renaming, deleting it) makes a new version or none, so the old one is no
/// longer visible to later snapshots, and the look-up runs again. What
/// moves rows without changing them (`VACUUM FULL`, `CLUSTER`) or changes
/// the table (`TRUNCATE`, `ALTER TABLE`) invalidates the table, hence the
/// key ring (a new generation). Reads one heap tuple's header; runs no SQL
/// and nothing any role defined, and reads no user data.
///
/// Only where the look-up would use the statement's snapshot (no
/// transaction id assigned: pgrx then runs it read-only, with the active
/// snapshot); after a write in the transaction the look-up runs.
fn still_seen(reg: &Registry, tenant: &str) -> bool {
    let Some(generation) = crate::keys::current_generation() else {
        return false;
    };
    let row = SEEN.with(|s| {
        let s = s.borrow();
        if s.generation == generation && s.relid == reg.relid {
            s.rows.get(tenant).copied()
        } else {
            None
        }
    });
    let Some(row) = row else {
        return false;
    };
    // SAFETY: reads of this backend's state; the relation is opened with
    // the lock the look-up would take (kept to the end of the transaction,
    // as the look-up keeps it) and closed here; the buffer heap_fetch
    // pins is released here; the tuple header is read while it is pinned
    // (a pinned page is not pruned, and a visible tuple's xmin does not
    // change).
    unsafe {
        if pg_sys::GetCurrentTransactionIdIfAny() != pg_sys::InvalidTransactionId
            || !pg_sys::ActiveSnapshotSet()
        {
            return false;
        }
        let rel = pg_sys::try_table_open(reg.relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        if rel.is_null() {
            return false;
        }
        // Taking the lock read pending invalidations: the ring must still
        // be the one the row was remembered under.
        let held =
            crate::keys::current_generation() == Some(generation) && version_visible(rel, row);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        held
    }
}

/// Whether the tuple at `row.tid` exists, is visible to the active
/// snapshot and was inserted by `row.xmin`.
///
/// # Safety
/// `rel` is an open heap relation; a snapshot is active.
unsafe fn version_visible(rel: pg_sys::Relation, row: SeenRow) -> bool {
    let block = (u32::from(row.tid.ip_blkid.bi_hi) << 16) | u32::from(row.tid.ip_blkid.bi_lo);
    // SAFETY: per the caller; heap_fetch pins the page when it returns
    // true (released below) and releases it itself otherwise (keep_buf
    // false). A block past the end would raise: checked first.
    unsafe {
        if block >= pg_sys::RelationGetNumberOfBlocksInFork(rel, pg_sys::ForkNumber::MAIN_FORKNUM) {
            return false;
        }
        let mut tuple: pg_sys::HeapTupleData = std::mem::zeroed();
        tuple.t_self = row.tid;
        let mut buffer: pg_sys::Buffer = pg_sys::InvalidBuffer as pg_sys::Buffer;
        let found = pg_sys::heap_fetch(
            rel,
            pg_sys::GetActiveSnapshot(),
            &mut tuple,
            &mut buffer,
            false,
        );
        let same = found
            && !tuple.t_data.is_null()
            && u32::from((*tuple.t_data).t_choice.t_heap.t_xmin) == row.xmin;
        if buffer != pg_sys::InvalidBuffer as pg_sys::Buffer {
            pg_sys::ReleaseBuffer(buffer);
        }
        same
    }
}

/// How many distinct values `ids` are in the column's type (`7` and `07`
/// are one integer; uuids ignore case).
pub fn distinct_ids(kind: IdKind, ids: &[String]) -> usize {
    let mut set: Vec<String> = ids
        .iter()
        .map(|t| match kind {
            IdKind::Integer => t
                .parse::<i64>()
                .map_or_else(|_| t.clone(), |n| n.to_string()),
            IdKind::Uuid => t.to_ascii_lowercase(),
            IdKind::Text | IdKind::Other => t.clone(),
        })
        .collect();
    set.sort();
    set.dedup();
    set.len()
}

/// Every active tenant of the registry (for a bypass token).
pub fn all_tenants(reg: &Registry) -> Vec<String> {
    if reg.kind == IdKind::Other {
        return Vec::new();
    }
    guarded(reg, || {
        as_role(reg.owner, || {
            Spi::connect(|c| {
                spi(c.select(&reg.all_sql, None, &[]))
                    .filter_map(|row| spi(row.get::<String>(1)))
                    .collect()
            })
        })
    })
    .unwrap_or_else(|why| {
        Failure::new(
            Code::ERRCODE_LOCK_NOT_AVAILABLE,
            "the registry cannot be read now",
        )
        .detail(why)
        .raise()
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
    crate::error::require_writable(c"tenant_guard.use_registry()");
    let previous: Option<pg_sys::Oid> = as_extension_owner(|| {
        one::<pg_sys::Oid>(
            "SELECT tenant_table::pg_catalog.oid FROM tenant_guard.registry",
            &[],
        )
    });
    let Some(rel) = tenant_table else {
        as_extension_owner(|| spi(Spi::run("DELETE FROM tenant_guard.registry")));
        if let Some(old) = previous {
            unwatch(old);
        }
        return;
    };
    let table = rel.oid();
    // Closed: ALTER TABLE refuses a table this session holds open.
    drop(rel);
    let Some(id_column) = id_column else {
        invalid_parameter("id_column must not be NULL").raise()
    };
    let relkind = pinned(|| {
        one::<i8>(
            "SELECT relkind FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) $1",
            &[table.into()],
        )
    });
    if !matches!(relkind.map(|k| k as u8), Some(b'r') | Some(b'p')) {
        Failure::new(
            Code::ERRCODE_WRONG_OBJECT_TYPE,
            "the tenant registry must be a table",
        )
        .raise();
    }
    let column_type =
        |col: &str| pinned(|| one::<String>(COLUMN_TYPE_SQL, &[table.into(), col.into()]));
    let missing = |col: &str| {
        Failure::new(
            Code::ERRCODE_UNDEFINED_COLUMN,
            format!("column \"{col}\" does not exist in the registry table"),
        )
        .raise()
    };
    match column_type(id_column) {
        None => missing(id_column),
        Some(t) if IdKind::of(&t) == IdKind::Other => invalid_parameter(format!(
            "the registry id column \"{id_column}\" must be of an integer, uuid or text type, not {t}"
        ))
        .detail("The look-up compares ids in the column's own type; other types would need a cast.")
        .raise(),
        Some(_) => {}
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
    as_extension_owner(|| {
        spi(Spi::run("DELETE FROM tenant_guard.registry"));
        spi(Spi::run_with_args(
            "INSERT INTO tenant_guard.registry (tenant_table, id_column, active_column) \
             VALUES ($1::pg_catalog.oid::pg_catalog.regclass, $2::pg_catalog.name, $3::pg_catalog.name)",
            &[
                pgrx::datum::DatumWithOid::from(table),
                id_column.into(),
                active_column.into(),
            ],
        ));
    });
    if let Some(old) = previous.filter(|old| *old != table) {
        unwatch(old);
    }
    watch(table, id_column, active_column);
}

/// Puts the trigger of [`watch_sql`] on the registry table, as the table's
/// owner (`SHARE ROW EXCLUSIVE`, what CREATE TRIGGER takes, first taken
/// under `tenant_guard.lock_timeout`: 55P03, nothing changed). Not on
/// Citus, where a distributed table's triggers would have to run on every
/// shard: there the set is read by every statement.
fn watch(table: pg_sys::Oid, id_column: &str, active_column: Option<&str>) {
    if crate::citus::loaded() || !watch_function_exists() {
        return;
    }
    let mut set = crate::integrity_sql::locks::LockSet::default();
    set.add(table, crate::integrity_sql::locks::SHARE_ROW_EXCLUSIVE);
    set.take("use_registry");
    let name = crate::privileged::qualified_name(table);
    crate::privileged::as_table_owner(table, || {
        for stmt in watch_sql(&name, id_column, active_column) {
            spi(Spi::run(&stmt));
        }
    });
}

/// Whether `tenant_guard_internal.config_changed()` exists: not with a
/// 0.1.0 schema not yet updated (`ALTER EXTENSION tenant_guard UPDATE`),
/// whose registry is then read per transaction, as in 0.1.0.
fn watch_function_exists() -> bool {
    pinned(|| {
        one::<bool>(
            "SELECT pg_catalog.to_regprocedure('tenant_guard_internal.config_changed()') IS NOT NULL",
            &[],
        )
    }) == Some(true)
}

/// Removes the trigger of [`watch_sql`] from a table that is no longer the
/// registry, as the table's owner (nothing if the table is gone). Where
/// that owner may no longer reach the table's schema, the trigger stays,
/// with a NOTICE: it only invalidates that table when its rows change.
fn unwatch(table: pg_sys::Oid) {
    if crate::citus::loaded() {
        return;
    }
    let Some(row) = crate::privileged::class_row(table) else {
        return;
    };
    let reachable = pinned(|| {
        one::<bool>(
            "SELECT pg_catalog.has_schema_privilege($1, $2, 'USAGE')",
            &[row.owner.into(), row.namespace.into()],
        )
    });
    if reachable != Some(true) {
        pgrx::notice!(
            "trigger \"{WATCH_TRIGGER}\" stays on {}: its owner may not use its schema; drop it there",
            row.name
        );
        return;
    }
    let mut set = crate::integrity_sql::locks::LockSet::default();
    set.add(table, crate::integrity_sql::locks::ACCESS_EXCLUSIVE);
    set.take("use_registry");
    let name = crate::privileged::qualified_name(table);
    crate::privileged::as_table_owner(table, || {
        spi(Spi::run(&format!(
            "DROP TRIGGER IF EXISTS \"{WATCH_TRIGGER}\" ON {name}"
        )));
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
    fn the_look_up_also_reads_where_its_row_lives() {
        assert_eq!(
            seen_sql("public.\"T\"", "Id", IdKind::Uuid, Some("on")),
            "SELECT coalesce(\"on\", false), tableoid, ctid, xmin::pg_catalog.text FROM public.\"T\" \
              WHERE \"Id\" OPERATOR(pg_catalog.=) $1::pg_catalog.uuid LIMIT 1"
        );
        // The same row and condition as the plain look-up.
        let plain = lookup_sql("s.t", "id", IdKind::Integer, None);
        let seen = seen_sql("s.t", "id", IdKind::Integer, None);
        assert_eq!(
            plain.replace(
                "SELECT true FROM",
                "SELECT true, tableoid, ctid, xmin::pg_catalog.text FROM"
            ),
            seen
        );
    }

    #[test]
    fn the_watch_trigger_names_the_id_and_active_columns() {
        let [create, enable] = watch_sql("public.\"T\"", "Id", Some("is'on"));
        assert_eq!(
            create,
            "CREATE OR REPLACE TRIGGER \"tenant_guard_registry_changed\" AFTER INSERT OR UPDATE \
             OR DELETE ON public.\"T\" FOR EACH ROW EXECUTE FUNCTION \
             tenant_guard_internal.config_changed('Id', 'is''on')"
        );
        assert_eq!(
            enable,
            "ALTER TABLE public.\"T\" ENABLE ALWAYS TRIGGER \"tenant_guard_registry_changed\""
        );
        let [create, _] = watch_sql("t", "id", None);
        assert!(create.ends_with("config_changed('id')"), "{create}");
    }

    #[test]
    fn many_ids_in_one_statement() {
        assert_eq!(
            lookup_many_sql("public.\"T\"", "id", IdKind::Integer, Some("on")),
            "SELECT pg_catalog.count(DISTINCT \"id\") FROM public.\"T\" \
             WHERE \"id\" OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]::pg_catalog.int8[]) \
             AND coalesce(\"on\", false)"
        );
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(distinct_ids(IdKind::Integer, &ids(&["7", "07", "8"])), 2);
        assert_eq!(distinct_ids(IdKind::Text, &ids(&["a", "A", "a"])), 2);
        assert_eq!(
            distinct_ids(
                IdKind::Uuid,
                &ids(&[
                    "0b9e7c2a-54d1-4f3a-9c51-6f1e2d3c4b5a",
                    "0B9E7C2A-54D1-4F3A-9C51-6F1E2D3C4B5A"
                ])
            ),
            1
        );
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
             WHERE \"tenantId\" OPERATOR(pg_catalog.=) $1::pg_catalog.int8 LIMIT 1"
        );
        assert_eq!(
            all_sql("public.\"Tenants\"", "tenantId", Some("is\"active")),
            "SELECT \"tenantId\"::pg_catalog.text FROM public.\"Tenants\" WHERE \"is\"\"active\" \
             ORDER BY 1 USING OPERATOR(pg_catalog.<)"
        );
        // Every comparison is an exactly typed pg_catalog operator: no cast
        // of the column, whatever its type.
        for kind in [IdKind::Integer, IdKind::Uuid, IdKind::Text, IdKind::Other] {
            let sql = lookup_sql("t", "id", kind, None);
            assert!(
                sql.contains("\"id\" OPERATOR(pg_catalog.=) $1::pg_catalog."),
                "{sql}"
            );
            assert!(!sql.contains("\"id\"::"), "{sql}");
        }
    }
}
