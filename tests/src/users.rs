//! A real local account for tests that go through `pam_unix`.
//!
//! Created with `useradd -M` and `chpasswd`, removed with `userdel` on drop
//! (drop runs on panic too). Names carry the test process id so parallel
//! runs and leftovers of a killed run do not collide.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// useradd/userdel lock /etc/passwd; one at a time within this process.
static ACCOUNTS: Mutex<()> = Mutex::new(());

pub struct TestUser {
    pub name: String,
    pub password: String,
}

impl TestUser {
    /// Creates `smsotpt<pid>x<n>` with a random password.
    pub fn create() -> TestUser {
        crate::require_root("creates a local user with useradd");
        let name = crate::unique_name("smsotpt");
        assert!(name.len() <= 32, "user name too long: {name}");
        let password = random_password();
        let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        run_retrying(
            Command::new("useradd")
                .args(["-M", "-s", "/usr/sbin/nologin", "-c", "smsotp e2e test"])
                .arg(&name),
            "useradd",
        );
        // From here on, Drop removes the account whatever happens.
        let user = TestUser { name, password };
        let mut child = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run chpasswd");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{}:{}\n", user.name, user.password).as_bytes())
            .expect("write to chpasswd");
        let out = child.wait_with_output().expect("wait chpasswd");
        assert!(
            out.status.success(),
            "chpasswd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        user
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..5 {
            match Command::new("userdel").arg(&self.name).output() {
                // 6: no such user (already gone).
                Ok(o) if o.status.success() || o.status.code() == Some(6) => return,
                Ok(o) => eprintln!(
                    "userdel {} failed: {}",
                    self.name,
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => eprintln!("userdel {}: {e}", self.name),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Runs a command, retrying a few times (another process may hold the
/// passwd lock), and panics with its stderr if it never succeeds.
fn run_retrying(cmd: &mut Command, what: &str) {
    let mut last = String::new();
    for _ in 0..5 {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        if out.status.success() {
            return;
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what} failed: {last}");
}

fn random_password() -> String {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .expect("read /dev/urandom");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("Pw-{hex}")
}
