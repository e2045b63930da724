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
    init_members();
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

/// Puts `tenant_guard.is_visible(column)` (or `is_writable`) in place of
/// each tenant rule a finished plan tests as a filter (a plan node's
/// `qual`: a sequential or sample scan, a scan through another index, the
/// inner side of a join), where the rule compares the column with its own
/// type's equality (`text`, or the types `retype_tenant_arrays` gave the
/// call).
///
/// PostgreSQL searches the array of `column = ANY (array)` element by
/// element for every row, unless the array is a constant: under a context
/// that reads 1,000 tenants, or a bypass context reading a registry of
/// 100,000, a filter compared each row with every tenant. The call
/// searches the same set, once hashed (`context::tenant_member`). Index
/// conditions keep the rule (they read the array once per scan), and so do
/// the policies: only the plan changes, for every context alike, so a plan
/// is still the same whoever planned it (spec `91_hashed_tenant_filters`).
///
/// # Safety
/// `stmt` is a valid PlannedStmt just made by the planner.
pub unsafe fn hash_tenant_filters(stmt: *mut pg_sys::PlannedStmt) {
    // SAFETY: per the caller; plan nodes read by tag.
    unsafe {
        if stmt.is_null() {
            return;
        }
        let mut used = Vec::new();
        hash_in_plan((*stmt).planTree, &mut used);
        for sub in PgList::<pg_sys::Plan>::from_pg((*stmt).subplans).iter_ptr() {
            hash_in_plan(sub, &mut used);
        }
        // The plan now calls these functions: a cached plan is made again
        // if they change, as for the functions the query itself names.
        used.sort_by_key(|f| f.to_u32());
        used.dedup();
        for funcid in used {
            let item = pg_sys::palloc0(std::mem::size_of::<pg_sys::PlanInvalItem>())
                as *mut pg_sys::PlanInvalItem;
            (*item).type_ = pg_sys::NodeTag::T_PlanInvalItem;
            (*item).cacheId = pg_sys::SysCacheIdentifier::PROCOID as i32;
            (*item).hashValue = pg_sys::GetSysCacheHashValue(
                pg_sys::SysCacheIdentifier::PROCOID as i32,
                pg_sys::Datum::from(funcid),
                pg_sys::Datum::from(0usize),
                pg_sys::Datum::from(0usize),
                pg_sys::Datum::from(0usize),
            );
            (*stmt).invalItems = pg_sys::lappend((*stmt).invalItems, item.cast());
        }
    }
}

/// `hash_tenant_filters` for one plan node and the nodes below it.
///
/// # Safety
/// `plan` is NULL or a valid plan node of a finished plan.
unsafe fn hash_in_plan(plan: *mut pg_sys::Plan, used: &mut Vec<pg_sys::Oid>) {
    // SAFETY: plan nodes read by tag and cast to the struct of that tag;
    // the qual list is replaced by a new one (its old cells may be shared
    // with nothing else, but are not changed).
    unsafe {
        if plan.is_null() {
            return;
        }
        check_for_interrupts!();
        pg_sys::check_stack_depth();
        if let Some(quals) = hashed_list((*plan).qual, used) {
            (*plan).qual = quals;
        }
        hash_in_plan((*plan).lefttree, used);
        hash_in_plan((*plan).righttree, used);
        let children = match (*plan).type_ {
            pg_sys::NodeTag::T_Append => (*(plan as *mut pg_sys::Append)).appendplans,
            pg_sys::NodeTag::T_MergeAppend => (*(plan as *mut pg_sys::MergeAppend)).mergeplans,
            pg_sys::NodeTag::T_BitmapAnd => (*(plan as *mut pg_sys::BitmapAnd)).bitmapplans,
            pg_sys::NodeTag::T_BitmapOr => (*(plan as *mut pg_sys::BitmapOr)).bitmapplans,
            pg_sys::NodeTag::T_CustomScan => (*(plan as *mut pg_sys::CustomScan)).custom_plans,
            pg_sys::NodeTag::T_SubqueryScan => {
                hash_in_plan((*(plan as *mut pg_sys::SubqueryScan)).subplan, used);
                std::ptr::null_mut()
            }
            _ => std::ptr::null_mut(),
        };
        for child in PgList::<pg_sys::Plan>::from_pg(children).iter_ptr() {
            hash_in_plan(child, used);
        }
    }
}

