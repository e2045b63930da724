//! The key ring: storage, management functions and the per-backend cache.
//!
//! Keys live in `tenant_guard.keys`, which no application role can read
//! (HMAC secrets, and public keys imported with `add_jwks` from an identity
//! provider's key set, each bound to its issuer in `tenant_guard.issuers`;
//! revoked tokens, subjects and tenants in `tenant_guard.revocations`)
//! (`REVOKE ALL ... FROM PUBLIC`). Every read and write goes through
//! [`as_extension_owner`] (restricted, `search_path` pinned, every object
//! and operator qualified), so granting `EXECUTE` on `add_key` to a
//! key-admin role is enough to let it manage keys without ever `SELECT`ing
//! secrets, and nothing that role (or anyone) put in `pg_temp` or a schema
//! of its own is reached while the owner's rights are in force.
//!
//! Cache: a backend loads the active keys, the issuers' rules, the
//! revocations and the registry settings once and keeps them until a change
//! is announced. Any change to these tables,
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
use crate::token::{self, Alg, Issuer, Key, KeyKind, Revocations};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// What set_context needs from the catalog, cached per backend.
pub struct Ring {
    pub keys: Vec<Key>,
    pub registry: Option<Registry>,
    /// Unpruned revocations (`revoke_token`, `revoke_subject`,
    /// `revoke_tenant`), checked on every use of a token, cached or not,
    /// and on session contexts at every statement.
    pub revoked: Revocations,
    /// Distinct for every load, so caches built on a ring know when it changed.
    pub generation: u64,
    /// The registry's active tenants, as a bypass context reads them, kept
    /// with the ring where the registry is watched (`Registry::watched`:
    /// every change to its ids or active flags drops the ring). Filled on
    /// first use by `context`, from a snapshot taken after the ring was
    /// loaded.
    pub bypass: RefCell<Option<Rc<Vec<String>>>>,
}

thread_local! {
    static RING: RefCell<Option<Rc<Ring>>> = const { RefCell::new(None) };
    /// Relations whose invalidation drops the cache: the key ring and the
    /// registry settings (set when the ring is loaded).
    static WATCHED: RefCell<Vec<pg_sys::Oid>> = const { RefCell::new(Vec::new()) };
    static GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// The syscache hash of the registry table's schema: renaming it,
    /// or changing its privileges, drops the cache too (the look-up names
    /// the table by schema and name, and runs with its owner's rights).
    static WATCHED_SCHEMA: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
    /// While a ring loads: the relations (`0`: all) and schemas (syscache
    /// hashes, `0`: all) invalidated meanwhile. Such an invalidation finds
    /// no ring to drop; without this record it would be lost, and the ring
    /// stored with what it read before (a renamed registry's old name, a
    /// retired key).
    static DURING_LOAD: RefCell<Option<(Vec<pg_sys::Oid>, Vec<u32>)>> = const { RefCell::new(None) };
}

/// At most this many invalidations are recorded during a load; more count
/// as "everything changed".
const DURING_LOAD_MAX: usize = 64;

fn record_during_load(relid: Option<pg_sys::Oid>, schema: Option<u32>) {
    DURING_LOAD.with(|d| {
        if let Some((rels, schemas)) = d.borrow_mut().as_mut() {
            if rels.len() + schemas.len() >= DURING_LOAD_MAX {
                rels.clear();
                rels.push(pg_sys::Oid::INVALID);
                return;
            }
            rels.extend(relid);
            schemas.extend(schema);
        }
    });
}

/// Registers the invalidation callback. Called once from `_PG_init`.
pub fn init() {
    // SAFETY: registering a callback with a 'static function pointer.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_inval), pg_sys::Datum::from(0));
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::NAMESPACEOID as i32,
            Some(on_schema_inval),
            pg_sys::Datum::from(0),
        );
    };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_schema_inval(_arg: pg_sys::Datum, _cacheid: i32, hash: u32) {
    // Hash 0: every entry (a cache reset). Must not run SQL here.
    if hash == 0 || WATCHED_SCHEMA.get() == Some(hash) {
        RING.with(|r| r.borrow_mut().take());
    }
    record_during_load(None, Some(hash));
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
    record_during_load(Some(relid), None);
}

