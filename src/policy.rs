//! Row-level security generator: pure render functions. No PostgreSQL here;
//! `protect.rs` reads the catalog into a [`TableState`] and runs the DDL.
//!
//! What `protect` puts on a table (every object named `tenant_guard_*`):
//! * `ENABLE` and (by default) `FORCE ROW LEVEL SECURITY`: without FORCE the
//!   table owner bypasses every policy.
//! * One PERMISSIVE policy `USING (true) WITH CHECK (true)`: with row-level
//!   security on, rows are visible only through some permissive policy.
//! * The tenant rule in RESTRICTIVE policies, one per command. Restrictive
//!   policies are ANDed with everything else, so somebody else's permissive
//!   `USING (true)` cannot widen access. SELECT reads the *visible* set,
//!   INSERT/UPDATE/DELETE the *writable* one (UPDATE checks old and new row).
//! * The rule is `tenant = ANY (tenant_guard.visible_tenants()::type[])`: a
//!   stable function, evaluated once per scan, compared with the column in
//!   its own type. It is a plain index condition, so a tenant query plans like
//!   `WHERE tenant = $1`; multi-tenant and bypass contexts only change the
//!   array, never the shape of the plan (no `OR is_superadmin` branch). No
//!   subquery, so the same policy is valid on Citus distributed tables.
//! * A column default `tenant_guard.tenant_id()::type`.
//! * A row trigger refusing to change a row's tenant, and a statement trigger
//!   refusing TRUNCATE (which ignores row-level security) to tenant sessions.

use crate::quote::ident;

/// The tenant column types `protect` accepts (besides enums, and domains
/// over any of these): text, varchar, bpchar, int2, int4, int8, numeric,
/// uuid, by their fixed catalog OIDs. Their input either keeps every
/// character or refuses the value, their `=` is identity, and no session
/// setting changes how they read an id (`protect::exact_tenant_type`). The
/// advisor's `inexact_tenant_type` check names the same OIDs in SQL
/// (`sql/audit.sql` and the upgrade script); the unit test below holds both
/// copies to this list.
pub const EXACT_TENANT_TYPES: [u32; 8] = [25, 1043, 1042, 21, 23, 20, 1700, 2950];

/// `strict`: NULL-tenant rows are invisible. `permissive`: readable by every
/// tenant (shared rows during a rollout) but never writable by tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Strict,
    Permissive,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "strict" => Some(Mode::Strict),
            "permissive" => Some(Mode::Permissive),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Permissive => "permissive",
        }
    }
}

/// What protect was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub mode: Mode,
    pub force: bool,
}

/// How the tenant rules are put into policies.
///
/// * `Single`: one PERMISSIVE `USING (true)` policy and the tenant rules in
///   RESTRICTIVE policies, so that nobody else's permissive policy can widen
///   access.
/// * `Citus` (the `citus` extension is installed): the tenant rules in
///   per-command PERMISSIVE policies and no `USING (true)` policy. Citus
///   re-creates a table's policies on its shards without `AS RESTRICTIVE`;
///   with this shape a shard means exactly what the table means. Any other
///   permissive policy would widen access: the drift check reports it and
///   the DDL guard refuses to add one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    #[default]
    Single,
    Citus,
}

/// The policies protect creates in `shape`.
pub fn policy_names(shape: Shape) -> &'static [&'static str] {
    match shape {
        Shape::Single => &POLICIES,
        Shape::Citus => &CITUS_POLICIES,
    }
}

/// The catalog state of one table, as far as protect cares.
#[derive(Debug, Clone, Default)]
pub struct TableState {
    /// Schema-qualified, quoted name.
    pub name: String,
    pub column: String,
    /// The type the rules compare in (`catalog::TENANT_CAST_TYPE`).
    pub col_type: String,
    /// The column is of a domain: the rules cast it to `col_type` as well.
    pub col_domain: bool,
    /// A partition: its row trigger is cloned from the parent.
    pub is_partition: bool,
    /// A partitioned table.
    pub partitioned: bool,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    /// `tenant_guard_*` policies present.
    pub policies: Vec<String>,
    /// `tenant_guard_*` triggers present (not clones).
    pub triggers: Vec<String>,
    /// How each present tenant_guard policy compares with the rendering for
    /// the requested options (missing from the list: treated as current).
    pub fits: Vec<(String, Fit)>,
    /// tenant_guard triggers present but changed or disabled: recreated.
    pub stale_triggers: Vec<String>,
    /// A partition's clones of its parent's tenant_guard triggers that are
    /// disabled: enabled again (a clone cannot be dropped on its own).
    pub disabled_clones: Vec<String>,
    /// The column default is already ours.
    pub default_is_ours: bool,
    /// Ours, but not the rendering for `col_type` (0.1.0's, which cast to
    /// the column's type with its modifier): rewritten by protect, drift.
    pub default_stale: bool,
    /// Options recorded by an earlier protect.
    pub recorded: Option<Options>,
    /// The schema holding the trigger functions: [`INTERNAL_SCHEMA`], or
    /// [`API_SCHEMA`] in a database whose extension is still at 0.1.0's SQL
    /// while this library is loaded (`protect::trigger_schema`).
    pub trigger_schema: &'static str,
    /// How the tenant rules are put into policies.
    pub shape: Shape,
}

/// The schema of the documented API (`sql/bootstrap.sql` creates it).
pub const API_SCHEMA: &str = "tenant_guard";
/// The schema of the machinery: trigger functions, helpers behind the views
/// (since 0.2.0; `sql/bootstrap.sql` creates it).
pub const INTERNAL_SCHEMA: &str = "tenant_guard_internal";
/// The row trigger function refusing a change of a row's tenant.
pub const FN_REFUSE_TENANT_CHANGE: &str = "refuse_tenant_change";
/// The statement trigger function refusing TRUNCATE.
pub const FN_REFUSE_TRUNCATE: &str = "refuse_truncate";
/// The tenant column when neither an argument nor the setting
/// `tenant_guard.tenant_column` names one: the setting's built-in default
/// (`gucs`), and through `tenant_guard_internal.tenant_column()` the
/// default of the SQL in `sql/`.
pub const DEFAULT_TENANT_COLUMN_C: &std::ffi::CStr = c"tenant_id";
/// [`DEFAULT_TENANT_COLUMN_C`] as a `&str`.
pub const DEFAULT_TENANT_COLUMN: &str = match DEFAULT_TENANT_COLUMN_C.to_str() {
    Ok(s) => s,
    Err(_) => panic!("the default tenant column is ASCII"),
};

