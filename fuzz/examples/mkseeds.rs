//! Regenerates the seed corpus under fuzz/corpus/ (deterministic output).
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example mkseeds
//!
//! Tokens are signed with the fixed ring of the targets (`ring()`), through
//! `token::sign` when the header is the standard one and by hand otherwise.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use tenant_guard_fuzz::token::{self, Alg, Key};
use tenant_guard_fuzz::{hmac, ring, sign_public, NOW};

fn key(kid: &str) -> &'static Key {
    ring().iter().find(|k| k.kid == kid).unwrap()
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// A token with an arbitrary header and payload text, MAC'd with `alg` and
/// the secret of `k`.
fn raw(header: &str, payload: &str, alg: Alg, k: &Key) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = URL_SAFE_NO_PAD.encode(hmac(alg, &k.secret, input.as_bytes()));
    format!("{input}.{sig}")
}

fn claims(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let exp = NOW as i64 + 600;
    let good = json!({"tenant_id": "acme", "sub": "u-1", "exp": exp, "iat": NOW as i64});

    // verify_bytes: whole tokens.
    let d = root.join("verify_bytes");
    fs::create_dir_all(&d).unwrap();
    for kid in ["k256", "k384", "k512"] {
        write(&d, &format!("valid_{kid}"), token::sign(&claims(good.clone()), key(kid)));
    }
    // For the second configuration (single key, iss/aud/org, no kid needed).
    let strict = format!(
        r#"{{"org":42,"iss":"https://issuer.example","aud":["web","api"],"iat":{},"exp":{exp}}}"#,
        NOW as i64
    );
    write(&d, "valid_nokid_iss_aud", raw(r#"{"alg":"HS256"}"#, &strict, Alg::Hs256, key("k256")));
    let p = good.to_string();
    // Public keys: RS256 and EdDSA (deterministic keys and signatures), PS256
    // (a random salt: the bytes differ per run, the token verifies), and the
    // algorithm confusion: HS256 keyed with the RSA key's stored material.
    for (kid, alg) in [("rs256", Alg::Rs256), ("ps256", Alg::Ps256), ("ed", Alg::EdDsa)] {
        let input = format!("{}.{}", b64(&format!(r#"{{"alg":"{}","kid":"{kid}"}}"#, alg.as_str())), b64(&p));
        let sig = URL_SAFE_NO_PAD.encode(sign_public(alg, input.as_bytes()));
        write(&d, &format!("valid_{kid}"), format!("{input}.{sig}"));
    }
    write(&d, "confusion_hs256_rsa_material", raw(r#"{"alg":"HS256","kid":"rs256"}"#, &p, Alg::Hs256, key("rs256")));
    write(&d, "alg_none", format!("{}.{}.AA", b64(r#"{"alg":"none","kid":"k256"}"#), b64(&p)));
    write(&d, "alg_none_mixed_case", raw(r#"{"alg":"nOnE","kid":"k256"}"#, &p, Alg::Hs256, key("k256")));
    write(&d, "alg_rs256", raw(r#"{"alg":"RS256","kid":"k256"}"#, &p, Alg::Hs256, key("k256")));
    write(
        &d,
        "crit",
        raw(r#"{"alg":"HS256","kid":"k256","crit":["b64"],"b64":false}"#, &p, Alg::Hs256, key("k256")),
    );
    write(&d, "dup_header_alg", raw(r#"{"alg":"HS256","kid":"k256","alg":"none"}"#, &p, Alg::Hs256, key("k256")));
    write(
        &d,
        "dup_claims",
        raw(
            r#"{"alg":"HS256","kid":"k256"}"#,
            &format!(r#"{{"tenant_id":"acme","exp":{exp},"\u0074enant_id":"evil"}}"#),
            Alg::Hs256,
            key("k256"),
        ),
    );
    write(&d, "alg_mismatch", raw(r#"{"alg":"HS256","kid":"k512"}"#, &p, Alg::Hs256, key("k512")));
    write(
        &d,
        "expired",
        token::sign(&claims(json!({"tenant_id": "acme", "exp": NOW as i64 - 3600})), key("k256")),
    );
    write(&d, "expired_key", token::sign(&claims(good.clone()), key("old")));
    let t = token::sign(&claims(good.clone()), key("k384"));
    let (input, sig) = t.rsplit_once('.').unwrap();
    let std_sig = STANDARD.encode(URL_SAFE_NO_PAD.decode(sig).unwrap());
    write(&d, "padded_std_base64_sig", format!("{input}.{std_sig}"));
    write(&d, "nul_in_claim", raw(r#"{"alg":"HS512","kid":"k512"}"#, &format!(r#"{{"tenant_id":"a\u0000b","exp":{exp}}}"#), Alg::Hs512, key("k512")));
    let mut big = token::sign(&claims(json!({"tenant_id": "acme", "exp": exp, "pad": "x".repeat(5900)})), key("k256"));
    assert!(big.len() <= 8192);
    big.push_str(&"A".repeat(8193 - big.len()));
    write(&d, "oversized_8193", big);
    write(&d, "garbage_dots", "a.b.c");
    write(
        &d,
        "bypass_short",
        token::sign(&claims(json!({"bypass": true, "sub": "ops", "iat": NOW as i64, "exp": NOW as i64 + 300})), key("k512")),
    );
    write(
        &d,
        "bypass_too_long",
        token::sign(&claims(json!({"bypass": true, "iat": NOW as i64, "exp": NOW as i64 + 3600})), key("k256")),
    );
    write(
        &d,
        "tenant_set",
        token::sign(&claims(json!({"tenant_id": "a", "tenants": ["a", 7, "a"], "exp": exp})), key("k384")),
    );
    write(
        &d,
        "tenant_not_in_set",
        token::sign(&claims(json!({"tenant_id": "z", "tenants": ["a", "b"], "exp": exp})), key("k256")),
    );
    write(&d, "unsigned_empty_sig", format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&p)));

    // parse_object: JSON texts.
    let d = root.join("parse_object");
    fs::create_dir_all(&d).unwrap();
    write(&d, "object", r#"{"tenant_id":"acme","exp":1900000600,"aud":["a","b"],"x":{"y":[1,2.5,null,true]}}"#);
    write(&d, "dup_member", r#"{"a":1,"a":2}"#);
    write(&d, "dup_escaped", r#"{"tenant_id":"a","\u0074enant_id":"b"}"#);
    write(&d, "dup_nested", r#"{"a":[{"b":1,"c":{"d":1,"d":2}}]}"#);
    write(&d, "nul_key", r#"{"a\u0000":1}"#);
    write(&d, "surrogates", r#"{"s":"\ud83d\ude00","t":"\ud800"}"#);
    write(&d, "numbers", r#"{"a":1e400,"b":-0,"c":18446744073709551616,"d":1.7976931348623157e308}"#);
    write(&d, "deep", format!("{}{}", "{\"a\":".repeat(200), "}".repeat(200)));
    write(&d, "not_object", r#"[{"a":1}]"#);
    write(&d, "trailing", "{\"a\":1} {}");

    // tamper: inputs are decoded with `arbitrary`; all zero bytes decode to
    // "empty claims, no tampering", i.e. the genuine token, which verifies.
    let d = root.join("tamper");
    fs::create_dir_all(&d).unwrap();
    write(&d, "zeros_64", [0u8; 64]);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for (i, len) in [200usize, 700, 2000].into_iter().enumerate() {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        write(&d, &format!("random_{i}"), bytes);
    }
    println!("seeds written under {}", root.display());
}
