//! What only the SQLite store has: a file that survives reopening and
//! migrates from older versions. The behaviour every backend shares is
//! checked by daemon/tests/store_conformance, against SQLite too.

use super::*;
use crate::rules::challenge::Step;

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(&StoreConfig {
        path: dir.join("state.db"),
        sync: StoreSync::Normal,
        backend: smsotp_config::StoreBackend::Sqlite,
        timeout: std::time::Duration::from_secs(3),
    })
    .unwrap()
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path());
        s.replace_backup_codes(
            "a",
            vec![("ID1".into(), "h1".into()), ("ID2".into(), "h2".into())],
        )
        .await
        .unwrap();
        let l = lockout();
        let matched = BackupSettle {
            user: "a",
            id: "ID1",
            lockout: &l,
            matched: true,
            grace: None,
        };
        assert!(s.backup_settle(matched).await.unwrap().spent);
        s.set_mobile("a", "+15551234567").await.unwrap();
        s.set_opt_out("a", true).await.unwrap();
    }
    let s = open(dir.path());
    assert_eq!(s.backup_codes_left("a").await.unwrap(), 1);
    assert_eq!(
        s.mobile("a").await.unwrap().as_deref(),
        Some("+15551234567")
    );
    assert!(s.opted_out("a").await.unwrap());
    assert_eq!(
        s.backup_charge("a", "ID1", &lockout()).await.unwrap(),
        BackupCharge::Granted { hash: None }
    );
}

/// The admin calls stamp their rows on the store's clock, as the login's
/// do (here a fixed one, far from the host's).
#[tokio::test]
async fn admin_writes_are_stamped_on_the_store_clock() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).with_clock(Clock::fixed(1234));
    s.set_mobile("a", "+15551234567").await.unwrap();
    s.replace_backup_codes("a", vec![("ID1".into(), "h1".into())])
        .await
        .unwrap();
    s.set_opt_out("a", true).await.unwrap();
    let st = s.lock_state("a").await.unwrap();
    assert_eq!((st.now, st.lock), (1234, LockState::default()));
    drop(s);
    let c = Connection::open(dir.path().join("state.db")).unwrap();
    let stamps: (i64, i64, i64) = c
        .query_row(
            "SELECT m.updated_at, b.created_at, o.at FROM mobiles m, backup_codes b, opt_outs o",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(stamps, (1234, 1234, 1234));
}

#[tokio::test]
async fn a_version_1_store_keeps_its_lockout_and_gains_the_backup_budget() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Connection::open(dir.path().join("state.db")).unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute(
            "INSERT INTO failures(user, failures, window_start, locked_until, lockouts)
             VALUES ('a', 0, 0, 500, 2)",
            [],
        )
        .unwrap();
    }
    let s = open(dir.path()).with_clock(Clock::fixed(100));
    let st = s.lock_state("a").await.unwrap().lock;
    assert_eq!((st.locked_until, st.lockouts), (Some(500), 2));
    // The lock is told (once: migration 2's notice column starts unclaimed),
    // and the backup budget's table exists, empty.
    let (m, cfg) = (Mobile::parse("+15551234567").unwrap(), defaults());
    let begin = || ChallengeQuery {
        grace: None,
        opt_out_counts: false,
        number: Number::Given(&m),
        backup_counts: true,
        send_without_number: false,
        reserve: false,
        notice: true,
        send: SendRequest {
            user: "a",
            rhost: None,
            host: "h",
            kind: SendKind::First,
            budget: &cfg.send_budget,
            resend: &cfg.resend,
        },
    };
    let first = s.challenge(begin()).await.unwrap();
    let step = |notify| Step::Locked { until: 500, notify };
    assert_eq!((first.step, first.backup_locked_until), (step(true), None));
    assert_eq!(s.challenge(begin()).await.unwrap().step, step(false));
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

/// A store held by someone else (here a writer that never commits) fails
/// the request at its deadline instead of holding the login, and the store
/// serves again once the holder lets go.
#[tokio::test]
async fn a_request_that_cannot_get_the_store_fails_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = SqliteStore::open(&StoreConfig {
        path: path.clone(),
        sync: StoreSync::Normal,
        backend: smsotp_config::StoreBackend::Sqlite,
        timeout: std::time::Duration::from_secs(1),
    })
    .unwrap();
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let l = lockout();
    let wrong = GuessQuery {
        user: "a",
        lockout: &l,
        right: false,
        grace: None,
        enrol: None,
    };
    let e = s.guess(wrong).await.unwrap_err();
    let took = started.elapsed();
    assert!(e.to_string().contains("no answer within 1 s"), "{e}");
    // The deadline, not SQLite's 5 s busy wait, ended it.
    assert!(took < std::time::Duration::from_millis(2500), "{took:?}");
    holder.execute_batch("ROLLBACK").unwrap();
    // The job that missed its deadline finishes on the thread first (it
    // charged the guess: fail-closed); then the store answers.
    assert_eq!(s.lock_state("a").await.unwrap().lock.failures, 1);
}