/// Every policy and trigger `protect` creates is named with this prefix
/// (the drift check lists a table's triggers by it).
pub const OBJECT_PREFIX: &str = "tenant_guard_";

pub const ACCESS: &str = "tenant_guard_access";
pub const SELECT: &str = "tenant_guard_select";
pub const INSERT: &str = "tenant_guard_insert";
pub const UPDATE: &str = "tenant_guard_update";
pub const DELETE: &str = "tenant_guard_delete";
pub const POLICIES: [&str; 5] = [ACCESS, SELECT, INSERT, UPDATE, DELETE];
/// The policies of [`Shape::Citus`]: the tenant rules only.
pub const CITUS_POLICIES: [&str; 4] = [SELECT, INSERT, UPDATE, DELETE];
pub const TRG_IMMUTABLE: &str = "tenant_guard_immutable_tenant";
/// The same trigger on a partitioned table, where PostgreSQL clones it to
/// every partition: a name of its own, so that attaching a table protected
/// on its own (with `TRG_IMMUTABLE`) does not collide with the clone.
pub const TRG_IMMUTABLE_PARTITIONED: &str = "tenant_guard_immutable_tenant_p";
pub const TRG_TRUNCATE: &str = "tenant_guard_no_truncate";

/// `tenant_guard.<func>()` as an array of the column's type.
fn tenant_array(func: &str, col_type: &str) -> String {
    if col_type == "text" {
        format!("tenant_guard.{func}()")
    } else {
        format!("tenant_guard.{func}()::{col_type}[]")
    }
}

/// The column as the rules compare it: cast to `col_type` when it is of a
/// domain (PostgreSQL finds no `=` between a domain over an enum and the
/// enum's array; a domain over `text` is cast implicitly, and its rules
/// read the same either way).
fn rule_column(column: &str, col_type: &str, col_domain: bool) -> String {
    if col_domain && col_type != "text" {
        format!("{}::{col_type}", ident(column))
    } else {
        ident(column)
    }
}

/// The row filter for reads.
fn read_rule(column: &str, col_type: &str, col_domain: bool, mode: Mode) -> String {
    let c = ident(column);
    let rule = format!(
        "{} = ANY ({})",
        rule_column(column, col_type, col_domain),
        tenant_array("visible_tenants", col_type)
    );
    match mode {
        Mode::Strict => rule,
        Mode::Permissive => format!("{rule} OR {c} IS NULL"),
    }
}

/// The row filter for writes (and the rows UPDATE/DELETE may touch).
fn write_rule(column: &str, col_type: &str, col_domain: bool) -> String {
    format!(
        "{} = ANY ({})",
        rule_column(column, col_type, col_domain),
        tenant_array("writable_tenants", col_type)
    )
}

/// Whether a deparsed column default is one [`default_expr`] produces:
/// `tenant_guard.tenant_id()` alone or cast to a type name, e.g.
/// `(tenant_guard.tenant_id())::character varying(40)`.
pub fn is_our_default(d: &str) -> bool {
    const CALL: &str = "tenant_guard.tenant_id()";
    if d == CALL {
        return true;
    }
    let Some(ty) = d.strip_prefix("(tenant_guard.tenant_id())::") else {
        return false;
    };
    // A type name: words, quotes, dots and spaces, then at most one
    // modifier of digits and commas, then at most an array suffix.
    let ty = ty.strip_suffix("[]").unwrap_or(ty);
    let (name, modifier) = match ty.find('(') {
        Some(i) => (&ty[..i], Some(&ty[i..])),
        None => (ty, None),
    };
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ' ' | '.' | '"'));
    let modifier_ok = modifier.is_none_or(|m| {
        m.len() > 2
            && m.starts_with('(')
            && m.ends_with(')')
            && m[1..m.len() - 1]
                .chars()
                .all(|c| c.is_ascii_digit() || c == ',')
    });
    name_ok && modifier_ok
}

/// Whether a deparsed default of ours (see [`is_our_default`]) is the one
/// [`default_expr`] renders for `col_type` now, as `pg_get_expr` prints it.
/// PostgreSQL keeps the conversion to the column's own type (its modifier,
/// its domain) out of the deparsed text.
pub fn is_current_default(d: &str, col_type: &str) -> bool {
    d == default_expr(col_type) || d == format!("(tenant_guard.tenant_id())::{col_type}")
}

/// The column default: the current tenant in the column's type.
pub fn default_expr(col_type: &str) -> String {
    if col_type == "text" {
        "tenant_guard.tenant_id()".into()
    } else {
        format!("tenant_guard.tenant_id()::{col_type}")
    }
}

/// One policy as `protect` renders it (see [`expected_policy`]) or as the
/// catalog holds it (`pg_policy`, expressions through `pg_get_expr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyShape {
    pub name: String,
    /// `polcmd`: `*` (ALL), `r` (SELECT), `a` (INSERT), `w` (UPDATE), `d` (DELETE).
    pub cmd: char,
    pub permissive: bool,
    /// Applies `TO PUBLIC` (and to nobody else in particular).
    pub to_public: bool,
    pub using: Option<String>,
    pub check: Option<String>,
}

/// How an existing tenant_guard policy compares with what protect renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Missing,
    Current,
    /// Same command and permissiveness: `ALTER POLICY` repairs it.
    Alter,
    /// Another command or permissiveness: dropped and created again.
    Recreate,
}

/// The policy `name` as protect renders it for `column` / `mode`; the
/// expressions are protect's source text (not yet deparsed).
pub fn expected_policy(
    name: &str,
    column: &str,
    col_type: &str,
    col_domain: bool,
    mode: Mode,
    shape: Shape,
) -> PolicyShape {
    let t = TableState {
        column: column.to_owned(),
        col_type: col_type.to_owned(),
        col_domain,
        shape,
        ..TableState::default()
    };
    let (_, using, check) = policy_parts(name, &t, mode);
    let cmd = match name {
        ACCESS => '*',
        SELECT => 'r',
        INSERT => 'a',
        UPDATE => 'w',
        _ => 'd',
    };
    PolicyShape {
        name: name.to_owned(),
        cmd,
        permissive: name == ACCESS || shape == Shape::Citus,
        to_public: true,
        using,
        check,
    }
}

