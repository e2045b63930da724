//! Tenant integrity: pure rendering of composite foreign keys, NOT NULL
//! steps and violation queries. `integrity_sql.rs` reads the catalog and runs
//! them.
//!
//! Rules kept here, each a way tenants leak into each other otherwise:
//! * Foreign keys between tenant tables include the tenant column on both
//!   sides, so a child can only reference a parent of its own tenant. The
//!   check runs inside PostgreSQL's referential triggers, which ignore
//!   row-level security, so a reference to another tenant's parent fails with
//!   the same error as a reference to a parent that does not exist.
//! * `MATCH SIMPLE` skips the check when any column is NULL, so a NULL
//!   tenant would switch it off: composite keys are only added once the
//!   child's tenant column is NOT NULL. (`MATCH FULL` is no answer: it also
//!   rejects every row whose optional reference is NULL.)
//! * `ON DELETE SET NULL` / `SET DEFAULT` name their columns (PostgreSQL 15
//!   and later), never the tenant column. `ON UPDATE SET NULL` cannot name
//!   columns, so it becomes `NO ACTION` (a row's tenant never changes anyway).

use crate::quote::ident;

/// PostgreSQL's identifier length limit (NAMEDATALEN - 1).
const MAX_IDENT: usize = 63;

/// Longest prefix of `name` of at most `max` bytes, on a character boundary
/// (PostgreSQL's `pg_mbcliplen`).
fn clip(name: &str, max: usize) -> &str {
    if name.len() <= max {
        return name;
    }
    let mut end = max;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Truncates a name to 63 bytes on a character boundary.
#[cfg(test)]
pub fn truncate_name(name: &str) -> String {
    clip(name, MAX_IDENT).to_owned()
}

/// `<name>_<suffix>`, shortening `name` (never the suffix) to fit in 63
/// bytes, so the result always differs from `name` (a temporary name beside
/// the object it replaces).
pub fn with_suffix(name: &str, suffix: &str) -> String {
    let room = MAX_IDENT.saturating_sub(suffix.len() + 1);
    format!("{}_{suffix}", clip(name, room))
}

/// `<table>_<col>_<col>_<suffix>`, as PostgreSQL's `makeObjectName` builds
/// the names of its own constraints and indexes: the suffix is kept whole,
/// and the longer of the table and column parts is shortened first.
pub fn object_name(table: &str, cols: &[&str], suffix: &str) -> String {
    let name2 = cols.join("_");
    let mut overhead = suffix.len() + 1;
    if !name2.is_empty() {
        overhead += 1;
    }
    let avail = MAX_IDENT.saturating_sub(overhead);
    let (mut n1, mut n2) = (table.len(), name2.len());
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let a = clip(table, n1);
    let b = clip(&name2, n2);
    if b.is_empty() {
        format!("{a}_{suffix}")
    } else {
        format!("{a}_{b}_{suffix}")
    }
}

/// `OPERATOR("schema".op)` for an operator found in the catalog, or `None`
/// when the name holds a character no operator name can (never rendered).
pub fn operator(schema: &str, name: &str) -> Option<String> {
    let ok = !name.is_empty() && name.chars().all(|c| "+-*/<>=~!@#%^&|`?".contains(c));
    ok.then(|| format!("OPERATOR({}.{name})", ident(schema)))
}

/// The operator for comparisons between values of built-in types.
pub const EQ: &str = "OPERATOR(pg_catalog.=)";

fn col_list(cols: &[&str]) -> String {
    cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
}

/// A foreign key to render.
#[derive(Debug, Clone, PartialEq)]
pub struct FkSpec {
    pub name: String,
    /// Quoted, qualified names.
    pub child: String,
    pub parent: String,
    pub tenant: String,
    /// Referencing / referenced columns, without the tenant column.
    pub cols: Vec<String>,
    pub pcols: Vec<String>,
    /// The equality operators `parent OP child`, rendered (`OPERATOR(…)`),
    /// for the tenant pair first and then each key pair.
    pub ops: Vec<String>,
    /// `pg_constraint` action codes: a r c n d.
    pub on_update: char,
    pub on_delete: char,
    pub deferrable: bool,
    pub deferred: bool,
}

fn action(code: char, cols: &[&str], allow_cols: bool) -> Option<String> {
    let with_cols = |verb: &str| {
        if allow_cols {
            format!("{verb} ({})", col_list(cols))
        } else {
            // ON UPDATE cannot name columns: keep the tenant column intact.
            "NO ACTION".to_owned()
        }
    };
    match code {
        'r' => Some("RESTRICT".into()),
        'c' => Some("CASCADE".into()),
        'n' => Some(with_cols("SET NULL")),
        'd' => Some(with_cols("SET DEFAULT")),
        _ => None, // 'a': NO ACTION, the default
    }
}

/// `ALTER TABLE child ADD CONSTRAINT … FOREIGN KEY (tenant, …) REFERENCES
/// parent (tenant, …) … NOT VALID`.
pub fn render_fk(f: &FkSpec) -> String {
    let cols: Vec<&str> = f.cols.iter().map(String::as_str).collect();
    let mut all: Vec<&str> = vec![f.tenant.as_str()];
    all.extend(&cols);
    let mut pall: Vec<&str> = vec![f.tenant.as_str()];
    pall.extend(f.pcols.iter().map(String::as_str));
    let mut s = format!(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})",
        f.child,
        ident(&f.name),
        col_list(&all),
        f.parent,
        col_list(&pall)
    );
    if let Some(a) = action(f.on_update, &cols, false).filter(|a| a != "NO ACTION") {
        s.push_str(&format!(" ON UPDATE {a}"));
    }
    if let Some(a) = action(f.on_delete, &cols, true) {
        s.push_str(&format!(" ON DELETE {a}"));
    }
    if f.deferrable {
        s.push_str(" DEFERRABLE");
        if f.deferred {
            s.push_str(" INITIALLY DEFERRED");
        }
    }
    s.push_str(" NOT VALID");
    s
}

