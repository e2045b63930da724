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
//!   permissive policy cannot widen what a tenant sees (in the Citus policy
//!   shape, `policy::Shape::Citus`, the tenant rules are permissive
//!   themselves: there another permissive policy would widen access, and is
//!   refused);
//! * a table owned by a role that bypasses row-level security (superuser or
//!   `BYPASSRLS`, which `FORCE ROW LEVEL SECURITY` does not hold) is
//!   refused, unless the statement's user is itself a superuser (who could
//!   switch the guard off anyway, and who owns many tables legitimately).
//!
//! Only what the statement **added** is refused: a table that had drifted
//! before (a dump being restored: `tenant_guard.protected` is data, the
//! policies and triggers come later, in pg_dump's post-data section; a
//! table tampered with through the emergency door) may be brought back
//! step by step. `ddl_guard_snapshot` (at `ddl_command_start`) records the
//! drift of the protected tables a cheap catalog query flags as possibly
//! drifted; `ddl_guard_findings` leaves out what was there before;
//! `ddl_guard_done` (at `ddl_command_end`) forgets the snapshot. Snapshots
//! nest (DDL run by a function during DDL); one left by a statement that
//! failed inside a caught error belongs to a subtransaction that is gone
//! and is skipped, one left by an aborted transaction to another
//! transaction and is dropped.
//!
//! Whose rights: called from the `SECURITY DEFINER` event triggers, so the
//! catalog reads run as the extension owner, `search_path` pinned; the
//! policy expressions are parsed (never executed) as the table's owner,
//! restricted, as the drift detector always does.

use crate::error::{one, spi};
use crate::privileged::pinned;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// The drift of possibly drifted protected tables when a statement started.
struct Frame {
    /// The transaction (local id and start: several transactions sent in
    /// one message share their start time, not their id).
    xact: crate::context::Transaction,
    subxact: u32,
    before: HashMap<u32, Vec<String>>,
    /// Protected tables whose tenant column was `NOT NULL` (`enforce`, or
    /// created so): dropping that is refused.
    not_null: Vec<u32>,
}

thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

fn subxact() -> u32 {
    // SAFETY: reads the current subtransaction id.
    unsafe { pg_sys::GetCurrentSubTransactionId() }
}

/// Drops snapshots of other transactions and of subtransactions that ended
/// (newer ids than the current one: their statements failed and the error
/// was caught), so the top one is the running statement's.
fn prune(frames: &mut Vec<Frame>) {
    let (now, sub) = (crate::context::this_transaction(), subxact());
    frames.retain(|f| f.xact == now);
    while frames.last().is_some_and(|f| f.subxact > sub) {
        frames.pop();
    }
}

/// Protected tables that may have drifted, by a cheap catalog check (row-level
/// security flags, tenant_guard policies and triggers present, enabled and
/// without a `WHEN` condition, a parent that is not protected, the tenant
/// column's default present, a tenant column of a user-defined type, whose
/// rule may fail since). A table it misses counts as not drifted before,
/// which can only refuse more, never less.
fn possibly_drifted() -> Vec<pg_sys::Oid> {
    let shape = crate::protect::shape();
    let names: Vec<String> = crate::policy::policy_names(shape)
        .iter()
        .map(|s| s.to_string())
        .collect();
    // In the Citus shape, any other permissive policy is drift too.
    let citus = shape == crate::policy::Shape::Citus;
    pinned(|| {
        Spi::connect(|c| {
            spi(c.select(
                "SELECT c.oid FROM tenant_guard.protected p \
                   JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid \
                  WHERE NOT c.relrowsecurity OR (p.force AND NOT c.relforcerowsecurity) \
                     OR (SELECT pg_catalog.count(*) FROM pg_catalog.pg_policy po \
                          WHERE po.polrelid OPERATOR(pg_catalog.=) c.oid \
                            AND po.polname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[])) \
                        OPERATOR(pg_catalog.<) pg_catalog.cardinality($1::pg_catalog.text[]) \
                     OR ($3 AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy po \
                          WHERE po.polrelid OPERATOR(pg_catalog.=) c.oid AND po.polpermissive \
                            AND NOT po.polname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]))) \
                     OR (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger t \
                          WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid AND NOT t.tgisinternal \
                            AND pg_catalog.starts_with(t.tgname::pg_catalog.text, $2::pg_catalog.text) \
                            AND t.tgenabled OPERATOR(pg_catalog.=) ANY ('{O,A}'::pg_catalog.\"char\"[]) \
                            AND t.tgqual IS NULL) \
                        OPERATOR(pg_catalog.<) 2::pg_catalog.int8 \
                     OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i \
                                 WHERE i.inhrelid OPERATOR(pg_catalog.=) c.oid \
                                   AND NOT EXISTS (SELECT 1 FROM tenant_guard.protected q \
                                                    WHERE q.relid::pg_catalog.oid OPERATOR(pg_catalog.=) i.inhparent)) \
                     OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a \
                                      JOIN pg_catalog.pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) a.attrelid \
                                                                  AND d.adnum OPERATOR(pg_catalog.=) a.attnum \
                                     WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid \
                                       AND a.attname OPERATOR(pg_catalog.=) p.tenant_column \
                                       AND NOT a.attisdropped) \
                     OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a \
                                 WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid \
                                   AND a.attname OPERATOR(pg_catalog.=) p.tenant_column \
                                   AND a.atttypid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid) \
                  ORDER BY c.oid",
                None,
                &[names.into(), crate::policy::OBJECT_PREFIX.into(), citus.into()],
            ))
            .filter_map(|row| spi(row.get::<pg_sys::Oid>(1)))
            .collect()
        })
    })
}