/// Compares an actual policy with the expected one. `canon` turns protect's
/// source text of an expression into PostgreSQL's deparsed form (what
/// `pg_get_expr` shows for the policy protect would create); the actual
/// expressions are already in that form. Exact text comparison: any
/// difference, however harmless it looks, is drift.
pub fn fit(
    expected: &PolicyShape,
    actual: Option<&PolicyShape>,
    canon: &mut dyn FnMut(&str) -> String,
) -> Fit {
    let Some(a) = actual else { return Fit::Missing };
    if a.cmd != expected.cmd || a.permissive != expected.permissive {
        return Fit::Recreate;
    }
    let same = |x: &Option<String>, e: &Option<String>, canon: &mut dyn FnMut(&str) -> String| {
        match (x, e) {
            (None, None) => true,
            (Some(x), Some(e)) => *x == canon(e),
            _ => false,
        }
    };
    if a.to_public
        && same(&a.using, &expected.using, canon)
        && same(&a.check, &expected.check, canon)
    {
        Fit::Current
    } else {
        Fit::Alter
    }
}

/// One `tenant_guard_*` trigger as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerShape {
    pub name: String,
    /// The trigger function is tenant_guard's and the timing/event bits
    /// (`tgtype`) are the ones protect creates.
    pub as_rendered: bool,
    /// `tgenabled` is `O` or `A` (fires in a normal session).
    pub enabled: bool,
    /// A partition's clone of its parent's trigger (`tgparentid` set).
    pub clone: bool,
}

/// `tgtype` of the triggers protect creates (PostgreSQL's TRIGGER_TYPE_* bits).
pub const TGTYPE_ROW_BEFORE_UPDATE: i16 = 1 | 2 | 16;
pub const TGTYPE_STATEMENT_BEFORE_TRUNCATE: i16 = 2 | 32;

/// The triggers protect puts on `t` (partitions get the row trigger cloned
/// from their parent, so only the TRUNCATE one of their own).
pub fn expected_triggers(t: &TableState) -> Vec<&'static str> {
    let mut v = Vec::new();
    if !t.is_partition {
        v.push(if t.partitioned {
            TRG_IMMUTABLE_PARTITIONED
        } else {
            TRG_IMMUTABLE
        });
    }
    v.push(TRG_TRUNCATE);
    v
}

/// What `tenant_guard.protection_drift` reports: every way the table differs
/// from what protect (with the recorded options) would leave behind, in a
/// fixed order. Empty when nothing differs.
pub fn drift_report(
    t: &TableState,
    opts: Options,
    fits: &[(String, Fit)],
    extra_permissive: &[String],
    triggers: &[TriggerShape],
    has_default: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    if !t.rls_enabled {
        out.push("row-level security disabled".to_owned());
    }
    if opts.force && !t.rls_forced {
        out.push("row-level security not forced".to_owned());
    }
    for (name, f) in fits {
        match f {
            Fit::Current => {}
            Fit::Missing => out.push(format!("policy {name} missing")),
            Fit::Alter | Fit::Recreate => out.push(format!("policy {name} changed")),
        }
    }
    for name in extra_permissive {
        out.push(format!("extra permissive policy {name}"));
    }
    let judge = |x: &TriggerShape, out: &mut Vec<String>| {
        if !x.as_rendered {
            out.push(format!("trigger {} changed", x.name));
        } else if !x.enabled {
            out.push(format!("trigger {} disabled", x.name));
        }
    };
    for name in expected_triggers(t) {
        match triggers.iter().find(|x| x.name == name && !x.clone) {
            None => out.push(format!("trigger {name} missing")),
            Some(x) => judge(x, &mut out),
        }
    }
    // A partition's clone of its parent's row trigger guards the rows
    // updated through the partition itself.
    for x in triggers.iter().filter(|x| x.clone) {
        judge(x, &mut out);
    }
    if !has_default {
        out.push("default missing".to_owned());
    } else if !t.default_is_ours || t.default_stale {
        out.push("default changed".to_owned());
    }
    out
}

/// `(kind, USING, WITH CHECK)` of each policy.
fn policy_parts(
    name: &str,
    t: &TableState,
    mode: Mode,
) -> (&'static str, Option<String>, Option<String>) {
    let r = read_rule(&t.column, &t.col_type, t.col_domain, mode);
    let w = write_rule(&t.column, &t.col_type, t.col_domain);
    if t.shape == Shape::Citus {
        return match name {
            SELECT => ("AS PERMISSIVE FOR SELECT TO PUBLIC", Some(r), None),
            INSERT => ("AS PERMISSIVE FOR INSERT TO PUBLIC", None, Some(w)),
            UPDATE => (
                "AS PERMISSIVE FOR UPDATE TO PUBLIC",
                Some(w.clone()),
                Some(w),
            ),
            _ => ("AS PERMISSIVE FOR DELETE TO PUBLIC", Some(w), None),
        };
    }
    match name {
        ACCESS => (
            "AS PERMISSIVE FOR ALL TO PUBLIC",
            Some("true".into()),
            Some("true".into()),
        ),
        SELECT => ("AS RESTRICTIVE FOR SELECT TO PUBLIC", Some(r), None),
        INSERT => ("AS RESTRICTIVE FOR INSERT TO PUBLIC", None, Some(w)),
        UPDATE => (
            "AS RESTRICTIVE FOR UPDATE TO PUBLIC",
            Some(w.clone()),
            Some(w),
        ),
        _ => ("AS RESTRICTIVE FOR DELETE TO PUBLIC", Some(w), None),
    }
}

fn clauses(using: &Option<String>, check: &Option<String>) -> String {
    let mut s = String::new();
    if let Some(u) = using {
        s.push_str(&format!(" USING ({u})"));
    }
    if let Some(c) = check {
        s.push_str(&format!(" WITH CHECK ({c})"));
    }
    s
}

