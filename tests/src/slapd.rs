//! A throwaway OpenLDAP server for the directory tests: Debian's `slapd`
//! with a private slapd.conf (core, cosine, inetOrgPerson schemas; one mdb
//! database `dc=example,dc=test`) in a temporary directory, on 127.0.0.1
//! and free ports. Entries are added with `ldapadd` as the root DN.
//! [`Slapd`] stops the server by its PID and removes the files on drop,
//! also when the test panics. [`stop`](Slapd::stop) and
//! [`start`](Slapd::start) take it away and bring it back on the same
//! ports with the same data, for the outage tests.
//!
//! Where slapd is missing the tests may skip, loudly, but never when `CI`
//! is set: CI installs `slapd` and `ldap-utils` (scripts/test.sh).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=example,dc=test";
pub const PEOPLE: &str = "ou=people,dc=example,dc=test";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=test";
pub const ROOT_PW: &str = "slapd-root-secret";
/// A service account the daemon may bind as (password [`BIND_PW`]).
pub const BIND_DN: &str = "cn=smsotp,dc=example,dc=test";
pub const BIND_PW: &str = "smsotp-bind-secret";

const SLAPD: &str = "/usr/sbin/slapd";

/// TLS material: the server's certificate and key, PEM.
pub struct Tls {
    pub cert_pem: String,
    pub key_pem: String,
}

pub struct Slapd {
    dir: tempfile::TempDir,
    /// `ldap://` (plain, and StartTLS when TLS is on).
    pub port: u16,
    /// `ldaps://`, when TLS is on.
    pub tls_port: Option<u16>,
    pid: Option<i32>,
}

impl Slapd {
    /// A running server with the base entries, or `None` (after saying
    /// so) when slapd is not installed and this is not CI.
    pub fn start_new(tls: Option<Tls>) -> Option<Slapd> {
        if !Path::new(SLAPD).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but slapd is not installed: apt-get install slapd ldap-utils"
            );
            eprintln!(
                "\n!!!! SKIPPED: slapd is not installed; apt-get install slapd ldap-utils \
                 to run the directory tests !!!!\n"
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("smsotp-slapd")
            .tempdir()
            .unwrap();
        let p = dir.path();
        std::fs::create_dir(p.join("db")).unwrap();
        let mut conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             pidfile {pid}\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n",
            pid = p.join("slapd.pid").display()
        );
        let tls_port = tls.as_ref().map(|t| {
            std::fs::write(p.join("cert.pem"), &t.cert_pem).unwrap();
            std::fs::write(p.join("key.pem"), &t.key_pem).unwrap();
            conf += &format!(
                "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                p.join("cert.pem").display(),
                p.join("key.pem").display()
            );
            free_port()
        });
        conf += &format!(
            "database mdb\nmaxsize 10485760\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOT_DN}\"\n\
             rootpw {ROOT_PW}\ndirectory {}\n",
            p.join("db").display()
        );
        std::fs::write(p.join("slapd.conf"), conf).unwrap();
        let mut s = Slapd {
            dir,
            port: free_port(),
            tls_port,
            pid: None,
        };
        s.start();
        s.add(&format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: {BIND_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: smsotp\nsn: smsotp\nuserPassword: {BIND_PW}\n"
        ));
        Some(s)
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:PORT` (TLS on only).
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port.expect("TLS is on"))
    }

    /// Starts (or restarts) the server; waits until it accepts.
    pub fn start(&mut self) {
        let p = self.dir.path();
        let mut urls = format!("ldap://127.0.0.1:{}/", self.port);
        if let Some(tp) = self.tls_port {
            urls += &format!(" ldaps://127.0.0.1:{tp}/");
        }
        let _ = std::fs::remove_file(p.join("slapd.pid"));
        let out = Command::new(SLAPD)
            .arg("-f")
            .arg(p.join("slapd.conf"))
            .args(["-h", &urls])
            .stdin(Stdio::null())
            .output()
            .expect("run slapd");
        assert!(
            out.status.success(),
            "slapd failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // slapd forks; the child writes its PID once it serves.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pid = std::fs::read_to_string(p.join("slapd.pid"))
                .ok()
                .and_then(|t| t.trim().parse().ok());
            let up = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            if let (Some(pid), true) = (pid, up) {
                self.pid = Some(pid);
                return;
            }
            assert!(Instant::now() < deadline, "slapd did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM, then waits for it to exit) until
    /// [`start`](Self::start).
    pub fn stop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        // SAFETY: kill has no memory preconditions; the PID is our slapd's.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for i in 0..200 {
            // SAFETY: signal 0 only probes whether the process exists.
            if unsafe { libc::kill(pid, 0) } != 0 {
                return;
            }
            if i == 100 {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Adds entries (LDIF) as the root DN; panics with ldapadd's message.
    pub fn add(&self, ldif: &str) {
        self.ldap_tool("ldapadd", ldif);
    }

    /// Applies an LDIF change (`changetype: modify` ...).
    pub fn modify(&self, ldif: &str) {
        self.ldap_tool("ldapmodify", ldif);
    }

    /// An inetOrgPerson `uid=NAME` under [`PEOPLE`] with these
    /// `attribute: value` lines (`mobile: ...`, `telephoneNumber: ...`).
    pub fn person(&self, uid: &str, attrs: &[(&str, &str)]) {
        let mut ldif = format!(
            "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
        );
        for (a, v) in attrs {
            ldif += &format!("{a}: {v}\n");
        }
        self.add(&ldif);
    }

    fn ldap_tool(&self, tool: &str, ldif: &str) {
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tool} failed: {}\n{ldif}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
