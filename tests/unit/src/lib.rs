//! The extension's pure modules, compiled as they are (`#[path]`) without
//! pgrx, so that their `#[test]`s run with a plain `cargo test` and no
//! PostgreSQL: the extension's own test binary cannot be linked or loaded
//! outside a server (it references PostgreSQL's symbols, such as
//! `CurrentMemoryContext`, which only the server provides), so there its
//! unit tests run inside `cargo pgrx test` only.
//!
//! The modules here must not use pgrx: `token` (verification), `quote`
//! (quoting), `policy` (row-level security rendering) and `integrity`
//! (composite keys, NOT NULL steps, backfill batches), `metrics` (the
//! counters of `tenant_guard.stats`, the rejection log's rate limit),
//! `as_tenant` (who may act as a tenant without a token), `tenant_counts`
//! (the per-tenant counters of `tenant_guard.tenant_stats`, eviction). A
//! module that starts using pgrx fails to compile here, which is the point.
#![allow(dead_code)]

#[path = "../../../src/quote.rs"]
pub mod quote;

#[path = "../../../src/policy.rs"]
pub mod policy;

#[path = "../../../src/integrity.rs"]
pub mod integrity;

#[path = "../../../src/token.rs"]
pub mod token;

#[path = "../../../src/metrics.rs"]
pub mod metrics;

#[path = "../../../src/as_tenant.rs"]
pub mod as_tenant;

#[path = "../../../src/tenant_counts.rs"]
pub mod tenant_counts;
