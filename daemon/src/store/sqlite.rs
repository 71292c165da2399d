//! The embedded store: one SQLite file in WAL mode. Every change is one
//! transaction; a commit that returned is in the WAL, so `kill -9` at any
//! instant loses no committed change and never leaves a half-written
//! record (`sync = "full"` also survives a power cut).
//!
//! rusqlite is blocking: each call runs on tokio's blocking pool with the
//! one connection behind a mutex, which also serialises writers so every
//! read-modify-write below is atomic.

use super::*;
use super::{guesses, sends};
use crate::rules::lockout::Budget;
use crate::rules::send::{self, HOUR};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use smsotp_config::{StoreConfig, StoreSync};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
}

fn err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl SqliteStore {
    /// Opens (creating if needed, mode 0600 in a 0700 directory) and
    /// migrates the store.
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
        conn.busy_timeout(std::time::Duration::from_secs(5))
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
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path),
        })
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let path = Arc::clone(&self.path);
        let p2 = Arc::clone(&path);
        tokio::task::spawn_blocking(move || {
            // A panic inside a closure cannot leave a transaction half
            // applied (it rolls back on drop), so a poisoned lock is safe.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard).map_err(|e| err(&p2, e))
        })
        .await
        .map_err(|e| err(&path, format!("store task failed: {e}")))?
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
    async fn mobile(&self, user: &str) -> Result<Option<String>, StoreError> {
        let user = user.to_string();
        self.run(move |c| {
            c.query_row("SELECT e164 FROM mobiles WHERE user = ?1", [user], |r| {
                r.get(0)
            })
            .optional()
        })
        .await
    }

    async fn set_mobile(&self, user: &str, e164: &str, now: i64) -> Result<(), StoreError> {
        let (user, e164) = (user.to_string(), e164.to_string());
        self.run(move |c| {
            c.execute(
                "INSERT INTO mobiles(user, e164, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user) DO UPDATE SET e164 = excluded.e164, updated_at = excluded.updated_at",
                params![user, e164, now],
            )
            .map(|_| ())
        })
        .await
    }

    async fn add_mobile_if_none(
        &self,
        user: &str,
        e164: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (user, e164) = (user.to_string(), e164.to_string());
        self.run(move |c| {
            let n = c.execute(
                "INSERT INTO mobiles(user, e164, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user) DO NOTHING",
                params![user, e164, now],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn remove_user(&self, user: &str) -> Result<bool, StoreError> {
        let user = user.to_string();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut n = 0;
            for table in USER_TABLES {
                n += tx.execute(&format!("DELETE FROM {table} WHERE user = ?1"), [&user])?;
            }
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    async fn begin_attempt(
        &self,
        budget: Budget,
        user: &str,
        now: i64,
        lockout: &Lockout,
    ) -> Result<Attempt, StoreError> {
        let (user, lockout) = (user.to_string(), *lockout);
        self.run(move |c| guesses::charge(c, budget, &user, now, &lockout))
            .await
    }

    async fn finish_attempt(
        &self,
        budget: Budget,
        user: &str,
        right: bool,
        now: i64,
        lockout: &Lockout,
    ) -> Result<(), StoreError> {
        let (user, lockout) = (user.to_string(), *lockout);
        self.run(move |c| guesses::judge(c, budget, &user, right, now, &lockout))
            .await
    }

    async fn backup_locked_until(&self, user: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let user = user.to_string();
        self.run(move |c| guesses::locked_until(c, Budget::Backup, &user, now))
            .await
    }

    async fn claim_lock_notice(&self, user: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let user = user.to_string();
        self.run(move |c| guesses::claim_lock_notice(c, &user, now))
            .await
    }

    async fn lock_state(&self, user: &str, now: i64) -> Result<LockState, StoreError> {
        let user = user.to_string();
        self.run(move |c| {
            let row: Option<(i64, i64, i64)> = c
                .query_row(
                    "SELECT failures, locked_until, lockouts FROM failures WHERE user = ?1",
                    [&user],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            Ok(row.map_or_else(LockState::default, |(f, until, n)| {
                LockState::from_row(f, until, n, now)
            }))
        })
        .await
    }

    async fn unlock(&self, user: &str) -> Result<bool, StoreError> {
        let user = user.to_string();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut n = tx.execute("DELETE FROM failures WHERE user = ?1", [&user])?;
            n += tx.execute("DELETE FROM backup_failures WHERE user = ?1", [&user])?;
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    async fn reserve_send(
        &self,
        req: SendRequest<'_>,
        now: i64,
    ) -> Result<SendDecision, StoreError> {
        let user = req.user.to_string();
        let rhost = req.rhost.map(str::to_string);
        let kind = req.kind;
        let budget = req.budget.clone();
        let resend = *req.resend;
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let since = now - HOUR;
            // Old rows only ever leave through here, so the table stays an
            // hour deep.
            tx.execute("DELETE FROM sends WHERE at <= ?1", [since])?;
            let row: sends::Row = tx.query_row(
                &sends::history_sql("sends", "user", '?'),
                params![since, user, rhost],
                |r| {
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
                },
            )?;
            let history = sends::history(row, rhost.is_some());
            if let Err(r) = send::check(&history, kind == SendKind::Resend, &budget, &resend, now) {
                return Ok(sends::refused(r));
            }
            tx.execute(
                "INSERT INTO sends(at, user, rhost, kind) VALUES (?1, ?2, ?3, ?4)",
                params![now, user, rhost, sends::kind_name(kind)],
            )?;
            tx.commit()?;
            Ok(SendDecision::Allowed)
        })
        .await
    }

    async fn replace_backup_codes(
        &self,
        user: &str,
        codes: Vec<(String, String)>,
        now: i64,
    ) -> Result<(), StoreError> {
        let user = user.to_string();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM backup_codes WHERE user = ?1", [&user])?;
            for (id, hash) in &codes {
                tx.execute(
                    "INSERT INTO backup_codes(user, id, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![user, id, hash, now],
                )?;
            }
            tx.commit()
        })
        .await
    }

    async fn backup_code_hash(&self, user: &str, id: &str) -> Result<Option<String>, StoreError> {
        let (user, id) = (user.to_string(), id.to_string());
        self.run(move |c| {
            c.query_row(
                "SELECT hash FROM backup_codes WHERE user = ?1 AND id = ?2 AND used_at IS NULL",
                [user, id],
                |r| r.get(0),
            )
            .optional()
        })
        .await
    }

    async fn spend_backup_code(&self, user: &str, id: &str, now: i64) -> Result<bool, StoreError> {
        let (user, id) = (user.to_string(), id.to_string());
        self.run(move |c| {
            let n = c.execute(
                "UPDATE backup_codes SET used_at = ?3 WHERE user = ?1 AND id = ?2 AND used_at IS NULL",
                params![user, id, now],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn backup_codes_left(&self, user: &str) -> Result<u32, StoreError> {
        let user = user.to_string();
        self.run(move |c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM backup_codes WHERE user = ?1 AND used_at IS NULL",
                [user],
                |r| r.get(0),
            )?;
            Ok(n.clamp(0, i64::from(u32::MAX)) as u32)
        })
        .await
    }

    async fn set_opt_out(&self, user: &str, opted_out: bool, now: i64) -> Result<(), StoreError> {
        let user = user.to_string();
        self.run(move |c| {
            if opted_out {
                c.execute(
                    "INSERT INTO opt_outs(user, at) VALUES (?1, ?2) ON CONFLICT(user) DO NOTHING",
                    params![user, now],
                )?;
            } else {
                c.execute("DELETE FROM opt_outs WHERE user = ?1", [user])?;
            }
            Ok(())
        })
        .await
    }

    async fn opted_out(&self, user: &str) -> Result<bool, StoreError> {
        let user = user.to_string();
        self.run(move |c| {
            c.query_row("SELECT 1 FROM opt_outs WHERE user = ?1", [user], |_| Ok(()))
                .optional()
                .map(|r| r.is_some())
        })
        .await
    }

    async fn record_success(&self, user: &str, context: &str, now: i64) -> Result<(), StoreError> {
        let (user, context) = (user.to_string(), context.to_string());
        self.run(move |c| {
            c.execute(
                "INSERT INTO successes(user, context, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user, context) DO UPDATE SET at = excluded.at",
                params![user, context, now],
            )
            .map(|_| ())
        })
        .await
    }

    async fn last_success(&self, user: &str, context: &str) -> Result<Option<i64>, StoreError> {
        let (user, context) = (user.to_string(), context.to_string());
        self.run(move |c| {
            c.query_row(
                "SELECT at FROM successes WHERE user = ?1 AND context = ?2",
                [user, context],
                |r| r.get(0),
            )
            .optional()
        })
        .await
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
