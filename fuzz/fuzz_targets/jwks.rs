//! (d) `token::parse_jwks_bytes` (the JWK set parser behind `add_jwks`) on
//! arbitrary bytes. Must never panic; a key set it accepts must hold only
//! public keys (checked on an independent parse: no private member in any
//! key object), each key of a supported kind with material of the right
//! shape, an algorithm that fits it, an RSA modulus of 2048 to 8192 bits, and
//! distinct kids.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::collections::HashSet;
use tenant_guard_fuzz::token::{self, Alg, JwkOutcome, KeyKind};

fuzz_target!(|data: &[u8]| {
    for default in [Alg::Rs256, Alg::Ps512] {
        let Ok(outcomes) = token::parse_jwks_bytes(data, default) else {
            continue;
        };
        let doc: Value = serde_json::from_slice(data).expect("accepted text that is not JSON");
        let objects = doc["keys"].as_array().expect("accepted without a keys array");
        assert_eq!(objects.len(), outcomes.len(), "a key was dropped silently");
        let mut kids = HashSet::new();
        for (obj, o) in objects.iter().zip(&outcomes) {
            let obj = obj.as_object().expect("accepted a key that is not an object");
            for m in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                assert!(!obj.contains_key(m), "accepted a key with private member {m}");
            }
            let kid = match o {
                JwkOutcome::Key(k) => {
                    match k.alg.kind() {
                        KeyKind::Rsa => {
                            assert_eq!(obj["kty"], "RSA");
                            assert!((2048..=8192).contains(&k.bits), "RSA key of {} bits", k.bits);
                            assert_eq!(k.material[0], 0x30, "RSA key not a DER sequence");
                        }
                        KeyKind::Ec => {
                            assert_eq!(obj["kty"], "EC");
                            let len = if k.alg == Alg::Es256 { 65 } else { 97 };
                            assert_eq!(k.material.len(), len, "EC point of the wrong size");
                            assert_eq!(k.material[0], 4, "EC point not uncompressed");
                            let crv = if k.alg == Alg::Es256 { "P-256" } else { "P-384" };
                            assert_eq!(obj["crv"], crv, "ES key on the wrong curve");
                        }
                        KeyKind::Okp => {
                            assert_eq!((&obj["kty"], &obj["crv"]), (&Value::from("OKP"), &Value::from("Ed25519")));
                            assert_eq!(k.material.len(), 32);
                        }
                        KeyKind::Hmac => panic!("accepted a shared-secret key from a key set"),
                    }
                    if let Some(a) = obj.get("alg") {
                        assert_eq!(a, k.alg.as_str(), "registered for another alg than the JWK's");
                    } else if k.alg.kind() == KeyKind::Rsa {
                        assert_eq!(k.alg, default);
                    }
                    assert_eq!(obj["kid"], k.kid.as_str());
                    k.kid.clone()
                }
                JwkOutcome::Skipped(kid, _) => kid.clone(),
            };
            assert!(kids.insert(kid), "accepted a repeated kid");
        }
    }
});
