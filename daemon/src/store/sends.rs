//! The send log's side of the send budgets, shared by the backends: one
//! query reads the hour of sends every budget needs, [`crate::rules::send`]
//! decides, and the caller records the send in the same transaction.
//! The SQL is written once, with PostgreSQL's `$N` parameters; SQLite
//! gets the same text with `?N`, which it numbers the same way.

use super::{SendDecision, SendKind};
use crate::rules::send::{History, Refused, Window};

/// `$1` = start of the window (exclusive), `$2` = user, `$3` = rhost or
/// NULL. Nine columns: (count, oldest) for user, rhost, all, the user's
/// resends, then the user's latest send.
pub(super) fn history_sql(table: &str, user: &str, param: char) -> String {
    let sql = format!(
        "SELECT COUNT(*) FILTER (WHERE {user} = $2), MIN(at) FILTER (WHERE {user} = $2),
                COUNT(*) FILTER (WHERE rhost = $3), MIN(at) FILTER (WHERE rhost = $3),
                COUNT(*), MIN(at),
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