/// The DDL that brings `t` to the protected state `opts`. Empty when it is
/// there already. Policies whose expressions change are ALTERed in place, so
/// the table is never without a policy, even inside the transaction.
pub fn render_protect(t: &TableState, opts: Options) -> Vec<String> {
    let mut out = Vec::new();
    let tbl = &t.name;
    if !t.rls_enabled {
        out.push(format!("ALTER TABLE {tbl} ENABLE ROW LEVEL SECURITY"));
    }
    if opts.force && !t.rls_forced {
        out.push(format!("ALTER TABLE {tbl} FORCE ROW LEVEL SECURITY"));
    } else if !opts.force && t.rls_forced {
        out.push(format!("ALTER TABLE {tbl} NO FORCE ROW LEVEL SECURITY"));
    }
    let mode_changed = t.recorded.is_some_and(|r| r.mode != opts.mode);
    for &name in policy_names(t.shape) {
        let (kind, using, check) = policy_parts(name, t, opts.mode);
        let fit = t
            .fits
            .iter()
            .find(|(n, _)| n == name)
            .map_or(Fit::Current, |(_, f)| *f);
        let create = format!(
            "CREATE POLICY {} ON {tbl} {kind}{}",
            ident(name),
            clauses(&using, &check)
        );
        if !t.policies.iter().any(|p| p == name) {
            out.push(create);
        } else if fit == Fit::Recreate {
            // Another command or permissiveness: ALTER POLICY cannot change
            // those. Same transaction, so no session sees the gap.
            out.push(format!("DROP POLICY {} ON {tbl}", ident(name)));
            out.push(create);
        } else if fit == Fit::Alter || (mode_changed && name == SELECT) {
            // Only the read rule depends on the mode; a tampered policy gets
            // its roles and expressions back.
            out.push(format!(
                "ALTER POLICY {} ON {tbl} TO PUBLIC{}",
                ident(name),
                clauses(&using, &check)
            ));
        }
    }
    if t.shape == Shape::Citus && t.policies.iter().any(|p| p == ACCESS) {
        // Last, once the tenant rules are permissive policies themselves.
        out.push(format!("DROP POLICY {} ON {tbl}", ident(ACCESS)));
    }
    if !t.default_is_ours || t.default_stale {
        out.push(format!(
            "ALTER TABLE ONLY {tbl} ALTER COLUMN {} SET DEFAULT {}",
            ident(&t.column),
            default_expr(&t.col_type)
        ));
    }
    let row_trigger = if t.partitioned {
        TRG_IMMUTABLE_PARTITIONED
    } else {
        TRG_IMMUTABLE
    };
    for name in &t.stale_triggers {
        out.push(format!("DROP TRIGGER {} ON {tbl}", ident(name)));
    }
    let present = |name: &str| {
        t.triggers.iter().any(|x| x == name) && !t.stale_triggers.iter().any(|x| x == name)
    };
    if !t.is_partition && !present(row_trigger) {
        out.push(format!(
            "CREATE TRIGGER {} BEFORE UPDATE OF {} ON {tbl} FOR EACH ROW EXECUTE FUNCTION {}.{FN_REFUSE_TENANT_CHANGE}({})",
            ident(row_trigger),
            ident(&t.column),
            t.trigger_schema,
            crate::quote::literal(&t.column)
        ));
    }
    if !present(TRG_TRUNCATE) {
        out.push(format!(
            "CREATE TRIGGER {} BEFORE TRUNCATE ON {tbl} FOR EACH STATEMENT EXECUTE FUNCTION {}.{FN_REFUSE_TRUNCATE}()",
            ident(TRG_TRUNCATE),
            t.trigger_schema
        ));
    }
    for name in &t.disabled_clones {
        out.push(format!("ALTER TABLE {tbl} ENABLE TRIGGER {}", ident(name)));
    }
    out
}

/// Whether a statement of [`render_protect`] / [`render_unprotect`] changes
/// the tenant column's default, which on Citus belongs to the coordinator's
/// table alone (run without DDL propagation: Citus refuses `SET DEFAULT` on
/// a distribution column, and evaluates an INSERT's default on the
/// coordinator to route the row).
pub fn coordinator_only(stmt: &str) -> bool {
    stmt.starts_with("ALTER TABLE ONLY ")
        && stmt.contains(" ALTER COLUMN ")
        && (stmt.ends_with(" DROP DEFAULT") || stmt.contains(" SET DEFAULT "))
}

/// What an earlier protect changed that unprotect must put back.
#[derive(Debug, Clone, Default)]
pub struct Before {
    pub rls_was_enabled: bool,
    pub rls_was_forced: bool,
    /// The column default before protect (an SQL expression), if any.
    pub previous_default: Option<String>,
}

/// The DDL that removes exactly what protect added to `t`.
pub fn render_unprotect(t: &TableState, before: &Before) -> Vec<String> {
    let mut out = Vec::new();
    let tbl = &t.name;
    // On Citus the drops reach every shard, where one may already be gone
    // (dropped on a worker: the advisor's shard_policy_drift); IF EXISTS
    // lets unprotect, then protect, repair that.
    let if_exists = if t.shape == Shape::Citus {
        "IF EXISTS "
    } else {
        ""
    };
    for name in POLICIES {
        if t.policies.iter().any(|p| p == name) {
            out.push(format!("DROP POLICY {if_exists}{} ON {tbl}", ident(name)));
        }
    }
    for name in [TRG_IMMUTABLE, TRG_IMMUTABLE_PARTITIONED, TRG_TRUNCATE] {
        if t.triggers.iter().any(|x| x == name) {
            out.push(format!("DROP TRIGGER {if_exists}{} ON {tbl}", ident(name)));
        }
    }
    if t.default_is_ours {
        out.push(match &before.previous_default {
            Some(d) => format!(
                "ALTER TABLE ONLY {tbl} ALTER COLUMN {} SET DEFAULT {d}",
                ident(&t.column)
            ),
            None => format!(
                "ALTER TABLE ONLY {tbl} ALTER COLUMN {} DROP DEFAULT",
                ident(&t.column)
            ),
        });
    }
    if t.rls_forced && !before.rls_was_forced {
        out.push(format!("ALTER TABLE {tbl} NO FORCE ROW LEVEL SECURITY"));
    }
    if t.rls_enabled && !before.rls_was_enabled {
        out.push(format!("ALTER TABLE {tbl} DISABLE ROW LEVEL SECURITY"));
    }
    out
}

