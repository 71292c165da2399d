//! The request-level calls on PostgreSQL: one transaction each, on the
//! database's clock, every statement prepared once per connection
//! (`prepare_cached`). Rows are locked as they are read (`FOR UPDATE`, the
//! send budgets' advisory locks), so the rules applied in between see what the
//! commit will change, on every host at once.

use super::postgres::PostgresStore;
use super::sends::{self, OwnedSend};
use super::*;
use crate::rules::challenge::{self, Facts, Step};
use crate::rules::lockout::{self, Budget};
use crate::rules::send;
use deadpool_postgres::Transaction;
use smsotp_config::Mobile;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PostgresStore {
    pub(super) async fn opt(
        &self,
        tx: &Transaction<'_>,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, StoreError> {
        let st = tx.prepare_cached(sql).await.map_err(|e| self.pg(e))?;
        tx.query_opt(&st, params).await.map_err(|e| self.pg(e))
    }

    pub(super) async fn row(
        &self,
        tx: &Transaction<'_>,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Row, StoreError> {
        let st = tx.prepare_cached(sql).await.map_err(|e| self.pg(e))?;
        tx.query_one(&st, params).await.map_err(|e| self.pg(e))
    }

    pub(super) async fn run(
        &self,
        tx: &Transaction<'_>,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, StoreError> {
        let st = tx.prepare_cached(sql).await.map_err(|e| self.pg(e))?;
        tx.execute(&st, params).await.map_err(|e| self.pg(e))
    }

    /// The transaction's time: the database's `now()` (the same for every
    /// host of the fleet), or the tests' fixed clock.
    pub(super) async fn tx_now(&self, tx: &Transaction<'_>) -> Result<i64, StoreError> {
        if let Some(t) = self.clock.fixed_now() {
            return Ok(t);
        }
        let r = self
            .row(tx, "SELECT floor(extract(epoch FROM now()))::bigint", &[])
            .await?;
        Ok(r.get(0))
    }

    /// The user's counter row, created if missing and locked to commit,
    /// so two first guesses cannot both start from nothing: one statement
    /// (the no-op update of an existing row is what locks it). A new row's
    /// window starts at 0, which [`lockout::charge`] treats as over (it
    /// starts a window at its `now`), so the time is not needed here and
    /// the two can be asked together.
    pub(super) async fn lock_counter(
        &self,
        tx: &Transaction<'_>,
        budget: Budget,
        user: &str,
    ) -> Result<Counter, StoreError> {
        let t = budget.table();
        let r = self
            .row(
                tx,
                &format!(
                    "INSERT INTO smsotp.{t}(username) VALUES ($1)
                     ON CONFLICT (username) DO UPDATE SET username = excluded.username
                     RETURNING failures, window_start, locked_until, lockouts"
                ),
                &[&user],
            )
            .await?;
        Ok(Counter {
            failures: r.get(0),
            window_start: r.get(1),
            locked_until: r.get(2),
            lockouts: r.get(3),
        })
    }

    pub(super) async fn save_counter(
        &self,
        tx: &Transaction<'_>,
        budget: Budget,
        user: &str,
        c: &Counter,
    ) -> Result<(), StoreError> {
        self.run(
            tx,
            &format!(
                "UPDATE smsotp.{} SET failures = $2, window_start = $3, locked_until = $4, lockouts = $5 WHERE username = $1",
                budget.table()
            ),
            &[&user, &c.failures, &c.window_start, &c.locked_until, &c.lockouts],
        )
        .await
        .map(|_| ())
    }

    /// Charges a guess in `tx`: `Err(until)` when refused.
    pub(super) async fn charge_in(
        &self,
        tx: &Transaction<'_>,
        budget: Budget,
        user: &str,
        now: i64,
        l: &Lockout,
    ) -> Result<Result<(), i64>, StoreError> {
        let counter = self.lock_counter(tx, budget, user).await?;
        let (attempt, next) = charged(lockout::charge(budget, l, counter, now));
        if let Some(next) = next {
            self.save_counter(tx, budget, user, &next).await?;
        }
        Ok(match attempt {
            Attempt::Granted => Ok(()),
            Attempt::Locked { until } => Err(until),
        })
    }

    /// Settles a granted guess in `tx`; the counter as it now stands.
    pub(super) async fn judge_in(
        &self,
        tx: &Transaction<'_>,
        budget: Budget,
        user: &str,
        right: bool,
        now: i64,
        l: &Lockout,
    ) -> Result<Counter, StoreError> {
        let counter = self.lock_counter(tx, budget, user).await?;
        match lockout::judge(budget, l, counter, right, now) {
            Some(next) => {
                self.save_counter(tx, budget, user, &next).await?;
                Ok(next)
            }
            None => Ok(counter),
        }
    }

    /// Checks every send budget and counts the send if they allow it.
    pub(super) async fn reserve_in(
        &self,
        tx: &Transaction<'_>,
        s: &OwnedSend,
        now: i64,
    ) -> Result<SendDecision, StoreError> {
        // Sends that share a budget take turns (the counts read below must
        // still hold at commit); sends that share none do not wait.
        let keys = sends::LockKeys::of(s);
        self.run(
            tx,
            sends::LOCK_SQL,
            &[&keys.user, &keys.rhost, &keys.fleet, &keys.host],
        )
        .await?;
        let first = sends::first_minute(now);
        if self.pruned.due(first) {
            self.run(tx, &sends::prune_sql("smsotp.send_counts", '$'), &[&first])
                .await?;
        }
        let host = s.global_host();
        let r = self
            .row(
                tx,
                &sends::history_sql("smsotp.send_counts", '$'),
                &[&first, &s.user, &s.rhost, &host],
            )
            .await?;
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
        let history = sends::history(row, s.rhost.is_some());
        let resend = s.kind == SendKind::Resend;
        if let Err(refused) = send::check(&history, resend, &s.budget, &s.resend, now) {
            return Ok(sends::refused(refused));
        }
        let minute = now.div_euclid(sends::MINUTE);
        self.run(
            tx,
            &sends::record_sql("smsotp.send_counts", "send_counts", '$'),
            &[&minute, &now, &s.user, &s.resend_who(), &s.rhost, &s.host],
        )
        .await?;
        Ok(SendDecision::Allowed)
    }

    pub(super) async fn backup_left_in(
        &self,
        tx: &Transaction<'_>,
        user: &str,
    ) -> Result<u32, StoreError> {
        let r = self
            .row(
                tx,
                "SELECT COUNT(*) FROM smsotp.backup_codes WHERE username = $1 AND used_at IS NULL",
                &[&user],
            )
            .await?;
        Ok(r.get::<_, i64>(0).clamp(0, i64::from(u32::MAX)) as u32)
    }

    pub(super) async fn stamp_in(
        &self,
        tx: &Transaction<'_>,
        user: &str,
        context: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.run(
            tx,
            "INSERT INTO smsotp.successes(username, context, at) VALUES ($1, $2, $3)
             ON CONFLICT (username, context) DO UPDATE SET at = excluded.at",
            &[&user, &context, &now],
        )
        .await
        .map(|_| ())
    }

    /// `Begin`, `Resend` and `Enroll`. The reads do not depend on each
    /// other (nor on the time), so they go out together: tokio-postgres
    /// pipelines them into one round trip instead of up to seven.
    pub(super) async fn challenge_in(
        &self,
        tx: &Transaction<'_>,
        q: &ChallengeQuery<'_>,
    ) -> Result<ChallengeOutcome, StoreError> {
        let user = q.send.user;
        let last_success = async {
            let Some((ctx, _)) = q.grace else {
                return Ok(None);
            };
            let sql = "SELECT at FROM smsotp.successes WHERE username = $1 AND context = $2";
            let row = self.opt(tx, sql, &[&user, &ctx]).await?;
            Ok(row.map(|r| r.get::<_, i64>(0)))
        };
        let opted_out = async {
            if !q.opt_out_counts {
                return Ok(false);
            }
            let sql = "SELECT 1 FROM smsotp.opt_outs WHERE username = $1";
            Ok(self.opt(tx, sql, &[&user]).await?.is_some())
        };
        // Locked: the notice's claim below is decided on what this read.
        let lock = async {
            let sql = "SELECT locked_until, notified_until FROM smsotp.failures WHERE username = $1 FOR UPDATE";
            let row = self.opt(tx, sql, &[&user]).await?;
            Ok(row.map_or((0, 0), |r| (r.get(0), r.get(1))))
        };
        let stored = async {
            if !q.number.reads_store() {
                return Ok(None);
            }
            let sql = "SELECT e164 FROM smsotp.mobiles WHERE username = $1";
            let row = self.opt(tx, sql, &[&user]).await?;
            Ok(row.and_then(|r| Mobile::parse(&r.get::<_, String>(0)).ok()))
        };
        let backup = async {
            if !q.backup_counts {
                return Ok((0, None));
            }
            let sql = "SELECT locked_until FROM smsotp.backup_failures WHERE username = $1";
            let params: [&(dyn ToSql + Sync); 1] = [&user];
            let (left, until) =
                tokio::try_join!(self.backup_left_in(tx, user), self.opt(tx, sql, &params))?;
            Ok::<_, StoreError>((left, until.map(|r| r.get::<_, i64>(0))))
        };
        let (now, last_success, opted_out, (locked_until, notified_until), stored, backup) = tokio::try_join!(
            self.tx_now(tx),
            last_success,
            opted_out,
            lock,
            stored,
            backup
        )?;
        let (backup_left, backup_locked_until) = (backup.0, backup.1.filter(|u| *u > now));
        let number = q.number.resolve(stored.as_ref());
        let facts = Facts {
            last_success,
            opted_out,
            locked_until,
            notified_until,
            ..Facts::default()
        }
        .with_number(number.as_ref(), q.send.budget);
        let step = challenge::decide(&q.ask(), &facts, now);
        let send = match step {
            Step::Locked { notify: true, .. } => {
                self.run(
                    tx,
                    "UPDATE smsotp.failures SET notified_until = locked_until WHERE username = $1",
                    &[&user],
                )
                .await?;
                None
            }
            Step::Send | Step::NoNumber { send: true } if q.reserve => {
                Some(self.reserve_in(tx, &OwnedSend::new(&q.send), now).await?)
            }
            _ => None,
        };
        Ok(ChallengeOutcome {
            now,
            step,
            stored,
            backup_left,
            backup_locked_until,
            send,
        })
    }

    pub(super) async fn guess_in(
        &self,
        tx: &Transaction<'_>,
        q: &GuessQuery<'_>,
    ) -> Result<Guess, StoreError> {
        let user = q.user;
        // Charge and judge on one read of the counter and one write: the
        // row stays locked in between, so this is what two statements
        // each would see.
        let l = q.lockout;
        let (now, counter) =
            tokio::try_join!(self.tx_now(tx), self.lock_counter(tx, Budget::Sms, user))?;
        let charged = match lockout::charge(Budget::Sms, l, counter, now) {
            Charge::Locked { until, set } => {
                if let Some(set) = set {
                    self.save_counter(tx, Budget::Sms, user, &set).await?;
                }
                return Ok(Guess::Locked { now, until });
            }
            Charge::Granted(next) => next,
        };
        let after = lockout::judge(Budget::Sms, l, charged, q.right, now).unwrap_or(charged);
        self.save_counter(tx, Budget::Sms, user, &after).await?;
        let mut enrolled = None;
        if q.right {
            if let Some(e164) = q.enrol {
                let n = self
                    .run(
                        tx,
                        "INSERT INTO smsotp.mobiles(username, e164, updated_at) VALUES ($1, $2, $3)
                         ON CONFLICT (username) DO NOTHING",
                        &[&user, &e164, &now],
                    )
                    .await?;
                enrolled = Some(n == 1);
            }
            // A refused enrolment is no success to remember.
            if let (Some(ctx), None | Some(true)) = (q.grace, enrolled) {
                self.stamp_in(tx, user, ctx, now).await?;
            }
        }
        Ok(Guess::Judged {
            now,
            lock: LockState::from_row(after.failures, after.locked_until, after.lockouts, now),
            enrolled,
        })
    }

    pub(super) async fn backup_charge_in(
        &self,
        tx: &Transaction<'_>,
        user: &str,
        id: &str,
        l: &Lockout,
        now: i64,
    ) -> Result<BackupCharge, StoreError> {
        if let Err(until) = self.charge_in(tx, Budget::Backup, user, now, l).await? {
            return Ok(BackupCharge::Locked { now, until });
        }
        let hash = self
            .opt(
                tx,
                "SELECT hash FROM smsotp.backup_codes WHERE username = $1 AND id = $2 AND used_at IS NULL",
                &[&user, &id],
            )
            .await?
            .map(|r| r.get(0));
        Ok(BackupCharge::Granted { hash })
    }

    pub(super) async fn backup_settle_in(
        &self,
        tx: &Transaction<'_>,
        q: &BackupSettle<'_>,
        now: i64,
    ) -> Result<BackupSettled, StoreError> {
        // A conditional UPDATE: of concurrent spenders, PostgreSQL lets
        // the first commit and re-checks the others against it.
        let spent = q.matched
            && self
                .run(
                    tx,
                    "UPDATE smsotp.backup_codes SET used_at = $3 WHERE username = $1 AND id = $2 AND used_at IS NULL",
                    &[&q.user, &q.id, &now],
                )
                .await?
                == 1;
        let after = self
            .judge_in(tx, Budget::Backup, q.user, spent, now, q.lockout)
            .await?;
        let left = self.backup_left_in(tx, q.user).await?;
        if let (true, Some(ctx)) = (spent, q.grace) {
            self.stamp_in(tx, q.user, ctx, now).await?;
        }
        Ok(BackupSettled {
            now,
            spent,
            left,
            locked_until: (after.locked_until > now).then_some(after.locked_until),
        })
    }
}