/// The generation of the ring loaded now, without loading one (`None`: an
/// invalidation dropped it since).
pub fn current_generation() -> Option<u64> {
    RING.with(|r| r.borrow().as_ref().map(|r| r.generation))
}

/// The cached ring, loaded on first use after an invalidation.
pub fn ring() -> Rc<Ring> {
    if let Some(r) = RING.with(|r| r.borrow().clone()) {
        return r;
    }
    // A load reads several catalogs; an invalidation of what it read may
    // arrive meanwhile (taking a catalog lock reads them). Then it loads
    // again; still changing after three loads, the last one serves this
    // call only and is not kept.
    let mut last = None;
    // The tables are read with a snapshot taken now, not the statement's
    // or (REPEATABLE READ) the transaction's: a ring read through an older
    // snapshot would be kept after the transaction with keys retired and
    // revocations made since. Where the reads cannot use it (the
    // transaction has written, so pgrx reads with the transaction's
    // snapshot, which REPEATABLE READ keeps; or parallel mode, where no new
    // snapshot may be taken), the ring serves this call only.
    let keepable = fresh_reads();
    for _ in 0..3 {
        DURING_LOAD.with(|d| *d.borrow_mut() = Some((Vec::new(), Vec::new())));
        // SAFETY: pushed and popped around the load (an error pops it with
        // the transaction's or subtransaction's abort).
        let pushed = unsafe {
            let fresh = !pg_sys::IsInParallelMode();
            if fresh {
                pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot());
            }
            fresh
        };
        let (ring, watched, schema) = load();
        if pushed {
            // SAFETY: pops the snapshot pushed above.
            unsafe { pg_sys::PopActiveSnapshot() };
        }
        let (rels, schemas) = DURING_LOAD
            .with(|d| d.borrow_mut().take())
            .unwrap_or_default();
        let stale = rels
            .iter()
            .any(|r| *r == pg_sys::Oid::INVALID || watched.contains(r))
            || schema.is_some_and(|h| schemas.iter().any(|s| *s == 0 || *s == h));
        let loaded = Rc::new(ring);
        if !keepable {
            return loaded;
        }
        if !stale {
            WATCHED.with(|w| *w.borrow_mut() = watched);
            WATCHED_SCHEMA.set(schema);
            RING.with(|r| *r.borrow_mut() = Some(loaded.clone()));
            return loaded;
        }
        last = Some(loaded);
    }
    last.unwrap_or_else(|| crate::error::internal("the key ring did not load"))
}

/// Whether reads run now can see every change committed so far, so what they
/// read may be kept beyond this transaction: a new snapshot can be taken
/// (not in parallel mode) and pgrx reads through it (a transaction that has
/// written reads with its own snapshot, which REPEATABLE READ keeps).
pub fn fresh_reads() -> bool {
    // SAFETY: reads of the backend's transaction state.
    unsafe {
        !pg_sys::IsInParallelMode()
            && (pg_sys::XactIsoLevel < pg_sys::XACT_REPEATABLE_READ as i32
                || pg_sys::GetCurrentTransactionIdIfAny() == pg_sys::InvalidTransactionId)
    }
}

