//! The rules of `tenant_guard.as_tenant`: who may act as a tenant without
//! a token, which read set an `as_tenant` context gets, and its log line.
//! Pure logic, no pgrx (unit-tested in `tests/unit`); the SQL function is
//! in `impersonate`, the context it writes in `context`.
//!
//! Invariants: a caller that is neither a superuser nor a member of the
//! role named by `tenant_guard.as_tenant_role` is refused; an unset or
//! unknown role admits superusers only; every id is non-empty and free of
//! control characters (the context setting separates its parts with one).

/// Why a caller may not use `as_tenant`, as the error says it.
#[derive(Debug, Clone, PartialEq)]
pub struct Denied {
    pub message: String,
    pub detail: String,
    pub hint: String,
}

/// What the permission check knows about the caller (the current user:
/// inside a `SECURITY DEFINER` function, its owner).
#[derive(Debug, Clone, PartialEq)]
pub struct Caller<'a> {
    pub user: &'a str,
    pub superuser: bool,
    /// `tenant_guard.as_tenant_role`, if set.
    pub role: Option<&'a str>,
    /// Whether that role exists.
    pub role_exists: bool,
    /// Whether the caller has the privileges of that role (a member that
    /// inherits it, or the role itself).
    pub member: bool,
}

/// Whether `c` may use `as_tenant`: `Ok` with how (for the log line).
pub fn permitted(c: &Caller) -> Result<String, Denied> {
    if c.superuser {
        return Ok("superuser".into());
    }
    match c.role {
        Some(role) if c.role_exists && c.member => Ok(format!("member of \"{}\"", clip(role))),
        Some(role) if !c.role_exists => Err(Denied {
            message: "permission denied for tenant_guard.as_tenant".into(),
            detail: format!(
                "tenant_guard.as_tenant_role names \"{}\", which does not exist: only superusers may act as a tenant without a token.",
                clip(role)
            ),
            hint: "Create the role, or set tenant_guard.as_tenant_role to an existing one (as a superuser).".into(),
        }),
        Some(role) => Err(Denied {
            message: "permission denied for tenant_guard.as_tenant".into(),
            detail: format!(
                "Role \"{}\" is neither a superuser nor a member of \"{}\" (tenant_guard.as_tenant_role).",
                clip(c.user),
                clip(role)
            ),
            hint: format!(
                "Applications set a tenant with tenant_guard.set_context(token). For a test suite, a superuser can run GRANT \"{}\" TO \"{}\".",
                clip(role),
                clip(c.user)
            ),
        }),
        None => Err(Denied {
            message: "permission denied for tenant_guard.as_tenant".into(),
            detail: format!(
                "Role \"{}\" is not a superuser, and tenant_guard.as_tenant_role is not set: only superusers may act as a tenant without a token.",
                clip(c.user)
            ),
            hint: "Applications set a tenant with tenant_guard.set_context(token). For a test suite, a superuser can set tenant_guard.as_tenant_role to a role granted to the test runner.".into(),
        }),
    }
}

/// A usable tenant id: not empty, no control characters.
pub fn is_id(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_control)
}

