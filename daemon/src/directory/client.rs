//! One LDAP connection, reused by every lookup (ldap3 multiplexes
//! operations on it), replaced when it fails. Built once per
//! configuration generation: the bind password and the CA are read when
//! the config is loaded, so a wrong path fails `--check-config` and a
//! reload, not the first login.

use super::DirectoryError;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, SearchOptions};
use rustls::pki_types::{pem::PemObject, CertificateDer};
use smsotp_config::perms::{self, Role};
use smsotp_config::{DirectoryConfig, DirectoryTls};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Mutex;
use tracing::{info, warn};
use zeroize::Zeroizing;

/// Where Debian's ca-certificates puts the system bundle.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

pub struct Client {
    cfg: DirectoryConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    password: Option<Zeroizing<String>>,
    conn: Mutex<Option<Ldap>>,
}

/// The entries a search found: each one's values of the configured
/// attributes, in the configured order.
pub type Found = Vec<Vec<(String, Vec<String>)>>;

impl Client {
    pub fn new(cfg: &DirectoryConfig) -> Result<Client, String> {
        let password = match &cfg.bind_password {
            Some(secret) => Some(
                crate::providers::secret::read(secret)
                    .map_err(|e| format!("bind password: {e}"))?,
            ),
            None => None,
        };
        let tls = match cfg.tls {
            DirectoryTls::Plain => None,
            DirectoryTls::Ldaps | DirectoryTls::StartTls => Some(tls_config(cfg)?),
        };
        Ok(Client {
            cfg: cfg.clone(),
            tls,
            password,
            conn: Mutex::new(None),
        })
    }

    /// Searches `base_dn` with `filter`; at most two entries are asked
    /// for, which is enough to tell one from several. A failure on a
    /// connection that had worked before is retried once on a fresh one
    /// (the server restarted, a firewall dropped the idle connection).
    pub async fn search(&self, filter: &str) -> Result<Found, DirectoryError> {
        let (mut ldap, reused) = self.connection().await?;
        let result = match self.search_on(&mut ldap, filter).await {
            Err(DirectoryError::Unavailable(e)) if reused => {
                info!(event = "directory_reconnect", error = %e, "directory connection failed; reconnecting");
                self.forget().await;
                let (mut ldap, _) = self.connection().await?;
                self.search_on(&mut ldap, filter).await
            }
            other => other,
        };
        if matches!(result, Err(DirectoryError::Unavailable(_))) {
            // The next lookup connects anew.
            self.forget().await;
        }
        result
    }

    /// A base-scope read of `base_dn`: what `--check-directory` does to
    /// show that bind and search work without naming a user.
    pub async fn probe(&self) -> Result<(), DirectoryError> {
        let (mut ldap, _) = self.connection().await?;
        let result = ldap
            .with_timeout(self.cfg.timeout)
            .search(
                &self.cfg.base_dn,
                Scope::Base,
                "(objectClass=*)",
                vec!["1.1"],
            )
            .await
            .map_err(|e| DirectoryError::Unavailable(format!("search of base_dn: {e}")));
        match result.and_then(|r| {
            r.success()
                .map_err(|e| DirectoryError::Unavailable(format!("search of base_dn: {e}")))
        }) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.forget().await;
                Err(e)
            }
        }
    }

    pub fn tls(&self) -> DirectoryTls {
        self.cfg.tls
    }

    async fn forget(&self) {
        self.conn.lock().await.take();
    }

    /// The live connection, or a new one. The lock is held while
    /// connecting so that a burst of logins makes one connection, not one
    /// each; the caller's deadline bounds the wait.
    async fn connection(&self) -> Result<(Ldap, bool), DirectoryError> {
        let mut slot = self.conn.lock().await;
        if let Some(ldap) = slot.as_mut() {
            if !ldap.is_closed() {
                return Ok((ldap.clone(), true));
            }
        }
        let ldap = self.connect().await?;
        *slot = Some(ldap.clone());
        Ok((ldap, false))
    }

    async fn connect(&self) -> Result<Ldap, DirectoryError> {
        let unavailable = |what: &str, e: ldap3::LdapError| {
            DirectoryError::Unavailable(format!("{what} {}: {e}", self.cfg.url))
        };
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.cfg.timeout)
            .set_starttls(self.cfg.tls == DirectoryTls::StartTls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(Arc::clone(tls));
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.cfg.url)
            .await
            .map_err(|e| unavailable("connect to", e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                warn!(event = "directory_connection_lost", error = %e, "directory connection ended");
            }
        });
        if let (Some(dn), Some(pw)) = (&self.cfg.bind_dn, &self.password) {
            ldap.with_timeout(self.cfg.timeout)
                .simple_bind(dn, pw)
                .await
                .and_then(|r| r.success())
                .map_err(|e| unavailable("bind to", e))?;
        }
        Ok(ldap)
    }

    async fn search_on(&self, ldap: &mut Ldap, filter: &str) -> Result<Found, DirectoryError> {
        let attrs: Vec<&str> = self.cfg.attributes.iter().map(String::as_str).collect();
        let result = ldap
            .with_search_options(SearchOptions::new().sizelimit(2))
            .with_timeout(self.cfg.timeout)
            .search(&self.cfg.base_dn, Scope::Subtree, filter, attrs)
            .await
            .map_err(|e| DirectoryError::Unavailable(format!("search: {e}")))?;
        // sizeLimitExceeded: more entries than the two asked for.
        if result.1.rc == 4 {
            return Err(DirectoryError::Ambiguous(result.0.len()));
        }
        let (entries, _) = result
            .success()
            .map_err(|e| DirectoryError::Unavailable(format!("search: {e}")))?;
        let entries: Vec<SearchEntry> = entries
            .into_iter()
            .map(SearchEntry::construct)
            // Continuation references (referrals) carry no attributes.
            .filter(|e| !e.dn.is_empty())
            .collect();
        if entries.len() > 1 {
            return Err(DirectoryError::Ambiguous(entries.len()));
        }
        Ok(entries
            .into_iter()
            .map(|entry| {
                // Servers answer with the schema's spelling of the name.
                self.cfg
                    .attributes
                    .iter()
                    .filter_map(|want| {
                        entry
                            .attrs
                            .iter()
                            .find(|(name, _)| name.eq_ignore_ascii_case(want))
                            .map(|(name, values)| (name.clone(), values.clone()))
                    })
                    .collect()
            })
            .collect())
    }
}

/// Only the CA the config names (the directory is an internal service,
/// usually with a private CA), or the system bundle without one. rustls
/// checks the chain and that the certificate names the host in the URL.
fn tls_config(cfg: &DirectoryConfig) -> Result<Arc<rustls::ClientConfig>, String> {
    let path = cfg
        .ca_file
        .as_deref()
        .unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
    if cfg.ca_file.is_some() {
        // Whoever can change it can impersonate the directory and choose
        // where every user's codes go.
        perms::check(path, Role::CaFile).map_err(|e| format!("ca_file: {e}"))?;
    }
    let fail = |e: String| format!("ca_file {}: {e}", path.display());
    let pem = crate::providers::client::read_ca_pem(path).map_err(fail)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| fail(format!("is not PEM: {e}")))?;
        roots.add(cert).map_err(|e| fail(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
