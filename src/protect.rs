//! `protect`, `unprotect`, `protect_schema` and `protection_drift`: read the
//! catalog into a [`TableState`], render the DDL with `policy`, run it as the
//! table's owner, and keep `tenant_guard.protected` (the registry `pg_dump`
//! keeps) up to date.
//!
//! Whose rights:
//! * Only a table's owner (a member of the owning role) or a superuser may
//!   protect or unprotect it (42501 "must be owner of table" otherwise).
//! * Catalog reads run with the caller's rights, `search_path` pinned
//!   (`privileged::pinned`).
//! * The DDL (ALTER TABLE, CREATE/ALTER/DROP POLICY, CREATE/DROP TRIGGER)
//!   runs **as the table's owner** under `SECURITY_RESTRICTED_OPERATION`
//!   (`privileged::as_table_owner`): a trigger, CHECK, index expression,
//!   cast or operator the owner wrote never runs as the DBA, nor as the
//!   extension owner when the DDL event trigger protects a new table.
//! * `tenant_guard.protected` is written as the extension owner.

use crate::catalog::{column, relation, require_table, Relation};
use crate::error::{invalid_parameter, one, spi, Code, Failure};
use crate::gucs;
use crate::policy::{
    self, Before, Fit, Mode, Options, PolicyShape, Shape, TableState, TriggerShape,
};
use crate::privileged::{as_extension_owner, as_table_owner, pinned};
use pgrx::iter::SetOfIterator;
use pgrx::prelude::*;
use std::collections::HashMap;

/// The tenant column: the argument, or the `tenant_guard.tenant_column` setting.
pub fn tenant_column(arg: Option<&str>) -> String {
    arg.map(str::to_owned)
        .or_else(|| gucs::text(&gucs::TENANT_COLUMN))
        .unwrap_or_else(|| policy::DEFAULT_TENANT_COLUMN.into())
}

/// `tenant_guard_internal.tenant_column()`: the tenant column the audits
/// and the DDL guard (SQL in `sql/`) use when none is given, as
/// [`tenant_column`] decides it for the generators: the setting
/// `tenant_guard.tenant_column`, or the built-in default. SQL reads it here
/// so that the default is written once.
#[pg_extern(
    name = "tenant_column",
    stable,
    parallel_safe,
    schema = "tenant_guard_internal"
)]
fn default_tenant_column() -> String {
    tenant_column(None)
}

/// `tenant_guard_internal.policy_names()`: the names of the policies
/// `protect` creates ([`policy::POLICIES`]), for the `status` view.
#[pg_extern(immutable, parallel_safe, schema = "tenant_guard_internal")]
fn policy_names() -> Vec<String> {
    policy::POLICIES.iter().map(|s| s.to_string()).collect()
}

/// The schema of the extension's trigger functions, from the catalog: the
/// schema of the `refuse_truncate` that belongs to the extension
/// (`pg_depend`), never a function found by name alone. It is
/// `tenant_guard_internal` from 0.2.0 on, and `tenant_guard` in a database
/// still at 0.1.0's SQL while this library is already loaded (between
/// installing the package and `ALTER EXTENSION tenant_guard UPDATE`), so
/// protect keeps working there too. Caller's rights, pinned: catalog only.
fn trigger_schema() -> &'static str {
    let found = pinned(|| {
        one::<String>(
            "SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_proc p \
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace \
               JOIN pg_catalog.pg_depend d \
                 ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass \
                AND d.objid OPERATOR(pg_catalog.=) p.oid \
                AND d.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog.\"char\" \
               JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid \
              WHERE e.extname OPERATOR(pg_catalog.=) 'tenant_guard'::pg_catalog.name \
                AND p.proname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
            &[policy::FN_REFUSE_TRUNCATE.into()],
        )
    });
    match found.as_deref() {
        Some(policy::INTERNAL_SCHEMA) => policy::INTERNAL_SCHEMA,
        Some(policy::API_SCHEMA) => policy::API_SCHEMA,
        other => crate::error::internal(format!(
            "tenant_guard's trigger function {} not found where expected (found in {other:?})",
            policy::FN_REFUSE_TRUNCATE
        )),
    }
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

/// What `tenant_guard.protected` says about a table.
struct Recorded {
    column: String,
    opts: Options,
    before: Before,
}

