//! What only the SQLite store has: a file that survives reopening and
//! migrates from older versions. The behaviour every backend shares is
//! checked by daemon/tests/store_conformance, against SQLite too.

use super::*;

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
            5,
        )
        .await
        .unwrap();
        assert!(s.spend_backup_code("a", "ID1", 6).await.unwrap());
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
    assert!(s.backup_code_hash("a", "ID1").await.unwrap().is_none());
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
    let s = open(dir.path());
    let st = s.lock_state("a", 100).await.unwrap();
    assert_eq!((st.locked_until, st.lockouts), (Some(500), 2));
    assert_eq!(s.claim_lock_notice("a", 100).await.unwrap(), Some(500));
    // The backup budget's table exists (migration 2 ran), empty.
    assert_eq!(s.backup_locked_until("a", 100).await.unwrap(), None);
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
    let e = s
        .begin_attempt(Budget::Sms, "a", 10, &lockout())
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(e.to_string().contains("no answer within 1 s"), "{e}");
    // The deadline, not SQLite's 5 s busy wait, ended it.
    assert!(took < std::time::Duration::from_millis(2500), "{took:?}");
    holder.execute_batch("ROLLBACK").unwrap();
    // The job that missed its deadline finishes on the thread first (it
    // charged the guess: fail-closed); then the store answers.
    assert_eq!(s.lock_state("a", 10).await.unwrap().failures, 1);
}

/// The default lockout policy.
fn lockout() -> Lockout {
    smsotp_config::parse(Path::new("x.toml"), "")
        .unwrap()
        .lockout
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
        req::reserve(&c, &send, 1100).unwrap(),
        SendDecision::Refused {
            reason: "this account has had too many codes sent in the last hour".into(),
            retry_after: Some(17 * 60 + 3600 - 1100),
        }
    );
    assert_eq!(
        req::reserve(&c, &send, 17 * 60 + 3600).unwrap(),
        SendDecision::Allowed
    );
}
