//! Shared by the `login_*` tests: `Login` driven directly on a temporary
//! SQLite store with a fixed clock and the outbox provider, so the login
//! rules run in milliseconds without PAM or root. A test reads its
//! figures from here: the SMS the outbox holds, the store requests made,
//! the store's clock.

#![allow(dead_code)] // each test binary uses a different part

use smsotp_proto::{BeginRequest, ChallengeInfo, Response, VerifyMethod};
use smsotpd::authz::Peer;
use smsotpd::login::Login;
use smsotpd::state::{Runtime, State};
use smsotpd::store::{Clock, SqliteStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The store's clock at the start of every test.
pub const START: i64 = 1_796_000_000;
/// `root`'s number in the default users.toml.
pub const ROOT_MOBILE: &str = "+15551234567";
/// The remote host of every request `request` builds.
pub const RHOST: &str = "203.0.113.9";

/// The answer to a right SMS code from a user without backup codes.
pub const SMS_VERIFIED: Response = Response::Verified {
    method: VerifyMethod::Sms,
    backup_codes_left: None,
};

pub struct Flow {
    dir: tempfile::TempDir,
    pub state: Arc<State>,
    pub store: Arc<SqliteStore>,
    pub clock: Clock,
}

impl Flow {
    /// `root` (an account every system has) with a number in users.toml;
    /// `extra`: config lines before the `[store]` section.
    pub fn new(extra: &str) -> Flow {
        Flow::with_users(&format!("root = \"{ROOT_MOBILE}\"\n"), extra)
    }

    /// `users`: the lines of users.toml's `[users]` table.
    pub fn with_users(users: &str, extra: &str) -> Flow {
        let dir = tempfile::tempdir().unwrap();
        let config_path = write_config(dir.path(), users, extra);
        let runtime = Runtime::load(&config_path).unwrap();
        let clock = Clock::fixed(START);
        let store = Arc::new(
            SqliteStore::open(&runtime.config.store)
                .unwrap()
                .with_clock(clock.clone()),
        );
        let state = State::new(config_path, runtime, store.clone());
        Flow {
            dir,
            state,
            store,
            clock,
        }
    }

    /// `root` logging in over sshd from `RHOST`, as root asks.
    pub async fn begin(&self) -> (Option<Login>, Response) {
        self.begin_with(request("root", "sshd")).await
    }

    pub async fn begin_with(&self, req: BeginRequest) -> (Option<Login>, Response) {
        let (login, resp, _) = Login::begin(&self.state, Peer { uid: 0, pid: None }, req).await;
        (login, resp)
    }

    /// Every SMS in the outbox, oldest first (`to`, `body`).
    pub fn outbox(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("outbox.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The code of the latest SMS in the outbox.
    pub fn last_code(&self) -> String {
        let last = self.outbox().pop().expect("an SMS in the outbox");
        code_in(last["body"].as_str().unwrap())
    }

    pub fn sent(&self) -> usize {
        self.outbox().len()
    }

    /// The outbox count once notices sent in the background had their
    /// time (a lockout notice must not slow a login, so it is spawned):
    /// waits until `expected` SMS are there (at most 5 s, so a loaded
    /// machine does not fail the test), then 100 ms more, so that one
    /// notice too many would still be counted.
    pub async fn sent_after_notices(&self, expected: usize) -> usize {
        for _ in 0..250 {
            if self.sent() >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.sent()
    }
}

/// The code in an SMS of the default text ("... code is 12345678. ...").
pub fn code_in(body: &str) -> String {
    let after = body.split(" is ").nth(1).expect("a code in the SMS");
    after.split('.').next().unwrap().to_string()
}

/// A daemon's files in `dir`: users.toml with the `users` lines of its
/// `[users]` table, the config (`extra` at its top level, the store, the
/// outbox provider, the socket `smsotpd.sock`); the config's path.
pub fn write_config(dir: &Path, users: &str, extra: &str) -> PathBuf {
    let users_file = dir.join("users.toml");
    std::fs::write(&users_file, format!("[users]\n{users}")).unwrap();
    let config = format!(
        "socket = {:?}\nusers_file = {:?}\n{extra}\n[store]\npath = {:?}\n[[provider]]\ntype = \"outbox\"\npath = {:?}\n",
        dir.join("smsotpd.sock"),
        users_file,
        dir.join("state.db"),
        dir.join("outbox.jsonl")
    );
    let config_path = dir.join("smsotpd.toml");
    std::fs::write(&config_path, config).unwrap();
    config_path
}

/// A Begin for `user` at `service` from `RHOST`, without a tty.
pub fn request(user: &str, service: &str) -> BeginRequest {
    BeginRequest {
        user: user.into(),
        service: service.into(),
        rhost: Some(RHOST.into()),
        tty: None,
        command: None,
    }
}

/// A Begin for `root` at `service` on `tty`, without a remote host, as
/// sudo and su ask.
pub fn on_tty(service: &str, tty: &str) -> BeginRequest {
    BeginRequest {
        rhost: None,
        tty: Some(tty.into()),
        ..request("root", service)
    }
}

/// The challenge `resp` opens; any other answer fails the test.
pub fn challenge(resp: Response) -> ChallengeInfo {
    match resp {
        Response::Challenge(info) => info,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

/// Same length, another digit in front: never the code.
pub fn wrong(code: &str) -> String {
    let first = if code.starts_with('1') { '2' } else { '1' };
    format!("{first}{}", &code[1..])
}