/// Reads the key ring, the revocations and the registry settings; with them
/// the relations and the schema (a syscache hash) whose invalidation makes
/// them stale.
fn load() -> (Ring, Vec<pg_sys::Oid>, Option<u32>) {
    let mut watched = crate::privileged::pinned(|| {
        crate::error::one::<Vec<pg_sys::Oid>>(
            "SELECT pg_catalog.array_remove(ARRAY[\
                        'tenant_guard.keys'::pg_catalog.regclass::pg_catalog.oid, \
                        'tenant_guard.registry'::pg_catalog.regclass::pg_catalog.oid, \
                        pg_catalog.to_regclass('tenant_guard.issuers')::pg_catalog.oid, \
                        pg_catalog.to_regclass('tenant_guard.revocations')::pg_catalog.oid], NULL)",
            &[],
        )
    })
    .unwrap_or_else(|| crate::error::internal("tenant_guard's own tables are missing"));
    // Before `ALTER EXTENSION tenant_guard UPDATE` (this library with a
    // 0.1.0 schema) there are no issuers and revocations tables, and the key
    // ring has HMAC keys only.
    let updated = watched.len() == 4;
    let (keys, revoked) = as_extension_owner(|| {
        if updated {
            (load_keys(), load_revocations())
        } else {
            (load_keys_010(), Revocations::default())
        }
    });
    let registry = crate::registry::load();
    // The registry table itself is watched too: renaming it, moving it to
    // another schema, changing its owner or its columns rebuilds the cached
    // look-up (which names the table and runs as its owner).
    if let Some(reg) = &registry {
        watched.push(reg.relid);
    }
    // So is its schema (renaming it would leave the look-up naming another
    // table; its privileges decide whether the look-up may run).
    let schema = registry
        .as_ref()
        .filter(|r| r.namespace != pg_sys::Oid::INVALID)
        // SAFETY: computes a hash from the key (the syscache is set up
        // inside a transaction, as here).
        .map(|r| unsafe {
            pg_sys::GetSysCacheHashValue(
                pg_sys::SysCacheIdentifier::NAMESPACEOID as i32,
                pg_sys::Datum::from(r.namespace),
                pg_sys::Datum::from(0),
                pg_sys::Datum::from(0),
                pg_sys::Datum::from(0),
            )
        });
    let ring = Ring {
        keys,
        registry,
        revoked,
        bypass: RefCell::new(None),
        generation: GENERATION.with(|g| {
            g.set(g.get() + 1);
            g.get()
        }),
    };
    (ring, watched, schema)
}

/// The active keys (inside [`as_extension_owner`]), each with its issuer's
/// rules. A row whose algorithm this library cannot read (possible only by
/// editing the table by hand) is skipped with a WARNING: it verifies
/// nothing, rather than whatever a fallback algorithm would make of it. A
/// key whose issuer has no row in `tenant_guard.issuers` still verifies only
/// tokens of that issuer.
fn load_keys() -> Vec<Key> {
    type Row = (
        String,
        String,
        Vec<u8>,
        Option<f64>,
        Option<String>,
        [Option<String>; 5],
        Option<i32>,
    );
    let rows: Vec<Row> = Spi::connect(|c| {
        let rows = spi(c.select(
            "SELECT k.kid, k.algorithm, COALESCE(k.secret, k.public_key), \
                    pg_catalog.date_part('epoch'::pg_catalog.text, k.expires_at), \
                    k.issuer, i.audience, i.tenant_claim, i.tenants_claim, i.user_claim, \
                    i.org_column::pg_catalog.text, i.leeway \
               FROM tenant_guard.keys k \
               LEFT JOIN tenant_guard.issuers i ON i.issuer OPERATOR(pg_catalog.=) k.issuer \
              WHERE k.retired_at IS NULL ORDER BY k.kid",
            None,
            &[],
        ));
        rows.map(|row| {
            (
                crate::error::present(row.get::<String>(1), "tenant_guard.keys.kid"),
                crate::error::present(row.get::<String>(2), "tenant_guard.keys.algorithm"),
                crate::error::present(row.get::<Vec<u8>>(3), "tenant_guard.keys key material"),
                spi(row.get::<f64>(4)),
                spi(row.get::<String>(5)),
                [
                    spi(row.get::<String>(6)),
                    spi(row.get::<String>(7)),
                    spi(row.get::<String>(8)),
                    spi(row.get::<String>(9)),
                    spi(row.get::<String>(10)),
                ],
                spi(row.get::<i32>(11)),
            )
        })
        .collect()
    });
    let mut issuers: HashMap<String, Arc<Issuer>> = HashMap::new();
    rows.into_iter()
        .filter_map(
            |(kid, alg, secret, expires_at, issuer, [aud, tc, tsc, uc, org], leeway)| {
                let Some(alg) = Alg::parse(&alg) else {
                    warning!(
                        "tenant_guard: key \"{}\" has an unknown algorithm \"{}\" and verifies nothing",
                        token::clip(&kid),
                        token::clip(&alg)
                    );
                    return None;
                };
                let issuer = issuer.map(|name| {
                    issuers
                        .entry(name.clone())
                        .or_insert_with(|| {
                            Arc::new(Issuer {
                                name,
                                audience: aud,
                                leeway: leeway.map(f64::from),
                                tenant_claim: tc,
                                tenants_claim: tsc,
                                user_claim: uc,
                                org_column: org,
                            })
                        })
                        .clone()
                });
                Some(Key {
                    kid,
                    alg,
                    secret,
                    expires_at,
                    issuer,
                })
            },
        )
        .collect()
}

