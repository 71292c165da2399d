//! The request-level store calls: what one `Begin`, `Resend`, `Enroll` or
//! `Verify` asks of the store, answered by one transaction each (a backup
//! code by two, around argon2), and the clock those transactions read.

use super::{LockState, SendDecision, SendRequest};
use crate::rules::challenge::{Ask, Step};
use crate::rules::lockout::Budget;
use smsotp_config::{Lockout, Mobile};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Where a store's calls (request-level and admin alike) take their `now`
/// from. `System`: PostgreSQL's `now()` inside the transaction (so every
/// host of a fleet measures windows on one clock, and a host's skew cannot
/// stretch a lockout or a budget), the host's clock for SQLite. `fixed`: a
/// time the tests set and advance.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    pub fn system() -> Clock {
        Clock(None)
    }

    pub fn fixed(at: i64) -> Clock {
        Clock(Some(Arc::new(AtomicI64::new(at))))
    }

    /// Moves a fixed clock (a system clock ignores it).
    pub fn advance(&self, secs: i64) {
        if let Some(t) = &self.0 {
            t.fetch_add(secs, Ordering::SeqCst);
        }
    }

    /// The fixed time, if this clock is one.
    pub fn fixed_now(&self) -> Option<i64> {
        self.0.as_ref().map(|t| t.load(Ordering::SeqCst))
    }

    /// The fixed time, else the host's.
    pub fn host_now(&self) -> i64 {
        self.fixed_now().unwrap_or_else(super::unix_now)
    }
}

/// Where a challenge's number comes from.
#[derive(Debug, Clone, Copy)]
pub enum Number<'a> {
    /// Known before the store is asked: users.toml (or another directory),
    /// the number typed at enrolment, the challenge's own at a resend.
    Given(&'a Mobile),
    /// The number enrolled in the store, read in the transaction.
    Stored,
    /// The store's number if it has one, else this one (from a source the
    /// configuration ranks below enrolment, such as the directory).
    StoredElse(&'a Mobile),
    /// No number: no source has one, and the store's is not to be used.
    Absent,
}

impl Number<'_> {
    /// Whether the transaction reads the store's number.
    pub fn reads_store(&self) -> bool {
        matches!(self, Number::Stored | Number::StoredElse(_))
    }

    /// The number the challenge goes to, given the store's (`None` when
    /// it has none or was not read).
    pub fn resolve(&self, stored: Option<&Mobile>) -> Option<Mobile> {
        match self {
            Number::Given(m) => Some((*m).clone()),
            Number::Stored => stored.cloned(),
            Number::StoredElse(m) => Some(stored.unwrap_or(m).clone()),
            Number::Absent => None,
        }
    }
}

/// [`Number`] owned, for a job that moves to another thread.
#[derive(Debug, Clone)]
pub struct OwnedNumber {
    pub reads_store: bool,
    /// Used instead of the store's (`!reads_store`) or when it has none.
    pub other: Option<Mobile>,
}

impl From<Number<'_>> for OwnedNumber {
    fn from(n: Number<'_>) -> OwnedNumber {
        OwnedNumber {
            reads_store: n.reads_store(),
            other: n.resolve(None),
        }
    }
}

impl OwnedNumber {
    pub fn resolve(&self, stored: Option<Mobile>) -> Option<Mobile> {
        match (self.reads_store, stored) {
            (true, Some(m)) => Some(m),
            _ => self.other.clone(),
        }
    }
}

/// A request that may text a code.
pub struct ChallengeQuery<'a> {
    /// The grace context and length in seconds, when a recent success may
    /// skip the code.
    pub grace: Option<(&'a str, u64)>,
    /// Whether an opt-out skips the code.
    pub opt_out_counts: bool,
    pub number: Number<'a>,
    /// Whether backup codes may complete this login (read the count and
    /// their lock).
    pub backup_counts: bool,
    /// Reserve a send even without a number (an unknown user's fake
    /// challenge pays the budgets too).
    pub send_without_number: bool,
    /// Reserve the send when the decision is to send (false: only look,
    /// after a guess locked).
    pub reserve: bool,
    /// Whether the number may be told of a lockout (not a typed one).
    pub notice: bool,
    /// The user, the budgets and the kind of send.
    pub send: SendRequest<'a>,
}

impl<'a> ChallengeQuery<'a> {
    /// What the decision weighs.
    pub fn ask(&self) -> Ask {
        Ask {
            grace: self.grace.map(|(_, secs)| secs),
            opt_out_counts: self.opt_out_counts,
            send_without_number: self.send_without_number,
            notice: self.notice,
        }
    }

    /// A send to a number known beforehand that proves nothing yet (one
    /// typed at enrolment, a step-up code's): no exemption, no backup
    /// codes, no lockout notice to it.
    pub fn send_to(number: &'a Mobile, send: SendRequest<'a>) -> ChallengeQuery<'a> {
        ChallengeQuery {
            grace: None,
            opt_out_counts: false,
            number: Number::Given(number),
            backup_counts: false,
            send_without_number: false,
            reserve: true,
            notice: false,
            send,
        }
    }
}

/// What the transaction found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeOutcome {
    /// The store's time of the transaction.
    pub now: i64,
    pub step: Step,
    /// The number enrolled in the store, for [`Number::Stored`].
    pub stored: Option<Mobile>,
    /// Unused backup codes (0 unless `backup_counts`).
    pub backup_left: u32,
    /// When the backup-code lock ends, if locked (only with `backup_counts`).
    pub backup_locked_until: Option<i64>,
    /// The reservation, for [`Step::Send`] and a sending
    /// [`Step::NoNumber`]: recorded if allowed.
    pub send: Option<SendDecision>,
}

/// A guess at an SMS code, its verdict already known to the daemon (the
/// in-memory check costs microseconds); the store charges it, settles it
/// and stamps the success, all in one transaction, and the verdict only
/// counts if the charge was granted.
pub struct GuessQuery<'a> {
    pub user: &'a str,
    pub lockout: &'a Lockout,
    pub right: bool,
    /// The grace context to stamp if right.
    pub grace: Option<&'a str>,
    /// A number typed at enrolment, stored if right and the user still
    /// has none (never over one the admin set meanwhile).
    pub enrol: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guess {
    /// No guess now: the budget is spent. Nothing was judged.
    Locked { now: i64, until: i64 },
    /// Charged and judged. `lock`: the SMS lock state after it (a wrong
    /// guess may have used the last of the budget). `enrolled`: whether
    /// the typed number was stored (`None` when none was asked).
    Judged {
        now: i64,
        lock: LockState,
        enrolled: Option<bool>,
    },
}

/// The first half of a backup-code guess: charge it and fetch the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupCharge {
    Locked {
        now: i64,
        until: i64,
    },
    /// `hash`: the unused code's argon2 hash, if there is one.
    Granted {
        hash: Option<String>,
    },
}

/// The second half, after argon2 ran outside any transaction.
pub struct BackupSettle<'a> {
    pub user: &'a str,
    pub id: &'a str,
    pub lockout: &'a Lockout,
    /// Whether argon2 accepted the secret.
    pub matched: bool,
    pub grace: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSettled {
    pub now: i64,
    /// This caller spent the code (exactly one of concurrent users does).
    pub spent: bool,
    pub left: u32,
    /// When the backup-code lock ends, if this settled guess left it locked.
    pub locked_until: Option<i64>,
}

impl Budget {
    /// The counter table of this budget, for both backends (PostgreSQL
    /// prefixes its schema).
    pub(super) fn table(self) -> &'static str {
        match self {
            Budget::Sms => "failures",
            Budget::Backup => "backup_failures",
        }
    }
}
