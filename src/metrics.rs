//! The counters behind `tenant_guard.stats` and the rejection log's rate
//! limit: pure logic, no pgrx (unit-tested in `tests/unit`). Storage (shared
//! memory or per backend) and the SQL surface are in `stats`.
//!
//! Every counter has a Prometheus-style metric name (`tenant_guard_…_total`)
//! and, for the counters that break a total down, a `reason` label value.
//! Each counter is incremented by exactly one kind of event.

use crate::token::Rejection;

/// One counter of `tenant_guard.stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    /// Every call of `set_context`, whatever its outcome.
    SetContextCalls,
    /// Tokens whose signature and claims were verified (not from the cache).
    TokensVerified,
    /// Tokens accepted from this backend's verified-token cache.
    TokenCacheHits,
    /// Contexts set (a `set_context` call that returned).
    ContextsSet,
    /// Of those, bypass contexts.
    BypassContexts,
    /// Of those, contexts reading more than one tenant (a tenant-set token).
    MultiTenantContexts,
    RejectedTooLarge,
    RejectedMalformed,
    RejectedAlgorithm,
    RejectedNoKey,
    RejectedUnknownKey,
    RejectedSignature,
    RejectedClaims,
    RejectedExpired,
    RejectedNotYetValid,
    RejectedLifetime,
    RejectedIssuer,
    RejectedAudience,
    /// The registry refused a tenant the token names (unknown or suspended).
    RejectedTenant,
    /// A bypass token without a registry to read (or from an identity
    /// provider's key).
    RejectedBypass,
    /// A revoked token (`revoke_token`, `revoke_subject`, `revoke_tenant`).
    RejectedRevoked,
    /// A cross-tenant INSERT refused by the `tenant_guard_insert` policy.
    DeniedInsert,
    /// An UPDATE whose new row the `tenant_guard_update` policy refused.
    DeniedUpdate,
    /// An UPDATE refused by the tenant-keeping trigger.
    DeniedTenantChange,
    /// A TRUNCATE refused by the TRUNCATE trigger.
    DeniedTruncate,
    /// tenant_guard's rejection LOG lines written.
    RejectionLogLines,
    /// Rejections whose LOG line (and ERROR line) sampling or the rate
    /// limit left out of the server log.
    RejectionLogSuppressed,
    /// Contexts made by `tenant_guard.as_tenant` (no token).
    AsTenantContexts,
}

/// How many counters there are.
pub const COUNTERS: usize = Counter::AsTenantContexts as usize + 1;

/// Every counter, in view order.
pub const ALL: [Counter; COUNTERS] = {
    use Counter::*;
    [
        SetContextCalls,
        TokensVerified,
        TokenCacheHits,
        ContextsSet,
        BypassContexts,
        MultiTenantContexts,
        RejectedTooLarge,
        RejectedMalformed,
        RejectedAlgorithm,
        RejectedNoKey,
        RejectedUnknownKey,
        RejectedSignature,
        RejectedClaims,
        RejectedExpired,
        RejectedNotYetValid,
        RejectedLifetime,
        RejectedIssuer,
        RejectedAudience,
        RejectedTenant,
        RejectedBypass,
        RejectedRevoked,
        DeniedInsert,
        DeniedUpdate,
        DeniedTenantChange,
        DeniedTruncate,
        RejectionLogLines,
        RejectionLogSuppressed,
        AsTenantContexts,
    ]
};

/// The rejection reasons, in view order (the rate limit keeps one slot per
/// reason).
pub const REASONS: usize =
    Counter::RejectedRevoked as usize - Counter::RejectedTooLarge as usize + 1;

impl Counter {
    pub fn index(self) -> usize {
        self as usize
    }

