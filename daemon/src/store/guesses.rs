//! The SQLite side of the guess budgets: one row of counters per user and
//! budget, read, changed by [`crate::rules::lockout`] and written back in
//! one IMMEDIATE transaction, so concurrent sessions cannot get more
//! guesses than the budget between them.

use super::Attempt;
use crate::rules::lockout::{self, Budget, Counter};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use smsotp_config::Lockout;

fn table(budget: Budget) -> &'static str {
    match budget {
        Budget::Sms => "failures",
        Budget::Backup => "backup_failures",
    }
}

fn load(tx: &Transaction<'_>, budget: Budget, user: &str, now: i64) -> rusqlite::Result<Counter> {
    let sql = format!(
        "SELECT failures, window_start, locked_until, lockouts FROM {} WHERE user = ?1",
        table(budget)
    );
    let row = tx
        .query_row(&sql, [user], |r| {
            Ok(Counter {
                failures: r.get(0)?,
                window_start: r.get(1)?,
                locked_until: r.get(2)?,
                lockouts: r.get(3)?,
            })
        })
        .optional()?;
    Ok(row.unwrap_or(Counter {
        window_start: now,
        ..Counter::default()
    }))
}

fn save(tx: &Transaction<'_>, budget: Budget, user: &str, c: &Counter) -> rusqlite::Result<()> {
    let sql = format!(
        "INSERT INTO {}(user, failures, window_start, locked_until, lockouts) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(user) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start,
             locked_until = excluded.locked_until, lockouts = excluded.lockouts",
        table(budget)
    );
    tx.execute(
        &sql,
        params![user, c.failures, c.window_start, c.locked_until, c.lockouts],
    )
    .map(|_| ())
}

pub(super) fn charge(
    c: &mut Connection,
    budget: Budget,
    user: &str,
    now: i64,
    l: &Lockout,
) -> rusqlite::Result<Attempt> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let counter = load(&tx, budget, user, now)?;
    let (attempt, next) = super::charged(lockout::charge(budget, l, counter, now));
    if let Some(next) = next {
        save(&tx, budget, user, &next)?;
    }
    tx.commit()?;
    Ok(attempt)
}

pub(super) fn judge(
    c: &mut Connection,
    budget: Budget,
    user: &str,
    right: bool,
    now: i64,
    l: &Lockout,
) -> rusqlite::Result<()> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let counter = load(&tx, budget, user, now)?;
    if let Some(next) = lockout::judge(budget, l, counter, right, now) {
        save(&tx, budget, user, &next)?;
    }
    tx.commit()
}

/// When the budget's lock ends, if it is locked at `now`.
pub(super) fn locked_until(
    c: &Connection,
    budget: Budget,
    user: &str,
    now: i64,
) -> rusqlite::Result<Option<i64>> {
    let sql = format!("SELECT locked_until FROM {} WHERE user = ?1", table(budget));
    let until: Option<i64> = c.query_row(&sql, [user], |r| r.get(0)).optional()?;
    Ok(until.filter(|u| *u > now))
}

/// Claims the notice for the current lockout of SMS codes: the end of the
/// lock for the one caller that gets to tell the user, `None` for every
/// other (and when nothing is locked). A conditional UPDATE, so two
/// sessions that see the same lock cannot both send.
pub(super) fn claim_lock_notice(
    c: &Connection,
    user: &str,
    now: i64,
) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        "UPDATE failures SET notified_until = locked_until
         WHERE user = ?1 AND locked_until > ?2 AND notified_until <> locked_until
         RETURNING locked_until",
        params![user, now],
        |r| r.get(0),
    )
    .optional()
}
