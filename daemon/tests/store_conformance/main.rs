//! One behaviour for every backend: each test (in [`guesses`], [`backup`],
//! [`sends`], [`accounts`]) takes two store handles on one fresh database
//! (two daemons of a fleet, or two connections to one SQLite file) and
//! drives them with the requests a login and an admin make, and every
//! backend runs all of them through [`conformance!`]. A backend that
//! passes may serve a login.

// The one PostgreSQL launcher; its outage helpers serve the e2e tests.
mod accounts;
mod backup;
mod guesses;
#[allow(dead_code)]
#[path = "../../../tests/src/pg.rs"]
mod pg;
mod sends;
mod suite;

/// One `#[tokio::test]` per suite function, each on a fresh database from
/// `$fresh` (an async fn returning a [`suite::Pair`], or `None` when the
/// backend is not installed here: then the test returns, said loudly).
macro_rules! conformance {
    ($fresh:path: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(pair) = $fresh().await else { return };
                crate::$name(&pair).await;
            }
        )*
    };
}

/// Where the pairs' fixed clock starts (late 2026).
const START: i64 = 1_796_000_000;

use accounts::*;
use backup::*;
use guesses::*;
use sends::*;

/// Every function of the suite, for each backend's `conformance!`.
macro_rules! all_conformance {
    ($fresh:path) => {
        conformance!($fresh:
            budget_locks_and_grows,
            success_clears_failures_and_window_expires,
            escalation_decays_after_a_quiet_period,
            racing_guesses_get_exactly_the_budget,
            a_begin_sees_the_lock_and_one_tells_the_owner,
            a_racing_lock_notice_is_claimed_once,
            backup_codes_spend_once,
            backup_guesses_have_their_own_budget,
            a_spent_backup_budget_without_a_lock_becomes_the_lockout,
            racing_backup_guesses_get_exactly_the_backup_budget,
            a_racing_backup_code_has_one_winner,
            a_begin_skips_or_sends_in_one_call,
            send_budgets_and_cooldown,
            racing_sends_get_exactly_the_budget,
            the_global_budget_counts_per_host_or_per_fleet,
            an_enrolment_never_overwrites_a_number,
            racing_enrolments_store_one_number,
            remove_user_forgets_everything,
            grace_stamps_are_per_context,
        );
    };
}

mod sqlite {
    use super::suite::Pair;
    use super::START;
    use smsotp_config::{StoreConfig, StoreSync};
    use smsotpd::store::{Clock, SqliteStore};
    use std::sync::Arc;

    /// Two connections on one file: the same races as two daemons would
    /// have if they could share it.
    async fn fresh() -> Option<Pair> {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            path: dir.path().join("state.db"),
            sync: StoreSync::Normal,
            backend: smsotp_config::StoreBackend::Sqlite,
            timeout: std::time::Duration::from_secs(3),
        };
        let clock = Clock::fixed(START);
        let a = SqliteStore::open(&cfg).unwrap().with_clock(clock.clone());
        let b = SqliteStore::open(&cfg).unwrap().with_clock(clock.clone());
        Some(Pair::new(Arc::new(a), Arc::new(b), clock, Box::new(dir)))
    }

    all_conformance!(fresh);
}

mod postgres {
    use super::pg::Postgres;
    use super::suite::Pair;
    use super::START;
    use smsotp_config::{PgSslMode, PostgresConfig};
    use smsotpd::store::{Clock, PostgresStore, Store};
    use std::sync::{Arc, OnceLock};

    /// One cluster for the whole test binary (a database per test): a
    /// static is never dropped, so an exit handler stops it.
    static CLUSTER: OnceLock<Option<Postgres>> = OnceLock::new();

    extern "C" fn stop_cluster() {
        if let Some(Some(pg)) = CLUSTER.get() {
            pg.stop();
        }
    }

