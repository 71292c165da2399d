//! The embedded store: one SQLite file in WAL mode. Every change is one
//! transaction; a commit that returned is in the WAL, so `kill -9` at any
//! instant loses no committed change and never leaves a half-written
//! record (`sync = "full"` also survives a power cut).
//!
//! rusqlite is blocking: one thread of the store's own owns the
//! connection and runs jobs sent over a channel, one after the other (so
//! every read-modify-write below is atomic, and statements stay prepared
//! in the connection's cache), answering over a oneshot: one hand-off per
//! request instead of a trip through tokio's blocking pool per call. Each
//! request has a deadline (`[store] timeout_seconds`).

use super::sends::{OwnedSend, Pruned};
use super::sqlite_requests::{self as req, ChallengeJob, GuessJob};
use super::*;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use smsotp_config::{Mobile, StoreConfig, StoreSync};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    path: Arc<PathBuf>,
    clock: Clock,
    timeout: Duration,
    /// Jobs handed to the thread, each at most one transaction: what a
    /// request costs, for tests and measurements.
    requests: Arc<AtomicU64>,
    pruned: Arc<Pruned>,
}

fn err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl SqliteStore {
    /// Opens (creating if needed, mode 0600 in a 0700 directory) and
    /// migrates the store, and starts its thread.
    pub fn open(cfg: &StoreConfig) -> Result<SqliteStore, StoreError> {
        let path = cfg.path.clone();
        if let Some(dir) = path.parent() {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| err(&path, format!("cannot create {}: {e}", dir.display())))?;
            }
        }
        // Whoever could change the database or its directory could reset
        // lockouts or add backup codes; refuse before SQLite touches it.
        smsotp_config::perms::check(&path, smsotp_config::perms::Role::Store)
            .map_err(|e| err(&path, e))?;
        let conn = Connection::open(&path).map_err(|e| err(&path, e))?;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| err(&path, e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| err(&path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(err(
                &path,
                format!("cannot switch to WAL mode (got {mode})"),
            ));
        }
        let sync = match cfg.sync {
            StoreSync::Normal => "NORMAL",
            StoreSync::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(|e| err(&path, e))?;
        migrate(&conn).map_err(|e| err(&path, e))?;
        // Room for every statement of this file, so none is re-parsed.
        conn.set_prepared_statement_cache_capacity(64);
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("smsotp-store".into())
            .spawn(move || serve(conn, rx))
            .map_err(|e| err(&path, format!("cannot start the store thread: {e}")))?;
        Ok(SqliteStore {
            jobs,
            path: Arc::new(path),
            clock: Clock::system(),
            timeout: cfg.timeout,
            requests: Arc::default(),
            pruned: Arc::default(),
        })
    }

    /// The clock of every call (tests fix and move it).
    pub fn with_clock(mut self, clock: Clock) -> SqliteStore {
        self.clock = clock;
        self
    }

    /// Store requests made so far (one hand-off to the thread each).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Runs `f` on the store thread and waits for its answer, at most the
    /// request deadline. A job that misses it still runs to its end on the
    /// thread (its transaction commits or rolls back whole); the caller
    /// has already denied.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |c| {
            let _ = tx.send(f(c));
        });
        self.jobs
            .send(job)
            .map_err(|_| err(&self.path, "the store thread has stopped"))?;
        match tokio::time::timeout(self.timeout, rx).await {
            Err(_) => Err(err(
                &self.path,
                format!("no answer within {} s", self.timeout.as_secs()),
            )),
            Ok(Err(_)) => Err(err(&self.path, "store task failed")),
            Ok(Ok(r)) => r.map_err(|e| err(&self.path, e)),
        }
    }

    /// [`run`](Self::run) with the store's time, read on the thread as
    /// the job starts.
    async fn at<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, i64) -> rusqlite::Result<T> + Send + 'static,
    {
        let clock = self.clock.clone();
        self.run(move |c| f(c, clock.host_now())).await
    }

    /// [`at`](Self::at) inside one IMMEDIATE transaction: committed if
    /// `f` succeeds, rolled back otherwise.
    async fn tx<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, i64) -> rusqlite::Result<T> + Send + 'static,
    {
        self.at(move |c, now| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx, now)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }
}

