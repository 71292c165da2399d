//! The SQLite store against real files: budgets, lockouts, sends,
//! backup codes, migrations.

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
        decay: Duration::from_secs(86_400),
        backup_max_failures: 2,
        backup_window: Duration::from_secs(3600),
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
async fn backup_guesses_have_their_own_budget_and_a_lock_is_told_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let l = lockout();
    // The SMS budget (3) spent and locked ...
    for _ in 0..3 {
        s.begin_attempt("a", 100, &l).await.unwrap();
        s.finish_attempt("a", false, 100, &l).await.unwrap();
    }
    assert!(s.lock_state("a", 100).await.unwrap().locked_until.is_some());
    // ... leaves the backup budget (2) whole, and back.
    for _ in 0..2 {
        assert_eq!(
            s.begin_backup_attempt("a", 101, &l).await.unwrap(),
            Attempt::Granted
        );
        s.finish_backup_attempt("a", false, 101, &l).await.unwrap();
    }
    assert_eq!(
        s.begin_backup_attempt("a", 102, &l).await.unwrap(),
        Attempt::Locked { until: 101 + 3600 }
    );
    assert_eq!(
        s.backup_locked_until("a", 102).await.unwrap(),
        Some(101 + 3600)
    );
    assert_eq!(s.backup_locked_until("b", 102).await.unwrap(), None);
    // One notice per lockout, whoever asks.
    assert_eq!(s.claim_lock_notice("a", 103).await.unwrap(), Some(160));
    assert_eq!(s.claim_lock_notice("a", 104).await.unwrap(), None);
    assert_eq!(s.claim_lock_notice("b", 104).await.unwrap(), None);
    // unlock lifts both locks.
    assert!(s.unlock("a").await.unwrap());
    assert_eq!(s.backup_locked_until("a", 105).await.unwrap(), None);
}

#[tokio::test]
async fn an_enrolment_never_overwrites_a_number() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    assert!(s.add_mobile_if_none("a", "+15550000001", 1).await.unwrap());
    s.set_mobile("b", "+15550000002", 1).await.unwrap();
    assert!(!s.add_mobile_if_none("b", "+15550000003", 2).await.unwrap());
    assert_eq!(
        s.mobile("b").await.unwrap().as_deref(),
        Some("+15550000002")
    );
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
    assert_eq!(
        s.begin_backup_attempt("a", 100, &lockout()).await.unwrap(),
        Attempt::Granted
    );
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
