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
    for alg in ["RS256", "ES256", "PS256", "EdDSA", "hs256", "HS1"] {
        let e = check(&with_header(&format!("{{\"alg\":\"{alg}\"}}"), &p, &k)).unwrap_err();
        assert_eq!(e, Rejection::UnsupportedAlg(alg.into()));
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
        Rejection::WrongAudience
    );
    assert_eq!(
        v(json!({"iss": "https://auth.example"})).unwrap_err(),
        Rejection::WrongAudience
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