/// The store thread: jobs in order until every handle is dropped. A
/// panicking job rolls its transaction back as it unwinds; the thread
/// carries on with the next.
fn serve(mut conn: Connection, jobs: mpsc::Receiver<Job>) {
    for job in jobs {
        let run = std::panic::AssertUnwindSafe(|| job(&mut conn));
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!(event = "store_error", "a store job panicked; rolled back");
        }
    }
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in schema::MIGRATIONS
        .iter()
        .enumerate()
        .skip(version.max(0) as usize)
    {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn challenge(&self, q: ChallengeQuery<'_>) -> Result<ChallengeOutcome, StoreError> {
        let job = ChallengeJob {
            user: q.send.user.to_string(),
            ask: q.ask(),
            grace: q.grace.map(|(ctx, _)| ctx.to_string()),
            number: q.number.into(),
            backup_counts: q.backup_counts,
            reserve: q.reserve,
            send: OwnedSend::new(&q.send),
            pruned: Arc::clone(&self.pruned),
        };
        let (done, now) = self
            .tx(move |c, now| Ok((req::challenge(c, &job, now)?, now)))
            .await?;
        Ok(ChallengeOutcome {
            now,
            step: done.step,
            stored: done.stored.and_then(|s| Mobile::parse(&s).ok()),
            backup_left: done.backup_left,
            backup_locked_until: done.backup_locked_until,
            send: done.send,
        })
    }

    async fn guess(&self, q: GuessQuery<'_>) -> Result<Guess, StoreError> {
        let job = GuessJob {
            user: q.user.to_string(),
            lockout: *q.lockout,
            right: q.right,
            grace: q.grace.map(str::to_string),
            enrol: q.enrol.map(str::to_string),
        };
        let (out, now) = self
            .tx(move |c, now| Ok((req::guess(c, &job, now)?, now)))
            .await?;
        Ok(match out {
            Err(until) => Guess::Locked { now, until },
            Ok((lock, enrolled)) => Guess::Judged {
                now,
                lock,
                enrolled,
            },
        })
    }

    async fn backup_charge(
        &self,
        user: &str,
        id: &str,
        lockout: &Lockout,
    ) -> Result<BackupCharge, StoreError> {
        let (user, id, l) = (user.to_string(), id.to_string(), *lockout);
        let (out, now) = self
            .tx(move |c, now| Ok((req::backup_charge(c, &user, &id, &l, now)?, now)))
            .await?;
        Ok(match out {
            Err(until) => BackupCharge::Locked { now, until },
            Ok(hash) => BackupCharge::Granted { hash },
        })
    }

    async fn backup_settle(&self, q: BackupSettle<'_>) -> Result<BackupSettled, StoreError> {
        let (user, id, l) = (q.user.to_string(), q.id.to_string(), *q.lockout);
        let (matched, grace) = (q.matched, q.grace.map(str::to_string));
        self.tx(move |c, now| {
            let (spent, left, locked_until) =
                req::backup_settle(c, &user, &id, &l, matched, grace.as_deref(), now)?;
            Ok(BackupSettled {
                now,
                spent,
                left,
                locked_until,
            })
        })
        .await
    }

    // The per-call methods below serve the admin requests: one job (and
    // at most one transaction) each.

    async fn mobile(&self, user: &str) -> Result<Option<String>, StoreError> {
        let user = user.to_string();
        self.run(move |c| req::stored_mobile(c, &user)).await
    }

    async fn set_mobile(&self, user: &str, e164: &str) -> Result<(), StoreError> {
        let (user, e164) = (user.to_string(), e164.to_string());
        self.at(move |c, now| {
            c.prepare_cached(
                "INSERT INTO mobiles(user, e164, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user) DO UPDATE SET e164 = excluded.e164, updated_at = excluded.updated_at",
            )?
            .execute(params![user, e164, now])
            .map(|_| ())
        })
        .await
    }

    async fn remove_user(&self, user: &str) -> Result<bool, StoreError> {
        let user = user.to_string();
        self.tx(move |c, _| {
            let mut n = 0;
            for table in USER_TABLES {
                n += c
                    .prepare_cached(&format!("DELETE FROM {table} WHERE user = ?1"))?
                    .execute([&user])?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn lock_state(&self, user: &str) -> Result<LockStatus, StoreError> {
        let user = user.to_string();
        self.at(move |c, now| {
            let row: Option<(i64, i64, i64)> = c
                .prepare_cached(
                    "SELECT failures, locked_until, lockouts FROM failures WHERE user = ?1",
                )?
                .query_row([&user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let lock = row.map_or_else(LockState::default, |(f, until, n)| {
                LockState::from_row(f, until, n, now)
            });
            Ok(LockStatus { now, lock })
        })
        .await
    }

    async fn unlock(&self, user: &str) -> Result<bool, StoreError> {
        let user = user.to_string();
        self.tx(move |c, _| {
            let mut n = c
                .prepare_cached("DELETE FROM failures WHERE user = ?1")?
                .execute([&user])?;
            n += c
                .prepare_cached("DELETE FROM backup_failures WHERE user = ?1")?
                .execute([&user])?;
            Ok(n > 0)
        })
        .await
    }

    async fn replace_backup_codes(
        &self,
        user: &str,
        codes: Vec<(String, String)>,
    ) -> Result<(), StoreError> {
        let user = user.to_string();
        self.tx(move |c, now| {
            c.prepare_cached("DELETE FROM backup_codes WHERE user = ?1")?
                .execute([&user])?;
            let mut insert = c.prepare_cached(
                "INSERT INTO backup_codes(user, id, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (id, hash) in &codes {
                insert.execute(params![user, id, hash, now])?;
            }
            Ok(())
        })
        .await
    }

    async fn backup_codes_left(&self, user: &str) -> Result<u32, StoreError> {
        let user = user.to_string();
        self.run(move |c| req::backup_left(c, &user)).await
    }

    async fn set_opt_out(&self, user: &str, opted_out: bool) -> Result<(), StoreError> {
        let user = user.to_string();
        self.at(move |c, now| {
            if opted_out {
                c.prepare_cached(
                    "INSERT INTO opt_outs(user, at) VALUES (?1, ?2) ON CONFLICT(user) DO NOTHING",
                )?
                .execute(params![user, now])?;
            } else {
                c.prepare_cached("DELETE FROM opt_outs WHERE user = ?1")?
                    .execute([user])?;
            }
            Ok(())
        })
        .await
    }

    async fn opted_out(&self, user: &str) -> Result<bool, StoreError> {
        let user = user.to_string();
        self.run(move |c| {
            c.prepare_cached("SELECT 1 FROM opt_outs WHERE user = ?1")?
                .query_row([user], |_| Ok(()))
                .optional()
                .map(|r| r.is_some())
        })
        .await
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
