//! The send budgets' side of the store, shared by the backends: one
//! query reads what every budget needs, [`crate::rules::send`] decides,
//! and the caller records the send in the same transaction.
//!
//! Sends are counted per minute, not logged one row each: a row per
//! (scope, who, minute) holds how many went out and the latest. A budget
//! then reads at most 61 rows whatever the traffic, where a send log made
//! every `Begin` scan the whole hour of sends (the global budget counts
//! every user's). The price is granularity: a send counts for the minute
//! it fell in and the 60 after, so a budget's hour is 60 to 61 minutes,
//! never less (the oldest minute leaves the window whole). The cooldown
//! stays exact (the latest send's second is kept).
//!
//! The SQL is written once, with PostgreSQL's `$N` parameters; SQLite gets
//! the same text with `?N`, which it numbers the same way.

use super::{SendDecision, SendKind, SendRequest};
use crate::rules::send::{History, Refused, Window, HOUR};
use smsotp_config::{GlobalScope, Resend, SendBudget};

/// The counting unit of the send budgets.
pub(super) const MINUTE: i64 = 60;

/// The first minute a budget at `now` still counts: the one that holds
/// `now - HOUR`, whole.
pub(super) fn first_minute(now: i64) -> i64 {
    (now - HOUR).div_euclid(MINUTE)
}

/// The scopes of the counters, one per kind of budget.
const SCOPES: [&str; 4] = ["user", "resend", "rhost", "host"];

/// `$1` = the first minute counted, `$2` = user, `$3` = rhost or NULL,
/// `$4` = the host whose sends the global budget counts, or NULL for the
/// whole fleet. Nine columns: (count, first minute) for user, rhost,
/// global, the user's resends, then the user's latest send.
pub(super) fn history_sql(table: &str, param: char) -> String {
    let of = |scope: &str, who: &str| {
        format!("FROM {table} WHERE scope = '{scope}' AND {who} AND minute >= $1")
    };
    let (user, rhost) = (of("user", "who = $2"), of("rhost", "who = $3"));
    let global = of("host", "(CAST($4 AS TEXT) IS NULL OR who = $4)");
    let resends = of("resend", "who = $2");
    let sql = format!(
        "SELECT (SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) {user}), (SELECT MIN(minute) {user}),
                (SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) {rhost}), (SELECT MIN(minute) {rhost}),
                (SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) {global}), (SELECT MIN(minute) {global}),
                (SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) {resends}), (SELECT MIN(minute) {resends}),
                (SELECT MAX(last_at) {user})"
    );
    sql.replace('$', &param.to_string())
}

/// One row of [`history_sql`], in column order.
pub(super) type Row = (
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    Option<i64>,
);

pub(super) fn history(row: Row, has_rhost: bool) -> History {
    let (u, uo, r, ro, g, go, rs, rso, last) = row;
    // A minute's sends leave the window together, when the minute after
    // it ends an hour later: for the rules that is their "oldest" + HOUR.
    let w = |count, first: Option<i64>| Window {
        count,
        oldest: first.map(|m| (m + 1) * MINUTE),
    };
    History {
        user: w(u, uo),
        rhost: has_rhost.then(|| w(r, ro)),
        global: w(g, go),
        user_resends: w(rs, rso),
        user_last: last,
    }
}

pub(super) fn refused(r: Refused) -> SendDecision {
    SendDecision::Refused {
        reason: r.refusal.reason().into(),
        retry_after: r.retry_after,
    }
}

/// A [`SendRequest`] owned, to move into a store thread or job.
#[derive(Debug, Clone)]
pub(super) struct OwnedSend {
    pub user: String,
    pub rhost: Option<String>,
    pub host: String,
    pub kind: SendKind,
    pub budget: SendBudget,
    pub resend: Resend,
}

impl OwnedSend {
    pub fn new(r: &SendRequest<'_>) -> OwnedSend {
        OwnedSend {
            user: r.user.to_string(),
            rhost: r.rhost.map(str::to_string),
            host: r.host.to_string(),
            kind: r.kind,
            budget: r.budget.clone(),
            resend: *r.resend,
        }
    }

