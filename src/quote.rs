//! Quoting for SQL built by tenant_guard. Pure: unit-tested without PostgreSQL.
//!
//! Identifiers are always double-quoted (never "only when needed"): a name
//! such as `user` or `"tenantId"` left bare would mean something else, and a
//! complete keyword list would be one more thing to keep in sync.

/// Quotes an identifier: `tenantId` -> `"tenantId"`, `a"b` -> `"a""b"`.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal: `it's` -> `'it''s'`. A value holding a
/// backslash is written as an `E''` literal so the result is right whatever
/// `standard_conforming_strings` says.
pub fn literal(value: &str) -> String {
    let body = value.replace('\'', "''");
    if body.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert_eq!(ident("tenant_id"), "\"tenant_id\"");
        assert_eq!(ident("tenantId"), "\"tenantId\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(ident(""), "\"\"");
        assert_eq!(
            ident("x\"; DROP TABLE t; --"),
            "\"x\"\"; DROP TABLE t; --\""
        );
    }

    #[test]
    fn literals() {
        assert_eq!(literal("acme"), "'acme'");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b"), r"E'a\\b'");
        assert_eq!(literal("'; DROP TABLE t; --"), "'''; DROP TABLE t; --'");
    }
}
