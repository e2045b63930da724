//! The key ring: storage, management functions and the per-backend cache.
//!
//! Keys live in `tenant_guard.keys`, which no application role can read
//! (`REVOKE ALL ... FROM PUBLIC`). Every read and write goes through
//! [`as_extension_owner`] (restricted, `search_path` pinned, every object
//! and operator qualified), so granting `EXECUTE` on `add_key` to a
//! key-admin role is enough to let it manage keys without ever `SELECT`ing
//! secrets, and nothing that role (or anyone) put in `pg_temp` or a schema
//! of its own is reached while the owner's rights are in force.
//!
//! Cache: a backend loads the active keys (and the registry settings) once
//! and keeps them until a change is announced. Any change to the two tables,
//! by these functions or by hand, fires a statement trigger that queues a
//! relcache invalidation for the table; PostgreSQL delivers it to every
//! backend at its next transaction start (and to this one at its next
//! command), and the callback drops the cache. So a retired key stops
//! verifying in all sessions from their next transaction on. Key expiry
//! needs no invalidation: it is checked against the clock on every use.
//!
//! Hot standbys: the invalidation is part of the commit's WAL record
//! (`wal_level` replica or logical), so when a standby replays that commit
//! its startup process queues the same message for the standby's backends,
//! and a key retired on the primary stops verifying on the standby from the
//! next transaction after the replay (tests/standby checks it). Loading the
//! ring only reads (`SELECT` through read-only SPI): it assigns no
//! transaction id and works during recovery.

use crate::error::{
    invalid_parameter, one, require_writable, spi, undefined_object, Code, Failure,
};
use crate::privileged::as_extension_owner;
use crate::registry::Registry;
use crate::token::{self, Alg, Key};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

/// What set_context needs from the catalog, cached per backend.
pub struct Ring {
    pub keys: Vec<Key>,
    pub registry: Option<Registry>,
    /// Distinct for every load, so caches built on a ring know when it changed.
    pub generation: u64,
}

thread_local! {
    static RING: RefCell<Option<Rc<Ring>>> = const { RefCell::new(None) };
    /// Relations whose invalidation drops the cache: the key ring and the
    /// registry settings (set when the ring is loaded).
    static WATCHED: RefCell<Vec<pg_sys::Oid>> = const { RefCell::new(Vec::new()) };
    static GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Registers the invalidation callback. Called once from `_PG_init`.
pub fn init() {
    // SAFETY: registering a callback with a 'static function pointer.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_inval), pg_sys::Datum::from(0))
    };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_inval(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    // Relcache invalidations are frequent (every VACUUM, ANALYZE or DDL
    // anywhere sends some); only ours, or a full reset (relid 0), matter.
    // Must not run SQL here.
    let ours = relid == pg_sys::Oid::INVALID || WATCHED.with(|w| w.borrow().contains(&relid));
    if ours {
        RING.with(|r| r.borrow_mut().take());
    }
}

/// The cached ring, loaded on first use after an invalidation.
pub fn ring() -> Rc<Ring> {
    if let Some(r) = RING.with(|r| r.borrow().clone()) {
        return r;
    }
    let mut watched = crate::privileged::pinned(|| {
        crate::error::one::<Vec<pg_sys::Oid>>(
            "SELECT ARRAY['tenant_guard.keys'::pg_catalog.regclass::pg_catalog.oid, \
                          'tenant_guard.registry'::pg_catalog.regclass::pg_catalog.oid]",
            &[],
        )
    })
    .unwrap_or_else(|| crate::error::internal("tenant_guard's own tables are missing"));
    let keys = as_extension_owner(load_keys);
    let registry = crate::registry::load();
    // The registry table itself is watched too: renaming it, moving it to
    // another schema, changing its owner or its columns rebuilds the cached
    // look-up (which names the table and runs as its owner).
    if let Some(reg) = &registry {
        watched.push(reg.relid);
    }
    let loaded = Rc::new(Ring {
        keys,
        registry,
        generation: GENERATION.with(|g| {
            g.set(g.get() + 1);
            g.get()
        }),
    });
    WATCHED.with(|w| *w.borrow_mut() = watched);
    RING.with(|r| *r.borrow_mut() = Some(loaded.clone()));
    loaded
}

/// The active keys (inside [`as_extension_owner`]). A row whose algorithm
/// this library cannot read (possible only by editing the table by hand)
/// is skipped with a WARNING: it verifies nothing, rather than whatever a
/// fallback algorithm would make of it.
fn load_keys() -> Vec<Key> {
    let rows: Vec<(String, String, Vec<u8>, Option<f64>)> = Spi::connect(|c| {
        let rows = spi(c.select(
            "SELECT k.kid, k.algorithm, k.secret, \
                    pg_catalog.date_part('epoch'::pg_catalog.text, k.expires_at) \
               FROM tenant_guard.keys k WHERE k.retired_at IS NULL ORDER BY k.kid",
            None,
            &[],
        ));
        rows.map(|row| {
            (
                crate::error::present(row.get::<String>(1), "tenant_guard.keys.kid"),
                crate::error::present(row.get::<String>(2), "tenant_guard.keys.algorithm"),
                crate::error::present(row.get::<Vec<u8>>(3), "tenant_guard.keys.secret"),
                spi(row.get::<f64>(4)),
            )
        })
        .collect()
    });
    rows.into_iter()
        .filter_map(|(kid, alg, secret, expires_at)| match Alg::parse(&alg) {
            Some(alg) => Some(Key {
                kid,
                alg,
                secret,
                expires_at,
            }),
            None => {
                warning!(
                    "tenant_guard: key \"{}\" has an unknown algorithm \"{}\" and verifies nothing",
                    token::clip(&kid),
                    token::clip(&alg)
                );
                None
            }
        })
        .collect()
}

/// Seconds since the Unix epoch, from the system clock.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[pg_schema]
mod tenant_guard_internal {
    use pgrx::prelude::*;

    /// Statement trigger on `tenant_guard.keys` and `tenant_guard.registry`:
    /// tells every backend to drop its cached ring.
    #[pg_trigger]
    fn config_changed<'a>(
        trigger: &'a pgrx::PgTrigger<'a>,
    ) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::PgTriggerError> {
        let relid = trigger.relid()?;
        // SAFETY: queues a transactional invalidation message for relid.
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
        Ok(None)
    }
}

