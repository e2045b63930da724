//! Catalog look-ups and the definer-rights helper shared by the modules.

use crate::error::spi;
use pgrx::prelude::*;

/// Runs `f` as the extension's owner, like a `SECURITY DEFINER` function.
///
/// Why: the key ring and the registry must be readable by the verification
/// path but by no application role. `SECURITY_RESTRICTED_OPERATION` is added
/// so nothing reached from here can `SET ROLE`, create temporary objects or
/// otherwise act on the elevated identity. Every query run inside names its
/// objects schema-qualified, so `search_path` cannot redirect it. If `f`
/// errors, PostgreSQL's (sub)transaction abort restores the previous user; on
/// the normal path the guard below does.
pub fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    as_user(crate::keys::ring().owner, f)
}

/// Runs `f` as `owner` (see [`as_owner`]).
pub fn as_user<R>(owner: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_sec: i32 = 0;
    // SAFETY: plain reads/writes of the backend's current user id.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_sec) };
    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
        }
    }
    let _restore = Restore(saved_user, saved_sec);
    let flags = saved_sec
        | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
        | pg_sys::SECURITY_RESTRICTED_OPERATION as i32;
    unsafe { pg_sys::SetUserIdAndSecContext(owner, flags) };
    f()
}

/// The role that owns the extension (whoever ran `CREATE EXTENSION`).
pub fn extension_owner() -> pg_sys::Oid {
    spi(Spi::get_one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'tenant_guard'",
    ))
    .unwrap_or(pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID))
}
