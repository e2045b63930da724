//! (c) `token::parse_object` on arbitrary bytes. Must never panic, and must
//! agree with an independent lenient parse (`Tree`, which keeps duplicate
//! members): it accepts exactly the JSON objects with no duplicate member name
//! (at any depth, compared after unescaping) and no U+0000, and then returns
//! what serde_json returns; accepted text is always UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tenant_guard_fuzz::token::{self, Rejection};
use tenant_guard_fuzz::Tree;

fuzz_target!(|data: &[u8]| {
    let got = token::parse_object(data, "payload");
    let tree = serde_json::from_slice::<Tree>(data);
    match &got {
        Ok(map) => {
            let tree = tree.expect("parse_object accepted text serde_json rejects");
            assert!(matches!(tree, Tree::Obj(_)), "accepted a non-object");
            assert!(!tree.has_duplicate(), "accepted a duplicate member: {tree:?}");
            assert!(!tree.has_nul(), "accepted a NUL character");
            // verify() relies on this to keep the payload text as a String.
            assert!(std::str::from_utf8(data).is_ok(), "accepted text that is not UTF-8");
            let plain: Value = serde_json::from_slice(data).unwrap();
            assert_eq!(plain, Value::Object(map.clone()), "result differs from serde_json");
        }
        Err(Rejection::Malformed(why)) => {
            if let Ok(tree) = &tree {
                let ok = matches!(tree, Tree::Obj(_)) && !tree.has_duplicate() && !tree.has_nul();
                assert!(!ok, "rejected a valid object ({why}): {tree:?}");
                if why.starts_with("the payload has duplicate member ") {
                    assert!(tree.has_duplicate(), "reported a duplicate that is not there: {why}");
                }
                if why == "the payload contains a NUL character" {
                    assert!(tree.has_nul(), "reported a NUL that is not there: {why}");
                }
            }
            let d = got.as_ref().unwrap_err().detail();
            assert!(d.starts_with("the payload "), "{d}");
            // Echoed member names are clipped to 64 characters.
            assert!(d.chars().count() <= 64 + 64, "detail too long: {d:?}");
        }
        Err(e) => panic!("parse_object returned a non-Malformed rejection: {e:?}"),
    }
});
