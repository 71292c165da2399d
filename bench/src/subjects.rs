//! The subjects: one pam.d stack each in a temporary directory, started
//! with `pam_start_confdir`, and what each needs running (smsotpd and its
//! loopback gateway; the peers' secret files).

use crate::args::Args;
use crate::mock::{self, Codes, Mock, SharedU64};
use crate::otp;
use smsotp_tests::daemon::{toml_str, Daemon};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const USERS: usize = 64;

/// Login names, one per worker. Real local accounts (`pam_oath` resolves
/// `${USER}` through NSS), created for the run and removed on exit.
static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

pub fn set_users(names: Vec<String>) {
    let _ = NAMES.set(names);
}

pub fn user(i: usize) -> &'static str {
    &NAMES.get().expect("users created")[i % USERS]
}

/// How the conversation answers, per subject.
#[derive(Clone)]
pub enum Kind {
    Floor,
    Smsotp {
        codes: Arc<Codes>,
    },
    Gauth {
        secret: Vec<u8>,
    },
    Oath {
        secret: Vec<u8>,
        counters: Arc<SharedU64>,
    },
}

pub struct Subject {
    pub name: String,
    pub service: String,
    pub confdir: PathBuf,
    pub kind: Kind,
    pub daemon_pid: Option<u32>,
    pub mock: Option<Arc<Mock>>,
}

/// The smsotp daemon + gateway for one variant.
pub struct SmsotpSetup {
    pub daemon: Daemon,
    pub mock: Arc<Mock>,
    _ca_dir: tempfile::TempDir,
}

/// Everything the run set up; dropping it stops the daemons.
pub struct Subjects {
    pub list: Vec<Subject>,
    pub setups: Vec<SmsotpSetup>,
    pub notes: Vec<String>,
    pub confdir: PathBuf,
}

/// Budgets raised so that a benchmark is never refused, with the given
/// users at the `mock::mobile` numbers.
pub fn bench_daemon(users: usize) -> smsotp_tests::daemon::DaemonBuilder {
    let mut b = Daemon::builder()
        .log_level("warn")
        .top("max_connections = 65536")
        .section("send_budget", "per_user_per_hour = 10000")
        .section("send_budget", "per_rhost_per_hour = 100000")
        .section("send_budget", "global_per_hour = 1000000");
    for i in 0..users {
        b = b.user(&user_name(i), &mock::mobile(i));
    }
    b
}

/// The benchmark's user `i`: a real account below USERS (the libpam
/// subjects), a daemon-only name beyond (the daemon benchmark's extra
/// connections need no account: the daemon asks no NSS).
pub fn user_name(i: usize) -> String {
    match NAMES.get() {
        Some(n) if i < n.len() => n[i].clone(),
        _ => format!("smsotpb{i}"),
    }
}

/// Starts the builder's smsotpd from `target_dir`, turning the fixture's
/// panic into an error.
pub fn start_daemon(
    b: smsotp_tests::daemon::DaemonBuilder,
    target_dir: &Path,
) -> Result<Daemon, String> {
    // The fixture finds smsotpd through SMSOTP_TARGET_DIR.
    let old = std::env::var_os("SMSOTP_TARGET_DIR");
    std::env::set_var("SMSOTP_TARGET_DIR", target_dir);
    let daemon = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.start()));
    match old {
        Some(v) => std::env::set_var("SMSOTP_TARGET_DIR", v),
        None => std::env::remove_var("SMSOTP_TARGET_DIR"),
    }
    daemon.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "daemon did not start".into())
    })
}

fn start_smsotp(target_dir: &Path, tls: bool) -> Result<SmsotpSetup, String> {
    let ca_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (mock, extra) = if tls {
        let t = mock::make_tls();
        let ca = ca_dir.path().join("ca.pem");
        std::fs::write(&ca, &t.ca_pem).map_err(|e| e.to_string())?;
        (
            Mock::start(USERS, Some(t.config)),
            format!("ca_file = {}\n", toml_str(&ca.to_string_lossy())),
        )
    } else {
        (Mock::start(USERS, None), String::new())
    };
    let b = bench_daemon(USERS).provider(&format!(
        "type = \"http\"\nname = \"gateway\"\nurl = {}\n\
         payload = '{{\"to\": {{{{mobile}}}}, \"text\": {{{{body}}}}}}'\n\
         timeout_seconds = 10\n{extra}",
        toml_str(&mock.url())
    ));
    Ok(SmsotpSetup {
        daemon: start_daemon(b, target_dir)?,
        mock: Arc::new(mock),
        _ca_dir: ca_dir,
    })
}

pub fn write_service(dir: &Path, name: &str, auth: &str) {
    std::fs::write(
        dir.join(name),
        format!("{auth}account required pam_permit.so\nsession required pam_permit.so\n"),
    )
    .expect("write pam.d service");
}

pub fn module_path(name: &str) -> Option<PathBuf> {
    [
        "/lib/x86_64-linux-gnu/security",
        "/usr/lib/x86_64-linux-gnu/security",
        "/lib/security",
    ]
    .iter()
    .map(|d| Path::new(d).join(name))
    .find(|p| p.exists())
}