/// The active keys of a 0.1.0 key ring (HMAC only, no issuer), until the
/// extension is updated.
fn load_keys_010() -> Vec<Key> {
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
        .filter_map(|(kid, alg, secret, expires_at)| {
            let alg = Alg::parse(&alg).filter(|a| a.kind() == KeyKind::Hmac)?;
            Some(Key {
                kid,
                alg,
                secret,
                expires_at,
                issuer: None,
            })
        })
        .collect()
}

/// The revocations not yet pruned (inside [`as_extension_owner`]).
fn load_revocations() -> Revocations {
    let mut r = Revocations::default();
    Spi::connect(|c| {
        let rows = spi(c.select(
            "SELECT v.kind, v.value, \
                    pg_catalog.date_part('epoch'::pg_catalog.text, v.issued_before) \
               FROM tenant_guard.revocations v \
              WHERE v.expires_at IS NULL \
                 OR v.expires_at OPERATOR(pg_catalog.>) pg_catalog.now()",
            None,
            &[],
        ));
        for row in rows {
            let kind = crate::error::present(row.get::<String>(1), "revocations.kind");
            let value = crate::error::present(row.get::<String>(2), "revocations.value");
            // A subject or tenant row always has issued_before (CHECK);
            // read as "every token" should it not.
            let before = spi(row.get::<f64>(3)).unwrap_or(f64::INFINITY);
            match kind.as_str() {
                "token" => {
                    r.tokens.insert(value);
                }
                "subject" => {
                    r.subjects.insert(value, before);
                }
                _ => {
                    r.tenants.insert(value, before);
                }
            }
        }
    });
    r
}

/// Seconds since the Unix epoch, from the system clock.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `tenant_guard_internal.config_changed() RETURNS trigger` (declared in
/// `sql/finalize.sql`; the symbol is the one 0.1.0's generated SQL names).
/// Statement trigger on tenant_guard's own tables (keys, registry
/// settings, issuers, revocations), and row trigger on the registry table
/// (`registry::watch_sql`): queues a relation-cache invalidation of the
/// table it fires on, sent to every backend at commit, which drops their
/// cached key ring. Called other than as a trigger: 39P01.
///
/// With arguments (the registry's id and active columns), an UPDATE whose
/// row keeps the same values in those columns queues nothing: the trigger
/// fires on every UPDATE, whatever its SET list names, and compares the
/// row as stored (after any BEFORE trigger changed it) with the old one,
/// so another column's update (a `last_seen_at`) does not make every
/// session read the registry again. A column not found counts as changed.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn config_changed_wrapper(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL passes a valid fcinfo; a trigger call carries a
    // TriggerData node in `context`, checked before use, whose tg_relation
    // is the open relation.
    unsafe {
        let td = crate::triggers::trigger_data(fcinfo, "config_changed");
        if !watched_columns_unchanged(td) {
            pg_sys::CacheInvalidateRelcacheByRelid((*(*td).tg_relation).rd_id);
        }
        // An AFTER trigger's result is ignored: no tuple (a NULL pointer,
        // not an SQL NULL, which the trigger manager refuses).
        pg_sys::Datum::from(0)
    }
}

