//! Unit tests of the token verifier (`token.rs`), kept apart so the module
//! itself stays readable. Fixed clock: `NOW`.

use super::*;
use serde_json::json;

const NOW: f64 = 1_900_000_000.0;

fn key(kid: &str, alg: Alg) -> Key {
    Key {
        kid: kid.into(),
        alg,
        secret: vec![7u8; alg.min_key_len()],
        expires_at: None,
        issuer: None,
    }
}

fn claims(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn mint(v: Value, k: &Key) -> String {
    sign(&claims(v), k)
}

fn ok(v: Value) -> String {
    let mut m = claims(v);
    m.entry("exp").or_insert(json!(NOW + 60.0));
    sign(&m, &key("k1", Alg::Hs256))
}

fn check(token: &str) -> Result<Verified, Rejection> {
    verify(
        token.as_bytes(),
        &[key("k1", Alg::Hs256)],
        &Rules::default(),
        NOW,
    )
}

/// Builds a token with an arbitrary header, signed with `k`.
fn with_header(header: &str, payload: &str, k: &Key) -> String {
    let h = URL_SAFE_NO_PAD.encode(header);
    let p = URL_SAFE_NO_PAD.encode(payload);
    let input = format!("{h}.{p}");
    let s = URL_SAFE_NO_PAD.encode(k.alg.mac(&k.secret, input.as_bytes()));
    format!("{input}.{s}")
}

#[test]
fn rfc7515_appendix_a1_hs256_verifies() {
    // RFC 7515 Appendix A.1: the example JWS and its symmetric key.
    let jwk_k =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    let secret = URL_SAFE_NO_PAD.decode(jwk_k).unwrap();
    let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
        .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
        .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let k = Key {
        kid: "a1".into(),
        alg: Alg::Hs256,
        secret,
        expires_at: None,
        issuer: None,
    };
    // Set the clock aside: evaluate at a moment when exp (1300819380) holds.
    let rules = Rules {
        tenant_claim: "iss".into(),
        ..Rules::default()
    };
    let v = verify(
        token.as_bytes(),
        std::slice::from_ref(&k),
        &rules,
        1_300_819_000.0,
    )
    .unwrap();
    assert_eq!(v.tenant.as_deref(), Some("joe"));
    assert_eq!(v.claims["http://example.com/is_root"], json!(true));
    // ... and at today's clock it has long expired.
    let e = verify(token.as_bytes(), std::slice::from_ref(&k), &rules, NOW).unwrap_err();
    assert!(matches!(e, Rejection::Expired { .. }));
    // One flipped signature character is a bad signature...
    let bad = token.replace("dBjftJeZ", "dBjftJeY");
    assert_eq!(
        verify(
            bad.as_bytes(),
            std::slice::from_ref(&k),
            &rules,
            1_300_819_000.0
        )
        .unwrap_err(),
        Rejection::BadSignature
    );
    // ... and a last character with stray low bits is not even base64url.
    let stray = token.replace("EjXk", "EjXl");
    assert!(matches!(
        verify(stray.as_bytes(), &[k], &rules, 1_300_819_000.0).unwrap_err(),
        Rejection::Malformed(_)
    ));
}

#[test]
fn accepts_string_and_integer_tenants() {
    let v = check(&ok(json!({"tenant_id": "acme", "sub": "u1"}))).unwrap();
    assert_eq!(v.tenant.as_deref(), Some("acme"));
    assert_eq!(v.user.as_deref(), Some("u1"));
    assert_eq!(v.kid, "k1");
    let v = check(&ok(json!({"tenant_id": 42, "sub": 7}))).unwrap();
    assert_eq!(v.tenant.as_deref(), Some("42"));
    assert_eq!(v.user.as_deref(), Some("7"));
}

#[test]
fn tenant_claim_name_is_configurable() {
    let rules = Rules {
        tenant_claim: "org".into(),
        ..Rules::default()
    };
    let t = ok(json!({"org": "o-1"}));
    let v = verify(t.as_bytes(), &[key("k1", Alg::Hs256)], &rules, NOW).unwrap();
    assert_eq!(v.tenant.as_deref(), Some("o-1"));
}

#[test]
fn tenant_claim_of_wrong_type_is_refused() {
    for bad in [
        json!(""),
        json!("a\u{1f}b"),
        json!("line\nbreak"),
        json!(1.5),
        json!(true),
        json!(["a"]),
        json!({"a": 1}),
        json!(null),
    ] {
        let e = check(&ok(json!({"tenant_id": bad}))).unwrap_err();
        assert!(matches!(e, Rejection::BadClaim { .. }), "{bad}: {e:?}");
    }
    // Missing: refused (only a bypass token may omit it).
    assert_eq!(
        check(&ok(json!({"sub": "x"}))).unwrap_err(),
        Rejection::MissingTenant {
            claim: "tenant_id".into()
        }
    );
}

#[test]
fn size_is_checked_before_decoding() {
    let big = "x".repeat(8193);
    assert_eq!(
        check(&big).unwrap_err(),
        Rejection::TooLarge {
            len: 8193,
            max: 8192
        }
    );
    let rules = Rules {
        max_bytes: 10,
        ..Rules::default()
    };
    let t = ok(json!({"tenant_id": "a"}));
    let e = verify(t.as_bytes(), &[key("k1", Alg::Hs256)], &rules, NOW).unwrap_err();
    assert!(matches!(e, Rejection::TooLarge { .. }));
}

#[test]
fn garbage_is_malformed() {
    for g in [
        "",
        "a.b",
        "a.b.c.d",
        "..",
        "a..",
        "...",
        "abc",
        "a.b.c",
        "e30.e30.",
        "!!.e30.AA",
    ] {
        let e = check(g).unwrap_err();
        assert!(matches!(e, Rejection::Malformed(_)), "{g:?}: {e:?}");
    }
    let e = verify(
        &[0xff, b'.', 0xfe, b'.', 0x80],
        &[key("k1", Alg::Hs256)],
        &Rules::default(),
        NOW,
    )
    .unwrap_err();
    assert!(matches!(e, Rejection::Malformed(_)));
}

#[test]
fn padded_or_noncanonical_base64_is_refused() {
    let t = ok(json!({"tenant_id": "a"}));
    let padded = format!("{t}=");
    assert!(matches!(
        check(&padded).unwrap_err(),
        Rejection::Malformed(_)
    ));
    let std_alphabet = t.replace('-', "+").replace('_', "/");
    if std_alphabet != t {
        assert!(check(&std_alphabet).is_err());
    }
}

#[test]
fn header_must_be_an_object_with_a_supported_alg() {
    let k = key("k1", Alg::Hs256);
    let p = format!("{{\"tenant_id\":\"a\",\"exp\":{}}}", NOW + 60.0);
    let cases = [
        ("[1,2]", "not a JSON object"),
        ("\"HS256\"", "not a JSON object"),
        ("{}", "no \"alg\""),
        ("{\"alg\":256}", "not a string"),
        ("{\"alg\":\"HS256\",\"kid\":5}", "\"kid\" is not a string"),
    ];
    for (h, want) in cases {
        match check(&with_header(h, &p, &k)).unwrap_err() {
            Rejection::Malformed(why) => assert!(why.contains(want), "{h}: {why}"),
            other => panic!("{h}: {other:?}"),
        }
    }
}

#[test]
fn alg_none_and_foreign_algorithms_are_refused() {
    let k = key("k1", Alg::Hs256);
    let p = format!("{{\"tenant_id\":\"a\",\"exp\":{}}}", NOW + 60.0);
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode("{\"alg\":\"none\"}"),
        URL_SAFE_NO_PAD.encode(&p)
    );
    // Unsigned (empty signature, as JWT libraries emit it) ...
    assert_eq!(check(&none).unwrap_err(), Rejection::AlgNone);
    // ... an HS256 header with an empty signature is simply a bad signature.
    let empty_sig = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode("{\"alg\":\"HS256\"}"),
        URL_SAFE_NO_PAD.encode(&p)
    );
    assert_eq!(check(&empty_sig).unwrap_err(), Rejection::BadSignature);
    let none_sig = format!("{none}AA");
    assert_eq!(check(&none_sig).unwrap_err(), Rejection::AlgNone);
    assert_eq!(
        check(&with_header("{\"alg\":\"nOnE\"}", &p, &k)).unwrap_err(),
        Rejection::AlgNone
    );
    for alg in ["hs256", "HS1", "ES512", "RS1", "Ed25519", "ES256K"] {
        let e = check(&with_header(&format!("{{\"alg\":\"{alg}\"}}"), &p, &k)).unwrap_err();
        assert_eq!(e, Rejection::UnsupportedAlg(alg.into()));
    }
    // Public-key algorithms exist, but never for an HMAC key.
    for alg in ["RS256", "ES256", "PS256", "EdDSA"] {
        let e = check(&with_header(&format!("{{\"alg\":\"{alg}\"}}"), &p, &k)).unwrap_err();
        assert!(
            matches!(
                e,
                Rejection::AlgMismatch {
                    key: Alg::Hs256,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[test]
fn crit_is_refused() {
    let k = key("k1", Alg::Hs256);
    let p = format!("{{\"tenant_id\":\"a\",\"exp\":{}}}", NOW + 60.0);
    let t = with_header(
        "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}",
        &p,
        &k,
    );
    assert_eq!(check(&t).unwrap_err(), Rejection::Crit);
}

#[test]
fn algorithm_must_match_the_key() {
    // Same secret registered as HS512, token claims HS256: refused even
    // though the MAC would verify under the token's choice.
    let mut k = key("k1", Alg::Hs512);
    let t = {
        let mut k256 = k.clone();
        k256.alg = Alg::Hs256;
        mint(json!({"tenant_id": "a", "exp": NOW + 60.0}), &k256)
    };
    let e = verify(
        t.as_bytes(),
        std::slice::from_ref(&k),
        &Rules::default(),
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Rejection::AlgMismatch {
                key: Alg::Hs512,
                ..
            }
        ),
        "{e:?}"
    );
    k.alg = Alg::Hs256;
    assert!(verify(t.as_bytes(), &[k], &Rules::default(), NOW).is_ok());
}

#[test]
fn each_algorithm_round_trips() {
    for alg in [Alg::Hs256, Alg::Hs384, Alg::Hs512] {
        let k = key("k", alg);
        let t = mint(json!({"tenant_id": "a", "exp": NOW + 1.0}), &k);
        assert!(
            verify(t.as_bytes(), &[k], &Rules::default(), NOW).is_ok(),
            "{alg:?}"
        );
    }
}

#[test]
fn tampering_breaks_the_signature() {
    let t = ok(json!({"tenant_id": "a"}));
    let parts: Vec<&str> = t.split('.').collect();
    let other = URL_SAFE_NO_PAD.encode(format!("{{\"tenant_id\":\"b\",\"exp\":{}}}", NOW + 60.0));
    let forged = format!("{}.{}.{}", parts[0], other, parts[2]);
    assert_eq!(check(&forged).unwrap_err(), Rejection::BadSignature);
    // A truncated signature is a bad signature, not a crash.
    let short = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..10]);
    assert!(check(&short).is_err());
    // Signed with another secret.
    let mut k = key("k1", Alg::Hs256);
    k.secret = vec![8u8; 32];
    let t2 = mint(json!({"tenant_id": "a", "exp": NOW + 60.0}), &k);
    assert_eq!(check(&t2).unwrap_err(), Rejection::BadSignature);
}

#[test]
fn key_selection_by_kid() {
    let k1 = key("k1", Alg::Hs256);
    let mut k2 = key("k2", Alg::Hs384);
    k2.secret = vec![9u8; 48];
    let ring = [k1.clone(), k2.clone()];
    let t2 = mint(json!({"tenant_id": "a", "exp": NOW + 60.0}), &k2);
    assert_eq!(
        verify(t2.as_bytes(), &ring, &Rules::default(), NOW)
            .unwrap()
            .kid,
        "k2"
    );
    let mut k3 = k2.clone();
    k3.kid = "k3".into();
    let t3 = mint(json!({"tenant_id": "a", "exp": NOW + 60.0}), &k3);
    assert_eq!(
        verify(t3.as_bytes(), &ring, &Rules::default(), NOW).unwrap_err(),
        Rejection::UnknownKey("k3".into())
    );
}

#[test]
fn missing_kid_needs_exactly_one_active_key() {
    let k1 = key("k1", Alg::Hs256);
    let p = format!("{{\"tenant_id\":\"a\",\"exp\":{}}}", NOW + 60.0);
    let t = with_header("{\"alg\":\"HS256\"}", &p, &k1);
    assert!(verify(
        t.as_bytes(),
        std::slice::from_ref(&k1),
        &Rules::default(),
        NOW
    )
    .is_ok());
    let k2 = key("k2", Alg::Hs256);
    assert_eq!(
        verify(
            t.as_bytes(),
            &[k1.clone(), k2.clone()],
            &Rules::default(),
            NOW
        )
        .unwrap_err(),
        Rejection::AmbiguousKey { active: 2 }
    );
    let mut expired = k2;
    expired.expires_at = Some(NOW - 1.0);
    assert!(verify(t.as_bytes(), &[k1, expired], &Rules::default(), NOW).is_ok());
    assert_eq!(
        verify(t.as_bytes(), &[], &Rules::default(), NOW).unwrap_err(),
        Rejection::NoKeys
    );
}

#[test]
fn expired_key_verifies_nothing() {
    let mut k = key("k1", Alg::Hs256);
    let t = mint(json!({"tenant_id": "a", "exp": NOW + 60.0}), &k);
    k.expires_at = Some(NOW);
    assert_eq!(
        verify(
            t.as_bytes(),
            std::slice::from_ref(&k),
            &Rules::default(),
            NOW
        )
        .unwrap_err(),
        Rejection::UnknownKey("k1".into())
    );
    k.expires_at = Some(NOW + 0.5);
    assert!(verify(t.as_bytes(), &[k], &Rules::default(), NOW).is_ok());
}

#[test]
fn exp_edges_with_leeway() {
    let k = key("k1", Alg::Hs256);
    let at = |exp: f64| {
        let t = mint(json!({"tenant_id": "a", "exp": exp}), &k);
        verify(
            t.as_bytes(),
            std::slice::from_ref(&k),
            &Rules::default(),
            NOW,
        )
    };
    assert!(at(NOW).is_ok());
    assert!(at(NOW - 30.0).is_ok(), "exactly at the leeway edge");
    assert!(matches!(
        at(NOW - 30.5).unwrap_err(),
        Rejection::Expired { .. }
    ));
    assert!(matches!(
        at(NOW - 3600.0).unwrap_err(),
        Rejection::Expired { .. }
    ));
    let strict = Rules {
        leeway: 0.0,
        ..Rules::default()
    };
    let t = mint(json!({"tenant_id": "a", "exp": NOW - 1.0}), &k);
    assert!(verify(t.as_bytes(), std::slice::from_ref(&k), &strict, NOW).is_err());
}

/// A cache hit re-checks the times read once at verification
/// (`check_times_at`): the same verdict as reading them from the claims.
#[test]
fn times_read_once_judge_like_the_claims() {
    let lifetime = Rules {
        max_lifetime: Some(600.0),
        ..Rules::default()
    };
    let no_exp = Rules {
        require_exp: false,
        ..Rules::default()
    };
    let cases = [
        json!({"exp": NOW + 60.0}),
        json!({"exp": NOW - 31.0}),
        json!({"exp": NOW + 60.0, "nbf": NOW + 31.0}),
        json!({"exp": NOW + 60.0, "iat": NOW + 31.0}),
        json!({"exp": NOW + 6000.0, "iat": NOW}),
        json!({"exp": NOW + 60.0, "iat": NOW - 10.0, "nbf": NOW - 10.0}),
        json!({}),
        json!({"iat": NOW}),
    ];
    for c in cases {
        let m = claims(c.clone());
        let t = Times::of(&m).expect("numeric times");
        for (name, r) in [
            ("default", &Rules::default()),
            ("lifetime", &lifetime),
            ("no_exp", &no_exp),
        ] {
            for now in [NOW, NOW + 100.0, NOW - 100.0] {
                assert_eq!(
                    format!("{:?}", check_times_at(&t, r, now)),
                    format!("{:?}", check_times(&m, r, now)),
                    "{c} under {name} at {now}"
                );
            }
        }
    }
    // A time that is not a number is refused when read.
    assert!(matches!(
        Times::of(&claims(json!({"exp": "later"}))).unwrap_err(),
        Rejection::BadClaim { .. }
    ));
}

#[test]
fn nbf_and_iat_edges() {
    let k = key("k1", Alg::Hs256);
    let at = |extra: Value| {
        let mut m = claims(json!({"tenant_id": "a", "exp": NOW + 600.0}));
        m.extend(claims(extra));
        let t = sign(&m, &k);
        verify(
            t.as_bytes(),
            std::slice::from_ref(&k),
            &Rules::default(),
            NOW,
        )
    };
    assert!(at(json!({"nbf": NOW + 30.0})).is_ok());
    assert!(matches!(
        at(json!({"nbf": NOW + 31.0})).unwrap_err(),
        Rejection::NotYetValid { .. }
    ));
    assert!(at(json!({"iat": NOW + 30.0})).is_ok());
    assert!(matches!(
        at(json!({"iat": NOW + 31.0})).unwrap_err(),
        Rejection::IssuedInFuture { .. }
    ));
    for bad in [
        json!({"nbf": "soon"}),
        json!({"iat": null}),
        json!({"iat": [1]}),
    ] {
        assert!(matches!(at(bad).unwrap_err(), Rejection::BadClaim { .. }));
    }
}

#[test]
fn exp_required_unless_configured_off() {
    let k = key("k1", Alg::Hs256);
    let t = mint(json!({"tenant_id": "a"}), &k);
    assert_eq!(check(&t).unwrap_err(), Rejection::MissingExp);
    let lax = Rules {
        require_exp: false,
        ..Rules::default()
    };
    assert!(verify(t.as_bytes(), std::slice::from_ref(&k), &lax, NOW).is_ok());
    let t = mint(json!({"tenant_id": "a", "exp": "tomorrow"}), &k);
    assert!(matches!(check(&t).unwrap_err(), Rejection::BadClaim { .. }));
}

#[test]
fn max_lifetime() {
    let k = key("k1", Alg::Hs256);
    let rules = Rules {
        max_lifetime: Some(3600.0),
        ..Rules::default()
    };
    let v = |c: Value| {
        verify(
            mint(c, &k).as_bytes(),
            std::slice::from_ref(&k),
            &rules,
            NOW,
        )
    };
    assert!(v(json!({"tenant_id": "a", "iat": NOW, "exp": NOW + 3600.0})).is_ok());
    assert!(matches!(
        v(json!({"tenant_id": "a", "iat": NOW, "exp": NOW + 3601.0})).unwrap_err(),
        Rejection::LifetimeTooLong { .. }
    ));
    // Without iat the remaining lifetime counts.
    assert!(v(json!({"tenant_id": "a", "exp": NOW + 100.0})).is_ok());
    assert!(v(json!({"tenant_id": "a", "exp": NOW + 7200.0})).is_err());
    // A lifetime limit needs exp even when require_exp is off.
    let lax = Rules {
        require_exp: false,
        ..rules.clone()
    };
    let t = mint(json!({"tenant_id": "a"}), &k);
    assert_eq!(
        verify(t.as_bytes(), std::slice::from_ref(&k), &lax, NOW).unwrap_err(),
        Rejection::MissingExp
    );
}

#[test]
fn issuer_and_audience() {
    let k = key("k1", Alg::Hs256);
    let rules = Rules {
        issuer: Some("https://auth.example".into()),
        audience: Some("api".into()),
        ..Rules::default()
    };
    let v = |c: Value| {
        let mut m = claims(json!({"tenant_id": "a", "exp": NOW + 60.0}));
        m.extend(claims(c));
        verify(
            sign(&m, &k).as_bytes(),
            std::slice::from_ref(&k),
            &rules,
            NOW,
        )
    };
    assert!(v(json!({"iss": "https://auth.example", "aud": "api"})).is_ok());
    assert!(v(json!({"iss": "https://auth.example", "aud": ["web", "api"]})).is_ok());
    assert_eq!(
        v(json!({"aud": "api"})).unwrap_err(),
        Rejection::WrongIssuer { got: None }
    );
    assert!(matches!(
        v(json!({"iss": "https://evil", "aud": "api"})).unwrap_err(),
        Rejection::WrongIssuer { .. }
    ));
    assert_eq!(
        v(json!({"iss": "https://auth.example", "aud": ["web"]})).unwrap_err(),
        Rejection::WrongAudience { issuer: None }
    );
    assert_eq!(
        v(json!({"iss": "https://auth.example"})).unwrap_err(),
        Rejection::WrongAudience { issuer: None }
    );
    assert!(matches!(
        v(json!({"iss": "https://auth.example", "aud": ["api", 3]})).unwrap_err(),
        Rejection::BadClaim { .. }
    ));
    assert!(matches!(
        v(json!({"iss": 1, "aud": "api"})).unwrap_err(),
        Rejection::BadClaim { .. }
    ));
}

#[test]
fn duplicate_members_and_nul_are_refused() {
    let k = key("k1", Alg::Hs256);
    let exp = NOW + 60.0;
    let dup = format!("{{\"tenant_id\":\"a\",\"tenant_id\":\"b\",\"exp\":{exp}}}");
    match check(&with_header("{\"alg\":\"HS256\",\"kid\":\"k1\"}", &dup, &k)).unwrap_err() {
        Rejection::Malformed(why) => {
            assert!(why.contains("duplicate member \"tenant_id\""), "{why}")
        }
        e => panic!("{e:?}"),
    }
    let dup_header = format!("{{\"tenant_id\":\"a\",\"exp\":{exp}}}");
    let t = with_header("{\"alg\":\"HS256\",\"alg\":\"none\"}", &dup_header, &k);
    assert!(matches!(check(&t).unwrap_err(), Rejection::Malformed(_)));
    let nested = format!("{{\"tenant_id\":\"a\",\"exp\":{exp},\"x\":{{\"y\":1,\"y\":2}}}}");
    assert!(check(&with_header("{\"alg\":\"HS256\"}", &nested, &k)).is_err());
    let nul = format!("{{\"tenant_id\":\"a\\u0000b\",\"exp\":{exp}}}");
    match check(&with_header("{\"alg\":\"HS256\"}", &nul, &k)).unwrap_err() {
        Rejection::Malformed(why) => assert!(why.contains("NUL"), "{why}"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn payload_must_be_an_object() {
    let k = key("k1", Alg::Hs256);
    for p in ["[1]", "42", "\"x\"", "null", "{", "{\"a\":1} x"] {
        let e = check(&with_header("{\"alg\":\"HS256\"}", p, &k)).unwrap_err();
        assert!(matches!(e, Rejection::Malformed(_)), "{p}: {e:?}");
    }
}

#[test]
fn tenant_sets() {
    let v = check(&ok(json!({"tenant_id": "a"}))).unwrap();
    assert_eq!((v.tenants, v.bypass), (vec!["a".to_string()], false));
    let v = check(&ok(
        json!({"tenant_id": "b", "tenants": ["a", "b", 7, "a"]}),
    ))
    .unwrap();
    assert_eq!(v.tenants, vec!["a", "b", "7"]);
    assert_eq!(v.tenant.as_deref(), Some("b"));
    assert_eq!(
        check(&ok(json!({"tenant_id": "c", "tenants": ["a", "b"]}))).unwrap_err(),
        Rejection::TenantNotInSet {
            tenant: "c".into(),
            claim: "tenants".into()
        }
    );
    for bad in [
        json!("a"),
        json!([""]),
        json!([1.5]),
        json!([null]),
        json!({"a": 1}),
    ] {
        let e = check(&ok(json!({"tenant_id": "a", "tenants": bad}))).unwrap_err();
        assert!(matches!(e, Rejection::BadClaim { .. }), "{e:?}");
    }
    let rules = Rules {
        tenants_claim: "orgs".into(),
        ..Rules::default()
    };
    let t = ok(json!({"tenant_id": "a", "orgs": ["a", "z"]}));
    let v = verify(t.as_bytes(), &[key("k1", Alg::Hs256)], &rules, NOW).unwrap();
    assert_eq!(v.tenants, vec!["a", "z"]);
}

#[test]
fn bypass_tokens_are_short_lived() {
    let v = check(&ok(json!({"bypass": true, "iat": NOW, "exp": NOW + 600.0}))).unwrap();
    assert!(v.bypass);
    assert_eq!(v.tenant, None);
    assert!(v.tenants.is_empty());
    // With a write tenant.
    let v = check(&ok(
        json!({"bypass": true, "tenant_id": "a", "exp": NOW + 900.0}),
    ))
    .unwrap();
    assert_eq!(v.tenant.as_deref(), Some("a"));
    assert_eq!(
        check(&ok(json!({"bypass": true, "iat": NOW, "exp": NOW + 901.0}))).unwrap_err(),
        Rejection::BypassTooLong {
            lifetime: Some(901.0),
            max: 900.0
        }
    );
    // Even with require_exp off, a bypass token needs exp.
    let lax = Rules {
        require_exp: false,
        ..Rules::default()
    };
    let t = mint(json!({"bypass": true}), &key("k1", Alg::Hs256));
    assert_eq!(
        verify(t.as_bytes(), &[key("k1", Alg::Hs256)], &lax, NOW).unwrap_err(),
        Rejection::BypassTooLong {
            lifetime: None,
            max: 900.0
        }
    );
    // bypass: false is an ordinary token; other values are refused.
    assert!(
        !check(&ok(json!({"bypass": false, "tenant_id": "a"})))
            .unwrap()
            .bypass
    );
    assert!(matches!(
        check(&ok(json!({"bypass": "yes", "tenant_id": "a"}))).unwrap_err(),
        Rejection::BadClaim { .. }
    ));
}

#[test]
fn utc_formatting() {
    assert_eq!(utc(0.0), "1970-01-01 00:00:00 UTC");
    assert_eq!(utc(1_000_000_000.0), "2001-09-09 01:46:40 UTC");
    assert_eq!(utc(4_102_444_800.0), "2100-01-01 00:00:00 UTC");
    assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00 UTC");
    assert_eq!(utc(-1.0), "1969-12-31 23:59:59 UTC");
    assert_eq!(utc(1e20), "100000000000000000000");
    let e = Rejection::Expired {
        exp: 1_000_000_000.0,
        now: NOW,
        leeway: 30.0,
    };
    assert_eq!(
        e.detail(),
        "exp 2001-09-09 01:46:40 UTC has passed (leeway 30 s)"
    );
}

#[test]
fn secret_length_follows_rfc7518() {
    assert!(check_secret(Alg::Hs256, &[0; 31]).is_err());
    assert!(check_secret(Alg::Hs256, &[0; 32]).is_ok());
    assert!(check_secret(Alg::Hs384, &[0; 47]).is_err());
    assert!(check_secret(Alg::Hs384, &[0; 48]).is_ok());
    assert!(check_secret(Alg::Hs512, &[0; 63]).is_err());
    assert!(check_secret(Alg::Hs512, &[0; 64]).is_ok());
    assert_eq!(Alg::parse("HS384"), Some(Alg::Hs384));
    assert_eq!(Alg::parse("hs384"), None);
}

#[test]
fn details_never_contain_the_secret_or_signature() {
    let k = key("k1", Alg::Hs256);
    let t = mint(json!({"tenant_id": "a", "exp": NOW - 999.0}), &k);
    let sig = t.rsplit('.').next().unwrap();
    let e = check(&t).unwrap_err();
    assert!(!e.detail().contains(sig));
    assert!(!format!("{k:?}").contains("\u{7}"));
    let forged = Rejection::UnknownKey("k\nLOG:  forged line".into());
    assert!(!forged.detail().contains('\n'), "{}", forged.detail());
    let long = "x".repeat(500);
    let e = Rejection::UnknownKey(long);
    assert!(e.detail().len() < 120);
}

// ---------------------------------------------------------------------------
// Public keys (ring signs here; the verifier only ever verifies).

mod public {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{self as rs, KeyPair};

    const RSA_PK8: &[u8] = include_bytes!("../tests/fixtures/rsa2048.pk8");

    /// A private key that can sign for `alg`, and its public JWK.
    pub(super) enum Signer {
        Rsa(rs::RsaKeyPair),
        Ec(rs::EcdsaKeyPair),
        Ed(rs::Ed25519KeyPair),
    }

    pub(super) fn signer(alg: Alg) -> Signer {
        let rng = SystemRandom::new();
        match alg.kind() {
            KeyKind::Rsa => Signer::Rsa(rs::RsaKeyPair::from_pkcs8(RSA_PK8).unwrap()),
            KeyKind::Ec => {
                let a = if alg == Alg::Es256 {
                    &rs::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &rs::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let pk8 = rs::EcdsaKeyPair::generate_pkcs8(a, &rng).unwrap();
                Signer::Ec(rs::EcdsaKeyPair::from_pkcs8(a, pk8.as_ref(), &rng).unwrap())
            }
            KeyKind::Okp => {
                let pk8 = rs::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                Signer::Ed(rs::Ed25519KeyPair::from_pkcs8(pk8.as_ref()).unwrap())
            }
            KeyKind::Hmac => unreachable!(),
        }
    }

    impl Signer {
        pub(super) fn jwk(&self, kid: &str, alg: Option<Alg>) -> Map<String, Value> {
            let b = |x: &[u8]| URL_SAFE_NO_PAD.encode(x);
            let mut v = match self {
                Signer::Rsa(k) => {
                    let c: rs::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                    json!({"kty": "RSA", "n": b(strip_zeros(&c.n)), "e": b(strip_zeros(&c.e))})
                }
                Signer::Ec(k) => {
                    let pt = k.public_key().as_ref();
                    let size = (pt.len() - 1) / 2;
                    let crv = if size == 32 { "P-256" } else { "P-384" };
                    json!({"kty": "EC", "crv": crv, "x": b(&pt[1..1 + size]), "y": b(&pt[1 + size..])})
                }
                Signer::Ed(k) => {
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b(k.public_key().as_ref())})
                }
            };
            v["kid"] = json!(kid);
            if let Some(a) = alg {
                v["alg"] = json!(a.as_str());
            }
            claims(v)
        }

        pub(super) fn sign(&self, alg: Alg, input: &[u8]) -> Vec<u8> {
            let rng = SystemRandom::new();
            match self {
                Signer::Rsa(k) => {
                    let enc: &'static dyn rs::RsaEncoding = match alg {
                        Alg::Rs256 => &rs::RSA_PKCS1_SHA256,
                        Alg::Rs384 => &rs::RSA_PKCS1_SHA384,
                        Alg::Rs512 => &rs::RSA_PKCS1_SHA512,
                        Alg::Ps256 => &rs::RSA_PSS_SHA256,
                        Alg::Ps384 => &rs::RSA_PSS_SHA384,
                        _ => &rs::RSA_PSS_SHA512,
                    };
                    let mut sig = vec![0; k.public().modulus_len()];
                    k.sign(enc, &rng, input, &mut sig).unwrap();
                    sig
                }
                Signer::Ec(k) => k.sign(&rng, input).unwrap().as_ref().to_vec(),
                Signer::Ed(k) => k.sign(input).as_ref().to_vec(),
            }
        }
    }

    /// A token with `header` and `payload`, signed for `alg` by `s`.
    pub(super) fn token(s: &Signer, alg: Alg, header: &Value, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let sig = s.sign(alg, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    pub(super) fn ring_key(s: &Signer, kid: &str, alg: Alg, issuer: Option<Issuer>) -> Key {
        let JwkOutcome::Key(pk) = public_key_from_jwk(&s.jwk(kid, Some(alg)), Alg::Rs256).unwrap()
        else {
            panic!("skipped")
        };
        Key {
            kid: pk.kid,
            alg: pk.alg,
            secret: pk.material,
            expires_at: None,
            issuer: issuer.map(Arc::new),
        }
    }

    const PUBLIC: [Alg; 9] = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::EdDsa,
    ];

    fn good() -> Value {
        json!({"tenant_id": "acme", "sub": "u1", "exp": NOW + 60.0})
    }

    #[test]
    fn every_public_algorithm_round_trips() {
        for alg in PUBLIC {
            let s = signer(alg);
            let k = ring_key(&s, "pk", alg, None);
            assert_eq!(k.alg, alg);
            let t = token(&s, alg, &json!({"alg": alg.as_str(), "kid": "pk"}), &good());
            let v = verify(
                t.as_bytes(),
                std::slice::from_ref(&k),
                &Rules::default(),
                NOW,
            )
            .unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
            assert_eq!(v.tenant.as_deref(), Some("acme"));
            // One flipped bit of the payload breaks it.
            let mut bad = t.clone().into_bytes();
            let i = t.find('.').unwrap() + 3;
            bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
            assert_eq!(
                verify(&bad, std::slice::from_ref(&k), &Rules::default(), NOW).unwrap_err(),
                Rejection::BadSignature,
                "{alg:?}"
            );
        }
    }

    #[test]
    fn alg_confusion_hmac_with_the_public_key_is_refused() {
        // The classic attack: sign HS256 with the RSA public key's bytes (as
        // stored, and as the JWK's n) and name the RSA key.
        for alg in [Alg::Rs256, Alg::Es256, Alg::EdDsa] {
            let s = signer(alg);
            let k = ring_key(&s, "pk", alg, None);
            for secret in [
                k.secret.clone(),
                s.jwk("pk", None)
                    .get("x")
                    .or(s.jwk("pk", None).get("n"))
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .as_bytes()
                    .to_vec(),
            ] {
                let forger = Key {
                    kid: "pk".into(),
                    alg: Alg::Hs256,
                    secret,
                    expires_at: None,
                    issuer: None,
                };
                let t = mint(good(), &forger);
                let e = verify(
                    t.as_bytes(),
                    std::slice::from_ref(&k),
                    &Rules::default(),
                    NOW,
                )
                .unwrap_err();
                assert!(
                    matches!(e, Rejection::AlgMismatch { key, .. } if key == alg),
                    "{e:?}"
                );
            }
        }
    }

    #[test]
    fn key_type_confusion_is_refused() {
        // The same RSA key pair signs PS256 while registered for RS256 (and
        // the other way round): the registered algorithm only.
        let s = signer(Alg::Rs256);
        let rs256 = ring_key(&s, "rsa", Alg::Rs256, None);
        let ps = token(
            &s,
            Alg::Ps256,
            &json!({"alg": "PS256", "kid": "rsa"}),
            &good(),
        );
        let e = verify(
            ps.as_bytes(),
            std::slice::from_ref(&rs256),
            &Rules::default(),
            NOW,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                Rejection::AlgMismatch {
                    key: Alg::Rs256,
                    ..
                }
            ),
            "{e:?}"
        );
        // A PS256 signature under an RS256 header: the signature is wrong.
        let lie = token(
            &s,
            Alg::Ps256,
            &json!({"alg": "RS256", "kid": "rsa"}),
            &good(),
        );
        assert_eq!(
            verify(
                lie.as_bytes(),
                std::slice::from_ref(&rs256),
                &Rules::default(),
                NOW
            )
            .unwrap_err(),
            Rejection::BadSignature
        );
        // ES384 header for a P-256 key; an ES256 signature made by a P-384 key.
        let p256 = signer(Alg::Es256);
        let k256 = ring_key(&p256, "ec", Alg::Es256, None);
        let t = token(
            &p256,
            Alg::Es256,
            &json!({"alg": "ES384", "kid": "ec"}),
            &good(),
        );
        assert!(matches!(
            verify(
                t.as_bytes(),
                std::slice::from_ref(&k256),
                &Rules::default(),
                NOW
            )
            .unwrap_err(),
            Rejection::AlgMismatch {
                key: Alg::Es256,
                ..
            }
        ));
        let p384 = signer(Alg::Es384);
        let t = token(
            &p384,
            Alg::Es384,
            &json!({"alg": "ES256", "kid": "ec"}),
            &good(),
        );
        assert_eq!(
            verify(
                t.as_bytes(),
                std::slice::from_ref(&k256),
                &Rules::default(),
                NOW
            )
            .unwrap_err(),
            Rejection::BadSignature
        );
    }

    #[test]
    fn embedded_keys_in_the_header_are_never_used() {
        // The attacker signs with a key of its own and embeds it as jwk /
        // jku / x5c, naming the ring's kid or none.
        let victim = signer(Alg::EdDsa);
        let k = ring_key(&victim, "idp", Alg::EdDsa, None);
        let attacker = signer(Alg::EdDsa);
        let jwk = Value::Object(attacker.jwk("idp", Some(Alg::EdDsa)));
        for header in [
            json!({"alg": "EdDSA", "kid": "idp", "jwk": jwk}),
            json!({"alg": "EdDSA", "jwk": jwk}),
            json!({"alg": "EdDSA", "kid": "idp", "jku": "https://attacker.example/jwks"}),
            json!({"alg": "EdDSA", "kid": "idp", "x5c": ["MIIB"], "x5u": "https://attacker.example/c"}),
        ] {
            let t = token(&attacker, Alg::EdDsa, &header, &good());
            assert_eq!(
                verify(
                    t.as_bytes(),
                    std::slice::from_ref(&k),
                    &Rules::default(),
                    NOW
                )
                .unwrap_err(),
                Rejection::BadSignature
            );
        }
        let t = token(
            &attacker,
            Alg::EdDsa,
            &json!({"alg": "EdDSA", "kid": "attacker", "jwk": jwk}),
            &good(),
        );
        assert!(matches!(
            verify(
                t.as_bytes(),
                std::slice::from_ref(&k),
                &Rules::default(),
                NOW
            )
            .unwrap_err(),
            Rejection::UnknownKey(_)
        ));
    }

    #[test]
    fn non_canonical_signatures_are_refused() {
        // ES256: a DER-encoded signature instead of the fixed r || s.
        let ec = signer(Alg::Es256);
        let k = ring_key(&ec, "ec", Alg::Es256, None);
        let t = token(
            &ec,
            Alg::Es256,
            &json!({"alg": "ES256", "kid": "ec"}),
            &good(),
        );
        let (input, sig) = t.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let mut der = Vec::new();
        let mut body = Vec::new();
        der_uint(strip_zeros(&sig[..32]), &mut body);
        der_uint(strip_zeros(&sig[32..]), &mut body);
        der_tlv(0x30, &body, &mut der);
        let t2 = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&der));
        assert_eq!(
            verify(
                t2.as_bytes(),
                std::slice::from_ref(&k),
                &Rules::default(),
                NOW
            )
            .unwrap_err(),
            Rejection::BadSignature
        );
        // r or s zero, or a signature one byte short.
        for bad in [
            [&[0u8; 32][..], &sig[32..]].concat(),
            [&sig[..32], &[0u8; 32][..]].concat(),
            sig[..63].to_vec(),
        ] {
            let t3 = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bad));
            assert_eq!(
                verify(
                    t3.as_bytes(),
                    std::slice::from_ref(&k),
                    &Rules::default(),
                    NOW
                )
                .unwrap_err(),
                Rejection::BadSignature
            );
        }
        // Ed25519: S + L (the same signature, non-canonical) is refused.
        let ed = signer(Alg::EdDsa);
        let k = ring_key(&ed, "ed", Alg::EdDsa, None);
        let t = token(
            &ed,
            Alg::EdDsa,
            &json!({"alg": "EdDSA", "kid": "ed"}),
            &good(),
        );
        assert!(verify(
            t.as_bytes(),
            std::slice::from_ref(&k),
            &Rules::default(),
            NOW
        )
        .is_ok());
        let (input, sig) = t.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        // L = 2^252 + 27742317777372353535851937790883648493, little endian.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
            sig[32 + i] = v as u8;
            carry = v >> 8;
        }
        let t2 = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
        assert_eq!(
            verify(
                t2.as_bytes(),
                std::slice::from_ref(&k),
                &Rules::default(),
                NOW
            )
            .unwrap_err(),
            Rejection::BadSignature
        );
    }

    #[test]
    fn jwk_import_rules() {
        let rsa = signer(Alg::Rs256);
        let ok = |j: &Map<String, Value>| public_key_from_jwk(j, Alg::Rs256);
        // RSA without alg: the default; with alg: that one.
        let JwkOutcome::Key(k) = ok(&rsa.jwk("r", None)).unwrap() else {
            panic!()
        };
        assert_eq!((k.alg, k.bits), (Alg::Rs256, 2048));
        let JwkOutcome::Key(k) = public_key_from_jwk(&rsa.jwk("r", None), Alg::Ps512).unwrap()
        else {
            panic!()
        };
        assert_eq!(k.alg, Alg::Ps512);
        // Private members: refused, whichever.
        for m in PRIVATE_MEMBERS {
            let mut j = rsa.jwk("r", None);
            j.insert(m.into(), json!("AQAB"));
            let e = ok(&j).unwrap_err();
            assert!(e.contains(&format!("private member \"{m}\"")), "{e}");
        }
        // A short modulus (1024 bits) and an oversized one (8200 bits).
        for (bytes, bits) in [(128usize, 1024usize), (1025, 8200)] {
            let mut j = rsa.jwk("r", None);
            let mut n = vec![0xffu8; bytes];
            n[0] = if bits % 8 == 0 { 0x80 } else { 0xff };
            j.insert("n".into(), json!(URL_SAFE_NO_PAD.encode(&n)));
            let e = ok(&j).unwrap_err();
            assert!(e.contains("RSA modulus has"), "{e}");
        }
        // A modulus of zeros only (or none at all) has 0 bits: refused with a
        // message, not an arithmetic overflow (found by the jwks fuzz target).
        for n in ["AA", "AAAA", ""] {
            let mut j = rsa.jwk("r", None);
            j.insert("n".into(), json!(n));
            let e = ok(&j).unwrap_err();
            let zero_bits = e.contains("RSA modulus has 0 bits");
            assert!(
                zero_bits || (n.is_empty() && e.contains("\"n\"")),
                "{n}: {e}"
            );
        }
        // Exponent 1 or even.
        for e in ["AQ", "AAE", "Ag"] {
            let mut j = rsa.jwk("r", None);
            j.insert("e".into(), json!(e));
            assert!(ok(&j).unwrap_err().contains("exponent"), "{e}");
        }
        // Wrong alg for the key type; oct keys; unknown kty; no kid.
        assert!(ok(&rsa.jwk("r", Some(Alg::Es256)))
            .unwrap_err()
            .contains("does not fit"));
        assert!(ok(&rsa.jwk("r", Some(Alg::Hs256)))
            .unwrap_err()
            .contains("does not fit"));
        assert!(
            ok(&claims(json!({"kty": "oct", "kid": "s", "alg": "HS256"})))
                .unwrap_err()
                .contains("symmetric")
        );
        assert!(ok(&claims(json!({"kty": "XYZ", "kid": "s"})))
            .unwrap_err()
            .contains("not supported"));
        let mut j = rsa.jwk("r", None);
        j.remove("kid");
        assert!(ok(&j).unwrap_err().contains("no \"kid\""));
        // use enc / key_ops without verify: skipped, not imported.
        let mut j = rsa.jwk("r", None);
        j.insert("use".into(), json!("enc"));
        assert!(matches!(ok(&j).unwrap(), JwkOutcome::Skipped(..)));
        let mut j = rsa.jwk("r", None);
        j.insert("key_ops".into(), json!(["encrypt"]));
        assert!(matches!(ok(&j).unwrap(), JwkOutcome::Skipped(..)));
    }

    #[test]
    fn wrong_curves_are_refused() {
        let p256 = signer(Alg::Es256);
        // A P-256 point announced as P-384: wrong size.
        let mut j = p256.jwk("e", None);
        j.insert("crv".into(), json!("P-384"));
        assert!(public_key_from_jwk(&j, Alg::Rs256)
            .unwrap_err()
            .contains("48 bytes"));
        // P-256 with alg ES384.
        assert!(
            public_key_from_jwk(&p256.jwk("e", Some(Alg::Es384)), Alg::Rs256)
                .unwrap_err()
                .contains("does not fit")
        );
        // A point not on the curve (y changed).
        let mut j = p256.jwk("e", None);
        let mut y = URL_SAFE_NO_PAD.decode(j["y"].as_str().unwrap()).unwrap();
        y[31] ^= 1;
        j.insert("y".into(), json!(URL_SAFE_NO_PAD.encode(&y)));
        assert!(public_key_from_jwk(&j, Alg::Rs256)
            .unwrap_err()
            .contains("not on curve"));
        // Curves not supported: secp256k1, P-521, X25519, Ed448.
        for (kty, crv) in [
            ("EC", "secp256k1"),
            ("EC", "P-521"),
            ("OKP", "X25519"),
            ("OKP", "Ed448"),
        ] {
            let mut j = p256.jwk("e", None);
            j.insert("kty".into(), json!(kty));
            j.insert("crv".into(), json!(crv));
            assert!(
                public_key_from_jwk(&j, Alg::Rs256)
                    .unwrap_err()
                    .contains("not supported"),
                "{crv}"
            );
        }
    }

    #[test]
    fn key_sets() {
        let a = signer(Alg::Es256);
        let b = signer(Alg::EdDsa);
        let doc =
            json!({"keys": [Value::Object(a.jwk("a", None)), Value::Object(b.jwk("b", None))]});
        let keys = parse_jwks(&doc, Alg::Rs256).unwrap();
        assert_eq!(keys.len(), 2);
        // The same kid twice; not an object; no keys array; one bad key
        // refuses the whole set.
        let dup =
            json!({"keys": [Value::Object(a.jwk("a", None)), Value::Object(b.jwk("a", None))]});
        assert!(parse_jwks(&dup, Alg::Rs256).unwrap_err().contains("twice"));
        assert!(parse_jwks(&json!({"keys": [1]}), Alg::Rs256).is_err());
        assert!(parse_jwks(&json!([]), Alg::Rs256).is_err());
        let mut private = a.jwk("c", None);
        private.insert("d".into(), json!("AAAA"));
        let mixed = json!({"keys": [Value::Object(a.jwk("a", None)), Value::Object(private)]});
        assert!(parse_jwks(&mixed, Alg::Rs256)
            .unwrap_err()
            .contains("private member"));
        // A default algorithm for RSA keys that is not an RSA one.
        assert!(parse_jwks(&doc, Alg::Hs256).is_err());
        // Bytes: duplicate members refused.
        assert!(parse_jwks_bytes(br#"{"keys": [], "keys": []}"#, Alg::Rs256).is_err());
        assert_eq!(
            parse_jwks_bytes(br#"{"keys": []}"#, Alg::Rs256).unwrap(),
            vec![]
        );
    }

    #[test]
    fn issuer_rules_apply_to_their_keys() {
        let s = signer(Alg::Es256);
        let issuer = Issuer {
            name: "https://idp.example".into(),
            audience: Some("api".into()),
            leeway: Some(0.0),
            tenant_claim: Some("o.id".into()),
            tenants_claim: None,
            user_claim: Some("email".into()),
            org_column: None,
        };
        let k = ring_key(&s, "idp", Alg::Es256, Some(issuer));
        let h = json!({"alg": "ES256", "kid": "idp"});
        let run = |p: Value| {
            verify(
                token(&s, Alg::Es256, &h, &p).as_bytes(),
                std::slice::from_ref(&k),
                &Rules::default(),
                NOW,
            )
        };
        let v = run(json!({"iss": "https://idp.example", "aud": "api", "o": {"id": "org_1"}, "email": "a@b", "exp": NOW + 10.0})).unwrap();
        assert_eq!(
            (v.tenant.as_deref(), v.user.as_deref()),
            (Some("org_1"), Some("a@b"))
        );
        // Another issuer, none, a non-string one.
        for iss in [json!("https://other.example"), json!(null)] {
            let mut p = json!({"aud": "api", "o": {"id": "org_1"}, "exp": NOW + 10.0});
            if !iss.is_null() {
                p["iss"] = iss;
            }
            assert!(matches!(
                run(p).unwrap_err(),
                Rejection::WrongIssuerForKey { .. }
            ));
        }
        // Its audience; its leeway (0: one second late is expired).
        assert_eq!(run(json!({"iss": "https://idp.example", "aud": "web", "o": {"id": "x"}, "exp": NOW + 10.0})).unwrap_err(), Rejection::WrongAudience { issuer: Some("https://idp.example".into()) });
        assert!(matches!(run(json!({"iss": "https://idp.example", "aud": "api", "o": {"id": "x"}, "exp": NOW - 1.0})).unwrap_err(), Rejection::Expired { .. }));
        // An issuer without an audience of its own: tenant_guard.audience
        // applies, and the message names that setting.
        let plain = ring_key(
            &s,
            "idp",
            Alg::Es256,
            Some(Issuer {
                name: "https://idp.example".into(),
                audience: None,
                leeway: None,
                tenant_claim: None,
                tenants_claim: None,
                user_claim: None,
                org_column: None,
            }),
        );
        let global = Rules {
            audience: Some("api".into()),
            ..Rules::default()
        };
        let p = json!({"iss": "https://idp.example", "aud": "web", "tenant_id": "x", "exp": NOW + 10.0});
        let r = verify(
            token(&s, Alg::Es256, &h, &p).as_bytes(),
            std::slice::from_ref(&plain),
            &global,
            NOW,
        )
        .unwrap_err();
        assert_eq!(r, Rejection::WrongAudience { issuer: None });
        assert!(
            r.detail().contains("tenant_guard.audience"),
            "{}",
            r.detail()
        );
        let r = run(json!({"iss": "https://idp.example", "aud": "web", "o": {"id": "x"}, "exp": NOW + 10.0})).unwrap_err();
        assert!(
            r.detail()
                .contains("issuer \"https://idp.example\" (tenant_guard.set_issuer)"),
            "{}",
            r.detail()
        );
        // Its tenant path missing.
        assert!(matches!(run(json!({"iss": "https://idp.example", "aud": "api", "tenant_id": "x", "exp": NOW + 10.0})).unwrap_err(), Rejection::MissingTenant { .. }));
        // Nor a read set, unless the issuer names its claim: the setting's
        // default (`tenants`) is not read from an identity provider's token.
        let v = run(
            json!({"iss": "https://idp.example", "aud": "api", "o": {"id": "org_1"},
                           "tenants": ["org_1", "org_2"], "exp": NOW + 10.0}),
        )
        .unwrap();
        assert_eq!(v.tenants, vec!["org_1".to_owned()]);
        // An identity provider's token never grants bypass.
        assert!(matches!(
            run(json!({"iss": "https://idp.example", "aud": "api", "bypass": true, "iat": NOW, "exp": NOW + 10.0})).unwrap_err(),
            Rejection::BypassFromIssuer { .. }
        ));
    }
}

#[test]
fn claim_paths() {
    let c = claims(json!({
        "https://example.com/tenant_id": "ns",
        "o": {"id": "org_1", "n": {"deep": 7}},
        "orgs": [{"id": "a"}, {"id": "b"}, {"name": "no id"}, 5],
        "org_id": "plain",
        "a.b": "dotted"
    }));
    assert_eq!(
        id_claim(&c, "https://example.com/tenant_id")
            .unwrap()
            .as_deref(),
        Some("ns")
    );
    assert_eq!(id_claim(&c, "o.id").unwrap().as_deref(), Some("org_1"));
    assert_eq!(id_claim(&c, "o.n.deep").unwrap().as_deref(), Some("7"));
    assert_eq!(id_claim(&c, "org_id").unwrap().as_deref(), Some("plain"));
    // JSON Pointers (RFC 6901): escapes, nesting, array indexes.
    assert_eq!(
        id_claim(&c, "/https:~1~1example.com~1tenant_id")
            .unwrap()
            .as_deref(),
        Some("ns")
    );
    assert_eq!(id_claim(&c, "/o/n/deep").unwrap().as_deref(), Some("7"));
    assert_eq!(id_claim(&c, "/orgs/1/id").unwrap().as_deref(), Some("b"));
    assert_eq!(id_claim(&c, "/orgs/01/id").unwrap(), None);
    assert_eq!(id_claim(&c, "/orgs/9/id").unwrap(), None);
    assert_eq!(id_claim(&c, "/a.b").unwrap().as_deref(), Some("dotted"));
    assert!(tenant_set(&c, "/orgs").is_err());
    // A member whose name has a dot wins over the path.
    assert_eq!(id_claim(&c, "a.b").unwrap().as_deref(), Some("dotted"));
    assert_eq!(id_claim(&c, "o.missing").unwrap(), None);
    assert_eq!(id_claim(&c, "nope.x").unwrap(), None);
    // One tenant cannot come through an array, nor be an object.
    assert!(id_claim(&c, "orgs.id").is_err());
    assert!(id_claim(&c, "o").is_err());
    // The tenant set through an array of objects.
    assert_eq!(
        tenant_set(&c, "orgs.id").unwrap(),
        Some(vec!["a".to_string(), "b".to_string()])
    );
    assert!(tenant_set(&c, "o.id").is_err());
    // In a token: tenant o.id, tenants orgs.id.
    let rules = Rules {
        tenant_claim: "o.id".into(),
        tenants_claim: "orgs.id".into(),
        ..Rules::default()
    };
    let t = mint(
        json!({"o": {"id": "a"}, "orgs": [{"id": "a"}, {"id": "b"}], "exp": NOW + 60.0}),
        &key("k1", Alg::Hs256),
    );
    let v = verify(t.as_bytes(), &[key("k1", Alg::Hs256)], &rules, NOW).unwrap();
    assert_eq!(v.tenants, ["a", "b"]);
    let t = mint(
        json!({"o": {"id": "c"}, "orgs": [{"id": "a"}], "exp": NOW + 60.0}),
        &key("k1", Alg::Hs256),
    );
    assert!(matches!(
        verify(t.as_bytes(), &[key("k1", Alg::Hs256)], &rules, NOW).unwrap_err(),
        Rejection::TenantNotInSet { .. }
    ));
}

#[test]
fn revocations() {
    let mut r = Revocations::default();
    let c = claims(json!({"jti": "j1", "sub": "u1", "iat": 100.0}));
    assert_eq!(r.check(&c, None, ["t1"]), None);
    r.tokens.insert("j1".into());
    assert!(r.check(&c, None, ["t1"]).unwrap().contains("jti \"j1\""));
    // A numeric jti is named by its decimal text.
    r.tokens.insert("12345".into());
    let n = claims(json!({"jti": 12345, "sub": "u1"}));
    assert!(r.check(&n, None, ["t1"]).unwrap().contains("jti \"12345\""));
    assert_eq!(r.check(&claims(json!({"jti": 1234})), None, ["t1"]), None);
    r.tokens.clear();
    // Subjects: tokens issued before the cut; none after it; no iat counts as before.
    r.subjects.insert("u1".into(), 100.0);
    assert_eq!(r.check(&c, None, ["t1"]), None);
    r.subjects.insert("u1".into(), 100.5);
    assert!(r
        .check(&c, None, ["t1"])
        .unwrap()
        .contains("subject \"u1\""));
    assert!(r
        .check(&claims(json!({"sub": "u1"})), None, ["t1"])
        .is_some());
    assert_eq!(r.check(&claims(json!({"sub": "u2"})), None, ["t1"]), None);
    // The user under another claim (tenant_guard.user_claim) is matched too.
    assert!(r
        .check(&claims(json!({"uid": "u1"})), Some("u1"), ["t1"])
        .unwrap()
        .contains("subject \"u1\""));
    assert!(r
        .check(&claims(json!({"sub": "u2"})), Some("u1"), ["t1"])
        .is_some());
    assert_eq!(
        r.check(&claims(json!({"uid": "u2"})), Some("u2"), ["t1"]),
        None
    );
    r.subjects.clear();
    // Tenants: any tenant the token reads.
    r.tenants.insert("t2".into(), 200.0);
    assert_eq!(r.check(&c, None, ["t1"]), None);
    assert!(r
        .check(&c, None, ["t1", "t2"])
        .unwrap()
        .contains("tenant \"t2\""));
    assert_eq!(r.check(&claims(json!({"iat": 300.0})), None, ["t2"]), None);
}
