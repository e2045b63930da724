//! The one door for SQL that runs with rights other than the caller's, and
//! for every SPI statement tenant_guard runs on the caller's behalf.
//!
//! Threat model: the application role may own a schema on the caller's
//! `search_path`, the database (and so `public`), the tables tenant_guard
//! touches, their triggers, indexes, policies, types and casts, and it can
//! always create objects in `pg_temp`. Nothing it owns may run with more
//! rights than its own.
//!
//! Rules enforced here (model: PostgreSQL's `matview.c` and
//! `contrib/amcheck/verify_common.c`):
//!
//! * Every scope opens a GUC nest level and pins
//!   `search_path = pg_catalog, pg_temp` (and `standard_conforming_strings = on`) (pg_temp named last, so it is never
//!   searched before the catalog, and never for functions or operators).
//!   Leaving the scope (normally or by an error) rolls back every setting
//!   changed inside it, also by code we did not write (a trigger calling
//!   `set_config`).
//! * [`as_extension_owner`]: tenant_guard's own tables (key ring, registry
//!   settings, `protected`), as the role that owns the extension, under
//!   `SECURITY_RESTRICTED_OPERATION`. No user object is read there.
//! * [`as_table_owner`]: user tables (counts, samples, backfills, registry
//!   look-ups, the DDL of the generators) as **the table's owner**, with
//!   `SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION`, the way
//!   PostgreSQL runs VACUUM, CREATE INDEX and REFRESH MATERIALIZED VIEW:
//!   a trigger, index expression, cast or operator the owner wrote runs with
//!   the owner's rights, which it has anyway. A column's type need not be
//!   the owner's: statements that compare or cast a column's values first
//!   check, with [`require_trusted_columns`], that every user-defined type
//!   they touch belongs to the role they run as or to a superuser, and so
//!   do the functions its casts call (its casts, operators and domain
//!   checks are its owner's code). It locks the table first
//!   (`ACCESS SHARE` to the end of the transaction; `42P01` if dropped): a
//!   name is parsed again by each statement, and a schema's owner may drop
//!   a table it does not own and put a view of its own under the name.
//!   Other relations the SQL names are locked with [`lock_named`] (a lock
//!   taken when pgrx opened a `regclass` argument ends when it is closed).
//! * [`pinned`]: the caller's own rights, pinned `search_path` only (the
//!   generators' catalog reads and the audits' catalog queries), so that an
//!   operator in `public` is never picked instead of `pg_catalog`'s.
//!
//! SQL run inside still qualifies every relation with its schema (built from
//! `nspname`/`relname` with [`crate::quote::ident`], never `regclass::text`),
//! writes operators as `OPERATOR(pg_catalog.=)` or with exactly typed
//! operands, and casts only to `pg_catalog` types.

use crate::error::{Code, Failure};
use crate::quote::ident;
use pgrx::prelude::*;

/// The search_path every scope pins.
pub const SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// Settings every scope pins: the search_path, and the settings a database
/// owner could otherwise impose (`ALTER DATABASE … SET`) to change what the
/// SQL inside means or to make it fail (`standard_conforming_strings = off`
/// turns `'\x00'` into an invalid escape).
const PINNED: &[(&str, &str)] = &[
    ("search_path", SEARCH_PATH),
    ("standard_conforming_strings", "on"),
];

/// Restores the user, security context and settings of the caller on drop.
struct Scope {
    nest_level: i32,
    saved_user: pg_sys::Oid,
    saved_sec: i32,
    changed_user: bool,
}

impl Scope {
    fn enter(user: Option<pg_sys::Oid>, extra_flags: i32) -> Scope {
        let mut saved_user = pg_sys::Oid::INVALID;
        let mut saved_sec: i32 = 0;
        // SAFETY: plain reads of the backend's current user id and context.
        unsafe { pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_sec) };
        if let Some(u) = user {
            let flags = saved_sec
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32
                | extra_flags;
            // SAFETY: switching to an existing role id; restored on drop, and
            // by (sub)transaction abort should the drop not run.
            unsafe { pg_sys::SetUserIdAndSecContext(u, flags) };
        }
        // SAFETY: a new GUC nest level, popped by AtEOXact_GUC on drop (or
        // by transaction abort).
        let nest_level = unsafe { pg_sys::NewGUCNestLevel() };
        for (name, value) in PINNED {
            let name = crate::error::c_string(name);
            let value = crate::error::c_string(value);
            // SAFETY: valid C strings; GUC_ACTION_SAVE ties the value to
            // the nest level opened above.
            unsafe {
                pg_sys::set_config_option(
                    name.as_ptr(),
                    value.as_ptr(),
                    pg_sys::GucContext::PGC_USERSET,
                    pg_sys::GucSource::PGC_S_SESSION,
                    pg_sys::GucAction::GUC_ACTION_SAVE,
                    true,
                    0,
                    false,
                );
            }
        }
        Scope {
            nest_level,
            saved_user,
            saved_sec,
            changed_user: user.is_some(),
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        // SAFETY: undoes exactly what enter() did, innermost first. `false`:
        // every setting changed inside the scope is rolled back, like
        // PostgreSQL does after running index functions as a table owner.
        unsafe {
            pg_sys::AtEOXact_GUC(false, self.nest_level);
            if self.changed_user {
                pg_sys::SetUserIdAndSecContext(self.saved_user, self.saved_sec);
            }
        }
    }
}

