//! `[store]`: which backend keeps the durable state. SQLite (a file, the
//! default, for one host) or PostgreSQL (one database that a fleet of
//! hosts shares, so a backup code spent or a budget used on one host is
//! spent or used on all).

use super::DEFAULT_STORE;
use crate::error::Invalid;
use crate::provider::secret::{self, RawSecret, SecretRef, SecretSource};
use crate::validate::{absolute, in_range};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub backend: Option<String>,
    pub path: Option<PathBuf>,
    pub sync: Option<String>,
    pub timeout_seconds: Option<i64>,
    /// PostgreSQL only: a libpq-style URI without the password.
    pub url: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_credential: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreSync {
    /// Survives a daemon crash (kill -9); a power cut may lose the last
    /// few changes but never corrupts the file.
    Normal,
    /// Also survives a power cut, at an fsync per change.
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// SQLite only.
    pub path: PathBuf,
    /// SQLite only.
    pub sync: StoreSync,
    /// Each store request's deadline (`timeout_seconds`): a hung database
    /// fails the login with a clear error well inside the module's
    /// timeout, instead of holding it.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    Sqlite,
    Postgres(PostgresConfig),
}

/// How the connection to PostgreSQL is protected. libpq's weaker modes
/// (`allow`, `prefer`, `require`, `verify-ca`) are refused: each lets
/// someone on the path read or change lockouts and backup-code hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSslMode {
    /// TLS, the server's certificate checked against `ca_file` and its
    /// name against the host connected to.
    VerifyFull,
    /// No TLS: only when every host is loopback or a Unix socket directory.
    Disable,
}

#[derive(Clone)]
pub struct PostgresConfig {
    /// The URI as written (it holds no password: that is refused), with
    /// `sslmode` still in it; the daemon sets TLS from [`Self::sslmode`].
    pub url: String,
    pub sslmode: PgSslMode,
    pub ca_file: Option<PathBuf>,
    pub password: Option<SecretRef>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.url)
            .field("sslmode", &self.sslmode)
            .field("ca_file", &self.ca_file)
            .field("password", &self.password)
            .finish()
    }
}

/// Equal when a reload would connect the same way: same URI, CA and
/// password source (an inline password compared by value, never shown).
impl PartialEq for PostgresConfig {
    fn eq(&self, other: &Self) -> bool {
        let same_password = match (&self.password, &other.password) {
            (None, None) => true,
            (Some(a), Some(b)) => match (&a.source, &b.source) {
                (SecretSource::Inline(x), SecretSource::Inline(y)) => x.expose() == y.expose(),
                (SecretSource::File(x), SecretSource::File(y)) => x == y,
                (SecretSource::Credential(x), SecretSource::Credential(y)) => x == y,
                _ => false,
            },
            _ => false,
        };
        self.url == other.url && self.ca_file == other.ca_file && same_password
    }
}

impl Eq for PostgresConfig {}

impl StoreConfig {
    /// The inline PostgreSQL password's key, for the config-file mode check.
    pub fn inline_secret_key(&self) -> Option<String> {
        match &self.backend {
            StoreBackend::Postgres(pg) => pg
                .password
                .as_ref()
                .filter(|s| s.is_inline())
                .map(|s| s.key.clone()),
            StoreBackend::Sqlite => None,
        }
    }

    pub(crate) fn secrets_mut(&mut self) -> Vec<&mut SecretRef> {
        match &mut self.backend {
            StoreBackend::Postgres(pg) => pg.password.iter_mut().collect(),
            StoreBackend::Sqlite => Vec::new(),
        }
    }
}

pub(crate) fn store(raw: RawStore) -> Result<StoreConfig, Invalid> {
    let sync = match raw.sync.as_deref() {
        None | Some("normal") => StoreSync::Normal,
        Some("full") => StoreSync::Full,
        Some(other) => {
            return Err(Invalid::new(
                "store.sync",
                format!("must be normal or full, not {other:?}"),
            ))
        }
    };
    let path = absolute("store.path", raw.path.clone(), DEFAULT_STORE)?;
    let password = RawSecret {
        inline: raw.password,
        file: raw.password_file,
        credential: raw.password_credential,
    };
    let backend = match raw.backend.as_deref() {
        None | Some("sqlite") => {
            if raw.url.is_some()
                || raw.ca_file.is_some()
                || password.inline.is_some()
                || password.file.is_some()
                || password.credential.is_some()
            {
                return Err(Invalid::new(
                    "store.url",
                    "url, ca_file and password* are for backend = \"postgres\"",
                ));
            }
            StoreBackend::Sqlite
        }
        Some("postgres") => StoreBackend::Postgres(postgres(raw.url, raw.ca_file, password)?),
        Some(other) => {
            return Err(Invalid::new(
                "store.backend",
                format!("must be \"sqlite\" or \"postgres\", not {other:?}"),
            ));
        }
    };
    // Below the module's 20 s with a 15 s send after the store step.
    let timeout = in_range("store.timeout_seconds", raw.timeout_seconds, 3, 1, 5)?;
    Ok(StoreConfig {
        backend,
        path,
        sync,
        timeout: std::time::Duration::from_secs(timeout as u64),
    })
}

