//! (a) `token::verify` on arbitrary bytes with a fixed key ring (HS256, HS384,
//! HS512 and an expired key). Must never panic; anything accepted must be
//! authentic (independently recomputed HMAC) and satisfy the rules
//! (`assert_semantics`); no rejection may leak a secret, a MAC or the
//! signature segment.
#![no_main]
#![allow(clippy::needless_update)]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tenant_guard_fuzz::token::{self, Rules};
use tenant_guard_fuzz::{assert_authentic, assert_no_leak, assert_semantics, ring, trace, Key, NOW};

/// Two configurations: the whole ring with the default rules (a kid is needed),
/// and a single active key with every optional rule on (the no-kid path, iss,
/// aud, lifetime, a custom tenant claim, a smaller size limit).
fn configs() -> &'static [(Vec<Key>, Rules)] {
    static C: OnceLock<Vec<(Vec<Key>, Rules)>> = OnceLock::new();
    C.get_or_init(|| {
        let strict = Rules {
            tenant_claim: "org".into(),
            leeway: 0.0,
            require_exp: false,
            issuer: Some("https://issuer.example".into()),
            audience: Some("api".into()),
            max_lifetime: Some(3600.0),
            max_bytes: 1024,
            tenants_claim: "orgs".into(),
            max_bypass_lifetime: 60.0,
            // Fields added to Rules later keep their defaults.
            ..Rules::default()
        };
        vec![
            (ring().to_vec(), Rules::default()),
            (vec![ring()[0].clone(), ring()[3].clone()], strict),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    for (keys, rules) in configs() {
        let outcome = token::verify(data, keys, rules, NOW);
        trace(data, &outcome);
        match outcome {
            Ok(v) => {
                assert_authentic(data, keys, rules, &v);
                assert_semantics(&v, rules);
            }
            Err(e) => assert_no_leak(data, keys, &e),
        }
    }
});