/// Runs `f` with the given settings changed (those that exist in this
/// server; an unknown name is skipped, never created), inside the current
/// scope's rights. Every setting changed inside is rolled back on exit, as
/// in the scopes above. For other extensions' switches around tenant_guard's
/// own DDL (Citus: `citus.enable_unsafe_triggers`).
pub fn with_settings<R>(
    settings: &[(&std::ffi::CStr, &std::ffi::CStr)],
    f: impl FnOnce() -> R,
) -> R {
    struct Level(i32);
    impl Drop for Level {
        fn drop(&mut self) {
            // SAFETY: pops the nest level opened below; `false` rolls back
            // every setting changed inside.
            unsafe { pg_sys::AtEOXact_GUC(false, self.0) };
        }
    }
    // SAFETY: a new GUC nest level, popped by `Level` on drop (or by
    // transaction abort).
    let _level = Level(unsafe { pg_sys::NewGUCNestLevel() });
    for (name, value) in settings {
        // SAFETY: NUL-terminated name; missing_ok = true returns NULL.
        if unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) }.is_null() {
            continue;
        }
        // SAFETY: valid C strings; GUC_ACTION_SAVE ties the value to the
        // nest level opened above; elevel ERROR raises on failure.
        unsafe {
            pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                pg_sys::PGERROR as i32,
                false,
            );
        }
    }
    f()
}

/// Runs `f` with the caller's rights and `search_path` pinned.
pub fn pinned<R>(f: impl FnOnce() -> R) -> R {
    let _scope = Scope::enter(None, 0);
    f()
}

/// Runs `f` as the role that owns the extension (for tenant_guard's own
/// tables only), restricted and with `search_path` pinned.
pub fn as_extension_owner<R>(f: impl FnOnce() -> R) -> R {
    let owner = extension_owner();
    let _scope = Scope::enter(Some(owner), 0);
    f()
}

/// Runs `f` as `owner` (a table's owner), restricted, with `search_path`
/// pinned. Row-level security forced on the owner's own tables does not
/// apply (`SECURITY_NOFORCE_RLS`, as PostgreSQL's referential checks do):
/// audits and backfills must see every row.
pub fn as_role<R>(owner: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let _scope = Scope::enter(Some(owner), pg_sys::SECURITY_NOFORCE_RLS as i32);
    f()
}

/// Runs `f` as the owner of `rel` (see [`as_role`]), after locking `rel`
/// (`ACCESS SHARE`, to the end of the transaction; 42P01 if it was dropped).
/// `f` runs SQL that names `rel`, and a name is parsed again by each
/// statement: a role owning the table's schema may drop a table it does not
/// own and put a view of its own under the name, whose functions would then
/// run as the table's owner. Once locked, the table cannot be dropped (nor
/// renamed; schema names are pinned by [`class_row`]), so the name built
/// from its OID, before or after, names it. A lock taken when pgrx opened
/// a `regclass` argument is released when that relation is closed.
pub fn as_table_owner<R>(rel: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    lock_then_name(rel, pg_sys::AccessShareLock as i32);
    as_role(table_owner(rel), f)
}

/// Locks `rel` (`ACCESS SHARE`, to the end of the transaction) and checks
/// that `name`, built earlier from its OID, is still its name: 42P01
/// otherwise (dropped, or renamed by its owner while unlocked, its name
/// perhaps another relation's now). For a relation that SQL run as another
/// role names besides the one whose owner runs it.
pub fn lock_named(rel: pg_sys::Oid, name: &str) {
    lock_then_name(rel, pg_sys::AccessShareLock as i32);
    if class_row(rel).is_none_or(|row| row.name != name) {
        Failure::new(
            Code::ERRCODE_UNDEFINED_TABLE,
            format!("relation {name} was renamed or dropped"),
        )
        .detail("Nothing was changed.")
        .hint("Run it again.")
        .raise();
    }
}

/// The role that owns the extension (whoever ran `CREATE EXTENSION`).
pub fn extension_owner() -> pg_sys::Oid {
    pinned(|| {
        crate::error::one::<pg_sys::Oid>(
            "SELECT extowner FROM pg_catalog.pg_extension \
              WHERE extname OPERATOR(pg_catalog.=) 'tenant_guard'::pg_catalog.name",
            &[],
        )
    })
    .unwrap_or(pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID))
}

