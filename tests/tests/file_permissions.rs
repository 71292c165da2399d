//! The real daemon refuses files that someone other than root could change
//! (or, for credentials, read): it does not start, `--check-config` fails
//! with the same sentence (so does `smsotpctl check-config`, for the
//! config, users file and store), and a SIGHUP with such a file keeps the old
//! configuration. (tests/tests/permissions.rs is about who may ask the
//! daemon for what, not about files.)

use smsotp_proto::{BeginRequest, Client, Request, Response};
use smsotp_tests::daemon::{toml_str, Daemon};
use smsotp_tests::{paths, require_root, unique_name};
use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;
/// Debian's `staff` group: the message names it.
const STAFF: u32 = 50;

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A daemon's files in a temp dir as an admin keeps them: config 0600,
/// users 0644, everything owned by root.
struct Files {
    dir: tempfile::TempDir,
    config: PathBuf,
    users: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::Builder::new()
            .prefix("smsotp-perms-")
            .tempdir_in("/tmp")
            .unwrap();
        chmod(dir.path(), 0o755);
        let users = dir.path().join("users.toml");
        fs::write(&users, "[users]\nalice = \"+15550001111\"\n").unwrap();
        chmod(&users, 0o644);
        let f = Files {
            config: dir.path().join("smsotpd.toml"),
            dir,
            users,
        };
        f.write_config(None, None);
        f
    }

    /// `store` is the store path (in the temp dir when `None`), `provider`
    /// one `[[provider]]` body (an outbox in the temp dir when `None`).
    fn write_config(&self, store: Option<&Path>, provider: Option<&str>) {
        let d = self.dir.path();
        let q = |p: &Path| toml_str(&p.to_string_lossy());
        let outbox = format!("type = \"outbox\"\npath = {}", q(&d.join("outbox.jsonl")));
        fs::write(
            &self.config,
            format!(
                "socket = {}\nroot_socket = {}\nusers_file = {}\n\n[store]\npath = {}\n\n[[provider]]\n{}\n",
                q(&d.join("smsotpd.sock")),
                // Never the installed daemon's /run/smsotp/root.sock.
                q(&d.join("root.sock")),
                q(&self.users),
                q(&store.map_or_else(|| d.join("state.db"), Path::to_path_buf)),
                provider.unwrap_or(&outbox),
            ),
        )
        .unwrap();
        chmod(&self.config, 0o600);
    }

    /// `smsotpd --check-config`: exit status and stderr.
    fn check_config(&self) -> (Option<i32>, String) {
        self.checked_by(paths::smsotpd(), "--check-config")
    }

    /// `smsotpctl check-config`: exit status and stderr.
    fn ctl_check_config(&self) -> (Option<i32>, String) {
        self.checked_by(paths::smsotpctl(), "check-config")
    }

    fn checked_by(&self, program: PathBuf, check: &str) -> (Option<i32>, String) {
        let out = Command::new(program)
            .arg("--config")
            .arg(&self.config)
            .arg(check)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts the real daemon; it must exit by itself within 10 s (a
    /// daemon that serves is killed and the test fails).
    fn start_refused(&self) -> (Option<i32>, String) {
        let mut child = Command::new(paths::smsotpd())
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("smsotpd started serving despite the file's permissions");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        (status.code(), err)
    }

    /// Both ways in refuse with exit status 2 and `want` on stderr, and so
    /// does `smsotpctl check-config` for the files it checks (all but the
    /// providers', which only the daemon builds).
    #[track_caller]
    fn assert_refused(&self, want: &str) {
        let mut ways = vec![
            ("--check-config", self.check_config(), want.to_string()),
            ("start", self.start_refused(), want.to_string()),
        ];
        if let Some(rest) = want.strip_prefix("smsotpd: ") {
            ways.push((
                "smsotpctl check-config",
                self.ctl_check_config(),
                format!("smsotpctl: {rest}"),
            ));
        }
        for (how, (code, err), want) in ways {
            assert_eq!(code, Some(2), "{how}: {err}");
            assert!(err.contains(&want), "{how}: wanted {want:?} in:\n{err}");
        }
    }

    #[track_caller]
    fn assert_accepted(&self) {
        for (how, (code, err)) in [
            ("--check-config", self.check_config()),
            ("smsotpctl check-config", self.ctl_check_config()),
        ] {
            assert_eq!(code, Some(0), "{how}: {err}");
        }
    }
}

#[test]
fn a_group_writable_users_file_is_refused() {
    require_root("chgrp");
    let f = Files::new();
    chown(&f.users, None, Some(STAFF)).unwrap();
    chmod(&f.users, 0o664);
    let u = f.users.display();
    f.assert_refused(&format!(
        "smsotpd: {u} is writable by group staff (mode 0664): anyone in that group could \
         change a user's number. Fix: chmod go-w {u}\n"
    ));
    chmod(&f.users, 0o644);
    f.assert_accepted();
}

#[test]
fn an_other_writable_secret_file_is_refused() {
    require_root("root-owned files");
    let f = Files::new();
    let token = f.dir.path().join("twilio.token");
    fs::write(&token, "tw-token-secret-value\n").unwrap();
    chmod(&token, 0o602);
    f.write_config(
        None,
        Some(&format!(
            "type = \"twilio\"\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\n\
             auth_token_file = {}\nfrom = \"+15005550006\"",
            toml_str(&token.to_string_lossy())
        )),
    );
    let t = token.display();
    f.assert_refused(&format!(
        "provider[0].auth_token_file: {t} is writable by everyone (mode 0602): any local user \
         could replace a provider credential. Fix: chmod go-rwx {t}\n"
    ));
    let (_, err) = f.check_config();
    assert!(!err.contains("tw-token-secret-value"), "{err}");
    chmod(&token, 0o600);
    f.assert_accepted();
}

#[test]
fn a_store_directory_owned_by_another_user_is_refused() {
    require_root("chown");
    let holder = tempfile::Builder::new()
        .prefix("smsotp-perms-store-")
        .tempdir_in("/tmp")
        .unwrap();
    let store_dir = holder.path().join("state");
    fs::create_dir(&store_dir).unwrap();
    chmod(&store_dir, 0o700);
    chown(&store_dir, Some(NOBODY), Some(NOBODY)).unwrap();
    let db = store_dir.join("state.db");
    let f = Files::new();
    f.write_config(Some(&db), None);
    let s = store_dir.display();
    f.assert_refused(&format!(
        "smsotpd: {s}, the directory holding {}, is owned by uid 65534 (nobody), not root: \
         that user could replace the file and reset lockouts and send budgets, or add backup \
         codes. Fix: chown root:root {s}\n",
        db.display()
    ));
    assert!(
        !db.exists(),
        "the store was created in the stranger's directory"
    );
    chown(&store_dir, Some(0), Some(0)).unwrap();
    f.assert_accepted();
}

/// Whether the daemon has a number for `user` (it starts a challenge).
fn has_number(d: &Daemon, user: &str) -> bool {
    let mut c = Client::connect(&d.socket(), Duration::from_secs(5), "file-perms").unwrap();
    let request = Request::Begin(BeginRequest {
        user: user.into(),
        service: "file-perms".into(),
        rhost: None,
        tty: None,
        command: None,
    });
    match c.call(&request).unwrap() {
        Response::Challenge(_) => true,
        Response::NoMobile => false,
        other => panic!("unexpected answer for {user}: {other:?}"),
    }
}

#[test]
fn a_reload_with_a_loosened_users_file_keeps_the_old_configuration() {
    require_root("only root may begin for another user; chgrp");
    let alice = unique_name("permhup");
    let bob = unique_name("permhupb");
    let d = Daemon::builder().user(&alice, "+15550001111").start();
    assert!(!has_number(&d, &bob));

    // Someone in staff adds bob with their own number: refused.
    let users = d.dir().join("users.toml");
    let mut text = fs::read_to_string(&users).unwrap();
    text.push_str(&format!("{bob} = \"+15557654321\"\n"));
    fs::write(&users, &text).unwrap();
    chown(&users, None, Some(STAFF)).unwrap();
    chmod(&users, 0o664);
    let verdict = d.reload();
    assert!(verdict.contains("reload failed"), "{verdict}");
    assert!(
        verdict.contains("is writable by group staff (mode 0664)"),
        "{verdict}"
    );
    assert!(!has_number(&d, &bob), "the loosened file was believed");
    assert!(has_number(&d, &alice));

    // Fixed: the same file is now read.
    chmod(&users, 0o644);
    let verdict = d.reload();
    assert!(verdict.contains("configuration reloaded"), "{verdict}");
    assert!(has_number(&d, &bob));
}