    /// `(metric, reason label)`.
    pub fn name(self) -> (&'static str, Option<&'static str>) {
        use Counter::*;
        const R: &str = "tenant_guard_rejections_total";
        const D: &str = "tenant_guard_denials_total";
        match self {
            SetContextCalls => ("tenant_guard_set_context_calls_total", None),
            TokensVerified => ("tenant_guard_tokens_verified_total", None),
            TokenCacheHits => ("tenant_guard_token_cache_hits_total", None),
            ContextsSet => ("tenant_guard_contexts_set_total", None),
            BypassContexts => ("tenant_guard_bypass_contexts_total", None),
            MultiTenantContexts => ("tenant_guard_multi_tenant_contexts_total", None),
            RejectedTooLarge => (R, Some("too_large")),
            RejectedMalformed => (R, Some("malformed")),
            RejectedAlgorithm => (R, Some("algorithm")),
            RejectedNoKey => (R, Some("no_key")),
            RejectedUnknownKey => (R, Some("unknown_key")),
            RejectedSignature => (R, Some("signature")),
            RejectedClaims => (R, Some("claims")),
            RejectedExpired => (R, Some("expired")),
            RejectedNotYetValid => (R, Some("not_yet_valid")),
            RejectedLifetime => (R, Some("lifetime")),
            RejectedIssuer => (R, Some("issuer")),
            RejectedAudience => (R, Some("audience")),
            RejectedTenant => (R, Some("tenant")),
            RejectedBypass => (R, Some("bypass")),
            RejectedRevoked => (R, Some("revoked")),
            DeniedInsert => (D, Some("insert")),
            DeniedUpdate => (D, Some("update")),
            DeniedTenantChange => (D, Some("tenant_change")),
            DeniedTruncate => (D, Some("truncate")),
            RejectionLogLines => ("tenant_guard_rejection_log_lines_total", None),
            RejectionLogSuppressed => ("tenant_guard_rejection_log_suppressed_total", None),
            AsTenantContexts => ("tenant_guard_as_tenant_contexts_total", None),
        }
    }

    /// The reason slot of a rejection counter (for the rate limit).
    pub fn reason_slot(self) -> Option<usize> {
        let i = self.index();
        let first = Counter::RejectedTooLarge.index();
        (first..first + REASONS).contains(&i).then(|| i - first)
    }

    /// Whether this counts a write refused to the context (also counted
    /// under the context's tenant in `tenant_guard.tenant_stats`).
    pub fn is_denial(self) -> bool {
        use Counter::*;
        matches!(
            self,
            DeniedInsert | DeniedUpdate | DeniedTenantChange | DeniedTruncate
        )
    }
}

/// The counter a token rejection increments.
pub fn rejection_counter(r: &Rejection) -> Counter {
    use Counter::*;
    match r {
        Rejection::TooLarge { .. } => RejectedTooLarge,
        Rejection::Malformed(_) | Rejection::Crit | Rejection::AmbiguousKey { .. } => {
            RejectedMalformed
        }
        Rejection::AlgNone | Rejection::UnsupportedAlg(_) | Rejection::AlgMismatch { .. } => {
            RejectedAlgorithm
        }
        Rejection::NoKeys => RejectedNoKey,
        Rejection::UnknownKey(_) => RejectedUnknownKey,
        Rejection::BadSignature => RejectedSignature,
        Rejection::BadClaim { .. }
        | Rejection::MissingExp
        | Rejection::MissingTenant { .. }
        | Rejection::TenantNotInSet { .. } => RejectedClaims,
        Rejection::Expired { .. } => RejectedExpired,
        Rejection::NotYetValid { .. } | Rejection::IssuedInFuture { .. } => RejectedNotYetValid,
        Rejection::LifetimeTooLong { .. } | Rejection::BypassTooLong { .. } => RejectedLifetime,
        Rejection::WrongIssuer { .. } | Rejection::WrongIssuerForKey { .. } => RejectedIssuer,
        Rejection::WrongAudience { .. } => RejectedAudience,
        Rejection::BypassFromIssuer { .. } => RejectedBypass,
        Rejection::Revoked(_) => RejectedRevoked,
    }
}

/// The function of PostgreSQL that refuses a new row by a policy's
/// `WITH CHECK` (`execMain.c`), as an error report names it (`funcname`,
/// which survives re-raising, unlike the message format).
pub const RLS_CHECK_FUNCTION: &str = "ExecWithCheckOptions";