/// `node` with its tenant rules replaced (a new node where one was; `node`
/// itself otherwise): a rule, or an `AND`/`OR`/`NOT` over clauses (the
/// permissive mode's `rule OR column IS NULL`).
///
/// # Safety
/// `node` is NULL or a valid expression node.
unsafe fn hashed(node: *mut pg_sys::Node, used: &mut Vec<pg_sys::Oid>) -> *mut pg_sys::Node {
    // SAFETY: nodes read by tag; new nodes built with the planner's own
    // constructors in the current memory context (the plan's).
    unsafe {
        if node.is_null() {
            return node;
        }
        match (*node).type_ {
            pg_sys::NodeTag::T_BoolExpr => {
                let b = node as *mut pg_sys::BoolExpr;
                match hashed_list((*b).args, used) {
                    Some(args) => pg_sys::makeBoolExpr((*b).boolop, args, (*b).location).cast(),
                    None => node,
                }
            }
            pg_sys::NodeTag::T_ScalarArrayOpExpr => {
                match membership_call(node as *mut pg_sys::ScalarArrayOpExpr) {
                    Some(call) => {
                        used.push((*call).funcid);
                        call.cast()
                    }
                    None => node,
                }
            }
            _ => node,
        }
    }
}

/// A new list of `list`'s expressions with their tenant rules replaced
/// ([`hashed`]), or `None` where none was (`list` is left as it is: its
/// cells may be shared).
///
/// # Safety
/// `list` is NIL or a valid List of expression nodes.
unsafe fn hashed_list(
    list: *mut pg_sys::List,
    used: &mut Vec<pg_sys::Oid>,
) -> Option<*mut pg_sys::List> {
    // SAFETY: per the caller.
    unsafe {
        let mut changed = false;
        let mut out = PgList::<pg_sys::Node>::new();
        for e in PgList::<pg_sys::Node>::from_pg(list).iter_ptr() {
            let r = hashed(e, used);
            changed |= r != e;
            out.push(r);
        }
        changed.then(|| out.into_pg())
    }
}

/// For `column = ANY (tenant_guard.visible_tenants())` (or
/// `writable_tenants()`, under casts that change no element), the call's
/// result an array of the column's base
/// type and `=` that type's default equality (the one its hash operator
/// class goes with), `tenant_guard.is_visible(column)` (`is_writable`).
///
/// # Safety
/// `saop` is a valid ScalarArrayOpExpr.
unsafe fn membership_call(saop: *mut pg_sys::ScalarArrayOpExpr) -> Option<*mut pg_sys::FuncExpr> {
    // SAFETY: nodes read by tag; catalog and type cache look-ups of
    // existing objects.
    unsafe {
        let args = PgList::<pg_sys::Node>::from_pg((*saop).args);
        if !(*saop).useOr || args.len() != 2 {
            return None;
        }
        let (scalar, array) = (args.get_ptr(0)?, args.get_ptr(1)?);
        let array = without_binary_casts(array)?;
        if (*array).type_ != pg_sys::NodeTag::T_FuncExpr {
            return None;
        }
        let f = array as *mut pg_sys::FuncExpr;
        if !(*f).args.is_null() || (*f).funcretset {
            return None;
        }
        let base = pg_sys::getBaseType(pg_sys::exprType(scalar));
        let elem = pg_sys::get_element_type((*f).funcresulttype);
        if elem == pg_sys::InvalidOid || elem != base {
            return None;
        }
        let tce = pg_sys::lookup_type_cache(
            base,
            (pg_sys::TYPECACHE_EQ_OPR | pg_sys::TYPECACHE_HASH_PROC) as i32,
        );
        if tce.is_null() || (*tce).eq_opr != (*saop).opno || (*tce).hash_proc == pg_sys::InvalidOid
        {
            return None;
        }
        let funcid = member_function((*f).funcid)?;
        let call = pg_sys::makeFuncExpr(
            funcid,
            pg_sys::BOOLOID,
            pg_sys::list_make1_impl(
                pg_sys::NodeTag::T_List,
                pg_sys::ListCell {
                    ptr_value: scalar.cast(),
                },
            ),
            pg_sys::InvalidOid,
            (*saop).inputcollid,
            pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
        );
        (*call).location = (*saop).location;
        Some(call)
    }
}

