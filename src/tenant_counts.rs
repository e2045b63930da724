//! The per-tenant counters behind `tenant_guard.tenant_stats`: pure logic,
//! no pgrx (unit-tested in `tests/unit`). The hooks that count, the table
//! (shared memory or per backend) and the SQL surface are in
//! `tenant_stats`.
//!
//! * [`Activity`]: what one tenant's context did in one transaction of one
//!   backend, added to the tenant's row once, when the transaction ends.
//! * [`clip`]: the part of a tenant id the table keeps (ids are told apart
//!   by their full text, see `tenant_stats`; only the displayed text is
//!   clipped).
//! * [`victims`] / [`decay`]: which rows make room when the table is full
//!   (`tenant_guard.tenant_stats_max`), the way `pg_stat_statements`
//!   deallocates: the least active 5 % (at least one row) go, oldest
//!   `last_seen` first among equals, and every remaining row's activity
//!   score decays by 1 %, so that a tenant busy long ago does not stay
//!   forever.

/// What one tenant's context did in one transaction of one backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// Top-level statements that ran to their end (`ExecutorEnd`).
    pub statements: u64,
    /// Rows those of them that are `SELECT`s returned (or stored, for
    /// `CREATE TABLE AS` / `SELECT INTO`): the executor's count, as in the
    /// command tag.
    pub rows_returned: u64,
    /// Rows those of them that are `INSERT`, `UPDATE`, `DELETE` or `MERGE`
    /// inserted, updated or deleted, on any table: the executor's count,
    /// as in the command tag (not the rows of triggers or cascades).
    pub rows_written: u64,
    /// Time spent executing them (`ExecutorRun` and `ExecutorFinish`), in
    /// microseconds.
    pub exec_us: u64,
    /// Writes refused to the context (the denials of `tenant_guard.stats`).
    pub denials: u64,
}

impl Activity {
    /// Adds `other` to `self` (saturating: counters never wrap).
    pub fn add(&mut self, other: &Activity) {
        self.statements = self.statements.saturating_add(other.statements);
        self.rows_returned = self.rows_returned.saturating_add(other.rows_returned);
        self.rows_written = self.rows_written.saturating_add(other.rows_written);
        self.exec_us = self.exec_us.saturating_add(other.exec_us);
        self.denials = self.denials.saturating_add(other.denials);
    }
}

/// How many bytes of a tenant id the table keeps for display.
pub const TENANT_BYTES: usize = 200;

/// The first [`TENANT_BYTES`] bytes of `tenant`, cut at a character
/// boundary.
pub fn clip(tenant: &str) -> &str {
    if tenant.len() <= TENANT_BYTES {
        return tenant;
    }
    let mut end = TENANT_BYTES;
    while !tenant.is_char_boundary(end) {
        end -= 1;
    }
    &tenant[..end]
}

/// How active a row has been, for eviction: one per transaction counted
/// for the tenant, decayed by [`decay`] at every eviction.
pub fn usage_of(transactions: u64) -> u64 {
    transactions
}

/// A row's activity as eviction sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub usage: u64,
    /// `TimestampTz` of the row's last transaction.
    pub last_seen: i64,
}

/// How many rows one eviction removes from a full table of `max` rows:
/// 5 % of them, at least one (`pg_stat_statements`' `USAGE_DEALLOC_PERCENT`).
pub fn evict_count(max: usize) -> usize {
    (max / 20).max(1)
}

/// The indexes (into `rows`) of the rows to evict from a full table of
/// `max` rows: the [`evict_count`] least used, among equal usage the ones
/// seen longest ago, among those the lower index. Never more than there are
/// rows.
pub fn victims(rows: &[Usage], max: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (rows[i].usage, rows[i].last_seen, i));
    order.truncate(evict_count(max).min(rows.len()));
    order
}