/// Which denial counter an error reported with SQLSTATE 42501 by
/// `funcname` with text `message` stands for. PostgreSQL names the
/// restrictive policy that refused the row first, in double quotes
/// (`new row violates row-level security policy "tenant_guard_insert" for
/// table "orders"`); a refusal by a permissive policy names none.
pub fn denial_counter(funcname: &str, message: &str) -> Option<Counter> {
    if funcname != RLS_CHECK_FUNCTION {
        return None;
    }
    // Two quoted names (policy, table); a permissive refusal quotes only
    // the table, which may well be called tenant_guard_insert.
    let quoted: Vec<&str> = message.split('"').collect();
    if quoted.len() < 5 {
        return None;
    }
    match quoted[1] {
        crate::policy::INSERT => Some(Counter::DeniedInsert),
        crate::policy::UPDATE => Some(Counter::DeniedUpdate),
        _ => None,
    }
}

/// Per-reason rate limit of the rejection log: a fixed window of one minute
/// packed in one `u64` (high 32 bits: the window, minutes since the Unix
/// epoch; low 32 bits: lines written in it), so that it can live in one
/// atomic word in shared memory.
///
/// Returns the new state and whether a line may be written at `minute`
/// with at most `per_minute` lines per window (`0`: no limit).
pub fn admit(state: u64, minute: u32, per_minute: u32) -> (u64, bool) {
    if per_minute == 0 {
        return (state, true);
    }
    let window = (state >> 32) as u32;
    let used = (state & 0xffff_ffff) as u32;
    if window != minute {
        return ((u64::from(minute) << 32) | 1, true);
    }
    if used >= per_minute {
        return (state, false);
    }
    ((u64::from(minute) << 32) | u64::from(used + 1), true)
}

/// Sampling: with `every` = N, the rejections numbered 1, N + 1, 2N + 1, …
/// (per reason) are considered for a line; the others are not.
pub fn sampled(nth: u64, every: u32) -> bool {
    every <= 1 || nth % u64::from(every) == 1 % u64::from(every)
}

