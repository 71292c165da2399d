//! What every test of the conformance suite shares: two handles on one
//! database and the login requests they answer. Single-handle checks
//! alternate handles, so a value cached in one handle would show; racing
//! checks split the callers between them. Time is the pair's fixed clock,
//! moved with `p.clock.advance`.

use smsotp_config::{GlobalScope, Lockout, Resend, SendBudget};
use smsotpd::rules::challenge::Step;
use smsotpd::store::{
    BackupSettle, ChallengeOutcome, ChallengeQuery, Clock, Guess, GuessQuery, LockState, Number,
    SendKind, SendRequest, Store,
};
use std::sync::Arc;
use std::time::Duration;

/// Two handles on one fresh database, and what keeps the database alive
/// (a temporary directory, a throwaway PostgreSQL).
pub struct Pair {
    pub a: Arc<dyn Store>,
    pub b: Arc<dyn Store>,
    /// The fixed clock both handles read.
    pub clock: Clock,
    _keep: Box<dyn std::any::Any + Send>,
}

impl Pair {
    pub fn new(
        a: Arc<dyn Store>,
        b: Arc<dyn Store>,
        clock: Clock,
        keep: Box<dyn std::any::Any + Send>,
    ) -> Pair {
        Pair {
            a,
            b,
            clock,
            _keep: keep,
        }
    }

    /// The handle for the n-th of many racing callers.
    pub fn nth(&self, n: usize) -> Arc<dyn Store> {
        Arc::clone(if n % 2 == 0 { &self.a } else { &self.b })
    }

    /// The fixed clock's time.
    pub fn now(&self) -> i64 {
        self.clock
            .fixed_now()
            .expect("the suite runs on a fixed clock")
    }
}

pub fn lockout() -> Lockout {
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

pub fn budget(per_user: u32, global: u32, scope: GlobalScope) -> SendBudget {
    SendBudget {
        per_user_per_hour: per_user,
        per_rhost_per_hour: 1000,
        global_per_hour: global,
        global_scope: scope,
        allowed_countries: vec![],
    }
}

/// Resends as often as sends, without a cooldown.
pub fn resend() -> Resend {
    Resend {
        enabled: true,
        per_user_per_hour: 100,
        cooldown: Duration::from_secs(0),
    }
}

/// The grace context a right [`guess`] stamps.
pub const TTY: &str = "host-a:tty1";

/// The grace length [`in_grace`] asks for.
pub const GRACE_SECS: u64 = 300;

/// What a `Begin` (or, with `kind`, a `Resend`) of `user` from `host`
/// asks, to the number stored for the user.
pub struct Begin<'a> {
    pub user: &'a str,
    pub host: &'a str,
    pub rhost: Option<&'a str>,
    pub kind: SendKind,
    pub grace: Option<(&'a str, u64)>,
    pub opt_out_counts: bool,
    pub backup_counts: bool,
    /// Only look: reserve no send and claim no lockout notice.
    pub look: bool,
    pub budget: &'a SendBudget,
    pub resend: Resend,
}

impl<'a> Begin<'a> {
    pub fn new(user: &'a str, budget: &'a SendBudget) -> Begin<'a> {
        Begin {
            user,
            host: "host-a",
            rhost: Some("203.0.113.9"),
            kind: SendKind::First,
            grace: None,
            opt_out_counts: false,
            backup_counts: false,
            look: false,
            budget,
            resend: resend(),
        }
    }

    pub async fn on(&self, s: &dyn Store) -> ChallengeOutcome {
        s.challenge(ChallengeQuery {
            grace: self.grace,
            opt_out_counts: self.opt_out_counts,
            number: Number::Stored,
            backup_counts: self.backup_counts,
            send_without_number: false,
            reserve: !self.look,
            notice: !self.look,
            send: SendRequest {
                user: self.user,
                rhost: self.rhost,
                host: self.host,
                kind: self.kind,
                budget: self.budget,
                resend: &self.resend,
            },
        })
        .await
        .unwrap()
    }
}

/// Whether a success of `user` in `context` would skip the code now
/// (a look that changes nothing).
pub async fn in_grace(s: &dyn Store, user: &str, context: &str) -> bool {
    let b = budget(1000, 1000, GlobalScope::Host);
    let look = Begin {
        grace: Some((context, GRACE_SECS)),
        look: true,
        ..Begin::new(user, &b)
    };
    look.on(s).await.step == Step::Grace
}

/// A guess of `user` at an SMS code, stamping `grace` if right.
pub async fn guess_in(s: &dyn Store, user: &str, right: bool, grace: Option<&str>) -> Guess {
    let l = lockout();
    s.guess(GuessQuery {
        user,
        lockout: &l,
        right,
        grace,
        enrol: None,
    })
    .await
    .unwrap()
}

/// A guess of `user` at an SMS code in the context [`TTY`].
pub async fn guess(s: &dyn Store, user: &str, right: bool) -> Guess {
    guess_in(s, user, right, Some(TTY)).await
}

pub fn is_judged(g: &Guess) -> bool {
    matches!(g, Guess::Judged { .. })
}

/// The lock state after a judged guess; panics on a refused one.
pub fn judged(g: Guess) -> LockState {
    match g {
        Guess::Judged { lock, .. } => lock,
        locked => panic!("not judged: {locked:?}"),
    }
}

/// `n` wrong guesses, each judged, alternating handles; the lock state
/// after the last.
pub async fn wrongs(p: &Pair, user: &str, n: usize) -> LockState {
    let mut last = LockState::default();
    for i in 0..n {
        last = judged(guess(&*p.nth(i), user, false).await);
    }
    last
}

/// The settling of a backup-code guess at `id`, without a grace stamp.
pub fn settle<'a>(user: &'a str, id: &'a str, l: &'a Lockout, matched: bool) -> BackupSettle<'a> {
    BackupSettle {
        user,
        id,
        lockout: l,
        matched,
        grace: None,
    }
}

/// One backup code `ID1` (hash `h1`) for `user`, replacing any set.
pub async fn one_backup_code(p: &Pair, user: &str) {
    p.a.replace_backup_codes(user, vec![("ID1".into(), "h1".into())])
        .await
        .unwrap();
}

/// Runs `calls` at once, the n-th on handle n % 2; their results.
pub async fn race<T, F, Fut>(p: &Pair, calls: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..calls).map(|i| tokio::spawn(f(p.nth(i), i))).collect();
    let mut out = Vec::with_capacity(calls);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
