//! The DDL guard's judgement: what a DDL statement left weakened on a
//! protected table. The event triggers (`tenant_guard_ddl_guard` on
//! `ddl_command_end`, `tenant_guard_drop_guard` on `sql_drop`, both in
//! `sql/finalize.sql`) find the tables a statement touched and ask here;
//! they raise 42501 when the answer is not empty, which rolls the whole
//! statement back (the triggers run after PostgreSQL applied it, so the
//! catalog shows its effect and nothing is ever half-applied).
//!
//! The answer is the drift detector's ([`crate::protect::drift`]: what
//! `protect` would create vs what exists) with two changes:
//! * extra permissive policies are not refused: tenant_guard's tenant rules
//!   are RESTRICTIVE, ANDed with every permissive policy, so another
//!   permissive policy cannot widen what a tenant sees;
//! * a table owned by a role that bypasses row-level security (superuser or
//!   `BYPASSRLS`, which `FORCE ROW LEVEL SECURITY` does not hold) is
//!   refused, unless the statement's user is itself a superuser (who could
//!   switch the guard off anyway, and who owns many tables legitimately).
//!
//! Whose rights: called from the `SECURITY DEFINER` event triggers, so the
//! catalog reads run as the extension owner, `search_path` pinned; the
//! policy expressions are parsed (never executed) as the table's owner,
//! restricted, as the drift detector always does.

use crate::error::one;
use crate::privileged::pinned;
use pgrx::prelude::*;

/// Drift entries the guard does not refuse (see the module header).
fn refused(drift: &str) -> bool {
    !drift.starts_with("extra permissive policy ")
}

/// The owner of `oid` when it bypasses row-level security (superuser or
/// `BYPASSRLS`); `None` otherwise.
fn bypassing_owner(oid: pg_sys::Oid) -> Option<String> {
    pinned(|| {
        one::<String>(
            "SELECT r.rolname::pg_catalog.text FROM pg_catalog.pg_class c \
               JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner \
              WHERE c.oid OPERATOR(pg_catalog.=) $1 AND (r.rolsuper OR r.rolbypassrls)",
            &[oid.into()],
        )
    })
}

/// Whether the user running the statement (outside any `SECURITY DEFINER`
/// function, so not the event trigger's owner) is a superuser.
fn statement_user_is_superuser() -> bool {
    // SAFETY: reads the backend's outer user id; a catalog look-up.
    unsafe { pg_sys::superuser_arg(pg_sys::GetOuterUserId()) }
}

/// `tenant_guard_internal.ddl_guard_findings(relid oid)`: what the DDL
/// guard refuses on the table: NULL when it is not protected, empty when
/// nothing weakens it, else one entry per protection missing (the drift
/// detector's wording, e.g. `row-level security not forced`, `policy
/// tenant_guard_select missing`, `trigger tenant_guard_truncate disabled`,
/// `default missing`, `tenant column tenant_id missing`, plus `owner "r"
/// bypasses row-level security`).
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard_internal")]
fn ddl_guard_findings(relid: pg_sys::Oid) -> Option<Vec<String>> {
    let mut found: Vec<String> = crate::protect::drift(relid)?
        .into_iter()
        .filter(|d| refused(d))
        .collect();
    if !statement_user_is_superuser() {
        if let Some(owner) = bypassing_owner(relid) {
            found.push(format!("owner \"{owner}\" bypasses row-level security"));
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::refused;

    #[test]
    fn extra_permissive_policies_are_not_refused() {
        assert!(!refused("extra permissive policy open_all"));
        assert!(refused("row-level security not forced"));
        assert!(refused("policy tenant_guard_select missing"));
    }
}