/// The owner of a relation; 42P01 when it does not exist.
pub fn table_owner(rel: pg_sys::Oid) -> pg_sys::Oid {
    pinned(|| {
        crate::error::one::<pg_sys::Oid>(
            "SELECT relowner FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) $1",
            &[rel.into()],
        )
    })
    .unwrap_or_else(|| {
        Failure::new(
            Code::ERRCODE_UNDEFINED_TABLE,
            format!("relation with OID {} does not exist", u32::from(rel)),
        )
        .raise()
    })
}

/// `("schema"."name", owner)` of a relation, from `nspname`, `relname`
/// and `relowner` (never `regclass::text`, whose output depends on the
/// search_path); `None` when it does not exist.
pub fn name_and_owner(rel: pg_sys::Oid) -> Option<(String, pg_sys::Oid)> {
    class_row(rel).map(|c| (c.name, c.owner))
}

/// What tenant_guard reads of a relation's `pg_class` row to name it.
pub struct ClassRow {
    /// `"schema"."name"`.
    pub name: String,
    /// The bare name (for messages).
    pub relname: String,
    pub namespace: pg_sys::Oid,
    pub owner: pg_sys::Oid,
    pub relkind: u8,
    pub is_partition: bool,
    pub rls_enabled: bool,
    pub rls_forced: bool,
}

/// Keeps every schema's name, in this database, as it is now until the
/// transaction ends: a `SHARE` lock on `pg_namespace`, which renaming,
/// creating or dropping a schema (or changing its privileges) must wait
/// for. A name built from an OID is SQL text parsed again by each later
/// statement; without this, a role owning the table's schema could rename
/// it between two statements (or while a helper waits for a lock) and put
/// a look-alike table of its own, with its triggers and policies, under
/// the old name, for privileged SQL to run on. Not on a standby (no schema
/// changes there but replayed ones, and no privileged writes).
pub fn pin_schema_names() {
    // SAFETY: no arguments; locks a catalog by its fixed OID (held to the
    // end of the transaction; a lock this transaction holds is found in its
    // local table at once).
    unsafe {
        if !pg_sys::RecoveryInProgress() {
            pg_sys::LockRelationOid(
                pg_sys::NamespaceRelationId,
                pg_sys::ShareLock as pg_sys::LOCKMODE,
            );
        }
    }
}

/// Locks `rel` in `mode` (held to the end of the transaction), then makes
/// sure it still exists (42P01 otherwise: dropped while this waited, its
/// name perhaps already another table's). Call before building the names
/// that later statements will use.
pub fn lock_then_name(rel: pg_sys::Oid, mode: i32) {
    // SAFETY: a lock by OID (none of the relation's code runs).
    unsafe { pg_sys::LockRelationOid(rel, mode as pg_sys::LOCKMODE) };
    if !relation_exists(rel) {
        Failure::new(
            Code::ERRCODE_UNDEFINED_TABLE,
            format!("relation with OID {} was dropped", u32::from(rel)),
        )
        .detail("Nothing was changed.")
        .raise();
    }
}

/// Whether a relation of this OID exists (as the system caches know it).
pub fn relation_exists(rel: pg_sys::Oid) -> bool {
    // SAFETY: a syscache probe by OID.
    unsafe {
        pg_sys::SearchSysCacheExists(
            pg_sys::SysCacheIdentifier::RELOID as i32,
            pg_sys::Datum::from(rel),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
        )
    }
}

/// A relation's `pg_class` row and schema name, read after
/// [`pin_schema_names`] from the system caches (which follow every
/// committed change, where SQL would read through the statement's
/// snapshot and could return a name the schema no longer has); `None` when
/// the relation does not exist.
pub fn class_row(rel: pg_sys::Oid) -> Option<ClassRow> {
    pin_schema_names();
    class_row_unpinned(rel)
}

/// [`class_row`] without the pin: for a caller that pins schema names
/// itself for a shorter time (the registry look-up).
pub fn class_row_unpinned(rel: pg_sys::Oid) -> Option<ClassRow> {
    // SAFETY: the syscache entry is released before returning; the names
    // are copied out while it is held.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::RELOID as i32,
            pg_sys::Datum::from(rel),
        );
        if tuple.is_null() {
            return None;
        }
        let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_class>(tuple);
        let relname = pg_sys::name_data_to_str(&(*form).relname).to_owned();
        let namespace = (*form).relnamespace;
        let row = (
            (*form).relowner,
            (*form).relkind as u8,
            (*form).relispartition,
            (*form).relrowsecurity,
            (*form).relforcerowsecurity,
        );
        pg_sys::ReleaseSysCache(tuple);
        let nsp = pg_sys::get_namespace_name(namespace);
        if nsp.is_null() {
            return None;
        }
        let nspname = std::ffi::CStr::from_ptr(nsp).to_string_lossy().into_owned();
        Some(ClassRow {
            name: format!("{}.{}", ident(&nspname), ident(&relname)),
            relname,
            namespace,
            owner: row.0,
            relkind: row.1,
            is_partition: row.2,
            rls_enabled: row.3,
            rls_forced: row.4,
        })
    }
}