#[cfg(test)]
mod tests {
    /// The advisor's SQL (`inexact_tenant_type`) lists the accepted tenant
    /// column types as OIDs: every copy of it must name exactly
    /// `EXACT_TENANT_TYPES`, or the advisor and `protect` would disagree.
    #[test]
    fn the_advisor_sql_accepts_exactly_the_tenant_types_protect_accepts() {
        for (name, sql) in [
            ("sql/audit.sql", include_str!("../sql/audit.sql")),
            (
                "sql/tenant_guard--0.1.0--0.2.0.sql",
                include_str!("../sql/tenant_guard--0.1.0--0.2.0.sql"),
            ),
        ] {
            let at = sql
                .find("'inexact_tenant_type'")
                .unwrap_or_else(|| panic!("{name}: no inexact_tenant_type check"));
            let rest = &sql[at..];
            let open = rest.find("ANY (ARRAY[").expect("the OID array") + "ANY (ARRAY[".len();
            let close = open + rest[open..].find(']').expect("the array's end");
            let listed: Vec<u32> = rest[open..close]
                .split(',')
                .map(|x| x.trim().parse().expect("an OID"))
                .collect();
            assert_eq!(listed, super::EXACT_TENANT_TYPES, "{name}");
        }
    }

    #[test]
    fn a_default_of_0_1_0_with_a_type_modifier_is_stale() {
        use super::is_current_default as current;
        assert!(current("tenant_guard.tenant_id()", "text"));
        assert!(current("(tenant_guard.tenant_id())::uuid", "uuid"));
        assert!(current(
            "(tenant_guard.tenant_id())::character varying",
            "character varying"
        ));
        assert!(!current(
            "(tenant_guard.tenant_id())::character varying(8)",
            "character varying"
        ));
        assert!(!current(
            "(tenant_guard.tenant_id())::numeric(6,0)",
            "numeric"
        ));
        assert!(!current(
            "(tenant_guard.tenant_id())::shop.slug",
            "character varying"
        ));
        assert!(!current("tenant_guard.tenant_id()", "uuid"));
    }

    #[test]
    fn only_protects_own_default_is_ours() {
        assert!(super::is_our_default("tenant_guard.tenant_id()"));
        assert!(super::is_our_default("(tenant_guard.tenant_id())::uuid"));
        assert!(super::is_our_default("(tenant_guard.tenant_id())::bigint"));
        assert!(super::is_our_default(
            "(tenant_guard.tenant_id())::character varying(40)"
        ));
        assert!(super::is_our_default(
            "(tenant_guard.tenant_id())::public.\"Tenant\""
        ));
        // Tampered defaults that still mention the function.
        assert!(!super::is_our_default(
            "('globex'::text || left(tenant_guard.tenant_id(), 0))"
        ));
        assert!(!super::is_our_default(
            "(tenant_guard.tenant_id())::text || 'x'::text"
        ));
        assert!(!super::is_our_default(
            "coalesce(tenant_guard.tenant_id(), 'globex'::text)"
        ));
        assert!(!super::is_our_default(
            "(tenant_guard.tenant_id())::text(1) || 'x'"
        ));
    }

    use super::*;

    fn fresh(ty: &str) -> TableState {
        TableState {
            name: "\"public\".\"ServiceRequest\"".into(),
            column: "tenantId".into(),
            col_type: ty.into(),
            trigger_schema: INTERNAL_SCHEMA,
            ..TableState::default()
        }
    }

    const STRICT: Options = Options {
        mode: Mode::Strict,
        force: true,
    };

    /// The state after applying `ddl` (as far as these tests need).
    fn applied(mut t: TableState, opts: Options) -> TableState {
        t.rls_enabled = true;
        t.rls_forced = opts.force;
        t.policies = POLICIES.iter().map(|s| s.to_string()).collect();
        t.triggers = vec![TRG_IMMUTABLE.into(), TRG_TRUNCATE.into()];
        t.default_is_ours = true;
        t.recorded = Some(opts);
        t
    }

    #[test]
    fn every_object_name_has_the_prefix() {
        for n in POLICIES
            .iter()
            .chain(&[TRG_IMMUTABLE, TRG_IMMUTABLE_PARTITIONED, TRG_TRUNCATE])
        {
            assert!(n.starts_with(OBJECT_PREFIX), "{n}");
        }
    }

    #[test]
    fn protect_renders_everything_on_a_fresh_table() {
        let ddl = render_protect(&fresh("uuid"), STRICT);
        assert_eq!(
            ddl,
            vec![
                "ALTER TABLE \"public\".\"ServiceRequest\" ENABLE ROW LEVEL SECURITY",
                "ALTER TABLE \"public\".\"ServiceRequest\" FORCE ROW LEVEL SECURITY",
                "CREATE POLICY \"tenant_guard_access\" ON \"public\".\"ServiceRequest\" AS PERMISSIVE FOR ALL TO PUBLIC USING (true) WITH CHECK (true)",
                "CREATE POLICY \"tenant_guard_select\" ON \"public\".\"ServiceRequest\" AS RESTRICTIVE FOR SELECT TO PUBLIC USING (\"tenantId\" = ANY (tenant_guard.visible_tenants()::uuid[]))",
                "CREATE POLICY \"tenant_guard_insert\" ON \"public\".\"ServiceRequest\" AS RESTRICTIVE FOR INSERT TO PUBLIC WITH CHECK (\"tenantId\" = ANY (tenant_guard.writable_tenants()::uuid[]))",
                "CREATE POLICY \"tenant_guard_update\" ON \"public\".\"ServiceRequest\" AS RESTRICTIVE FOR UPDATE TO PUBLIC USING (\"tenantId\" = ANY (tenant_guard.writable_tenants()::uuid[])) WITH CHECK (\"tenantId\" = ANY (tenant_guard.writable_tenants()::uuid[]))",
                "CREATE POLICY \"tenant_guard_delete\" ON \"public\".\"ServiceRequest\" AS RESTRICTIVE FOR DELETE TO PUBLIC USING (\"tenantId\" = ANY (tenant_guard.writable_tenants()::uuid[]))",
                "ALTER TABLE ONLY \"public\".\"ServiceRequest\" ALTER COLUMN \"tenantId\" SET DEFAULT tenant_guard.tenant_id()::uuid",
                "CREATE TRIGGER \"tenant_guard_immutable_tenant\" BEFORE UPDATE OF \"tenantId\" ON \"public\".\"ServiceRequest\" FOR EACH ROW EXECUTE FUNCTION tenant_guard_internal.refuse_tenant_change('tenantId')",
                "CREATE TRIGGER \"tenant_guard_no_truncate\" BEFORE TRUNCATE ON \"public\".\"ServiceRequest\" FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard_internal.refuse_truncate()",
            ]
        );
    }

