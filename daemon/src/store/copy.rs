//! Moving a host into a fleet: a SQLite store file copied into the
//! PostgreSQL store, so nobody re-enrols and nothing already spent or
//! locked comes back to life.
//!
//! One PostgreSQL transaction: the copy lands whole or not at all. Every
//! rule keeps the stricter or the fleet's value, so running it twice (or
//! after the fleet has moved on) changes nothing:
//! - numbers and opt-outs: the fleet's row wins; a missing one is added.
//! - failure counters and lockouts (SMS and backup): each column takes the
//!   larger of the two (the later `locked_until`, more failures, more
//!   lockouts): a lock set on either side holds.
//! - backup codes: a user with no codes in the fleet gets the file's set
//!   (hashes and used stamps); a user who has a set keeps it, and only a
//!   code of the same id and hash that the file says was used is marked
//!   used (a code spent anywhere stays spent, none is revived or added).
//! - grace stamps (they name their host): the later one.
//! - the send counts are not copied: budgets count from the move on.

use super::pg_connect::{self, describe};
use super::pg_schema::{MIGRATIONS, SCHEMA};
use super::StoreError;
use rusqlite::{Connection, OpenFlags};
use smsotp_config::perms::{self, Role};
use smsotp_config::PostgresConfig;
use std::path::{Path, PathBuf};

/// A file larger than this many rows in one table is refused: the copy
/// holds it in memory, and no single host has that many users.
const MAX_ROWS: i64 = 2_000_000;

/// Rows in the file and rows the copy added or changed, per table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub table: &'static str,
    pub read: u64,
    pub written: u64,
}

type Counter = (String, i64, i64, i64, i64, i64);

/// What is read from the file (all of it, before PostgreSQL is touched).
struct Rows {
    mobiles: Vec<(String, String, i64)>,
    failures: Vec<Counter>,
    backup_failures: Vec<Counter>,
    backup_codes: Vec<(String, String, String, i64, Option<i64>)>,
    opt_outs: Vec<(String, i64)>,
    successes: Vec<(String, String, i64)>,
}

/// Copies `file` into the database of `pg`; see the module for the rules.
pub async fn sqlite_into_postgres(
    file: &Path,
    pg: &PostgresConfig,
) -> Result<Vec<Copied>, StoreError> {
    let path = file.to_path_buf();
    let rows = tokio::task::spawn_blocking(move || read_file(&path))
        .await
        .map_err(|e| fail(file, format!("reader stopped: {e}")))??;
    write_pg(&rows, pg).await
}

fn fail(file: &Path, message: impl Into<String>) -> StoreError {
    StoreError::Backend {
        path: file.display().to_string(),
        message: message.into(),
    }
}