/// `"schema"."name"` of a relation (see [`name_and_owner`]); 42P01 when it
/// does not exist.
pub fn qualified_name(rel: pg_sys::Oid) -> String {
    let row = name_and_owner(rel);
    match row {
        Some((name, _)) => name,
        None => Failure::new(
            Code::ERRCODE_UNDEFINED_TABLE,
            format!("relation with OID {} does not exist", u32::from(rel)),
        )
        .raise(),
    }
}

/// Whether the current user holds `mode` (e.g. `pg_sys::ACL_SELECT`) on `rel`.
pub fn has_table_privilege(rel: pg_sys::Oid, mode: u32) -> bool {
    // SAFETY: a catalog look-up; returns ACLCHECK_OK or another AclResult.
    unsafe {
        pg_sys::pg_class_aclcheck(rel, pg_sys::GetUserId(), mode as pg_sys::AclMode)
            == pg_sys::AclResult::ACLCHECK_OK
    }
}

/// Whether row-level security would filter `rel` for the current user.
pub fn rls_restricts_caller(rel: pg_sys::Oid) -> bool {
    // SAFETY: a catalog look-up for the current user; noError = true.
    let r = unsafe { pg_sys::check_enable_rls(rel, pg_sys::Oid::INVALID, true) };
    r == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
}

/// 42501 unless the caller may read every row of `rel` ([`can_read_all`]:
/// a superuser, a BYPASSRLS role, or the table's owner, with SELECT). Audits count
/// rows as the table's owner, so they first make sure the caller could have
/// counted them itself.
pub fn require_full_read(rel: pg_sys::Oid) {
    if !can_read_all(rel) {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied to audit {}", qualified_name(rel)),
        )
        .detail("Audits count every tenant's rows; row-level security restricts this role on the table, or it lacks SELECT.")
        .hint("Run audits as a superuser, a role with BYPASSRLS, or the table's owner.")
        .raise();
    }
}

/// Whether the caller may read every row of `rel`: SELECT on it, and either
/// no row-level security restricting it or the rights of the table's owner
/// (whose forced row-level security the owner-run count does not apply).
pub fn can_read_all(rel: pg_sys::Oid) -> bool {
    if !has_table_privilege(rel, pg_sys::ACL_SELECT) {
        return false;
    }
    if !rls_restricts_caller(rel) {
        return true;
    }
    // SAFETY: plain OIDs by value, no pointers; has_privs_of_role only
    // reads the catalog.
    unsafe { pg_sys::has_privs_of_role(pg_sys::GetUserId(), table_owner(rel)) }
}

/// 42501 unless the caller holds `mode` on `rel` (named `what` in the message).
pub fn require_privilege(rel: pg_sys::Oid, mode: u32, what: &str) {
    if !has_table_privilege(rel, mode) {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied for table {}", qualified_name(rel)),
        )
        .detail(format!("This function needs {what} on the table."))
        .raise();
    }
}

/// Objects with an OID below this are built into PostgreSQL.
pub const FIRST_NORMAL_OBJECT_ID: u32 = 16384;

/// Why comparing or converting values of type `ty` (to or from text) in SQL
/// run as `role` could run code of another role; `None` when it cannot. A
/// built-in type is safe. A user-defined type is safe only if it belongs to
/// `role` or to a superuser (its owner can create casts from and to it,
/// add CHECK constraints to a domain, rename an enum's values, define its
/// operators), if its casts to and from text and its range call only
/// built-in functions ([`foreign_code`]: a user-defined function's body,
/// or the names it resolves through its own or its caller's `search_path`,
/// may run another role's code whoever owns the function), if its domain
/// checks pass [`domain_check_problem`], and then only if what it is built
/// on is safe too: a domain's base type, an array's element type, a
/// range's subtype, a multirange's range, a composite type's attribute
/// types.
pub fn untrusted_type(ty: pg_sys::Oid, role: pg_sys::Oid) -> Option<String> {
    type_walk(ty, role, false, 0)
}

/// [`untrusted_type`] for SQL that every role runs (protect's default and
/// policies): the type's casts, checks and range call only built-in
/// functions. A user-defined function, even the table owner's, resolves
/// the names in its body through the `search_path` of its `SET` clause or
/// of whoever runs it, where another role's schema may come first.
pub fn untrusted_type_for_everyone(ty: pg_sys::Oid, owner: pg_sys::Oid) -> Option<String> {
    type_walk(ty, owner, true, 0)
}