/// Protected tables whose tenant column is `NOT NULL` now.
fn not_null_tenants() -> Vec<u32> {
    pinned(|| {
        Spi::connect(|c| {
            spi(c.select(
                "SELECT a.attrelid FROM tenant_guard.protected p \
                   JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid \
                                                AND a.attname OPERATOR(pg_catalog.=) p.tenant_column \
                  WHERE a.attnotnull AND NOT a.attisdropped ORDER BY 1",
                None,
                &[],
            ))
            .filter_map(|row| spi(row.get::<pg_sys::Oid>(1)))
            .map(u32::from)
            .collect()
        })
    })
}

/// Whether the tenant column of protected table `oid` is nullable now.
fn tenant_nullable(oid: pg_sys::Oid) -> bool {
    pinned(|| {
        one::<bool>(
            "SELECT NOT a.attnotnull FROM tenant_guard.protected p \
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid \
                                            AND a.attname OPERATOR(pg_catalog.=) p.tenant_column \
              WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1 AND NOT a.attisdropped",
            &[oid.into()],
        )
    })
    .unwrap_or(false)
}

/// `tenant_guard_internal.ddl_guard_snapshot()`: at `ddl_command_start`,
/// records the drift of the possibly drifted protected tables (none while
/// protect/unprotect run their own DDL).
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard_internal")]
fn ddl_guard_snapshot() {
    let busy = crate::protect::busy();
    let before = if busy {
        HashMap::new()
    } else {
        possibly_drifted()
            .into_iter()
            .map(|o| (u32::from(o), crate::protect::drift(o).unwrap_or_default()))
            .collect()
    };
    let not_null = if busy { Vec::new() } else { not_null_tenants() };
    let frame = Frame {
        xact: crate::context::this_transaction(),
        subxact: subxact(),
        before,
        not_null,
    };
    FRAMES.with(|f| {
        let mut f = f.borrow_mut();
        prune(&mut f);
        f.push(frame);
    });
}

/// `tenant_guard_internal.ddl_guard_done()`: at `ddl_command_end`, forgets
/// the running statement's snapshot.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard_internal")]
fn ddl_guard_done() {
    FRAMES.with(|f| {
        let mut f = f.borrow_mut();
        prune(&mut f);
        f.pop();
    });
}

/// What the running statement's snapshot recorded for `oid`.
fn before(oid: pg_sys::Oid) -> Vec<String> {
    FRAMES.with(|f| {
        let mut f = f.borrow_mut();
        prune(&mut f);
        f.last()
            .and_then(|fr| fr.before.get(&u32::from(oid)).cloned())
            .unwrap_or_default()
    })
}

/// Whether the running statement's snapshot saw `oid`'s tenant column
/// `NOT NULL`.
fn was_not_null(oid: pg_sys::Oid) -> bool {
    FRAMES.with(|f| {
        let mut f = f.borrow_mut();
        prune(&mut f);
        f.last()
            .is_some_and(|fr| fr.not_null.contains(&u32::from(oid)))
    })
}

/// Drift entries the guard does not refuse (see the module header).
/// In the Citus policy shape the tenant rules are permissive policies, so
/// another permissive policy widens access: refused there.
fn refused(drift: &str, shape: crate::policy::Shape) -> bool {
    shape == crate::policy::Shape::Citus || !drift.starts_with("extra permissive policy ")
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
/// the running statement weakened nothing (what was missing before it
/// started is left out), else one entry per protection it removed (the drift
/// detector's wording, e.g. `row-level security not forced`, `policy
/// tenant_guard_select missing`, `trigger tenant_guard_truncate disabled`,
/// `default missing`, `tenant column tenant_id missing`, plus `owner "r"
/// bypasses row-level security` and `tenant column NOT NULL dropped`).
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard_internal")]
fn ddl_guard_findings(relid: pg_sys::Oid) -> Option<Vec<String>> {
    let had = before(relid);
    let shape = crate::protect::shape();
    let mut found: Vec<String> = crate::protect::drift(relid)?
        .into_iter()
        .filter(|d| refused(d, shape) && !had.contains(d))
        .collect();
    if was_not_null(relid) && tenant_nullable(relid) {
        found.push("tenant column NOT NULL dropped".to_owned());
    }
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
    use crate::policy::Shape;

    #[test]
    fn extra_permissive_policies_are_not_refused() {
        assert!(!refused("extra permissive policy open_all", Shape::Single));
        assert!(refused("row-level security not forced", Shape::Single));
        assert!(refused("policy tenant_guard_select missing", Shape::Single));
    }

    #[test]
    fn extra_permissive_policies_are_refused_in_the_citus_shape() {
        // There the tenant rules are permissive: another one ORs with them.
        assert!(refused("extra permissive policy open_all", Shape::Citus));
        assert!(refused("policy tenant_guard_select missing", Shape::Citus));
    }
}