    #[test]
    fn citus_shape_has_permissive_rules_only() {
        let mut t = fresh("uuid");
        t.shape = Shape::Citus;
        let ddl = render_protect(&t, STRICT);
        assert!(!ddl.iter().any(|d| d.contains(ACCESS)), "{ddl:?}");
        for name in CITUS_POLICIES {
            assert!(
                ddl.iter()
                    .any(|d| d.starts_with(&format!("CREATE POLICY \"{name}\""))
                        && d.contains(" AS PERMISSIVE FOR ")),
                "{name}: {ddl:?}"
            );
        }
        assert!(!ddl.iter().any(|d| d.contains("RESTRICTIVE")));
        // The expected shapes agree with the rendering.
        assert!(expected_policy(SELECT, "t", "text", false, Mode::Strict, Shape::Citus).permissive);
        assert!(
            !expected_policy(SELECT, "t", "text", false, Mode::Strict, Shape::Single).permissive
        );
        // A table in the single-node shape is converted: the restrictive
        // rules are recreated as permissive ones, the access policy dropped
        // last.
        let mut single = applied(fresh("uuid"), STRICT);
        single.shape = Shape::Citus;
        single.fits = CITUS_POLICIES
            .iter()
            .map(|n| (n.to_string(), Fit::Recreate))
            .collect();
        let ddl = render_protect(&single, STRICT);
        assert_eq!(
            ddl.last().map(String::as_str),
            Some("DROP POLICY \"tenant_guard_access\" ON \"public\".\"ServiceRequest\"")
        );
        assert_eq!(
            ddl.iter()
                .filter(|d| d.starts_with("CREATE POLICY"))
                .count(),
            4
        );
        // unprotect tolerates a shard that lost one already.
        let undo = render_unprotect(&single, &Before::default());
        assert!(
            undo.iter()
                .all(|d| !d.starts_with("DROP ") || d.contains(" IF EXISTS ")),
            "{undo:?}"
        );
    }

    #[test]
    fn coordinator_only_statements_are_the_default_ones() {
        let t = fresh("uuid");
        let ddl = render_protect(&t, STRICT);
        let only: Vec<&String> = ddl.iter().filter(|d| coordinator_only(d)).collect();
        assert_eq!(only.len(), 1, "{ddl:?}");
        assert!(only[0].contains("SET DEFAULT tenant_guard.tenant_id()::uuid"));
        assert!(!coordinator_only(
            "ALTER TABLE \"public\".\"t\" ENABLE ROW LEVEL SECURITY"
        ));
    }

    #[test]
    fn text_columns_need_no_cast() {
        assert_eq!(
            read_rule("tenant_id", "text", false, Mode::Strict),
            "\"tenant_id\" = ANY (tenant_guard.visible_tenants())"
        );
        assert_eq!(default_expr("text"), "tenant_guard.tenant_id()");
        assert_eq!(
            write_rule("tenant_id", "bigint", false),
            "\"tenant_id\" = ANY (tenant_guard.writable_tenants()::bigint[])"
        );
    }

    #[test]
    fn a_domain_column_is_cast_to_its_base_type_too() {
        assert_eq!(
            read_rule("t", "public.ten", true, Mode::Strict),
            "\"t\"::public.ten = ANY (tenant_guard.visible_tenants()::public.ten[])"
        );
        assert_eq!(
            write_rule("t", "character varying", true),
            "\"t\"::character varying = ANY (tenant_guard.writable_tenants()::character varying[])"
        );
        // Over text: PostgreSQL casts the column itself, as before.
        assert_eq!(
            read_rule("t", "text", true, Mode::Strict),
            "\"t\" = ANY (tenant_guard.visible_tenants())"
        );
        // Not a domain: the column as it is.
        assert_eq!(
            write_rule("t", "bigint", false),
            "\"t\" = ANY (tenant_guard.writable_tenants()::bigint[])"
        );
    }

    #[test]
    fn permissive_mode_reads_null_rows_but_never_writes_them() {
        let r = read_rule("t", "text", false, Mode::Permissive);
        assert_eq!(
            r,
            "\"t\" = ANY (tenant_guard.visible_tenants()) OR \"t\" IS NULL"
        );
        assert!(!write_rule("t", "text", false).contains("NULL"));
    }

    #[test]
    fn rerun_with_the_same_options_is_a_no_op() {
        let t = applied(fresh("text"), STRICT);
        assert!(render_protect(&t, STRICT).is_empty());
    }

    #[test]
    fn rerun_with_other_options_converges_without_dropping_policies() {
        let t = applied(fresh("text"), STRICT);
        let ddl = render_protect(
            &t,
            Options {
                mode: Mode::Permissive,
                force: false,
            },
        );
        assert_eq!(ddl.len(), 2, "{ddl:?}");
        assert!(ddl[0].ends_with("NO FORCE ROW LEVEL SECURITY"));
        assert!(ddl[1].starts_with("ALTER POLICY \"tenant_guard_select\""));
        assert!(ddl[1].contains("IS NULL"));
        assert!(ddl.iter().all(|s| !s.starts_with("DROP")));
    }

    #[test]
    fn partitions_get_everything_but_the_cloned_row_trigger() {
        let mut t = fresh("text");
        t.is_partition = true;
        let ddl = render_protect(&t, STRICT);
        assert!(!ddl.iter().any(|s| s.contains(TRG_IMMUTABLE)));
        assert!(ddl.iter().any(|s| s.contains(TRG_TRUNCATE)));
        assert_eq!(
            ddl.iter()
                .filter(|s| s.starts_with("CREATE POLICY"))
                .count(),
            5
        );
    }

    #[test]
    fn partitioned_tables_name_their_cloned_trigger_apart() {
        let mut t = fresh("text");
        t.partitioned = true;
        let ddl = render_protect(&t, STRICT);
        assert!(ddl
            .iter()
            .any(|s| s.contains("\"tenant_guard_immutable_tenant_p\"")));
        t.triggers = vec![TRG_IMMUTABLE_PARTITIONED.into(), TRG_TRUNCATE.into()];
        t.policies = POLICIES.iter().map(|s| s.to_string()).collect();
        let un = render_unprotect(&t, &Before::default());
        assert!(un
            .iter()
            .any(|s| s.contains("DROP TRIGGER \"tenant_guard_immutable_tenant_p\"")));
    }