/// Clips an unverified claim for a log line: at most 64 characters, control
/// characters and quotes replaced, so a forged token cannot forge log lines.
pub fn clip_claim(s: &str) -> String {
    // Most claims are short and plain: copied as they are.
    if s.len() <= 64
        && s.bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        return s.to_owned();
    }
    let mut out: String = s
        .chars()
        .take(64)
        .map(|c| {
            if c.is_control() || c == '"' || c == '\\' {
                '?'
            } else {
                c
            }
        })
        .collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn names_are_distinct_and_prometheus_friendly() {
        let mut seen = std::collections::HashSet::new();
        for (i, c) in ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            let (metric, reason) = c.name();
            assert!(seen.insert((metric, reason)), "{metric} {reason:?}");
            assert!(metric.starts_with("tenant_guard_") && metric.ends_with("_total"));
            assert!(metric.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(reason.is_none_or(|r| r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        }
        assert_eq!(REASONS, 15);
        let reasons: Vec<_> = ALL.iter().filter_map(|c| c.reason_slot()).collect();
        assert_eq!(reasons, (0..REASONS).collect::<Vec<_>>());
        assert!(ALL
            .iter()
            .filter(|c| c.reason_slot().is_some())
            .all(|c| c.name().0 == "tenant_guard_rejections_total"));
    }

    #[test]
    fn the_denials_are_exactly_the_denials_total_counters() {
        // What tenant_guard.tenant_stats counts as a tenant's denials.
        for c in ALL {
            assert_eq!(
                c.is_denial(),
                c.name().0 == "tenant_guard_denials_total",
                "{c:?}"
            );
        }
        assert_eq!(ALL.iter().filter(|c| c.is_denial()).count(), 4);
    }

    #[test]
    fn every_rejection_has_its_reason() {
        use Rejection::*;
        let cases = [
            (TooLarge { len: 9, max: 1 }, "too_large"),
            (Malformed("x".into()), "malformed"),
            (Crit, "malformed"),
            (AmbiguousKey { active: 2 }, "malformed"),
            (AlgNone, "algorithm"),
            (UnsupportedAlg("RS256".into()), "algorithm"),
            (NoKeys, "no_key"),
            (UnknownKey("k".into()), "unknown_key"),
            (BadSignature, "signature"),
            (MissingExp, "claims"),
            (MissingTenant { claim: "t".into() }, "claims"),
            (
                Expired {
                    exp: 1.0,
                    now: 2.0,
                    leeway: 0.0,
                },
                "expired",
            ),
            (
                NotYetValid {
                    nbf: 2.0,
                    now: 1.0,
                    leeway: 0.0,
                },
                "not_yet_valid",
            ),
            (
                IssuedInFuture {
                    iat: 2.0,
                    now: 1.0,
                    leeway: 0.0,
                },
                "not_yet_valid",
            ),
            (
                LifetimeTooLong {
                    lifetime: 9.0,
                    max: 1.0,
                },
                "lifetime",
            ),
            (
                BypassTooLong {
                    lifetime: None,
                    max: 1.0,
                },
                "lifetime",
            ),
            (WrongIssuer { got: None }, "issuer"),
            (WrongAudience { issuer: None }, "audience"),
            (
                WrongAudience {
                    issuer: Some("i".into()),
                },
                "audience",
            ),
            (Revoked("jti".into()), "revoked"),
            (BypassFromIssuer { issuer: "i".into() }, "bypass"),
            (
                WrongIssuerForKey {
                    kid: "k".into(),
                    want: "a".into(),
                    got: None,
                },
                "issuer",
            ),
        ];
        for (r, reason) in cases {
            assert_eq!(rejection_counter(&r).name().1, Some(reason), "{r:?}");
        }
    }

    #[test]
    fn denials_are_recognised_by_policy_and_function() {
        let msg =
            |p: &str| format!("new row violates row-level security policy \"{p}\" for table \"t\"");
        let f = RLS_CHECK_FUNCTION;
        assert_eq!(
            denial_counter(f, &msg("tenant_guard_insert")),
            Some(Counter::DeniedInsert)
        );
        assert_eq!(
            denial_counter(f, &msg("tenant_guard_update")),
            Some(Counter::DeniedUpdate)
        );
        // Another restrictive policy, or a table named like ours: not counted.
        assert_eq!(denial_counter(f, &msg("mine")), None);
        let m =
            "new row violates row-level security policy \"mine\" for table \"tenant_guard_insert\"";
        assert_eq!(denial_counter(f, m), None);
        // A permissive policy's refusal names no policy.
        let m = "new row violates row-level security policy for table \"tenant_guard_insert\"";
        assert_eq!(denial_counter(f, m), None);
        // The same text raised elsewhere (a PL/pgSQL RAISE): not counted.
        assert_eq!(
            denial_counter("exec_stmt_raise", &msg("tenant_guard_insert")),
            None
        );
    }

    #[test]
    fn rate_limit_per_minute() {
        let mut s = 0u64;
        let mut lines = 0;
        for _ in 0..1000 {
            let (n, ok) = admit(s, 100, 5);
            s = n;
            lines += usize::from(ok);
        }
        assert_eq!(lines, 5);
        // The next minute opens a new window.
        let (s2, ok) = admit(s, 101, 5);
        assert!(ok);
        assert_eq!(s2 & 0xffff_ffff, 1);
        // A clock that went back also starts a window.
        assert!(admit(s2, 99, 5).1);
        // No limit.
        assert_eq!(admit(s, 100, 0), (s, true));
    }

    #[test]
    fn sampling_takes_one_of_n() {
        let taken: Vec<u64> = (1..=10).filter(|n| sampled(*n, 3)).collect();
        assert_eq!(taken, [1, 4, 7, 10]);
        assert!((1..=10).all(|n| sampled(n, 1)));
        assert!((1..=10).all(|n| sampled(n, 0)));
    }

    #[test]
    fn claims_are_clipped_for_the_log() {
        assert_eq!(clip_claim("acme"), "acme");
        assert_eq!(clip_claim("a\"b\nc\\"), "a?b?c?");
        let long = "x".repeat(500);
        assert_eq!(clip_claim(&long).chars().count(), 65);
        // At the length limit: kept whole; one more: clipped.
        assert_eq!(clip_claim(&"y".repeat(64)), "y".repeat(64));
        assert_eq!(clip_claim(&"y".repeat(65)), format!("{}…", "y".repeat(64)));
        // Plain ASCII but DEL, a tab, or a character beyond ASCII.
        assert_eq!(clip_claim("a\u{7f}b\tc"), "a?b?c");
        assert_eq!(clip_claim("é\""), "é?");
        assert_eq!(clip_claim(&"é".repeat(40)).chars().count(), 40);
    }
}