fn postgres(
    url: Option<String>,
    ca_file: Option<PathBuf>,
    password: RawSecret,
) -> Result<PostgresConfig, Invalid> {
    let Some(url) = url else {
        return Err(Invalid::new(
            "store.url",
            "is required for backend = \"postgres\" (postgresql://USER@HOST1,HOST2:PORT/DB?sslmode=verify-full)",
        ));
    };
    let parts = UrlParts::split(&url)?;
    let sslmode = match parts.param("sslmode") {
        None | Some("verify-full") => PgSslMode::VerifyFull,
        Some("disable") if parts.hosts_are_local() => PgSslMode::Disable,
        Some("disable") => {
            return Err(Invalid::new(
                "store.url",
                "sslmode=disable is only allowed for loopback hosts and Unix sockets; use sslmode=verify-full with ca_file",
            ))
        }
        Some(other) => {
            return Err(Invalid::new(
                "store.url",
                format!("sslmode={other} is refused: it lets someone on the network read or change the state; use verify-full"),
            ))
        }
    };
    if parts.param("password").is_some() || parts.userinfo.contains(':') {
        return Err(Invalid::new(
            "store.url",
            "must not hold the password; set store.password_file or store.password_credential",
        ));
    }
    let ca_file = match ca_file {
        Some(p) if !p.is_absolute() => {
            return Err(Invalid::new(
                "store.ca_file",
                format!("must be an absolute path, not {p:?}"),
            ))
        }
        Some(p) => Some(p),
        None if sslmode == PgSslMode::VerifyFull => return Err(Invalid::new(
            "store.ca_file",
            "is required with sslmode=verify-full: the CA that signed the database's certificate",
        )),
        None => None,
    };
    Ok(PostgresConfig {
        url,
        sslmode,
        ca_file,
        password: secret::validate("store.password", password, false)?,
    })
}

/// Just enough of a libpq URI to check it: the user part, the hosts and
/// the query parameters. tokio-postgres parses it fully in the daemon.
struct UrlParts<'a> {
    userinfo: &'a str,
    hosts: &'a str,
    query: &'a str,
}

impl<'a> UrlParts<'a> {
    fn split(url: &'a str) -> Result<UrlParts<'a>, Invalid> {
        let Some(rest) = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
        else {
            return Err(Invalid::new("store.url", "must start with postgresql://"));
        };
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = before_query.split('/').next().unwrap_or("");
        let (userinfo, hosts) = authority.rsplit_once('@').unwrap_or(("", authority));
        Ok(UrlParts {
            userinfo,
            hosts,
            query,
        })
    }

    fn param(&self, name: &str) -> Option<&'a str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// Loopback names and addresses; `host=/run/postgresql` (a socket
    /// directory) in the query counts as local, an empty host list too.
    fn hosts_are_local(&self) -> bool {
        let in_url = self.hosts.split(',').filter(|h| !h.is_empty()).all(|h| {
            let name = match h.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(""),
                None => h.rsplit_once(':').map_or(h, |(n, _)| n),
            };
            matches!(name, "localhost" | "::1") || name.starts_with("127.")
        });
        let in_query = self
            .query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == "host" || *k == "hostaddr")
            .all(|(_, v)| {
                v.starts_with("%2F")
                    || v.starts_with('/')
                    || v.starts_with("127.")
                    || v == "localhost"
            });
        in_url && in_query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(
        url: &str,
        ca: Option<&str>,
        password_file: Option<&str>,
    ) -> Result<StoreConfig, Invalid> {
        store(RawStore {
            backend: Some("postgres".into()),
            url: Some(url.into()),
            ca_file: ca.map(PathBuf::from),
            password_file: password_file.map(PathBuf::from),
            ..RawStore::default()
        })
    }

    #[test]
    fn sqlite_is_the_default_and_takes_no_postgres_keys() {
        let c = store(RawStore::default()).unwrap();
        assert_eq!(c.backend, StoreBackend::Sqlite);
        let e = store(RawStore {
            url: Some("postgresql://u@h/db".into()),
            ..RawStore::default()
        })
        .unwrap_err();
        assert!(
            e.message.contains("backend = \"postgres\""),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_fleet_url_with_verify_full_needs_a_ca() {
        let url = "postgresql://smsotp@db1,db2:5432/smsotp?target_session_attrs=read-write";
        let e = pg(url, None, None).unwrap_err();
        assert_eq!(e.key, "store.ca_file");
        let c = pg(
            url,
            Some("/etc/smsotp/db-ca.pem"),
            Some("/etc/smsotp/db.pw"),
        )
        .unwrap();
        let StoreBackend::Postgres(p) = c.backend else {
            panic!()
        };
        assert_eq!(p.sslmode, PgSslMode::VerifyFull);
        assert!(p.password.is_some());
    }

    #[test]
    fn weak_tls_and_passwords_in_the_url_are_refused() {
        for bad in ["require", "prefer", "allow", "verify-ca"] {
            let e = pg(
                &format!("postgresql://u@db/x?sslmode={bad}"),
                Some("/ca"),
                None,
            )
            .unwrap_err();
            assert!(e.message.contains("refused"), "{bad}: {}", e.message);
        }
        let e = pg("postgresql://u@db.example/x?sslmode=disable", None, None).unwrap_err();
        assert!(e.message.contains("loopback"), "{}", e.message);
        let c = pg(
            "postgresql://u@127.0.0.1:5433/x?sslmode=disable",
            None,
            None,
        )
        .unwrap();
        assert!(
            matches!(c.backend, StoreBackend::Postgres(ref p) if p.sslmode == PgSslMode::Disable)
        );
        for leaky in [
            "postgresql://u:hunter2@db/x",
            "postgresql://u@db/x?password=hunter2",
        ] {
            let e = pg(leaky, Some("/ca"), None).unwrap_err();
            assert!(e.message.contains("password_file"), "{}", e.message);
            assert!(!e.message.contains("hunter2"), "{}", e.message);
        }
        let e = pg("mysql://u@db/x", Some("/ca"), None).unwrap_err();
        assert!(e.message.contains("postgresql://"));
    }
}