fn type_walk(ty: pg_sys::Oid, role: pg_sys::Oid, strict: bool, depth: u32) -> Option<String> {
    if ty == pg_sys::Oid::INVALID {
        return Some("a type that does not exist".into());
    }
    if u32::from(ty) < FIRST_NORMAL_OBJECT_ID {
        return None;
    }
    if depth > 32 {
        return Some("a type nested too deeply".into());
    }
    struct TypeRow {
        kind: String,
        base: pg_sys::Oid,
        elem: pg_sys::Oid,
        category: String,
        owner: pg_sys::Oid,
        rel: pg_sys::Oid,
        subtype: Option<pg_sys::Oid>,
        name: String,
        owner_name: String,
    }
    let row = pinned(|| {
        Spi::connect(|c| {
            let rows = crate::error::spi(c.select(
                "SELECT t.typtype::pg_catalog.text, t.typbasetype, t.typelem, \
                        t.typcategory::pg_catalog.text, t.typowner, t.typrelid, \
                        COALESCE((SELECT r.rngsubtype FROM pg_catalog.pg_range r \
                                   WHERE r.rngtypid OPERATOR(pg_catalog.=) t.oid), \
                                 (SELECT r.rngtypid FROM pg_catalog.pg_range r \
                                   WHERE r.rngmultitypid OPERATOR(pg_catalog.=) t.oid)), \
                        pg_catalog.format_type(t.oid, NULL), \
                        pg_catalog.pg_get_userbyid(t.typowner)::pg_catalog.text \
                   FROM pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) $1",
                None,
                &[ty.into()],
            ));
            rows.into_iter().next().map(|r| TypeRow {
                kind: crate::error::present(r.get::<String>(1), "pg_type.typtype"),
                base: crate::error::present(r.get::<pg_sys::Oid>(2), "pg_type.typbasetype"),
                elem: crate::error::present(r.get::<pg_sys::Oid>(3), "pg_type.typelem"),
                category: crate::error::present(r.get::<String>(4), "pg_type.typcategory"),
                owner: crate::error::present(r.get::<pg_sys::Oid>(5), "pg_type.typowner"),
                rel: crate::error::present(r.get::<pg_sys::Oid>(6), "pg_type.typrelid"),
                subtype: crate::error::spi(r.get::<pg_sys::Oid>(7)),
                name: crate::error::present(r.get::<String>(8), "format_type"),
                owner_name: crate::error::present(r.get::<String>(9), "pg_get_userbyid"),
            })
        })
    });
    let Some(t) = row else {
        return Some(format!("type {} that does not exist", u32::from(ty)));
    };
    // SAFETY: a catalog look-up of a role by OID (false when it is gone).
    let owner_ok = t.owner == role || unsafe { pg_sys::superuser_arg(t.owner) };
    if !owner_ok {
        return Some(format!(
            "the type {} belongs to role \"{}\"",
            t.name, t.owner_name
        ));
    }
    // The type's owner is trusted; the functions its casts, its domain
    // checks and its range call need not be that owner's, and whoever owns
    // a function can replace its body at any time.
    if let Some(why) = foreign_code(ty, role, strict, depth) {
        return Some(why);
    }
    match t.kind.as_str() {
        "d" => type_walk(t.base, role, strict, depth + 1),
        "b" if t.category == "A" && t.elem != pg_sys::Oid::INVALID => {
            type_walk(t.elem, role, strict, depth + 1)
        }
        "r" | "m" => t
            .subtype
            .and_then(|s| type_walk(s, role, strict, depth + 1)),
        "c" => {
            let attrs: Vec<pg_sys::Oid> = pinned(|| {
                Spi::connect(|c| {
                    crate::error::spi(c.select(
                        "SELECT a.atttypid FROM pg_catalog.pg_attribute a \
                          WHERE a.attrelid OPERATOR(pg_catalog.=) $1 \
                            AND a.attnum OPERATOR(pg_catalog.>) 0::pg_catalog.int2 \
                            AND NOT a.attisdropped ORDER BY a.attnum",
                        None,
                        &[t.rel.into()],
                    ))
                    .filter_map(|r| crate::error::spi(r.get::<pg_sys::Oid>(1)))
                    .collect()
                })
            });
            attrs
                .into_iter()
                .find_map(|a| type_walk(a, role, strict, depth + 1))
        }
        _ => None,
    }
}

