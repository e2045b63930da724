//! Quoting for SQL built by tenant_guard. Pure: unit-tested without PostgreSQL.
//!
//! Identifiers are always double-quoted (never "only when needed"): a name
//! such as `user` or `"tenantId"` left bare would mean something else, and a
//! complete keyword list would be one more thing to keep in sync.

/// Quotes an identifier: `tenantId` -> `"tenantId"`, `a"b` -> `"a""b"`.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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
}
