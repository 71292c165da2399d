//! The fleet store: one PostgreSQL database that every host's daemon
//! shares, so a backup code spent, a guess charged or a lockout set on
//! one host holds on all of them.
//!
//! Same rules as SQLite, applied the same way: each change is one
//! transaction that locks the rows it reads (`SELECT ... FOR UPDATE`, or
//! the whole send log for the budgets), runs [`crate::rules`] on them and
//! writes the result. Read-committed isolation suffices because every
//! read-modify-write holds its row lock until commit. The `now` of every
//! call comes from the daemon, as with SQLite: hosts of a fleet must keep
//! their clocks in step (NTP), see docs/OPERATIONS.md.

use super::pg_connect::{self, describe};
use super::pg_schema::{MIGRATIONS, MIGRATION_LOCK, SCHEMA};
use super::*;
use crate::rules::lockout::{self, Budget};
use crate::rules::send::{self, HOUR};
use deadpool_postgres::{Object, Pool, Transaction};
use smsotp_config::PostgresConfig;

pub struct PostgresStore {
    pool: Pool,
    label: String,
}

fn table(budget: Budget) -> &'static str {
    match budget {
        Budget::Sms => "smsotp.failures",
        Budget::Backup => "smsotp.backup_failures",
    }
}

impl PostgresStore {
    /// Connects and migrates; fails (so the daemon does not serve) when
    /// the database cannot be reached.
    pub async fn open(cfg: &PostgresConfig) -> Result<PostgresStore, StoreError> {
        let store = PostgresStore {
            pool: pg_connect::pool(cfg)?,
            label: pg_connect::label(cfg),
        };
        store.migrate().await?;
        Ok(store)
    }

    fn err(&self, message: String) -> StoreError {
        StoreError::Backend {
            path: self.label.clone(),
            message,
        }
    }

    fn pg(&self, e: tokio_postgres::Error) -> StoreError {
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

    /// The user's counter row, created if missing and locked to commit,
    /// so two first guesses cannot both start from nothing.
    async fn lock_counter(
        &self,
        tx: &Transaction<'_>,
        budget: Budget,
        user: &str,
        now: i64,
    ) -> Result<Counter, StoreError> {
        let t = table(budget);
        tx.execute(
            &format!("INSERT INTO {t}(username, window_start) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING"),
            &[&user, &now],
        )
        .await
        .map_err(|e| self.pg(e))?;
        let r = tx
            .query_one(
                &format!("SELECT failures, window_start, locked_until, lockouts FROM {t} WHERE username = $1 FOR UPDATE"),
                &[&user],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(Counter {
            failures: r.get(0),
            window_start: r.get(1),
            locked_until: r.get(2),
            lockouts: r.get(3),
        })
    }

    async fn save_counter(
        &self,
        tx: &Transaction<'_>,
        budget: Budget,
        user: &str,
        c: &Counter,
    ) -> Result<(), StoreError> {
        tx.execute(
            &format!(
                "UPDATE {} SET failures = $2, window_start = $3, locked_until = $4, lockouts = $5 WHERE username = $1",
                table(budget)
            ),
            &[&user, &c.failures, &c.window_start, &c.locked_until, &c.lockouts],
        )
        .await
        .map(|_| ())
        .map_err(|e| self.pg(e))
    }

    /// One statement outside a transaction: rows changed.
    async fn exec(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let c = self.client().await?;
        c.execute(sql, params).await.map_err(|e| self.pg(e))
    }

    async fn one(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        let c = self.client().await?;
        c.query_opt(sql, params).await.map_err(|e| self.pg(e))
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn mobile(&self, user: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .one(
                "SELECT e164 FROM smsotp.mobiles WHERE username = $1",
                &[&user],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set_mobile(&self, user: &str, e164: &str, now: i64) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO smsotp.mobiles(username, e164, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (username) DO UPDATE SET e164 = excluded.e164, updated_at = excluded.updated_at",
            &[&user, &e164, &now],
        )
        .await
        .map(|_| ())
    }

    async fn add_mobile_if_none(
        &self,
        user: &str,
        e164: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .exec(
                "INSERT INTO smsotp.mobiles(username, e164, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (username) DO NOTHING",
                &[&user, &e164, &now],
            )
            .await?;
        Ok(n == 1)
    }

    async fn remove_user(&self, user: &str) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.pg(e))?;
        let mut n = 0;
        for t in USER_TABLES {
            n += tx
                .execute(
                    &format!("DELETE FROM {SCHEMA}.{t} WHERE username = $1"),
                    &[&user],
                )
                .await
                .map_err(|e| self.pg(e))?;
        }
        tx.commit().await.map_err(|e| self.pg(e))?;
        Ok(n > 0)
    }

    async fn begin_attempt(
        &self,
        budget: Budget,
        user: &str,
        now: i64,
        l: &Lockout,
    ) -> Result<Attempt, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.pg(e))?;
        let counter = self.lock_counter(&tx, budget, user, now).await?;
        let (attempt, next) = charged(lockout::charge(budget, l, counter, now));
        if let Some(next) = next {
            self.save_counter(&tx, budget, user, &next).await?;
        }
        tx.commit().await.map_err(|e| self.pg(e))?;
        Ok(attempt)
    }