/// Why code of type `ty` is not trusted for `role`: the first user-defined
/// function it runs, with what calls it: a cast between the type (or its
/// array type) and `text` (or `text[]`), the casts tenant_guard's SQL uses
/// (anyone owning the other type of a cast may create one, so others are
/// not counted), a range's canonical or subtype-difference function; else
/// a domain check that is not safe ([`domain_check_problem`]); else the
/// first type a domain check names that is not trusted for `role`.
/// `None`: none.
fn foreign_code(ty: pg_sys::Oid, role: pg_sys::Oid, strict: bool, depth: u32) -> Option<String> {
    let found = pinned(|| {
        Spi::connect(|c| {
            let rows = crate::error::spi(c.select(
                "WITH t AS (SELECT y.oid, y.typarray FROM pg_catalog.pg_type y \
                             WHERE y.oid OPERATOR(pg_catalog.=) $1), \
                      f(fn, what) AS ( \
                   SELECT k.castfunc, 'the cast from ' OPERATOR(pg_catalog.||) \
                          pg_catalog.format_type(k.castsource, NULL) OPERATOR(pg_catalog.||) ' to ' \
                          OPERATOR(pg_catalog.||) pg_catalog.format_type(k.casttarget, NULL) \
                     FROM pg_catalog.pg_cast k, t \
                    WHERE k.castfunc OPERATOR(pg_catalog.<>) 0::pg_catalog.oid \
                      AND ((k.castsource OPERATOR(pg_catalog.=) t.oid \
                            AND k.casttarget OPERATOR(pg_catalog.=) 'pg_catalog.text'::pg_catalog.regtype) \
                        OR (k.casttarget OPERATOR(pg_catalog.=) t.oid \
                            AND k.castsource OPERATOR(pg_catalog.=) 'pg_catalog.text'::pg_catalog.regtype) \
                        OR (k.castsource OPERATOR(pg_catalog.=) t.typarray \
                            AND k.casttarget OPERATOR(pg_catalog.=) 'pg_catalog.text[]'::pg_catalog.regtype) \
                        OR (k.casttarget OPERATOR(pg_catalog.=) t.typarray \
                            AND k.castsource OPERATOR(pg_catalog.=) 'pg_catalog.text[]'::pg_catalog.regtype)) \
                   UNION ALL \
                   SELECT r.rngcanonical::pg_catalog.oid, 'the range ' OPERATOR(pg_catalog.||) pg_catalog.format_type($1, NULL) \
                     FROM pg_catalog.pg_range r WHERE r.rngtypid OPERATOR(pg_catalog.=) $1 \
                   UNION ALL \
                   SELECT r.rngsubdiff::pg_catalog.oid, 'the range ' OPERATOR(pg_catalog.||) pg_catalog.format_type($1, NULL) \
                     FROM pg_catalog.pg_range r WHERE r.rngtypid OPERATOR(pg_catalog.=) $1) \
                 SELECT pg_catalog.format('%I.%I', s.nspname, p.proname), f.what, \
                        pg_catalog.pg_get_userbyid(p.proowner)::pg_catalog.text \
                   FROM f JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) f.fn \
                   JOIN pg_catalog.pg_namespace s ON s.oid OPERATOR(pg_catalog.=) p.pronamespace \
                   JOIN pg_catalog.pg_roles w ON w.oid OPERATOR(pg_catalog.=) p.proowner \
                  WHERE p.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid \
                    AND ($3 OR (p.proowner OPERATOR(pg_catalog.<>) $2 AND NOT w.rolsuper)) \
                  ORDER BY 1, 2 LIMIT 1",
                None,
                &[ty.into(), role.into(), strict.into()],
            ));
            rows.into_iter().next().map(|r| {
                (
                    crate::error::present(r.get::<String>(1), "a function's name"),
                    crate::error::present(r.get::<String>(2), "what calls it"),
                    crate::error::present(r.get::<String>(3), "its owner"),
                )
            })
        })
    });
    if let Some((f, what, owner)) = found {
        return Some(if strict {
            format!("{what} calls the function {f} (of role \"{owner}\"), not a built-in one")
        } else {
            format!("{what} calls the function {f}, which belongs to role \"{owner}\"")
        });
    }
    if let Some(why) = domain_check_problem(ty, role, strict) {
        return Some(why);
    }
    // The types a domain check names (a cast to another domain runs that
    // domain's checks): each under the same rule.
    let named: Vec<pg_sys::Oid> = pinned(|| {
        Spi::connect(|c| {
            crate::error::spi(c.select(
                "SELECT DISTINCT d.refobjid FROM pg_catalog.pg_constraint n \
                   JOIN pg_catalog.pg_depend d \
                     ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass \
                    AND d.objid OPERATOR(pg_catalog.=) n.oid \
                    AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass \
                  WHERE n.contypid OPERATOR(pg_catalog.=) $1 \
                    AND d.refobjid OPERATOR(pg_catalog.<>) $1",
                None,
                &[ty.into()],
            ))
            .filter_map(|r| crate::error::spi(r.get::<pg_sys::Oid>(1)))
            .collect()
        })
    });
    named.into_iter().find_map(|n| {
        type_walk(n, role, strict, depth + 1)
            .map(|why| format!("a check of a domain names a type whose code is not trusted: {why}"))
    })
}

/// The expression nodes a domain check may consist of: constants, the
/// value, operators, functions, boolean logic, `CASE` and the like. Anything
/// else (a cast to another type, which runs that type's code; `JSON_VALUE …
/// RETURNING`, `XMLSERIALIZE`; nodes of later versions) is refused.
const CHECK_NODES: &[&str] = &[
    "CONST",
    "COERCETODOMAINVALUE",
    "OPEXPR",
    "FUNCEXPR",
    "BOOLEXPR",
    "NULLTEST",
    "BOOLEANTEST",
    "SCALARARRAYOPEXPR",
    "RELABELTYPE",
    "DISTINCTEXPR",
    "NULLIFEXPR",
    "CASE",
    "WHEN",
    "CASETESTEXPR",
    "COALESCEEXPR",
    "MINMAXEXPR",
    "ARRAYEXPR",
    "COLLATEEXPR",
    // Conversions, when every type they produce is built in (checked).
    "COERCEVIAIO",
    "ARRAYCOERCEEXPR",
];