/// The tenants an `as_tenant` context reads: `tenant` first, then
/// `tenants` (each once, in order). Errors name the bad argument.
pub fn read_set(
    tenant: Option<&str>,
    tenants: Option<&[Option<String>]>,
) -> Result<Vec<String>, String> {
    let Some(tenant) = tenant else {
        return Err("tenant must not be NULL".into());
    };
    if !is_id(tenant) {
        return Err("tenant must be a non-empty id without control characters".into());
    }
    let mut out = vec![tenant.to_owned()];
    let mut seen = std::collections::HashSet::new();
    seen.insert(tenant.to_owned());
    for t in tenants.unwrap_or_default() {
        let Some(t) = t else {
            return Err("tenants must not contain NULL".into());
        };
        if !is_id(t) {
            return Err(
                "every element of tenants must be a non-empty id without control characters".into(),
            );
        }
        if seen.insert(t.clone()) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// The LOG line written for every `as_tenant` context.
pub fn log_line(
    read: &[String],
    user: Option<&str>,
    by: &str,
    how: &str,
    session_user: &str,
    is_local: bool,
) -> String {
    let tenant = read.first().map(String::as_str).unwrap_or("");
    let reads = if read.len() > 1 {
        let shown: Vec<String> = read.iter().take(10).map(|t| clip(t)).collect();
        let more = if read.len() > 10 {
            format!(" and {} more", read.len() - 10)
        } else {
            String::new()
        };
        format!(", reads \"{}\"{more}", shown.join("\", \""))
    } else {
        String::new()
    };
    format!(
        "tenant_guard: as_tenant context set: tenant \"{}\"{reads}, user \"{}\", by role \"{}\" ({how}), session user \"{}\", {}",
        clip(tenant),
        clip(user.unwrap_or("")),
        clip(by),
        clip(session_user),
        if is_local { "transaction" } else { "session" },
    )
}

fn clip(s: &str) -> String {
    crate::metrics::clip_claim(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller<'a>(
        superuser: bool,
        role: Option<&'a str>,
        exists: bool,
        member: bool,
    ) -> Caller<'a> {
        Caller {
            user: "app",
            superuser,
            role,
            role_exists: exists,
            member,
        }
    }

    #[test]
    fn who_may_act_as_a_tenant() {
        assert_eq!(
            permitted(&caller(true, None, false, false)).unwrap(),
            "superuser"
        );
        assert_eq!(
            permitted(&caller(true, Some("t"), true, false)).unwrap(),
            "superuser"
        );
        assert_eq!(
            permitted(&caller(false, Some("testers"), true, true)).unwrap(),
            "member of \"testers\""
        );
        // Not set: superusers only.
        let d = permitted(&caller(false, None, false, false)).unwrap_err();
        assert!(d.detail.contains("is not set"), "{d:?}");
        // Set, not a member.
        let d = permitted(&caller(false, Some("testers"), true, false)).unwrap_err();
        assert!(d.detail.contains("nor a member of \"testers\""), "{d:?}");
        assert!(d.hint.contains("GRANT \"testers\" TO \"app\""), "{d:?}");
        // A role that does not exist admits nobody but superusers, even
        // should membership be reported.
        let d = permitted(&caller(false, Some("gone"), false, true)).unwrap_err();
        assert!(d.detail.contains("does not exist"), "{d:?}");
        assert_eq!(d.message, "permission denied for tenant_guard.as_tenant");
    }

    #[test]
    fn read_sets() {
        assert_eq!(read_set(Some("acme"), None).unwrap(), ["acme"]);
        let more = [
            Some("globex".to_owned()),
            Some("acme".to_owned()),
            Some("globex".to_owned()),
        ];
        assert_eq!(
            read_set(Some("acme"), Some(&more)).unwrap(),
            ["acme", "globex"]
        );
        assert_eq!(read_set(Some("acme"), Some(&[])).unwrap(), ["acme"]);
        assert!(read_set(None, None).unwrap_err().contains("NULL"));
        assert!(read_set(Some(""), None).is_err());
        assert!(read_set(Some("a\u{1f}b"), None).is_err());
        assert!(read_set(Some("a"), Some(&[None]))
            .unwrap_err()
            .contains("NULL"));
        assert!(read_set(Some("a"), Some(&[Some("x\ny".into())])).is_err());
    }

    #[test]
    fn log_lines() {
        let l = log_line(
            &["acme".into()],
            Some("alice"),
            "postgres",
            "superuser",
            "postgres",
            true,
        );
        assert_eq!(
            l,
            "tenant_guard: as_tenant context set: tenant \"acme\", user \"alice\", by role \"postgres\" (superuser), session user \"postgres\", transaction"
        );
        let many: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
        let l = log_line(&many, None, "qa\"", "member of \"testers\"", "qa", false);
        assert!(l.contains("tenant \"t0\", reads \"t0\", \"t1\""), "{l}");
        assert!(l.contains("\"t9\" and 2 more"), "{l}");
        assert!(l.contains("by role \"qa?\""), "{l}");
        assert!(l.ends_with(", session"), "{l}");
    }
}
