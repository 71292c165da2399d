//! Durable state behind one trait: enrolled numbers, backup-code hashes,
//! failure and lockout counters, send budgets, opt-outs, grace stamps.
//!
//! Callers see only this trait: SQLite for one host, PostgreSQL for a
//! fleet (one backup code spent on one host is spent on all). A login
//! request is one call and one transaction ([`Store::challenge`],
//! [`Store::guess`]; a backup code two); the per-call methods serve admin
//! requests. Times are Unix seconds: these records outlive the process,
//! so the monotonic clock cannot serve. Every call takes them from the
//! store's [`Clock`] (PostgreSQL's `now()` for a fleet, the host's for
//! SQLite), never from its caller, so `smsotpctl status` judges a lock on
//! the clock the login judged it on.

pub mod copy;
mod guesses;
mod pg_connect;
mod pg_requests;
mod pg_schema;
mod postgres;
mod request;
mod schema;
mod sends;
mod sqlite;
mod sqlite_requests;

pub use postgres::PostgresStore;
pub use request::*;
pub use sqlite::SqliteStore;

use crate::rules::lockout::{Charge, Counter};
use async_trait::async_trait;
use smsotp_config::{Lockout, Resend, SendBudget, StoreBackend, StoreConfig};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {path}: {message}")]
    Backend { path: String, message: String },
}

/// Whether a guess may be checked (the backends' charge of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Granted,
    /// Locked, or the budget of the window is used up by guesses still in
    /// flight. `until` is when guessing may resume.
    Locked {
        until: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendKind {
    First,
    Resend,
}

/// Whether an SMS may go out now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    Allowed,
    Refused {
        reason: String,
        retry_after: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockState {
    pub locked_until: Option<i64>,
    pub failures: u32,
    pub lockouts: u32,
}

/// [`Store::lock_state`]: the lock and the store's time it was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockStatus {
    pub now: i64,
    pub lock: LockState,
}

/// What a send is checked against.
#[derive(Clone, Copy)]
pub struct SendRequest<'a> {
    pub user: &'a str,
    pub rhost: Option<&'a str>,
    /// This daemon's host name: every send is recorded with it, and with
    /// `global_scope = "host"` the global budget counts only its own.
    pub host: &'a str,
    pub kind: SendKind,
    pub budget: &'a SendBudget,
    pub resend: &'a Resend,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// `Begin`, `Resend` and `Enroll` in one transaction: reads what the
    /// query asks (grace stamp, opt-out, the SMS lock, the stored number,
    /// backup codes), decides with [`crate::rules::challenge`], claims the
    /// lockout notice or reserves the send as decided, commits.
    async fn challenge(&self, q: ChallengeQuery<'_>) -> Result<ChallengeOutcome, StoreError>;
    /// A guess at an SMS code in one transaction: charge, settle (clear,
    /// or lock with escalation), stamp the success and store an enrolled
    /// number if right, and the lock state after.
    async fn guess(&self, q: GuessQuery<'_>) -> Result<Guess, StoreError>;
    /// A backup-code guess, first transaction: charge it to the backup
    /// budget and fetch the code's hash. argon2 then runs outside any
    /// transaction (tens of ms that would serialise every login on SQLite).
    async fn backup_charge(
        &self,
        user: &str,
        id: &str,
        lockout: &Lockout,
    ) -> Result<BackupCharge, StoreError>;
    /// Second transaction: spend the code if argon2 matched (one winner
    /// among concurrent users), settle the guess, count the codes left,
    /// stamp the success.
    async fn backup_settle(&self, q: BackupSettle<'_>) -> Result<BackupSettled, StoreError>;

    /// A number enrolled at login or set by the admin.
    async fn mobile(&self, user: &str) -> Result<Option<String>, StoreError>;
    async fn set_mobile(&self, user: &str, e164: &str) -> Result<(), StoreError>;
    /// Forgets everything about the user. True if anything was stored.
    async fn remove_user(&self, user: &str) -> Result<bool, StoreError>;

    /// The SMS lock as of the store's time, which `smsotpctl status`
    /// counts the rest of the lock from.
    async fn lock_state(&self, user: &str) -> Result<LockStatus, StoreError>;
    /// Lifts a lockout and clears counters. True if there was anything to clear.
    async fn unlock(&self, user: &str) -> Result<bool, StoreError>;

    /// Replaces the user's backup codes with `(id, argon2 PHC hash)` pairs.
    async fn replace_backup_codes(
        &self,
        user: &str,
        codes: Vec<(String, String)>,
    ) -> Result<(), StoreError>;
    async fn backup_codes_left(&self, user: &str) -> Result<u32, StoreError>;

    async fn set_opt_out(&self, user: &str, opted_out: bool) -> Result<(), StoreError>;
    async fn opted_out(&self, user: &str) -> Result<bool, StoreError>;
}

/// Opens the configured backend: the SQLite file, or PostgreSQL (which it
/// reaches and migrates before the daemon serves anything).
pub async fn open(cfg: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match &cfg.backend {
        StoreBackend::Sqlite => Arc::new(SqliteStore::open(cfg)?),
        StoreBackend::Postgres(pg) => {
            Arc::new(PostgresStore::open(pg).await?.with_timeout(cfg.timeout))
        }
    })
}

/// Every table with per-user rows, for [`Store::remove_user`].
const USER_TABLES: [&str; 6] = [
    "mobiles",
    "failures",
    "backup_failures",
    "backup_codes",
    "opt_outs",
    "successes",
];

/// What a charge means for the caller, and the counter to store if any.
fn charged(c: Charge) -> (Attempt, Option<Counter>) {
    match c {
        Charge::Granted(next) => (Attempt::Granted, Some(next)),
        Charge::Locked { until, set } => (Attempt::Locked { until }, set),
    }
}

impl LockState {
    /// From a `failures` row as stored (`locked_until` kept after it ends).
    fn from_row(failures: i64, locked_until: i64, lockouts: i64, now: i64) -> LockState {
        LockState {
            locked_until: (locked_until > now).then_some(locked_until),
            failures: failures.clamp(0, i64::from(u32::MAX)) as u32,
            lockouts: lockouts.clamp(0, i64::from(u32::MAX)) as u32,
        }
    }
}

/// Seconds since the epoch, for durable records: the host's time of a
/// system [`Clock`].
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