/// The row of `tenant_guard.protected` (readable by PUBLIC; read with the
/// caller's rights, pinned).
fn recorded(oid: pg_sys::Oid) -> Option<Recorded> {
    pinned(|| {
        Spi::connect(|c| {
            let rows = spi(c.select(
                "SELECT tenant_column::pg_catalog.text, mode, force, rls_was_enabled, rls_was_forced, previous_default \
                   FROM tenant_guard.protected WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
                None,
                &[oid.into()],
            ));
            rows.into_iter().next().map(|row| Recorded {
                column: crate::error::present(row.get(1), "tenant_guard.protected.tenant_column"),
                opts: Options {
                    // The table's CHECK allows only the two modes.
                    mode: Mode::parse(&crate::error::present::<String>(
                        row.get(2),
                        "tenant_guard.protected.mode",
                    ))
                    .unwrap_or_else(|| {
                        crate::error::internal("unknown mode in tenant_guard.protected")
                    }),
                    force: crate::error::present(row.get(3), "tenant_guard.protected.force"),
                },
                before: Before {
                    rls_was_enabled: crate::error::present(
                        row.get(4),
                        "tenant_guard.protected.rls_was_enabled",
                    ),
                    rls_was_forced: crate::error::present(
                        row.get(5),
                        "tenant_guard.protected.rls_was_forced",
                    ),
                    previous_default: spi(row.get(6)),
                },
            })
        })
    })
}

/// Every policy on the table, as the catalog holds it (caller's rights,
/// pinned: `pg_get_expr` deparses with `search_path = pg_catalog, pg_temp`).
fn actual_policies(oid: pg_sys::Oid) -> Vec<PolicyShape> {
    pinned(|| {
        Spi::connect(|c| {
            spi(c.select(
                "SELECT polname::pg_catalog.text, polcmd::pg_catalog.text, polpermissive, \
                        polroles OPERATOR(pg_catalog.=) '{0}'::pg_catalog.oid[], \
                        pg_catalog.pg_get_expr(polqual, polrelid), pg_catalog.pg_get_expr(polwithcheck, polrelid) \
                   FROM pg_catalog.pg_policy WHERE polrelid OPERATOR(pg_catalog.=) $1 \
                  ORDER BY polname",
                None,
                &[oid.into()],
            ))
            .map(|row| PolicyShape {
                name: crate::error::present(row.get::<String>(1), "pg_policy.polname"),
                cmd: crate::error::present::<String>(row.get(2), "pg_policy.polcmd")
                    .chars()
                    .next()
                    .unwrap_or('?'),
                permissive: crate::error::present(row.get(3), "pg_policy.polpermissive"),
                to_public: crate::error::present(row.get(4), "pg_policy.polroles"),
                using: spi(row.get(5)),
                check: spi(row.get(6)),
            })
            .collect()
        })
    })
}

/// The `tenant_guard_*` triggers of the table, compared with what protect
/// creates (caller's rights, pinned): the function, its argument, the
/// timing and event bits, the `UPDATE OF` column list (exactly the tenant
/// column for the row trigger, none for TRUNCATE) and no `WHEN` condition.
/// A partition's row trigger is a clone of its parent's (`clone`): it
/// cannot be replaced or dropped on its own, but it can be disabled.
fn actual_triggers(oid: pg_sys::Oid, column: &str) -> Vec<TriggerShape> {
    let schema = trigger_schema();
    pinned(|| {
        Spi::connect(|c| {
            spi(c.select(
                "SELECT t.tgname::pg_catalog.text, \
                        COALESCE(t.tgqual IS NULL AND \
                        CASE WHEN t.tgname OPERATOR(pg_catalog.=) $2::pg_catalog.name \
                             THEN t.tgfoid OPERATOR(pg_catalog.=) $6::pg_catalog.regprocedure::pg_catalog.oid \
                                  AND t.tgtype OPERATOR(pg_catalog.=) $3::pg_catalog.int2 \
                                  AND t.tgnargs OPERATOR(pg_catalog.=) 0::pg_catalog.int2 \
                                  AND pg_catalog.cardinality(t.tgattr::pg_catalog.int2[]) OPERATOR(pg_catalog.=) 0 \
                             ELSE t.tgfoid OPERATOR(pg_catalog.=) $7::pg_catalog.regprocedure::pg_catalog.oid \
                                  AND t.tgtype OPERATOR(pg_catalog.=) $4::pg_catalog.int2 \
                                  AND t.tgnargs OPERATOR(pg_catalog.=) 1::pg_catalog.int2 \
                                  AND t.tgargs OPERATOR(pg_catalog.=) \
                                      (pg_catalog.convert_to($5::pg_catalog.text, pg_catalog.getdatabaseencoding()) \
                                       OPERATOR(pg_catalog.||) pg_catalog.decode('00'::pg_catalog.text, 'hex'::pg_catalog.text)) \
                                  AND pg_catalog.cardinality(t.tgattr::pg_catalog.int2[]) OPERATOR(pg_catalog.=) 1 \
                                  AND t.tgattr[0] OPERATOR(pg_catalog.=) \
                                      (SELECT a.attnum FROM pg_catalog.pg_attribute a \
                                             WHERE a.attrelid OPERATOR(pg_catalog.=) $1 \
                                               AND a.attname OPERATOR(pg_catalog.=) $5::pg_catalog.name \
                                               AND NOT a.attisdropped) END, false), \
                        t.tgenabled OPERATOR(pg_catalog.=) ANY ('{O,A}'::pg_catalog.\"char\"[]), \
                        t.tgparentid OPERATOR(pg_catalog.<>) 0::pg_catalog.oid \
                   FROM pg_catalog.pg_trigger t \
                  WHERE t.tgrelid OPERATOR(pg_catalog.=) $1 \
                    AND NOT t.tgisinternal \
                    AND pg_catalog.starts_with(t.tgname::pg_catalog.text, $8::pg_catalog.text) \
                  ORDER BY 1",
                None,
                &[
                    oid.into(),
                    policy::TRG_TRUNCATE.into(),
                    policy::TGTYPE_STATEMENT_BEFORE_TRUNCATE.into(),
                    policy::TGTYPE_ROW_BEFORE_UPDATE.into(),
                    column.into(),
                    format!("{schema}.{}()", policy::FN_REFUSE_TRUNCATE).into(),
                    format!("{schema}.{}()", policy::FN_REFUSE_TENANT_CHANGE).into(),
                    policy::OBJECT_PREFIX.into(),
                ],
            ))
            .map(|row| TriggerShape {
                name: crate::error::present(row.get::<String>(1), "pg_trigger.tgname"),
                as_rendered: crate::error::present(row.get(2), "trigger comparison"),
                enabled: crate::error::present(row.get(3), "pg_trigger.tgenabled"),
                clone: crate::error::present(row.get(4), "pg_trigger.tgparentid"),
            })
            .collect()
        })
    })
}