    /// `$4` of [`history_sql`]: whose sends the global budget counts.
    pub fn global_host(&self) -> Option<&str> {
        match self.budget.global_scope {
            GlobalScope::Host => Some(&self.host),
            GlobalScope::Fleet => None,
        }
    }

    /// `$4` of [`record_sql`]: the user when this is a resend.
    pub fn resend_who(&self) -> Option<&str> {
        (self.kind == SendKind::Resend).then_some(self.user.as_str())
    }
}

/// The statement that counts an allowed send in every scope it belongs
/// to: `$1` = its minute, `$2` = its time, then who it counts for in the
/// order of [`SCOPES`] (`$3` user, `$4` the user again if a resend else
/// NULL, `$5` rhost or NULL, `$6` host). `bare` is the table's name
/// without a schema, as the update must name it.
pub(super) fn record_sql(table: &str, bare: &str, param: char) -> String {
    let rows = SCOPES
        .iter()
        .enumerate()
        .map(|(i, scope)| format!("('{scope}', CAST(${} AS TEXT))", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {table}(scope, who, minute, n, last_at)
         SELECT column1, column2, $1, 1, $2 FROM (VALUES {rows}) AS v WHERE column2 IS NOT NULL
         ON CONFLICT (scope, who, minute) DO UPDATE SET n = {bare}.n + 1,
             last_at = CASE WHEN excluded.last_at > {bare}.last_at
                            THEN excluded.last_at ELSE {bare}.last_at END"
    )
    .replace('$', &param.to_string())
}

/// Minutes no budget counts any more leave through here, once a minute
/// per store handle ([`Pruned`]), so the table holds about 61 minutes of
/// each scope and who.
pub(super) fn prune_sql(table: &str, param: char) -> String {
    format!("DELETE FROM {table} WHERE minute < $1").replace('$', &param.to_string())
}

/// The first minute a handle last pruned below. Pruning is housekeeping,
/// never correctness (the budgets read only the minutes they count), so a
/// prune rolled back with its transaction just waits for the next minute.
#[derive(Debug, Default)]
pub(super) struct Pruned(std::sync::atomic::AtomicI64);

impl Pruned {
    /// Whether a send whose window starts at `first` should prune: the
    /// first such send of each minute on this handle.
    pub fn due(&self, first: i64) -> bool {
        self.0
            .fetch_max(first, std::sync::atomic::Ordering::Relaxed)
            < first
    }
}

/// PostgreSQL's turns between sends that share a budget (SQLite's writers
/// already take turns): a transaction-scoped advisory lock per user, per
/// rhost and per host, one class id per scope so that a transaction holds
/// at most one key of each class and takes them in one order (no
/// deadlock). A fleet-wide global budget takes the fleet's lock
/// exclusively; a per-host one shares it, so the two never count past
/// each other when hosts of one fleet differ in `global_scope`.
pub(super) const LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(1936553780, $1)::text,
    CASE WHEN CAST($2 AS INTEGER) IS NOT NULL THEN pg_advisory_xact_lock(1936553781, $2)::text END,
    CASE WHEN $3 THEN pg_advisory_xact_lock(1936553782, 0)::text
         ELSE pg_advisory_xact_lock_shared(1936553782, 0)::text END,
    CASE WHEN CAST($4 AS INTEGER) IS NOT NULL THEN pg_advisory_xact_lock(1936553783, $4)::text END";

/// The keys of [`LOCK_SQL`]: `user`, `rhost` (if any), whether the global
/// budget is the fleet's, else this `host`'s key.
pub(super) struct LockKeys {
    pub user: i32,
    pub rhost: Option<i32>,
    pub fleet: bool,
    pub host: Option<i32>,
}

impl LockKeys {
    pub fn of(s: &OwnedSend) -> LockKeys {
        let host = s.global_host().map(key);
        LockKeys {
            user: key(&s.user),
            rhost: s.rhost.as_deref().map(key),
            fleet: host.is_none(),
            host,
        }
    }
}

/// A name's advisory-lock key: the same on every host (a collision only
/// makes two names take turns).
fn key(name: &str) -> i32 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(name.as_bytes());
    i32::from_be_bytes([d[0], d[1], d[2], d[3]])
}
