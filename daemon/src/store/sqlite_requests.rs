//! The request-level calls on SQLite: each body runs inside one IMMEDIATE
//! transaction that its caller (the store thread's job) opens and
//! commits. They read, apply [`crate::rules`], and write; every statement
//! is prepared once per connection.

use super::sends::{self, OwnedSend, Pruned};
use super::{guesses, Attempt, LockState, OwnedNumber, SendDecision, SendKind};
use crate::rules::challenge::{self, Ask, Facts, Step};
use crate::rules::lockout::Budget;
use crate::rules::send;
use rusqlite::{params, Connection, OptionalExtension};
use smsotp_config::{Lockout, Mobile};
use std::sync::Arc;

/// What [`challenge`] needs, owned so it can move to the store thread.
pub(super) struct ChallengeJob {
    pub user: String,
    pub ask: Ask,
    /// The grace context, when `ask.grace`.
    pub grace: Option<String>,
    pub number: OwnedNumber,
    pub backup_counts: bool,
    pub reserve: bool,
    pub send: OwnedSend,
    pub pruned: Arc<Pruned>,
}

pub(super) fn stored_mobile(c: &Connection, user: &str) -> rusqlite::Result<Option<String>> {
    c.prepare_cached("SELECT e164 FROM mobiles WHERE user = ?1")?
        .query_row([user], |r| r.get(0))
        .optional()
}

pub(super) fn backup_left(c: &Connection, user: &str) -> rusqlite::Result<u32> {
    let n: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM backup_codes WHERE user = ?1 AND used_at IS NULL")?
        .query_row([user], |r| r.get(0))?;
    Ok(n.clamp(0, i64::from(u32::MAX)) as u32)
}

pub(super) fn stamp(c: &Connection, user: &str, context: &str, now: i64) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO successes(user, context, at) VALUES (?1, ?2, ?3)
         ON CONFLICT(user, context) DO UPDATE SET at = excluded.at",
    )?
    .execute(params![user, context, now])
    .map(|_| ())
}

pub(super) fn add_mobile_if_none(
    c: &Connection,
    user: &str,
    e164: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let n = c
        .prepare_cached(
            "INSERT INTO mobiles(user, e164, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(user) DO NOTHING",
        )?
        .execute(params![user, e164, now])?;
    Ok(n == 1)
}

/// Checks every send budget and counts the send if they allow it.
pub(super) fn reserve(
    c: &Connection,
    s: &OwnedSend,
    now: i64,
    pruned: &Pruned,
) -> rusqlite::Result<SendDecision> {
    let first = sends::first_minute(now);
    if pruned.due(first) {
        c.prepare_cached(&sends::prune_sql("send_counts", '?'))?
            .execute([first])?;
    }
    let row: sends::Row = c
        .prepare_cached(&sends::history_sql("send_counts", '?'))?
        .query_row(params![first, s.user, s.rhost, s.global_host()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })?;
    let history = sends::history(row, s.rhost.is_some());
    let resend = s.kind == SendKind::Resend;
    if let Err(r) = send::check(&history, resend, &s.budget, &s.resend, now) {
        return Ok(sends::refused(r));
    }
    c.prepare_cached(&sends::record_sql("send_counts", "send_counts", '?'))?
        .execute(params![
            now.div_euclid(sends::MINUTE),
            now,
            s.user,
            s.resend_who(),
            s.rhost,
            s.host
        ])?;
    Ok(SendDecision::Allowed)
}

/// What the transaction of a `Begin`, `Resend` or `Enroll` found and did.
pub(super) struct ChallengeDone {
    pub step: Step,
    pub stored: Option<String>,
    pub backup_left: u32,
    pub backup_locked_until: Option<i64>,
    pub send: Option<SendDecision>,
}