/// A unique key led by the tenant column: a constraint (`ALTER TABLE … ADD
/// CONSTRAINT … UNIQUE`) or, with `index`, a unique index (keeping a partial
/// index's predicate).
pub fn render_unique(
    table: &str,
    name: &str,
    tenant: &str,
    cols: &[String],
    index: bool,
    predicate: Option<&str>,
) -> String {
    let mut all: Vec<&str> = vec![tenant];
    all.extend(cols.iter().map(String::as_str).filter(|c| *c != tenant));
    let list = col_list(&all);
    if index {
        format!(
            "CREATE UNIQUE INDEX {} ON {table} ({list}){}",
            ident(name),
            predicate.map(|p| format!(" WHERE {p}")).unwrap_or_default()
        )
    } else {
        format!(
            "ALTER TABLE {table} ADD CONSTRAINT {} UNIQUE ({list})",
            ident(name)
        )
    }
}

/// How a unique key led by the tenant column is built, one statement per
/// step. On a plain table a constraint becomes two steps, the index build
/// and `ADD CONSTRAINT … UNIQUE USING INDEX` (which only attaches it), so
/// that `concurrently` (the dry runs: statements to run one per
/// transaction on a live table) can build the index with `CREATE UNIQUE
/// INDEX CONCURRENTLY`, which PostgreSQL refuses inside a function or a
/// transaction block. A partitioned table supports neither, and keeps the
/// single `ADD CONSTRAINT … UNIQUE` (or a plain `CREATE UNIQUE INDEX`).
#[allow(clippy::too_many_arguments)]
pub fn unique_steps(
    table: &str,
    name: &str,
    tenant: &str,
    cols: &[String],
    index: bool,
    predicate: Option<&str>,
    partitioned: bool,
    concurrently: bool,
) -> Vec<String> {
    if partitioned {
        return vec![render_unique(table, name, tenant, cols, index, predicate)];
    }
    let mut build = render_unique(table, name, tenant, cols, true, predicate);
    if concurrently {
        build = build.replacen(
            "CREATE UNIQUE INDEX ",
            "CREATE UNIQUE INDEX CONCURRENTLY ",
            1,
        );
    }
    let mut steps = vec![build];
    if !index {
        steps.push(format!(
            "ALTER TABLE {table} ADD CONSTRAINT {} UNIQUE USING INDEX {}",
            ident(name),
            ident(name)
        ));
    }
    steps
}

