//! The send log's side of the send budgets, shared by the backends: one
//! query reads the hour of sends every budget needs, [`crate::rules::send`]
//! decides, and the caller records the send in the same transaction.
//! The SQL is written once, with PostgreSQL's `$N` parameters; SQLite
//! gets the same text with `?N`, which it numbers the same way.

use super::{SendDecision, SendKind, SendRequest};
use crate::rules::send::{History, Refused, Window};
use smsotp_config::{GlobalScope, Resend, SendBudget};

/// `$1` = start of the window (exclusive), `$2` = user, `$3` = rhost or
/// NULL, `$4` = the host whose sends the global budget counts, or NULL for
/// the whole fleet. Nine columns: (count, oldest) for user, rhost, global,
/// the user's resends, then the user's latest send.
pub(super) fn history_sql(table: &str, user: &str, param: char) -> String {
    let sql = format!(
        "SELECT COUNT(*) FILTER (WHERE {user} = $2), MIN(at) FILTER (WHERE {user} = $2),
                COUNT(*) FILTER (WHERE rhost = $3), MIN(at) FILTER (WHERE rhost = $3),
                COUNT(*) FILTER (WHERE CAST($4 AS TEXT) IS NULL OR host = $4),
                MIN(at) FILTER (WHERE CAST($4 AS TEXT) IS NULL OR host = $4),
                COUNT(*) FILTER (WHERE {user} = $2 AND kind = 'resend'),
                MIN(at) FILTER (WHERE {user} = $2 AND kind = 'resend'),
                MAX(at) FILTER (WHERE {user} = $2)
         FROM {table} WHERE at > $1"
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
    let w = |count, oldest| Window { count, oldest };
    History {
        user: w(u, uo),
        rhost: has_rhost.then(|| w(r, ro)),
        global: w(g, go),
        user_resends: w(rs, rso),
        user_last: last,
    }
}

pub(super) fn kind_name(kind: SendKind) -> &'static str {
    match kind {
        SendKind::First => "first",
        SendKind::Resend => "resend",
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
}

/// The statement that records an allowed send (`?N` for SQLite).
pub(super) fn insert_sql(table: &str, user: &str, param: char) -> String {
    format!("INSERT INTO {table}(at, {user}, rhost, kind, host) VALUES ($1, $2, $3, $4, $5)")
        .replace('$', &param.to_string())
}
