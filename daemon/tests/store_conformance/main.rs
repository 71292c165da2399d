//! One behaviour for every backend: each test in [`suite`] takes two store
//! handles on one fresh database (two daemons of a fleet, or two
//! connections to one SQLite file), and every backend runs all of them
//! through [`conformance!`]. A backend that passes may serve a login.

mod suite;

/// One `#[tokio::test]` per suite function, each on a fresh database from
/// `$fresh` (an async fn returning a [`suite::Pair`]).
macro_rules! conformance {
    ($fresh:path: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let pair = $fresh().await;
                crate::suite::$name(&pair).await;
            }
        )*
    };
}

/// Every function of the suite, for each backend's `conformance!`.
macro_rules! all_conformance {
    ($fresh:path) => {
        conformance!($fresh:
            budget_locks_and_grows,
            a_spent_budget_without_a_lock_becomes_the_lockout,
            success_clears_failures_and_window_expires,
            escalation_decays_after_a_quiet_period,
            send_budgets_and_cooldown,
            backup_codes_spend_once,
            backup_guesses_have_their_own_budget_and_a_lock_is_told_once,
            an_enrolment_never_overwrites_a_number,
            remove_user_forgets_everything,
            grace_stamps_are_per_context,
            racing_guesses_get_exactly_the_budget,
            racing_backup_guesses_get_exactly_the_backup_budget,
            a_racing_backup_code_has_one_winner,
            racing_sends_get_exactly_the_budget,
            a_racing_lock_notice_is_claimed_once,
            racing_enrolments_store_one_number,
        );
    };
}

mod sqlite {
    use super::suite::Pair;
    use smsotp_config::{StoreConfig, StoreSync};
    use smsotpd::store::SqliteStore;
    use std::sync::Arc;

    /// Two connections on one file: the same races as two daemons would
    /// have if they could share it.
    async fn fresh() -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            path: dir.path().join("state.db"),
            sync: StoreSync::Normal,
        };
        let a = SqliteStore::open(&cfg).unwrap();
        let b = SqliteStore::open(&cfg).unwrap();
        Pair::new(Arc::new(a), Arc::new(b), Box::new(dir))
    }

    all_conformance!(fresh);
}