    #[test]
    fn unprotect_removes_exactly_what_protect_added() {
        let t = applied(fresh("text"), STRICT);
        let ddl = render_unprotect(&t, &Before::default());
        assert_eq!(
            ddl.iter().filter(|s| s.starts_with("DROP POLICY")).count(),
            5
        );
        assert_eq!(
            ddl.iter().filter(|s| s.starts_with("DROP TRIGGER")).count(),
            2
        );
        assert!(ddl.contains(&"ALTER TABLE ONLY \"public\".\"ServiceRequest\" ALTER COLUMN \"tenantId\" DROP DEFAULT".to_string()));
        assert!(ddl.last().unwrap().ends_with("DISABLE ROW LEVEL SECURITY"));
        // RLS that was on before protect stays on; a previous default returns.
        let before = Before {
            rls_was_enabled: true,
            rls_was_forced: true,
            previous_default: Some("'none'::text".into()),
        };
        let ddl = render_unprotect(&t, &before);
        assert!(!ddl.iter().any(|s| s.contains("ROW LEVEL SECURITY")));
        assert!(ddl.iter().any(|s| s.ends_with("SET DEFAULT 'none'::text")));
    }

    #[test]
    fn identifiers_are_always_quoted() {
        let mut t = fresh("text");
        t.column = "evil\"; DROP TABLE x; --".into();
        let ddl = render_protect(&t, STRICT);
        let quoted = "\"evil\"\"; DROP TABLE x; --\"";
        let uses_column = ddl.iter().filter(|s| s.contains("evil"));
        assert_eq!(uses_column.clone().count(), 6, "{ddl:?}");
        for s in uses_column {
            assert!(
                s.contains(quoted) || s.contains("'evil\"; DROP TABLE x; --'"),
                "{s}"
            );
            // Nothing but the quoted form: removing it leaves no stray quote.
            assert_eq!(
                s.replace(quoted, "")
                    .replace("'evil\"; DROP TABLE x; --'", "")
                    .matches("DROP TABLE")
                    .count(),
                0,
                "{s}"
            );
        }
    }

    #[test]
    fn policies_never_contain_subqueries() {
        // Citus rejects subqueries in policies on distributed tables.
        for s in render_protect(&fresh("bigint"), STRICT)
            .into_iter()
            .chain(render_protect(
                &fresh("uuid"),
                Options {
                    mode: Mode::Permissive,
                    force: true,
                },
            ))
        {
            assert!(!s.to_uppercase().contains("(SELECT"), "{s}");
            assert!(!s.to_uppercase().contains("EXISTS"), "{s}");
        }
    }

    fn shape(
        name: &str,
        cmd: char,
        permissive: bool,
        using: Option<&str>,
        check: Option<&str>,
    ) -> PolicyShape {
        PolicyShape {
            name: name.into(),
            cmd,
            permissive,
            to_public: true,
            using: using.map(str::to_owned),
            check: check.map(str::to_owned),
        }
    }

    /// A stand-in for PostgreSQL's deparse: wraps the expression in parens.
    fn paren(e: &str) -> String {
        format!("({e})")
    }

    #[test]
    fn expected_policies_carry_command_and_kind() {
        let s = expected_policy(SELECT, "t", "text", false, Mode::Strict, Shape::Single);
        assert_eq!((s.cmd, s.permissive, s.to_public), ('r', false, true));
        assert_eq!(
            s.using.as_deref(),
            Some(read_rule("t", "text", false, Mode::Strict).as_str())
        );
        assert_eq!(s.check, None);
        let a = expected_policy(ACCESS, "t", "text", false, Mode::Strict, Shape::Single);
        assert_eq!((a.cmd, a.permissive), ('*', true));
        assert_eq!(
            expected_policy(UPDATE, "t", "text", false, Mode::Strict, Shape::Single).cmd,
            'w'
        );
        assert_eq!(
            expected_policy(INSERT, "t", "text", false, Mode::Strict, Shape::Single).using,
            None
        );
        assert_eq!(
            expected_policy(DELETE, "t", "text", false, Mode::Strict, Shape::Single).cmd,
            'd'
        );
    }

    #[test]
    fn fit_tells_missing_current_alter_and_recreate() {
        let want = expected_policy(SELECT, "t", "text", false, Mode::Strict, Shape::Single);
        let canon_using = paren(want.using.as_deref().unwrap());
        let mut canon = |e: &str| paren(e);
        assert_eq!(fit(&want, None, &mut canon), Fit::Missing);
        let same = shape(SELECT, 'r', false, Some(&canon_using), None);
        assert_eq!(fit(&want, Some(&same), &mut canon), Fit::Current);
        // ALTER POLICY ... USING (true)
        let widened = shape(SELECT, 'r', false, Some("true"), None);
        assert_eq!(fit(&want, Some(&widened), &mut canon), Fit::Alter);
        // ALTER POLICY ... TO some_role
        let mut narrowed = same.clone();
        narrowed.to_public = false;
        assert_eq!(fit(&want, Some(&narrowed), &mut canon), Fit::Alter);
        // A WITH CHECK where none belongs.
        let extra = shape(SELECT, 'r', false, Some(&canon_using), Some("true"));
        assert_eq!(fit(&want, Some(&extra), &mut canon), Fit::Alter);
        // Dropped and created again as permissive, or for another command.
        let permissive = shape(SELECT, 'r', true, Some(&canon_using), None);
        assert_eq!(fit(&want, Some(&permissive), &mut canon), Fit::Recreate);
        let other_cmd = shape(SELECT, '*', false, Some(&canon_using), None);
        assert_eq!(fit(&want, Some(&other_cmd), &mut canon), Fit::Recreate);
    }

    #[test]
    fn drifted_policies_are_altered_or_recreated() {
        let mut t = applied(fresh("text"), STRICT);
        t.fits = vec![(SELECT.into(), Fit::Alter), (UPDATE.into(), Fit::Recreate)];
        let ddl = render_protect(&t, STRICT);
        assert_eq!(ddl.len(), 3, "{ddl:?}");
        assert!(ddl[0].starts_with("ALTER POLICY \"tenant_guard_select\" ON \"public\".\"ServiceRequest\" TO PUBLIC USING ("));
        assert!(ddl[1].starts_with("DROP POLICY \"tenant_guard_update\""));
        assert!(ddl[2].starts_with("CREATE POLICY \"tenant_guard_update\""));
        assert!(ddl[2].contains("AS RESTRICTIVE FOR UPDATE TO PUBLIC"));
    }