/// `node` without the casts around it that change no element: a binary
/// relabelling of the array (`RelabelType`), or a cast applied element by
/// element whose per-element expression is a binary relabelling or nothing
/// (`ArrayCoerceExpr`, no type modifier). A `varchar` column's rule reads
/// `column::text = ANY (tenant_guard.visible_tenants()::varchar[]::text[])`:
/// the `text` elements the function returns are compared unchanged (and
/// PostgreSQL copied the whole array for each row to relabel it). `None`:
/// NULL.
///
/// # Safety
/// `node` is NULL or a valid expression node.
unsafe fn without_binary_casts(mut node: *mut pg_sys::Node) -> Option<*mut pg_sys::Node> {
    // SAFETY: nodes read by tag.
    unsafe {
        loop {
            if node.is_null() {
                return None;
            }
            node = match (*node).type_ {
                pg_sys::NodeTag::T_RelabelType => (*(node as *mut pg_sys::RelabelType)).arg.cast(),
                pg_sys::NodeTag::T_ArrayCoerceExpr => {
                    let ace = node as *mut pg_sys::ArrayCoerceExpr;
                    let mut elem: *mut pg_sys::Node = (*ace).elemexpr.cast();
                    if !elem.is_null() && (*elem).type_ == pg_sys::NodeTag::T_RelabelType {
                        elem = (*(elem as *mut pg_sys::RelabelType)).arg.cast();
                    }
                    if (*ace).resulttypmod != -1
                        || elem.is_null()
                        || (*elem).type_ != pg_sys::NodeTag::T_CaseTestExpr
                    {
                        return Some(node);
                    }
                    (*ace).arg.cast()
                }
                _ => return Some(node),
            };
        }
    }
}

thread_local! {
    /// `tenant_set_oid -> member function oid` (`visible_tenants ->
    /// is_visible`, `writable_tenants -> is_writable`; `None`: not one of
    /// them, or the member function is missing), forgotten whenever
    /// `pg_proc` changes.
    static MEMBER: std::cell::RefCell<Vec<(pg_sys::Oid, Option<pg_sys::Oid>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

#[pg_guard]
unsafe extern "C-unwind" fn forget_members(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    MEMBER.with(|m| m.borrow_mut().clear());
}

/// Registers the `pg_proc` invalidation callback that empties [`MEMBER`]
/// (once per process, from `_PG_init`).
pub fn init_members() {
    // SAFETY: registering a syscache callback from _PG_init; it only
    // clears a backend-local list.
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::PROCOID as i32,
            Some(forget_members),
            pg_sys::Datum::from(0usize),
        );
    }
}

/// The member function that goes with the tenant set function `funcid`
/// (in the same schema, taking `anyelement`), if `funcid` is one.
fn member_function(funcid: pg_sys::Oid) -> Option<pg_sys::Oid> {
    if let Some(known) = MEMBER.with(|m| {
        m.borrow()
            .iter()
            .find(|(f, _)| *f == funcid)
            .map(|(_, m)| *m)
    }) {
        return known;
    }
    // SAFETY: catalog cache look-ups of an existing function and of a
    // function by name, argument types and schema.
    let found = unsafe {
        let name = pg_sys::get_func_name(funcid);
        let member: Option<&CStr> = if name.is_null() || !is_tenant_set_function(funcid) {
            None
        } else if CStr::from_ptr(name).to_bytes() == b"visible_tenants" {
            Some(c"is_visible")
        } else {
            Some(c"is_writable")
        };
        member.and_then(|m| {
            let mut argtypes = [pg_sys::ANYELEMENTOID];
            let args = pg_sys::buildoidvector(argtypes.as_mut_ptr(), 1);
            let oid = pg_sys::GetSysCacheOid(
                pg_sys::SysCacheIdentifier::PROCNAMEARGSNSP as i32,
                pg_sys::Anum_pg_proc_oid as pg_sys::AttrNumber,
                pg_sys::Datum::from(m.as_ptr()),
                pg_sys::Datum::from(args),
                pg_sys::Datum::from(pg_sys::get_func_namespace(funcid)),
                pg_sys::Datum::from(0usize),
            );
            (oid != pg_sys::InvalidOid).then_some(oid)
        })
    };
    MEMBER.with(|m| m.borrow_mut().push((funcid, found)));
    found
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
