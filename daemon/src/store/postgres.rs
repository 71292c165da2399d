//! The fleet store: one PostgreSQL database that every host's daemon
//! shares, so a backup code spent, a guess charged or a lockout set on
//! one host holds on all of them.
//!
//! Same rules as SQLite, applied the same way: each change is one
//! transaction that locks the rows it reads (`SELECT ... FOR UPDATE`, or
//! an advisory lock per send budget, store/sends.rs), runs [`crate::rules`] on them and
//! writes the result. Read-committed isolation suffices because every
//! read-modify-write holds its row lock until commit. The request-level
//! calls (one transaction per login request, in `pg_requests`) and the
//! admin calls that read or stamp a time measure it on the database's
//! clock; every request has a deadline (`[store] timeout_seconds`), so a
//! hung database fails a login instead of holding it.

use super::pg_connect::{self, describe};
use super::pg_schema::{MIGRATIONS, MIGRATION_LOCK, SCHEMA};
use super::sends::Pruned;
use super::*;
use crate::rules::lockout::Budget;
use deadpool_postgres::{Object, Pool};
use smsotp_config::PostgresConfig;
use std::future::Future;
use std::time::Duration;

pub struct PostgresStore {
    pool: Pool,
    label: String,
    pub(super) clock: Clock,
    timeout: Duration,
    pub(super) pruned: Pruned,
}

/// The body `$body` inside one transaction on a pooled connection, under
/// the request deadline; `$now` (if named) is the transaction's time.
macro_rules! in_tx {
    ($s:ident, $tx:ident, $now:ident, $body:expr) => {
        $s.within(async {
            let mut c = $s.client().await?;
            let $tx = c.transaction().await.map_err(|e| $s.pg(e))?;
            let $now = $s.tx_now(&$tx).await?;
            let out = $body;
            $tx.commit().await.map_err(|e| $s.pg(e))?;
            Ok(out)
        })
        .await
    };
    ($s:ident, $tx:ident, $body:expr) => {
        $s.within(async {
            let mut c = $s.client().await?;
            let $tx = c.transaction().await.map_err(|e| $s.pg(e))?;
            let out = $body;
            $tx.commit().await.map_err(|e| $s.pg(e))?;
            Ok(out)
        })
        .await
    };
}

impl PostgresStore {
    /// Connects and migrates; fails (so the daemon does not serve) when
    /// the database cannot be reached.
    pub async fn open(cfg: &PostgresConfig) -> Result<PostgresStore, StoreError> {
        let store = PostgresStore {
            pool: pg_connect::pool(cfg)?,
            label: pg_connect::label(cfg),
            clock: Clock::system(),
            timeout: DEFAULT_TIMEOUT,
            pruned: Pruned::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The clock of every call (tests fix and move it).
    pub fn with_clock(mut self, clock: Clock) -> PostgresStore {
        self.clock = clock;
        self
    }

    /// Each request's deadline (`[store] timeout_seconds`).
    pub fn with_timeout(mut self, timeout: Duration) -> PostgresStore {
        self.timeout = timeout;
        self
    }

    /// `fut` under the request deadline. Dropped at the deadline, its
    /// transaction is never committed: the database rolls it back when
    /// the connection goes, and the pool replaces the connection.
    async fn within<T>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or_else(|_| {
                Err(self.err(format!("no answer within {} s", self.timeout.as_secs())))
            })
    }

    fn err(&self, message: String) -> StoreError {
        StoreError::Backend {
            path: self.label.clone(),
            message,
        }
    }

    pub(super) fn pg(&self, e: tokio_postgres::Error) -> StoreError {
        self.err(describe(&e))
    }

    /// A pooled connection; a broken one is replaced on the way out.
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            // The cause (refused, TLS, authentication) is in the
            // backend error's source chain, not in the pool's text.
            let why = match &e {
                deadpool_postgres::PoolError::Backend(pg) => describe(pg),
                other => other.to_string(),
            };
            self.err(format!("cannot reach the database: {why}"))
        })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.pg(e))?;
        // Taken before anything is read or created, held to commit.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| self.pg(e))?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {SCHEMA};
             CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version (version INTEGER NOT NULL)"
        ))
        .await
        .map_err(|e| self.pg(e))?;
        let row = tx
            .query_one(
                &format!("SELECT COALESCE(MAX(version), 0) FROM {SCHEMA}.schema_version"),
                &[],
            )
            .await
            .map_err(|e| self.pg(e))?;
        let version: i32 = row.get(0);
        if version as usize > MIGRATIONS.len() {
            return Err(self.err(format!(
                "the database's schema is version {version}, newer than this smsotpd ({}): upgrade smsotpd",
                MIGRATIONS.len()
            )));
        }
        for sql in &MIGRATIONS[version.max(0) as usize..] {
            tx.batch_execute(sql).await.map_err(|e| self.pg(e))?;
        }
        tx.execute(&format!("DELETE FROM {SCHEMA}.schema_version"), &[])
            .await
            .map_err(|e| self.pg(e))?;
        tx.execute(
            &format!("INSERT INTO {SCHEMA}.schema_version(version) VALUES ($1)"),
            &[&(MIGRATIONS.len() as i32)],
        )
        .await
        .map_err(|e| self.pg(e))?;
        tx.commit().await.map_err(|e| self.pg(e))
    }

    /// One statement outside a transaction: rows changed.
    async fn exec(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.within(async {
            let c = self.client().await?;
            let st = c.prepare_cached(sql).await.map_err(|e| self.pg(e))?;
            c.execute(&st, params).await.map_err(|e| self.pg(e))
        })
        .await
    }

    async fn one(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        self.within(async {
            let c = self.client().await?;
            let st = c.prepare_cached(sql).await.map_err(|e| self.pg(e))?;
            c.query_opt(&st, params).await.map_err(|e| self.pg(e))
        })
        .await
    }
}

