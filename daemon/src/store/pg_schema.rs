//! The PostgreSQL schema, versioned like SQLite's (never edit a shipped
//! migration: add the next one) but in its own list: the two engines'
//! types and names differ. Everything lives in the `smsotp` schema, so
//! the tables can share a database with others; the user column is
//! `username` (`user` is reserved in PostgreSQL); times are BIGINT Unix
//! seconds.

pub const SCHEMA: &str = "smsotp";

/// Any fixed number that other applications are unlikely to use: every
/// daemon takes this advisory lock before migrating, so ten daemons
/// starting at once migrate one after another, and the nine that wait
/// then find nothing left to do.
pub const MIGRATION_LOCK: i64 = 0x736d_736f_7470; // "smsotp"

pub const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's migrations 1 and 2 made.
    "CREATE TABLE smsotp.mobiles (
         username TEXT PRIMARY KEY,
         e164 TEXT NOT NULL,
         updated_at BIGINT NOT NULL
     );
     CREATE TABLE smsotp.failures (
         username TEXT PRIMARY KEY,
         failures BIGINT NOT NULL DEFAULT 0,
         window_start BIGINT NOT NULL DEFAULT 0,
         locked_until BIGINT NOT NULL DEFAULT 0,
         lockouts BIGINT NOT NULL DEFAULT 0,
         notified_until BIGINT NOT NULL DEFAULT 0
     );
     CREATE TABLE smsotp.backup_failures (
         username TEXT PRIMARY KEY,
         failures BIGINT NOT NULL DEFAULT 0,
         window_start BIGINT NOT NULL DEFAULT 0,
         locked_until BIGINT NOT NULL DEFAULT 0,
         lockouts BIGINT NOT NULL DEFAULT 0
     );
     CREATE TABLE smsotp.sends (
         at BIGINT NOT NULL,
         username TEXT NOT NULL,
         rhost TEXT,
         kind TEXT NOT NULL
     );
     CREATE INDEX sends_at ON smsotp.sends(at);
     CREATE INDEX sends_user ON smsotp.sends(username, at);
     CREATE INDEX sends_rhost ON smsotp.sends(rhost, at);
     CREATE TABLE smsotp.backup_codes (
         username TEXT NOT NULL,
         id TEXT NOT NULL,
         hash TEXT NOT NULL,
         created_at BIGINT NOT NULL,
         used_at BIGINT,
         PRIMARY KEY (username, id)
     );
     CREATE TABLE smsotp.opt_outs (
         username TEXT PRIMARY KEY,
         at BIGINT NOT NULL
     );
     CREATE TABLE smsotp.successes (
         username TEXT NOT NULL,
         context TEXT NOT NULL,
         at BIGINT NOT NULL,
         PRIMARY KEY (username, context)
     );",
    // 2: the host of each send, for `global_scope = "host"`.
    "ALTER TABLE smsotp.sends ADD COLUMN host TEXT NOT NULL DEFAULT '';
     CREATE INDEX sends_host ON smsotp.sends(host, at);",
    // 3: sends counted per minute instead of logged (store/sends.rs says
    // why); the last hour of the log becomes its counts.
    "CREATE TABLE smsotp.send_counts (
         scope TEXT NOT NULL,
         who TEXT NOT NULL,
         minute BIGINT NOT NULL,
         n BIGINT NOT NULL,
         last_at BIGINT NOT NULL,
         PRIMARY KEY (scope, who, minute)
     );
     CREATE INDEX send_counts_minute ON smsotp.send_counts(minute);
     INSERT INTO smsotp.send_counts SELECT 'user', username, at / 60, COUNT(*), MAX(at)
         FROM smsotp.sends GROUP BY username, at / 60;
     INSERT INTO smsotp.send_counts SELECT 'resend', username, at / 60, COUNT(*), MAX(at)
         FROM smsotp.sends WHERE kind = 'resend' GROUP BY username, at / 60;
     INSERT INTO smsotp.send_counts SELECT 'rhost', rhost, at / 60, COUNT(*), MAX(at)
         FROM smsotp.sends WHERE rhost IS NOT NULL GROUP BY rhost, at / 60;
     INSERT INTO smsotp.send_counts SELECT 'host', host, at / 60, COUNT(*), MAX(at)
         FROM smsotp.sends GROUP BY host, at / 60;
     DROP TABLE smsotp.sends;",
];