fn read_file(file: &PathBuf) -> Result<Rows, StoreError> {
    let e = |m: String| fail(file, m);
    // The daemon's own rule for its store: a file others could have
    // written could carry forged unlocks or backup codes into the fleet.
    perms::check(file, Role::Store).map_err(|m| e(m.to_string()))?;
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|x| e(x.to_string()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|x| e(x.to_string()))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|x| e(x.to_string()))?;
    if version < 1 || version as usize > super::schema::MIGRATIONS.len() {
        return Err(e(format!(
            "schema version {version} is not one this smsotpd knows (1..={})",
            super::schema::MIGRATIONS.len()
        )));
    }
    for table in [
        "mobiles",
        "failures",
        "backup_codes",
        "opt_outs",
        "successes",
    ] {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|x| e(x.to_string()))?;
        if n > MAX_ROWS {
            return Err(e(format!("{table} has {n} rows, more than {MAX_ROWS}")));
        }
    }
    let sql = |x: rusqlite::Error| e(x.to_string());
    // Version 1 had no backup budget and no lock notices.
    let notified = if version >= 2 { "notified_until" } else { "0" };
    Ok(Rows {
        mobiles: all(&conn, "SELECT user, e164, updated_at FROM mobiles", |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(sql)?,
        failures: counters(&conn, "failures", notified).map_err(sql)?,
        backup_failures: if version >= 2 {
            counters(&conn, "backup_failures", "0").map_err(sql)?
        } else {
            Vec::new()
        },
        backup_codes: all(
            &conn,
            "SELECT user, id, hash, created_at, used_at FROM backup_codes",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .map_err(sql)?,
        opt_outs: all(&conn, "SELECT user, at FROM opt_outs", |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(sql)?,
        successes: all(&conn, "SELECT user, context, at FROM successes", |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(sql)?,
    })
}

/// Every row of one query.
fn all<T>(
    conn: &Connection,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    conn.prepare(sql)?.query_map([], row)?.collect()
}

fn counters(conn: &Connection, table: &str, notified: &str) -> rusqlite::Result<Vec<Counter>> {
    let sql = format!(
        "SELECT user, failures, window_start, locked_until, lockouts, {notified} FROM {table}"
    );
    all(conn, &sql, |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
}

/// Larger of each column; the row is only written when one grows, so a
/// second run counts nothing.
const MERGE_FAILURES: &str = "INSERT INTO smsotp.failures AS f
        (username, failures, window_start, locked_until, lockouts, notified_until)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (username) DO UPDATE SET
        failures = GREATEST(f.failures, excluded.failures),
        window_start = GREATEST(f.window_start, excluded.window_start),
        locked_until = GREATEST(f.locked_until, excluded.locked_until),
        lockouts = GREATEST(f.lockouts, excluded.lockouts),
        notified_until = GREATEST(f.notified_until, excluded.notified_until)
     WHERE f.failures < excluded.failures OR f.window_start < excluded.window_start
        OR f.locked_until < excluded.locked_until OR f.lockouts < excluded.lockouts
        OR f.notified_until < excluded.notified_until";
const MERGE_BACKUP_FAILURES: &str = "INSERT INTO smsotp.backup_failures AS f
        (username, failures, window_start, locked_until, lockouts)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (username) DO UPDATE SET
        failures = GREATEST(f.failures, excluded.failures),
        window_start = GREATEST(f.window_start, excluded.window_start),
        locked_until = GREATEST(f.locked_until, excluded.locked_until),
        lockouts = GREATEST(f.lockouts, excluded.lockouts)
     WHERE f.failures < excluded.failures OR f.window_start < excluded.window_start
        OR f.locked_until < excluded.locked_until OR f.lockouts < excluded.lockouts";

async fn write_pg(rows: &Rows, cfg: &PostgresConfig) -> Result<Vec<Copied>, StoreError> {
    let label = pg_connect::label(cfg);
    let e = |m: String| StoreError::Backend {
        path: label.clone(),
        message: m,
    };
    let pg = |x: tokio_postgres::Error| e(describe(&x));
    let pool = pg_connect::pool(cfg)?;
    let mut client = pool
        .get()
        .await
        .map_err(|x| e(format!("cannot reach the database: {x}")))?;
    let tx = client.transaction().await.map_err(pg)?;
    // The daemon migrated at start; a copy into an older or newer schema
    // would write columns that mean something else.
    let version: i32 = tx
        .query_one(
            &format!("SELECT COALESCE(MAX(version), 0) FROM {SCHEMA}.schema_version"),
            &[],
        )
        .await
        .map_err(pg)?
        .get(0);
    if version as usize != MIGRATIONS.len() {
        return Err(e(format!(
            "schema version {version}, this smsotpd writes {}",
            MIGRATIONS.len()
        )));
    }
    let mut out = Vec::new();
    let mut n = 0;
    for (user, e164, at) in &rows.mobiles {
        n += tx
            .execute(
                "INSERT INTO smsotp.mobiles(username, e164, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (username) DO NOTHING",
                &[user, e164, at],
            )
            .await
            .map_err(pg)?;
    }
    out.push(copied("mobiles", rows.mobiles.len(), n));
    let mut n = 0;
    for (user, f, w, l, k, notified) in &rows.failures {
        n += tx
            .execute(MERGE_FAILURES, &[user, f, w, l, k, notified])
            .await
            .map_err(pg)?;
    }
    out.push(copied("failures", rows.failures.len(), n));
    let mut n = 0;
    for (user, f, w, l, k, _) in &rows.backup_failures {
        n += tx
            .execute(MERGE_BACKUP_FAILURES, &[user, f, w, l, k])
            .await
            .map_err(pg)?;
    }
    out.push(copied("backup_failures", rows.backup_failures.len(), n));
    let mut n = 0;
    let mut has_set = std::collections::HashMap::new();
    for (user, id, hash, created, used) in &rows.backup_codes {
        if !has_set.contains_key(user) {
            let count: i64 = tx
                .query_one(
                    "SELECT count(*) FROM smsotp.backup_codes WHERE username = $1",
                    &[user],
                )
                .await
                .map_err(pg)?
                .get(0);
            has_set.insert(user.clone(), count > 0);
        }
        n += if !has_set[user] {
            tx.execute(
                "INSERT INTO smsotp.backup_codes(username, id, hash, created_at, used_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username, id) DO NOTHING",
                &[user, id, hash, created, used],
            )
            .await
            .map_err(pg)?
        } else if used.is_some() {
            tx.execute(
                "UPDATE smsotp.backup_codes SET used_at = $4
                 WHERE username = $1 AND id = $2 AND hash = $3 AND used_at IS NULL",
                &[user, id, hash, used],
            )
            .await
            .map_err(pg)?
        } else {
            0
        };
    }
    out.push(copied("backup_codes", rows.backup_codes.len(), n));
    let mut n = 0;
    for (user, at) in &rows.opt_outs {
        n += tx
            .execute(
                "INSERT INTO smsotp.opt_outs(username, at) VALUES ($1, $2)
                 ON CONFLICT (username) DO NOTHING",
                &[user, at],
            )
            .await
            .map_err(pg)?;
    }
    out.push(copied("opt_outs", rows.opt_outs.len(), n));
    let mut n = 0;
    for (user, context, at) in &rows.successes {
        n += tx
            .execute(
                "INSERT INTO smsotp.successes AS s(username, context, at) VALUES ($1, $2, $3)
                 ON CONFLICT (username, context) DO UPDATE SET at = excluded.at
                 WHERE s.at < excluded.at",
                &[user, context, at],
            )
            .await
            .map_err(pg)?;
    }
    out.push(copied("successes", rows.successes.len(), n));
    tx.commit().await.map_err(pg)?;
    Ok(out)
}

fn copied(table: &'static str, read: usize, written: u64) -> Copied {
    Copied {
        table,
        read: read as u64,
        written,
    }
}

/// One finding of [`target_health`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// What a copy (and `smsotpctl doctor`) needs of the database, on a
/// connection of its own: reachable, at this smsotpd's schema version,
/// and writable (a write rolled back: a standby or a read-only role
/// fails here, not at the first login).
pub async fn target_health(cfg: &PostgresConfig) -> Vec<Check> {
    let check = |name, ok, detail: String| Check { name, ok, detail };
    let pool = match pg_connect::pool(cfg) {
        Ok(p) => p,
        Err(e) => return vec![check("reachable", false, e.to_string())],
    };
    let mut client = match pool.get().await {
        Ok(c) => c,
        Err(e) => {
            let why = match &e {
                deadpool_postgres::PoolError::Backend(pg) => describe(pg),
                other => other.to_string(),
            };
            return vec![check("reachable", false, why)];
        }
    };
    let mut out = vec![check("reachable", true, pg_connect::label(cfg))];
    let version = client
        .query_one(
            &format!("SELECT COALESCE(MAX(version), 0) FROM {SCHEMA}.schema_version"),
            &[],
        )
        .await
        .map(|r| r.get::<_, i32>(0));
    out.push(match version {
        Ok(v) if v as usize == MIGRATIONS.len() => check("schema", true, format!("version {v}")),
        Ok(v) => check(
            "schema",
            false,
            format!("version {v}, this smsotpd expects {}", MIGRATIONS.len()),
        ),
        Err(e) => check("schema", false, describe(&e)),
    });
    let written = async {
        let tx = client.transaction().await?;
        tx.execute(
            &format!("UPDATE {SCHEMA}.schema_version SET version = version"),
            &[],
        )
        .await?;
        tx.rollback().await
    }
    .await;
    out.push(match written {
        Ok(()) => check(
            "writable",
            true,
            "a write was accepted (and rolled back)".into(),
        ),
        Err(e) => check("writable", false, describe(&e)),
    });
    out
}