/// PostgreSQL's deparsed form of a policy expression protect renders, as
/// `pg_get_expr` would show it on the policy protect would create: the
/// expression is parsed and analysed (never executed) as the qualification
/// of `SELECT FROM <table> WHERE <expr>` — the table is the only range table
/// entry, as in CREATE POLICY — and the resulting tree deparsed by
/// `pg_get_expr`. Parsed as the table's owner with `search_path` pinned,
/// like protect's CREATE POLICY, so names resolve exactly as they did there.
fn canonical(oid: pg_sys::Oid, table: &str, expr: &str) -> String {
    let sql = format!("SELECT FROM {table} WHERE {expr}");
    let tree = as_table_owner(oid, || {
        Spi::connect(|_c| {
            let c = crate::error::c_string(&sql);
            // SAFETY: SPI is connected (Spi::connect); the plan is freed
            // below; the lists are PostgreSQL's (List of CachedPlanSource,
            // List of Query) and non-empty for one SELECT statement.
            unsafe {
                let plan = pg_sys::SPI_prepare(c.as_ptr(), 0, std::ptr::null_mut());
                if plan.is_null() {
                    return None;
                }
                let sources = pg_sys::SPI_plan_get_plan_sources(plan);
                let mut out = None;
                if !sources.is_null() && (*sources).length > 0 {
                    let src = (*(*sources).elements).ptr_value as *mut pg_sys::CachedPlanSource;
                    let queries = (*src).query_list;
                    if !queries.is_null() && (*queries).length > 0 {
                        let q = (*(*queries).elements).ptr_value as *mut pg_sys::Query;
                        let quals = (*(*q).jointree).quals;
                        let s = pg_sys::nodeToString(quals as *const std::ffi::c_void);
                        out = Some(std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned());
                    }
                }
                pg_sys::SPI_freeplan(plan);
                out
            }
        })
    });
    let Some(tree) = tree else {
        return String::new();
    };
    pinned(|| {
        let c = crate::error::c_string(&tree);
        // SAFETY: pg_get_expr(pg_node_tree, oid) on a tree PostgreSQL just
        // produced with nodeToString; pg_node_tree is a text varlena.
        unsafe {
            let t = pg_sys::cstring_to_text(c.as_ptr());
            pgrx::direct_function_call::<String>(
                pg_sys::pg_get_expr,
                &[Some(pg_sys::Datum::from(t)), oid.into_datum()],
            )
        }
        .unwrap_or_else(|| {
            crate::error::internal("pg_get_expr returned NULL for a policy expression")
        })
    })
}

/// How each tenant_guard policy present on the table compares with
/// protect's rendering for `column`/`col_type`/`mode`, plus the permissive
/// policies that are not tenant_guard's.
fn policy_fits(
    oid: pg_sys::Oid,
    table: &str,
    column: &str,
    col_type: &str,
    col_domain: bool,
    mode: Mode,
    shape: Shape,
) -> (Vec<(String, Fit)>, Vec<String>) {
    let actual = actual_policies(oid);
    let mut cache: HashMap<String, String> = HashMap::new();
    let mut canon = |e: &str| -> String {
        cache
            .entry(e.to_owned())
            .or_insert_with(|| canonical(oid, table, e))
            .clone()
    };
    let names = policy::policy_names(shape);
    let fits = names
        .iter()
        .map(|name| {
            let want = policy::expected_policy(name, column, col_type, col_domain, mode, shape);
            let have = actual.iter().find(|p| p.name == *name);
            (name.to_string(), policy::fit(&want, have, &mut canon))
        })
        .collect();
    let extra = actual
        .iter()
        .filter(|p| p.permissive && !names.contains(&p.name.as_str()))
        .map(|p| p.name.clone())
        .collect();
    (fits, extra)
}