/// The default configuration.
fn defaults() -> smsotp_config::DaemonConfig {
    smsotp_config::parse(Path::new("x.toml"), "").unwrap()
}

fn lockout() -> Lockout {
    defaults().lockout
}

/// Migration 4 turns the last hour of the send log into per-minute counts:
/// a host upgraded mid-hour keeps every budget it had spent.
#[tokio::test]
async fn a_version_3_send_log_becomes_counts_that_keep_the_budgets() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Connection::open(dir.path().join("state.db")).unwrap();
        for m in &schema::MIGRATIONS[..3] {
            c.execute_batch(m).unwrap();
        }
        c.pragma_update(None, "user_version", 3).unwrap();
        c.execute_batch(
            "INSERT INTO sends(at, user, rhost, kind, host) VALUES
                 (1000, 'a', 'h1', 'first', 'host-a'),
                 (1010, 'a', 'h1', 'first', 'host-a'),
                 (1030, 'a', NULL, 'resend', 'host-b');",
        )
        .unwrap();
    }
    drop(open(dir.path()));
    let c = Connection::open(dir.path().join("state.db")).unwrap();
    let rows: Vec<(String, String, i64, i64, i64)> = c
        .prepare(
            "SELECT scope, who, minute, n, last_at FROM send_counts ORDER BY scope, who, minute",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let row = |s: &str, w: &str, m, n, l| (s.to_string(), w.to_string(), m, n, l);
    assert_eq!(
        rows,
        vec![
            row("host", "host-a", 16, 2, 1010),
            row("host", "host-b", 17, 1, 1030),
            row("resend", "a", 17, 1, 1030),
            row("rhost", "h1", 16, 2, 1010),
            row("user", "a", 16, 2, 1010),
            row("user", "a", 17, 1, 1030),
        ]
    );
    // The user's 3 of 3 are spent until minute 16 leaves the window.
    let send = OwnedSend {
        user: "a".into(),
        rhost: None,
        host: "host-a".into(),
        kind: SendKind::First,
        budget: smsotp_config::SendBudget {
            per_user_per_hour: 3,
            per_rhost_per_hour: 30,
            global_per_hour: 1000,
            global_scope: Default::default(),
            allowed_countries: vec![],
        },
        resend: smsotp_config::Resend {
            enabled: true,
            per_user_per_hour: 1,
            cooldown: std::time::Duration::from_secs(30),
        },
    };
    assert_eq!(
        req::reserve(&c, &send, 1100, &Default::default()).unwrap(),
        SendDecision::Refused {
            reason: "this account has had too many codes sent in the last hour".into(),
            retry_after: Some(17 * 60 + 3600 - 1100),
        }
    );
    assert_eq!(
        req::reserve(&c, &send, 17 * 60 + 3600, &Default::default()).unwrap(),
        SendDecision::Allowed
    );
}

/// A flood of sends, over hours, leaves at most the counted minutes of a
/// user behind: the table (and so every budget's read) stays bounded by
/// the window, not by the traffic.
#[tokio::test]
async fn three_hours_of_sends_leave_at_most_the_counted_minutes() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let c = Connection::open(dir.path().join("state.db")).unwrap();
    let send = OwnedSend {
        user: "a".into(),
        rhost: Some("192.0.2.7".into()),
        host: "host-a".into(),
        kind: SendKind::First,
        budget: smsotp_config::SendBudget {
            per_user_per_hour: 10_000,
            per_rhost_per_hour: 100_000,
            global_per_hour: 1_000_000,
            global_scope: Default::default(),
            allowed_countries: vec![],
        },
        resend: smsotp_config::Resend {
            enabled: true,
            per_user_per_hour: 1,
            cooldown: std::time::Duration::from_secs(30),
        },
    };
    let pruned = Default::default();
    let (start, sends) = (1_796_000_000_i64, 3 * 3600 / 5);
    for i in 0..sends {
        let d = req::reserve(&c, &send, start + 5 * i, &pruned).unwrap();
        assert_eq!(d, SendDecision::Allowed, "send {i}");
    }
    let per_scope: Vec<(String, i64)> = c
        .prepare("SELECT scope, COUNT(*) FROM send_counts GROUP BY scope ORDER BY scope")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // user, rhost and host each hold the 61 or 62 minutes still counted
    // (the oldest is pruned at the next minute's first send).
    assert_eq!(per_scope.len(), 3, "{per_scope:?}");
    for (scope, rows) in &per_scope {
        assert!(
            (61..=62).contains(rows),
            "{scope}: {rows} rows after {sends} sends"
        );
    }
}
