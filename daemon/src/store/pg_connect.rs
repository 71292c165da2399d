//! From `[store] backend = "postgres"` to a pool of connections: the URI
//! parsed by tokio-postgres (several hosts, `target_session_attrs`), the
//! password read from its file or systemd credential with the providers'
//! reader, TLS through rustls against `ca_file` only (a private CA for the
//! database: the public web's roots have no business vouching for it).

use super::StoreError;
use crate::providers::secret;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls::pki_types::{pem::PemObject, CertificateDer};
use smsotp_config::perms::{self, Role};
use smsotp_config::{PgSslMode, PostgresConfig};
use std::time::Duration;
use tokio_postgres::config::SslMode;

/// Connecting, waiting for a pooled connection, and each statement: a
/// login must fail with a clear message, not hang, when the database does.
pub(super) const TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per daemon: a few logins at once, not one per login.
const POOL_SIZE: usize = 8;

/// The URI without its query: what errors and logs name (it never holds
/// a password; the config refuses one there).
pub(super) fn label(cfg: &PostgresConfig) -> String {
    cfg.url.split('?').next().unwrap_or_default().to_string()
}

pub(super) fn pool(cfg: &PostgresConfig) -> Result<Pool, StoreError> {
    let fail = |message: String| StoreError::Backend {
        path: label(cfg),
        message,
    };
    // tokio-postgres knows only disable/prefer/require; the mode was
    // checked by the config and is applied below, so it leaves the URI.
    let url = without_param(&cfg.url, "sslmode");
    let mut pg: tokio_postgres::Config = url.parse().map_err(|e| fail(format!("url: {e}")))?;
    if let Some(s) = &cfg.password {
        let password = secret::read(s).map_err(|e| fail(e.to_string()))?;
        pg.password(password.as_bytes());
    }
    pg.connect_timeout(TIMEOUT)
        // A database host that vanishes (power, partition) acknowledges
        // nothing: a request in flight fails after TIMEOUT instead of
        // the kernel's ~15 min of retransmissions, and an idle pooled
        // connection is found dead by keepalives within ~25 s, so the
        // next checkout connects afresh. (A database that is up but
        // stopped, e.g. SIGSTOP, still has its kernel acknowledge: only
        // the daemon's per-request deadline ends that wait.)
        .tcp_user_timeout(TIMEOUT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .application_name("smsotpd")
        // A lock held by a hung peer must not hold a login forever.
        .options(format!(
            "-c statement_timeout={ms} -c lock_timeout={ms}",
            ms = TIMEOUT.as_millis()
        ));
    pg.ssl_mode(match cfg.sslmode {
        PgSslMode::VerifyFull => SslMode::Require,
        PgSslMode::Disable => SslMode::Disable,
    });
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = &cfg.ca_file {
        // Whoever can change it could impersonate the database and hand
        // out unlocks and backup codes.
        perms::check(path, Role::CaFile).map_err(|e| fail(format!("ca_file: {e}")))?;
        for cert in
            read_ca_file(path).map_err(|e| fail(format!("ca_file {}: {e}", path.display())))?
        {
            roots
                .add(cert)
                .map_err(|e| fail(format!("ca_file {}: {e}", path.display())))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    // rustls always checks the chain and the host name: verify-full.
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let manager = Manager::from_config(
        pg,
        tokio_postgres_rustls::MakeRustlsConnect::new(tls),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(TIMEOUT))
        .create_timeout(Some(TIMEOUT))
        .recycle_timeout(Some(TIMEOUT))
        .build()
        .map_err(|e| fail(e.to_string()))
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = crate::providers::client::read_ca_pem(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certs)
}

fn without_param(url: &str, name: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| kv.split('=').next() != Some(name))
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// tokio-postgres says only "db error" at the top; the server's message
/// (never holding the password) is what an admin needs.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_leaves_the_uri_and_the_rest_stays() {
        assert_eq!(
            without_param(
                "postgresql://u@a,b/db?sslmode=verify-full&target_session_attrs=read-write",
                "sslmode"
            ),
            "postgresql://u@a,b/db?target_session_attrs=read-write"
        );
        assert_eq!(
            without_param("postgresql://u@a/db?sslmode=disable", "sslmode"),
            "postgresql://u@a/db"
        );
        assert_eq!(
            without_param("postgresql://u@a/db", "sslmode"),
            "postgresql://u@a/db"
        );
    }
}