fn state(
    oid: pg_sys::Oid,
    r: &Relation,
    col: &str,
    (col_type, col_domain): (String, bool),
    default: &Option<String>,
    mode: Option<Mode>,
) -> TableState {
    let triggers = actual_triggers(oid, col);
    let shape = shape();
    let fits = match mode {
        Some(m) => policy_fits(oid, &r.name, col, &col_type, col_domain, m, shape).0,
        None => Vec::new(),
    };
    let default_stale = default_stale(default, &col_type);
    TableState {
        default_stale,
        name: r.name.clone(),
        column: col.to_owned(),
        col_type,
        col_domain,
        is_partition: r.is_partition,
        partitioned: r.relkind == b'p',
        rls_enabled: r.rls_enabled,
        rls_forced: r.rls_forced,
        policies: tenant_guard_policies(oid),
        stale_triggers: triggers
            .iter()
            .filter(|t| !t.clone && (!t.as_rendered || !t.enabled))
            .map(|t| t.name.clone())
            .collect(),
        disabled_clones: triggers
            .iter()
            .filter(|t| t.clone && !t.enabled)
            .map(|t| t.name.clone())
            .collect(),
        triggers: triggers
            .into_iter()
            .filter(|t| !t.clone)
            .map(|t| t.name)
            .collect(),
        default_is_ours: default_is_ours(default),
        fits,
        recorded: None,
        trigger_schema: trigger_schema(),
        shape,
    }
}

/// The policy shape of this database: [`Shape::Citus`] where the `citus`
/// extension is installed (see `policy::Shape`).
pub fn shape() -> Shape {
    if crate::citus::installed() {
        Shape::Citus
    } else {
        Shape::Single
    }
}

/// Names of the `tenant_guard_*` policies on the table.
fn tenant_guard_policies(oid: pg_sys::Oid) -> Vec<String> {
    actual_policies(oid)
        .into_iter()
        .map(|p| p.name)
        .filter(|n| policy::POLICIES.contains(&n.as_str()))
        .collect()
}

/// Whether a column default (as `pg_get_expr` deparses it) is the one
/// protect sets: exactly `tenant_guard.tenant_id()`, or that cast to a
/// type name (with an optional type modifier). Anything else, such as an
/// expression that merely mentions the function, is not ours (drift).
fn default_is_ours(default: &Option<String>) -> bool {
    default.as_deref().is_some_and(policy::is_our_default)
}

/// Whether the default is ours but rendered for another type than
/// `col_type` (0.1.0 cast to the column's type with its modifier).
fn default_stale(default: &Option<String>, col_type: &str) -> bool {
    default
        .as_deref()
        .is_some_and(|d| policy::is_our_default(d) && !policy::is_current_default(d, col_type))
}

/// 42501 unless the caller owns `oid` (is a member of its owner role) or is
/// a superuser: PostgreSQL's own ownership rule for ALTER TABLE.
fn require_owner(oid: pg_sys::Oid, r: &Relation) {
    let owner = crate::privileged::table_owner(oid);
    // SAFETY: plain OIDs by value, no pointers; has_privs_of_role only
    // reads the catalog.
    let ok = unsafe { pg_sys::has_privs_of_role(pg_sys::GetUserId(), owner) };
    if !ok {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be owner of table {}", r.display),
        )
        .raise();
    }
}