/// `CREATE INDEX [CONCURRENTLY] name ON table (cols)`.
pub fn render_index(table: &str, name: &str, cols: &[String], concurrently: bool) -> String {
    let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    format!(
        "CREATE INDEX {}{} ON {table} ({})",
        if concurrently { "CONCURRENTLY " } else { "" },
        ident(name),
        col_list(&refs)
    )
}

/// `p.a OP c.x AND p.b OP c.y …`: the key join, each pair with its own
/// (schema-qualified) equality operator.
pub fn key_join(cols: &[&str], pcols: &[&str], ops: &[String]) -> String {
    cols.iter()
        .zip(pcols)
        .zip(ops.iter().map(String::as_str).chain(std::iter::repeat(EQ)))
        .map(|((c, p), op)| format!("p.{} {op} c.{}", ident(p), ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The condition a child row `c` violates the composite key under (rows the
/// key would not check are not violations).
pub fn violation_condition(f: &FkSpec) -> String {
    let mut all: Vec<&str> = vec![f.tenant.as_str()];
    all.extend(f.cols.iter().map(String::as_str));
    let mut pall: Vec<&str> = vec![f.tenant.as_str()];
    pall.extend(f.pcols.iter().map(String::as_str));
    let not_null = all
        .iter()
        .map(|c| format!("c.{} IS NOT NULL", ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let join = key_join(&all, &pall, &f.ops);
    format!(
        "({not_null} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {join}))",
        f.parent
    )
}

/// Counts the violations of `f`, and lists up to 10 of the offending keys.
/// Both run as the child table's owner: the sample casts the child's
/// columns (of types it chose) to text.
pub fn violation_queries(f: &FkSpec) -> (String, String) {
    let cond = violation_condition(f);
    let mut all: Vec<&str> = vec![f.tenant.as_str()];
    all.extend(f.cols.iter().map(String::as_str));
    let key = all
        .iter()
        .map(|c| {
            format!(
                "COALESCE(c.{}::pg_catalog.text, 'NULL'::pg_catalog.text)",
                ident(c)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    (
        format!("SELECT pg_catalog.count(*) FROM {} c WHERE {cond}", f.child),
        format!(
            "SELECT pg_catalog.string_agg(s.k, ', '::pg_catalog.text) FROM \
               (SELECT pg_catalog.concat('('::pg_catalog.text, pg_catalog.concat_ws(', '::pg_catalog.text, {key}), ')'::pg_catalog.text) AS k \
                  FROM {} c WHERE {cond} ORDER BY 1 LIMIT 10) s",
            f.child
        ),
    )
}

/// The lock-friendly steps to make a column NOT NULL: a NOT VALID check
/// (instant), its validation (a scan under a lock that lets reads and writes
/// go on), SET NOT NULL (no scan: PostgreSQL uses the validated check), and
/// dropping the check again.
pub fn not_null_steps(table: &str, column: &str, check_name: &str) -> Vec<String> {
    let c = ident(column);
    let k = ident(check_name);
    vec![
        format!("ALTER TABLE {table} ADD CONSTRAINT {k} CHECK ({c} IS NOT NULL) NOT VALID"),
        format!("ALTER TABLE {table} VALIDATE CONSTRAINT {k}"),
        format!("ALTER TABLE {table} ALTER COLUMN {c} SET NOT NULL"),
        format!("ALTER TABLE {table} DROP CONSTRAINT {k}"),
    ]
}

/// One backfill batch: fill the NULL tenants of the child rows stored in
/// the block range `[$1, $2)` (as `tid` text, e.g. `(0,0)`) whose parent,
/// through the key `cols` -> `pcols` (compared with `ops`, the foreign
/// key's own equality operators), has a tenant. Walking the table by block
/// ranges makes the whole backfill one pass (a `LIMIT` batch would rescan
/// the filled rows every time) and keeps each statement small.
pub fn backfill_batch_sql(
    child: &str,
    parent: &str,
    tenant: &str,
    cols: &[String],
    pcols: &[String],
    ops: &[String],
) -> String {
    let t = ident(tenant);
    let c: Vec<&str> = cols.iter().map(String::as_str).collect();
    let p: Vec<&str> = pcols.iter().map(String::as_str).collect();
    let join = key_join(&c, &p, ops);
    format!(
        "UPDATE {child} c SET {t} = p.{t} FROM {parent} p \
          WHERE c.ctid OPERATOR(pg_catalog.>=) $1::pg_catalog.tid AND c.ctid OPERATOR(pg_catalog.<) $2::pg_catalog.tid \
            AND c.{t} IS NULL AND p.{t} IS NOT NULL AND {join}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FkSpec {
        FkSpec {
            name: "ServiceRequest_tenantId_accountId_fkey".into(),
            child: "\"public\".\"ServiceRequest\"".into(),
            parent: "\"public\".\"Account\"".into(),
            tenant: "tenantId".into(),
            cols: vec!["accountId".into()],
            pcols: vec!["id".into()],
            ops: vec![EQ.into(), EQ.into()],
            on_update: 'a',
            on_delete: 'a',
            deferrable: false,
            deferred: false,
        }
    }

    #[test]
    fn composite_fk_includes_the_tenant_on_both_sides() {
        assert_eq!(
            render_fk(&spec()),
            "ALTER TABLE \"public\".\"ServiceRequest\" ADD CONSTRAINT \"ServiceRequest_tenantId_accountId_fkey\" \
             FOREIGN KEY (\"tenantId\", \"accountId\") REFERENCES \"public\".\"Account\" (\"tenantId\", \"id\") NOT VALID"
        );
    }

    #[test]
    fn set_null_never_touches_the_tenant_column() {
        let mut f = spec();
        f.on_delete = 'n';
        f.on_update = 'n';
        let s = render_fk(&f);
        assert!(s.contains("ON DELETE SET NULL (\"accountId\")"), "{s}");
        assert!(!s.contains("ON UPDATE"), "{s}");
        f.on_delete = 'd';
        assert!(render_fk(&f).contains("ON DELETE SET DEFAULT (\"accountId\")"));
        f.on_delete = 'c';
        f.on_update = 'r';
        let s = render_fk(&f);
        assert!(s.contains("ON UPDATE RESTRICT ON DELETE CASCADE"), "{s}");
    }

    #[test]
    fn deferrability_is_kept() {
        let mut f = spec();
        f.deferrable = true;
        f.deferred = true;
        assert!(render_fk(&f).ends_with("DEFERRABLE INITIALLY DEFERRED NOT VALID"));
    }

    #[test]
    fn violations_compare_tenant_and_key() {
        let (count, sample) = violation_queries(&spec());
        assert!(
            count.contains(
                "p.\"tenantId\" OPERATOR(pg_catalog.=) c.\"tenantId\" AND p.\"id\" OPERATOR(pg_catalog.=) c.\"accountId\""
            ),
            "{count}"
        );
        assert!(count
            .starts_with("SELECT pg_catalog.count(*) FROM \"public\".\"ServiceRequest\" c WHERE"));
        assert!(sample.contains("LIMIT 10"));
        // Nothing left to the search_path: no bare operator, no bare cast.
        for q in [&count, &sample] {
            assert!(!q.contains(" = "), "{q}");
            assert!(!q.contains("||"), "{q}");
            assert!(!q.contains("::text"), "{q}");
        }
    }

    #[test]
    fn operators_are_qualified_and_checked() {
        assert_eq!(
            operator("pg_catalog", "=").as_deref(),
            Some("OPERATOR(\"pg_catalog\".=)")
        );
        assert_eq!(
            operator("s.\"x", "===").as_deref(),
            Some("OPERATOR(\"s.\"\"x\".===)")
        );
        assert_eq!(operator("s", "=) OR (1"), None);
        assert_eq!(operator("s", ""), None);
        let j = key_join(&["a", "b"], &["x", "y"], &["OPERATOR(\"s\".=)".into()]);
        assert_eq!(
            j,
            "p.\"x\" OPERATOR(\"s\".=) c.\"a\" AND p.\"y\" OPERATOR(pg_catalog.=) c.\"b\""
        );
    }

    #[test]
    fn names_are_truncated_like_postgres() {
        let long = "x".repeat(80);
        assert_eq!(object_name(&long, &["a"], "fkey").len(), 63);
        assert_eq!(
            object_name("orders", &["tenant_id", "id"], "key"),
            "orders_tenant_id_id_key"
        );
        // Never in the middle of a character.
        let multi = "é".repeat(40);
        assert!(truncate_name(&multi).len() <= 63);
        assert!(truncate_name(&multi).chars().all(|c| c == 'é'));
        // makeObjectName: the suffix stays whole, the longer part shrinks.
        let n = object_name(&"t".repeat(60), &["tenant_id", "id"], "fkey");
        assert_eq!(n.len(), 63);
        assert!(n.ends_with("_tenant_id_id_fkey"), "{n}");
        let n = object_name("orders", &[&"c".repeat(70)], "key");
        assert_eq!(n, format!("orders_{}_key", "c".repeat(63 - 11)));
        let n = object_name(&"é".repeat(40), &["tenant_id"], "not_null");
        assert!(n.len() <= 63 && n.ends_with("_tenant_id_not_null"), "{n}");
    }

    #[test]
    fn temporary_names_never_equal_a_63_byte_name() {
        let long = "i".repeat(63);
        let t = with_suffix(&long, "tenant");
        assert_eq!(t.len(), 63);
        assert_ne!(t, long);
        assert!(t.ends_with("_tenant"));
        assert_eq!(with_suffix("k", "tenant"), "k_tenant");
        let multi = "é".repeat(31); // 62 bytes
        let t = with_suffix(&multi, "tenant");
        assert!(t.len() <= 63 && t.ends_with("_tenant"), "{t}");
    }

    #[test]
    fn unique_keys_lead_with_the_tenant() {
        assert_eq!(
            render_unique("\"public\".\"P\"", "P_code_key", "tenantId", &["code".into()], false, None),
            "ALTER TABLE \"public\".\"P\" ADD CONSTRAINT \"P_code_key\" UNIQUE (\"tenantId\", \"code\")"
        );
        assert_eq!(
            render_unique(
                "t",
                "i",
                "tenant_id",
                &["slug".into(), "tenant_id".into()],
                true,
                Some("(deleted IS NULL)")
            ),
            "CREATE UNIQUE INDEX \"i\" ON t (\"tenant_id\", \"slug\") WHERE (deleted IS NULL)"
        );
    }

    /// Dry runs: the index is built CONCURRENTLY and then attached, so each
    /// statement can run in its own transaction; partitioned tables keep
    /// the one-statement form (PostgreSQL supports neither step there).
    #[test]
    fn unique_keys_build_the_index_first() {
        let s = unique_steps(
            "t",
            "k",
            "tenant_id",
            &["a".into()],
            false,
            None,
            false,
            true,
        );
        assert_eq!(
            s,
            vec![
                "CREATE UNIQUE INDEX CONCURRENTLY \"k\" ON t (\"tenant_id\", \"a\")".to_owned(),
                "ALTER TABLE t ADD CONSTRAINT \"k\" UNIQUE USING INDEX \"k\"".to_owned(),
            ]
        );
        let s = unique_steps(
            "t",
            "k",
            "tenant_id",
            &["a".into()],
            false,
            None,
            false,
            false,
        );
        assert_eq!(
            s[0],
            "CREATE UNIQUE INDEX \"k\" ON t (\"tenant_id\", \"a\")"
        );
        let s = unique_steps(
            "t",
            "k",
            "tenant_id",
            &["a".into()],
            true,
            Some("(x)"),
            false,
            true,
        );
        assert_eq!(
            s,
            vec![
                "CREATE UNIQUE INDEX CONCURRENTLY \"k\" ON t (\"tenant_id\", \"a\") WHERE (x)"
                    .to_owned()
            ]
        );
        let s = unique_steps(
            "t",
            "k",
            "tenant_id",
            &["a".into()],
            false,
            None,
            true,
            true,
        );
        assert_eq!(
            s,
            vec!["ALTER TABLE t ADD CONSTRAINT \"k\" UNIQUE (\"tenant_id\", \"a\")".to_owned()]
        );
        assert_eq!(
            render_index("t", "i", &["tenant_id".into(), "a".into()], true),
            "CREATE INDEX CONCURRENTLY \"i\" ON t (\"tenant_id\", \"a\")"
        );
    }

    /// Citus rules for distributed tables (distribution column = tenant):
    /// every unique key and foreign key includes it, and no action nulls it.
    #[test]
    fn generated_keys_follow_citus_rules() {
        for on_delete in ['a', 'r', 'c', 'n', 'd'] {
            for on_update in ['a', 'r', 'c', 'n', 'd'] {
                let mut f = spec();
                f.on_delete = on_delete;
                f.on_update = on_update;
                let s = render_fk(&f);
                assert!(s.contains("FOREIGN KEY (\"tenantId\", "), "{s}");
                assert!(s.contains("(\"tenantId\", \"id\")"), "{s}");
                assert!(
                    !s.contains("SET NULL (\"tenantId\"")
                        && !s.contains("SET DEFAULT (\"tenantId\""),
                    "{s}"
                );
                assert!(!s.contains("ON UPDATE SET"), "{s}");
            }
        }
        let u = render_unique("t", "k", "tenantId", &["a".into()], false, None);
        assert!(u.contains("UNIQUE (\"tenantId\""));
    }

    #[test]
    fn not_null_is_four_lock_friendly_steps() {
        let s = not_null_steps("\"public\".\"T\"", "tenantId", "T_tenantId_not_null");
        assert_eq!(s.len(), 4);
        assert!(s[0].ends_with("CHECK (\"tenantId\" IS NOT NULL) NOT VALID"));
        assert!(s[1].contains("VALIDATE CONSTRAINT"));
        assert!(s[2].ends_with("SET NOT NULL"));
        assert!(s[3].contains("DROP CONSTRAINT"));
    }

    #[test]
    fn backfill_batches_only_rows_whose_parent_has_a_tenant() {
        let s = backfill_batch_sql(
            "\"c\"",
            "\"p\"",
            "tenantId",
            &["pid".into()],
            &["id".into()],
            &["OPERATOR(\"app\".=)".into()],
        );
        assert!(
            s.contains(
                "c.\"tenantId\" IS NULL AND p.\"tenantId\" IS NOT NULL AND p.\"id\" OPERATOR(\"app\".=) c.\"pid\""
            ),
            "{s}"
        );
        assert!(s.contains("SET \"tenantId\" = p.\"tenantId\""));
        assert!(s.contains(
            "c.ctid OPERATOR(pg_catalog.>=) $1::pg_catalog.tid AND c.ctid OPERATOR(pg_catalog.<) $2::pg_catalog.tid"
        ));
    }
}