pub(super) fn challenge(
    c: &Connection,
    q: &ChallengeJob,
    now: i64,
) -> rusqlite::Result<ChallengeDone> {
    let user = q.user.as_str();
    let last_success = match &q.grace {
        Some(ctx) => c
            .prepare_cached("SELECT at FROM successes WHERE user = ?1 AND context = ?2")?
            .query_row([user, ctx.as_str()], |r| r.get(0))
            .optional()?,
        None => None,
    };
    let opted_out = q.ask.opt_out_counts
        && c.prepare_cached("SELECT 1 FROM opt_outs WHERE user = ?1")?
            .query_row([user], |_| Ok(()))
            .optional()?
            .is_some();
    let (locked_until, notified_until): (i64, i64) = c
        .prepare_cached("SELECT locked_until, notified_until FROM failures WHERE user = ?1")?
        .query_row([user], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, 0));
    let stored = match q.number.reads_store {
        true => stored_mobile(c, user)?,
        false => None,
    };
    let number = q
        .number
        .resolve(stored.as_deref().and_then(|s| Mobile::parse(s).ok()));
    let facts = Facts {
        last_success,
        opted_out,
        locked_until,
        notified_until,
        ..Facts::default()
    }
    .with_number(number.as_ref(), &q.send.budget);
    let step = challenge::decide(&q.ask, &facts, now);
    let (backup_left, backup_locked_until) = if q.backup_counts {
        (
            backup_left(c, user)?,
            guesses::backup_locked_until(c, user, now)?,
        )
    } else {
        (0, None)
    };
    let send = match step {
        Step::Locked { notify: true, .. } => {
            guesses::claim_lock_notice(c, user)?;
            None
        }
        Step::Send | Step::NoNumber { send: true } if q.reserve => {
            Some(reserve(c, &q.send, now, &q.pruned)?)
        }
        _ => None,
    };
    Ok(ChallengeDone {
        step,
        stored,
        backup_left,
        backup_locked_until,
        send,
    })
}

/// What [`guess`] needs, owned.
pub(super) struct GuessJob {
    pub user: String,
    pub lockout: Lockout,
    pub right: bool,
    pub grace: Option<String>,
    pub enrol: Option<String>,
}

/// `Err(until)` when the charge was refused.
pub(super) type Guessed = Result<(LockState, Option<bool>), i64>;

pub(super) fn guess(c: &Connection, q: &GuessJob, now: i64) -> rusqlite::Result<Guessed> {
    let user = q.user.as_str();
    if let Attempt::Locked { until } = guesses::charge(c, Budget::Sms, user, now, &q.lockout)? {
        return Ok(Err(until));
    }
    let after = guesses::judge(c, Budget::Sms, user, q.right, now, &q.lockout)?;
    let mut enrolled = None;
    if q.right {
        if let Some(e164) = &q.enrol {
            enrolled = Some(add_mobile_if_none(c, user, e164, now)?);
        }
        // A refused enrolment is no success to remember.
        if let (Some(ctx), None | Some(true)) = (&q.grace, enrolled) {
            stamp(c, user, ctx, now)?;
        }
    }
    Ok(Ok((
        LockState::from_row(after.failures, after.locked_until, after.lockouts, now),
        enrolled,
    )))
}

/// Charge a backup guess and fetch the hash: `Err(until)` when locked.
pub(super) fn backup_charge(
    c: &Connection,
    user: &str,
    id: &str,
    l: &Lockout,
    now: i64,
) -> rusqlite::Result<Result<Option<String>, i64>> {
    if let Attempt::Locked { until } = guesses::charge(c, Budget::Backup, user, now, l)? {
        return Ok(Err(until));
    }
    let hash = c
        .prepare_cached(
            "SELECT hash FROM backup_codes WHERE user = ?1 AND id = ?2 AND used_at IS NULL",
        )?
        .query_row([user, id], |r| r.get(0))
        .optional()?;
    Ok(Ok(hash))
}

/// Spend (if matched), settle, count, stamp: `(spent, left, locked_until)`.
pub(super) fn backup_settle(
    c: &Connection,
    user: &str,
    id: &str,
    l: &Lockout,
    matched: bool,
    grace: Option<&str>,
    now: i64,
) -> rusqlite::Result<(bool, u32, Option<i64>)> {
    let spent = matched
        && c.prepare_cached(
            "UPDATE backup_codes SET used_at = ?3 WHERE user = ?1 AND id = ?2 AND used_at IS NULL",
        )?
        .execute(params![user, id, now])?
            == 1;
    let after = guesses::judge(c, Budget::Backup, user, spent, now, l)?;
    let left = backup_left(c, user)?;
    if spent {
        if let Some(ctx) = grace {
            stamp(c, user, ctx, now)?;
        }
    }
    Ok((
        spent,
        left,
        (after.locked_until > now).then_some(after.locked_until),
    ))
}
