//! The SQLite side of the guess budgets: one row of counters per user and
//! budget, read, changed by [`crate::rules::lockout`] and written back in
//! one IMMEDIATE transaction, so concurrent sessions cannot get more
//! guesses than the budget between them. Statements are prepared once per
//! connection (`prepare_cached`).

use super::Attempt;
use crate::rules::lockout::{self, Budget, Counter};
use rusqlite::{params, Connection, OptionalExtension};
use smsotp_config::Lockout;

fn load_sql(budget: Budget) -> &'static str {
    match budget {
        Budget::Sms => {
            "SELECT failures, window_start, locked_until, lockouts FROM failures WHERE user = ?1"
        }
        Budget::Backup => {
            "SELECT failures, window_start, locked_until, lockouts FROM backup_failures WHERE user = ?1"
        }
    }
}

fn save_sql(budget: Budget) -> &'static str {
    match budget {
        Budget::Sms => {
            "INSERT INTO failures(user, failures, window_start, locked_until, lockouts) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(user) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start,
                 locked_until = excluded.locked_until, lockouts = excluded.lockouts"
        }
        Budget::Backup => {
            "INSERT INTO backup_failures(user, failures, window_start, locked_until, lockouts) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(user) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start,
                 locked_until = excluded.locked_until, lockouts = excluded.lockouts"
        }
    }
}

/// The user's counter; a fresh one whose window starts `now` if none.
pub(super) fn load(
    c: &Connection,
    budget: Budget,
    user: &str,
    now: i64,
) -> rusqlite::Result<Counter> {
    let row = c
        .prepare_cached(load_sql(budget))?
        .query_row([user], |r| {
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

pub(super) fn save(
    c: &Connection,
    budget: Budget,
    user: &str,
    k: &Counter,
) -> rusqlite::Result<()> {
    c.prepare_cached(save_sql(budget))?
        .execute(params![
            user,
            k.failures,
            k.window_start,
            k.locked_until,
            k.lockouts
        ])
        .map(|_| ())
}

/// Charges a guess inside the caller's transaction.
pub(super) fn charge(
    c: &Connection,
    budget: Budget,
    user: &str,
    now: i64,
    l: &Lockout,
) -> rusqlite::Result<Attempt> {
    let counter = load(c, budget, user, now)?;
    let (attempt, next) = super::charged(lockout::charge(budget, l, counter, now));
    if let Some(next) = next {
        save(c, budget, user, &next)?;
    }
    Ok(attempt)
}

/// Settles a granted guess inside the caller's transaction; the counter
/// as it now stands.
pub(super) fn judge(
    c: &Connection,
    budget: Budget,
    user: &str,
    right: bool,
    now: i64,
    l: &Lockout,
) -> rusqlite::Result<Counter> {
    let counter = load(c, budget, user, now)?;
    match lockout::judge(budget, l, counter, right, now) {
        Some(next) => {
            save(c, budget, user, &next)?;
            Ok(next)
        }
        None => Ok(counter),
    }
}

/// When the backup-code lock ends, if it is locked at `now`.
pub(super) fn backup_locked_until(
    c: &Connection,
    user: &str,
    now: i64,
) -> rusqlite::Result<Option<i64>> {
    let until: Option<i64> = c
        .prepare_cached("SELECT locked_until FROM backup_failures WHERE user = ?1")?
        .query_row([user], |r| r.get(0))
        .optional()?;
    Ok(until.filter(|u| *u > now))
}

/// Records that the current lockout of SMS codes was told, inside the
/// transaction that read it unclaimed (so no other request can claim it).
pub(super) fn claim_lock_notice(c: &Connection, user: &str) -> rusqlite::Result<()> {
    c.prepare_cached("UPDATE failures SET notified_until = locked_until WHERE user = ?1")?
        .execute([user])
        .map(|_| ())
}