fn direct_partitions(oid: pg_sys::Oid) -> Vec<pg_sys::Oid> {
    pinned(|| {
        Spi::connect(|c| {
            spi(c.select(
                "SELECT i.inhrelid FROM pg_catalog.pg_inherits i \
                   JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid \
                  WHERE i.inhparent OPERATOR(pg_catalog.=) $1 AND c.relispartition \
                  ORDER BY c.relname",
                None,
                &[oid.into()],
            ))
            .filter_map(|row| spi(row.get::<pg_sys::Oid>(1)))
            .collect()
        })
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

/// Whether protect or unprotect is running DDL in this backend.
pub fn busy() -> bool {
    BUSY.with(|b| b.get() > 0)
}

/// Whether protect or unprotect is running DDL in this backend (for the
/// DDL event trigger).
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard_internal")]
fn in_protect() -> bool {
    BUSY.with(|b| b.get() > 0)
}

/// Runs protect's DDL on `oid` as the table's owner (restricted, pinned).
fn run(oid: pg_sys::Oid, ddl: &[String]) {
    if ddl.is_empty() {
        return;
    }
    // On Citus: tenant_guard's triggers only raise errors, so they are safe
    // on every shard (`enable_unsafe_triggers`); the tenant column's default
    // is the coordinator's alone (Citus refuses it on the distribution
    // column, and evaluates an INSERT's default on the coordinator).
    let citus = crate::citus::loaded();
    as_table_owner(oid, || {
        for stmt in ddl {
            if citus && policy::coordinator_only(stmt) {
                crate::privileged::with_settings(
                    &[
                        (c"citus.enable_unsafe_triggers", c"on"),
                        (c"citus.enable_ddl_propagation", c"off"),
                    ],
                    || spi(Spi::run(stmt)),
                );
            } else if citus {
                crate::privileged::with_settings(
                    &[(c"citus.enable_unsafe_triggers", c"on")],
                    || spi(Spi::run(stmt)),
                );
            } else {
                spi(Spi::run(stmt));
            }
        }
    });
}

/// 42501 unless the tenant column's type is built in, or belongs to the
/// table's owner or a superuser with every type it is built on, its casts
/// to and from text calling only built-in functions and its domain checks
/// only built-in immutable ones (`privileged::untrusted_type_for_everyone`).
/// The column's default casts the context's tenant to that type and the
/// policies cast the read set to its array: that code runs as every role
/// that writes or reads the table, superusers included, and another
/// role's could map one tenant to another; the owner of an enum can rename
/// its values, moving every row of one tenant to another without an
/// UPDATE.
fn require_trusted_tenant_type(oid: pg_sys::Oid, r: &Relation, col: &str) {
    let owner = crate::privileged::table_owner(oid);
    let ty = crate::privileged::column_type(oid, col);
    // The rules convert each tenant id to the column's type and compare
    // with that type's `=`: only types whose conversion is exact and
    // independent of the session, and whose `=` means the same value, are
    // accepted (an allow-list: round 4 of the attack tests found ranges of
    // dates read through DateStyle, reg* types through search_path, and box,
    // whose = compares areas). Measured before: "char" and name cut ids,
    // real rounded 16777217 to 16777216, a date column read 01/02/2024 as
    // 2024-02-01 after SET DateStyle = 'ISO, DMY'.
    // SAFETY: a type OID (or InvalidOid, returned unchanged); reads the
    // type cache.
    let base = unsafe { pg_sys::getBaseType(ty) };
    if !exact_tenant_type(base) {
        Failure::new(
            Code::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "the tenant column \"{col}\" of \"{}\" is of a type that can turn different tenant ids into one value",
                r.display
            ),
        )
        .detail(format!(
            "The tenant rules convert each tenant id to {} and compare with its =. Accepted: text, varchar, char(n), smallint, integer, bigint, numeric, uuid, an enum, or a domain over one of them; other types cut or round ids (\"char\", name, real), read them through the session's settings (date and time types, ranges of them, reg* types through search_path), or have an = that is not identity (box compares areas).",
            // SAFETY: format_type_be returns a palloc'd NUL-terminated
            // string (or raises).
            unsafe { std::ffi::CStr::from_ptr(pg_sys::format_type_be(base)) }.to_string_lossy()
        ))
        .hint("Use text, varchar, uuid or an integer type (ALTER TABLE ... ALTER COLUMN ... TYPE text).")
        .raise();
    }
    // A nondeterministic collation (ICU, e.g. case- or accent-insensitive)
    // makes the rules' `=` match other spellings: a token for ACME read
    // acme's rows (measured). The column's collation is the one compared
    // with (a domain's, unless the column names its own).
    let collation = pinned(|| {
        one::<String>(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.collname) \
               FROM pg_catalog.pg_attribute a \
               JOIN pg_catalog.pg_collation c ON c.oid OPERATOR(pg_catalog.=) a.attcollation \
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.collnamespace \
              WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name \
                AND NOT c.collisdeterministic",
            &[oid.into(), col.into()],
        )
    });
    if let Some(c) = collation {
        Failure::new(
            Code::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "the tenant column \"{col}\" of \"{}\" has the nondeterministic collation {c}",
                r.display
            ),
        )
        .detail("The tenant rules compare ids in the column's collation: different tenant ids it counts as equal (ACME and acme) would read each other's rows.")
        .hint("Give the column a deterministic collation (ALTER TABLE ... ALTER COLUMN ... TYPE text COLLATE \"C\"), and issue tenant ids in one spelling.")
        .raise();
    }
    if let Some(why) = crate::privileged::untrusted_type_for_everyone(ty, owner) {
        Failure::new(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "the tenant column \"{col}\" of \"{}\" is of a type whose code could run another role's code for every reader and writer",
                r.display
            ),
        )
        .detail(format!(
            "{}. The column's default and policies cast tenant ids to this type (a domain: its base type in the policies): its casts would run as every role that writes or reads the table, a domain's checks as every role that writes it, and its owner could change which tenant a row belongs to (renaming an enum's values).",
            crate::error::capitalized(&why)
        ))
        .hint(format!(
            "Use a built-in type (text, uuid, bigint), or a type of the table's owner \"{}\" (ALTER TYPE or ALTER DOMAIN ... OWNER TO ...) whose casts to and from text and whose checks call only built-in functions.",
            crate::privileged::role_name(owner)
        ))
        .raise();
    }
}