/// A remaining row's usage after an eviction: 1 % less (rounded down, so a
/// row used once keeps its 1 until it is evicted or used again).
pub fn decay(usage: u64) -> u64 {
    usage - usage / 100
}

/// Total execution time in milliseconds, as the view shows it.
pub fn exec_ms(exec_us: u64) -> f64 {
    exec_us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(usage: u64, last_seen: i64) -> Usage {
        Usage { usage, last_seen }
    }

    #[test]
    fn activity_adds_each_counter_to_its_own() {
        let mut a = Activity {
            statements: 1,
            rows_returned: 2,
            rows_written: 3,
            exec_us: 4,
            denials: 5,
        };
        a.add(&Activity {
            statements: 10,
            rows_returned: 20,
            rows_written: 30,
            exec_us: 40,
            denials: 50,
        });
        assert_eq!(
            a,
            Activity {
                statements: 11,
                rows_returned: 22,
                rows_written: 33,
                exec_us: 44,
                denials: 55,
            }
        );
        let mut full = Activity {
            statements: u64::MAX,
            ..Activity::default()
        };
        full.add(&a);
        assert_eq!(full.statements, u64::MAX, "saturates, never wraps");
        assert_eq!(full.rows_returned, 22);
    }

    #[test]
    fn clip_keeps_short_ids_and_cuts_long_ones_at_a_character() {
        assert_eq!(clip("acme"), "acme");
        let exact = "a".repeat(TENANT_BYTES);
        assert_eq!(clip(&exact), exact);
        let long = "b".repeat(TENANT_BYTES + 1);
        assert_eq!(clip(&long).len(), TENANT_BYTES);
        // A two-byte character straddling the limit is left out whole.
        let straddling = format!("{}é", "c".repeat(TENANT_BYTES - 1));
        assert_eq!(clip(&straddling), "c".repeat(TENANT_BYTES - 1));
    }

    #[test]
    fn evicts_five_percent_at_least_one() {
        assert_eq!(evict_count(1), 1);
        assert_eq!(evict_count(3), 1);
        assert_eq!(evict_count(39), 1);
        assert_eq!(evict_count(40), 2);
        assert_eq!(evict_count(1000), 50);
    }

    #[test]
    fn the_least_active_row_goes_first() {
        // acme 5 transactions, globex 3, initech 1: initech goes.
        let rows = [u(5, 100), u(3, 200), u(1, 300)];
        assert_eq!(victims(&rows, 3), vec![2]);
        // Among equal usage, the one seen longest ago; then the lower index.
        let rows = [u(2, 300), u(2, 100), u(2, 100), u(9, 0)];
        assert_eq!(victims(&rows, 3), vec![1]);
        let rows = [u(4, 0); 40];
        assert_eq!(victims(&rows, 40), vec![0, 1]);
        // Never more victims than rows (a table smaller than its max).
        assert_eq!(victims(&[u(1, 0)], 1000), vec![0]);
        assert!(victims(&[], 1000).is_empty());
    }

    #[test]
    fn usage_decays_by_one_percent_and_never_to_zero() {
        assert_eq!(decay(1000), 990);
        assert_eq!(decay(150), 149);
        assert_eq!(decay(99), 99);
        assert_eq!(decay(1), 1);
        assert_eq!(decay(0), 0);
        // A busy past fades: 1000 transactions long ago fall below a
        // tenant with 500 recent ones after 75 evictions (not 74: the
        // decay rounds down what it takes away).
        let mut old = 1000;
        for _ in 0..74 {
            old = decay(old);
        }
        assert!(old >= 500, "{old}");
        assert!(decay(old) < 500, "{}", decay(old));
    }

    #[test]
    fn usage_counts_transactions() {
        assert_eq!(usage_of(0), 0);
        assert_eq!(usage_of(7), 7);
    }

    #[test]
    fn exec_time_is_shown_in_milliseconds() {
        assert_eq!(exec_ms(0), 0.0);
        assert_eq!(exec_ms(1500), 1.5);
    }
}
