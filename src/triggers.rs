//! The row trigger that keeps a row's tenant, written in C-ABI Rust so it
//! costs a column comparison per updated row (no row serialisation), and the
//! statement trigger that refuses TRUNCATE. Both count their refusals in
//! `tenant_guard.stats`.
//!
//! Rule: a row's tenant never changes under a tenant context (a tenant, a
//! multi-tenant or a bypass context), nor for a role that row-level security
//! restricts on the table. A NULL tenant may be filled in (what backfills
//! do). The one exception is an operator's repair: a session **without**
//! tenant context that row-level security does not restrict on the table (a
//! superuser, a `BYPASSRLS` role, or the owner of a table whose row-level
//! security is not forced) may move a row to another tenant, e.g. an orphan
//! row of `deploy-preview-123` to its real tenant.
//!
//! The trigger runs with the rights of whoever runs the UPDATE and reads
//! nothing but the two row versions and the catalog.

use crate::error::Failure;
use pgrx::prelude::*;
use std::ffi::CStr;

/// Whether this session has a tenant context of any kind (also one that no
/// longer verifies: that too must not move rows).
fn has_context() -> bool {
    // SAFETY: reads a registered setting; NULL when it does not exist.
    let v = unsafe { pg_sys::GetConfigOption(crate::gucs::CONTEXT_NAME.as_ptr(), true, false) };
    // SAFETY: a NUL-terminated string owned by the GUC machinery.
    !v.is_null() && !unsafe { CStr::from_ptr(v) }.to_bytes().is_empty()
}

/// Whether row-level security restricts the current user on `relid`, or
/// the session's own (outer) user. A foreign key's `ON UPDATE CASCADE` runs
/// as the child table's owner with forced row-level security off, and a
/// `SECURITY DEFINER` function runs as its owner: neither may let a role
/// that row-level security restricts move rows it could not move itself.
fn restricted(relid: pg_sys::Oid) -> bool {
    if crate::privileged::rls_restricts_caller(relid) {
        return true;
    }
    // SAFETY: reads the backend's outer user id; a catalog look-up.
    unsafe {
        let outer = pg_sys::GetOuterUserId();
        outer != pg_sys::GetUserId()
            && pg_sys::check_enable_rls(relid, outer, true)
                == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
    }
}

/// Who may change a row's tenant (pure: unit-tested).
pub fn may_change(old_is_null: bool, equal: bool, context: bool, restricted: bool) -> bool {
    old_is_null || equal || (!context && !restricted)
}

/// Whether two non-NULL datums of one type have the same byte image.
///
/// # Safety
/// The datums must be valid values of a type with the given length and
/// by-value flag.
/// Column `attnum` of a row UPDATE's old and new tuples: whether the old
/// value is NULL, and whether the new one is the same (both NULL, or the
/// same bytes after detoasting, whatever the header: [`same_image`]).
///
/// # Safety
/// `desc` describes both tuples, which are valid; `attnum` is a user
/// column of `desc`.
pub(crate) unsafe fn column_unchanged(
    desc: pg_sys::TupleDesc,
    old: pg_sys::HeapTuple,
    new: pg_sys::HeapTuple,
    attnum: i32,
) -> (bool, bool) {
    // SAFETY: per the caller; the type is the column's, an existing one.
    unsafe {
        let (mut old_null, mut new_null) = (false, false);
        let old_d = pg_sys::SPI_getbinval(old, desc, attnum, &mut old_null);
        let new_d = pg_sys::SPI_getbinval(new, desc, attnum, &mut new_null);
        let equal = match (old_null, new_null) {
            (true, true) => true,
            (false, false) => {
                let (mut len, mut byval) = (0i16, false);
                pg_sys::get_typlenbyval(pg_sys::SPI_gettypeid(desc, attnum), &mut len, &mut byval);
                same_image(old_d, new_d, byval, len)
            }
            _ => false,
        };
        (old_null, equal)
    }
}

