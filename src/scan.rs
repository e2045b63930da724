//! How a protected table is scanned through its tenant index.
//!
//! The planner estimates the tenant rule (`tenant = ANY
//! (tenant_guard.visible_tenants())`) with the planning context's own tenant
//! (`context::tenant_array`), so a plan is the plan of a one-tenant query
//! whoever planned it. For a table whose tenants own a few rows each, that
//! plan is a plain index scan on the tenant index. At execution a context
//! may read a thousand tenants: a plain index scan then fetches every row
//! in index order, one heap page visit per row, where a bitmap scan visits
//! each page once in physical order (10,000 rows of 1,000 tenants: 10,000
//! buffer visits against 80).
//!
//! So where a scan's only index condition is the tenant rule (it reads
//! whole tenants), and nothing needs its order, the plain index scan is
//! replaced by a bitmap heap scan over the same index condition, for every
//! context alike: the shape does not depend on who planned it, the read
//! set only changes the array the index is searched with. A one-tenant
//! query costs about the same either way (a handful of pages). Scans with
//! other index conditions too (a key looked up within the tenant),
//! index-only scans, ordered and parameterized scans are left as planned.
//! No subquery, no new policy text: Citus plans shards the same way.

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;
use std::ffi::CStr;

static mut PREVIOUS_SET_REL_PATHLIST: pg_sys::set_rel_pathlist_hook_type = None;