/// Until `with_timeout`: the config's default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

#[async_trait]
impl Store for PostgresStore {
    async fn challenge(&self, q: ChallengeQuery<'_>) -> Result<ChallengeOutcome, StoreError> {
        in_tx!(self, tx, self.challenge_in(&tx, &q).await?)
    }

    async fn guess(&self, q: GuessQuery<'_>) -> Result<Guess, StoreError> {
        in_tx!(self, tx, self.guess_in(&tx, &q).await?)
    }

    async fn backup_charge(
        &self,
        user: &str,
        id: &str,
        lockout: &Lockout,
    ) -> Result<BackupCharge, StoreError> {
        in_tx!(
            self,
            tx,
            now,
            self.backup_charge_in(&tx, user, id, lockout, now).await?
        )
    }

    async fn backup_settle(&self, q: BackupSettle<'_>) -> Result<BackupSettled, StoreError> {
        in_tx!(self, tx, now, self.backup_settle_in(&tx, &q, now).await?)
    }

    async fn mobile(&self, user: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .one(
                "SELECT e164 FROM smsotp.mobiles WHERE username = $1",
                &[&user],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set_mobile(&self, user: &str, e164: &str) -> Result<(), StoreError> {
        in_tx!(self, tx, now, {
            self.run(
                &tx,
                "INSERT INTO smsotp.mobiles(username, e164, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (username) DO UPDATE SET e164 = excluded.e164, updated_at = excluded.updated_at",
                &[&user, &e164, &now],
            )
            .await?;
        })
    }

    async fn remove_user(&self, user: &str) -> Result<bool, StoreError> {
        in_tx!(self, tx, {
            let mut n = 0;
            for t in USER_TABLES {
                n += self
                    .run(
                        &tx,
                        &format!("DELETE FROM {SCHEMA}.{t} WHERE username = $1"),
                        &[&user],
                    )
                    .await?;
            }
            n > 0
        })
    }

    async fn lock_state(&self, user: &str) -> Result<LockStatus, StoreError> {
        in_tx!(self, tx, now, {
            let row = self
                .opt(
                    &tx,
                    "SELECT failures, locked_until, lockouts FROM smsotp.failures WHERE username = $1",
                    &[&user],
                )
                .await?;
            let lock = row.map_or_else(LockState::default, |r| {
                LockState::from_row(r.get(0), r.get(1), r.get(2), now)
            });
            LockStatus { now, lock }
        })
    }

    async fn unlock(&self, user: &str) -> Result<bool, StoreError> {
        in_tx!(self, tx, {
            let mut n = 0;
            for budget in [Budget::Sms, Budget::Backup] {
                n += self
                    .run(
                        &tx,
                        &format!("DELETE FROM smsotp.{} WHERE username = $1", budget.table()),
                        &[&user],
                    )
                    .await?;
            }
            n > 0
        })
    }

    async fn replace_backup_codes(
        &self,
        user: &str,
        codes: Vec<(String, String)>,
    ) -> Result<(), StoreError> {
        in_tx!(self, tx, now, {
            self.run(
                &tx,
                "DELETE FROM smsotp.backup_codes WHERE username = $1",
                &[&user],
            )
            .await?;
            for (id, hash) in &codes {
                self.run(
                    &tx,
                    "INSERT INTO smsotp.backup_codes(username, id, hash, created_at) VALUES ($1, $2, $3, $4)",
                    &[&user, id, hash, &now],
                )
                .await?;
            }
        })
    }

    async fn backup_codes_left(&self, user: &str) -> Result<u32, StoreError> {
        let row = self
            .one(
                "SELECT COUNT(*) FROM smsotp.backup_codes WHERE username = $1 AND used_at IS NULL",
                &[&user],
            )
            .await?;
        let n: i64 = row.map_or(0, |r| r.get(0));
        Ok(n.clamp(0, i64::from(u32::MAX)) as u32)
    }

    async fn set_opt_out(&self, user: &str, opted_out: bool) -> Result<(), StoreError> {
        if opted_out {
            in_tx!(self, tx, now, {
                self.run(
                    &tx,
                    "INSERT INTO smsotp.opt_outs(username, at) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING",
                    &[&user, &now],
                )
                .await?;
            })?;
        } else {
            self.exec("DELETE FROM smsotp.opt_outs WHERE username = $1", &[&user])
                .await?;
        }
        Ok(())
    }

    async fn opted_out(&self, user: &str) -> Result<bool, StoreError> {
        let row = self
            .one(
                "SELECT 1 FROM smsotp.opt_outs WHERE username = $1",
                &[&user],
            )
            .await?;
        Ok(row.is_some())
    }
}