unsafe fn same_image(a: pg_sys::Datum, b: pg_sys::Datum, byval: bool, len: i16) -> bool {
    if byval {
        return a == b;
    }
    // SAFETY: valid datums of this type (caller); detoasting returns a
    // palloc'd or the original pointer, read within its size only.
    unsafe {
        let (pa, pb): (&[u8], &[u8]) = if len == -1 {
            let va = pg_sys::pg_detoast_datum_packed(a.cast_mut_ptr());
            let vb = pg_sys::pg_detoast_datum_packed(b.cast_mut_ptr());
            (
                std::slice::from_raw_parts(
                    pgrx::varlena::vardata_any(va).cast(),
                    pgrx::varlena::varsize_any_exhdr(va),
                ),
                std::slice::from_raw_parts(
                    pgrx::varlena::vardata_any(vb).cast(),
                    pgrx::varlena::varsize_any_exhdr(vb),
                ),
            )
        } else if len == -2 {
            let ca = CStr::from_ptr(a.cast_mut_ptr());
            let cb = CStr::from_ptr(b.cast_mut_ptr());
            (ca.to_bytes(), cb.to_bytes())
        } else {
            let n = usize::try_from(len).unwrap_or(0);
            (
                std::slice::from_raw_parts(a.cast_mut_ptr::<u8>(), n),
                std::slice::from_raw_parts(b.cast_mut_ptr::<u8>(), n),
            )
        };
        pa == pb
    }
}

/// The TriggerData of a call of the trigger function `name`; 39P01 when it
/// is called other than as a trigger.
///
/// # Safety
/// `fcinfo` is the call's valid FunctionCallInfo.
pub unsafe fn trigger_data(
    fcinfo: pg_sys::FunctionCallInfo,
    name: &str,
) -> *mut pg_sys::TriggerData {
    // SAFETY: per the caller; `context` is NULL or a node, read by tag.
    unsafe {
        let ctx = (*fcinfo).context;
        if ctx.is_null() || (*ctx).type_ != pg_sys::NodeTag::T_TriggerData {
            Failure::new(
                pgrx::PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                format!("{name}: not called as a trigger"),
            )
            .raise();
        }
        ctx as *mut pg_sys::TriggerData
    }
}

/// `tenant_guard_internal.refuse_tenant_change() RETURNS trigger`, BEFORE UPDATE OF
/// the tenant column, FOR EACH ROW; its one argument names the column.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn tg_refuse_tenant_change(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL passes a valid fcinfo; a trigger call carries a
    // TriggerData node in `context`, checked before any use.
    unsafe {
        let td = trigger_data(fcinfo, "refuse_tenant_change");
        let event = (*td).tg_event;
        let is_update = (event & pg_sys::TRIGGER_EVENT_OPMASK) == pg_sys::TRIGGER_EVENT_UPDATE;
        let is_row = (event & pg_sys::TRIGGER_EVENT_ROW) != 0;
        let is_before = (event & pg_sys::TRIGGER_EVENT_TIMINGMASK) == pg_sys::TRIGGER_EVENT_BEFORE;
        if !(is_update && is_row && is_before) {
            Failure::new(
                pgrx::PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "refuse_tenant_change must be a BEFORE UPDATE row trigger",
            )
            .raise();
        }
        let rel = (*td).tg_relation;
        let relid = (*rel).rd_id;
        let tupdesc = (*rel).rd_att;
        let trigger = (*td).tg_trigger;
        if (*trigger).tgnargs != 1 {
            Failure::new(
                pgrx::PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "refuse_tenant_change needs the tenant column as its one argument",
            )
            .raise();
        }
        let column = *(*trigger).tgargs;
        let attnum = pg_sys::SPI_fnumber(tupdesc, column);
        if attnum <= 0 {
            Failure::new(
                pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
                format!(
                    "tenant column \"{}\" not found",
                    CStr::from_ptr(column).to_string_lossy()
                ),
            )
            .raise();
        }
        let new = (*td).tg_newtuple;
        // Same bytes: the same id. Tenant ids are text, integers and uuids,
        // whose equal values have equal images.
        let (old_null, equal) = column_unchanged(tupdesc, (*td).tg_trigtuple, new, attnum);
        // Cheap checks first: most updates leave the tenant as it was.
        if !may_change(old_null, equal, has_context(), false)
            || (!old_null && !equal && restricted(relid))
        {
            crate::stats::bump(crate::metrics::Counter::DeniedTenantChange);
            let col = CStr::from_ptr(column).to_string_lossy().into_owned();
            Failure::new(
                pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                "the tenant of a row cannot be changed",
            )
            .detail(format!(
                "Column {} of {} holds the row's tenant.",
                crate::quote::ident(&col),
                // A message only: no pin on schema names (see
                // `privileged::pin_schema_names`) in the application's write.
                crate::privileged::class_row_unpinned(relid)
                    .map_or_else(|| format!("relation {}", u32::from(relid)), |c| c.name)
            ))
            .hint(
                "Tenant sessions never move rows. An operator can: a session without a tenant context \
                 that row-level security does not restrict (a superuser or a BYPASSRLS role).",
            )
            .raise();
        }
        pg_sys::Datum::from(new)
    }
}