/// Whether `td` is a row UPDATE of a trigger with arguments, each naming a
/// column whose new value is the old one (same bytes; both NULL).
///
/// # Safety
/// `td` is the TriggerData of a call in progress.
unsafe fn watched_columns_unchanged(td: *mut pg_sys::TriggerData) -> bool {
    // SAFETY: per the caller: the trigger, relation and tuples of the
    // event, read while it runs; the arguments are C strings.
    unsafe {
        let event = (*td).tg_event;
        let trigger = (*td).tg_trigger;
        if (event & pg_sys::TRIGGER_EVENT_OPMASK) != pg_sys::TRIGGER_EVENT_UPDATE
            || (event & pg_sys::TRIGGER_EVENT_ROW) == 0
            || trigger.is_null()
            || (*trigger).tgnargs <= 0
            || (*trigger).tgargs.is_null()
            || (*td).tg_trigtuple.is_null()
            || (*td).tg_newtuple.is_null()
        {
            return false;
        }
        let desc = (*(*td).tg_relation).rd_att;
        let args = std::slice::from_raw_parts((*trigger).tgargs, (*trigger).tgnargs as usize);
        args.iter().all(|&column| {
            let attnum = pg_sys::SPI_fnumber(desc, column);
            if attnum <= 0 {
                return false;
            }
            crate::triggers::column_unchanged(desc, (*td).tg_trigtuple, (*td).tg_newtuple, attnum).1
        })
    }
}