    async fn finish_attempt(
        &self,
        budget: Budget,
        user: &str,
        right: bool,
        now: i64,
        l: &Lockout,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.pg(e))?;
        let counter = self.lock_counter(&tx, budget, user, now).await?;
        if let Some(next) = lockout::judge(budget, l, counter, right, now) {
            self.save_counter(&tx, budget, user, &next).await?;
        }
        tx.commit().await.map_err(|e| self.pg(e))
    }

    async fn lock_state(&self, user: &str, now: i64) -> Result<LockState, StoreError> {
        let row = self
            .one(
                "SELECT failures, locked_until, lockouts FROM smsotp.failures WHERE username = $1",
                &[&user],
            )
            .await?;
        Ok(row.map_or_else(LockState::default, |r| {
            LockState::from_row(r.get(0), r.get(1), r.get(2), now)
        }))
    }

    async fn backup_locked_until(&self, user: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let row = self
            .one(
                "SELECT locked_until FROM smsotp.backup_failures WHERE username = $1",
                &[&user],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, i64>(0)).filter(|u| *u > now))
    }

    async fn claim_lock_notice(&self, user: &str, now: i64) -> Result<Option<i64>, StoreError> {
        // One conditional UPDATE: PostgreSQL re-checks the condition on
        // the row a concurrent claim just changed, so only one wins.
        let row = self
            .one(
                "UPDATE smsotp.failures SET notified_until = locked_until
                 WHERE username = $1 AND locked_until > $2 AND notified_until <> locked_until
                 RETURNING locked_until",
                &[&user, &now],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn unlock(&self, user: &str) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.pg(e))?;
        let mut n = 0;
        for budget in [Budget::Sms, Budget::Backup] {
            n += tx
                .execute(
                    &format!("DELETE FROM {} WHERE username = $1", table(budget)),
                    &[&user],
                )
                .await
                .map_err(|e| self.pg(e))?;
        }
        tx.commit().await.map_err(|e| self.pg(e))?;
        Ok(n > 0)
    }

    async fn reserve_send(
        &self,
        req: SendRequest<'_>,
        now: i64,
    ) -> Result<SendDecision, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.pg(e))?;
        // The global budget counts every user's sends, so sends take turns
        // across the fleet (readers of the table are not blocked).
        tx.batch_execute("LOCK TABLE smsotp.sends IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(|e| self.pg(e))?;
        let since = now - HOUR;
        tx.execute("DELETE FROM smsotp.sends WHERE at <= $1", &[&since])
            .await
            .map_err(|e| self.pg(e))?;
        let r = tx
            .query_one(
                &sends::history_sql("smsotp.sends", "username", '$'),
                &[&since, &req.user, &req.rhost],
            )
            .await
            .map_err(|e| self.pg(e))?;
        let row: sends::Row = (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
            r.get(8),
        );
        let history = sends::history(row, req.rhost.is_some());
        if let Err(refused) = send::check(
            &history,
            req.kind == SendKind::Resend,
            req.budget,
            req.resend,
            now,
        ) {
            return Ok(sends::refused(refused));
        }
        tx.execute(
            "INSERT INTO smsotp.sends(at, username, rhost, kind) VALUES ($1, $2, $3, $4)",
            &[&now, &req.user, &req.rhost, &sends::kind_name(req.kind)],
        )
        .await
        .map_err(|e| self.pg(e))?;
        tx.commit().await.map_err(|e| self.pg(e))?;
        Ok(SendDecision::Allowed)
    }

    async fn replace_backup_codes(
        &self,
        user: &str,
        codes: Vec<(String, String)>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.pg(e))?;
        tx.execute(
            "DELETE FROM smsotp.backup_codes WHERE username = $1",
            &[&user],
        )
        .await
        .map_err(|e| self.pg(e))?;
        for (id, hash) in &codes {
            tx.execute(
                "INSERT INTO smsotp.backup_codes(username, id, hash, created_at) VALUES ($1, $2, $3, $4)",
                &[&user, id, hash, &now],
            )
            .await
            .map_err(|e| self.pg(e))?;
        }
        tx.commit().await.map_err(|e| self.pg(e))
    }

    async fn backup_code_hash(&self, user: &str, id: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .one(
                "SELECT hash FROM smsotp.backup_codes WHERE username = $1 AND id = $2 AND used_at IS NULL",
                &[&user, &id],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn spend_backup_code(&self, user: &str, id: &str, now: i64) -> Result<bool, StoreError> {
        let n = self
            .exec(
                "UPDATE smsotp.backup_codes SET used_at = $3 WHERE username = $1 AND id = $2 AND used_at IS NULL",
                &[&user, &id, &now],
            )
            .await?;
        Ok(n == 1)
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

    async fn set_opt_out(&self, user: &str, opted_out: bool, now: i64) -> Result<(), StoreError> {
        if opted_out {
            self.exec(
                "INSERT INTO smsotp.opt_outs(username, at) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING",
                &[&user, &now],
            )
            .await?;
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

    async fn record_success(&self, user: &str, context: &str, now: i64) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO smsotp.successes(username, context, at) VALUES ($1, $2, $3)
             ON CONFLICT (username, context) DO UPDATE SET at = excluded.at",
            &[&user, &context, &now],
        )
        .await
        .map(|_| ())
    }

    async fn last_success(&self, user: &str, context: &str) -> Result<Option<i64>, StoreError> {
        let row = self
            .one(
                "SELECT at FROM smsotp.successes WHERE username = $1 AND context = $2",
                &[&user, &context],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}