/// Why a CHECK constraint of the domain `ty` is not safe to run for
/// another role: a domain's checks run wherever a value is cast to it, so
/// in protect's default and policies, for every writer and reader. Whoever
/// wrote a check (a domain taken over keeps its checks), it may consist
/// only of [`CHECK_NODES`], produce only built-in types, and call only
/// built-in immutable functions and operators. An operator counts with its
/// negator and commutator, and their functions: the planner rewrites
/// `NOT (a === b)` into `a <negator> b` when it prepares the check, so a
/// negator function of the application's ran as a superuser writer
/// (PostgreSQL 17 and later even let the owner set the negator after the
/// fact). Collations in a check must not belong to another role, who
/// could drop them and the check with them. A volatile built-in changes
/// the session that runs it (`set_config`), reads files or runs SQL given
/// as text, and a user-defined function, whoever owns it, may resolve
/// names through a `search_path` naming another role's schema. The
/// expression is read as stored (`pg_constraint.conbin`): PostgreSQL
/// records no dependency on built-in functions. `None`: every check is
/// safe.
fn domain_check_problem(ty: pg_sys::Oid, role: pg_sys::Oid, strict: bool) -> Option<String> {
    let nodes: Vec<String> = CHECK_NODES.iter().map(|n| (*n).to_owned()).collect();
    pinned(|| {
        Spi::connect(|c| {
            let rows = crate::error::spi(c.select(
                "SELECT pg_catalog.quote_ident(n.conname::pg_catalog.text), \
                        (SELECT pg_catalog.string_agg(DISTINCT (g.m)[1], ', ') \
                           FROM pg_catalog.regexp_matches(n.conbin::pg_catalog.text, '\\{([A-Z_]+)', 'g') AS g(m) \
                          WHERE NOT (g.m)[1] OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[])), \
                        (SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('%I.%I', s.nspname, p.proname), ', ') \
                           FROM pg_catalog.regexp_matches(n.conbin::pg_catalog.text, ':(?:op)?funcid ([0-9]+)', 'g') AS g(m) \
                           JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) (g.m)[1]::pg_catalog.oid \
                           JOIN pg_catalog.pg_namespace s ON s.oid OPERATOR(pg_catalog.=) p.pronamespace \
                           JOIN pg_catalog.pg_roles w ON w.oid OPERATOR(pg_catalog.=) p.proowner \
                          WHERE CASE WHEN p.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid \
                                     THEN $3 OR (p.proowner OPERATOR(pg_catalog.<>) $4 AND NOT w.rolsuper) \
                                     ELSE p.provolatile OPERATOR(pg_catalog.<>) 'i'::pg_catalog.\"char\" END), \
                        pg_catalog.format_type($1, NULL), \
                        (SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format_type((g.m)[1]::pg_catalog.oid, NULL), ', ') \
                           FROM pg_catalog.regexp_matches(n.conbin::pg_catalog.text, ':resulttype ([0-9]+)', 'g') AS g(m) \
                          WHERE (g.m)[1]::pg_catalog.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid), \
                        (SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('%I.%s', s.nspname, o.oprname), ', ') \
                           FROM pg_catalog.regexp_matches(n.conbin::pg_catalog.text, ':opno ([0-9]+)', 'g') AS g(m) \
                           JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) (g.m)[1]::pg_catalog.oid \
                           JOIN pg_catalog.pg_namespace s ON s.oid OPERATOR(pg_catalog.=) o.oprnamespace \
                          WHERE EXISTS ( \
                                SELECT FROM pg_catalog.pg_operator x \
                                  JOIN pg_catalog.pg_proc f ON f.oid OPERATOR(pg_catalog.=) x.oprcode \
                                  JOIN pg_catalog.pg_roles xo ON xo.oid OPERATOR(pg_catalog.=) x.oprowner \
                                  JOIN pg_catalog.pg_roles fo ON fo.oid OPERATOR(pg_catalog.=) f.proowner \
                                 WHERE x.oid OPERATOR(pg_catalog.=) ANY (ARRAY[o.oid, o.oprnegate, o.oprcom]) \
                                   AND ((x.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid \
                                         AND ($3 OR NOT (x.oprowner OPERATOR(pg_catalog.=) $4 OR xo.rolsuper))) \
                                     OR (f.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid \
                                         AND ($3 OR NOT (f.proowner OPERATOR(pg_catalog.=) $4 OR fo.rolsuper))) \
                                     OR (f.oid OPERATOR(pg_catalog.<) 16384::pg_catalog.oid \
                                         AND f.provolatile OPERATOR(pg_catalog.<>) 'i'::pg_catalog.\"char\")))), \
                        (SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('%I.%I', s.nspname, l.collname), ', ') \
                           FROM pg_catalog.regexp_matches(n.conbin::pg_catalog.text, ':[a-z_]*coll(?:id|ation|Oid) ([0-9]+)', 'g') AS g(m) \
                           JOIN pg_catalog.pg_collation l ON l.oid OPERATOR(pg_catalog.=) (g.m)[1]::pg_catalog.oid \
                           JOIN pg_catalog.pg_namespace s ON s.oid OPERATOR(pg_catalog.=) l.collnamespace \
                           JOIN pg_catalog.pg_roles w ON w.oid OPERATOR(pg_catalog.=) l.collowner \
                          WHERE l.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid \
                            AND NOT (l.collowner OPERATOR(pg_catalog.=) $4 OR w.rolsuper)) \
                   FROM pg_catalog.pg_constraint n \
                  WHERE n.contypid OPERATOR(pg_catalog.=) $1 AND n.conbin IS NOT NULL \
                  ORDER BY n.conname",
                None,
                &[ty.into(), nodes.into(), strict.into(), role.into()],
            ));
            rows.into_iter().find_map(|r| {
                let name = crate::error::present(r.get::<String>(1), "a check's name");
                let other: Option<String> = crate::error::spi(r.get::<String>(2));
                let calls: Option<String> = crate::error::spi(r.get::<String>(3));
                let domain = crate::error::present(r.get::<String>(4), "format_type");
                let converts: Option<String> = crate::error::spi(r.get::<String>(5));
                let operators: Option<String> = crate::error::spi(r.get::<String>(6));
                let collations: Option<String> = crate::error::spi(r.get::<String>(7));
                if let Some(o) = operators {
                    return Some(format!(
                        "the check {name} of the domain {domain} uses the operator {o}: a check may use only built-in operators{}",
                        if strict {
                            ""
                        } else {
                            " and operators of the role it runs as or of a superuser, whose negator and commutator are too and whose functions are built-in immutable ones or that role's or a superuser's"
                        }
                    ));
                }
                if let Some(l) = collations {
                    return Some(format!(
                        "the check {name} of the domain {domain} uses the collation {l}, which belongs to another role (who could drop it, and the check with it): only built-in collations and collations of the role it runs as or of a superuser"
                    ));
                }
                match (other, calls) {
                    (_, Some(f)) => Some(format!(
                        "the check {name} of the domain {domain} calls {f}: a check may call only built-in immutable functions{}",
                        if strict { "" } else { " and functions of the role it runs as or of a superuser" }
                    )),
                    (None, None) if converts.is_some() => Some(format!(
                        "the check {name} of the domain {domain} converts to {}: only to built-in types",
                        converts.unwrap_or_default()
                    )),
                    (Some(n), None) => Some(format!(
                        "the check {name} of the domain {domain} uses {n} (only constants, the value, operators, built-in immutable functions, conversions to built-in types, boolean logic and CASE are accepted)"
                    )),
                    (None, None) => None,
                }
            })
        })
    })
}