#[no_mangle]
pub extern "C" fn pg_finfo_config_changed_wrapper() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
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
    let alg = Alg::parse(algorithm)
        .filter(|a| a.kind() == KeyKind::Hmac)
        .unwrap_or_else(|| {
            let f = invalid_parameter(format!("unsupported algorithm \"{algorithm}\""));
            match Alg::parse(algorithm) {
                Some(_) => f
                    .detail("add_key takes shared secrets; public keys come in a key set")
                    .hint("Import public keys with tenant_guard.add_jwks(jwks, issuer)."),
                None => f.hint("Use HS256, HS384 or HS512 (public keys: tenant_guard.add_jwks)."),
            }
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
    // Only shared secrets sign: a public key cannot, and an identity
    // provider's keys are for its tokens.
    let mut active = ring
        .keys
        .iter()
        .filter(|k| k.expires_at.is_none_or(|e| t < e) && k.alg.kind() == KeyKind::Hmac);
    let key = match kid {
        Some(kid) => active.find(|k| k.kid == kid).unwrap_or_else(|| {
            undefined_object(format!("no active key has kid \"{kid}\""))
                .hint("sign() mints with shared secrets (HS256, HS384, HS512) only.")
                .raise()
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

/// Imports an identity provider's key set (RFC 7517) for `issuer`.
///
/// Public keys only: a key with a private member (`d`, `p`, `q`, `dp`, `dq`,
/// `qi`, `oth`, `k`), a symmetric key, an RSA modulus outside 2048..8192
/// bits, an unsupported curve or a point off its curve refuses the whole
/// set. Each key verifies exactly one algorithm (its `alg`, else the one its
/// curve implies, else `default_algorithm` for RSA) and only tokens whose
/// `iss` is `issuer`. Keys for other uses (`use` not `sig`) are skipped.
///
/// Importing the set again rotates: new kids are added, kids still there
/// are kept, and the issuer's kids missing from the set expire after
/// `grace` (tokens they signed keep working until then). A kid is never
/// reused: one that exists with other key material, for another issuer,
/// from `add_key`, or retired, is refused.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn add_jwks(
    jwks: pgrx::JsonB,
    issuer: &str,
    grace: default!(pgrx::datum::Interval, "'1 day'"),
    default_algorithm: default!(&str, "'RS256'"),
) -> TableIterator<
    'static,
    (
        name!(kid, String),
        name!(algorithm, Option<String>),
        name!(action, String),
    ),
> {
    require_writable(c"tenant_guard.add_jwks()");
    if issuer.is_empty() || issuer.chars().any(char::is_control) {
        invalid_parameter("issuer must be a non-empty string without control characters")
            .hint("Use the exact iss of the provider's tokens, e.g. https://example.us.auth0.com/")
            .raise();
    }
    let default_rsa = Alg::parse(default_algorithm)
        .filter(|a| a.kind() == KeyKind::Rsa)
        .unwrap_or_else(|| {
            invalid_parameter(format!(
                "default_algorithm \"{}\" is not an RSA algorithm",
                token::clip(default_algorithm)
            ))
            .hint("Use RS256, RS384, RS512, PS256, PS384 or PS512.")
            .raise()
        });
    let outcomes = token::parse_jwks(&jwks.0, default_rsa).unwrap_or_else(|why| {
        invalid_parameter("the key set cannot be imported")
            .detail(why)
            .hint("Nothing was imported. Pass the provider's public JWKS document as it is served.")
            .raise()
    });
    let keys: Vec<&token::PublicKey> = outcomes
        .iter()
        .filter_map(|o| match o {
            token::JwkOutcome::Key(k) => Some(k),
            token::JwkOutcome::Skipped(..) => None,
        })
        .collect();
    if keys.is_empty() {
        invalid_parameter("the key set has no signature key")
            .detail("importing it would retire every key of the issuer")
            .hint("Retire keys one by one with tenant_guard.retire_key.")
            .raise();
    }
    let mut out: Vec<(String, Option<String>, String)> = Vec::new();
    as_extension_owner(|| {
        let negative = one::<bool>(
            "SELECT $1::pg_catalog.interval OPERATOR(pg_catalog.<) '0'::pg_catalog.interval",
            &[grace.into()],
        )
        .unwrap_or(false);
        if negative {
            invalid_parameter("grace must not be negative").raise();
        }
        spi(Spi::run_with_args(
            "INSERT INTO tenant_guard.issuers (issuer) VALUES ($1::pg_catalog.text) \
             ON CONFLICT (issuer) DO NOTHING",
            &[issuer.into()],
        ));
        for k in &keys {
            // (issuer, source, same material, retired) of an existing kid.
            let existing = Spi::connect(|c| {
                let mut rows = spi(c.select(
                    "SELECT k.issuer, k.source, \
                            k.public_key IS NOT DISTINCT FROM $2::pg_catalog.bytea \
                            AND k.algorithm OPERATOR(pg_catalog.=) $3::pg_catalog.text, \
                            k.retired_at IS NOT NULL \
                       FROM tenant_guard.keys k WHERE k.kid OPERATOR(pg_catalog.=) $1::pg_catalog.text",
                    None,
                    &[
                        k.kid.as_str().into(),
                        k.material.as_slice().into(),
                        k.alg.as_str().into(),
                    ],
                ));
                rows.next().map(|r| {
                    (
                        spi(r.get::<String>(1)),
                        spi(r.get::<String>(2)).unwrap_or_default(),
                        spi(r.get::<bool>(3)).unwrap_or(false),
                        spi(r.get::<bool>(4)).unwrap_or(false),
                    )
                })
            });
            let kid = token::clip(&k.kid);
            match existing {
                None => {
                    spi(Spi::run_with_args(
                        "INSERT INTO tenant_guard.keys (kid, algorithm, public_key, issuer, source) \
                         VALUES ($1::pg_catalog.text, $2::pg_catalog.text, $3::pg_catalog.bytea, \
                                 $4::pg_catalog.text, 'add_jwks')",
                        &[
                            k.kid.as_str().into(),
                            k.alg.as_str().into(),
                            k.material.as_slice().into(),
                            issuer.into(),
                        ],
                    ));
                    out.push((k.kid.clone(), Some(k.alg.as_str().into()), "added".into()));
                }
                Some((Some(iss), src, true, false)) if iss == issuer && src == "add_jwks" => {
                    // Still published: kept, and a pending expiry from an
                    // earlier rotation is lifted.
                    spi(Spi::run_with_args(
                        "UPDATE tenant_guard.keys SET expires_at = NULL \
                          WHERE kid OPERATOR(pg_catalog.=) $1::pg_catalog.text",
                        &[k.kid.as_str().into()],
                    ));
                    out.push((k.kid.clone(), Some(k.alg.as_str().into()), "kept".into()));
                }
                Some((_, _, _, true)) => Failure::new(
                    Code::ERRCODE_DUPLICATE_OBJECT,
                    format!("key \"{kid}\" was retired"),
                )
                .detail("a kid is never reused; nothing was imported")
                .raise(),
                Some(_) => Failure::new(
                    Code::ERRCODE_DUPLICATE_OBJECT,
                    format!("key \"{kid}\" already exists with other key material, algorithm, issuer or source"),
                )
                .detail("a kid is never reused; nothing was imported")
                .raise(),
            }
        }
        // The issuer's imported keys that the set no longer lists.
        let kids: Vec<String> = keys.iter().map(|k| k.kid.clone()).collect();
        let retiring: Vec<(String, String)> = Spi::connect_mut(|c| {
            let rows = spi(c.update(
                "UPDATE tenant_guard.keys k \
                    SET expires_at = (pg_catalog.now() OPERATOR(pg_catalog.+) $3::pg_catalog.interval) \
                  WHERE k.issuer OPERATOR(pg_catalog.=) $1::pg_catalog.text \
                    AND k.source OPERATOR(pg_catalog.=) 'add_jwks'::pg_catalog.text \
                    AND k.retired_at IS NULL \
                    AND NOT (k.kid OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[])) \
                    AND (k.expires_at IS NULL OR k.expires_at OPERATOR(pg_catalog.>) \
                         (pg_catalog.now() OPERATOR(pg_catalog.+) $3::pg_catalog.interval)) \
                 RETURNING k.kid, k.algorithm",
                None,
                &[issuer.into(), kids.into(), grace.into()],
            ));
            rows.map(|r| {
                (
                    crate::error::present(r.get::<String>(1), "kid"),
                    crate::error::present(r.get::<String>(2), "algorithm"),
                )
            })
            .collect()
        });
        for (kid, alg) in retiring {
            out.push((kid, Some(alg), "retiring".into()));
        }
    });
    for o in &outcomes {
        if let token::JwkOutcome::Skipped(kid, why) = o {
            out.push((kid.clone(), None, format!("skipped: {why}")));
        }
    }
    TableIterator::new(out)
}

/// Sets the rules for tokens of `issuer` (verified by keys imported for it
/// with `add_jwks`). A NULL rule falls back to the deployment's setting
/// (`tenant_guard.audience`, `tenant_guard.leeway`, `tenant_guard.tenant_claim`,
/// `tenant_guard.tenants_claim`; `sub` for the user).
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn set_issuer(
    issuer: &str,
    audience: default!(Option<&str>, "NULL"),
    leeway: default!(Option<i32>, "NULL"),
    tenant_claim: default!(Option<&str>, "NULL"),
    tenants_claim: default!(Option<&str>, "NULL"),
    user_claim: default!(Option<&str>, "NULL"),
    org_column: default!(Option<&str>, "NULL"),
) {
    require_writable(c"tenant_guard.set_issuer()");
    if issuer.is_empty() || issuer.chars().any(char::is_control) {
        invalid_parameter("issuer must be a non-empty string without control characters").raise();
    }
    if leeway.is_some_and(|l| l < 0) {
        invalid_parameter("leeway must not be negative").raise();
    }
    if org_column.is_some_and(|c| c.is_empty() || c.len() > 63) {
        invalid_parameter("org_column must be a column name of the tenant registry").raise();
    }
    for (name, v) in [
        ("audience", audience),
        ("tenant_claim", tenant_claim),
        ("tenants_claim", tenants_claim),
        ("user_claim", user_claim),
    ] {
        if v.is_some_and(|p| p.is_empty() || p.split('.').any(str::is_empty) && !p.contains('/')) {
            invalid_parameter(format!("{name} must not be empty nor have an empty path segment"))
                .hint("A claim path is a member name or names joined by dots, e.g. o.id or https://example.com/tenant_id.")
                .raise();
        }
    }
    as_extension_owner(|| {
        spi(Spi::run_with_args(
            "INSERT INTO tenant_guard.issuers AS i \
                    (issuer, audience, leeway, tenant_claim, tenants_claim, user_claim, org_column) \
             VALUES ($1::pg_catalog.text, $2::pg_catalog.text, $3::pg_catalog.int4, \
                     $4::pg_catalog.text, $5::pg_catalog.text, $6::pg_catalog.text, \
                     $7::pg_catalog.name) \
             ON CONFLICT (issuer) DO UPDATE SET audience = EXCLUDED.audience, \
                    leeway = EXCLUDED.leeway, tenant_claim = EXCLUDED.tenant_claim, \
                    tenants_claim = EXCLUDED.tenants_claim, user_claim = EXCLUDED.user_claim, \
                    org_column = EXCLUDED.org_column, updated_at = pg_catalog.now()",
            &[
                issuer.into(),
                audience.into(),
                leeway.into(),
                tenant_claim.into(),
                tenants_claim.into(),
                user_claim.into(),
                org_column.into(),
            ],
        ));
    });
}

/// Seconds after which a token issued at some moment has expired for sure
/// (`tenant_guard.max_token_lifetime` plus the leeway), if bounded.
fn longest_token_life() -> Option<i32> {
    let max = crate::gucs::MAX_TOKEN_LIFETIME.get();
    (max > 0).then(|| max.saturating_add(crate::gucs::LEEWAY.get()))
}

/// Records a revocation and prunes the expired ones (inside the owner scope).
fn revoke(
    kind: &str,
    value: &str,
    issued_before: Option<pgrx::datum::TimestampWithTimeZone>,
    expires_at: Option<pgrx::datum::TimestampWithTimeZone>,
) {
    if value.is_empty() {
        invalid_parameter(format!("the {kind} to revoke must not be empty")).raise();
    }
    let life = longest_token_life();
    as_extension_owner(|| {
        prune();
        // Kept until every token it names has expired anyway: the given
        // expires_at, else (issued_before or now) + the longest token life,
        // else for ever.
        spi(Spi::run_with_args(
            "INSERT INTO tenant_guard.revocations AS r (kind, value, issued_before, expires_at) \
             VALUES ($1::pg_catalog.text, $2::pg_catalog.text, $3::pg_catalog.timestamptz, \
                     COALESCE($4::pg_catalog.timestamptz, \
                        (COALESCE($3::pg_catalog.timestamptz, pg_catalog.now()) \
                         OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $5::pg_catalog.int4)))) \
             ON CONFLICT (kind, value) DO UPDATE SET \
                issued_before = GREATEST(r.issued_before, EXCLUDED.issued_before), \
                expires_at = CASE WHEN r.expires_at IS NULL OR EXCLUDED.expires_at IS NULL THEN NULL \
                                  ELSE GREATEST(r.expires_at, EXCLUDED.expires_at) END",
            &[
                kind.into(),
                value.into(),
                issued_before.into(),
                expires_at.into(),
                life.into(),
            ],
        ));
    });
}

fn prune() -> i64 {
    Spi::connect_mut(|c| {
        let rows = spi(c.update(
            "DELETE FROM tenant_guard.revocations r \
              WHERE r.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()",
            None,
            &[],
        ));
        i64::try_from(rows.len()).unwrap_or(i64::MAX)
    })
}

/// Revokes the token with this `jti`, in every session from its next
/// statement. `expires_at`: when the token expires (after which the entry
/// is pruned); by default now + `tenant_guard.max_token_lifetime` + leeway,
/// or never pruned when no lifetime limit is set.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn revoke_token(
    jti: &str,
    expires_at: default!(Option<pgrx::datum::TimestampWithTimeZone>, "NULL"),
) {
    require_writable(c"tenant_guard.revoke_token()");
    revoke("token", jti, None, expires_at);
}

/// Revokes every token of subject `sub` (the `sub` claim) issued before
/// `issued_before` ("log out everywhere", membership removed). Tokens
/// without `iat` count as issued before.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn revoke_subject(
    sub: &str,
    issued_before: default!(pgrx::datum::TimestampWithTimeZone, "now()"),
    expires_at: default!(Option<pgrx::datum::TimestampWithTimeZone>, "NULL"),
) {
    require_writable(c"tenant_guard.revoke_subject()");
    revoke("subject", sub, Some(issued_before), expires_at);
}

/// Revokes every token that names `tenant` (its tenant or read set) issued
/// before `issued_before`.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn revoke_tenant(
    tenant: &str,
    issued_before: default!(pgrx::datum::TimestampWithTimeZone, "now()"),
    expires_at: default!(Option<pgrx::datum::TimestampWithTimeZone>, "NULL"),
) {
    require_writable(c"tenant_guard.revoke_tenant()");
    revoke("tenant", tenant, Some(issued_before), expires_at);
}

/// Deletes the revocations whose tokens have all expired; returns how many.
#[pg_extern(volatile, parallel_unsafe, schema = "tenant_guard")]
fn prune_revocations() -> i64 {
    require_writable(c"tenant_guard.prune_revocations()");
    as_extension_owner(prune)
}
