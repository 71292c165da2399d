//! Versioned schema. Each migration runs once, in order, inside a
//! transaction; `PRAGMA user_version` records how far a file has come.
//! Never edit a shipped migration: add the next one.

pub const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE mobiles (
         user TEXT PRIMARY KEY,
         e164 TEXT NOT NULL,
         updated_at INTEGER NOT NULL
     );
     CREATE TABLE failures (
         user TEXT PRIMARY KEY,
         failures INTEGER NOT NULL DEFAULT 0,
         window_start INTEGER NOT NULL DEFAULT 0,
         locked_until INTEGER NOT NULL DEFAULT 0,
         lockouts INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE sends (
         at INTEGER NOT NULL,
         user TEXT NOT NULL,
         rhost TEXT,
         kind TEXT NOT NULL
     );
     CREATE INDEX sends_at ON sends(at);
     CREATE INDEX sends_user ON sends(user, at);
     CREATE INDEX sends_rhost ON sends(rhost, at);
     CREATE TABLE backup_codes (
         user TEXT NOT NULL,
         id TEXT NOT NULL,
         hash TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         used_at INTEGER,
         PRIMARY KEY (user, id)
     );
     CREATE TABLE opt_outs (
         user TEXT PRIMARY KEY,
         at INTEGER NOT NULL
     );
     CREATE TABLE successes (
         user TEXT NOT NULL,
         context TEXT NOT NULL,
         at INTEGER NOT NULL,
         PRIMARY KEY (user, context)
     );",
    // 2: a guess budget of their own for backup codes (same columns as
    // `failures`, so one piece of code keeps both), and which lockout of
    // SMS codes its owner was already told about.
    "CREATE TABLE backup_failures (
         user TEXT PRIMARY KEY,
         failures INTEGER NOT NULL DEFAULT 0,
         window_start INTEGER NOT NULL DEFAULT 0,
         locked_until INTEGER NOT NULL DEFAULT 0,
         lockouts INTEGER NOT NULL DEFAULT 0
     );
     ALTER TABLE failures ADD COLUMN notified_until INTEGER NOT NULL DEFAULT 0;",
    // 3: the host of each send, so `global_scope = "host"` can count a
    // host's own sends once several share a store.
    "ALTER TABLE sends ADD COLUMN host TEXT NOT NULL DEFAULT '';",
    // 4: sends counted per minute instead of logged (store/sends.rs says
    // why); the last hour of the log becomes its counts.
    "CREATE TABLE send_counts (
         scope TEXT NOT NULL,
         who TEXT NOT NULL,
         minute INTEGER NOT NULL,
         n INTEGER NOT NULL,
         last_at INTEGER NOT NULL,
         PRIMARY KEY (scope, who, minute)
     );
     CREATE INDEX send_counts_minute ON send_counts(minute);
     INSERT INTO send_counts SELECT 'user', user, at / 60, COUNT(*), MAX(at)
         FROM sends GROUP BY user, at / 60;
     INSERT INTO send_counts SELECT 'resend', user, at / 60, COUNT(*), MAX(at)
         FROM sends WHERE kind = 'resend' GROUP BY user, at / 60;
     INSERT INTO send_counts SELECT 'rhost', rhost, at / 60, COUNT(*), MAX(at)
         FROM sends WHERE rhost IS NOT NULL GROUP BY rhost, at / 60;
     INSERT INTO send_counts SELECT 'host', host, at / 60, COUNT(*), MAX(at)
         FROM sends GROUP BY host, at / 60;
     DROP TABLE sends;",
];