/// The type of column `col` of `rel` (`Oid::INVALID` when there is none).
pub fn column_type(rel: pg_sys::Oid, col: &str) -> pg_sys::Oid {
    pinned(|| {
        crate::error::one::<pg_sys::Oid>(
            "SELECT a.atttypid FROM pg_catalog.pg_attribute a \
              WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name \
                AND a.attnum OPERATOR(pg_catalog.>) 0::pg_catalog.int2 AND NOT a.attisdropped",
            &[rel.into(), col.into()],
        )
    })
    .unwrap_or(pg_sys::Oid::INVALID)
}

/// For each column of `cols` (of `rel`) whose type is not safe for SQL run
/// as `role` ([`untrusted_type`]): why.
pub fn untrusted_columns(rel: pg_sys::Oid, cols: &[String], role: pg_sys::Oid) -> Vec<String> {
    cols.iter()
        .filter_map(|c| {
            untrusted_type(column_type(rel, c), role)
                .map(|why| format!("column \"{c}\" of {}: {why}", qualified_name(rel)))
        })
        .collect()
}

/// 42501 unless every column of `cols` (of `rel`) is of a type safe for SQL
/// run as `role` ([`untrusted_type`]). `why` names that SQL.
pub fn require_trusted_columns(rel: pg_sys::Oid, cols: &[String], role: pg_sys::Oid, why: &str) {
    let found = untrusted_columns(rel, cols, role);
    if found.is_empty() {
        return;
    }
    Failure::new(
        Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!(
            "tenant_guard will not run {why} as \"{}\": {}",
            role_name(role),
            found.join("; ")
        ),
    )
    .detail("A user-defined type's casts, operators and domain checks are its owner's code; here they would run with the rights of another role.")
    .hint("Use a built-in type, or a type of that role (ALTER TYPE or ALTER DOMAIN ... OWNER TO ...) whose casts to and from text and whose checks call only built-in functions.")
    .raise();
}

/// A role's name (its OID when it is gone).
pub fn role_name(role: pg_sys::Oid) -> String {
    pinned(|| {
        crate::error::one::<String>(
            "SELECT pg_catalog.pg_get_userbyid($1)::pg_catalog.text",
            &[role.into()],
        )
    })
    .unwrap_or_else(|| u32::from(role).to_string())
}