/// Adds a signing/verification key to the ring.
///
/// The secret must be at least as long as the hash output (RFC 7518 §3.2):
/// 32 bytes for HS256, 48 for HS384, 64 for HS512. Several keys may be active
/// at once; tokens choose one with their `kid` header.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn add_key(
    kid: &str,
    secret: &[u8],
    algorithm: default!(&str, "'HS256'"),
    expires_at: default!(Option<pgrx::datum::TimestampWithTimeZone>, "NULL"),
) {
    require_writable(c"tenant_guard.add_key()");
    if kid.is_empty() {
        invalid_parameter("kid must not be empty").raise();
    }
    let alg = Alg::parse(algorithm).unwrap_or_else(|| {
        invalid_parameter(format!("unsupported algorithm \"{algorithm}\""))
            .hint("Use HS256, HS384 or HS512.")
            .raise()
    });
    if let Err(why) = token::check_secret(alg, secret) {
        invalid_parameter("secret is too short")
            .detail(why)
            .hint("Generate one with gen_random_bytes(64) from pgcrypto, or any CSPRNG.")
            .raise();
    }
    as_extension_owner(|| {
        let exists = one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM tenant_guard.keys k \
                             WHERE k.kid OPERATOR(pg_catalog.=) $1::pg_catalog.text)",
            &[kid.into()],
        )
        .unwrap_or(false);
        if exists {
            Failure::new(
                Code::ERRCODE_DUPLICATE_OBJECT,
                format!("key \"{kid}\" already exists"),
            )
            .hint("A kid is never reused; add the new key under a new kid.")
            .raise();
        }
        let past = one::<bool>(
            "SELECT $1::pg_catalog.timestamptz OPERATOR(pg_catalog.<=) pg_catalog.now()",
            &[expires_at.into()],
        )
        .unwrap_or(false);
        if past {
            invalid_parameter("expires_at is in the past").raise();
        }
        spi(Spi::run_with_args(
            "INSERT INTO tenant_guard.keys (kid, algorithm, secret, expires_at) \
             VALUES ($1::pg_catalog.text, $2::pg_catalog.text, $3::pg_catalog.bytea, $4::pg_catalog.timestamptz)",
            &[kid.into(), alg.as_str().into(), secret.into(), expires_at.into()],
        ));
    });
}

/// Retires a key: from the next transaction on, in every session, tokens
/// signed with it verify nothing. Retiring a retired key does nothing.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn retire_key(kid: &str) {
    require_writable(c"tenant_guard.retire_key()");
    as_extension_owner(|| {
        let state = one::<bool>(
            "SELECT k.retired_at IS NOT NULL FROM tenant_guard.keys k \
              WHERE k.kid OPERATOR(pg_catalog.=) $1::pg_catalog.text",
            &[kid.into()],
        );
        match state {
            None => undefined_object(format!("key \"{kid}\" does not exist")).raise(),
            Some(true) => notice!("key \"{kid}\" is already retired"),
            Some(false) => spi(Spi::run_with_args(
                "UPDATE tenant_guard.keys SET retired_at = pg_catalog.now() \
                  WHERE kid OPERATOR(pg_catalog.=) $1::pg_catalog.text",
                &[kid.into()],
            )),
        }
    });
}

/// Mints a token over `claims` with the key `kid` (or the only active key).
///
/// For tests, psql sessions and SQL-side jobs. Not executable by PUBLIC:
/// whoever can call it can become any tenant.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn sign(claims: pgrx::JsonB, kid: default!(Option<&str>, "NULL")) -> String {
    let serde_json::Value::Object(map) = claims.0 else {
        invalid_parameter("claims must be a JSON object").raise()
    };
    let ring = ring();
    let t = now();
    let mut active = ring
        .keys
        .iter()
        .filter(|k| k.expires_at.is_none_or(|e| t < e));
    let key = match kid {
        Some(kid) => active.find(|k| k.kid == kid).unwrap_or_else(|| {
            undefined_object(format!("no active key has kid \"{kid}\"")).raise()
        }),
        None => match (active.next(), active.next()) {
            (Some(k), None) => k,
            (None, _) => undefined_object("no signing key is active")
                .hint("Add one with tenant_guard.add_key.")
                .raise(),
            (Some(_), Some(_)) => invalid_parameter("several keys are active")
                .hint("Name one: tenant_guard.sign(claims, kid => '...').")
                .raise(),
        },
    };
    token::sign(&map, key)
}