    fn cluster() -> Option<&'static Postgres> {
        CLUSTER
            .get_or_init(|| {
                let pg = Postgres::start();
                // SAFETY: registers a plain function with no arguments.
                unsafe { libc::atexit(stop_cluster) };
                pg
            })
            .as_ref()
    }

    /// A wrong guess of user `u`.
    fn wrong_guess(l: &smsotp_config::Lockout) -> smsotpd::store::GuessQuery<'_> {
        smsotpd::store::GuessQuery {
            user: "u",
            lockout: l,
            right: false,
            grace: None,
            enrol: None,
        }
    }

    fn config(url: String) -> PostgresConfig {
        PostgresConfig {
            url,
            sslmode: PgSslMode::Disable,
            ca_file: None,
            password: None,
        }
    }

    /// Two pools on one database: two daemons of a fleet.
    async fn fresh() -> Option<Pair> {
        let url = cluster()?.database();
        let clock = Clock::fixed(START);
        let a = PostgresStore::open(&config(url.clone())).await.unwrap();
        let b = PostgresStore::open(&config(url)).await.unwrap();
        let (a, b) = (a.with_clock(clock.clone()), b.with_clock(clock.clone()));
        Some(Pair::new(Arc::new(a), Arc::new(b), clock, Box::new(())))
    }

    all_conformance!(fresh);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_daemons_starting_at_once_migrate_once() {
        let Some(pg) = cluster() else { return };
        let url = pg.database();
        let opens: Vec<_> = (0..10)
            .map(|_| {
                let cfg = config(url.clone());
                tokio::spawn(async move { PostgresStore::open(&cfg).await.map(|_| ()) })
            })
            .collect();
        for o in opens {
            o.await.unwrap().unwrap();
        }
        let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
        assert_eq!(
            pg.psql(db, "SELECT version FROM smsotp.schema_version"),
            "3"
        );
        // And once more: nothing left to do.
        let s = PostgresStore::open(&config(url)).await.unwrap();
        assert_eq!(s.mobile("a").await.unwrap(), None);
    }

    /// With the system clock, PostgreSQL's calls measure on the database's
    /// `now()`: the time a guess reports and the lock it sets come from
    /// the server, read between two `now()` of psql, and so do the time
    /// an admin's status reads that lock at and the stamp of a number the
    /// admin sets. (Here both clocks are one machine's; the proof that a
    /// host's skew cannot count is that no host time enters the
    /// transaction at all.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_database_clock_is_what_counts() {
        use smsotpd::store::Guess;
        let Some(pg) = cluster() else { return };
        let url = pg.database();
        let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
        let s = PostgresStore::open(&config(url.clone())).await.unwrap();
        let db_now = || -> i64 {
            pg.psql(db, "SELECT floor(extract(epoch FROM now()))::bigint")
                .parse()
                .unwrap()
        };
        let l = super::suite::lockout();
        let before = db_now();
        let mut last = None;
        for _ in 0..l.max_failures {
            let q = wrong_guess(&l);
            last = Some(s.guess(q).await.unwrap());
        }
        let after = db_now();
        let Some(Guess::Judged { now, lock, .. }) = last else {
            panic!("{last:?}")
        };
        assert!((before..=after).contains(&now), "{before} {now} {after}");
        assert_eq!(lock.locked_until, Some(now + 60));
        s.set_mobile("u", "+15551234567").await.unwrap();
        let status = s.lock_state("u").await.unwrap();
        let (stamped, last): (i64, i64) = (
            pg.psql(db, "SELECT updated_at FROM smsotp.mobiles")
                .parse()
                .unwrap(),
            db_now(),
        );
        assert!(
            now <= stamped && stamped <= status.now && status.now <= last,
            "{now} {stamped} {} {last}",
            status.now
        );
        assert_eq!(status.lock, lock);
    }

    /// A database that holds the rows a login needs (here another session
    /// keeps the counters' table locked) fails the request at the store's
    /// deadline, not at PostgreSQL's lock timeout, and nothing of it is
    /// committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_database_fails_the_request_at_its_deadline() {
        let Some(pg) = cluster() else { return };
        let url = pg.database();
        let db = url
            .rsplit('/')
            .next()
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_string();
        let s = PostgresStore::open(&config(url))
            .await
            .unwrap()
            .with_timeout(std::time::Duration::from_secs(1));
        let holder = std::thread::spawn({
            let db = db.clone();
            move || {
                pg.psql(
                    &db,
                    "BEGIN; LOCK TABLE smsotp.failures IN EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;",
                )
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        let l = super::suite::lockout();
        let started = std::time::Instant::now();
        let q = wrong_guess(&l);
        let e = s.guess(q).await.unwrap_err();
        let took = started.elapsed();
        assert!(e.to_string().contains("no answer within 1 s"), "{e}");
        assert!(took < std::time::Duration::from_millis(2500), "{took:?}");
        holder.join().unwrap();
        // The abandoned transaction charged nothing.
        assert_eq!(
            pg.psql(
                &db,
                "SELECT count(*) FROM smsotp.failures WHERE failures > 0"
            ),
            "0"
        );
        // And the store serves again on the connections it has.
        for n in 1..=2 {
            let q = wrong_guess(&l);
            let g = s.guess(q).await.unwrap();
            assert!(
                matches!(g, smsotpd::store::Guess::Judged { lock, .. } if lock.failures == n),
                "{g:?}"
            );
        }
    }

    /// verify-full against a private CA: accepted with that CA, refused
    /// (naming the certificate) with another.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_verify_full_trusts_only_the_ca_file() {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
        let Some(pg) = cluster() else { return };
        let ca = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(rcgen::DnType::CommonName, name);
            CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
        };
        let (good, other) = (ca("smsotp db CA"), ca("someone else"));
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &good).unwrap();
        pg.enable_tls(&cert.pem(), &key.serialize_pem());

        let dir = tempfile::tempdir().unwrap();
        let url = pg
            .database()
            .replace("sslmode=disable", "sslmode=verify-full");
        let open = |ca_pem: String, name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, ca_pem).unwrap();
            let cfg = PostgresConfig {
                url: url.clone(),
                sslmode: PgSslMode::VerifyFull,
                ca_file: Some(path),
                password: None,
            };
            async move { PostgresStore::open(&cfg).await }
        };
        let s = open(good.pem(), "good.pem").await.unwrap();
        s.set_mobile("a", "+15551234567").await.unwrap();
        let e = match open(other.pem(), "other.pem").await {
            Ok(_) => panic!("a server signed by another CA was trusted"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.to_lowercase().contains("certificate") || e.contains("UnknownIssuer"),
            "{e}"
        );
    }
}