    #[test]
    fn missing_or_disabled_protection_is_put_back() {
        let mut t = applied(fresh("text"), STRICT);
        t.rls_enabled = false;
        t.rls_forced = false;
        t.policies.retain(|p| p != SELECT);
        t.triggers.retain(|x| x != TRG_TRUNCATE);
        t.stale_triggers = vec![TRG_IMMUTABLE.into()];
        t.default_is_ours = false;
        let ddl = render_protect(&t, STRICT);
        assert_eq!(
            ddl[0],
            "ALTER TABLE \"public\".\"ServiceRequest\" ENABLE ROW LEVEL SECURITY"
        );
        assert_eq!(
            ddl[1],
            "ALTER TABLE \"public\".\"ServiceRequest\" FORCE ROW LEVEL SECURITY"
        );
        assert!(ddl[2].starts_with("CREATE POLICY \"tenant_guard_select\""));
        assert!(ddl[3].contains("SET DEFAULT tenant_guard.tenant_id()"));
        assert_eq!(
            ddl[4],
            "DROP TRIGGER \"tenant_guard_immutable_tenant\" ON \"public\".\"ServiceRequest\""
        );
        assert!(ddl[5].starts_with("CREATE TRIGGER \"tenant_guard_immutable_tenant\""));
        assert!(ddl[6].starts_with("CREATE TRIGGER \"tenant_guard_no_truncate\""));
        assert_eq!(ddl.len(), 7, "{ddl:?}");
    }

    #[test]
    fn drift_report_names_each_difference() {
        let mut t = applied(fresh("text"), STRICT);
        let ok_triggers = vec![
            TriggerShape {
                name: TRG_IMMUTABLE.into(),
                as_rendered: true,
                enabled: true,
                clone: false,
            },
            TriggerShape {
                name: TRG_TRUNCATE.into(),
                as_rendered: true,
                enabled: true,
                clone: false,
            },
        ];
        let clean: Vec<(String, Fit)> = POLICIES
            .iter()
            .map(|p| (p.to_string(), Fit::Current))
            .collect();
        assert!(drift_report(&t, STRICT, &clean, &[], &ok_triggers, true).is_empty());
        t.rls_forced = false;
        t.default_is_ours = false;
        let fits = vec![
            (SELECT.to_string(), Fit::Missing),
            (UPDATE.to_string(), Fit::Alter),
            (DELETE.to_string(), Fit::Recreate),
        ];
        let triggers = vec![TriggerShape {
            name: TRG_IMMUTABLE.into(),
            as_rendered: true,
            enabled: false,
            clone: false,
        }];
        let d = drift_report(&t, STRICT, &fits, &["open_all".into()], &triggers, false);
        assert_eq!(
            d,
            vec![
                "row-level security not forced",
                "policy tenant_guard_select missing",
                "policy tenant_guard_update changed",
                "policy tenant_guard_delete changed",
                "extra permissive policy open_all",
                "trigger tenant_guard_immutable_tenant disabled",
                "trigger tenant_guard_no_truncate missing",
                "default missing",
            ]
        );
        // Not forced is what a table protected with force => false has.
        let relaxed = Options {
            mode: Mode::Strict,
            force: false,
        };
        assert!(drift_report(&t, relaxed, &clean, &[], &ok_triggers, true)
            .iter()
            .all(|s| !s.contains("forced")));
        t.rls_enabled = false;
        assert_eq!(
            drift_report(&t, relaxed, &clean, &[], &ok_triggers, true)[0],
            "row-level security disabled"
        );
        // Partitions: the row trigger is the parent's clone.
        let mut p = applied(fresh("text"), STRICT);
        p.is_partition = true;
        let only_truncate = vec![TriggerShape {
            name: TRG_TRUNCATE.into(),
            as_rendered: true,
            enabled: true,
            clone: false,
        }];
        assert!(drift_report(&p, STRICT, &clean, &[], &only_truncate, true).is_empty());
        // ... and is judged like the table's own: disabled (ALTER TABLE
        // partition DISABLE TRIGGER) or changed is drift.
        let mut with_clone = only_truncate.clone();
        with_clone.push(TriggerShape {
            name: TRG_IMMUTABLE_PARTITIONED.into(),
            as_rendered: true,
            enabled: true,
            clone: true,
        });
        assert!(drift_report(&p, STRICT, &clean, &[], &with_clone, true).is_empty());
        with_clone[1].enabled = false;
        assert_eq!(
            drift_report(&p, STRICT, &clean, &[], &with_clone, true),
            vec!["trigger tenant_guard_immutable_tenant_p disabled"]
        );
        with_clone[1].as_rendered = false;
        assert_eq!(
            drift_report(&p, STRICT, &clean, &[], &with_clone, true),
            vec!["trigger tenant_guard_immutable_tenant_p changed"]
        );
        // A clone named like the table's own trigger does not stand in for it.
        let mut t2 = applied(fresh("text"), STRICT);
        t2.partitioned = true;
        let clone_only = vec![
            TriggerShape {
                name: TRG_IMMUTABLE_PARTITIONED.into(),
                as_rendered: true,
                enabled: true,
                clone: true,
            },
            only_truncate[0].clone(),
        ];
        assert_eq!(
            drift_report(&t2, STRICT, &clean, &[], &clone_only, true),
            vec!["trigger tenant_guard_immutable_tenant_p missing"]
        );
    }

    #[test]
    fn a_disabled_clone_is_enabled_again_not_recreated() {
        let mut p = applied(fresh("text"), STRICT);
        p.is_partition = true;
        p.disabled_clones = vec![TRG_IMMUTABLE_PARTITIONED.into()];
        let ddl = render_protect(&p, STRICT);
        assert_eq!(
            ddl,
            vec!["ALTER TABLE \"public\".\"ServiceRequest\" ENABLE TRIGGER \"tenant_guard_immutable_tenant_p\""]
        );
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::parse("strict"), Some(Mode::Strict));
        assert_eq!(Mode::parse("permissive"), Some(Mode::Permissive));
        assert_eq!(Mode::parse("STRICT"), None);
        assert_eq!(Mode::Permissive.as_str(), "permissive");
    }
}
