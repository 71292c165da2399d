//! The embedded store: one SQLite file in WAL mode. Every change is one
//! transaction; a commit that returned is in the WAL, so `kill -9` at any
//! instant loses no committed change and never leaves a half-written
//! record (`sync = "full"` also survives a power cut).
//!
//! rusqlite is blocking: each call runs on tokio's blocking pool with the
//! one connection behind a mutex, which also serialises writers so every
//! read-modify-write below is atomic.

use super::*;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use smsotp_config::{StoreConfig, StoreSync};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const HOUR: i64 = 3600;

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

    async fn remove_user(&self, user: &str) -> Result<bool, StoreError> {
        let user = user.to_string();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut n = 0;
            for table in [
                "mobiles",
                "failures",
                "backup_codes",
                "opt_outs",
                "successes",
            ] {
                n += tx.execute(&format!("DELETE FROM {table} WHERE user = ?1"), [&user])?;
            }
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    async fn begin_attempt(
        &self,
        user: &str,
        now: i64,
        lockout: &Lockout,
    ) -> Result<Attempt, StoreError> {
        let user = user.to_string();
        let lockout = *lockout;
        let (max, window) = (
            i64::from(lockout.max_failures),
            lockout.window.as_secs() as i64,
        );
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(i64, i64, i64, i64)> = tx
                .query_row(
                    "SELECT failures, window_start, locked_until, lockouts FROM failures WHERE user = ?1",
                    [&user],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let (mut failures, mut window_start, locked_until, lockouts) =
                row.unwrap_or((0, now, 0, 0));
            if locked_until > now {
                return Ok(Attempt::Locked { until: locked_until });
            }
            if window_start + window <= now {
                failures = 0;
                window_start = now;
            }
            if failures >= max {
                // The budget is spent and no lock was set: guesses still in
                // flight, or a crash between charging a guess and judging
                // it. Either way this is the lockout; setting it here (and
                // clearing the count, so the in-flight guesses do not lock
                // a second time) keeps the escalation and a crash from
                // shortening it.
                let nth = (lockouts + 1).clamp(1, i64::from(u32::MAX)) as u32;
                let until = now.saturating_add(lockout_length(&lockout, nth) as i64);
                tx.execute(
                    "UPDATE failures SET failures = 0, window_start = ?2, locked_until = ?3, lockouts = ?4 WHERE user = ?1",
                    params![user, now, until, i64::from(nth)],
                )?;
                tx.commit()?;
                return Ok(Attempt::Locked { until });
            }
            tx.execute(
                "INSERT INTO failures(user, failures, window_start) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start",
                params![user, failures + 1, window_start],
            )?;
            tx.commit()?;
            Ok(Attempt::Granted)
        })
        .await
    }

    async fn finish_attempt(
        &self,
        user: &str,
        right: bool,
        now: i64,
        lockout: &Lockout,
    ) -> Result<(), StoreError> {
        let user = user.to_string();
        let lockout = *lockout;
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if right {
                tx.execute("UPDATE failures SET failures = 0 WHERE user = ?1", [&user])?;
            } else {
                let row: Option<(i64, i64)> = tx
                    .query_row("SELECT failures, lockouts FROM failures WHERE user = ?1", [&user], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                if let Some((failures, lockouts)) = row {
                    if failures >= i64::from(lockout.max_failures) {
                        let nth = (lockouts + 1).clamp(1, i64::from(u32::MAX)) as u32;
                        let until = now.saturating_add(lockout_length(&lockout, nth) as i64);
                        tx.execute(
                            "UPDATE failures SET failures = 0, window_start = ?2, locked_until = ?3, lockouts = ?4 WHERE user = ?1",
                            params![user, now, until, i64::from(nth)],
                        )?;
                    }
                }
            }
            tx.commit()
        })
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
            Ok(match row {
                None => LockState::default(),
                Some((failures, locked_until, lockouts)) => LockState {
                    locked_until: (locked_until > now).then_some(locked_until),
                    failures: failures.clamp(0, i64::from(u32::MAX)) as u32,
                    lockouts: lockouts.clamp(0, i64::from(u32::MAX)) as u32,
                },
            })
        })
        .await
    }

    async fn unlock(&self, user: &str) -> Result<bool, StoreError> {
        let user = user.to_string();
        self.run(move |c| Ok(c.execute("DELETE FROM failures WHERE user = ?1", [&user])? > 0))
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
            let window = |sql: &str, key: Option<&str>| -> rusqlite::Result<(i64, Option<i64>)> {
                match key {
                    Some(k) => tx.query_row(sql, params![since, k], |r| Ok((r.get(0)?, r.get(1)?))),
                    None => tx.query_row(sql, params![since], |r| Ok((r.get(0)?, r.get(1)?))),
                }
            };
            let retry = |oldest: Option<i64>| oldest.map(|o| (o + HOUR - now).max(1) as u64);
            let (n, oldest) = window("SELECT COUNT(*), MIN(at) FROM sends WHERE at > ?1 AND user = ?2", Some(&user))?;
            if n >= i64::from(budget.per_user_per_hour) {
                return Ok(SendDecision::Refused {
                    reason: "this account has had too many codes sent in the last hour".into(),
                    retry_after: retry(oldest),
                });
            }
            if let Some(rh) = rhost.as_deref() {
                let (n, oldest) =
                    window("SELECT COUNT(*), MIN(at) FROM sends WHERE at > ?1 AND rhost = ?2", Some(rh))?;
                if n >= i64::from(budget.per_rhost_per_hour) {
                    return Ok(SendDecision::Refused {
                        reason: "too many codes were sent for logins from this address in the last hour".into(),
                        retry_after: retry(oldest),
                    });
                }
            }
            let (n, oldest) = window("SELECT COUNT(*), MIN(at) FROM sends WHERE at > ?1", None)?;
            if n >= i64::from(budget.global_per_hour) {
                return Ok(SendDecision::Refused {
                    reason: "the service has reached its hourly SMS limit".into(),
                    retry_after: retry(oldest),
                });
            }
            if kind == SendKind::Resend {
                let (n, oldest) = window(
                    "SELECT COUNT(*), MIN(at) FROM sends WHERE at > ?1 AND user = ?2 AND kind = 'resend'",
                    Some(&user),
                )?;
                if n >= i64::from(resend.per_user_per_hour) {
                    return Ok(SendDecision::Refused {
                        reason: "too many codes were resent for this account in the last hour".into(),
                        retry_after: retry(oldest),
                    });
                }
                let last: Option<i64> =
                    tx.query_row("SELECT MAX(at) FROM sends WHERE user = ?1", [&user], |r| r.get(0))?;
                let cooldown = resend.cooldown.as_secs() as i64;
                if let Some(last) = last {
                    if now < last + cooldown {
                        return Ok(SendDecision::Refused {
                            reason: "a code was sent moments ago".into(),
                            retry_after: Some((last + cooldown - now).max(1) as u64),
                        });
                    }
                }
            }
            let kind = match kind {
                SendKind::First => "first",
                SendKind::Resend => "resend",
            };
            tx.execute(
                "INSERT INTO sends(at, user, rhost, kind) VALUES (?1, ?2, ?3, ?4)",
                params![now, user, rhost, kind],
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
mod tests {
    use super::*;
    use std::time::Duration;

    fn open(dir: &Path) -> SqliteStore {
        SqliteStore::open(&StoreConfig {
            path: dir.join("state.db"),
            sync: StoreSync::Normal,
        })
        .unwrap()
    }

    fn lockout() -> Lockout {
        Lockout {
            max_failures: 3,
            window: Duration::from_secs(900),
            duration: Duration::from_secs(60),
            ratio: 2,
            max_duration: Duration::from_secs(3600),
        }
    }

    #[tokio::test]
    async fn budget_locks_and_grows() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let l = lockout();
        for _ in 0..3 {
            assert_eq!(
                s.begin_attempt("a", 100, &l).await.unwrap(),
                Attempt::Granted
            );
            s.finish_attempt("a", false, 100, &l).await.unwrap();
        }
        assert_eq!(
            s.begin_attempt("a", 101, &l).await.unwrap(),
            Attempt::Locked { until: 160 }
        );
        let st = s.lock_state("a", 101).await.unwrap();
        assert_eq!((st.locked_until, st.lockouts), (Some(160), 1));
        // After the lock: three more wrong -> twice as long.
        for _ in 0..3 {
            assert_eq!(
                s.begin_attempt("a", 200, &l).await.unwrap(),
                Attempt::Granted
            );
            s.finish_attempt("a", false, 200, &l).await.unwrap();
        }
        assert_eq!(
            s.begin_attempt("a", 201, &l).await.unwrap(),
            Attempt::Locked { until: 320 }
        );
        assert!(s.unlock("a").await.unwrap());
        assert_eq!(
            s.begin_attempt("a", 202, &l).await.unwrap(),
            Attempt::Granted
        );
    }

    #[tokio::test]
    async fn a_spent_budget_without_a_lock_becomes_the_lockout() {
        // A crash between charging guesses and judging them leaves the
        // count at the budget with no lock: the next guess sets the lock,
        // with its escalation, and in-flight wrongs do not lock again.
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let l = lockout();
        for _ in 0..3 {
            assert_eq!(
                s.begin_attempt("a", 100, &l).await.unwrap(),
                Attempt::Granted
            );
        }
        assert_eq!(
            s.begin_attempt("a", 110, &l).await.unwrap(),
            Attempt::Locked { until: 170 }
        );
        s.finish_attempt("a", false, 111, &l).await.unwrap();
        let st = s.lock_state("a", 112).await.unwrap();
        assert_eq!((st.locked_until, st.lockouts), (Some(170), 1));
    }

    #[tokio::test]
    async fn success_clears_failures_and_window_expires() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let l = lockout();
        for _ in 0..2 {
            s.begin_attempt("a", 0, &l).await.unwrap();
            s.finish_attempt("a", false, 0, &l).await.unwrap();
        }
        s.begin_attempt("a", 0, &l).await.unwrap();
        s.finish_attempt("a", true, 0, &l).await.unwrap();
        assert_eq!(s.lock_state("a", 0).await.unwrap().failures, 0);
        for _ in 0..2 {
            s.begin_attempt("a", 0, &l).await.unwrap();
            s.finish_attempt("a", false, 0, &l).await.unwrap();
        }
        // The window passes: the count starts over.
        assert_eq!(
            s.begin_attempt("a", 900, &l).await.unwrap(),
            Attempt::Granted
        );
        assert_eq!(s.lock_state("a", 900).await.unwrap().failures, 1);
    }

    #[tokio::test]
    async fn concurrent_attempts_never_exceed_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(open(dir.path()));
        let l = lockout();
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let s = Arc::clone(&s);
            tasks.push(tokio::spawn(async move {
                s.begin_attempt("a", 10, &l).await.unwrap()
            }));
        }
        let mut granted = 0;
        for t in tasks {
            if t.await.unwrap() == Attempt::Granted {
                granted += 1;
            }
        }
        assert_eq!(granted, 3);
    }

    #[tokio::test]
    async fn send_budgets_and_cooldown() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let budget = SendBudget {
            per_user_per_hour: 3,
            per_rhost_per_hour: 4,
            global_per_hour: 5,
            allowed_countries: vec![],
        };
        let resend = Resend {
            enabled: true,
            per_user_per_hour: 1,
            cooldown: Duration::from_secs(30),
        };
        let req = |user: &'static str, rhost: Option<&'static str>, kind| SendRequest {
            user,
            rhost,
            kind,
            budget: &budget,
            resend: &resend,
        };
        assert_eq!(
            s.reserve_send(req("a", Some("h1"), SendKind::First), 1000)
                .await
                .unwrap(),
            SendDecision::Allowed
        );
        // Cooldown applies to resends.
        let r = s
            .reserve_send(req("a", Some("h1"), SendKind::Resend), 1010)
            .await
            .unwrap();
        assert_eq!(
            r,
            SendDecision::Refused {
                reason: "a code was sent moments ago".into(),
                retry_after: Some(20)
            }
        );
        assert_eq!(
            s.reserve_send(req("a", Some("h1"), SendKind::Resend), 1030)
                .await
                .unwrap(),
            SendDecision::Allowed
        );
        // Resends per hour: 1.
        assert!(matches!(
            s.reserve_send(req("a", Some("h1"), SendKind::Resend), 1100)
                .await
                .unwrap(),
            SendDecision::Refused { .. }
        ));
        assert_eq!(
            s.reserve_send(req("a", Some("h1"), SendKind::First), 1100)
                .await
                .unwrap(),
            SendDecision::Allowed
        );
        // Per user: 3 in the hour.
        let r = s
            .reserve_send(req("a", Some("h2"), SendKind::First), 1200)
            .await
            .unwrap();
        assert_eq!(
            r,
            SendDecision::Refused {
                reason: "this account has had too many codes sent in the last hour".into(),
                retry_after: Some(3400)
            }
        );
        // Per rhost: 4 (3 from a + this one).
        assert_eq!(
            s.reserve_send(req("b", Some("h1"), SendKind::First), 1200)
                .await
                .unwrap(),
            SendDecision::Allowed
        );
        assert!(matches!(
            s.reserve_send(req("c", Some("h1"), SendKind::First), 1200)
                .await
                .unwrap(),
            SendDecision::Refused { .. }
        ));
        // Global: 5.
        assert_eq!(
            s.reserve_send(req("c", None, SendKind::First), 1200)
                .await
                .unwrap(),
            SendDecision::Allowed
        );
        let r = s
            .reserve_send(req("d", None, SendKind::First), 1200)
            .await
            .unwrap();
        assert!(
            matches!(r, SendDecision::Refused { ref reason, .. } if reason.contains("hourly SMS limit")),
            "{r:?}"
        );
        // An hour later everything is free again.
        assert_eq!(
            s.reserve_send(req("d", None, SendKind::First), 1000 + 3601)
                .await
                .unwrap(),
            SendDecision::Allowed
        );
    }

    #[tokio::test]
    async fn backup_codes_spend_once_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(dir.path());
            s.replace_backup_codes(
                "a",
                vec![("ID1".into(), "h1".into()), ("ID2".into(), "h2".into())],
                5,
            )
            .await
            .unwrap();
            assert_eq!(
                s.backup_code_hash("a", "ID1").await.unwrap().as_deref(),
                Some("h1")
            );
            assert!(s.spend_backup_code("a", "ID1", 6).await.unwrap());
            assert!(
                !s.spend_backup_code("a", "ID1", 7).await.unwrap(),
                "spent twice"
            );
            assert!(s.backup_code_hash("a", "ID1").await.unwrap().is_none());
            s.set_mobile("a", "+15551234567", 5).await.unwrap();
            s.set_opt_out("a", true, 5).await.unwrap();
        }
        let s = open(dir.path());
        assert_eq!(s.backup_codes_left("a").await.unwrap(), 1);
        assert_eq!(
            s.mobile("a").await.unwrap().as_deref(),
            Some("+15551234567")
        );
        assert!(s.opted_out("a").await.unwrap());
        assert!(s.remove_user("a").await.unwrap());
        assert_eq!(s.backup_codes_left("a").await.unwrap(), 0);
        assert!(s.mobile("a").await.unwrap().is_none());
        assert!(!s.opted_out("a").await.unwrap());
    }

    #[tokio::test]
    async fn migrations_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        let c = Connection::open(dir.path().join("state.db")).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, schema::MIGRATIONS.len());
        drop(c);
        drop(open(dir.path()));
    }
}