// `policy::EXACT_TENANT_TYPES` (a pure module, no pgrx) names the accepted
// types by OID: they must be these, in this order (checked at compile time).
const _: () = {
    let named = [
        pg_sys::TEXTOID,
        pg_sys::VARCHAROID,
        pg_sys::BPCHAROID,
        pg_sys::INT2OID,
        pg_sys::INT4OID,
        pg_sys::INT8OID,
        pg_sys::NUMERICOID,
        pg_sys::UUIDOID,
    ];
    let mut i = 0;
    while i < named.len() {
        assert!(named[i].to_u32() == crate::policy::EXACT_TENANT_TYPES[i]);
        i += 1;
    }
};

/// Whether tenant ids compare exactly in `base` (a type that is not a
/// domain): converting a tenant id to it is exact and does not depend on the
/// session's settings, and its `=` means the same value. An enum's casts,
/// checks and owner are the type rule's (`privileged::untrusted_type`).
pub fn exact_tenant_type(base: pg_sys::Oid) -> bool {
    // SAFETY: a type OID; `type_is_enum` reads the type cache (false for
    // an unknown OID).
    crate::policy::EXACT_TENANT_TYPES.contains(&base.to_u32())
        || unsafe { pg_sys::type_is_enum(base) }
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
    let (col_type, col_domain, default) = column(oid, &r, col);
    require_trusted_tenant_type(oid, &r, col);
    let rec = recorded(oid);
    // A partition protected on its own (by the DDL guard) still records the
    // protected parent it belongs to.
    let parent = parent.or_else(|| {
        r.is_partition
            .then(|| {
                pinned(|| {
                    one::<pg_sys::Oid>(
                        "SELECT p.relid::pg_catalog.oid FROM pg_catalog.pg_inherits i \
                           JOIN tenant_guard.protected p \
                             ON p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) i.inhparent \
                          WHERE i.inhrelid OPERATOR(pg_catalog.=) $1",
                        &[oid.into()],
                    )
                })
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
    let mut st = state(
        oid,
        &r,
        col,
        (col_type, col_domain),
        &default,
        Some(opts.mode),
    );
    st.recorded = rec.as_ref().map(|x| x.opts);
    let mut ddl = policy::render_protect(&st, opts);
    if !dry_run {
        require_owner(oid, &r);
        // Recorded first: the DDL below fires the DDL event trigger, which
        // must see this table as protected already.
        let previous_default = if st.default_is_ours { None } else { default };
        as_extension_owner(|| {
            spi(Spi::run_with_args(
                "INSERT INTO tenant_guard.protected AS p \
                   (relid, parent, tenant_column, mode, force, rls_was_enabled, rls_was_forced, previous_default) \
                 VALUES ($1::pg_catalog.oid, $2::pg_catalog.oid, $3, $4, $5, $6, $7, $8) \
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
        run(oid, &ddl);
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
    if !dry_run.unwrap_or(false) {
        crate::error::require_writable(c"tenant_guard.protect()");
    }
    let opts = options(mode, force);
    let col = self::tenant_column(tenant_column);
    // Close the relation: ALTER TABLE refuses a table this session holds open.
    let oid = tbl.oid();
    drop(tbl);
    let dry = dry_run.unwrap_or(false);
    let shared = (!dry && opts.mode == Mode::Permissive)
        .then(|| shared_rows(oid, &col, "protect"))
        .flatten();
    if !dry {
        lock_tables(&[oid], "protect");
    }
    let ddl = protect_oid(oid, &col, opts, dry, None);
    notice_shared_rows(oid, shared);
    SetOfIterator::new(ddl)
}

/// Takes ACCESS EXCLUSIVE (what ENABLE ROW LEVEL SECURITY, CREATE POLICY
/// and SET DEFAULT take) on each table and its partitions up front, in the
/// order given, under `tenant_guard.lock_timeout` (see
/// `integrity_sql::locks`; 55P03 naming the table, nothing changed).
pub fn lock_tables(tables: &[pg_sys::Oid], why: &str) {
    let mut set = crate::integrity_sql::locks::LockSet::default();
    for &t in tables {
        set.add_tree(t, crate::integrity_sql::locks::ACCESS_EXCLUSIVE);
    }
    set.take(why);
}

/// The rows of `oid` without a tenant, which `permissive` mode shares
/// read-only with every tenant (their UPDATE and DELETE match 0 rows).
/// Counted as the table's owner, and only when the caller may read every
/// row itself (`privileged::can_read_all`; `None` otherwise). Counted
/// before the helpers take their locks, so the count holds no lock but
/// ACCESS SHARE; that lock, on the table and its partitions, is taken first
/// under `tenant_guard.lock_timeout` (55P03 naming the table, nothing
/// changed), so a transaction holding ACCESS EXCLUSIVE does not make the
/// helper (`why`) wait without bound.
pub fn shared_rows(oid: pg_sys::Oid, col: &str, why: &str) -> Option<i64> {
    if !crate::privileged::can_read_all(oid) {
        return None;
    }
    let mut set = crate::integrity_sql::locks::LockSet::default();
    set.add_tree(oid, crate::integrity_sql::locks::ACCESS_SHARE);
    set.take(why);
    let r = relation(oid);
    as_table_owner(oid, || {
        one::<i64>(
            &format!(
                "SELECT pg_catalog.count(*) FROM {} WHERE {} IS NULL",
                r.name,
                crate::quote::ident(col)
            ),
            &[],
        )
    })
}

/// The NOTICE after a table is protected `permissive` with `n` rows
/// without a tenant (see [`shared_rows`]); nothing when there are none.
pub fn notice_shared_rows(oid: pg_sys::Oid, n: Option<i64>) {
    let Some(n) = n.filter(|n| *n > 0) else {
        return;
    };
    Failure::new(
        Code::ERRCODE_WARNING,
        format!(
            "{n} row(s) of {} have no tenant: in permissive mode every tenant can read them and none can change them",
            crate::privileged::qualified_name(oid)
        ),
    )
    .detail("A tenant's UPDATE or DELETE of such a row matches 0 rows, without an error.")
    .hint("Fill the tenant column (tenant_guard.backfill_tenant) before rollout('tighten'); tenant_guard.advisor lists these tables as shared_null_tenant_rows.")
    .report(PgLogLevel::NOTICE);
}

/// The tables of `schema` (not partitions) that have the column `col`, by
/// name; 3F000 when the schema does not exist.
pub fn tables_with_column(schema: &str, col: &str) -> Vec<pg_sys::Oid> {
    crate::catalog::require_schema(schema);
    pinned(|| {
        Spi::connect(|c| {
            spi(c.select(
                "SELECT c.oid FROM pg_catalog.pg_class c \
                   JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
                  WHERE n.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name \
                    AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog.\"char\"[]) \
                    AND NOT c.relispartition \
                    AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a \
                                 WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid \
                                   AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name \
                                   AND a.attnum OPERATOR(pg_catalog.>) 0::pg_catalog.int2 \
                                   AND NOT a.attisdropped) \
                  ORDER BY c.relname",
                None,
                &[schema.into(), col.into()],
            ))
            .filter_map(|row| spi(row.get::<pg_sys::Oid>(1)))
            .collect()
        })
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
    if !dry_run.unwrap_or(false) {
        crate::error::require_writable(c"tenant_guard.protect_schema()");
    }
    let opts = options(mode, force);
    let col = self::tenant_column(tenant_column);
    let tables = tables_with_column(schema, &col);
    let dry = dry_run.unwrap_or(false);
    let shared: Vec<Option<i64>> = tables
        .iter()
        .map(|&t| {
            (!dry && opts.mode == Mode::Permissive)
                .then(|| shared_rows(t, &col, "protect_schema"))
                .flatten()
        })
        .collect();
    if !dry {
        // Every table first, by OID (not table after table in name order).
        let mut by_oid = tables.clone();
        by_oid.sort_by_key(|o| u32::from(*o));
        lock_tables(&by_oid, "protect_schema");
    }
    let ddl: Vec<String> = tables
        .iter()
        .flat_map(|&oid| protect_oid(oid, &col, opts, dry, None))
        .collect();
    for (&oid, n) in tables.iter().zip(shared) {
        notice_shared_rows(oid, n);
    }
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
    if !dry_run.unwrap_or(false) {
        crate::error::require_writable(c"tenant_guard.unprotect()");
    }
    let dry = dry_run.unwrap_or(false);
    let root = tbl.oid();
    let display = tbl.name().to_owned();
    drop(tbl);
    let tables: Vec<pg_sys::Oid> = pinned(|| {
        Spi::connect(|c| {
            spi(c.select(
                "SELECT p.relid::pg_catalog.oid FROM tenant_guard.protected p \
                  WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY \
                        (SELECT t.relid::pg_catalog.oid FROM pg_catalog.pg_partition_tree($1::pg_catalog.regclass) t) \
                     OR p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1 \
                  ORDER BY (p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1) DESC, p.relid::pg_catalog.oid",
                None,
                &[root.into()],
            ))
            .filter_map(|row| spi(row.get::<pg_sys::Oid>(1)))
            .collect()
        })
    });
    if tables.is_empty() {
        notice!("\"{display}\" is not protected by tenant_guard");
        return SetOfIterator::new(Vec::new());
    }
    if !dry {
        lock_tables(&tables, "unprotect");
    }
    let mut ddl = Vec::new();
    for oid in tables {
        let r = relation(oid);
        let Some(rec) = recorded(oid) else { continue };
        let (col_type, col_domain, default) = column(oid, &r, &rec.column);
        let st = state(oid, &r, &rec.column, (col_type, col_domain), &default, None);
        let mut mine = policy::render_unprotect(&st, &rec.before);
        if !dry {
            require_owner(oid, &r);
            let _busy = Busy::enter();
            run(oid, &mine);
            as_extension_owner(|| {
                spi(Spi::run_with_args(
                    "DELETE FROM tenant_guard.protected \
                      WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
                    &[oid.into()],
                ))
            });
        }
        ddl.append(&mut mine);
    }
    SetOfIterator::new(ddl)
}

/// Every way a protected table differs from what `protect` would leave with
/// the recorded options; `None` when the table is not protected.
pub fn drift(oid: pg_sys::Oid) -> Option<Vec<String>> {
    let rec = recorded(oid)?;
    let r = relation(oid);
    let Some((col_type, col_domain, default)) = crate::catalog::column_if_any(oid, &rec.column)
    else {
        return Some(vec![format!("tenant column {} missing", rec.column)]);
    };
    let shape = shape();
    let (fits, extra) = policy_fits(
        oid,
        &r.name,
        &rec.column,
        &col_type,
        col_domain,
        rec.opts.mode,
        shape,
    );
    let triggers = actual_triggers(oid, &rec.column);
    let st = TableState {
        default_stale: default_stale(&default, &col_type),
        name: r.name.clone(),
        column: rec.column.clone(),
        col_type,
        col_domain,
        is_partition: r.is_partition,
        partitioned: r.relkind == b'p',
        rls_enabled: r.rls_enabled,
        rls_forced: r.rls_forced,
        default_is_ours: default_is_ours(&default),
        shape,
        ..TableState::default()
    };
    let mut found =
        policy::drift_report(&st, rec.opts, &fits, &extra, &triggers, default.is_some());
    // PostgreSQL applies the policies of the table a query names, not of its
    // children: a parent that tenant_guard does not protect (`INHERIT`,
    // `ATTACH PARTITION`) reads and writes every tenant's rows of this table.
    found.extend(
        unprotected_parents(oid)
            .into_iter()
            .map(|p| format!("parent table {p} not protected")),
    );
    // The tenant column's type as protect's type rule judges it now: a
    // type or domain given to another role since, or a domain check added
    // since, runs that role's code for every writer (protect refuses such
    // a column; the DDL guard refuses the change that makes it so).
    let ty = crate::privileged::column_type(oid, &rec.column);
    if let Some(why) =
        crate::privileged::untrusted_type_for_everyone(ty, crate::privileged::table_owner(oid))
    {
        found.push(format!("tenant column type unsafe: {why}"));
    }
    Some(found)
}

/// The parents (inheritance or partitioning) of `oid` that are not in
/// `tenant_guard.protected`, as `schema.table` (pinned, caller's rights).
fn unprotected_parents(oid: pg_sys::Oid) -> Vec<String> {
    pinned(|| {
        Spi::connect(|c| {
            spi(c.select(
                "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) \
                   FROM pg_catalog.pg_inherits i \
                   JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhparent \
                   JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
                  WHERE i.inhrelid OPERATOR(pg_catalog.=) $1 \
                    AND NOT EXISTS (SELECT 1 FROM tenant_guard.protected p \
                                     WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) i.inhparent) \
                  ORDER BY 1",
                None,
                &[oid.into()],
            ))
            .filter_map(|row| spi(row.get::<String>(1)))
            .collect()
        })
    })
}

/// What differs between a protected table and what `tenant_guard.protect`
/// renders for the options recorded in `tenant_guard.protected`: policies
/// (command, permissive or restrictive, roles, expressions as deparsed by
/// PostgreSQL), row-level security enabled and forced, the tenant column's
/// default, tenant_guard's triggers, and permissive policies that are not
/// tenant_guard's. Empty when nothing differs, NULL when the table is not
/// protected. Re-running protect repairs all but the extra policies.
///
/// Rights: catalog reads with the caller's rights, `search_path` pinned;
/// the expressions protect renders are parsed (never executed) as the
/// table's owner, restricted, as protect's CREATE POLICY does.
#[pg_extern(stable, parallel_unsafe, schema = "tenant_guard")]
fn protection_drift(tbl: pgrx::PgRelation) -> Option<Vec<String>> {
    let oid = tbl.oid();
    drop(tbl);
    drift(oid)
}