/// `tenant_guard_internal.refuse_truncate() RETURNS trigger`, BEFORE
/// TRUNCATE, FOR EACH STATEMENT. TRUNCATE ignores row-level security: it is
/// refused under a tenant or bypass context, and for any role that
/// row-level security restricts on the table (`row_security_active`).
/// Counted in `tenant_guard.stats` at the refusal.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn tg_refuse_truncate(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL passes a valid fcinfo; a trigger call carries a
    // TriggerData node in `context`, checked before any use, whose
    // tg_relation is the open relation with its pg_class row (rd_rel).
    // get_namespace_name returns a palloc'd name or NULL (then the name is
    // left unqualified); quote_qualified_identifier a palloc'd string.
    unsafe {
        let td = trigger_data(fcinfo, "refuse_truncate");
        let relid = (*(*td).tg_relation).rd_id;
        if crate::context::tenant_or_bypass() || crate::privileged::rls_restricts_caller(relid) {
            crate::stats::bump(crate::metrics::Counter::DeniedTruncate);
            // As regclass prints it with search_path = pg_catalog, pg_temp
            // (the message of 0.1.0's PL/pgSQL trigger): schema.name, each
            // quoted only when needed.
            let rel = (*td).tg_relation;
            let nsp = pg_sys::get_namespace_name((*(*rel).rd_rel).relnamespace);
            let name =
                pg_sys::quote_qualified_identifier(nsp, (*(*rel).rd_rel).relname.data.as_ptr());
            Failure::new(
                pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!(
                    "TRUNCATE is not allowed on tenant table {}",
                    CStr::from_ptr(name).to_string_lossy()
                ),
            )
            .detail(
                "TRUNCATE ignores row-level security and would remove the rows of every tenant.",
            )
            .hint("Use DELETE, which removes only the current tenant's rows.")
            .raise();
        }
        // A statement trigger's result is ignored: no tuple (a NULL
        // pointer, as PL/pgSQL returns; an SQL NULL is refused by the
        // trigger manager: "trigger function returned null value").
        pg_sys::Datum::from(0)
    }
}

#[no_mangle]
pub extern "C" fn pg_finfo_tg_refuse_truncate() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[no_mangle]
pub extern "C" fn pg_finfo_tg_refuse_tenant_change() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[cfg(test)]
mod unit {
    use super::may_change;

    #[test]
    fn who_may_move_a_row() {
        // Unchanged, or a NULL filled in: anyone who may update the row.
        assert!(may_change(false, true, true, true));
        assert!(may_change(true, false, true, true));
        // Changed: only without context and without row-level security.
        assert!(may_change(false, false, false, false));
        assert!(!may_change(false, false, true, false));
        assert!(!may_change(false, false, false, true));
        assert!(!may_change(false, false, true, true));
    }
}