fn subject(name: &str, confdir: &Path, kind: Kind) -> Subject {
    Subject {
        name: name.into(),
        service: format!("bench-{name}"),
        confdir: confdir.to_path_buf(),
        kind,
        daemon_pid: None,
        mock: None,
    }
}

/// The peers' state: a TOTP secret file per user for gauth, a HOTP
/// usersfile per user for oath (with one shared file liboath's lock makes
/// concurrent logins fail: OATH_FILE_LOCK_ERROR -> PAM_AUTH_ERR).
fn peer(name: &str, work: &Path, confdir: &Path) -> Result<Subject, String> {
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if name == "gauth" {
        module_path("pam_google_authenticator.so")
            .ok_or("gauth: skipped, apt-get install libpam-google-authenticator")?;
        let secret = b"smsotp-bench-gauth-1".to_vec();
        for i in 0..USERS {
            let p = dir.join(user(i));
            std::fs::write(&p, format!("{}\n\" TOTP_AUTH\n", otp::base32(&secret))).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        }
        let auth = format!(
            "auth required pam_permit.so\nauth required pam_google_authenticator.so \
             secret={}/${{USER}} user=root noskewadj\n",
            dir.display()
        );
        write_service(confdir, "bench-gauth", &auth);
        Ok(subject(name, confdir, Kind::Gauth { secret }))
    } else {
        module_path("pam_oath.so").ok_or("oath: skipped, apt-get install libpam-oath")?;
        let secret = b"smsotp-bench-oath-01".to_vec();
        for i in 0..USERS {
            std::fs::write(
                dir.join(format!("{}.oath", user(i))),
                format!("HOTP {} - {}\n", user(i), otp::hex(&secret)),
            )
            .unwrap();
        }
        let auth = format!(
            "auth required pam_permit.so\nauth required pam_oath.so \
             usersfile={}/${{USER}}.oath window=20 digits=6\n",
            dir.display()
        );
        write_service(confdir, "bench-oath", &auth);
        let counters = Arc::new(SharedU64::new(USERS));
        Ok(subject(name, confdir, Kind::Oath { secret, counters }))
    }
}

impl Subjects {
    /// Sets up every subject `args.only` asks for in `work`; one that
    /// cannot run (module not installed, daemon too old) becomes a note.
    pub fn build(args: &Args, work: &Path, target: &Path) -> Subjects {
        let want = |n: &str| args.only.as_ref().is_none_or(|o| o.iter().any(|x| x == n));
        let confdir = work.join("pam.d");
        std::fs::create_dir_all(&confdir).unwrap();
        let mut s = Subjects {
            list: Vec::new(),
            setups: Vec::new(),
            notes: Vec::new(),
            confdir: confdir.clone(),
        };
        if want("floor") {
            write_service(&confdir, "bench-floor", "auth required pam_permit.so\n");
            s.list.push(subject("floor", &confdir, Kind::Floor));
        }
        let tls_dir = args.tls_target_dir.clone().unwrap_or(target.to_path_buf());
        for (name, tls, dir) in [
            ("smsotp-http", false, target.to_path_buf()),
            ("smsotp-https", true, tls_dir),
        ] {
            if want(name) {
                s.add_smsotp(name, tls, &dir, target);
            }
        }
        for name in ["gauth", "oath"] {
            if want(name) {
                match peer(name, work, &confdir) {
                    Ok(p) => s.list.push(p),
                    Err(note) => s.notes.push(note),
                }
            }
        }
        s
    }

    fn add_smsotp(&mut self, name: &str, tls: bool, dir: &Path, target: &Path) {
        let setup = match start_smsotp(dir, tls) {
            Ok(setup) => setup,
            Err(e) => {
                let first = e.lines().next().unwrap_or("").to_string();
                self.notes.push(format!(
                    "{name}: skipped, the daemon in {} did not start ({first})",
                    dir.display()
                ));
                return;
            }
        };
        let mut sub = subject(
            name,
            &self.confdir,
            Kind::Smsotp {
                codes: Arc::clone(&setup.mock.codes),
            },
        );
        write_service(
            &self.confdir,
            &sub.service,
            &format!(
                "auth required pam_permit.so\nauth required {} socket={} timeout=20\n",
                dir.join("libpam_smsotp.so").display(),
                setup.daemon.socket().display()
            ),
        );
        sub.daemon_pid = setup.daemon.pid();
        sub.mock = Some(Arc::clone(&setup.mock));
        if dir != target {
            self.notes.push(format!(
                "{name}: smsotpd and the module from {}",
                dir.display()
            ));
        }
        self.list.push(sub);
        self.setups.push(setup);
    }
}

/// The build under test, absolute: libpam reads a relative module path as
/// relative to its security directory.
pub fn target() -> PathBuf {
    let t = smsotp_tests::paths::target_dir();
    t.canonicalize().unwrap_or(t)
}