/// Installs the path hook (once per process, from `_PG_init`; hooks chain).
pub fn init() {
    // SAFETY: _PG_init runs once per process; the previous hook is kept and
    // called from ours.
    unsafe {
        PREVIOUS_SET_REL_PATHLIST = pg_sys::set_rel_pathlist_hook;
        pg_sys::set_rel_pathlist_hook = Some(set_rel_pathlist);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn set_rel_pathlist(
    root: *mut pg_sys::PlannerInfo,
    rel: *mut pg_sys::RelOptInfo,
    rti: pg_sys::Index,
    rte: *mut pg_sys::RangeTblEntry,
) {
    // SAFETY: the planner's arguments, passed on unchanged; an error in a
    // hook below ours is caught at the FFI boundary.
    unsafe {
        if let Some(previous) = PREVIOUS_SET_REL_PATHLIST {
            pg_sys::ffi::pg_guard_ffi_boundary(|| previous(root, rel, rti, rte));
        }
        prefer_bitmap(root, rel, rte);
        retype_tenant_arrays(rel);
    }
}

/// Gives each tenant rule of `rel` whose array is cast element by element
/// (`tenant_guard.visible_tenants()::uuid[]`: a column of another type than
/// `text`) the cast's result type instead, on the call itself.
///
/// PostgreSQL evaluates the array of `column = ANY (array)` again for every
/// row a filter tests, and with it the cast: reading every tenant of the
/// set with the column type's input function, per row (a one-tenant
/// context's sequential scan of a `uuid` table ran at 0.39 of the
/// hand-written policy's speed). Given the array type as its result type,
/// `tenant_guard.visible_tenants()` reads the elements with the same input
/// function itself, once per statement, and hands the same array to every
/// row (spec `89_typed_tenant_arrays`). Only a cast that does exactly that
/// is replaced: an I/O conversion of each element to a type without a
/// type modifier (`uuid`, the integers, `numeric`, an enum); anything
/// else keeps its cast. The plan's shape and the rule's meaning do not
/// change.
///
/// # Safety
/// `rel` is the planner's valid RelOptInfo of a base relation being planned.
unsafe fn retype_tenant_arrays(rel: *mut pg_sys::RelOptInfo) {
    // SAFETY: baserestrictinfo is a List of RestrictInfo; their clauses are
    // the planner's own copies for this query, changed in place.
    unsafe {
        for rinfo in PgList::<pg_sys::RestrictInfo>::from_pg((*rel).baserestrictinfo).iter_ptr() {
            if !rinfo.is_null() {
                retype_in((*rinfo).clause.cast());
            }
        }
    }
}

/// `retype_tenant_arrays` for one clause: a tenant rule, or an `AND`/`OR` of
/// clauses (the permissive mode's `rule OR column IS NULL`).
///
/// # Safety
/// `node` is NULL or a valid expression node of the planner's.
unsafe fn retype_in(node: *mut pg_sys::Node) {
    // SAFETY: nodes read by tag; the list cell replaced holds an
    // expression node, replaced by another of the same result type.
    unsafe {
        if node.is_null() {
            return;
        }
        match (*node).type_ {
            pg_sys::NodeTag::T_BoolExpr => {
                let args = PgList::<pg_sys::Node>::from_pg((*(node as *mut pg_sys::BoolExpr)).args);
                for arg in args.iter_ptr() {
                    retype_in(arg);
                }
            }
            pg_sys::NodeTag::T_ScalarArrayOpExpr => {
                let saop = node as *mut pg_sys::ScalarArrayOpExpr;
                let args = (*saop).args;
                if !(*saop).useOr || args.is_null() || (*args).length != 2 {
                    return;
                }
                let cell = (*args).elements.add(1);
                if let Some(call) = typed_call((*cell).ptr_value.cast()) {
                    (*cell).ptr_value = call.cast();
                }
            }
            _ => {}
        }
    }
}

/// For `tenant_guard.visible_tenants()::T[]` (or `writable_tenants()`) cast
/// as `typed_array` casts, a copy of the call with `T[]` as its result type.
///
/// # Safety
/// `node` is NULL or a valid expression node.
unsafe fn typed_call(node: *mut pg_sys::Node) -> Option<*mut pg_sys::FuncExpr> {
    // SAFETY: nodes read by tag; copyObjectImpl copies a valid node into
    // the planner's current memory context.
    unsafe {
        if node.is_null() || (*node).type_ != pg_sys::NodeTag::T_ArrayCoerceExpr {
            return None;
        }
        let ace = node as *mut pg_sys::ArrayCoerceExpr;
        let call = (*ace).arg as *mut pg_sys::Node;
        if (*ace).resulttypmod != -1
            || call.is_null()
            || (*call).type_ != pg_sys::NodeTag::T_FuncExpr
            || !io_like((*ace).elemexpr.cast())
        {
            return None;
        }
        let f = call as *mut pg_sys::FuncExpr;
        if !(*f).args.is_null()
            || (*f).funcresulttype != pg_sys::TEXTARRAYOID
            || (*f).funcretset
            || !is_tenant_set_function((*f).funcid)
        {
            return None;
        }
        let copy = pg_sys::copyObjectImpl(f.cast()) as *mut pg_sys::FuncExpr;
        (*copy).funcresulttype = (*ace).resulttype;
        (*copy).funccollid = (*ace).resultcollid;
        Some(copy)
    }
}

/// Whether an array cast's per-element expression is an I/O conversion of
/// the element: what reading the element's text with the result type's
/// input function does.
///
/// # Safety
/// `node` is NULL or a valid expression node.
unsafe fn io_like(node: *mut pg_sys::Node) -> bool {
    // SAFETY: nodes read by tag.
    unsafe {
        !node.is_null() && (*node).type_ == pg_sys::NodeTag::T_CoerceViaIO && {
            let arg: *mut pg_sys::Node = (*(node as *mut pg_sys::CoerceViaIO)).arg.cast();
            !arg.is_null() && (*arg).type_ == pg_sys::NodeTag::T_CaseTestExpr
        }
    }
}

/// Replaces the plain index paths of `rel` that read whole tenants (see the
/// module header) by bitmap heap paths over the same index path.
///
/// # Safety
/// The planner's valid `root`, `rel` and `rte` for a base relation being
/// planned.
unsafe fn prefer_bitmap(
    root: *mut pg_sys::PlannerInfo,
    rel: *mut pg_sys::RelOptInfo,
    rte: *mut pg_sys::RangeTblEntry,
) {
    // SAFETY: rel and rte are valid (caller); pathlist is a List of Path
    // nodes; each IndexPath's indexclauses a List of IndexClause, whose
    // rinfo is a RestrictInfo. create_bitmap_heap_path and add_path are the
    // planner's own constructors, used as create_index_paths uses them.
    unsafe {
        // With bitmap scans turned off, the planner's choice stands.
        if !pg_sys::enable_bitmapscan
            || rte.is_null()
            || (*rte).rtekind != pg_sys::RTEKind::RTE_RELATION
            || !matches!(
                (*rel).reloptkind,
                pg_sys::RelOptKind::RELOPT_BASEREL | pg_sys::RelOptKind::RELOPT_OTHER_MEMBER_REL
            )
        {
            return;
        }
        let paths = PgList::<pg_sys::Path>::from_pg((*rel).pathlist);
        let chosen: Vec<*mut pg_sys::IndexPath> = paths
            .iter_ptr()
            .filter(|&p| reads_whole_tenants(p))
            .map(|p| p as *mut pg_sys::IndexPath)
            .collect();
        for ipath in chosen {
            (*rel).pathlist = pg_sys::list_delete_ptr((*rel).pathlist, ipath.cast());
            let bitmap = pg_sys::create_bitmap_heap_path(
                root,
                rel,
                ipath.cast(),
                (*rel).lateral_relids,
                1.0,
                0,
            );
            pg_sys::add_path(rel, bitmap.cast());
        }
    }
}

/// Whether `path` is an unordered, unparameterized plain index scan whose
/// index conditions are all the tenant rule.
///
/// # Safety
/// `path` is a valid Path node of the planner.
unsafe fn reads_whole_tenants(path: *mut pg_sys::Path) -> bool {
    // SAFETY: a Path node (caller); only an IndexPath is cast to one.
    unsafe {
        if (*path).type_ != pg_sys::NodeTag::T_IndexPath
            || (*path).pathtype != pg_sys::NodeTag::T_IndexScan
            || !(*path).pathkeys.is_null()
            || !(*path).param_info.is_null()
        {
            return false;
        }
        let ipath = path as *mut pg_sys::IndexPath;
        if !(*ipath).indexorderbys.is_null() {
            return false;
        }
        let clauses = PgList::<pg_sys::IndexClause>::from_pg((*ipath).indexclauses);
        !clauses.is_empty()
            && clauses.iter_ptr().all(|ic| {
                let rinfo = (*ic).rinfo;
                !rinfo.is_null() && is_tenant_rule((*rinfo).clause.cast())
            })
    }
}

/// Whether `node` is `column = ANY (tenant_guard.visible_tenants())` or
/// `... writable_tenants()`, the array possibly cast to the column's type.
///
/// # Safety
/// `node` is NULL or a valid expression node.
unsafe fn is_tenant_rule(node: *mut pg_sys::Node) -> bool {
    // SAFETY: expression nodes of a RestrictInfo (caller), read by tag.
    unsafe {
        if node.is_null() || (*node).type_ != pg_sys::NodeTag::T_ScalarArrayOpExpr {
            return false;
        }
        let saop = node as *mut pg_sys::ScalarArrayOpExpr;
        if !(*saop).useOr {
            return false;
        }
        let args = PgList::<pg_sys::Node>::from_pg((*saop).args);
        let Some(mut array) = args.get_ptr(1) else {
            return false;
        };
        // The cast to the column's array type: binary (RelabelType) or
        // element by element (ArrayCoerceExpr).
        loop {
            match (*array).type_ {
                pg_sys::NodeTag::T_RelabelType => {
                    array = (*(array as *mut pg_sys::RelabelType)).arg.cast()
                }
                pg_sys::NodeTag::T_ArrayCoerceExpr => {
                    array = (*(array as *mut pg_sys::ArrayCoerceExpr)).arg.cast()
                }
                _ => break,
            }
            if array.is_null() {
                return false;
            }
        }
        if (*array).type_ != pg_sys::NodeTag::T_FuncExpr {
            return false;
        }
        is_tenant_set_function((*(array as *mut pg_sys::FuncExpr)).funcid)
    }
}

/// Whether `funcid` is `tenant_guard.visible_tenants()` or
/// `tenant_guard.writable_tenants()` (looked up by name in the catalog
/// cache: only for `= ANY (function())` index conditions).
fn is_tenant_set_function(funcid: pg_sys::Oid) -> bool {
    // SAFETY: catalog cache look-ups of an existing function; the names are
    // palloc'd C strings or NULL.
    unsafe {
        let name = pg_sys::get_func_name(funcid);
        if name.is_null() {
            return false;
        }
        let name = CStr::from_ptr(name).to_bytes();
        if name != b"visible_tenants" && name != b"writable_tenants" {
            return false;
        }
        let schema = pg_sys::get_namespace_name(pg_sys::get_func_namespace(funcid));
        !schema.is_null() && CStr::from_ptr(schema).to_bytes() == b"tenant_guard"
    }
}
