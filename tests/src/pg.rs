//! A throwaway PostgreSQL for the tests that need one: Debian's
//! postgresql-15 binaries, a cluster made by `initdb` (as user postgres:
//! it refuses root) in a temporary directory, started on 127.0.0.1 and a
//! free port, trust authentication. [`Postgres`] stops it (by the
//! postmaster's PID, which never outlives the test) and removes it on drop,
//! also when the test panics. Used by the e2e tests (`smsotp_tests::pg`)
//! and, through `#[path]`, by the daemon's store conformance tests, so
//! there is one launcher.
//!
//! Where the binaries are missing the tests may skip, loudly, but never
//! when `CI` is set: CI installs `postgresql` (scripts/test.sh).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct Postgres {
    dir: Option<tempfile::TempDir>,
    pub port: u16,
    /// The postmaster's; a restart changes it (behind `&self`, so a PAM
    /// responder can restart the cluster mid-login).
    pid: AtomicI32,
}

/// The server options of a cluster in `dir` on `port`.
fn server_options(dir: &Path, port: u16) -> String {
    format!(
        "-k {} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
        dir.display()
    )
}

/// A fresh database per caller in one cluster.
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

impl Postgres {
    /// A running cluster, or `None` (after saying so) when PostgreSQL is
    /// not installed and this is not CI.
    pub fn start() -> Option<Postgres> {
        if !Path::new(BIN).join("initdb").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but PostgreSQL is not installed at {BIN}: apt-get install postgresql"
            );
            eprintln!(
                "\n!!!! SKIPPED: PostgreSQL is not installed ({BIN}/initdb missing); \
                 apt-get install postgresql to run the PostgreSQL tests !!!!\n"
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("smsotp-pg")
            .tempdir()
            .unwrap();
        let path = dir.path().to_path_buf();
        chown_postgres(&path);
        let data = path.join("data");
        as_postgres(
            Command::new(format!("{BIN}/initdb"))
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&data),
        );
        let pg = Postgres {
            dir: Some(dir),
            port: free_port(),
            pid: AtomicI32::new(0),
        };
        pg.pg_ctl_start();
        Some(pg)
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().expect("cluster directory").path()
    }

    /// (Re)starts the server on its port; waits until it accepts.
    fn pg_ctl_start(&self) {
        let path = self.path().to_path_buf();
        self.pg_ctl("start", &["-o", &server_options(&path, self.port)]);
        self.pid.store(self.read_pid(), Ordering::Relaxed);
    }

    /// The database goes away as in a crash (`pg_ctl -m immediate`), until
    /// [`come_back`](Self::come_back).
    pub fn crash(&mut self) {
        as_postgres(
            Command::new(format!("{BIN}/pg_ctl"))
                .arg("-D")
                .arg(self.path().join("data"))
                .args(["-m", "immediate", "-w", "stop"]),
        );
        self.pid.store(0, Ordering::Relaxed);
    }

    /// Starts it again after [`crash`](Self::crash) or
    /// [`shut_down`](Self::shut_down), same port and data.
    pub fn come_back(&mut self) {
        self.pg_ctl_start();
    }

    /// A clean shutdown (`pg_ctl -m fast`): sessions are ended, the port
    /// refuses connections until [`come_back`](Self::come_back).
    pub fn shut_down(&self) {
        self.pg_ctl("stop", &["-m", "fast"]);
        // Gone: its PID may be reused by anything else from now on.
        self.pid.store(0, Ordering::Relaxed);
    }

    /// `pg_ctl restart`: every session is cut, the server is back (on the
    /// same port, a new postmaster) when this returns.
    pub fn restart(&self) {
        let opts = server_options(self.path(), self.port);
        self.pg_ctl("restart", &["-m", "fast", "-o", &opts]);
        self.pid.store(self.read_pid(), Ordering::Relaxed);
    }

    fn pg_ctl(&self, action: &str, extra: &[&str]) {
        let path = self.path();
        as_postgres(
            Command::new(format!("{BIN}/pg_ctl"))
                .arg("-D")
                .arg(path.join("data"))
                .arg("-l")
                .arg(path.join("log"))
                .args(["-w", "-t", "30"])
                .args(extra)
                .arg(action),
        );
    }

    fn pid(&self) -> i32 {
        self.pid.load(Ordering::Relaxed)
    }

    fn read_pid(&self) -> i32 {
        std::fs::read_to_string(self.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            .expect("postmaster.pid")
    }

    /// The cluster hangs: its postmaster and every backend get SIGSTOP, so
    /// connections stay open (the kernel still accepts and acknowledges)
    /// and nothing answers. The guard (also dropped by a failing test)
    /// sends SIGCONT to exactly those processes.
    pub fn freeze(&self) -> Frozen {
        let pids = self.processes();
        for &pid in &pids {
            // SAFETY: kill has no memory preconditions; these are this
            // cluster's postmaster and its children, found by PID.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
        }
        Frozen { pids }
    }

    /// The postmaster and its children (backends, checkpointer, ...):
    /// found by parent PID under /proc, never by name.
    fn processes(&self) -> Vec<i32> {
        if self.pid() <= 0 {
            return Vec::new();
        }
        let mut pids = vec![self.pid()];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may hold spaces, so split
            // after its closing parenthesis.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(self.pid()) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Turns TLS on (`ssl = on`, reloaded) with this certificate and key;
    /// clients that do not ask for TLS are still served.
    pub fn enable_tls(&self, cert_pem: &str, key_pem: &str) {
        use std::os::unix::fs::PermissionsExt;
        let data = self.path().join("data");
        for (name, pem) in [("server.crt", cert_pem), ("server.key", key_pem)] {
            let file = data.join(name);
            std::fs::write(&file, pem).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            chown_postgres(&file);
        }
        self.psql("postgres", "ALTER SYSTEM SET ssl = on");
        self.psql("postgres", "SELECT pg_reload_conf()");
    }

    /// Creates an empty database; its `postgresql://` URL (no TLS: loopback).
    pub fn database(&self) -> String {
        let name = format!("t{}", NEXT_DB.fetch_add(1, Ordering::Relaxed));
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        format!(
            "postgresql://postgres@127.0.0.1:{}/{name}?sslmode=disable",
            self.port
        )
    }

    /// Runs SQL as the superuser; panics with psql's message on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Postgres {
    /// Stops the cluster and removes its files. For a cluster kept in a
    /// static (never dropped): call it from an exit handler.
    pub fn stop(&self) {
        // A frozen cluster could not act on the signal below.
        for pid in self.processes() {
            // SAFETY: kill has no memory preconditions; our cluster's PIDs.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
        if self.pid() <= 0 {
            // Already stopped (crash, shut_down): only the files are left.
            if let Some(dir) = &self.dir {
                let _ = std::fs::remove_dir_all(dir.path());
            }
            return;
        }
        // SIGQUIT is PostgreSQL's immediate shutdown: the cluster is thrown
        // away, so nothing needs flushing.
        // SAFETY: kill has no memory preconditions; the PID is our postmaster's.
        unsafe { libc::kill(self.pid(), libc::SIGQUIT) };
        for _ in 0..100 {
            // SAFETY: signal 0 only probes whether the process exists.
            if unsafe { libc::kill(self.pid(), 0) } != 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir.path());
        }
    }
}

/// A cluster stopped by [`Postgres::freeze`]; dropping it thaws it.
pub struct Frozen {
    pids: Vec<i32>,
}

impl Frozen {
    pub fn thaw(self) {}
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for &pid in &self.pids {
            // SAFETY: kill has no memory preconditions; the PIDs we stopped.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn chown_postgres(path: &Path) {
    let st = Command::new("chown")
        .arg("postgres:postgres")
        .arg(path)
        .status()
        .expect("chown");
    assert!(st.success(), "chown postgres {}", path.display());
}

fn as_postgres(cmd: &mut Command) {
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(&program)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("runuser");
    assert!(
        out.status.success(),
        "{} failed: {}{}",
        program.to_string_lossy(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
